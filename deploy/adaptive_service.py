"""Adaptive mode on the devices: fallback plans first, then central control; and back to the plans.

**Deploy** of an approved :class:`~deploy.adaptive.AdaptiveConfig`, signal by signal:

1. the fallback plan: deployed as the device's time-of-day plan if it is not there yet
   (:func:`deploy.service.deploy` with ``schedule`` activation: downloaded, verified,
   activated, health checked, recorded as any plan deploy), then **read back** from the
   device (:func:`deploy.service.read_device`): the device must run, under time-base control,
   the pattern whose tables hold exactly that plan;
2. only then central control: ``unitBackupTime`` (the configuration's) and
   ``systemPatternControl`` 254 (free: no cycle of its own, it serves the central commands),
   confirmed by reading ``unitControlStatus`` systemControl.

From that moment a central process must feed the devices' watchdogs; when it stops, each
device returns to the verified fallback plan within its backup time.  If any signal fails,
the signals already switched are released and the deploy is recorded ``failed``.

**Rollback** releases every signal: phase control cleared, ``systemPatternControl`` 0, so the
device runs its time-of-day plan (the fallback), confirmed by ``unitControlStatus`` no longer
systemControl.  Every step is in the audit log through :class:`~deploy.adaptive.AdaptiveStore`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from deploy import oids as O
from deploy import service
from deploy.adaptive import AdaptiveStore
from deploy.identity import Principal
from deploy.ntcip import NtcipAdapter
from deploy.service import DeployOptions, Outcome
from deploy.snmp import SnmpError
from sim.errors import WulinError

_CLEAR = (O.PHASE_CONTROL_HOLD, O.PHASE_CONTROL_FORCE_OFF, O.PHASE_CONTROL_OMIT, O.PHASE_CONTROL_VEH_CALL,
          O.PHASE_CONTROL_PED_CALL, O.PHASE_CONTROL_PED_OMIT)


def _fallback_ready(store: Any, sid: str, plan_hash: str, actor: Principal, opts: DeployOptions) -> str:
    """Deploy ``sid``'s fallback plan if needed and read it back; "" when it runs, else why not."""
    rec = store.get(plan_hash)
    if rec.state != "deployed" or (store.live_plan(sid) or rec).hash != plan_hash:
        out = service.deploy(store, plan_hash, actor, replace(opts, activation="schedule"))
        if not out.ok:
            return f"{sid}: the fallback plan {plan_hash[:12]} was not deployed: {out.message}"
    ad = service.make_adapter(store.device(sid), opts)
    try:
        found = service.read_device(ad, rec.plan)
    finally:
        ad.close()
    if found.plan_slot is None or found.running != found.plan_slot or found.control != 0:
        return (f"{sid}: the device does not run the fallback plan as its time-of-day plan (running pattern "
                f"{found.running}, plan in slot {found.plan_slot}, systemPatternControl {found.control})")
    return ""


def _switch(ad: NtcipAdapter, pairs: list[tuple[O.OID, int]], want_system: bool) -> str:
    """SET ``pairs`` in one PDU and read ``unitControlStatus`` back; "" when as wanted."""
    try:
        ad.writer.set(pairs)
        status = int(ad.reader.get([O.UNIT_CONTROL_STATUS])[O.UNIT_CONTROL_STATUS])
    except (SnmpError, WulinError) as exc:
        return str(exc)
    if (status == O.CONTROL_SYSTEM) != want_system:
        return f"unitControlStatus reads {status} after the switch"
    return ""


def _to_central(ad: NtcipAdapter, backup_s: int) -> str:
    return _switch(ad, [(O.UNIT_BACKUP_TIME, backup_s), (O.SYSTEM_PATTERN_CONTROL, O.PATTERN_FREE)], True)


def _to_plan(ad: NtcipAdapter) -> str:
    groups = (max(ad.profile.phases) + 7) // 8
    pairs = [(c + (g,), 0) for c in _CLEAR for g in range(1, groups + 1)]
    return _switch(ad, [*pairs, (O.SYSTEM_PATTERN_CONTROL, O.PATTERN_STANDBY)], False)


def _each(store: Any, sids: list[str], opts: DeployOptions, fn: Any) -> dict[str, str]:
    """``fn(adapter)`` on each signal's device; signal -> "" (done) or why not."""
    out = {}
    for sid in sids:
        ad = service.make_adapter(store.device(sid), opts)
        try:
            out[sid] = fn(ad)
        finally:
            ad.close()
    return out


def deploy(store: Any, ref: str, actor: Principal, opts: DeployOptions) -> Outcome:
    """Deploy an approved adaptive configuration (module docstring); recorded in the store.

    Raises:
        Refused: the store does not allow it (state, signature, roles, fallback plans).
    """
    astore = AdaptiveStore(store)
    rec = astore.begin(ref, actor, "deploy")
    cfg, sids = rec.config, sorted(rec.config.fallback)
    problems = [p for sid in sids if (p := _fallback_ready(store, sid, cfg.fallback[sid], actor, opts))]
    switched: dict[str, str] = {}
    if not problems:
        switched = _each(store, sids, opts, lambda ad: _to_central(ad, cfg.bounds.backup_time))
        problems = [f"{sid}: {why}" for sid, why in switched.items() if why]
    if problems:
        released = _each(store, [s for s, why in switched.items() if not why], opts, _to_plan)
        msg = "; ".join(problems) + (f" (released {len(released)} signal(s) back to their plans)" if released else "")
        astore.finish(rec.hash, actor, "deploy", "failed", {"message": msg, "released": released})
        return Outcome(rec.hash, "failed", msg, False)
    msg = f"{len(sids)} signal(s) run their verified fallback plans and are under central control " \
          f"(unitBackupTime {cfg.bounds.backup_time} s)"
    astore.finish(rec.hash, actor, "deploy", "deployed", {"message": msg, "signals": sids})
    return Outcome(rec.hash, "deployed", msg, True)


def rollback(store: Any, ref: str, actor: Principal, opts: DeployOptions) -> Outcome:
    """Return every signal of a deployed configuration to its time-of-day plan; recorded."""
    astore = AdaptiveStore(store)
    rec = astore.begin(ref, actor, "rollback")
    done = _each(store, sorted(rec.config.fallback), opts, _to_plan)
    bad = {sid: why for sid, why in done.items() if why}
    if bad:
        msg = "; ".join(f"{sid}: {why}" for sid, why in bad.items())
        astore.finish(rec.hash, actor, "rollback", "failed", {"message": msg})
        return Outcome(rec.hash, "failed", msg, False)
    msg = f"{len(done)} signal(s) back on their time-of-day plans"
    astore.finish(rec.hash, actor, "rollback", "rolled_back", {"message": msg})
    return Outcome(rec.hash, "rolled_back", msg, True)
