"""The NTCIP 1202 v02 controller as a device: its objects, clock, transaction and faults.

A :class:`DeviceModel` is the part of the emulator that a real controller's firmware would be,
without any socket: tests drive it directly with :meth:`DeviceModel.value`,
:meth:`DeviceModel.next_oid` and :meth:`DeviceModel.set`, and :mod:`deploy.agent` serves it
over SNMP.  What it does, as a controller would:

* the objects the deploy path uses (phase, pattern, split, sequence and channel tables, unit and
  coordination scalars, the NTCIP 1201 database transaction objects, MIB-2 ``sys*``), with
  read-only / read-write access, types and ranges checked on every SET; one SET is atomic
  (all or nothing) and names the failing varbind;
* the **database transaction**: P2 objects (the timing tables) can be set only inside a
  transaction, and only by the manager that opened it; ``verify`` runs the device-side
  consistency checks (ring splits add up to the cycle, splits cover min green and clearance,
  phase rings match the sequences, offset inside the cycle); ``normal`` applies the buffer
  only when verify passed, and from ``transaction`` it aborts;
* **plan changes at cycle boundaries**: ``systemPatternControl`` asks for a pattern, which
  becomes ``coordPatternStatus`` when the running cycle ends; 0 returns to the local
  time-of-day plan (pattern 1);
* the **time-of-day schedule** (:mod:`deploy.timebase`): the NTCIP 1201 schedule and day-plan
  tables and the 1202 action table (P2 objects, so changed inside a transaction); at power-on
  day plan 1 has one event at 00:00 running action 1, whose ``timebaseAscPattern.1`` names
  pattern 1.  Whenever ``systemPatternControl`` is 0 the unit runs the pattern of the action in
  force on its own clock and calendar, changing at the next cycle boundary after an event;
  verify checks every pattern the day plans in use name;
* the **backup timer**: with ``unitBackupTime`` > 0 (0 at power-on: off), if no
  ``systemPatternControl`` SET arrives within it, the unit falls back to its time-of-day
  pattern (``unitControlStatus`` backupMode);
* health: ``localFreeStatus`` notFree while coordinating a good pattern, badPlan /
  badCycleTime when the running pattern is inconsistent;
* **the running signal** (:class:`~deploy.signal_unit.SignalUnit`): a phase engine timing the
  phases from these tables second by second, on the device's time of day (coordinated to the
  running pattern, free under ``systemPatternControl`` 254, flash under 255), the phase status
  and phase control groups, detector inputs with volume / occupancy, the preempts
  (:mod:`deploy.preempt`) and the cabinet's conflict monitor; phase control SETs are system
  commands too: they keep the backup timer alive, and
  when it expires they are cleared with the system pattern, so the unit runs its time-of-day
  plan alone;
* **fault injection** (:class:`Faults`): dropped or late responses (carried out by the agent),
  a reboot in the middle of a transaction, verify errors, another manager holding the
  transaction, a readback mismatch, bad health.

Time runs ``time_scale`` times faster than the clock (``time.monotonic`` unless another is
given), so tests can watch cycle boundaries without waiting minutes; the co-simulation gives
the simulation's clock instead, so the device runs in lockstep with SUMO.  The time of day is
``tod_start`` plus the emulated seconds since power-on.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from controllers.plan import TimingPlan
from deploy import oids as O
from deploy import timebase
from deploy.phase_engine import Timing, timing_from_tables
from deploy.profile import Capabilities, DeviceProfile, plan_from_values, plan_values
from deploy.signal_unit import MISSING, SignalUnit
from deploy.snmp import Ticks
from sim.errors import WulinError

LOCAL_PATTERN = 1  # the pattern loaded at power-on with the network's own program
TOD_ACTION = 1  # the action day plan 1 runs from 00:00 at power-on
N_ACTIONS = 8
DEFAULT_PASSAGE = 30  # phasePassage at power-on, tenths of a second


@dataclass
class ObjSpec:
    """Access, NTCIP kind (C, P, P2, S), type and range of one object instance."""

    access: str  # "ro" or "rw"
    kind: str
    type: str  # "int", "octets", "ticks"
    lo: int = 0
    hi: int = 255
    enum: frozenset[int] | None = None


@dataclass
class Faults:
    """What the emulator does wrong on purpose (all off by default).

    Attributes:
        drop_responses: Drop the next N responses of any kind.
        drop_set_responses: Drop the responses to the next N SETs (after applying them).
        delay_responses: Answer the next N requests late (after ``delay_s``).
        delay_s: How late.
        reboot_after_p2_sets: Reboot when this many P2 SETs have been buffered in a
            transaction (the buffer is lost, the unit is silent for ``reboot_s``).
        reboot_s: Silence after a reboot, emulator wall seconds.
        verify_error: Make the next verify fail with this text.
        readback_mismatch: On apply, store these values instead of those sent.
        bad_health: ``localFreeStatus`` to report after the next pattern change.
        other_manager_live: The transaction's holder is another manager that is still
            working (its transaction never goes stale); cleared when it ends.
    """

    drop_responses: int = 0
    drop_set_responses: int = 0
    delay_responses: int = 0
    delay_s: float = 0.0
    reboot_after_p2_sets: int = 0
    reboot_s: float = 0.3
    verify_error: str | None = None
    readback_mismatch: dict[O.OID, Any] = field(default_factory=dict)
    bad_health: int | None = None
    other_manager_live: bool = False


FAULT_NAMES = ("verify-error", "readback-mismatch", "bad-health", "reboot", "drop-set", "late", "held")


@dataclass(frozen=True)
class SetResult:
    """How the device answered one SET: ``status`` an SNMP error name (``noError``: applied),
    ``index`` the failing varbind (1-based), ``answered`` False when it went down first."""

    status: str = "noError"
    index: int = 0
    answered: bool = True


class DeviceModel:
    """One emulated intersection controller, without its SNMP agent.

    Args:
        profile: How its phases serve the signal's stages.
        base_plan: The local (time-of-day) plan, loaded as pattern 1 and running at start.
        caps: Table sizes it reports.
        time_scale: Emulated seconds per clock second (finite, above 0).
        verify_s: Emulated seconds the device-side verify takes (finite, 0 or more).
        takeover_s: Emulated seconds a transaction's holder must have been silent before
            another manager may abort it.
        owner_objects: Has the private transaction-owner objects (``deploy.oids.TX_OWNER``);
            without them, as a real controller, the transaction belongs to the SNMP user
            (or community) that opened it.
        clock: Seconds, monotonic (``time.monotonic``; a test may pass its own).
        tod_start: Time of day at power-on, seconds since midnight (coordination runs on it).
        stage_states: Each stage's green state over the links (default: the base plan's).
        conflicts: The links' foe matrix the conflict monitor is programmed from (``None``:
            every two stages conflict).
        detectors: Detector number -> phase it calls (``None``: detector ``p`` calls phase ``p``).
        tick_s: The phase engine's step, seconds (a multiple of 0.1).

    Raises:
        WulinError: a time scale or verify time that is not a finite number in range (a
            time scale of 0 would stop the device's clock while it reports running).
    """

    timebase_sizes = timebase.TimebaseSizes()  # its time-base table sizes (a subclass may differ)

    def __init__(self, profile: DeviceProfile, base_plan: TimingPlan, caps: Capabilities | None = None, *,
                 time_scale: float = 1.0, verify_s: float = 0.5, takeover_s: float = 60.0,
                 owner_objects: bool = True, clock: Callable[[], float] = time.monotonic,
                 tod_start: float = 0.0, stage_states: Sequence[str] | None = None,
                 conflicts: Sequence[Sequence[bool]] | None = None, detectors: Mapping[int, int] | None = None,
                 tick_s: float = 1.0) -> None:
        self.time_scale, self.verify_s = _positive(time_scale, "time scale"), float(verify_s)
        if not math.isfinite(self.verify_s) or self.verify_s < 0:
            raise WulinError(f"verify time {verify_s!r}: must be a finite number of seconds, 0 or more")
        self.takeover_s, self.owner_objects = float(takeover_s), owner_objects
        self.profile, self.base_plan = profile, base_plan
        self.caps = caps or Capabilities(max_phases=8, max_patterns=8, max_splits=8, max_rings=2,
                                         max_sequences=8, max_channels=8)
        self.clock = clock
        self.tod_start = float(tod_start)
        self._unit_args = (tuple(stage_states or (s.state for s in base_plan.stages)), conflicts,
                           detectors, max(int(round(_positive(tick_s, "engine tick") * 10)), 1))
        self.faults = Faults()
        self.lock = threading.RLock()
        self.on_pattern_change: Callable[[int, TimingPlan | None], None] | None = None
        self._power_on()

    def silent(self) -> bool:
        """Whether the unit is still rebooting (it answers nothing)."""
        return self.clock() < self._silent_until

    # ------------------------------------------------------------------ state
    def _power_on(self) -> None:
        self._t0 = self.clock()
        self._silent_until = 0.0
        self.spec: dict[O.OID, ObjSpec] = {}
        self.db: dict[O.OID, Any] = {}
        states, conflicts, detectors, tick = self._unit_args
        self.unit = SignalUnit(self.profile, self.caps.max_phases, states, conflicts, detectors, tick, self.db)
        self._timing: tuple[tuple[int | None, int], Timing] | None = None
        self._tables_version = 0
        self._tod_cache: tuple[tuple[int, int], timebase.InForce] | None = None
        self._build_objects()
        self.db.update(plan_values(self.base_plan, self.profile, self.caps, LOCAL_PATTERN))
        self.tx_state: int = O.TX_NORMAL
        self.tx_owner: bytes | None = None
        self._tx_active_at = 0.0  # emulated time of the holder's last SET
        self.buffer: dict[O.OID, Any] = {}
        self.verify_status, self.verify_error, self._verify_done_at = 0, b"", 0.0
        self._p2_sets = 0
        self.active_pattern = LOCAL_PATTERN
        self.pending_pattern: int | None = None
        self._cycle_start = 0.0  # emulated time the running cycle began
        self._last_system_control = 0.0
        self.unit_control_status = 6  # timebase
        self.free_status = O.FREE_NOT_FREE
        self.reboots = getattr(self, "reboots", 0)
        self.backup_fallbacks = getattr(self, "backup_fallbacks", 0)
        self.stale_aborts = getattr(self, "stale_aborts", 0)

    def _build_objects(self) -> None:
        c = self.caps
        ro_int = ObjSpec("ro", "S", "int")

        def put(o: O.OID, value: Any, spec: ObjSpec) -> None:
            self.spec[o], self.db[o] = spec, value

        put(O.SYS_DESCR, b"Wulin NTCIP 1202 v02 controller emulator", ObjSpec("ro", "S", "octets"))
        put(O.SYS_UPTIME, Ticks(0), ObjSpec("ro", "S", "ticks"))
        put(O.SYS_NAME, self.profile.signal_id.encode(), ObjSpec("rw", "P", "octets"))
        for o, v in ((O.MAX_PHASES, c.max_phases), (O.MAX_PATTERNS, c.max_patterns), (O.MAX_SPLITS, c.max_splits),
                     (O.MAX_RINGS, c.max_rings), (O.MAX_SEQUENCES, c.max_sequences), (O.MAX_CHANNELS, c.max_channels)):
            put(o, v, ro_int)
        p2 = ObjSpec("rw", "P2", "int")
        for p in range(1, c.max_phases + 1):
            put(O.PHASE_NUMBER + (p,), p, ro_int)
            for col in (O.PHASE_WALK, O.PHASE_PED_CLEAR, O.PHASE_MIN_GREEN, O.PHASE_MAX1, O.PHASE_YELLOW,
                        O.PHASE_RED_CLEAR):
                put(col + (p,), 0, p2)
            put(O.PHASE_PASSAGE + (p,), DEFAULT_PASSAGE, p2)
            put(O.PHASE_RING + (p,), 0, p2)
            put(O.PHASE_CONCURRENCY + (p,), b"", ObjSpec("rw", "P2", "octets"))
        for pat in range(1, c.max_patterns + 1):
            for col in (O.PATTERN_CYCLE, O.PATTERN_OFFSET, O.PATTERN_SPLIT, O.PATTERN_SEQUENCE):
                put(col + (pat,), 0, p2)
        for s in range(1, c.max_splits + 1):
            for p in range(1, c.max_phases + 1):
                put(O.SPLIT_TIME + (s, p), 0, p2)
                put(O.SPLIT_MODE + (s, p), O.SPLIT_MODE_OMITTED, ObjSpec("rw", "P2", "int", 1, 7))
                put(O.SPLIT_COORD_PHASE + (s, p), 0, ObjSpec("rw", "P2", "int", 0, 1))
        for q in range(1, c.max_sequences + 1):
            for r in range(1, c.max_rings + 1):
                put(O.SEQUENCE_DATA + (q, r), b"", ObjSpec("rw", "P2", "octets", 0, c.max_phases))
        for ch in range(1, c.max_channels + 1):
            put(O.CHANNEL_CONTROL_SOURCE + (ch,), self._channel_source(ch), ObjSpec("rw", "P2", "int"))
        for o, v, access, kind, typ, lo, hi in timebase.objects(self.timebase_sizes):
            put(o, v, ObjSpec(access, kind, typ, lo, hi))
        put(O.UNIT_BACKUP_TIME, 0, ObjSpec("rw", "P", "int", 0, 65535))
        for o in (O.UNIT_CONTROL_STATUS, O.UNIT_ALARM_STATUS1, O.UNIT_ALARM_STATUS2, O.SHORT_ALARM_STATUS,
                  O.COORD_PATTERN_STATUS, O.LOCAL_FREE_STATUS):
            put(o, 0, ro_int)
        put(O.COORD_CYCLE_STATUS, 0, ObjSpec("ro", "S", "int", 0, 65535))
        put(O.COORD_CORRECTION_MODE, 3, ObjSpec("rw", "P", "int", 1, 4))
        put(O.SYSTEM_PATTERN_CONTROL, 0, ObjSpec("rw", "C", "int", 0, 255))
        put(O.DB_CREATE_TRANSACTION, O.TX_NORMAL,
            ObjSpec("rw", "C", "int", enum=frozenset({O.TX_NORMAL, O.TX_TRANSACTION, O.TX_VERIFY, O.TX_DONE})))
        put(O.DB_ERROR_TYPE, 7, ro_int)
        put(O.DB_VERIFY_STATUS, 0, ro_int)
        put(O.DB_VERIFY_ERROR, b"", ObjSpec("ro", "S", "octets"))
        if self.owner_objects:  # private: see deploy.oids
            put(O.TX_OWNER, b"", ObjSpec("rw", "C", "octets", 1, 32))
            put(O.TX_IDLE, 0, ObjSpec("ro", "S", "int", 0, 2**31 - 1))
        for u in self.unit.objects():
            put(u.oid, u.value, ObjSpec(u.access, u.kind, u.type, u.lo, u.hi))
        self._oids = sorted(self.spec)

    def _channel_source(self, ch: int) -> int:
        for p, c in self.profile.channels.items():
            if c == ch:
                return p
        return 0

    def now(self) -> float:
        """Emulated seconds since power-on."""
        return (self.clock() - self._t0) * self.time_scale

    def tod_pattern(self) -> int:
        """The pattern the time-of-day schedule runs now."""
        return self.tod_in_force().pattern or LOCAL_PATTERN

    def tod_in_force(self) -> timebase.InForce:
        """The day plan, event, action and pattern of the time base at the device's time of day
        (kept per minute and table version: events are whole minutes, tables change on apply)."""
        key = (self._tables_version, int(self.tod() // 60))
        if self._tod_cache is None or self._tod_cache[0] != key:
            self._tod_cache = (key, timebase.in_force(self.db, self.timebase_sizes, self.tod()))
        return self._tod_cache[1]

    def _pattern_cycle(self, pat: int) -> int:
        return int(self.db.get(O.PATTERN_CYCLE + (pat,), 0))

    def tod(self) -> float:
        """Time of day, seconds since midnight (runs past 86400 on a simulation's second day)."""
        return self.tod_start + self.now()

    def advance(self) -> None:
        """Let time pass: verify completion, cycle boundaries, pattern changes, backup timer,
        and the phase engine up to now."""
        t = self.now()
        if self.tx_state == O.TX_VERIFY and t >= self._verify_done_at:
            self.tx_state = O.TX_DONE
        cycle = self._pattern_cycle(self.active_pattern) or 1
        self._watchdog(t)
        if int(self.db[O.SYSTEM_PATTERN_CONTROL]) == O.PATTERN_STANDBY:
            tod = self.tod_pattern()
            self.pending_pattern = tod if tod != self.active_pattern else None
        while t >= self._cycle_start + cycle:
            self._cycle_start += cycle
            if self.pending_pattern is not None:
                self._switch(self.pending_pattern)
                cycle = self._pattern_cycle(self.active_pattern) or 1
        flash = int(self.db[O.SYSTEM_PATTERN_CONTROL]) == O.PATTERN_FLASH
        self.unit.run_to(int(self.tod() * 10 + 1e-6), self.engine_timing, flash)

    def _watchdog(self, t: float) -> None:
        """``unitBackupTime``: central control (a system pattern or any phase control) unheard
        for that long ends; the unit runs its time-of-day plan on its own."""
        backup = int(self.db[O.UNIT_BACKUP_TIME])
        commanded = int(self.db[O.SYSTEM_PATTERN_CONTROL]) != O.PATTERN_STANDBY or self.unit.commanded
        if backup and commanded and t - self._last_system_control > backup:
            self.db[O.SYSTEM_PATTERN_CONTROL] = O.PATTERN_STANDBY
            self.unit.engine.commands.clear()
            self.unit_control_status = O.CONTROL_BACKUP
            self.backup_fallbacks += 1

    def engine_timing(self) -> Timing:
        """The timing the phase engine runs now: the active pattern, or free (254)."""
        free = int(self.db[O.SYSTEM_PATTERN_CONTROL]) == O.PATTERN_FREE
        key = (None if free else self.active_pattern, self._tables_version)
        if self._timing is None or self._timing[0] != key:
            self._timing = (key, timing_from_tables(self.db, self.profile, key[0]))
        return self._timing[1]

    def _switch(self, pat: int) -> None:
        self.active_pattern, self.pending_pattern = pat, None
        self._tables_version += 1
        problems = self._check_pattern(self.db, pat)
        if self.faults.bad_health is not None:
            self.free_status, self.faults.bad_health = self.faults.bad_health, None
        elif problems:
            self.free_status = 8 if any("CYCLE" in p for p in problems) else 7
        else:
            self.free_status = O.FREE_NOT_FREE
        if self.on_pattern_change is not None:
            self.on_pattern_change(pat, self.active_plan())

    def active_plan(self) -> TimingPlan | None:
        """The running pattern as a :class:`TimingPlan` (stage links from the base plan)."""
        with self.lock:
            try:
                return plan_from_values(self.base_plan, self.profile, self.db, self.active_pattern)
            except (KeyError, WulinError, ValueError):
                return None

    def value(self, o: O.OID) -> Any:
        """The value of object instance ``o`` now (``o`` must exist: see :meth:`exists`)."""
        t = self.now()
        if o == O.SYS_UPTIME:
            return Ticks(int(t / self.time_scale * 100))
        if o == O.DB_CREATE_TRANSACTION:
            return self.tx_state
        if o == O.TX_OWNER:
            return O.owner_fingerprint(self.tx_owner) if self.tx_owner else b""
        if o == O.TX_IDLE:
            return int(self.tx_idle())
        if o == O.DB_VERIFY_STATUS:
            return self._verify_code(self.verify_status)
        if o == O.DB_VERIFY_ERROR:
            return self.verify_error
        if o == O.COORD_PATTERN_STATUS:
            return self.active_pattern
        if o == O.COORD_CYCLE_STATUS:
            return int(t - self._cycle_start)
        if o == O.LOCAL_FREE_STATUS:
            return self.free_status
        if o == O.UNIT_CONTROL_STATUS:
            return self.unit_control_status
        if o == O.SHORT_ALARM_STATUS:
            return self.unit.alarm
        if o in (O.TIMEBASE_ACTION_STATUS, O.DAY_PLAN_STATUS):
            now = self.tod_in_force()
            return now.action if o == O.TIMEBASE_ACTION_STATUS else now.day_plan
        live = self.unit.value(o)
        return self.db[o] if live is MISSING else live

    def _verify_code(self, meaning: int) -> int:
        """0 notDone, 1 error, 2 ok -> the code in this device's scheme."""
        return meaning + (1 if self.profile.verify_scheme == "1201" else 0)

    # ------------------------------------------------------------------ device-side verify
    def _check_pattern(self, db: dict[O.OID, Any], pat: int) -> list[str]:
        out = []
        cycle = int(db.get(O.PATTERN_CYCLE + (pat,), 0))
        offset = int(db.get(O.PATTERN_OFFSET + (pat,), 0))
        split = int(db.get(O.PATTERN_SPLIT + (pat,), 0))
        seq = int(db.get(O.PATTERN_SEQUENCE + (pat,), 0))
        if cycle <= 0:
            return [f"PATTERN {pat} CYCLE TIME FAULT"]
        if offset >= cycle:
            out.append(f"PATTERN {pat} OFFSET FAULT")
        if not 1 <= split <= self.caps.max_splits or not 1 <= seq <= self.caps.max_sequences:
            return out + [f"PATTERN {pat} SPLIT/SEQUENCE NUMBER FAULT"]
        rings_used = 0
        for r in range(1, self.caps.max_rings + 1):
            phases = list(db.get(O.SEQUENCE_DATA + (seq, r), b""))
            if not phases:
                continue
            rings_used += 1
            total = 0
            for p in phases:
                if not 1 <= p <= self.caps.max_phases:
                    out.append(f"SEQUENCE {seq} RING {r} PHASE {p} FAULT")
                    continue
                if int(db[O.PHASE_RING + (p,)]) != r:
                    out.append(f"PHASE {p:02d} RING FAULT")
                t = int(db[O.SPLIT_TIME + (split, p)])
                need = int(db[O.PHASE_MIN_GREEN + (p,)]) + (int(db[O.PHASE_YELLOW + (p,)]) + int(db[O.PHASE_RED_CLEAR + (p,)])) / 10
                if t < need:
                    out.append(f"PHASE {p:02d} SPLIT {t} SHORTER THAN MIN GREEN + CLEARANCE {need:g}")
                total += t
            if total != cycle:
                out.append(f"PATTERN {pat} RING {r} SPLITS SUM {total} NOT CYCLE {cycle}")
        if not rings_used:
            out.append(f"SEQUENCE {seq} EMPTY")
        return out

    def _run_verify(self) -> None:
        merged = dict(self.db)
        merged.update(self.buffer)
        buf = self.buffer

        def under(col: O.OID) -> list[O.OID]:
            return [o[len(col):] for o in buf if o[: len(col)] == col]

        # Patterns whose tables the transaction changes: their own row, or the split or the
        # sequence they use.
        splits = {rest[0] for col in (O.SPLIT_TIME, O.SPLIT_MODE, O.SPLIT_COORD_PHASE) for rest in under(col)}
        seqs = {rest[0] for rest in under(O.SEQUENCE_DATA)}
        touched = {rest[1] for rest in under(O.PATTERN_ENTRY)}
        for pat in range(1, self.caps.max_patterns + 1):
            if (int(merged[O.PATTERN_SPLIT + (pat,)]) in splits
                    or int(merged[O.PATTERN_SEQUENCE + (pat,)]) in seqs):
                touched.add(pat)
        # The pattern the schedule names must be sound, and so must the running one when the
        # shared phase table changes; any other pattern with cycle 0 is an unused slot.
        problems, required = timebase.verify_timebase(merged, self.timebase_sizes)
        required = required or {LOCAL_PATTERN}
        if under(O.PHASE_ENTRY) or self.active_pattern in touched:
            required.add(self.active_pattern)
        for pat in sorted(touched | required):
            if int(merged.get(O.PATTERN_CYCLE + (pat,), 0)) or pat in required:
                problems += self._check_pattern(merged, pat)
        if self.faults.verify_error:
            problems.insert(0, self.faults.verify_error)
            self.faults.verify_error = None
        self.verify_status = 1 if problems else 2
        self.verify_error = "; ".join(problems).encode()[:255]
        self.tx_state = O.TX_VERIFY
        self._verify_done_at = self.now() + self.verify_s

    def _check_value(self, spec: ObjSpec, v: Any) -> str | None:
        if spec.type == "oid":
            return None if isinstance(v, tuple) and all(isinstance(x, int) and x >= 0 for x in v) else "wrongType"
        if spec.type == "octets":
            if not isinstance(v, bytes):
                return "wrongType"
            if spec.hi and len(v) > max(spec.hi, 255):
                return "wrongLength"
            return None
        if not isinstance(v, int) or isinstance(v, Ticks):
            return "wrongType"
        if spec.enum is not None:
            return None if v in spec.enum else "wrongValue"
        return None if spec.lo <= v <= spec.hi else "wrongValue"

    # ------------------------------------------------------------------ the objects, as SNMP sees them
    def exists(self, o: O.OID) -> bool:
        """Whether the device has object instance ``o``."""
        return o in self.spec

    def next_oid(self, o: O.OID) -> O.OID | None:
        """The first instance after ``o`` in OID order (``None``: end of the MIB view)."""
        i = bisect.bisect_right(self._oids, o)
        return self._oids[i] if i < len(self._oids) else None

    def set(self, varbinds: list[tuple[O.OID, Any]], principal: str = "") -> SetResult:
        """Apply one SET PDU from ``principal`` (SNMPv3 user or community): all varbinds or none.

        Access control by community or user is the agent's; this checks what the device itself
        refuses (unknown or read-only objects, types, ranges, the transaction rules).  The PDU's
        owner is its ``TX_OWNER`` token, or, on a device without the owner objects (as a real
        controller), its principal (see :meth:`_tx_allowed`).
        """
        if self.owner_objects:
            owner = next((bytes(v) for o, v in varbinds if o == O.TX_OWNER and isinstance(v, bytes)), None)
        else:
            owner = f"user:{principal}".encode() if principal else None
        bad = self._check_set(varbinds, owner)
        if bad is not None:
            return bad
        if owner is not None and owner == self.tx_owner:
            self._tx_active_at = self.now()
        for o, v in varbinds:
            self._apply(o, v, owner)
        n = self.faults.reboot_after_p2_sets
        if n and self._p2_sets >= n and self.tx_state == O.TX_TRANSACTION:
            self.faults.reboot_after_p2_sets = 0
            self.reboot()
            return SetResult(answered=False)  # it went down before answering
        return SetResult()

    def _check_set(self, varbinds: list[tuple[O.OID, Any]], owner: bytes | None) -> SetResult | None:
        """The first varbind the device refuses, as a :class:`SetResult` (``None``: all fine)."""
        for i, (o, v) in enumerate(varbinds, 1):
            spec = self.spec.get(o)
            if spec is None:
                return SetResult("noCreation", i)
            if spec.access != "rw":
                return SetResult("notWritable", i)
            bad = self._check_value(spec, v)
            if bad:
                return SetResult(bad, i)
            if spec.kind == "P2" and (self.tx_state != O.TX_TRANSACTION or owner is None or self.tx_owner != owner):
                return SetResult("genErr", i)
            if o == O.DB_CREATE_TRANSACTION:
                err = self._tx_allowed(int(v), owner)
                if err:
                    return SetResult(err, i)
            refused = self.unit.refused(o, v)
            if refused:
                return SetResult(refused, i)
            if o == O.SYSTEM_PATTERN_CONTROL and 1 <= v <= 253:
                if v > self.caps.max_patterns or self._pattern_cycle(v) == 0 or self._check_pattern(self.db, v):
                    return SetResult("wrongValue", i)
        return None

    def _apply(self, o: O.OID, v: Any, owner: bytes | None) -> None:
        spec = self.spec[o]
        if o == O.TX_OWNER:
            return  # names the PDU's owner; the transaction's holder changes only on open
        if spec.kind == "P2":
            self.buffer[o] = v
            self._p2_sets += 1
        elif o == O.DB_CREATE_TRANSACTION:
            self._tx_set(int(v), owner)
        elif self.unit.apply(o, v):
            self._last_system_control = self.now()
            if int(self.db[O.SYSTEM_PATTERN_CONTROL]):
                self.unit_control_status = O.CONTROL_SYSTEM
        elif o == O.SYSTEM_PATTERN_CONTROL:
            self.db[o] = v
            self._last_system_control = self.now()
            self.unit_control_status = O.CONTROL_SYSTEM if v else O.CONTROL_TIMEBASE
            target = self.tod_pattern() if v in (0, 254, 255) else v
            self.pending_pattern = target if target != self.active_pattern else None
        else:
            self.db[o] = v

    # ------------------------------------------------------------------ the database transaction
    def tx_idle(self) -> float:
        """Emulated seconds since the transaction's holder last set anything (0: none open)."""
        if self.tx_state == O.TX_NORMAL or self.faults.other_manager_live:
            return 0.0
        return max(self.now() - self._tx_active_at, 0.0)

    def _tx_allowed(self, v: int, owner: bytes | None) -> str | None:
        """Why ``dbCreateTransaction = v`` from ``owner`` is refused (``None``: allowed).

        The transaction belongs to the token that opened it, never to an address: another
        manager cannot join it, write into it, verify or apply it.  It may only *abort* it
        (``normal``, buffer discarded, never applied) once the holder has been silent for
        :attr:`takeover_s`: a killed manager's transaction is cleared, a live one is not.
        """
        s = self.tx_state
        if v == O.TX_DONE:
            return "wrongValue"  # only the device sets done
        if not owner:
            return "inconsistentValue"  # the transaction needs an owner token
        if s != O.TX_NORMAL and owner != self.tx_owner:
            if v == O.TX_NORMAL and s != O.TX_VERIFY and self.tx_idle() >= self.takeover_s:
                return None  # a stale transaction may be aborted
            return "genErr"  # another manager holds the database
        if v == O.TX_TRANSACTION and s not in (O.TX_NORMAL, O.TX_TRANSACTION, O.TX_DONE):
            return "inconsistentValue"
        if v == O.TX_VERIFY and s != O.TX_TRANSACTION:
            return "inconsistentValue"
        if v == O.TX_NORMAL and s == O.TX_VERIFY:
            return "inconsistentValue"  # wait for done
        return None

    def _tx_set(self, v: int, owner: bytes | None) -> None:
        if v == O.TX_TRANSACTION:
            if self.tx_state == O.TX_NORMAL:
                self.buffer, self._p2_sets = {}, 0
            self.tx_state, self.tx_owner, self._tx_active_at = O.TX_TRANSACTION, owner, self.now()
            self.verify_status, self.verify_error = 0, b""
        elif v == O.TX_VERIFY:
            self._run_verify()
        elif v == O.TX_NORMAL:
            mine = owner == self.tx_owner
            if mine and self.tx_state == O.TX_DONE and self.verify_status == 2:
                for o, val in self.buffer.items():
                    self.db[o] = self.faults.readback_mismatch.pop(o, val)
                self._tables_version += 1
                self.unit.load_tables(self.db)
            elif not mine and self.tx_state != O.TX_NORMAL:
                self.stale_aborts += 1
            self.buffer, self.tx_state, self.tx_owner = {}, O.TX_NORMAL, None
            self.faults.other_manager_live = False

    def reboot(self) -> None:
        """Power-cycle: the transaction buffer is lost, committed tables stay (non-volatile)."""
        with self.lock:
            kept = {o: v for o, v in self.db.items() if self.spec[o].kind in ("P", "P2")}
            self.reboots += 1
            self._power_on()
            self.db.update(kept)
            self._silent_until = self.clock() + self.faults.reboot_s

    def arm(self, fault: str) -> None:
        """Arm a named fault for the next deploy (the names in :data:`FAULT_NAMES`)."""
        with self.lock:
            f = self.faults
            if fault == "verify-error":
                f.verify_error = "PHASE 03 CONCURRENCY FAULT"
            elif fault == "readback-mismatch":  # the first phase's split, in either central slot
                for slot in self.profile.pattern_slots:
                    f.readback_mismatch[O.SPLIT_TIME + (slot, self.profile.phases[0])] = 1
            elif fault == "bad-health":
                f.bad_health = 7  # badPlan
            elif fault == "reboot":
                f.reboot_after_p2_sets = 20
            elif fault == "drop-set":
                f.drop_set_responses = 2
            elif fault == "late":
                f.delay_responses, f.delay_s = 1, 1.5
            elif fault == "held":
                self.hold_transaction_for_other()
            else:
                raise WulinError(f"unknown fault {fault!r}; known: {', '.join(FAULT_NAMES)}")

    def hold_transaction_for_other(self) -> None:
        """Fault: another manager, alive, opens the database transaction and keeps it."""
        with self.lock:
            self.tx_state, self.tx_owner, self._tx_active_at = O.TX_TRANSACTION, b"other-manager", self.now()
            self.faults.other_manager_live = True



def _positive(value: float, what: str) -> float:
    """``value`` as a float, refused unless finite and above 0."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise WulinError(f"{what} {value!r}: not a number") from None
    if not math.isfinite(x) or x <= 0:
        raise WulinError(f"{what} {value!r}: must be a finite number above 0")
    return x
