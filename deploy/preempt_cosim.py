"""Emergency vehicles of a co-simulation call the field controllers' preempts over SNMP.

In ``wulin cosim --emergency ...`` (:func:`deploy.sumo_bridge.run_cosim`) the emulated
controllers run SUMO's signals.  :class:`EmergencyPreemptor` plays the part of the
intersection's emergency-vehicle detector (an optical or radio receiver wired to a preempt
input), but over NTCIP: every simulation step it looks at each emergency vehicle (SUMO vClass
``emergency``) and the signals ahead on its route; a vehicle within ``distance`` metres of a
signal sets ``preemptControlState`` of the preempt whose dwell stage gives its link green; when
the vehicle has passed (the signal is no longer ahead of it), the input is set back to 0.  The
device does the rest (:mod:`deploy.preempt`: clearance, dwell, exit, back to its pattern), and
its heads reach SUMO as every other step's do, checked for safety.

Before the run every device gets its preempt table written over SNMP: an approved
configuration where one is given (:mod:`deploy.preempt_store`), else
:func:`deploy.preempt_config.per_stage` (preempt ``k + 1`` dwells on stage ``k``).

This module holds no SUMO call: what it reads of the simulation comes through the
:class:`Traffic` protocol, which :mod:`deploy.sumo_bridge` implements.  The emergency vehicle
has no bluelight device (it stops at red like any vehicle), so its travel time shows what the
signals did for it; ``preempt=False`` runs the same vehicles without calling, for comparison.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from deploy import oids as O
from deploy.central import DeviceLink
from deploy.preempt import N_PREEMPTS
from deploy.preempt_config import PreemptConfig, per_stage
from deploy.snmp import SnmpError
from sim.errors import WulinError


@dataclass(frozen=True)
class EmergencyTrip:
    """One emergency vehicle to add: when (seconds since midnight), from and to which edge."""

    depart: float
    origin: str
    destination: str


@dataclass(frozen=True)
class EmergencyOptions:
    """How emergency vehicles are handled in a co-simulation.

    Attributes:
        trips: Emergency vehicles to add (vehicles of class ``emergency`` in the demand count too).
        distance: Metres before a signal at which its preempt is called.
        preempt: Call the preempts (False: the same vehicles, no preemption, to compare).
        configs: Per signal, the preempt table to install (approved); others get :func:`per_stage`.
    """

    trips: tuple[EmergencyTrip, ...] = ()
    distance: float = 250.0
    preempt: bool = True
    configs: Mapping[str, PreemptConfig] = field(default_factory=dict)


@dataclass
class EmergencyLog:
    """One emergency vehicle's run: departure, arrival, stops (halts after moving)."""

    depart: float
    arrive: float | None = None
    stops: int = 0
    halted: bool = False
    signals: list[str] = field(default_factory=list)  # signals whose preempt it called, in order

    @property
    def travel_time(self) -> float | None:
        return None if self.arrive is None else self.arrive - self.depart


@dataclass
class PreemptStats:
    """What the preemption did over a run."""

    vehicles: dict[str, EmergencyLog] = field(default_factory=dict)
    calls: int = 0  # preemptControlState set to 1
    clears: int = 0  # ... and back to 0
    failed_sets: int = 0
    installed: int = 0  # devices whose preempt table was written


class Traffic(Protocol):
    """What the preemptor reads of (and adds to) the simulation."""

    def add_emergency(self, vid: str, origin: str, destination: str) -> None: ...
    def departed_emergency(self) -> list[str]: ...
    def arrived(self) -> list[str]: ...
    def ahead(self, vid: str) -> list[tuple[str, int, float]]: ...  # (signal, link index, metres)
    def halted(self, vid: str) -> bool: ...


class EmergencyPreemptor:
    """Calls and clears the preempts of the devices for the emergency vehicles (module docstring).

    Args:
        options: The vehicles, the distance and whether to call.
        links: Signal id -> the central link to its device (its writer session sets the inputs).
        stage_states: Signal id -> each stage's green state over the links.
    """

    def __init__(self, options: EmergencyOptions, links: Mapping[str, DeviceLink],
                 stage_states: Mapping[str, Sequence[str]]) -> None:
        if not options.distance > 0:
            raise WulinError(f"emergency detection distance {options.distance!r} m: must be above 0")
        self.options, self.links, self.stage_states = options, dict(links), dict(stage_states)
        self.stats = PreemptStats()
        self.calling: set[tuple[str, int]] = set()  # (signal, preempt) inputs set to 1
        self._pending = sorted(options.trips, key=lambda t: t.depart)
        self._added = 0

    def install(self) -> None:
        """Write each device's preempt table (one SET PDU per preempt row)."""
        for sid, lk in self.links.items():
            cfg = self.options.configs.get(sid) or per_stage(lk.profile)
            bad = cfg.problems(lk.profile)
            if bad:
                raise WulinError(f"preempt configuration of {sid}: " + "; ".join(bad))
            binds = cfg.varbinds()
            row = len(binds) // N_PREEMPTS
            for i in range(0, len(binds), row):
                lk.writer.set(binds[i:i + row])
            self.stats.installed += 1

    def preempt_for(self, sid: str, link: int) -> int | None:
        """The preempt whose dwell stage gives ``link`` green (protected first), per :func:`per_stage`."""
        states = self.stage_states.get(sid, ())
        for want in ("G", "g"):
            for k, st in enumerate(states[:N_PREEMPTS]):
                if link < len(st) and st[link] == want:
                    return k + 1
        return None

    def step(self, now: float, traffic: Traffic) -> None:
        """One simulation step: add due vehicles, follow them, set and clear preempt inputs."""
        while self._pending and self._pending[0].depart <= now + 1e-9:
            trip = self._pending.pop(0)
            self._added += 1
            traffic.add_emergency(f"emergency.{self._added}", trip.origin, trip.destination)
        for vid in traffic.departed_emergency():
            self.stats.vehicles[vid] = EmergencyLog(depart=now)
        for vid in traffic.arrived():
            if vid in self.stats.vehicles:
                self.stats.vehicles[vid].arrive = now
        wanted: set[tuple[str, int]] = set()
        for vid, log in self.stats.vehicles.items():
            if log.arrive is not None:
                continue
            halted = traffic.halted(vid)
            log.stops += halted and not log.halted
            log.halted = halted
            for sid, link, metres in traffic.ahead(vid):
                n = self.preempt_for(sid, link)
                if metres <= self.options.distance and n is not None and sid in self.links:
                    wanted.add((sid, n))
                    if sid not in log.signals:
                        log.signals.append(sid)
        if self.options.preempt:
            self._apply(wanted)

    def _apply(self, wanted: set[tuple[str, int]]) -> None:
        for key, on in [(k, 1) for k in sorted(wanted - self.calling)] + [(k, 0) for k in sorted(self.calling - wanted)]:
            sid, n = key
            try:
                self.links[sid].writer.set([(O.PREEMPT_CONTROL_STATE + (n,), on)])
            except (SnmpError, WulinError):
                self.stats.failed_sets += 1  # tried again next step (the set is unchanged)
                continue
            if on:
                self.calling.add(key)
                self.stats.calls += 1
            else:
                self.calling.discard(key)
                self.stats.clears += 1

    def release(self) -> None:
        """Every input still set goes back to 0 (the run ends)."""
        self._apply(set())
