"""SUMO's buses raise and cancel the field controllers' transit priority requests over SNMP.

In ``wulin cosim --bus-priority late|all`` (:func:`deploy.sumo_bridge.run_cosim`) the emulated
controllers run SUMO's signals.  :class:`BusRequester` plays the part of the bus detector (an
AVL system or a transponder reader at the intersection): every simulation step it looks at
each bus (SUMO vClass ``bus``: the Wulin bus lines) and the next signal on its route; a bus
within ``distance`` metres of it that is late against its line's schedule (``late``: more
than ``late_after`` s, the lateness :mod:`sim.transit` computes; ``all``: every bus) sets one
of the device's request objects (``wulinPriorityRequestPhase.<r>``, :mod:`deploy.priority`) to
the phase of the stage that gives its link green, in one SET; once the bus has passed (the
signal is no longer the next ahead, or the bus arrived) the object is set back to 0.  A
request raised stays until then, late or not.  The device does the rest: green extension or
early green within its limits (maximum extension, maximum early, lockout: one service per
cycle), never inside a minimum green; a preempt comes first.

What the device can do with a request depends on who times it.  Running its own plan (in
``wulin cosim -c field`` the devices run their time-of-day plans, no central control) it
moves its force-offs.  Under central phase control every phase is either held (the stage
central wants) or forced off (the others), and the engine neither extends a force-off nor
ends a held green early (:mod:`deploy.phase_engine`): the requests are raised and served in
the device's book-keeping, and the timing is central's.  The run's figures say which.

This module holds no SUMO call: what it reads comes through :class:`Buses`, which
:mod:`deploy.sumo_bridge` implements.  ``request=False`` follows the same buses and measures
their delay without raising a request, for comparison.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from deploy import oids as O
from deploy.central import DeviceLink
from deploy.priority import N_REQUESTS, Given
from deploy.snmp import SnmpError
from sim.errors import WulinError

BUS_MODES = ("late", "all")


@dataclass(frozen=True)
class BusOptions:
    """Which buses ask for priority in a co-simulation, and from how far.

    Attributes:
        buses: ``"late"`` (behind schedule by more than ``late_after``) or ``"all"``.
        late_after: Seconds behind schedule from which a bus is late.
        distance: Metres before a signal at which a bus's request is raised.
        request: Raise requests (False: the same buses followed, none raised, to compare).
    """

    buses: str = "late"
    late_after: float = 30.0
    distance: float = 150.0
    request: bool = True

    def __post_init__(self) -> None:
        if self.buses not in BUS_MODES:
            raise WulinError(f"bus priority {self.buses!r}: expected {' or '.join(BUS_MODES)}")
        if not self.distance > 0:
            raise WulinError(f"bus detection distance {self.distance!r} m: must be above 0")


@dataclass(frozen=True)
class NextSignal:
    """The next signal on a bus's route: which, the link it will use, metres to its stop line."""

    signal: str
    link: int
    metres: float


@dataclass
class BusStats:
    """What the buses asked for over a run (what the devices gave is read from them after it)."""

    buses: int = 0  # buses followed (departed in the run)
    requests: int = 0  # request objects set to a phase
    cancels: int = 0  # ... and back to 0
    failed_sets: int = 0
    no_free_request: int = 0  # steps a bus could not ask: all the device's request objects busy
    signal_delay: dict[str, float] = field(default_factory=dict)  # bus -> seconds held by signals
    served: int = 0  # the devices' wulinPriorityServed, summed
    given: Given = field(default_factory=Given)  # what the devices' engines changed, summed

    def add_device(self, served: int, given: Given) -> None:
        """Add one device's services and what its engine gave (read after the run)."""
        self.served += served
        for k, v in vars(given).items():
            setattr(self.given, k, getattr(self.given, k) + v)

    @property
    def mean_signal_delay(self) -> float | None:
        d = self.signal_delay
        return sum(d.values()) / len(d) if d else None


class Buses(Protocol):
    """What the requester reads of the simulation."""

    def departed_buses(self) -> list[str]: ...
    def arrived(self) -> list[str]: ...
    def next_signal(self, vid: str) -> NextSignal | None: ...
    def lateness(self, vid: str, now: float) -> float: ...  # seconds behind schedule
    def waiting_at_signal(self, vid: str) -> bool: ...  # halted near its next signal, not at a stop


class BusRequester:
    """Raises and cancels the devices' priority requests for the buses (module docstring).

    Args:
        options: Which buses, from how far, and whether to raise requests.
        links: Signal id -> the link to its device (its writer session sets the requests).
        stage_states: Signal id -> each stage's green state over the links.
        step: Seconds per simulation step (for the buses' signal delay).
    """

    def __init__(self, options: BusOptions, links: Mapping[str, DeviceLink],
                 stage_states: Mapping[str, Sequence[str]], step: float = 1.0) -> None:
        self.options, self.links, self.stage_states, self.step_s = options, dict(links), dict(stage_states), step
        self.stats = BusStats()
        self.raised: dict[tuple[str, str], int] = {}  # (signal, bus) -> request object number
        self.running: set[str] = set()

    def phase_for(self, sid: str, link: int) -> int | None:
        """The phase of the stage that gives ``link`` green (protected first)."""
        lk, states = self.links.get(sid), self.stage_states.get(sid, ())
        if lk is None:
            return None
        for want in ("G", "g"):
            for k, st in enumerate(states):
                if link < len(st) and st[link] == want:
                    return lk.profile.stage_phases[k][0]
        return None

    def step(self, now: float, buses: Buses) -> None:
        """One simulation step: follow the buses, raise and cancel requests."""
        for vid in buses.departed_buses():
            self.running.add(vid)
            self.stats.buses += 1
            self.stats.signal_delay[vid] = 0.0
        for vid in buses.arrived():
            self.running.discard(vid)
        wanted: dict[tuple[str, str], int] = {}
        for vid in sorted(self.running):
            nxt = buses.next_signal(vid)
            if nxt is None:
                continue
            if buses.waiting_at_signal(vid):
                self.stats.signal_delay[vid] += self.step_s
            key = (nxt.signal, vid)
            phase = self.phase_for(nxt.signal, nxt.link)
            if phase is None or nxt.metres > self.options.distance:
                continue
            if key in self.raised or self.options.buses == "all" or buses.lateness(vid, now) > self.options.late_after:
                wanted[key] = phase
        if self.options.request:
            self._apply(wanted)

    def _apply(self, wanted: dict[tuple[str, str], int]) -> None:
        for key in sorted(set(self.raised) - set(wanted)):
            if self._set(key[0], self.raised[key], 0):
                del self.raised[key]
                self.stats.cancels += 1
        for key in sorted(set(wanted) - set(self.raised)):
            busy = {r for (s, _), r in self.raised.items() if s == key[0]}
            free = next((r for r in range(1, N_REQUESTS + 1) if r not in busy), None)
            if free is None:
                self.stats.no_free_request += 1
            elif self._set(key[0], free, wanted[key]):
                self.raised[key] = free
                self.stats.requests += 1

    def _set(self, sid: str, r: int, phase: int) -> bool:
        try:
            self.links[sid].writer.set([(O.PRIORITY_REQUEST_PHASE + (r,), phase)])
        except (SnmpError, WulinError):
            self.stats.failed_sets += 1  # tried again next step (the wanted set is unchanged)
            return False
        return True

    def release(self) -> None:
        """Every request still raised is cancelled (the run ends)."""
        self._apply({})
