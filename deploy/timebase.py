"""A time-of-day plan set as NTCIP time-base objects, and how a controller follows them.

NTCIP 1201 says *when* (the schedule table picks a day plan by month, weekday and date; a
day plan's events start actions at an hour and minute, each event naming its action by OID);
NTCIP 1202 says *what* (``timebaseAscPattern`` of each action).  A :class:`PlanSet` goes to a
controller as:

* one **pattern** per plan (the pattern download of :func:`deploy.profile.plan_values`), in
  pattern numbers that are neither the local pattern 1 nor the one running now (those are
  never rewritten under the running signal);
* one **action** per plan, ``timebaseAscPattern.<a>`` = its pattern; unused actions are
  cleared (pattern 0);
* **day plan 1**: one event per schedule entry (``dayPlanHour``, ``dayPlanMinute``,
  ``dayPlanActionNumberOID`` = ``timebaseAscActionNumber.<a>``); unused events get the null
  OID ``0.0``;
* **schedule entry 1** runs day plan 1 on every month, weekday and date; every other entry is
  cleared (month 0 matches no day).

All of it in one database transaction with the patterns (:mod:`deploy.tod_ntcip`), so the
device verifies the patterns its schedule names before anything applies.

The phase table is one set of timings for every pattern in NTCIP 1202 v02: the plans of a
set must agree on each phase's yellow, red clearance and ring (a clear error otherwise); the
minimum green, walk, pedestrian clearance and ``phaseMaximum1`` take the largest of the plans,
and every plan's split must still hold them (else a clear error naming plan and stage).

The device side (:func:`in_force`, :func:`verify_timebase`, :func:`objects`) is what the
emulator's firmware does with the same objects: the day's day plan, the event in force, its
action's pattern, and the consistency checks its verify runs.  Standard library only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controllers.plan import PlanSet, parse_clock
from deploy import oids as O
from deploy.profile import Capabilities, DeviceProfile, Values, plan_values
from sim.errors import WulinError

LOCAL_PATTERN = 1
DAY_PLAN = 1  # the day plan a deploy writes; schedule entry 1 runs it every day
ALL_MONTHS = 0x1FFE  # bits 1-12
ALL_WEEKDAYS = 0xFE  # bits 1-7, Sunday to Saturday
# bits 1-31: 0xFFFFFFFE, carried as the Integer32 with the same 32 bits (bit 31 lies past
# Integer32's positive range, although the MIB gives the column 0..4294967295)
ALL_DATES = 0xFFFFFFFE - (1 << 32)
EPOCH = dt.date(2026, 1, 5)  # the emulator's calendar: its day 0 (a Monday)
# Phase columns all patterns share.  The clearances and rings define every split: the plans of
# a set must agree on them.  Minimum green, walk and pedestrian clearance take the largest of
# the plans (the safer value), as long as every plan's splits still hold them.
EQUAL_PHASE_COLUMNS = {O.PHASE_YELLOW: "yellow", O.PHASE_RED_CLEAR: "red clearance", O.PHASE_RING: "ring"}
LARGEST_PHASE_COLUMNS = (O.PHASE_MIN_GREEN, O.PHASE_WALK, O.PHASE_PED_CLEAR, O.PHASE_MAX1)


@dataclass(frozen=True)
class TimebaseSizes:
    """The time-base table sizes a controller reports (read by :func:`read_sizes`)."""

    max_actions: int = 8
    max_day_plans: int = 4
    max_events: int = 16
    max_schedule_entries: int = 4


SIZE_OIDS = {"max_actions": O.MAX_TIMEBASE_ACTIONS, "max_day_plans": O.MAX_DAY_PLANS,
             "max_events": O.MAX_DAY_PLAN_EVENTS, "max_schedule_entries": O.MAX_SCHEDULE_ENTRIES}


def read_sizes(got: Mapping[O.OID, Any]) -> TimebaseSizes:
    """Sizes from a GET of :data:`SIZE_OIDS`."""
    try:
        return TimebaseSizes(**{k: int(got[o]) for k, o in SIZE_OIDS.items()})
    except (KeyError, TypeError, ValueError) as exc:
        raise WulinError(f"the controller reports no usable time-base table sizes ({exc})") from None


def pattern_limit(caps: Capabilities) -> int:
    """Highest pattern number a plan can go to (split and sequence numbers equal it)."""
    return min(caps.max_patterns, caps.max_splits, caps.max_sequences)


def choose_slots(ps: PlanSet, profile: DeviceProfile, caps: Capabilities, busy: set[int]) -> dict[str, int]:
    """A pattern number per plan of the set (plan hash -> pattern).

    Never the local pattern 1 nor a ``busy`` one (running or about to run); the profile's two
    single-plan slots come last, so a later single-plan deploy rarely overwrites a scheduled one.

    Raises:
        WulinError: the device has too few free patterns.
    """
    last = pattern_limit(caps)
    spare = [p for p in range(2, last + 1) if p not in busy and p not in profile.pattern_slots]
    spare += [p for p in profile.pattern_slots if 2 <= p <= last and p not in busy]
    need = len(ps.plans)
    if need > len(spare):
        raise WulinError(
            f"signal {ps.signal_id!r}: the controller has {len(spare)} free pattern(s) (patterns 2-{last}, "
            f"less the running one{'s' if len(busy) > 1 else ''} {sorted(busy)}), the plan set needs {need}; "
            "use fewer plans or a controller with more patterns")
    return {p.plan_hash(): slot for p, slot in zip(ps.plans, spare, strict=False)}


def fit_problems(ps: PlanSet, sizes: TimebaseSizes) -> list[str]:
    """Why the controller's time-base tables cannot hold the set (empty: they can)."""
    out = []
    sid = ps.signal_id
    if len(ps.schedule.entries) > sizes.max_events:
        out.append(f"signal {sid!r}: the schedule has {len(ps.schedule.entries)} entries, the controller's day "
                   f"plans hold {sizes.max_events} events (maxDayPlanEvents)")
    if len(ps.plans) > sizes.max_actions:
        out.append(f"signal {sid!r}: the set has {len(ps.plans)} plans, the controller has {sizes.max_actions} "
                   "time-base actions (maxTimebaseAscActions)")
    if sizes.max_day_plans < DAY_PLAN or sizes.max_schedule_entries < 1:
        out.append(f"signal {sid!r}: the controller has no day plan or schedule entry to write")
    for when, _ in ps.schedule.entries:
        if parse_clock(when) % 60:
            out.append(f"signal {sid!r}: entry {when!r} is not on a whole minute (NTCIP day plan events are "
                       "hour and minute)")
    return out


def pattern_values(ps: PlanSet, profile: DeviceProfile, caps: Capabilities, slots: Mapping[str, int]) -> Values:
    """Every plan's pattern download, merged over the one shared phase table.

    Raises:
        WulinError: two plans disagree on a phase's clearance or ring, or a plan's split is too
            short for the merged minimum green or pedestrian times (named), or a plan does not fit.
    """
    out: Values = {}
    for plan in ps.plans:
        for o, v in plan_values(plan, profile, caps, slots[plan.plan_hash()]).items():
            col = o[:-1]
            if col in LARGEST_PHASE_COLUMNS:
                out[o] = max(v, out.get(o, v))
            elif col in EQUAL_PHASE_COLUMNS and out.get(o, v) != v:
                raise WulinError(
                    f"signal {ps.signal_id!r}: plans of the set differ in phase {o[-1]}'s "
                    f"{EQUAL_PHASE_COLUMNS[col]} ({out[o]} vs {v} in plan {plan.name or plan.short_hash!r}); an "
                    "NTCIP 1202 v02 controller has one phase table for all patterns: make them equal")
            else:
                out[o] = v
    _check_splits(ps, profile, out, slots)
    return out


def _check_splits(ps: PlanSet, profile: DeviceProfile, v: Values, slots: Mapping[str, int]) -> None:
    """Every plan's split holds the merged minimum green (and walk plus clearance) of its phase."""
    for plan in ps.plans:
        for k, phases in enumerate(profile.stage_phases):
            for p in phases:
                need = (max(v[O.PHASE_MIN_GREEN + (p,)], v[O.PHASE_WALK + (p,)] + v[O.PHASE_PED_CLEAR + (p,)])
                        + (v[O.PHASE_YELLOW + (p,)] + v[O.PHASE_RED_CLEAR + (p,)]) / 10)
                split = v[O.SPLIT_TIME + (slots[plan.plan_hash()], p)]
                if split < need:
                    raise WulinError(
                        f"signal {ps.signal_id!r}: plan {plan.name or plan.short_hash!r} stage {k}: split {split} s is "
                        f"shorter than phase {p}'s minimum green or pedestrian times plus clearance ({need:g} s) that "
                        "another plan of the set needs; the plans share one phase table (NTCIP 1202 v02)")


def timebase_values(ps: PlanSet, slots: Mapping[str, int], sizes: TimebaseSizes) -> Values:
    """The action, day-plan and schedule objects that run the set (see the module docstring)."""
    action = {p.plan_hash(): a for a, p in enumerate(ps.plans, 1)}
    v: Values = {}
    for a in range(1, sizes.max_actions + 1):
        plan = ps.plans[a - 1] if a <= len(ps.plans) else None
        v[O.TIMEBASE_PATTERN + (a,)] = slots[plan.plan_hash()] if plan else 0
        v[O.TIMEBASE_AUX_FUNCTION + (a,)] = 0
        v[O.TIMEBASE_SPECIAL_FUNCTION + (a,)] = 0
    entries = ps.schedule.entries
    for e in range(1, sizes.max_events + 1):
        row = (DAY_PLAN, e)
        if e <= len(entries):
            t = int(parse_clock(entries[e - 1][0]))
            hour, minute, act = t // 3600, t % 3600 // 60, O.TIMEBASE_ACTION_NUMBER + (action[entries[e - 1][1]],)
        else:
            hour, minute, act = 0, 0, O.NULL_OID
        v[O.DAY_PLAN_HOUR + row], v[O.DAY_PLAN_MINUTE + row], v[O.DAY_PLAN_ACTION + row] = hour, minute, act
    for n in range(1, sizes.max_schedule_entries + 1):
        every = n == 1
        v[O.SCHEDULE_MONTH + (n,)] = ALL_MONTHS if every else 0
        v[O.SCHEDULE_DAY + (n,)] = ALL_WEEKDAYS if every else 0
        v[O.SCHEDULE_DATE + (n,)] = ALL_DATES if every else 0
        v[O.SCHEDULE_DAY_PLAN + (n,)] = DAY_PLAN
    return v


def slots_in(values: Mapping[O.OID, Any]) -> set[int]:
    """The pattern numbers a download writes (its ``patternCycleTime`` rows)."""
    return {o[-1] for o in values if o[:-1] == O.PATTERN_CYCLE}


# ------------------------------------------------------------------ the device side
@dataclass(frozen=True)
class InForce:
    """What a controller's time base runs now (0: nothing applies)."""

    day_plan: int
    event: int
    action: int
    pattern: int


def _day_bits(day: dt.date) -> tuple[int, int, int]:
    weekday = (day.isoweekday() % 7) + 1  # Sunday 1 .. Saturday 7
    return 1 << day.month, 1 << weekday, 1 << day.day


def day_plan_of(db: Mapping[O.OID, Any], sizes: TimebaseSizes, day: dt.date) -> int:
    """The day plan of the first schedule entry that matches ``day`` (0: none)."""
    month, weekday, date = _day_bits(day)
    for n in range(1, sizes.max_schedule_entries + 1):
        if (int(db[O.SCHEDULE_MONTH + (n,)]) & month and int(db[O.SCHEDULE_DAY + (n,)]) & weekday
                and int(db[O.SCHEDULE_DATE + (n,)]) & 0xFFFFFFFF & date):
            return int(db[O.SCHEDULE_DAY_PLAN + (n,)])
    return 0


def events(db: Mapping[O.OID, Any], sizes: TimebaseSizes, day_plan: int) -> list[tuple[int, int, int]]:
    """``(minute of day, event, action)`` of the day plan's used events, in time order."""
    out = []
    for e in range(1, sizes.max_events + 1):
        act = tuple(db.get(O.DAY_PLAN_ACTION + (day_plan, e), O.NULL_OID))
        if act[:-1] == O.TIMEBASE_ACTION_NUMBER and len(act) == len(O.TIMEBASE_ACTION_NUMBER) + 1:
            minute = int(db[O.DAY_PLAN_HOUR + (day_plan, e)]) * 60 + int(db[O.DAY_PLAN_MINUTE + (day_plan, e)])
            out.append((minute, e, act[-1]))
    return sorted(out)


def in_force(db: Mapping[O.OID, Any], sizes: TimebaseSizes, tod: float) -> InForce:
    """The day plan, event, action and pattern in force at ``tod`` seconds after day 0's
    midnight; before the day's first event, the previous day's last event still runs."""
    day, minute = int(tod // 86400), int(tod % 86400 // 60)
    plan = day_plan_of(db, sizes, EPOCH + dt.timedelta(days=day))
    evs = events(db, sizes, plan) if plan else []
    if evs and minute < evs[0][0]:
        prev = day_plan_of(db, sizes, EPOCH + dt.timedelta(days=day - 1))
        prev_evs = events(db, sizes, prev) if prev else []
        if prev_evs:
            _, e, a = prev_evs[-1]
            return InForce(prev, e, a, _action_pattern(db, sizes, a))
    now = [ev for ev in evs if ev[0] <= minute]
    if not now:
        return InForce(plan, 0, 0, 0)
    _, e, a = now[-1]
    return InForce(plan, e, a, _action_pattern(db, sizes, a))


def _action_pattern(db: Mapping[O.OID, Any], sizes: TimebaseSizes, action: int) -> int:
    return int(db.get(O.TIMEBASE_PATTERN + (action,), 0)) if 1 <= action <= sizes.max_actions else 0


def verify_timebase(db: Mapping[O.OID, Any], sizes: TimebaseSizes) -> tuple[list[str], set[int]]:
    """The device-side checks of the time base: ``(faults, patterns the day plans in use name)``.

    A used event names an action that exists; a day plan in a schedule entry exists; the
    patterns the events run are returned so verify checks them as it checks a running one.
    """
    faults: list[str] = []
    named: set[int] = set()
    used_plans = {int(db[O.SCHEDULE_DAY_PLAN + (n,)]) for n in range(1, sizes.max_schedule_entries + 1)
                  if int(db[O.SCHEDULE_MONTH + (n,)])}
    for plan in sorted(used_plans):
        if not 1 <= plan <= sizes.max_day_plans:
            faults.append(f"SCHEDULE DAY PLAN {plan} FAULT")
            continue
        for e in range(1, sizes.max_events + 1):
            act = tuple(db.get(O.DAY_PLAN_ACTION + (plan, e), O.NULL_OID))
            if act == O.NULL_OID:
                continue
            if act[:-1] != O.TIMEBASE_ACTION_NUMBER or not 1 <= act[-1] <= sizes.max_actions:
                faults.append(f"DAY PLAN {plan} EVENT {e} ACTION FAULT")
                continue
            named.add(_action_pattern(db, sizes, act[-1]) or LOCAL_PATTERN)
    return faults, named


def objects(sizes: TimebaseSizes) -> list[tuple[O.OID, Any, str, str, str, int, int]]:
    """The time-base objects a controller holds at power-on: ``(oid, value, access, kind,
    type, lo, hi)``; action 1 runs the local pattern all day (day plan 1, event 1 at 00:00)."""
    out: list[tuple[O.OID, Any, str, str, str, int, int]] = []
    for o, n in ((O.MAX_TIMEBASE_ACTIONS, sizes.max_actions), (O.MAX_DAY_PLANS, sizes.max_day_plans),
                 (O.MAX_DAY_PLAN_EVENTS, sizes.max_events), (O.MAX_SCHEDULE_ENTRIES, sizes.max_schedule_entries)):
        out.append((o, n, "ro", "S", "int", 0, 65535))
    for a in range(1, sizes.max_actions + 1):
        out.append((O.TIMEBASE_ACTION_NUMBER + (a,), a, "ro", "S", "int", 1, 255))
        out.append((O.TIMEBASE_PATTERN + (a,), LOCAL_PATTERN if a == 1 else 0, "rw", "P2", "int", 0, 255))
        out.append((O.TIMEBASE_AUX_FUNCTION + (a,), 0, "rw", "P2", "int", 0, 255))
        out.append((O.TIMEBASE_SPECIAL_FUNCTION + (a,), 0, "rw", "P2", "int", 0, 255))
    out.append((O.TIMEBASE_ACTION_STATUS, 0, "ro", "S", "int", 0, 255))
    for n in range(1, sizes.max_schedule_entries + 1):
        every = n == 1
        out.append((O.SCHEDULE_NUMBER + (n,), n, "ro", "S", "int", 1, 65535))
        out.append((O.SCHEDULE_MONTH + (n,), ALL_MONTHS if every else 0, "rw", "P2", "int", 0, 65535))
        out.append((O.SCHEDULE_DAY + (n,), ALL_WEEKDAYS if every else 0, "rw", "P2", "int", 0, 255))
        out.append((O.SCHEDULE_DATE + (n,), ALL_DATES if every else 0, "rw", "P2", "int", -(1 << 31), (1 << 31) - 1))
        out.append((O.SCHEDULE_DAY_PLAN + (n,), DAY_PLAN, "rw", "P2", "int", 1, 255))
    for plan in range(1, sizes.max_day_plans + 1):
        for e in range(1, sizes.max_events + 1):
            row = (plan, e)
            first = row == (DAY_PLAN, 1)
            out.append((O.DAY_PLAN_NUMBER + row, plan, "ro", "S", "int", 1, 255))
            out.append((O.DAY_PLAN_EVENT_NUMBER + row, e, "ro", "S", "int", 1, 255))
            out.append((O.DAY_PLAN_HOUR + row, 0, "rw", "P2", "int", 0, 23))
            out.append((O.DAY_PLAN_MINUTE + row, 0, "rw", "P2", "int", 0, 59))
            out.append((O.DAY_PLAN_ACTION + row, O.TIMEBASE_ACTION_NUMBER + (1,) if first else O.NULL_OID,
                        "rw", "P2", "oid", 0, 0))
    out.append((O.DAY_PLAN_STATUS, 0, "ro", "S", "int", 0, 255))
    return out
