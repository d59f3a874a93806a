"""``wulin plan ...``: validate, propose, approve, reject, deploy, roll back and audit timing plans.

Other command modules add to :data:`plan_app` (``wulin plan webster`` comes from
``wulin/cmd_controllers.py``).  The store is a SQLite file by default (``--store`` or
``WULIN_STORE`` for another file or a ``postgresql+psycopg://`` URL); the acting user comes
from ``--user`` or ``WULIN_USER``.  Heavy imports happen inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

plan_app = typer.Typer(help="Timing plans: make, validate, propose, approve, deploy, roll back.", no_args_is_help=True)
user_app = typer.Typer(help="Users of the plan store and their roles.", no_args_is_help=True)
plan_app.add_typer(user_app, name="user")
console = Console()

STORE_OPT = typer.Option("runs/plan-store.sqlite", "--store", envvar="WULIN_STORE",
                         help="Plan store: a SQLite file or a SQLAlchemy URL (postgresql+psycopg://...).")
USER_OPT = typer.Option(..., "--user", "-u", envvar="WULIN_USER", help="Who is acting (must be a store user).")


def _store(url: str) -> Any:
    from deploy.store import PlanStore

    return PlanStore(url)


def register(app: typer.Typer) -> None:
    app.add_typer(plan_app, name="plan")


def _state(state: str) -> str:
    colour = {"approved": "cyan", "deployed": "green", "failed": "red", "rolled_back": "yellow",
              "rejected": "magenta", "deploying": "blue"}.get(state, "white")
    return f"[{colour}]{state}[/]"


@plan_app.command("validate")
def validate(
    plan_file: Path = typer.Argument(..., help="Plan JSON (one plan or a list)."),
    net: Path | None = typer.Option(None, "--net", help="SUMO .net.xml: also check conflicts against it."),
) -> None:
    """Check plans against the engineering rules; exit 1 when any is violated."""
    from controllers.plan import load_plans, validate_plan

    specs: dict[str, Any] = {}
    if net is not None:
        from sim.topology import load_signal_specs

        specs = load_signal_specs(net)
    bad = 0
    for plan in load_plans(plan_file):
        spec = specs.get(plan.signal_id)
        if net is not None and spec is None:
            console.print(f"[red]{plan.signal_id}[/]: no such signal in {net}")
            bad += 1
            continue
        found = validate_plan(plan, spec.conflicts if spec else None)
        head = f"{plan.signal_id} {plan.name or ''} sha256:{plan.short_hash}"
        if found:
            bad += 1
            console.print(f"[red]✗[/] {head}")
            for v in found:
                console.print(f"    - {v}")
        else:
            console.print(f"[green]✓[/] {head}: valid")
    if bad:
        raise typer.Exit(1)


@user_app.command("add")
def user_add(name: str = typer.Argument(...), role: str = typer.Option(..., "--role", help="engineer or supervisor"),
             store: str = STORE_OPT) -> None:
    """Add a user (there is no authentication: the store trusts --user)."""
    _store(store).add_user(name, role)
    console.print(f"user {name} ({role}) added")


@user_app.command("list")
def user_list(store: str = STORE_OPT) -> None:
    for name, role in _store(store).users().items():
        console.print(f"{name}\t{role}")


def _read_evidence(path: Path) -> dict[str, Any]:
    """Evidence from a JSON object, or any text (a `wulin compare --markdown` table) kept verbatim."""
    from controllers.plan import sha256_hex
    from sim.errors import WulinError
    from sim.files import parse_json, read_text

    text = read_text(path, "evidence file")  # kind, size and UTF-8 checked
    if not text.strip():
        raise WulinError(f"{path}: the evidence file is empty")
    try:
        data = parse_json(text, path)
    except WulinError:  # not JSON a config could hold (syntax, depth, nan): kept verbatim as text
        data = None
    if not isinstance(data, dict):
        data = {"kind": "experiment", "text": text}
    data.setdefault("kind", "experiment")
    data.setdefault("source", str(path))
    data.setdefault("sha256", sha256_hex(text))
    return data


@plan_app.command("propose")
def propose(
    plan_file: Path = typer.Argument(..., help="Plan JSON (one plan or a list)."),
    user: str = USER_OPT,
    signal: str | None = typer.Option(None, "--signal", help="Only the plan for this signal (from a list)."),
    evidence: Path | None = typer.Option(
        None, "--evidence", help="Results against the live plan: JSON, or text such as `wulin compare --markdown`."),
    note: str = typer.Option("", "--note", help="Why this plan."),
    store: str = STORE_OPT,
) -> None:
    """Store plans as proposed (an engineer's step)."""
    from controllers.plan import load_plans, validate_plan
    from sim.errors import WulinError

    ev = _read_evidence(evidence) if evidence is not None else None
    plans = load_plans(plan_file)
    if signal is not None:
        plans = [p for p in plans if p.signal_id == signal]
        if not plans:
            raise WulinError(f"{plan_file}: no plan for signal {signal!r}")
    s = _store(store)
    for plan in plans:
        rec = s.propose(plan, user, evidence=ev, note=note)
        found = validate_plan(plan)
        warn = f" [yellow]({len(found)} violation(s): it cannot be approved as it is)[/]" if found else ""
        console.print(f"proposed {rec.hash}  {plan.signal_id} {plan.name}{warn}", highlight=False)


@plan_app.command("evidence")
def add_evidence(ref: str = typer.Argument(..., help="Plan hash."), user: str = USER_OPT,
                 file: Path = typer.Option(..., "--file", help="JSON or text results."),
                 store: str = STORE_OPT) -> None:
    """Attach evidence to a stored plan."""
    _store(store).add_evidence(ref, _read_evidence(file), user)
    console.print(f"evidence {file} attached to {ref}")


@plan_app.command("list")
def list_plans(signal: str | None = typer.Option(None, "--signal"), state: str | None = typer.Option(None, "--state"),
               store: str = STORE_OPT) -> None:
    """Plans in the store."""
    t = Table(show_header=True, header_style="bold")
    t.add_column("hash", no_wrap=True, min_width=12)
    for c in ("signal", "name", "state", "proposed by", "approved by", "cycle"):
        t.add_column(c)
    for r in _store(store).plans(signal, state):
        t.add_row(r.hash[:12], r.signal_id, r.name, _state(r.state), r.proposed_by, r.approved_by or "-",
                  f"{r.plan.cycle:g} s")
    console.print(t)


@plan_app.command("show")
def show(ref: str = typer.Argument(..., help="Plan hash (or a unique prefix)."), store: str = STORE_OPT) -> None:
    """One plan: its timings, validation, evidence and history."""
    from controllers.plan import validate_plan

    s = _store(store)
    r = s.get(ref)
    p = r.plan
    console.print(f"[bold]{r.hash}[/]  {p.signal_id}  {p.name}  {_state(r.state)}")
    console.print(f"cycle {p.cycle:g} s, offset {p.offset:g} s, yellow {p.yellow:g} s, all-red {p.all_red:g} s; "
                  f"source {p.source or '-'}")
    t = Table(show_header=True, header_style="bold")
    for c in ("stage", "state", "green", "split", "min", "walk", "ped clr"):
        t.add_column(c)
    for k, st in enumerate(p.stages):
        t.add_row(f"{k} {st.name}", st.state, f"{st.green:g}", f"{p.split(k):g}", f"{st.min_green:g}",
                  f"{st.walk:g}", f"{st.ped_clearance:g}")
    console.print(t)
    found = validate_plan(p)
    console.print("validation: " + ("[green]valid[/]" if not found else "[red]" + "; ".join(found) + "[/]"))
    for e in s.evidence(r.hash):
        console.print(f"evidence ({e.get('kind')}, {e['added_by']}): {json.dumps(e, sort_keys=True)[:300]}")
    for e in s.audit(r.hash):
        console.print(f"  #{e.seq} {e.ts[:19]} {e.actor:10s} {e.action:14s} {e.outcome}")


@plan_app.command("diff")
def diff(a: str = typer.Argument(..., help="Plan hash or JSON file."),
         b: str | None = typer.Argument(None, help="Plan hash or JSON file (default: the live plan of A's signal)."),
         store: str = STORE_OPT) -> None:
    """What changes from plan A to plan B (or from the live plan to A)."""
    from controllers.plan import TimingPlan, change_size, diff_plans
    from sim.errors import WulinError

    s = _store(store)

    def load(ref: str) -> TimingPlan:
        return TimingPlan.load(ref) if ref.endswith(".json") or Path(ref).is_file() else s.get(ref).plan

    new = load(a)
    if b is None:
        live = s.live_plan(new.signal_id)
        if live is None:
            raise WulinError(f"no plan is deployed on {new.signal_id!r}; name two plans to compare")
        old = live.plan
    else:
        old, new = new, load(b)
    lines = diff_plans(old, new)
    for line in lines or ["the plans are identical"]:
        console.print(line)
    if lines:
        console.print(f"change size: {change_size(old, new):g} s")


@plan_app.command("approve")
def approve(ref: str = typer.Argument(...), user: str = USER_OPT, store: str = STORE_OPT) -> None:
    """Approve a proposed plan (a supervisor other than the proposer)."""
    r = _store(store).approve(ref, user)
    console.print(f"approved {r.hash} by {r.approved_by} (binds this hash)")


@plan_app.command("reject")
def reject(ref: str = typer.Argument(...), user: str = USER_OPT,
           reason: str = typer.Option(..., "--reason"), store: str = STORE_OPT) -> None:
    """Reject a proposed or approved plan, with a reason."""
    r = _store(store).reject(ref, user, reason)
    console.print(f"rejected {r.hash}")


def _adapter(dev: Any, **kw: Any) -> Any:
    from deploy.ntcip import adapter_for  # credentials from the secrets file, never the store

    return adapter_for(dev, log=lambda line: console.print(f"  {line}", highlight=False), **kw)


@plan_app.command("deploy")
def deploy(
    ref: str = typer.Argument(..., help="Hash of an approved plan."),
    user: str = USER_OPT,
    plan_file: Path | None = typer.Option(None, "--plan", help="The plan file you mean to send: its hash must be the approved one."),
    activation_timeout: float = typer.Option(400.0, "--activation-timeout", help="Seconds to wait for the cycle boundary."),
    activation: str = typer.Option("pattern", "--activation",
                                   help="pattern (systemPatternControl) or schedule (the time-of-day action's pattern)."),
    store: str = STORE_OPT,
) -> None:
    """Send an approved plan to its controller (NTCIP 1202); rolls back by itself on failure."""
    from controllers.plan import TimingPlan

    s = _store(store)
    plan = TimingPlan.load(plan_file) if plan_file else None
    if activation not in ("pattern", "schedule"):
        raise typer.BadParameter("use 'pattern' or 'schedule'", param_hint="--activation")
    rec, dev = s.begin_deploy(ref, user, plan)
    console.print(f"deploying {rec.hash[:12]} to {rec.signal_id} at {dev.host}:{dev.port} (SNMP v{dev.snmp_version})")
    ad = _adapter(dev, activation_timeout_s=activation_timeout, activation=activation)
    try:
        rep = ad.deploy(rec.plan)
    except BaseException as exc:  # interrupted: never leave the plan 'deploying' without a record
        s.finish_deploy(rec.hash, user, "failed", {"message": f"deploy interrupted ({type(exc).__name__}); "
                                                   "controller state unknown: read it back before acting"})
        raise
    finally:
        ad.close()
    outcome = {"deployed": "deployed", "rolled_back": "rolled_back"}.get(rep.outcome, "failed")
    detail = rep.summary()
    s.finish_deploy(rec.hash, user, outcome, detail)
    colour = "green" if rep.ok else "red"
    console.print(f"[{colour}]{rep.outcome}[/]: {rep.message} ({len(rep.wire)} PDUs)")
    if not rep.ok:
        raise typer.Exit(1)


@plan_app.command("rollback")
def rollback(ref: str = typer.Argument(..., help="Hash of a deployed plan."), user: str = USER_OPT,
             activation_timeout: float = typer.Option(400.0, "--activation-timeout"), store: str = STORE_OPT) -> None:
    """Put the controller back as it was before the plan was deployed (a supervisor's step)."""
    from sim.errors import WulinError

    s = _store(store)
    rec, dev = s.begin_rollback(ref, user)
    finished = [e for e in s.audit(rec.hash) if e.action == "deploy.finish" and e.outcome == "deployed"]
    if not finished or "snapshot" not in finished[-1].detail:
        raise WulinError(f"plan {rec.hash[:12]}: no snapshot on record to roll back to")
    ad = _adapter(dev, activation_timeout_s=activation_timeout)
    try:
        rep = ad.rollback(finished[-1].detail)
    finally:
        ad.close()
    s.finish_rollback(rec.hash, user, rep.outcome == "rolled_back", {"message": rep.message, "steps": rep.steps})
    console.print(f"{rep.outcome}: {rep.message}")
    if rep.outcome != "rolled_back":
        raise typer.Exit(1)


@plan_app.command("audit")
def audit(ref: str | None = typer.Argument(None, help="Only this plan's entries."),
          verify: bool = typer.Option(False, "--verify", help="Recompute the hash chain; exit 1 if tampered."),
          store: str = STORE_OPT) -> None:
    """The audit log (who, when, what, outcome); --verify checks it was not altered."""
    s = _store(store)
    if verify:
        ok, problems, head = s.verify_audit()
        for p in problems:
            console.print(f"[red]{p}[/]")
        console.print(("[green]audit log intact[/]" if ok else "[red]audit log TAMPERED[/]") + f"; head {head}")
        if not ok:
            raise typer.Exit(1)
        return
    for e in s.audit(ref):
        det = {k: v for k, v in e.detail.items() if k not in ("snapshot", "steps")}
        text = json.dumps(det, sort_keys=True, ensure_ascii=False)
        console.print(f"#{e.seq:<4d} {e.ts[:19]}  {e.actor:9s} {e.action:15s} {e.plan_hash[:12] or '-':12s} "
                      f"{e.outcome:9s} {text[:160]}", highlight=False, soft_wrap=True)
