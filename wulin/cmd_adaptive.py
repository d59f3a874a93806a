"""``wulin adaptive ...``: central adaptive control as an approved thing (propose, approve, deploy, roll back).

The same store, log-in and roles as ``wulin plan``: an engineer proposes a configuration
(controller, parameters, bounds, each signal's fallback plan by hash), a supervisor other than
the proposer approves it (signed), an engineer deploys it (fallback plans first, verified, then
central control) and a supervisor rolls it back.  The work lives in :mod:`deploy.adaptive` and
:mod:`deploy.adaptive_service`.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from wulin.cmd_plan import (
    ACT_TIMEOUT_OPT,
    PW_STDIN_OPT,
    STORE_OPT,
    TOKEN_OPT,
    USER_OPT,
    _login,
    _options,
    _report,
    _state,
    _store,
    _term_as_interrupt,
    console,
)

adaptive_app = typer.Typer(help="Central adaptive control: propose, approve, deploy and roll back a controller "
                           "configuration with its fallback plans.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(adaptive_app, name="adaptive")


def _astore(store: str):  # noqa: ANN202 - (store, AdaptiveStore), imported lazily
    from deploy.adaptive import AdaptiveStore

    s = _store(store)
    return s, AdaptiveStore(s)


@adaptive_app.command("propose")
def propose(config: Path = typer.Argument(..., help="The configuration (TOML: controller, params, bounds, fallback)."),
            note: str = typer.Option("", "--note", help="Why this configuration."),
            user: str | None = USER_OPT, token: str | None = TOKEN_OPT, password_stdin: bool = PW_STDIN_OPT,
            store: str = STORE_OPT) -> None:
    """Store a configuration as proposed (an engineer's step)."""
    from deploy.adaptive import AdaptiveConfig

    cfg = AdaptiveConfig.load(config)
    s, a = _astore(store)
    rec = a.propose(cfg, _login(s, user, token, password_stdin), note)
    console.print(f"proposed {rec.hash}  {cfg.name}: {cfg.controller} over {len(cfg.fallback)} signal(s)",
                  highlight=False)


@adaptive_app.command("approve")
def approve(ref: str = typer.Argument(..., help="Configuration hash (or a unique prefix)."),
            user: str | None = USER_OPT, token: str | None = TOKEN_OPT, password_stdin: bool = PW_STDIN_OPT,
            store: str = STORE_OPT) -> None:
    """Approve (a supervisor other than the proposer); every fallback plan must be approved."""
    s, a = _astore(store)
    rec = a.approve(ref, _login(s, user, token, password_stdin))
    console.print(f"approved {rec.hash} by {rec.approved_by} (signed; binds the configuration and its fallback plans)")


@adaptive_app.command("reject")
def reject(ref: str = typer.Argument(...), reason: str = typer.Option(..., "--reason"),
           user: str | None = USER_OPT, token: str | None = TOKEN_OPT, password_stdin: bool = PW_STDIN_OPT,
           store: str = STORE_OPT) -> None:
    """Reject a proposed or approved configuration, with a reason (a supervisor's step)."""
    s, a = _astore(store)
    console.print(f"rejected {a.reject(ref, _login(s, user, token, password_stdin), reason).hash}")


def _device_action(action: str, ref: str, activation_timeout: float, user: str | None, token: str | None,
                   password_stdin: bool, store: str) -> None:
    from deploy import adaptive_service

    s, _ = _astore(store)
    who = _login(s, user, token, password_stdin)
    with _term_as_interrupt():
        out = getattr(adaptive_service, action)(s, ref, who, _options(activation_timeout))
    _report(out)


@adaptive_app.command("deploy")
def deploy(ref: str = typer.Argument(..., help="Hash of an approved configuration."),
           activation_timeout: float = ACT_TIMEOUT_OPT,
           user: str | None = USER_OPT, token: str | None = TOKEN_OPT, password_stdin: bool = PW_STDIN_OPT,
           store: str = STORE_OPT) -> None:
    """Fallback plans downloaded and verified on every device, then the devices under central control."""
    _device_action("deploy", ref, activation_timeout, user, token, password_stdin, store)


@adaptive_app.command("rollback")
def rollback(ref: str = typer.Argument(..., help="Hash of a deployed configuration."),
             activation_timeout: float = ACT_TIMEOUT_OPT,
             user: str | None = USER_OPT, token: str | None = TOKEN_OPT, password_stdin: bool = PW_STDIN_OPT,
             store: str = STORE_OPT) -> None:
    """Every device back on its time-of-day plan (a supervisor's step)."""
    _device_action("rollback", ref, activation_timeout, user, token, password_stdin, store)


@adaptive_app.command("list")
def list_configs(store: str = STORE_OPT) -> None:
    """The stored configurations and where each stands."""
    _, a = _astore(store)
    t = Table(show_header=True, header_style="bold")
    for col in ("hash", "name", "controller", "signals", "state", "proposed by", "approved by"):
        t.add_column(col)
    for r in a.list():
        t.add_row(r.hash[:12], r.name, r.config.controller, str(len(r.config.fallback)), _state(r.state),
                  r.proposed_by, r.approved_by or "-")
    console.print(t)


@adaptive_app.command("show")
def show(ref: str = typer.Argument(..., help="Configuration hash (or a unique prefix)."), store: str = STORE_OPT) -> None:
    """One configuration: its controller, parameters, bounds and fallback plans."""
    _, a = _astore(store)
    r = a.get(ref)
    console.print(f"{r.hash}  {_state(r.state)}  {r.name}")
    console.print_json(r.config.to_json())
