"""Turn a :class:`~experiments.spec.Variation` into what :func:`run_episode` takes.

* demand scale and time window change the :class:`~sim.scenario.Scenario` (a new frozen value);
* a timing-plan file becomes a SUMO ``tlLogic`` additional file;
* closures, incidents and signal failures become *hooks*: the episode loop calls
  ``hook(sim, time)`` at every decision interval, and each event starts at the first call at or
  after its ``at`` and ends at the first call at or after ``at + duration``.  The times an
  event really started and ended are kept in :attr:`EventHook.log`.  With SUMO-native
  controllers the loop also stops at :meth:`EventHook.next_time`, so events start and end at
  their declared times (to the step); with actuator-driven ones they differ by at most one
  decision interval (5 s), because the loop calls hooks at decisions.

The SUMO calls themselves live in :mod:`sim.variations`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from experiments.spec import Variation, effective_scenario
from sim import variations as simvar
from sim.errors import WulinError
from sim.scenario import Scenario
from sim.simulation import Simulation


@dataclass
class _Event:
    kind: str
    target: str
    start: float
    end: float | None
    apply: Any
    revert: Any = None
    refresh: Any = None
    started: float | None = None
    ended: float | None = None
    token: Any = None


@dataclass
class EventHook:
    """Applies a variation's timed events; pass it in ``run_episode(hooks=[...])``.

    Attributes:
        log: One row per event: kind, target, declared and actual start / end times.
    """

    events: list[_Event] = field(default_factory=list)

    def __call__(self, sim: Simulation, time: float) -> None:
        for ev in self.events:
            if ev.ended is not None:
                continue
            if ev.started is None:
                if time + 1e-9 < ev.start:
                    continue
                if ev.end is not None and time >= ev.end:  # the whole event fell between calls
                    ev.started = ev.ended = time
                    continue
                token = ev.apply(sim)
                if token is None and ev.kind == "incident":
                    continue  # no vehicle on the lane yet: try at the next call
                ev.token, ev.started = token, time
            elif ev.end is not None and time + 1e-9 >= ev.end:
                if ev.revert is not None:
                    ev.revert(sim, ev.token)
                ev.ended = time
            elif ev.refresh is not None:
                ev.refresh(sim)

    def next_time(self, time: float) -> float:
        """The next declared start or end after ``time`` (``inf`` when none): a loop that
        calls the hook then too applies every event on time."""
        out = float("inf")
        for ev in self.events:
            if ev.ended is not None:
                continue
            t = ev.start if ev.started is None else ev.end
            if t is not None and time + 1e-9 < t < out:
                out = t
        return out

    @property
    def log(self) -> list[dict[str, Any]]:
        return [
            {"kind": e.kind, "target": e.target, "start": e.start, "end": e.end,
             "started": e.started, "ended": e.ended,
             "detail": e.token if isinstance(e.token, str) else None}
            for e in self.events
        ]


def _closure_event(lanes: tuple[str, ...], edges: tuple[str, ...], start: float,
                   end: float | None, kind: str = "closure") -> _Event:
    seen: set[str] = set()  # vehicles already checked for a route through a closed edge

    def apply(sim: Simulation) -> dict[str, tuple[str, ...]]:
        ids = list(lanes)
        for e in edges:
            ids += simvar.edge_lanes(sim, e)
        saved = simvar.close_lanes(sim, dict.fromkeys(ids))
        if edges:
            simvar.reroute_around(sim, edges, seen)
        return saved

    def refresh(sim: Simulation) -> None:
        if edges:  # vehicles inserted since the last call may still be routed through
            simvar.reroute_around(sim, edges, seen)

    def revert(sim: Simulation, saved: dict[str, tuple[str, ...]]) -> None:
        simvar.reopen_lanes(sim, saved)

    target = ",".join((*edges, *lanes))
    return _Event(kind, target, start, end, apply, revert, refresh)


@dataclass(frozen=True)
class PreparedRun:
    """A variation made concrete for one scenario."""

    scenario: Scenario
    hook: EventHook | None
    additional_files: tuple[Path, ...]
    extra_args: tuple[str, ...]
    priority: Any = None  # a sim.priority.PriorityLayer, or None


def prepare(scenario: Scenario, variation: Variation, workdir: Path,
            pedestrian_street_edges: tuple[str, ...] = ()) -> PreparedRun:
    """Apply ``variation`` to ``scenario``; files it needs are written to ``workdir``."""
    sc = effective_scenario(scenario, variation)
    events: list[_Event] = []
    for c in variation.closures:
        start = sc.begin if c.at is None else c.at
        events.append(_closure_event(c.lanes, c.edges, start,
                                     None if c.duration is None else start + c.duration))
    if variation.pedestrian_street:
        events.append(_closure_event((), pedestrian_street_edges, sc.begin, None, "pedestrian-street"))
    for inc in variation.incidents:
        lane, pos, dur = inc.lane, inc.position, inc.duration

        def apply_incident(sim: Simulation, lane: str = lane, pos: float | None = pos,
                           dur: float = dur) -> str | None:
            return simvar.stop_vehicle(sim, lane, pos, dur)

        # the stop itself ends after its duration (SUMO resumes the vehicle): nothing to revert
        events.append(_Event("incident", lane, inc.at, inc.at + dur, apply_incident))
    for f in variation.signal_failures:
        tls = f.signal
        events.append(_Event(
            "signal-failure", tls, f.at, None if f.duration is None else f.at + f.duration,
            apply=lambda sim, tls=tls: simvar.flash_signal(sim, tls),
            revert=lambda sim, program, tls=tls: simvar.restore_signal(sim, tls, program),
            refresh=lambda sim, tls=tls: simvar.keep_flashing(sim, tls),
        ))
    extra: list[Path] = []
    if variation.plan is not None:
        extra.append(_plan_file(variation.plan, workdir))
    layer = None
    if variation.has_priority:
        layer, ev_file = _priority_layer(variation, workdir)
        if ev_file is not None:
            extra.append(ev_file)
    return PreparedRun(
        scenario=sc,
        hook=EventHook(events) if events else None,
        additional_files=tuple(extra),
        # a closure can leave some trips without any route: SUMO then drops them with a
        # warning (counted as not inserted) instead of ending the run with an error
        extra_args=("--ignore-route-errors", "true") if (variation.closures or variation.pedestrian_street) else (),
        priority=layer,
    )


def _priority_layer(variation: Variation, workdir: Path) -> tuple[Any, Path | None]:
    """The variation's emergency vehicles (an additional file) and priority layer."""
    from dataclasses import asdict

    from sim.priority import (
        EmergencyRun,
        PreemptSettings,
        PriorityLayer,
        TransitPriority,
        write_emergency_vehicles,
    )

    runs = tuple(
        EmergencyRun(f"emergency{j}.{k}", tuple(em.route), em.depart + k * em.every, em.vehicle)
        for j, em in enumerate(variation.emergency) for k in range(em.repeats))
    pre = PreemptSettings(**asdict(variation.preemption)) if variation.preemption else None
    bus = variation.bus_priority
    transit = TransitPriority(**{**asdict(bus), "lines": tuple(bus.lines)}) if bus else None
    ev_file = None
    if runs:
        workdir.mkdir(parents=True, exist_ok=True)
        ev_file = write_emergency_vehicles(workdir / "emergency.add.xml", runs)
    return PriorityLayer(runs, pre, transit), ev_file


def _plan_file(plan: Path, workdir: Path) -> Path:
    """A SUMO tlLogic additional file for a plan file (JSON plans are exported)."""
    if plan.suffix == ".xml":
        return plan
    from controllers.plan import load_plans, plans_to_additional

    plans = load_plans(plan)
    if not plans:
        raise WulinError(f"{plan}: no timing plan in the file; add at least one")
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / f"plan-{plan.stem}.add.xml"
    out.write_text(plans_to_additional(plans, program_id="whatif"))
    return out
