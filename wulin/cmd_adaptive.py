"""``wulin adaptive ...``: central adaptive control as an approved thing (propose, approve, deploy, run, roll back).

The same store, log-in and roles as ``wulin plan``: an engineer proposes a configuration
(controller, parameters, bounds, each signal's fallback plan by hash), a supervisor other than
the proposer approves it (signed), an engineer deploys it (fallback plans first, verified, then
central control), an engineer or supervisor runs the central process that drives the devices
(``run``: the controller, its detector state and the NTCIP link composed here, the loop in
:mod:`deploy.adaptive_run`) and a supervisor rolls it back.  The work lives in
:mod:`deploy.adaptive`, :mod:`deploy.adaptive_service` and :mod:`deploy.adaptive_run`.
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

adaptive_app = typer.Typer(help="Central adaptive control: propose, approve, deploy, run and roll back a "
                           "controller configuration with its fallback plans.", no_args_is_help=True)


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


def _central_parts(cfg, scenario: str | None):  # noqa: ANN001, ANN202 - (controller, layout), imported lazily
    """The configured controller, reset on the layout of the configuration's signals (from
    ``--scenario``'s network: a configuration names no network), refused where central control
    from the devices' detectors cannot run it (as ``wulin cosim --state devices``)."""
    from controllers.base import make_controller
    from deploy.sumo_bridge import check_controller
    from sim.errors import WulinError
    from sim.scenario import load_scenario
    from sim.state import DistrictLayout
    from sim.topology import load_signal_specs

    if scenario is None:
        raise WulinError("--scenario: the configuration names no network; give the scenario (id or .toml) whose "
                         "network holds its signals (the lanes the devices' detectors are on)")
    sc = load_scenario(scenario)
    specs = load_signal_specs(sc.net_file)
    missing = sorted(set(cfg.fallback) - set(specs))
    if missing:
        raise WulinError(f"--scenario {sc.id}: its network {sc.net_file.name} has no signal {', '.join(missing)} "
                         "of the configuration")
    ctl = make_controller(cfg.controller, **cfg.params)
    check_controller(ctl, "devices")
    layout = DistrictLayout.from_specs([specs[sid] for sid in cfg.fallback])
    ctl.reset(layout, 1)
    return ctl, layout


@adaptive_app.command("run")
def run(ref: str = typer.Argument(..., help="Hash of a deployed configuration (or a unique prefix)."),
        scenario: str | None = typer.Option(None, "--scenario", help="Scenario (id or .toml) whose network holds "
                                            "the configuration's signals: each signal's lanes and stages."),
        for_s: float | None = typer.Option(None, "--for", help="Stop after this many seconds (default: until "
                                           "Ctrl-C or SIGTERM)."),
        release: bool = typer.Option(False, "--release", help="On stop, release every device to its time-of-day "
                                     "plan at once (as rollback does) instead of leaving it to its watchdog."),
        status_every: float = typer.Option(10.0, "--status-every", help="Seconds between status lines."),
        link_timeout: float = typer.Option(0.3, "--link-timeout", help="Seconds to wait for the devices' answers "
                                           "in a round (under the 1 s round)."),
        user: str | None = USER_OPT, token: str | None = TOKEN_OPT, password_stdin: bool = PW_STDIN_OPT,
        store: str = STORE_OPT) -> None:
    """Drive the devices of a deployed configuration centrally, every second on the wall clock."""
    from deploy.adaptive_run import RunOptions

    opts = RunOptions(for_s, status_every, release, link_timeout).check()
    s, a = _astore(store)
    who = _login(s, user, token, password_stdin)
    rec = a.get(ref)
    ctl, layout = _central_parts(rec.config, scenario)
    rec = a.begin(rec.hash, who, "run", {"signals": sorted(rec.config.fallback), "scenario": scenario,
                                          "for_s": for_s, "release": release})
    _run_started(s, a, rec, who, ctl, layout, opts)


def _run_started(s, a, rec, who, ctl, layout, opts) -> None:  # noqa: ANN001
    """The run once audited as started: connect, run, stop (audited however it ends)."""
    from deploy import adaptive_run as ar
    from deploy.sumo_bridge import detector_reader
    from sim.state import DistrictState

    cfg, stop, out, b = rec.config, ar.StopRequest(), None, rec.config.bounds
    try:
        devices = ar.connect(s, cfg, {sp.id: sp for sp in layout.specs}, ctl.actuator_params.get("max_green"),
                             opts.link_timeout_s)
        try:
            console.print(f"running {rec.hash[:12]} {cfg.name}: {cfg.controller} over {len(devices.adapters)} "
                          f"device(s), state from their detectors, a round a second, decisions every "
                          f"{ctl.decision_interval:g} s, heartbeat {b.heartbeat:g} s, unitBackupTime {b.backup_time} s; "
                          "Ctrl-C stops", highlight=False)
            with ar.stop_on_signals(stop):
                out = ar.run_rounds(devices.central, ctl, detector_reader(layout), DistrictState.empty(layout), stop,
                                    opts, on_status=lambda st: console.print(st.line(), highlight=False),
                                    still_deployed=lambda: _not_deployed(a, rec.hash))
            released = ar.release(devices) if opts.release and not out.by_store else None
        finally:
            devices.close()
    except BaseException as exc:
        why = stop.reason or f"{type(exc).__name__}: {exc}"
        a.note(rec.hash, who, "adaptive.run.stop", "failed", {"reason": why, "rounds": out.status.rounds if out else 0})
        raise
    _run_stopped(a, rec, who, out, released)


def _not_deployed(a, h: str) -> str | None:  # noqa: ANN001
    state = a.state_of(h)
    return None if state == "deployed" else f"the configuration is {state} now (a rollback began)"


def _run_stopped(a, rec, who, out, released: dict[str, str] | None) -> None:  # noqa: ANN001
    st = out.status
    console.print(st.line(), highlight=False)
    console.print(f"stopped: {out.reason}; {st.rounds:,} rounds, {st.decisions:,} decisions, round median / p95 / max "
                  f"{out.percentile_ms(.5):.1f} / {out.percentile_ms(.95):.1f} / {out.percentile_ms(1):.1f} ms",
                  highlight=False)
    bad = {sid: why for sid, why in (released or {}).items() if why}
    if out.by_store:
        console.print("the devices were not taken again: the rollback returns them to their time-of-day plans",
                      highlight=False)
    elif released is None:
        console.print(f"the devices were left under central control: each falls back to its verified fallback plan "
                      f"by its watchdog within unitBackupTime ({rec.config.bounds.backup_time} s)", highlight=False)
    else:
        console.print(f"released {len(released) - len(bad)} of {len(released)} device(s) to their time-of-day plans"
                      + "".join(f"; {sid}: {why}" for sid, why in bad.items()), highlight=False)
    detail = {"reason": out.reason, "rounds": st.rounds, "decisions": st.decisions, "late_rounds": st.late_rounds,
              "taken_again": st.resumed, "round_p95_ms": round(out.percentile_ms(.95), 1),
              "released": released if released is not None else "no: left to the rollback" if out.by_store
              else "no: left to the watchdogs"}
    a.note(rec.hash, who, "adaptive.run.stop", "failed" if bad else "ok", detail)
    if bad:
        raise typer.Exit(1)
