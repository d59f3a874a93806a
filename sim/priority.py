"""Emergency-vehicle preemption and transit signal priority, as one layer over any controller.

:class:`PriorityLayer` is what the episode loop runs beside the controller when a run declares
emergency vehicles (:class:`EmergencyRun`) or bus priority (:class:`TransitPriority`):

* **Emergency vehicles** (SUMO vClass ``emergency`` with its ``bluelight`` device, written as
  an additional file by :func:`write_emergency_vehicles`) are watched every step from their
  departure; each signal on the route is requested (:class:`sim.preemption.Preemptor`) when
  the vehicle is ``detect_distance`` metres before it (``mode = "detection"``), or, in
  ``mode = "green-wave"``, when its expected arrival (distance over the larger of its speed
  and ``wave_speed``) is within the time the signal needs to clear and give a green
  (yellow + all-red + minimum green + ``margin``), so signals far ahead are set up in time.
  A signal is cleared once the vehicle has passed it.
* **Bus priority**: each bus line (a SUMO flow of vClass ``bus``) gets a schedule from its
  route and stops: running time = route length / ``schedule_speed`` + its dwell times,
  spread evenly over the route's length; a bus is late when it has taken longer than that
  to cover its distance so far (``late_after`` seconds of slack); ``buses = "all"``: every bus
  qualifies.  Such a bus within ``detect_distance`` of a signal gets at most one priority per
  signal per cycle (``min_interval``), and with ``max_queue`` only while no in-lane it would
  delay holds more halted vehicles than that (conditional priority):
  a green extension (its green held up to ``max_extension`` s longer) or an early green (the
  conflicting green cut, never below its minimum green).  Under SUMO programs this is done
  with phase durations and paid back at the next green of the other stage (fixed-time plans
  keep their cycle and offsets); under actuator-driven controllers the bus's stage is
  requested in place of the controller's decision while the priority lasts (the actuator
  keeps minimum greens and clearances): an input the adaptive controller cannot override.
  (The bus side lives in :mod:`sim.transit`; this module runs it.)
* **Audit**: every step while anything is active, the states SUMO shows at the signals of
  the emergency routes are checked: conflicting protected greens, a green going to red
  without yellow, and a green begun while a conflicting link was still green or yellow
  (all-red skipped) are counted (:attr:`PriorityLayer.audit`).

The loop integration: SUMO-native controllers get :meth:`PriorityLayer.poll` at every
:meth:`PriorityLayer.next_time`; actuator-driven ones get the actuator wrapped in
:class:`PriorityActuator`, which polls the layer at the same times and filters decisions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from sim.preemption import GREEN, Preemptor
from sim.transit import BusPriority, TransitPriority

__all__ = ["EmergencyRun", "PreemptSettings", "PriorityActuator", "PriorityLayer",
           "TransitPriority", "write_emergency_vehicles"]

EV_TYPE = "wulin_emergency"


@dataclass(frozen=True)
class EmergencyRun:
    """One emergency vehicle: its route (edge ids), departure time and vehicle type."""

    id: str
    edges: tuple[str, ...]
    depart: float
    vehicle: str = "ambulance"  # a key of :data:`VEHICLES`


@dataclass(frozen=True)
class PreemptSettings:
    """How signals are preempted (see :mod:`sim.preemption` for the rules)."""

    enabled: bool = True
    mode: str = "detection"  # or "green-wave"
    detect_distance: float = 250.0
    wave_speed: float = 11.0
    margin: float = 10.0
    min_green: float = 5.0
    max_hold: float = 180.0
    recovery: str = "best-way"


# vClass emergency vTypes.  SUMO's own defaults for vClass emergency (SUMO 1.28, read back over
# TraCI: length 6.5 m, accel 2.6 m/s2, decel 4.5 m/s2, maxSpeed 200 km/h, speedFactor 1 with no
# deviation, sigma 0.5) are kept; only a body SUMO models as another class is taken from that
# class's defaults (sumo.dlr.de/docs/Vehicle_Type_Parameter_Defaults.html): a police car is a
# passenger car (length 5 m), a fire engine a truck (7.1 m, accel 1.3, decel 4, 130 km/h).
# SUMO models driving above the speed limit only through a speedFactor the user sets
# (sumo.dlr.de/docs/Simulation/Emergency.html); none is set, so every emergency vehicle keeps
# to the limit (the ceiling on what preemption can save).
VEHICLES: dict[str, dict[str, str]] = {
    "ambulance": {"guiShape": "emergency"},
    "fire-engine": {"guiShape": "firebrigade", "length": "7.1", "accel": "1.3", "decel": "4",
                    "maxSpeed": "36.11"},
    "police": {"guiShape": "police", "length": "5"},
}


def general_traffic(trips: Any) -> Any:
    """The trips of general traffic: every vehicle but emergency vehicles and buses."""
    return trips[~(trips.vtype.str.startswith(EV_TYPE) | (trips.vtype == "bus"))]


def emergency_trips(trips: Any) -> Any:
    """The emergency vehicles' trips."""
    return trips[trips.vtype.str.startswith(EV_TYPE)]


def route_gap(net_file: Path | str, edges: tuple[str, ...]) -> tuple[int, str, str] | None:
    """The first pair of route edges that do not connect: (position, edge, next edge)."""
    from sim.topology import _read_net

    net = _read_net(Path(net_file))
    for k in range(len(edges) - 1):
        nxt = {e.getID() for e in net.getEdge(edges[k]).getOutgoing()}
        if edges[k + 1] not in nxt:
            return k, edges[k], edges[k + 1]
    return None


def write_emergency_vehicles(path: Path, runs: tuple[EmergencyRun, ...]) -> Path:
    """A SUMO additional file with the emergency vType (bluelight device) and the vehicles."""
    lines = ["<additional>"]
    for kind in sorted({r.vehicle for r in runs}):
        body = "".join(f' {k}="{v}"' for k, v in VEHICLES[kind].items())
        lines += [f'    <vType id="{EV_TYPE}-{kind}" vClass="emergency"{body}>',
                  '        <param key="has.bluelight.device" value="true"/>', "    </vType>"]
    for run in sorted(runs, key=lambda r: r.depart):
        lines.append(f"    <vehicle id={quoteattr(run.id)} type=\"{EV_TYPE}-{run.vehicle}\" "
                     f"depart=\"{run.depart:g}\" departLane=\"best\" departSpeed=\"max\">")
        lines.append(f"        <route edges={quoteattr(' '.join(run.edges))}/>")
        lines.append("    </vehicle>")
    lines.append("</additional>")
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class _EV:
    run: EmergencyRun
    state: str = "pending"  # running, done
    requested: set[str] = field(default_factory=set)
    stoplines: dict[str, float] = field(default_factory=dict)  # signal -> distance on route
    trace: list[tuple[float, float, float]] = field(default_factory=list)  # t, distance, speed
    signal_states: list[tuple[float, str, str]] = field(default_factory=list)  # t, signal, char
    stops: int = 0
    moving: bool = True


class PriorityLayer:
    """Preemption and bus priority over any controller (see the module docstring).

    Args:
        emergency: The emergency vehicles (``()`` for none).
        preempt: How signals are preempted.
        transit: Bus priority (``None`` for none).
    """

    def __init__(self, emergency: tuple[EmergencyRun, ...] = (), preempt: PreemptSettings | None = None,
                 transit: TransitPriority | None = None) -> None:
        self.runs = tuple(emergency)
        self.settings = preempt or PreemptSettings()
        self.transit = transit
        self.evs = {r.id: _EV(r) for r in self.runs}
        self.bus = BusPriority(transit) if transit is not None else None
        self.audit = {"steps": 0, "conflicting_greens": 0, "green_to_red": 0, "no_all_red": 0}
        self.preemptor: Preemptor | None = None
        self._prev: dict[str, str] = {}
        self._owned: set[str] = set()
        self._step = 1.0

    # ------------------------------------------------------------------ set-up
    def start(self, sim: Any, specs: Any, actuator: Any = None) -> None:
        """Attach to a running simulation (``specs``: the layout's SignalSpecs, in order)."""
        self.sim = sim
        self.conn = sim.conn
        self.specs = {sp.id: sp for sp in specs}
        self.order = {sp.id: i for i, sp in enumerate(specs)}
        self.actuator = actuator
        self._step = float(getattr(getattr(sim, "scenario", None), "step_length", 1.0))
        s = self.settings
        self.preemptor = Preemptor(sim, specs, actuator, recovery=s.recovery,
                                   min_green=s.min_green, max_hold=s.max_hold)
        self._first_depart = min((r.depart for r in self.runs), default=math.inf)
        if self.bus is not None:
            self.bus.start(sim, specs, actuator, self.preemptor, self._step)

    def next_time(self, t: float) -> float:
        """When the layer must next be polled: every step while anything may happen."""
        if self.transit is not None or (self.preemptor is not None and self.preemptor.busy):
            return t + self._step
        if any(ev.state != "done" for ev in self.evs.values()):
            return max(t + self._step, self._first_depart)
        return math.inf

    # ------------------------------------------------------------------ polling
    def poll(self, t: float) -> None:
        """Advance everything to the simulation time ``t``."""
        pre = self.preemptor
        assert pre is not None
        for ev in self.evs.values():
            if ev.state != "done":
                self._watch_ev(ev, t)
        if self.bus is not None:
            self.bus.poll(t)
        pre.poll(t)
        if any(ev.state == "running" for ev in self.evs.values()) or pre.busy:
            self._audit()

    def _watch_ev(self, ev: _EV, t: float) -> None:
        veh = self.conn.vehicle
        vid = ev.run.id
        if ev.state == "pending":
            if t + 1e-9 < ev.run.depart or vid not in veh.getIDList():
                return
            ev.state = "running"
        try:
            upcoming = veh.getNextTLS(vid)
            dist = veh.getDistance(vid)
            speed = veh.getSpeed(vid)
        except Exception:  # arrived (or removed): every signal it held is released
            ev.state = "done"
            held, ev.requested = ev.requested, set()
            for sig in held:
                self._release(sig, t)
            return
        ev.trace.append((t, dist, speed))
        if speed < 0.1 and ev.moving:
            ev.stops += 1
        ev.moving = speed >= 0.1
        ahead = {}
        for tls, link, d, state in upcoming:
            if tls not in ahead:
                ahead[tls] = (link, d)
                ev.stoplines.setdefault(tls, dist + d)
                ev.signal_states.append((t, tls, state))
        for sig in [s for s in ev.requested if s not in ahead]:  # passed
            ev.requested.discard(sig)
            self._release(sig, t)
        if not self.settings.enabled:
            return
        for tls, (link, d) in ahead.items():
            if tls in ev.requested or tls not in self.specs:
                continue
            if self._due(tls, d, speed) and self.preemptor.request(tls, [link], t):  # type: ignore[union-attr]
                ev.requested.add(tls)

    def _release(self, sig: str, t: float) -> None:
        """Clear ``sig`` unless another emergency vehicle still relies on it."""
        if not any(sig in other.requested for other in self.evs.values()):
            self.preemptor.clear(sig, t)  # type: ignore[union-attr]

    def _due(self, tls: str, d: float, speed: float) -> bool:
        s = self.settings
        if s.mode == "detection":
            return d <= s.detect_distance
        timing = self.preemptor.signals[tls].timing  # type: ignore[union-attr]
        lead = timing.yellow + timing.all_red + timing.min_green + s.margin
        return d / max(speed, s.wave_speed) <= lead

    # ------------------------------------------------------------------ buses
    # ------------------------------------------------------------------ audit
    def _audit(self) -> None:
        """Check the states SUMO shows at the emergency routes' signals (this step's)."""
        tl = self.conn.trafficlight
        pre = self.preemptor
        assert pre is not None
        sigs = {s for ev in self.evs.values() for s in ev.stoplines if s in self.specs}
        owned = {s for s in pre.signals if pre.active(s)}
        a = self.audit
        a["steps"] += 1
        for sig in sigs | owned:
            cur = tl.getRedYellowGreenState(sig)
            prev = self._prev.get(sig)
            self._prev[sig] = cur
            spec = self.specs[sig]
            if spec.conflicting_greens(cur):
                a["conflicting_greens"] += 1
            # clearances are checked where the layer changed the signal (now or the step
            # before); the programs' own changes are the controller's (and its checks')
            if prev is None or prev == cur or not (sig in owned or sig in self._owned):
                continue
            a["green_to_red"] += int(not clearance_ok(prev, cur))
            a["no_all_red"] += int(not all_red_ok(prev, cur, spec.conflicts))
        self._owned = owned

    # ------------------------------------------------------------------ results
    @property
    def grants(self) -> list[tuple[float, str, str, str]]:
        """Bus priorities given: ``(time, signal, bus, kind)``."""
        return self.bus.grants if self.bus is not None else []

    @property
    def force(self) -> dict[int, tuple[int, float, str]]:
        """Bus priorities under the actuator: signal index -> ``(stage, until, bus)``."""
        return self.bus.force if self.bus is not None else {}

    def bus_rows(self) -> list[dict[str, Any]]:
        """Per bus (finished or still running): line, lateness, delay halted at signals."""
        return self.bus.rows() if self.bus is not None else []

    def emergency_rows(self) -> list[dict[str, Any]]:
        """Per emergency vehicle: travel time, stops, signals preempted."""
        rows = []
        for ev in self.evs.values():
            tr = ev.trace
            rows.append({"vehicle": ev.run.id, "depart": ev.run.depart,
                         "travel_time": (tr[-1][0] - tr[0][0] + self._step) if tr else math.nan,
                         "stops": float(ev.stops), "signals": float(len(ev.stoplines)),
                         "finished": ev.state == "done"})
        return rows

def clearance_ok(prev: str, cur: str) -> bool:
    """False when a link goes from green straight to red (no yellow between)."""
    return not any(p in GREEN and c in "rs" for p, c in zip(prev, cur, strict=False))


def all_red_ok(prev: str, cur: str, conflicts: Any) -> bool:
    """False when a link turns protected green while a conflicting link is still green or
    yellow (in the step before or now): the all-red was skipped."""
    n = len(cur)
    for i in range(n):
        if cur[i] == "G" and prev[i] != "G" and any(
                conflicts[i][j] and (prev[j] in "Gy" or cur[j] == "y") for j in range(n)):
            return False
    return True


class PriorityActuator:
    """A :class:`~sim.actuator.SignalActuator` with the priority layer polled at its events.

    The episode loop and :func:`sim.loop.advance_events` see the same interface: ``tick``,
    ``views``, ``request``, ``run_cycle``, ``next_event``; decisions for signals the layer holds
    are dropped, and bus priorities replace the controller's decision while they last.
    """

    def __init__(self, inner: Any, layer: PriorityLayer) -> None:
        self.inner = inner
        self.layer = layer
        self._due = layer.next_time(inner._now)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @property
    def next_event(self) -> float:
        ne = self.inner.next_event
        return ne if ne < self._due else self._due

    def tick(self, time: float | None = None) -> None:
        inner = self.inner
        inner.tick(time)
        t = inner._now
        if t + 1e-6 >= self._due:
            self.layer.poll(t)
            self._due = self.layer.next_time(t)

    def views(self, time: float | None = None) -> Any:
        if time is not None:
            self.tick(time)
        return self.inner.views()

    def request(self, decision: Any) -> None:
        import numpy as np

        pre = self.layer.preemptor
        d = np.array(decision, dtype=np.int32, copy=True)
        for s, (stage, _, _) in self.layer.force.items():
            d[s] = stage
        if pre is not None and pre.busy:
            for st in pre.signals.values():
                if pre.active(st.sid):  # taken: the controller's decision waits
                    d[st.index] = -1
        self.inner.request(d)

    def run_cycle(self, s: int, greens: list[float]) -> float:
        pre = self.layer.preemptor
        if pre is not None and pre.active(list(pre.signals)[s]):
            return self.inner._now + max(sum(greens), 1.0)
        return self.inner.run_cycle(s, greens)
