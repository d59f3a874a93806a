"""Transit signal priority: buses get a green extension or an early green, within limits.

Run by :class:`sim.priority.PriorityLayer` (which documents the rules) every step while a run
declares bus priority.  Each bus line (a SUMO flow of vClass ``bus``) gets a schedule from its
first bus's route and stops; a bus later than ``late_after`` seconds against it (or, with
``buses = "all"``, every bus), within ``detect_distance`` of a signal, gets at most one
priority per signal per cycle.  With ``max_queue`` set, a priority is given only while no
in-lane it would delay (a lane of a link not green in the bus's stage) holds more than that
many halted vehicles: time is moved to the bus only where the other approaches do not need
it (conditional priority; on the Wulin AM peak, near saturation, unconditional priority for
every bus costs general traffic far more than the buses gain).  Under SUMO
programs the phase durations are changed and paid back (:meth:`BusPriority._pay_back`);
under the actuator the bus's stage replaces the controller's decision (:attr:`BusPriority.force`,
applied by :class:`sim.priority.PriorityActuator`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sim.preemption import GREEN


@dataclass(frozen=True)
class TransitPriority:
    """Bus priority limits (``enabled = False``: buses measured, no priority given)."""

    enabled: bool = True
    lines: tuple[str, ...] = ()  # empty: every bus line
    schedule_speed: float = 5.0  # m/s of running time between stops (18 km/h)
    late_after: float = 30.0
    detect_distance: float = 150.0
    max_extension: float = 15.0
    min_interval: float | None = None  # None: the signal's cycle (one priority per cycle)
    min_green: float = 5.0
    buses: str = "late"  # "late": behind schedule by more than late_after; "all": every bus
    max_queue: float | None = None  # only while no in-lane it delays has more halted vehicles


SIGNAL_RANGE_M = 80.0  # a bus halted this close to its next signal (not at a stop) waits for it


def bus_line(vid: str) -> str:
    """A bus's line: the id of the flow it belongs to (SUMO names a flow's vehicles ``flow.n``)."""
    return vid.rsplit(".", 1)[0]


def schedule_per_metre(conn: Any, vid: str, speed: float) -> float:
    """A line's scheduled seconds per metre, from one of its buses' route and stops: running
    time at ``speed`` m/s plus the dwell times, spread over the route."""
    veh, lane = conn.vehicle, conn.lane
    length = sum(lane.getLength(f"{e}_0") for e in veh.getRoute(vid))
    dwell = sum(max(s.duration, 0.0) for s in veh.getStops(vid))
    return (length / speed + dwell) / max(length, 1.0)


def lateness(elapsed: float, distance: float, per_metre: float) -> float:
    """Seconds behind schedule after ``elapsed`` s and ``distance`` m (negative: early)."""
    return elapsed - distance * per_metre


def waiting_at_signal(speed: float, metres: float, at_stop: bool) -> bool:
    """Whether a bus is held by its next signal: halted within :data:`SIGNAL_RANGE_M` of it,
    not at a stop (what ``bus_signal_delay`` counts)."""
    return speed < 0.1 and metres < SIGNAL_RANGE_M and not at_stop


@dataclass
class _Tsp:
    """A bus priority at a SUMO program: what was done, for which link, seconds, phase seen."""

    kind: str
    link: int
    seconds: float  # extension: still to pay back; early green: cut so far
    phase: int
    total: float = 0.0  # extension: seconds given
    others: float = 0.0  # extension: the plan's greens of the other stages


@dataclass
class _Bus:
    line: str
    depart: float
    lateness: float = 0.0
    signal_delay: float = 0.0
    granted: set[str] = field(default_factory=set)


class BusPriority:
    """Bus priority over one running simulation (see the module docstring).

    Attributes:
        grants: ``(time, signal, bus, kind)`` per priority given (``extension``, ``early-green``).
        force: Per signal index under the actuator: ``(stage, until, bus)``.
    """

    def __init__(self, settings: TransitPriority) -> None:
        self.settings = settings
        self.buses: dict[str, _Bus] = {}
        self.finished_buses: list[_Bus] = []
        self.schedules: dict[str, float] = {}  # line -> scheduled seconds per metre
        self.grants: list[tuple[float, str, str, str]] = []
        self.force: dict[int, tuple[int, float, str]] = {}
        self._last_grant: dict[str, float] = {}
        self._tsp: dict[str, _Tsp] = {}  # signal -> the priority being paid back (SUMO programs)

    def start(self, sim: Any, specs: Any, actuator: Any, preemptor: Any, step: float) -> None:
        """Attach to a running simulation (``specs``: the layout's SignalSpecs, in order)."""
        self.sim, self.conn = sim, sim.conn
        self.specs = {sp.id: sp for sp in specs}
        self.order = {sp.id: i for i, sp in enumerate(specs)}
        self.actuator, self.preemptor, self._step = actuator, preemptor, step

    def poll(self, t: float) -> None:
        """Follow every bus one step; give and pay back priorities."""
        veh = self.conn.vehicle
        tp = self.settings
        assert tp is not None
        for vid in self.conn.simulation.getDepartedIDList():
            if veh.getVehicleClass(vid) == "bus":
                line = bus_line(vid)
                if not tp.lines or line in tp.lines:
                    self.buses[vid] = _Bus(line, t)
                    self._schedule(line, vid)
        for vid in self.conn.simulation.getArrivedIDList():
            bus = self.buses.pop(vid, None)
            if bus is not None:
                self.finished_buses.append(bus)
        for vid, bus in self.buses.items():
            self._bus_step(vid, bus, t)
        self._expire(t)
        self._pay_back(t)

    def _schedule(self, line: str, vid: str) -> None:
        """The line's scheduled seconds per metre (from its first bus's route and stops)."""
        if line not in self.schedules:
            self.schedules[line] = schedule_per_metre(self.conn, vid, self.settings.schedule_speed)

    def _bus_step(self, vid: str, bus: _Bus, t: float) -> None:
        veh = self.conn.vehicle
        tp = self.settings
        assert tp is not None
        dist = veh.getDistance(vid)
        bus.lateness = lateness(t - bus.depart, dist, self.schedules[bus.line])
        upcoming = veh.getNextTLS(vid)
        if not upcoming:
            return
        tls, link, d, state = upcoming[0]
        speed = veh.getSpeed(vid)
        if waiting_at_signal(speed, d, veh.isStopped(vid)):
            bus.signal_delay += self._step
        late = tp.buses == "all" or bus.lateness > tp.late_after
        if not tp.enabled or not late or d > tp.detect_distance or tls not in self.specs or tls in bus.granted:
            return
        interval = tp.min_interval if tp.min_interval is not None else self.specs[tls].cycle
        if t - self._last_grant.get(tls, -math.inf) < interval or tls in self._tsp:
            return
        if self.preemptor.active(tls) or self.preemptor.mode(tls) != "idle":  # type: ignore[union-attr]
            return
        if tp.max_queue is not None and self._losing_queue(tls, link) > tp.max_queue:
            return
        eta = d / max(speed, 5.0)
        kind = self._grant(tls, link, state, eta, t, vid)
        if kind:
            bus.granted.add(tls)
            self._last_grant[tls] = t
            self.grants.append((t, tls, vid, kind))

    def _losing_queue(self, tls: str, link: int) -> float:
        """The longest queue (halted vehicles) on an in-lane whose links a priority for ``link``
        would delay: links not green in the bus's stage."""
        spec = self.specs[tls]
        stage = max(spec.stages, key=lambda st: st[link] in GREEN)
        lanes = {m.in_lane for m in spec.movements if stage[m.index] not in GREEN}
        halting = self.conn.lane.getLastStepHaltingNumber
        return float(max((halting(ln) for ln in lanes), default=0))

    def _grant(self, tls: str, link: int, state: str, eta: float, t: float, vid: str) -> str:
        """Extend or advance the bus's green at ``tls``; returns what was done ("" for nothing)."""
        tp = self.settings
        assert tp is not None
        spec = self.specs[tls]
        stage = max(range(len(spec.stages)), key=lambda k: spec.stages[k][link] in GREEN)
        if self.actuator is not None:  # an input the adaptive controller cannot override
            self.force[self.order[tls]] = (stage, t + eta + tp.max_extension, vid)
            return "extension" if state in GREEN else "early-green"
        tl = self.conn.trafficlight
        shown = tl.getRedYellowGreenState(tls)
        if shown not in spec.stages:
            return ""
        remaining = tl.getNextSwitch(tls) - t
        phase = tl.getPhase(tls)
        if shown[link] in GREEN:
            if remaining >= eta + 1.0:
                return ""
            ext = min(eta + 2.0 - remaining, tp.max_extension)
            tl.setPhaseDuration(tls, remaining + ext)
            others = sum(ph.duration for ph in spec.phases
                         if ph.state in spec.stages and ph.state[link] not in GREEN)
            self._tsp[tls] = _Tsp("extension", link, ext, phase, ext, others)
            return "extension"
        cut = self._cut(tl, tls, remaining, tp.max_extension)
        if cut < 1.0:
            return ""
        self._tsp[tls] = _Tsp("early-green", link, cut, phase)
        return "early-green"

    def _cut(self, tl: Any, tls: str, remaining: float, most: float) -> float:
        """End the green shown at ``tls`` early, never before its minimum green; the seconds cut."""
        tp = self.settings
        assert tp is not None
        cut = min(remaining - max(tp.min_green - tl.getSpentDuration(tls), 0.0), most)
        if cut >= 1.0:
            tl.setPhaseDuration(tls, remaining - cut)
        return cut if cut >= 1.0 else 0.0

    def _pay_back(self, t: float) -> None:
        """At each green after a priority: an extension is paid back by the next green; an
        early green cuts each green before the bus's to its minimum, and the bus's green gets
        every second cut (so a fixed-time cycle keeps its length and offset)."""
        tl = self.conn.trafficlight
        tp = self.settings
        assert tp is not None
        for tls, job in list(self._tsp.items()):
            if self.preemptor.mode(tls) != "idle":  # type: ignore[union-attr]
                del self._tsp[tls]  # an emergency vehicle took the signal: its rules rule
                continue
            k = tl.getPhase(tls)
            if k == job.phase:
                continue
            job.phase = k
            shown = tl.getRedYellowGreenState(tls)
            if shown not in self.specs[tls].stages:
                continue
            left = tl.getNextSwitch(tls) - t
            serves = shown[job.link] in GREEN
            if job.kind == "extension":
                if serves:  # back at the bus's stage: what is left unpaid is dropped
                    del self._tsp[tls]
                    continue
                # the other stages pay in proportion to their greens, down to minimum green
                share = job.total * (left + 1.0) / max(job.others, 1.0)
                job.seconds -= self._cut(tl, tls, left, min(job.seconds, share))
                if job.seconds >= 1.0:
                    continue
            elif serves:  # the bus's green: the cut seconds come back
                tl.setPhaseDuration(tls, left + job.seconds)
            else:  # another stage before the bus's: cut it too (not below its minimum)
                job.seconds += self._cut(tl, tls, left, tp.max_extension - job.seconds)
                continue
            del self._tsp[tls]

    def _expire(self, t: float) -> None:
        """Bus priorities under the actuator end with their time, or once the bus has passed."""
        ids = list(self.specs)
        for s, (_, until, vid) in list(self.force.items()):
            nxt = self.conn.vehicle.getNextTLS(vid)[:1] if vid in self.buses else []
            if t >= until or not nxt or nxt[0][0] != ids[s]:
                del self.force[s]

    def rows(self) -> list[dict[str, Any]]:
        """Per bus (finished or still running): line, lateness, delay halted at signals."""
        return [{"vehicle": vid, "line": b.line, "lateness": b.lateness,
                 "signal_delay": b.signal_delay, "priorities": float(len(b.granted))}
                for vid, b in [*((f"done{i}", b) for i, b in enumerate(self.finished_buses)),
                               *self.buses.items()]]
