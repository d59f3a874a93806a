"""Transit signal priority inside the emulated controller: request objects and their sequencer.

**These objects are not NTCIP.**  The reference table (``ntcip_oids.tsv``) lists NTCIP 1201 /
1202 objects only; it has none of NTCIP 1211 (signal control and prioritisation), so this
emulator exposes a minimal set of its own, under the private arc of :mod:`deploy.oids`
(``1.3.6.1.4.1.32473.1206.3``, enterprise 32473 being the number RFC 5612 reserves for
documentation, so it cannot collide with a real MIB).  A manager that speaks NTCIP 1211 would
need an adapter; nothing else in the project depends on these numbers.

============================  =====================  ===================================
object                        OID (under ``.3``)     meaning
============================  =====================  ===================================
wulinPriorityMaxExtension     ``.1.0`` (P, s)        longest a bus's green is held past
                                                     its timed end (default 10)
wulinPriorityMaxEarly         ``.2.0`` (P, s)        most another green may end before
                                                     its timed end (default 10)
wulinPriorityLockout          ``.3.0`` (P, s)        after a service, no other before
                                                     this (default 90: one per cycle)
wulinPriorityRequestPhase     ``.4.1.2.<r>`` (C)     request ``r`` (1-4): the phase the
                                                     bus needs; 0 cancels (the bus passed)
wulinPriorityRequestState     ``.4.1.3.<r>`` (S)     idle(1), waiting(2), active(3),
                                                     served(4), lockedOut(5)
wulinPriorityServed           ``.5.0`` (S)           services since power-on
============================  =====================  ===================================

The sequencer serves the oldest request that is not locked out; the phase engine
(:class:`~deploy.phase_engine.PriorityAsk`) extends the bus stage's green up to the maximum
extension, or ends other greens up to the maximum early time before their timed end, never
inside a minimum green, never skipping a clearance.  A request is served once its stage's
green has run while it was active and then ended (or the request was cancelled during that
green); the lockout then starts.  A preempt comes first: while one runs, requests wait.
The engine's own timing is what priority adjusts (a pattern's force-offs, or free operation's
gap-out and max-out); under central phase control the central system decides, as in the field.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from deploy import oids as O
from deploy.phase_engine import GREEN, PhaseEngine, PriorityAsk
from deploy.preempt import stage_of
from deploy.profile import DeviceProfile

N_REQUESTS = 4
IDLE, WAITING, ACTIVE, SERVED, LOCKED_OUT = 1, 2, 3, 4, 5
DEFAULTS = {O.PRIORITY_MAX_EXTENSION: 10, O.PRIORITY_MAX_EARLY: 10, O.PRIORITY_LOCKOUT: 90}


@dataclass
class Given:
    """What the device's priority changed over its run (deciseconds), for reports: requests
    whose service changed the timing, green extensions and their length, greens ended early
    and the time taken from them.  Not an NTCIP object (read in-process)."""

    requests_changed: int = 0
    extensions: int = 0
    extended: int = 0
    early_ends: int = 0
    early_cut: int = 0


@dataclass
class _Request:
    phase: int = 0
    since: int = 0
    state: int = IDLE
    was_green: bool = False  # its stage has been green while it was active


class Priority:
    """The priority objects and sequencer of one controller (module docstring).

    Args:
        profile: Which phases serve which stage.
        db: The device's object values (read live).
    """

    def __init__(self, profile: DeviceProfile, db: MutableMapping[O.OID, Any]) -> None:
        self.profile, self.db = profile, db
        self.requests = {r: _Request() for r in range(1, N_REQUESTS + 1)}
        self.active: int | None = None
        self.served = 0
        self.last_service: int | None = None
        self._ask: PriorityAsk | None = None
        self.given = Given()

    def objects(self) -> list[tuple[O.OID, str, str, str, int, int, Any]]:
        """``(oid, access, kind, type, lo, hi, value)`` of every priority object at power-on."""
        out: list[tuple[O.OID, str, str, str, int, int, Any]] = [
            (O.PRIORITY_MAX_EXTENSION, "rw", "P", "int", 0, 255, DEFAULTS[O.PRIORITY_MAX_EXTENSION]),
            (O.PRIORITY_MAX_EARLY, "rw", "P", "int", 0, 255, DEFAULTS[O.PRIORITY_MAX_EARLY]),
            (O.PRIORITY_LOCKOUT, "rw", "P", "int", 0, 65535, DEFAULTS[O.PRIORITY_LOCKOUT])]
        for r in range(1, N_REQUESTS + 1):
            out.append((O.PRIORITY_REQUEST_PHASE + (r,), "rw", "C", "int", 0, 255, 0))
            out.append((O.PRIORITY_REQUEST_STATE + (r,), "ro", "S", "int", 1, 5, IDLE))
        out.append((O.PRIORITY_SERVED, "ro", "S", "int", 0, 2**31 - 1, 0))
        return out

    def value(self, o: O.OID) -> Any | None:
        """Live value of a status object (``None``: not one of them)."""
        if o[:-1] == O.PRIORITY_REQUEST_STATE:
            return self.requests[o[-1]].state
        if o == O.PRIORITY_SERVED:
            return self.served
        return None

    def refused(self, o: O.OID, v: Any) -> str | None:
        """A request for a phase no stage has is ``inconsistentValue``."""
        if o[:-1] == O.PRIORITY_REQUEST_PHASE and int(v) and stage_of(self.profile, [int(v)]) is None:
            return "inconsistentValue"
        return None

    def _s(self, o: O.OID) -> int:
        return 10 * int(self.db.get(o, DEFAULTS.get(o, 0)))

    def tick(self, engine: PhaseEngine, now: int, preempting: bool) -> None:
        """Take the requests, pick one, tell the engine; called before each engine step."""
        for r, q in self.requests.items():
            phase = int(self.db.get(O.PRIORITY_REQUEST_PHASE + (r,), 0))
            if phase != q.phase:
                if r == self.active:
                    self._end(engine, now, served=q.was_green)
                q.phase, q.since, q.was_green = phase, now, False
                q.state = WAITING if phase else IDLE
        if preempting:
            self._close(now)
            self._ask = engine.priority = None
            if self.active is not None:
                self.requests[self.active].state, self.active = WAITING, None
            return
        if self.active is not None:
            self._follow(engine, now)
        if self.active is None:
            self._pick(engine, now)

    def _pick(self, engine: PhaseEngine, now: int) -> None:
        waiting = sorted((q.since, r) for r, q in self.requests.items() if q.state in (WAITING, LOCKED_OUT))
        if not waiting:
            engine.priority = None
            return
        locked = self.last_service is not None and now - self.last_service < self._s(O.PRIORITY_LOCKOUT)
        for _, r in waiting:
            self.requests[r].state = LOCKED_OUT if locked else WAITING
        if locked:
            engine.priority = None
            return
        r = waiting[0][1]
        q = self.requests[r]
        stage = stage_of(self.profile, [q.phase])
        if stage is None:
            q.state = IDLE
            return
        self.active, q.state = r, ACTIVE
        self._ask = engine.priority = PriorityAsk(stage, self._s(O.PRIORITY_MAX_EXTENSION),
                                                  self._s(O.PRIORITY_MAX_EARLY))
        self._follow(engine, now)

    def _follow(self, engine: PhaseEngine, now: int) -> None:
        """Served once the bus stage's green has run during the request and ended."""
        assert self.active is not None and self._ask is not None
        q, st = self.requests[self.active], engine.state
        on = st.interval == GREEN and st.stage == self._ask.stage
        if on:
            q.was_green = True
        elif q.was_green:
            self._end(engine, now, served=True)

    def _end(self, engine: PhaseEngine, now: int, served: bool) -> None:
        assert self.active is not None
        self._close(now)
        self.requests[self.active].state = SERVED if served else IDLE
        if served:
            self.served += 1
            self.last_service = now
        self.active, self._ask, engine.priority = None, None, None

    def _close(self, now: int) -> None:
        """Add what the request being dropped was given to :attr:`given` (an extension still
        running ends now: its green ends at this tick without the request)."""
        ask = self._ask
        if ask is None:
            return
        if ask.held_since is not None:
            ask.extended += now - ask.held_since
            ask.held_since = None
        g = self.given
        g.requests_changed += bool(ask.extended or ask.early_ends)
        g.extensions += ask.extended > 0
        g.extended += ask.extended
        g.early_ends += ask.early_ends
        g.early_cut += ask.early_cut
