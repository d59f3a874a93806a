"""Deploying a time-of-day plan set to one controller over NTCIP: patterns plus its time base.

The single-plan path of :class:`deploy.ntcip.NtcipAdapter`, widened to a
:class:`~controllers.plan.PlanSet` (its transaction, readback, waits, health and Ctrl-C
handling are reused, not copied):

1. **probe** the pattern and time-base table sizes, choose a pattern number per plan (never
   pattern 1 nor the running one) and check that the set fits (events, actions, patterns):
   a set that does not fit is refused before anything is written;
2. **snapshot** every object the download writes, the running pattern and system control;
3. one NTCIP 1201 **database transaction** holding every pattern, the action table, day plan
   1 and the schedule entries (:mod:`deploy.timebase`); the device verifies the patterns its
   day plan names; a verify failure aborts the transaction (nothing applied);
4. **readback** of every written object;
5. **activation**: a unit held by a system pattern is handed to its time base
   (``systemPatternControl`` 0); the adapter then reads which action the controller's time base
   has in force (``timebaseAscActionStatus``) and waits, up to a cycle, for its pattern to run;
   then **health** over the cycles asked for;
6. any failure after apply: **restore** the snapshot, the time base first (one transaction
   leaving the running pattern's rows alone), then, once the old schedule's pattern runs, what
   still differs; every object read back.
"""

from __future__ import annotations

from typing import Any

from controllers.plan import PlanSet
from deploy import oids as O
from deploy import timebase
from deploy.ntcip import DeployFailed, DeployInterrupted, DeployReport, NtcipAdapter, decode_values
from deploy.profile import Values
from deploy.snmp import SnmpError, SnmpTimeout
from sim.errors import WulinError


def read_sizes(ad: NtcipAdapter) -> timebase.TimebaseSizes:
    """The controller's time-base table sizes."""
    return timebase.read_sizes(ad.reader.get(list(timebase.SIZE_OIDS.values())))


def set_values(ad: NtcipAdapter, ps: PlanSet) -> tuple[Values, dict[str, int]]:
    """Everything the download writes for ``ps`` and the pattern of each plan (nothing written).

    Raises:
        DeployFailed: the set does not fit the controller (named), or reading it failed.
    """
    caps, sizes, st = ad.probe(), read_sizes(ad), ad.status()
    problems = timebase.fit_problems(ps, sizes)
    if problems:
        raise DeployFailed("the controller cannot hold this plan set: " + "; ".join(problems))
    # the running pattern, a system pattern asked for, and the one the time base asks for now
    busy = {int(st["pattern"]), pattern_in_force(ad)} | ({int(st["control"])} if 1 <= int(st["control"]) <= 253
                                                         else set())
    try:
        slots = timebase.choose_slots(ps, ad.profile, caps, busy)
        values = timebase.pattern_values(ps, ad.profile, caps, slots)
    except WulinError as exc:
        raise DeployFailed(f"the controller cannot hold this plan set: {exc}") from None
    values.update(timebase.timebase_values(ps, slots, sizes))
    return values, slots


def pre_deploy_record(ad: NtcipAdapter, values: Values, slots: dict[str, int]) -> dict[str, Any]:
    """What the device holds before a download of ``values``: the running pattern, system
    control and every object it will write (kept signed before anything is written)."""
    from deploy.ntcip import encode_values

    st = ad.status()
    return {"previous_pattern": st["pattern"], "previous_control": st["control"], "slots": slots,
            "snapshot": encode_values(ad.reader.get_many(sorted(values)))}


def deploy_set(ad: NtcipAdapter, ps: PlanSet, prepared: tuple[Values, dict[str, int]] | None = None) -> DeployReport:
    """Push ``ps`` to the controller; on any failure after writing, restore the snapshot.

    ``prepared``: the values and slots of :func:`set_values` when the caller already chose them
    (and kept the snapshot of exactly those objects).

    Raises:
        DeployInterrupted: Ctrl-C; the controller was put back first (see the single-plan path).
    """
    rep = DeployReport(ps.signal_id, ps.set_hash())
    ad._report, rep.wire = rep, ad.writer.wire
    applied, values = False, Values()
    try:
        values, slots = prepared or set_values(ad, ps)
        st = ad.status()
        rep.previous_pattern, rep.previous_control = st["pattern"], st["control"]
        rep.snapshot = ad.reader.get_many(sorted(values))
        ad._step(f"plan set of {len(ps.plans)} plan(s) into pattern(s) "
                 + ", ".join(f"{p.name or p.short_hash}={slots[p.plan_hash()]}" for p in ps.plans)
                 + f"; {len(ps.schedule.entries)} day-plan event(s); snapshot of {len(rep.snapshot)} objects")
        ad.write_tables(values)
        applied = True
        _activate(ad, rep, values)
        rep.outcome, rep.message = "deployed", "schedule in force, readback verified"
    except (DeployFailed, SnmpError, SnmpTimeout) as exc:
        rep.message = str(exc)
        ad._step(f"FAILED: {exc}")
        _undo(ad, rep, applied, values)
    except KeyboardInterrupt:
        rep.interrupted, rep.message = True, "interrupted (Ctrl-C)"
        try:
            if not applied:
                ad._abort()
                applied = bool(rep.snapshot) and bool(ad.readback(rep.snapshot))
            _undo(ad, rep, applied, values)
        except (KeyboardInterrupt, DeployFailed, SnmpError, SnmpTimeout) as exc:
            rep.outcome = "rollback_failed"
            rep.message += f"; cleanup failed, controller state unknown: {exc or 'interrupted again'}"
        raise DeployInterrupted(rep) from None
    finally:
        ad._report = None
    return rep


def _activate(ad: NtcipAdapter, rep: DeployReport, values: Values) -> None:
    """Readback, hand the unit to its time base, wait for the pattern in force, health."""
    rep.mismatches = ad.readback(values)
    if rep.mismatches:
        raise DeployFailed(f"readback differs from the plan set in {len(rep.mismatches)} object(s): "
                           + "; ".join(rep.mismatches[:3]))
    ad._step(f"readback of {len(values)} objects equals the plan set")
    if rep.previous_control:
        ad._set_confirmed(O.SYSTEM_PATTERN_CONTROL, O.PATTERN_STANDBY)
        ad._step("systemPatternControl = 0: the unit runs its time base")
    target = pattern_in_force(ad)
    if target not in timebase.slots_in(values):
        raise DeployFailed(f"the controller's time base runs pattern {target}, none of the set's")
    rep.slot = target
    ad._step(f"time base in force: pattern {target}; waiting for the cycle boundary")
    ad._wait(f"pattern {target} to start", ad.activation_timeout_s,
             lambda: ad._get(O.COORD_PATTERN_STATUS) == pattern_in_force(ad))
    ad._step(f"coordPatternStatus = {ad._get(O.COORD_PATTERN_STATUS)}")
    problems = ad.health()
    if problems:
        raise DeployFailed("health check failed: " + "; ".join(problems))


def pattern_in_force(ad: NtcipAdapter) -> int:
    """The pattern the controller's time base runs now (its action in force, read back)."""
    action = int(ad._get(O.TIMEBASE_ACTION_STATUS))
    if not action:
        return 0
    return int(ad._get(O.TIMEBASE_PATTERN + (action,))) or timebase.LOCAL_PATTERN


def _undo(ad: NtcipAdapter, rep: DeployReport, applied: bool, values: Values) -> None:
    if not applied:
        rep.outcome = "failed"
        ad._confirm_unchanged(rep)
        return
    try:
        restore_set(ad, rep.snapshot, int(rep.previous_control or 0))
        rep.outcome = "rolled_back"
        rep.message += "; rolled back to the snapshot (readback verified)"
    except (DeployFailed, SnmpError, SnmpTimeout) as exc:
        rep.outcome = "rollback_failed"
        rep.message += f"; ROLLBACK FAILED, controller state unknown: {exc}"
        ad._step(f"ROLLBACK FAILED: {exc}")


def _running_row(o: O.OID, running: int) -> bool:
    """Whether ``o`` is a pattern, split or sequence row of pattern ``running`` (numbers equal)."""
    if o[:len(O.PATTERN_ENTRY)] == O.PATTERN_ENTRY:
        return o[-1] == running
    if o[:len(O.SPLIT_ENTRY)] == O.SPLIT_ENTRY or o[:len(O.SEQUENCE_DATA)] == O.SEQUENCE_DATA:
        return o[-2] == running
    return False


def restore_set(ad: NtcipAdapter, snapshot: Values, previous_control: int) -> None:
    """Put back what a plan-set download replaced: the time base (and every pattern but the
    running one) in one transaction, the previous system control, then, once the restored
    schedule's pattern runs, whatever still differs; all read back.

    Raises:
        DeployFailed: a step failed (the message says which).
    """
    _write_all_but_the_running_pattern(ad, snapshot)
    if previous_control:
        ad.activate(previous_control)
    else:
        ad._wait("the restored schedule's pattern to start", ad.activation_timeout_s,
                 lambda: ad._get(O.COORD_PATTERN_STATUS) == pattern_in_force(ad))
    diff = ad.readback(snapshot)
    if diff:
        ad.write_tables(snapshot)
        diff = ad.readback(snapshot)
        if diff:
            raise DeployFailed(f"after restore, {len(diff)} object(s) still differ: " + "; ".join(diff[:3]))
    ad._step(f"restored {len(snapshot)} objects; readback equals the snapshot")


def _write_all_but_the_running_pattern(ad: NtcipAdapter, snapshot: Values, tries: int = 3) -> None:
    """Write ``snapshot`` less the rows of the pattern running now, in one transaction.

    The download may have reached a cycle boundary between reading the running pattern and the
    device's verify (the new schedule's pattern starts); the device then refuses to clear the
    pattern it runs, the transaction is aborted (nothing applied), and this tries again with
    the pattern that runs now.
    """
    for attempt in range(tries):
        running = int(ad._get(O.COORD_PATTERN_STATUS))
        first = {o: v for o, v in snapshot.items() if not _running_row(o, running)}
        if not ad.readback(first):
            return
        try:
            ad.write_tables(first)
            return
        except DeployFailed:
            if attempt == tries - 1 or int(ad._get(O.COORD_PATTERN_STATUS)) == running:
                raise
            ad._step(f"pattern {running} ended during the restore's verify; again without the running pattern")


def rollback_set(ad: NtcipAdapter, summary: dict[str, Any]) -> DeployReport:
    """Roll back a plan-set deploy from its audit summary."""
    rep = DeployReport(ad.profile.signal_id, "")
    ad._report, rep.wire = rep, ad.writer.wire
    try:
        restore_set(ad, decode_values(summary["snapshot"]), int(summary.get("previous_control") or 0))
        rep.outcome, rep.message = "rolled_back", "restored the snapshot taken before the deploy"
    except (DeployFailed, SnmpError, SnmpTimeout, KeyError, ValueError) as exc:
        rep.outcome, rep.message = "rollback_failed", f"rollback failed: {exc}"
    finally:
        ad._report = None
    return rep
