"""Preemption inside the emulated controller: the NTCIP 1202 preempt objects and their sequencer.

A preempt (an emergency vehicle, a train) takes the intersection away from its pattern: the
running green ends as soon as it safely may, the clearance runs in full, the preempt's phases
get green and keep it while the call lasts, then the unit leaves through its exit phases and
returns to its pattern (coordination picks up from where the exit leaves it: the phase
engine's force-offs pull it back into step within a cycle).  :class:`Preemption` is that
firmware for the emulator.  It serves, per preempt ``n`` (1..:data:`N_PREEMPTS`), these objects
of the reference table (``ntcip_oids.tsv``):

* ``preemptTable .6.2.1.<col>.<n>``: ``preemptControl`` (2), ``preemptLink`` (3),
  ``preemptDelay`` (4, s), ``preemptMinimumDuration`` (5, s), ``preemptMinimumGreen`` (6, s),
  ``preemptTrackGreen`` (9, s), ``preemptDwellGreen`` (10, s), ``preemptMaximumPresence``
  (11, s, 0: none), ``preemptTrackPhase`` / ``preemptDwellPhase`` / ``preemptExitPhase``
  (12 / 13 / 15, octet strings of phase numbers) as read-write parameters, and the read-only
  ``preemptState`` (16: notActive, notActiveWithCall, entryStarted, trackService, dwell,
  linkActive, exitStarted, maxPresence);
* ``preemptControlState .6.3.1.2.<n>`` (0 / 1): the preempt's input, set by a manager (the
  co-simulation sets it when an emergency vehicle approaches);
* ``maxPreempts .6.1.0``.

The sequence, in the device's deciseconds:

1. **Call**: the input turns on; after ``preemptDelay`` the preempt enters.  The call is
   locked (served even if the input drops during the delay) unless ``preemptControl`` bit 0
   (non-locking memory) is set.  One preempt runs at a time; waiting calls are served lowest
   number first once it ends.
2. **Entry** (entryStarted): the phase engine (:class:`~deploy.phase_engine.Preempting`) ends
   the running green once it has had its minimum green *and* ``preemptMinimumGreen`` (as it
   does every green the preempt ends, track and dwell greens included), times
   yellow and red clearance in full, and goes to the track phases (when ``preemptTrackPhase``
   is set and ``preemptTrackGreen`` > 0: trackService for that long), then to the dwell phases.
3. **Dwell**: green on the dwell phases while the input is on, at least ``preemptDwellGreen``
   and until ``preemptMinimumDuration`` has passed since entry.
4. **Exit** (exitStarted): through clearance to the exit phases' stage (none set: the pattern
   goes on from the dwell stage); with ``preemptLink`` set, the linked preempt enters instead
   (this one shows linkActive until it ends).
5. **Maximum presence**: an input on for longer than ``preemptMaximumPresence`` is taken as
   failed: the preempt exits (or its waiting call is dropped) and shows maxPresence until the
   input drops; only then can it call again.

Phases name stages: the emulator times stages (:mod:`deploy.phase_engine`), so the phases of
a track, dwell or exit set must all serve one stage; a SET naming phases of two stages, or a
phase the unit does not have, is refused (``inconsistentValue``), and so is turning on the
input of a preempt without dwell phases.

Where this emulator is narrower than NTCIP 1202, on purpose:

* ``preemptMinimumGreen`` never *shortens* a phase's minimum green (NTCIP lets it, for
  railway crossings): the project's rule is that nothing cuts a minimum green or a clearance,
  and an emergency vehicle approach does not need it.  The pedestrian columns
  (``preemptMinimumWalk``, ``preemptEnterPedClear``, ``preemptDwellPed``) are not served: a
  walk in progress gets its full walk and pedestrian clearance.
* ``preemptControl`` takes bit 0 only (non-locking memory, as NTCIP 1202's text numbers it:
  the reference table has no bit definitions); a value with another bit (override flash,
  override higher, flash dwell) is refused ``wrongValue`` rather than accepted and ignored.
  So a preempt dwells in green, never in flash, and ``unitFlashStatus`` does not show
  preempt(8) (the flash-dwell status); nor does ``unitControlStatus``, whose enumeration has
  no preempt value.  A unit in flash (monitor trip or ``systemPatternControl`` 255) serves
  no preempt.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from deploy import oids as O
from deploy.phase_engine import GREEN, PhaseEngine, Preempting
from deploy.profile import DeviceProfile

N_PREEMPTS = 6
NON_LOCKING = 0x01  # preemptControl bit 0

# (column, NTCIP kind, type, lo, hi) of the parameters the emulator serves.
_PARAMS = ((O.PREEMPT_CONTROL, "int", 0, 255), (O.PREEMPT_LINK, "int", 0, 255),
           (O.PREEMPT_DELAY, "int", 0, 65535), (O.PREEMPT_MIN_DURATION, "int", 0, 65535),
           (O.PREEMPT_MIN_GREEN, "int", 0, 255), (O.PREEMPT_TRACK_GREEN, "int", 0, 255),
           (O.PREEMPT_DWELL_GREEN, "int", 0, 255), (O.PREEMPT_MAX_PRESENCE, "int", 0, 65535),
           (O.PREEMPT_TRACK_PHASE, "octets", 0, 16), (O.PREEMPT_DWELL_PHASE, "octets", 0, 16),
           (O.PREEMPT_EXIT_PHASE, "octets", 0, 16))
_PHASE_COLUMNS = (O.PREEMPT_TRACK_PHASE, O.PREEMPT_DWELL_PHASE, O.PREEMPT_EXIT_PHASE)


def stage_of(profile: DeviceProfile, phases: bytes | Sequence[int]) -> int | None:
    """The stage every phase of ``phases`` serves (``None``: empty, unknown or split over stages)."""
    wanted = set(phases)
    if not wanted:
        return None
    for k, ps in enumerate(profile.stage_phases):
        if wanted <= set(ps):
            return k
    return None


@dataclass
class _Run:
    """One preempt's running state (times in deciseconds of the day)."""

    state: int = O.PREEMPT_NOT_ACTIVE
    input: bool = False
    input_since: int = 0
    called_at: int | None = None  # a call waiting for service (its delay counts from here)
    entry_at: int = 0
    step_at: int = 0  # when the track or dwell green began
    maxed: bool = False  # ended by maximum presence: the input must drop before it calls again
    linked_from: int | None = None


class Preemption:
    """The preempt objects and sequencer of one controller (module docstring).

    Args:
        profile: Which phases serve which stage.
        db: The device's object values (read live: the parameters survive a reboot there).
    """

    def __init__(self, profile: DeviceProfile, db: MutableMapping[O.OID, Any]) -> None:
        self.profile, self.db = profile, db
        self.runs = {n: _Run() for n in range(1, N_PREEMPTS + 1)}
        self.active: int | None = None
        self.served = 0  # preempts that reached their dwell

    # ------------------------------------------------------------------ objects
    def objects(self) -> list[tuple[O.OID, str, str, str, int, int, Any]]:
        """``(oid, access, kind, type, lo, hi, value)`` of every preempt object at power-on."""
        out: list[tuple[O.OID, str, str, str, int, int, Any]] = [(O.MAX_PREEMPTS, "ro", "S", "int", 0, 255, N_PREEMPTS)]
        for n in range(1, N_PREEMPTS + 1):
            out.append((O.PREEMPT_NUMBER + (n,), "ro", "S", "int", 0, 255, n))
            for col, typ, lo, hi in _PARAMS:
                out.append((col + (n,), "rw", "P", typ, lo, hi, b"" if typ == "octets" else 0))
            out.append((O.PREEMPT_STATE + (n,), "ro", "S", "int", 1, 9, O.PREEMPT_NOT_ACTIVE))
            out.append((O.PREEMPT_CONTROL_NUMBER + (n,), "ro", "S", "int", 0, 255, n))
            out.append((O.PREEMPT_CONTROL_STATE + (n,), "rw", "C", "int", 0, 1, 0))
        return out

    def state(self, n: int) -> int:
        """``preemptState.n`` now."""
        return self.runs[n].state

    def refused(self, o: O.OID, v: Any) -> str | None:
        """Why the device refuses ``o = v`` (``None``: accepted, or not a preempt object)."""
        head, n = o[:-1], o[-1]
        if head in _PHASE_COLUMNS and v:
            return None if stage_of(self.profile, bytes(v)) is not None else "inconsistentValue"
        if head == O.PREEMPT_CONTROL:
            return None if int(v) & ~NON_LOCKING == 0 else "wrongValue"
        if head == O.PREEMPT_LINK:
            return None if int(v) == 0 or (1 <= int(v) <= N_PREEMPTS and int(v) != n) else "wrongValue"
        if head == O.PREEMPT_CONTROL_STATE and int(v) == 1 and self._dwell_stage(n) is None:
            return "inconsistentValue"
        return None

    def _p(self, col: O.OID, n: int) -> int:
        return int(self.db.get(col + (n,), 0))

    def _min_green(self, n: int) -> int:
        return 10 * self._p(O.PREEMPT_MIN_GREEN, n)

    def _dwell_stage(self, n: int) -> int | None:
        return stage_of(self.profile, bytes(self.db.get(O.PREEMPT_DWELL_PHASE + (n,), b"")))

    # ------------------------------------------------------------------ one tick
    def tick(self, engine: PhaseEngine, now: int) -> None:
        """Take the inputs, start, time and end preempts; tell the engine what to serve.
        Called before each engine step (``now``: the step's time of day, deciseconds)."""
        for n, r in self.runs.items():
            self._watch(n, r, now)
        if self.active is None and not engine.flash:
            ready = [n for n, r in self.runs.items() if r.called_at is not None
                     and now - r.called_at >= 10 * self._p(O.PREEMPT_DELAY, n)]
            if ready:
                self._enter(min(ready), now)
        if self.active is not None:
            self._advance(self.active, engine, now)
        if self.active is None:
            engine.preempt = None

    def _watch(self, n: int, r: _Run, now: int) -> None:
        """The input: calls, non-locking drops, maximum presence."""
        on = bool(self._p(O.PREEMPT_CONTROL_STATE, n))
        if on and not r.input:
            r.input_since = now
            if r.called_at is None and r.state in (O.PREEMPT_NOT_ACTIVE, O.PREEMPT_EXIT_STARTED):
                r.called_at = now
        if not on:
            r.maxed = False
            if r.state == O.PREEMPT_MAX_PRESENCE_STATE:
                r.state = O.PREEMPT_NOT_ACTIVE
            if r.called_at is not None and self.active != n and self._p(O.PREEMPT_CONTROL, n) & NON_LOCKING:
                r.called_at = None
        r.input = on
        limit = 10 * self._p(O.PREEMPT_MAX_PRESENCE, n)
        if on and limit and not r.maxed and now - r.input_since >= limit:
            r.maxed = True
            if self.active != n:  # a waiting call is dropped
                r.called_at, r.state = None, O.PREEMPT_MAX_PRESENCE_STATE
        if self.active != n and r.called_at is not None:
            r.state = O.PREEMPT_WITH_CALL
        elif self.active != n and r.state == O.PREEMPT_WITH_CALL:
            r.state = O.PREEMPT_NOT_ACTIVE

    def _enter(self, n: int, now: int, linked_from: int | None = None) -> None:
        r = self.runs[n]
        self.active, r.state, r.entry_at, r.linked_from = n, O.PREEMPT_ENTRY_STARTED, now, linked_from
        r.called_at = None  # the call is being served

    def _advance(self, n: int, engine: PhaseEngine, now: int) -> None:
        """Move preempt ``n`` along entry, track, dwell and exit (module docstring)."""
        r, st = self.runs[n], engine.state
        dwell = self._dwell_stage(n)
        track = stage_of(self.profile, bytes(self.db.get(O.PREEMPT_TRACK_PHASE + (n,), b"")))
        track_s = self._p(O.PREEMPT_TRACK_GREEN, n)
        if dwell is None:  # its dwell phases were cleared under it: leave as after a dwell
            return self._exit(n, engine, now)
        green, tracking = st.interval == GREEN, track is not None and track_s > 0
        if r.state == O.PREEMPT_ENTRY_STARTED:
            target = track if tracking and track is not None else dwell
            engine.preempt = Preempting(target, self._min_green(n))
            if green and st.stage == target:  # (a green already on the target counts from entry)
                r.step_at = max(now - st.elapsed, r.entry_at)
                r.state = O.PREEMPT_TRACK_SERVICE if tracking else O.PREEMPT_DWELL
                self.served += not tracking
            elif r.maxed:
                self._exit(n, engine, now)
        elif r.state == O.PREEMPT_TRACK_SERVICE:
            if r.maxed:
                self._exit(n, engine, now)
            elif now - r.step_at >= 10 * track_s:
                engine.preempt = Preempting(dwell, self._min_green(n))
                if green and st.stage == dwell:
                    r.state, r.step_at = O.PREEMPT_DWELL, max(now - st.elapsed, r.step_at)
                    self.served += 1
        elif r.state == O.PREEMPT_DWELL:
            self._dwell(n, r, engine, now)
        elif r.state == O.PREEMPT_EXIT_STARTED and engine.preempt is not None:
            if green and st.stage == engine.preempt.stage:
                self._finish(n, engine)

    def _dwell(self, n: int, r: _Run, engine: PhaseEngine, now: int) -> None:
        done = (not r.input and now - r.entry_at >= 10 * self._p(O.PREEMPT_MIN_DURATION, n)
                and now - r.step_at >= 10 * self._p(O.PREEMPT_DWELL_GREEN, n))
        if not (done or r.maxed):
            return
        link = self._p(O.PREEMPT_LINK, n)
        if link and not r.maxed and self._dwell_stage(link) is not None and self.runs[link].linked_from is None:
            r.state = O.PREEMPT_LINK_ACTIVE
            self._enter(link, now, linked_from=n)
            return self._advance(link, engine, now)
        self._exit(n, engine, now)

    def _exit(self, n: int, engine: PhaseEngine, now: int) -> None:
        """Leave through the exit phases' stage, or straight back to the pattern."""
        exit_stage = stage_of(self.profile, bytes(self.db.get(O.PREEMPT_EXIT_PHASE + (n,), b"")))
        if exit_stage is None or (engine.state.interval == GREEN and engine.state.stage == exit_stage):
            return self._finish(n, engine)
        self.runs[n].state = O.PREEMPT_EXIT_STARTED
        engine.preempt = Preempting(exit_stage, self._min_green(n))

    def _finish(self, n: int, engine: PhaseEngine) -> None:
        r = self.runs[n]
        r.state = O.PREEMPT_MAX_PRESENCE_STATE if r.maxed and r.input else O.PREEMPT_NOT_ACTIVE
        self.active, engine.preempt = None, None
        if r.linked_from is not None:
            self.runs[r.linked_from].state = O.PREEMPT_NOT_ACTIVE
            r.linked_from = None
