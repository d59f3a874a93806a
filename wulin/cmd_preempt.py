"""``wulin plan preempt``: preempt configurations proposed, approved, listed and pushed (plan store)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from wulin.cmd_plan import PW_STDIN_OPT, STORE_OPT, TOKEN_OPT, USER_OPT, _login, _store, plan_app

preempt_app = typer.Typer(help="Preempt configurations (emergency vehicles): two-person approval like plans.",
                          no_args_is_help=True)
console = Console()


def _approvals(store: str):  # noqa: ANN202 - deploy.preempt_store.PreemptApprovals (imported lazily)
    from deploy.preempt_store import PreemptApprovals

    return PreemptApprovals(_store(store))


@preempt_app.command("propose")
def propose(config_file: Path = typer.Argument(..., help="Preempt configuration JSON (see deploy/preempt_config.py)."),
            note: str = typer.Option("", "--note", help="Why this configuration."),
            user: str | None = USER_OPT, token: str | None = TOKEN_OPT, password_stdin: bool = PW_STDIN_OPT,
            store: str = STORE_OPT) -> None:
    """Propose a signal's preempt table."""
    from deploy.preempt_config import PreemptConfig

    cfg = PreemptConfig.load(config_file)
    ap = _approvals(store)
    r = ap.propose_preempt(cfg, _login(ap.store, user, token, password_stdin), note)
    console.print(f"proposed preempt configuration {r.hash} for {r.signal_id}")


@preempt_app.command("approve")
def approve(ref: str = typer.Argument(...), user: str | None = USER_OPT, token: str | None = TOKEN_OPT,
            password_stdin: bool = PW_STDIN_OPT, store: str = STORE_OPT) -> None:
    """Approve a proposed preempt table (a supervisor other than the proposer)."""
    ap = _approvals(store)
    r = ap.approve_preempt(ref, _login(ap.store, user, token, password_stdin))
    console.print(f"approved preempt configuration {r.hash} by {r.approved_by} (signed; binds this hash)")


@preempt_app.command("reject")
def reject(ref: str = typer.Argument(...), reason: str = typer.Option(..., "--reason"),
           user: str | None = USER_OPT, token: str | None = TOKEN_OPT, password_stdin: bool = PW_STDIN_OPT,
           store: str = STORE_OPT) -> None:
    """Reject a proposed or approved preempt table, with a reason."""
    ap = _approvals(store)
    r = ap.reject_preempt(ref, _login(ap.store, user, token, password_stdin), reason)
    console.print(f"rejected preempt configuration {r.hash}")


@preempt_app.command("list")
def list_(signal: str | None = typer.Option(None, "--signal"), store: str = STORE_OPT) -> None:
    """The stored preempt tables and their state."""
    t = Table(header_style="bold")
    for c in ("hash", "signal", "state", "proposed by", "approved by", "preempts"):
        t.add_column(c)
    for r in _approvals(store).preempt_configs(signal):
        dwell = ", ".join(f"{p.number}: dwell {list(p.dwell_phases)}" for p in r.config.preempts)
        t.add_row(r.hash[:12], r.signal_id, r.state, r.proposed_by, r.approved_by or "-", dwell)
    console.print(t)


@preempt_app.command("push")
def push(ref: str = typer.Argument(..., help="Hash of an approved preempt configuration."),
         signal: str = typer.Option(..., "--signal", help="The signal whose registered controller gets it (must be "
                                    "the configuration's)."),
         user: str | None = USER_OPT, token: str | None = TOKEN_OPT, password_stdin: bool = PW_STDIN_OPT,
         store: str = STORE_OPT) -> None:
    """Write an approved preempt table to its signal's registered controller and read it back (audited)."""
    from deploy.preempt_store import push_registered

    ap = _approvals(store)
    who = _login(ap.store, user, token, password_stdin)
    r = push_registered(ap, ref, signal, who)
    if not r.ok:
        console.print(f"[red]failed[/]: {signal}'s controller does not read back preempt configuration "
                      f"{r.hash[:12]} as approved (audited)", highlight=False)
        raise typer.Exit(1)
    console.print(f"pushed preempt configuration {r.hash[:12]} to {signal} as {who.name}: the readback equals "
                  "the approved table", highlight=False)


def register(app: typer.Typer) -> None:
    plan_app.add_typer(preempt_app, name="preempt")
