"""``wulin cosim``: a controller run centrally over NTCIP against emulated field controllers."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

console = Console()


def cosim(
    scenario: str = typer.Argument(..., help="Scenario id (see `wulin scenarios`) or a .toml path."),
    controller: str = typer.Option(..., "--controller", "-c", help="A controller that chooses stages "
                                   "(max-pressure, sotl, ... ; see `wulin controllers`), or field: no central "
                                   "control, each device runs its own time-of-day plan (the network's program)."),
    seed: int = typer.Option(1, "--seed", help="SUMO random seed."),
    param: list[str] = typer.Option([], "--param", "-p", help="Controller parameter KEY=VALUE (repeatable)."),
    snmp: str = typer.Option("3", "--snmp", help="3 (SNMPv3 authPriv, the default) or 2c."),
    state: str = typer.Option("sumo", "--state", help="Where the controller's state comes from: sumo (SUMO's lanes, "
                              "the parity set-up; the default) or devices (estimated from the devices' detector "
                              "objects read over SNMP)."),
    backup_time: int = typer.Option(10, "--backup-time", help="The devices' unitBackupTime, seconds (1-255)."),
    until: str | None = typer.Option(None, "--until", help="Stop early at this clock time (HH:MM)."),
    emergency: list[str] = typer.Option([], "--emergency", help="An emergency vehicle TIME,FROM_EDGE,TO_EDGE "
                                        "(e.g. 07:00:30,left1A1,C1right1; repeatable): it calls the devices' "
                                        "preempts over SNMP as it approaches."),
    preempt_distance: float = typer.Option(250.0, "--preempt-distance", help="Metres before a signal at which an "
                                           "emergency vehicle calls its preempt."),
    no_preempt: bool = typer.Option(False, "--no-preempt", help="Run the emergency vehicles without preemption "
                                    "(to compare)."),
    preempt_approved: list[str] = typer.Option([], "--preempt-approved", help="Hash of an approved preempt "
                                               "configuration to install on its signal (repeatable; others get "
                                               "one preempt per stage)."),
    bus_priority: str | None = typer.Option(None, "--bus-priority", help="SUMO's buses raise the devices' "
                                            "transit priority requests over SNMP: late (behind schedule by "
                                            "more than 30 s) or all; none follows the buses and raises nothing."),
    bus_distance: float = typer.Option(150.0, "--bus-distance", help="Metres before a signal at which a bus "
                                       "raises its request."),
    store: str = typer.Option("runs/plan-store.sqlite", "--store", envvar="WULIN_STORE",
                              help="Plan store holding the approved preempt configurations."),
    fault: str | None = typer.Option(None, "--fault", help="Inject a fault: loss-all, loss-one, intermittent, late, "
                                     "reboot, central-crash, refused (see the README's fault table)."),
    fault_at: float = typer.Option(120.0, "--fault-at", help="Seconds after the scenario's begin the fault starts."),
    fault_for: float = typer.Option(30.0, "--fault-for", help="Seconds the fault lasts."),
    fault_device: int = typer.Option(0, "--fault-device", help="Which signal (0-based) a one-device fault hits."),
) -> None:
    """SUMO, one NTCIP emulator per signal (SNMP on loopback) and the controller centrally, in lockstep."""
    from controllers.base import make_controller
    from deploy.sumo_bridge import STATE_SOURCES, run_cosim
    from sim.clock import parse_clock
    from sim.errors import WulinError
    from sim.kpi import summarise
    from sim.scenario import format_clock, load_scenario
    from sim.simulation import check_seed
    from wulin.cmd_sim import kpi_table, parse_params

    check_seed(seed, "--seed")
    if snmp not in ("3", "2c"):
        raise WulinError(f"--snmp: expected 3 or 2c, got {snmp!r}")
    if state not in STATE_SOURCES:
        raise WulinError(f"--state: expected {' or '.join(STATE_SOURCES)}, got {state!r}")
    if not 1 <= backup_time <= 255:
        raise WulinError(f"--backup-time: {backup_time} s is outside 1-255 s")
    sc = load_scenario(scenario)
    end = parse_clock(until, "--until") if until is not None else sc.end
    if not sc.begin < end <= sc.end:
        raise WulinError(f"--until: {until} is outside the scenario's {format_clock(sc.begin)}-{format_clock(sc.end)}")
    ctl = None if controller == FIELD else make_controller(controller, **parse_params(param))
    if ctl is None and (param or fault is not None or state != "sumo"):
        raise WulinError("-c field: the devices run their own plans; --param, --fault and --state devices "
                         "need a central controller")
    buses = bus_options(bus_priority, bus_distance) if bus_priority is not None else None
    ev = emergency_options(emergency, preempt_distance, not no_preempt, preempt_approved, store) if emergency else None
    injected = None
    if fault is not None:
        from deploy.cosim_faults import FaultRun, FaultSpec
        from deploy.sumo_bridge import LINK_TIMEOUT

        injected = FaultRun(FaultSpec(fault, fault_at, fault_for, fault_device), sc.begin, LINK_TIMEOUT)
        if sc.begin + fault_at >= end:
            raise WulinError(f"--fault-at: {fault_at:g} s is after the run's end ({format_clock(end)})")
    how = (f"[bold]{controller}[/] central over NTCIP (SNMP v{snmp}) to one emulated controller per signal, "
           f"state from {state}" if ctl is not None else
           f"no central control: one emulated controller per signal runs its own plan (SNMP v{snmp})")
    console.print(f"[bold]{sc.id}[/] {format_clock(sc.begin)}-{format_clock(end)}: {how}, seed {seed}")
    res = run_cosim(sc, ctl, seed, snmp=snmp, backup_s=backup_time, end=end, emergency=ev,
                   fault=injected, state=state, buses=buses)
    console.print(kpi_table(f"{sc.id} · {controller} over NTCIP · seed {seed}", summarise(res.trips), res.network))
    console.print(link_table(res))
    if injected is not None:
        console.print(fault_table(injected.summary(), res.unsafe_count))
    if res.preempt is not None:
        console.print(emergency_table(res.preempt, ev is not None and ev.preempt))
    if res.buses is not None:
        console.print(bus_table(res.buses, res.trips, bus_priority or ""))


FIELD = "field"


def bus_options(mode: str, distance: float):  # noqa: ANN201 - deploy.priority_cosim.BusOptions
    """``--bus-priority late|all|none`` and ``--bus-distance`` as :class:`BusOptions`."""
    from deploy.priority_cosim import BUS_MODES, BusOptions
    from sim.errors import WulinError

    if mode not in (*BUS_MODES, "none"):
        raise WulinError(f"--bus-priority: expected late, all or none, got {mode!r}")
    if not distance > 0:
        raise WulinError(f"--bus-distance: {distance} m must be above 0")
    return BusOptions(buses=mode if mode != "none" else "all", distance=distance, request=mode != "none")


def bus_table(stats, trips, mode: str) -> Table:  # noqa: ANN001 - deploy.priority_cosim.BusStats, pd.DataFrame
    """The buses' delay at signals, the requests raised over SNMP and what the devices gave."""
    from sim.priority import general_traffic

    g = stats.given
    delay = stats.mean_signal_delay
    t = Table(title=f"bus priority requests over SNMP ({mode})", header_style="bold")
    t.add_column("figure")
    t.add_column("value", justify="right")
    for k, v in [("buses followed", f"{stats.buses}"),
                 ("bus delay halted at signals (per bus)", "-" if delay is None else f"{delay:.1f} s"),
                 ("general time loss (every vehicle due but buses)", f"{general_traffic(trips).time_loss.mean():.2f} s"),
                 ("requests raised / cancelled over SNMP", f"{stats.requests} / {stats.cancels}"),
                 ("failed SETs / no free request object", f"{stats.failed_sets} / {stats.no_free_request}"),
                 ("requests served (the devices' wulinPriorityServed)", f"{stats.served}"),
                 ("requests whose service changed the timing (grants)", f"{g.requests_changed}"),
                 ("green extensions: count, seconds", f"{g.extensions}, {g.extended / 10:.0f} s"),
                 ("greens ended early: count, seconds cut", f"{g.early_ends}, {g.early_cut / 10:.0f} s")]:
        t.add_row(k, v)
    return t


def emergency_options(specs: list[str], distance: float, preempt: bool, approved: list[str], store: str):  # noqa: ANN201
    """``--emergency TIME,FROM,TO`` and the preempt options as :class:`EmergencyOptions`."""
    from deploy.preempt_cosim import EmergencyOptions, EmergencyTrip
    from sim.clock import parse_clock
    from sim.errors import WulinError

    trips = []
    for spec in specs:
        parts = [p.strip() for p in spec.split(",")]
        if len(parts) != 3 or not all(parts):
            raise WulinError(f"--emergency {spec!r}: expected TIME,FROM_EDGE,TO_EDGE (e.g. 07:00:30,left1A1,C1right1)")
        trips.append(EmergencyTrip(parse_clock(parts[0], f"--emergency {spec!r}"), parts[1], parts[2]))
    configs = {}
    if approved:
        from deploy.preempt_store import PreemptApprovals
        from wulin.cmd_plan import _store

        approvals = PreemptApprovals(_store(store))
        for ref in approved:
            cfg = approvals.approved_preempt(ref)
            configs[cfg.signal_id] = cfg
    if not distance > 0:
        raise WulinError(f"--preempt-distance: {distance} m must be above 0")
    return EmergencyOptions(trips=tuple(trips), distance=distance, preempt=preempt, configs=configs)


def emergency_table(stats, preempt: bool) -> Table:  # noqa: ANN001 - deploy.preempt_cosim.PreemptStats
    """Each emergency vehicle's run, and the preempt inputs set over SNMP."""
    t = Table(title=f"emergency vehicles ({'preemption over NTCIP' if preempt else 'no preemption'})",
              header_style="bold")
    for c in ("vehicle", "travel time", "stops", "signals approached"):
        t.add_column(c, justify="left" if c in ("vehicle", "signals approached") else "right")
    for vid, log in stats.vehicles.items():
        tt = log.travel_time
        t.add_row(vid, "not arrived" if tt is None else f"{tt:.0f} s", str(log.stops), " ".join(log.signals))
    t.caption = (f"preempt inputs set {stats.calls}, cleared {stats.clears}, failed SETs {stats.failed_sets}; "
                 f"preempt tables written to {stats.installed} devices")
    return t


def _ms(xs: list[float], q: float) -> str:
    if not xs:
        return "-"
    s = sorted(xs)
    return f"{s[min(int(q * len(s)), len(s) - 1)] * 1e3:.1f} ms"


def link_table(res) -> Table:  # noqa: ANN001 - deploy.sumo_bridge.CosimResult (imported lazily)
    """Safety and the central link's figures of one run."""
    c = res.central
    title = "central control over NTCIP" if res.controller != FIELD else "the devices' own plans (no central control)"
    t = Table(title=title, show_header=True, header_style="bold")
    t.add_column("figure")
    t.add_column("value", justify="right")
    rows = [
        ("unsafe states given to SUMO", f"{res.unsafe_count}"),
        ("greens ended by a fail-safe flash (restart, monitor)", f"{res.flash_entries}"),
        ("conflict monitor alarms (devices in flash)", f"{res.alarms}"),
        ("watchdog fallbacks to the time-of-day plan", f"{res.fallbacks}"),
        ("central rounds (poll + commands)", f"{c.rounds:,}"),
        ("status GETs / command SETs", f"{c.polls:,} / {c.sets:,}"),
        ("no answer / refused", f"{c.timeouts} / {c.refused}"),
        ("state read from", "the devices' detectors" if res.state == "devices" else "SUMO"),
        ("round, median / p95 / max", f"{_ms(c.round_wall, .5)} / {_ms(c.round_wall, .95)} / {_ms(c.round_wall, 1)}"),
        ("round, process CPU, median / p95", f"{_ms(c.round_cpu, .5)} / {_ms(c.round_cpu, .95)}"),
        ("decision round, median / p95", f"{_ms(c.decision_wall, .5)} / {_ms(c.decision_wall, .95)}"),
        ("simulated / wall", f"{res.sim_time:,.0f} s / {res.wall_time:,.1f} s "
                             f"({res.sim_time / max(res.wall_time, 1e-9):,.1f}x real time)"),
    ]
    if res.state == "devices":
        rows.insert(-1, ("detector periods never read (lost polls)", f"{c.detector_gaps}"))
    for k, v in rows:
        t.add_row(k, v)
    for line in res.unsafe[:5]:
        t.add_row("[red]unsafe[/]", line)
    return t


def _s(x: float | None) -> str:
    return "never" if x is None else f"{x:.0f} s"


def fault_table(f: dict, unsafe: int) -> Table:  # noqa: ANN001 - deploy.cosim_faults.FaultRun.summary()
    """What the injected fault did to the devices it hit (worst device)."""
    t = Table(title=f"fault {f['fault']} ({f['devices']} device(s) hit)", show_header=True, header_style="bold")
    t.add_column("figure")
    t.add_column("value", justify="right")
    rows = [("fell back to its plan (from the fault's start)", _s(f["fell_back_s"])),
            ("heads exactly the plan's for a cycle from (from the fault's start)", _s(f["in_plan_s"])),
            ("target: unitBackupTime + 1 cycle", f"{f['target_s']:.0f} s"),
            ("devices in step with their plan within the target", f"{f['in_plan_within_target']} of {f['devices']}"),
            ("central control again (from the fault's end)", _s(f["resumed_s"])),
            ("unsafe states given to SUMO", f"{unsafe}")]
    if f["min_green_kept"] is not None:
        rows.append(("forced-off green kept its minimum green", "yes" if f["min_green_kept"] else "[red]no[/]"))
    for k, v in rows:
        t.add_row(k, v)
    for note in f["notes"]:
        t.add_row("note", note)
    return t


def register(app: typer.Typer) -> None:
    app.command("cosim")(cosim)
