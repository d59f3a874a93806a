"""``wulin plan schedule ...``: time-of-day plan sets, from plan files to the controllers.

``make`` builds per-signal schedules from one plan file per period; ``show`` and ``export``
read a folder of plan sets (the optimiser's output or ``make``'s); ``verify`` simulates it
against a baseline and writes the evidence; ``propose``, ``approve``, ``reject``, ``deploy``,
``rollback`` and ``list`` take a set through the store (:mod:`deploy.plan_sets`,
:mod:`deploy.set_service`) as ``wulin plan ...`` takes a plan.  Heavy imports happen inside
the commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from wulin.cmd_plan import (
    ACT_TIMEOUT_OPT,
    PW_STDIN_OPT,
    STORE_OPT,
    TOKEN_OPT,
    USER_OPT,
    _conflicts,
    _login,
    _options,
    _read_evidence,
    _report,
    _state,
    _store,
    _term_as_interrupt,
    console,
    plan_app,
)
from wulin.options import NETWORKS_OPT

schedule_app = typer.Typer(help="Time-of-day plan sets: which plan when, simulated, approved and deployed.",
                           no_args_is_help=True)
SETS_ARG = typer.Argument(..., help="Folder of plans and per-signal schedules (or one file).")


def register(app: typer.Typer) -> None:
    plan_app.add_typer(schedule_app, name="schedule")


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, "utf-8")
    tmp.replace(path)


@schedule_app.command("make")
def make(
    at: list[str] = typer.Option(..., "--at", help="HH:MM=PLANS.json: from this time of day these plans run "
                                 "(repeat; one at 00:00)."),
    out: Path = typer.Option(..., "--out", help="Folder for the plan files and one schedule per signal."),
    signals: str = typer.Option("", "--signals", help="Only these signals (comma separated)."),
) -> None:
    """Per-signal time-of-day schedules from one plan file per period."""
    from controllers.plan import PlanSet, TimeOfDaySchedule, load_plans, parse_clock
    from sim.clock import TIME_OF_DAY_LATEST, format_clock
    from sim.errors import WulinError

    periods: list[tuple[float, str, list[Any]]] = []
    for item in at:
        when, sep, file = item.partition("=")
        if not sep or not file:
            raise WulinError(f"--at {item!r}: expected HH:MM=PLANS.json")
        t = parse_clock(when, f"--at {item!r}", latest=TIME_OF_DAY_LATEST)
        periods.append((t, file, load_plans(file)))
    periods.sort(key=lambda p: p[0])
    wanted = {s.strip() for s in signals.split(",") if s.strip()}
    by_period = [{p.signal_id: p for p in plans} for _, _, plans in periods]
    ids = sorted(set.intersection(*(set(d) for d in by_period)) if by_period else set())
    missing = sorted(set.union(*(set(d) for d in by_period)) - set(ids)) if by_period else []
    if wanted:
        unknown = sorted(wanted - set(ids))
        if unknown:
            raise WulinError(f"--signals: {', '.join(unknown)} not in every --at plan file")
        ids = [i for i in ids if i in wanted]
    elif missing:
        raise WulinError(f"signal(s) {', '.join(missing[:8])} are not in every --at plan file; "
                         "name the ones to schedule with --signals")
    sets = []
    for sid in ids:
        entries = tuple((format_clock(t)[:5], d[sid].plan_hash()) for (t, _, _), d in zip(periods, by_period, strict=True))
        plans = {d[sid].plan_hash(): d[sid] for d in by_period}  # a plan may run in several periods
        sets.append(PlanSet(TimeOfDaySchedule(sid, entries), tuple(plans.values())))
    for (t, _, _), d in zip(periods, by_period, strict=True):
        _write_atomic(out / f"plans-{format_clock(t)[:5].replace(':', '')}.json",
                      json.dumps([d[sid].to_dict() for sid in ids], indent=1, sort_keys=True) + "\n")
    for ps in sets:
        _write_atomic(out / "schedules" / f"{ps.signal_id}.schedule.json", ps.schedule.to_json() + "\n")
    console.print(f"{len(sets)} plan set(s), {len(periods)} period(s) -> {out}", highlight=False)


@schedule_app.command("show")
def show(sets: Path = SETS_ARG) -> None:
    """Each signal's schedule: which plan when, with cycle and splits."""
    from controllers.plan import load_plan_sets

    t = Table(show_header=True, header_style="bold")
    for c in ("signal", "set hash", "from", "plan", "cycle", "splits", "offset"):
        t.add_column(c, no_wrap=c in ("set hash", "from"))
    for sid, ps in load_plan_sets(sets).items():
        for k, (when, h) in enumerate(ps.schedule.entries):
            p = ps.plan(h)
            t.add_row(sid if k == 0 else "", ps.set_hash()[:12] if k == 0 else "", when,
                      f"{p.name or '-'} {p.short_hash}", f"{p.cycle:g}", "/".join(f"{x:g}" for x in p.splits),
                      f"{p.offset:g}")
    console.print(t)


@schedule_app.command("export")
def export(sets: Path = SETS_ARG,
           out: Path = typer.Option(..., "--out", help="SUMO additional file to write (.add.xml)."),
           start: str = typer.Option("00:00", "--start", help="Simulation start: its program is loaded last.")) -> None:
    """SUMO programs with switch times: a tlLogic per plan and a WAUT per signal."""
    from controllers.plan import load_plan_sets, parse_clock, plan_sets_to_additional

    found = load_plan_sets(sets)
    _write_atomic(out, plan_sets_to_additional(found.values(), start=parse_clock(start, "--start")))
    n = sum(len(ps.plans) for ps in found.values())
    console.print(f"{n} programs and {len(found)} WAUT(s) -> {out}", highlight=False)


@schedule_app.command("verify")
def verify(
    scenario: str = typer.Argument(..., help="Scenario id or .toml (a day scenario: wulin-day-v1)."),
    sets: Path = SETS_ARG,
    baseline: str = typer.Option("field", "--baseline", help="Controller the sets are compared with."),
    seeds: str = typer.Option("1,2,3", "--seeds", help="SUMO seeds, comma separated."),
    out: Path = typer.Option(..., "--out", help="Evidence JSON to write (attach with `propose --evidence`)."),
    networks: list[Path] | None = NETWORKS_OPT,
) -> None:
    """Simulate the plan sets and a baseline on the same seeds; write the summary as evidence."""
    from controllers.plan import load_plan_sets
    from experiments.episode import run_episode
    from sim.kpi import summarise
    from sim.scenario import load_scenario
    from sim.simulation import check_seed

    found = load_plan_sets(sets)
    seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    for s in seed_list:
        check_seed(s, "--seeds")
    sc = load_scenario(scenario)
    runs: dict[str, list[dict[str, float]]] = {"schedule": [], baseline: []}
    for seed in seed_list:
        for label, ctl, params in (("schedule", "tod-schedule", {"plans": str(sets)}), (baseline, baseline, {})):
            res = run_episode(sc, ctl, seed=seed, controller_params=params)
            runs[label].append(summarise(res.trips))
            console.print(f"{label:>10} seed {seed}: mean time loss {runs[label][-1]['mean_time_loss']:.1f} s "
                          f"({res.wall_time:.0f} s wall)", highlight=False)
    ev = evidence_summary(sc.id, seed_list, baseline, runs, found)
    _write_atomic(out, json.dumps(ev, indent=1, sort_keys=True) + "\n")
    k = ev["kpis"]
    console.print(f"mean time loss: schedule {k['mean_time_loss (schedule)']['mean']:.1f} s, {baseline} "
                  f"{k[f'mean_time_loss ({baseline})']['mean']:.1f} s -> {out}", highlight=False)


def evidence_summary(scenario: str, seeds: list[int], baseline: str, runs: dict[str, list[dict[str, float]]],
                     sets: dict[str, Any]) -> dict[str, Any]:
    """The verification run as evidence: KPI means with 95 % intervals, seeds, objective, schedule."""
    import statistics

    def kpi(values: list[float]) -> dict[str, float]:
        mean = statistics.fmean(values)
        ci = 1.96 * statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0
        return {"mean": round(mean, 2), "ci": round(ci, 2)}

    kpis = {f"{name} ({label})": kpi([r[name] for r in rows]) for name in ("mean_time_loss", "mean_travel_time")
            for label, rows in runs.items()}
    named = {json.dumps([[t, ps.plan(h).name] for t, h in ps.schedule.entries]) for ps in sets.values()}
    schedule = (json.loads(named.pop()) if len(named) == 1 else
                [[t, "per signal"] for t in sorted({t for ps in sets.values() for t, _ in ps.schedule.entries})])
    return {"kind": "verification", "scenario": scenario, "seeds": ",".join(map(str, seeds)),
            "objective": "mean_time_loss", "baseline": baseline, "kpis": kpis,
            "schedule": schedule, "signals": len(sets)}


@schedule_app.command("propose")
def propose(
    sets: Path = SETS_ARG,
    signal: str | None = typer.Option(None, "--signal", help="Only this signal's set."),
    evidence: Path | None = typer.Option(None, "--evidence", help="The verification run (`schedule verify`)."),
    net: str | None = typer.Option(None, "--net", help="The signals' network (default: found on the search path)."),
    networks: list[Path] | None = NETWORKS_OPT,
    note: str = typer.Option("", "--note", help="Why these plans."),
    user: str | None = USER_OPT, token: str | None = TOKEN_OPT, password_stdin: bool = PW_STDIN_OPT,
    store: str = STORE_OPT,
) -> None:
    """Store plan sets as proposed (an engineer's step), with conflicts and evidence."""
    from controllers.plan import load_plan_sets
    from sim.errors import WulinError

    found = load_plan_sets(sets)
    if signal is not None:
        if signal not in found:
            raise WulinError(f"{sets}: no plan set for signal {signal!r}")
        found = {signal: found[signal]}
    ev = _read_evidence(evidence) if evidence is not None else None
    conflicts = {sid: _conflicts(sid, net) for sid in found}
    s = _store(store)
    who = _login(s, user, token, password_stdin)
    for sid, ps in found.items():
        matrix, source = conflicts[sid]
        rec = s.propose_set(ps, who, evidence=ev, note=note, conflicts=matrix, conflicts_source=source)
        console.print(f"proposed {rec.hash}  {sid}  {rec.name}", highlight=False)


@schedule_app.command("list")
def list_sets(signal: str | None = typer.Option(None, "--signal"), state: str | None = typer.Option(None, "--state"),
              store: str = STORE_OPT) -> None:
    """Plan sets in the store."""
    t = Table(show_header=True, header_style="bold")
    t.add_column("hash", no_wrap=True, min_width=12)
    for c in ("signal", "schedule", "state", "proposed by", "approved by"):
        t.add_column(c)
    for r in _store(store).plan_sets(signal, state):
        t.add_row(r.hash[:12], r.signal_id, r.name, _state(r.state), r.proposed_by, r.approved_by or "-")
    console.print(t)


@schedule_app.command("approve")
def approve(ref: str = typer.Argument(..., help="Plan set hash (or a unique prefix)."),
            user: str | None = USER_OPT, token: str | None = TOKEN_OPT, password_stdin: bool = PW_STDIN_OPT,
            store: str = STORE_OPT) -> None:
    """Approve a proposed plan set (a supervisor other than the proposer); every plan is checked."""
    s = _store(store)
    r = s.approve_set(ref, _login(s, user, token, password_stdin))
    console.print(f"approved {r.hash} by {r.approved_by} (signed; binds this set and its plans)", highlight=False)


@schedule_app.command("reject")
def reject(ref: str = typer.Argument(...), reason: str = typer.Option(..., "--reason"),
           user: str | None = USER_OPT, token: str | None = TOKEN_OPT, password_stdin: bool = PW_STDIN_OPT,
           store: str = STORE_OPT) -> None:
    """Reject a proposed or approved plan set, with a reason."""
    s = _store(store)
    console.print(f"rejected {s.reject_set(ref, _login(s, user, token, password_stdin), reason).hash}")


@schedule_app.command("deploy")
def deploy(ref: str = typer.Argument(..., help="Hash of an approved plan set."),
           sets: Path | None = typer.Option(None, "--sets", help="The plan sets you mean to send: the set's hash "
                                            "must be the approved one."),
           activation_timeout: float = ACT_TIMEOUT_OPT,
           user: str | None = USER_OPT, token: str | None = TOKEN_OPT, password_stdin: bool = PW_STDIN_OPT,
           store: str = STORE_OPT) -> None:
    """Send an approved plan set to its controller: patterns plus the time-base schedule (NTCIP)."""
    from controllers.plan import load_plan_sets
    from deploy import set_service

    s = _store(store)
    who = _login(s, user, token, password_stdin)
    ps = None
    if sets is not None:
        found = load_plan_sets(sets)
        rec = s.plan_set(ref)
        ps = found.get(rec.signal_id)
        if ps is None:
            from sim.errors import WulinError

            raise WulinError(f"{sets}: no plan set for signal {rec.signal_id!r}")
    console.print(f"deploying plan set {ref} as {who.name}")
    with _term_as_interrupt():
        out = set_service.deploy_set(s, ref, who, _options(activation_timeout), ps)
    _report(out)


@schedule_app.command("rollback")
def rollback(ref: str = typer.Argument(..., help="Hash of a deployed plan set."),
             activation_timeout: float = ACT_TIMEOUT_OPT,
             user: str | None = USER_OPT, token: str | None = TOKEN_OPT, password_stdin: bool = PW_STDIN_OPT,
             store: str = STORE_OPT) -> None:
    """Put the controller back as it was before the set was deployed (a supervisor's step)."""
    from deploy import set_service

    s = _store(store)
    who = _login(s, user, token, password_stdin)
    with _term_as_interrupt():
        out = set_service.rollback_set(s, ref, who, _options(activation_timeout))
    _report(out)
