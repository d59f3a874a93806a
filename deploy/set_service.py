"""Deploy and roll back a time-of-day plan set: the store allows, the adapter writes, the store records.

The same path as a single plan's (:mod:`deploy.service`): the store checks the signed approval
and hands out the signal's lease; the device is read and the objects the download will write
are kept, signed, in the audit log before anything is written; :mod:`deploy.tod_ntcip` does the
NTCIP work (one transaction, readback, the time base in force, health, restore on failure); the
store records the outcome.  Ctrl-C (or SIGTERM through the CLI) ends in a recorded outcome:
``failed`` with the controller unchanged (readback confirms), or ``rolled_back``.

A *killed* set deploy or rollback (kill -9, a lost machine) leaves the signal's lease;
:func:`recover_set` (``wulin plan recover SIGNAL``) takes it over once its holder is gone,
reads the controller, finishes the deploy if the controller holds the whole set and runs its
time base's pattern with clean health, restores the kept snapshot otherwise, and records what it
found.
"""

from __future__ import annotations

from controllers.plan import PlanSet
from deploy import oids as O
from deploy import timebase, tod_ntcip
from deploy.identity import Principal
from deploy.ntcip import DeployFailed, DeployInterrupted, NtcipAdapter, decode_values
from deploy.plan_sets import SetTicket
from deploy.service import (
    ActionInterrupted,
    DeployOptions,
    Outcome,
    _why_recoverable,
    holder_id,
    make_adapter,
)
from deploy.snmp import SnmpError, SnmpTimeout
from deploy.store import PlanStore
from sim.errors import WulinError

_RECORDED = {"deployed": "deployed", "rolled_back": "rolled_back"}


def deploy_set(store: PlanStore, ref: str, actor: Principal, opts: DeployOptions,
               ps: PlanSet | None = None) -> Outcome:
    """Deploy an approved plan set to its signal's controller; every ending is recorded.

    Raises:
        Refused: the store does not allow it (state, signature, lease, role).
        ActionInterrupted: Ctrl-C; the controller was settled and the outcome recorded.
    """
    holder = holder_id()
    ticket = store.begin_set_deploy(ref, actor, ps, holder=holder, lease_s=opts.lease_s)
    h, plan_set = ticket.record.hash, ticket.record.plan_set
    ad = make_adapter(ticket.device, opts)
    try:
        try:
            prepared = tod_ntcip.set_values(ad, plan_set)
            summary = tod_ntcip.pre_deploy_record(ad, *prepared)
        except (DeployFailed, SnmpError, SnmpTimeout, WulinError) as exc:
            msg = f"{exc}; nothing was written"
            store.finish_set_deploy(h, actor, "failed", {"message": msg}, holder=holder)
            return Outcome(h, "failed", msg, False)
        store.record_set_snapshot(ticket, actor, summary)
        try:
            rep = tod_ntcip.deploy_set(ad, plan_set, prepared)
        except DeployInterrupted as exc:
            rep = exc.report
            state = _RECORDED.get(rep.outcome, "failed")
            store.finish_set_deploy(h, actor, state, rep.summary() | {"slots": summary["slots"]}, holder=holder)
            raise ActionInterrupted(f"interrupted; recorded {state}: {rep.message}") from None
    finally:
        ad.close()
    state = _RECORDED.get(rep.outcome, "failed")
    store.finish_set_deploy(h, actor, state, rep.summary() | {"slots": summary["slots"]}, holder=holder)
    return Outcome(h, state, rep.message, rep.ok, len(rep.wire))


def rollback_set(store: PlanStore, ref: str, actor: Principal, opts: DeployOptions) -> Outcome:
    """Put the controller back as it was before the set was deployed (a supervisor), and record it."""
    holder = holder_id()
    ticket = store.begin_set_rollback(ref, actor, holder=holder, lease_s=opts.lease_s)
    ad = make_adapter(ticket.device, opts)
    try:
        rep = tod_ntcip.rollback_set(ad, ticket.summary or {})
    finally:
        ad.close()
    ok = rep.outcome == "rolled_back"
    rec = store.finish_set_rollback(ticket.record.hash, actor, ok, {"message": rep.message, "steps": rep.steps},
                                    holder=holder)
    return Outcome(rec.hash, rec.state, rep.message, ok, len(rep.wire))


def recover_set(store: PlanStore, signal_id: str, actor: Principal, opts: DeployOptions) -> Outcome:
    """Finish or undo a plan-set deploy (or rollback) whose process died, from what the device runs."""
    lease = store.lease(signal_id)
    if lease is None or not lease.purpose.startswith("set-"):
        raise WulinError(f"signal {signal_id!r}: no plan-set deploy or rollback is under way")
    why = _why_recoverable(lease)
    ticket = store.take_over_set(signal_id, actor, lease, holder_id(), opts.lease_s, why)
    ad = make_adapter(ticket.device, opts)
    try:
        if lease.purpose == "set-rollback":
            rep = tod_ntcip.rollback_set(ad, ticket.summary or {})
            ok = rep.outcome == "rolled_back"
            rec = store.finish_set_rollback(ticket.record.hash, actor, ok, {"message": f"{why}; {rep.message}"},
                                            holder=ticket.lease.holder)
            return Outcome(rec.hash, rec.state, rep.message, ok)
        return _settle_set_deploy(store, ticket, actor, ad, why)
    finally:
        ad.close()


def _settle_set_deploy(store: PlanStore, ticket: SetTicket, actor: Principal, ad: NtcipAdapter, why: str) -> Outcome:
    h, holder, summary = ticket.record.hash, ticket.lease.holder, ticket.summary

    def finish(state: str, msg: str, detail: dict[str, object] | None = None) -> Outcome:
        store.finish_set_deploy(h, actor, state, (detail or {}) | {"message": msg, "recovered": True}, holder=holder)
        return Outcome(h, state, msg, state == "deployed")

    if summary is None:
        return finish("failed", f"{why}; no snapshot was kept, so nothing was written by this deploy")
    ps, slots = ticket.record.plan_set, {k: int(v) for k, v in summary["slots"].items()}
    values = timebase.pattern_values(ps, ad.profile, ad.probe(), slots)
    values.update(timebase.timebase_values(ps, slots, tod_ntcip.read_sizes(ad)))
    running, wanted = int(ad._get(O.COORD_PATTERN_STATUS)), tod_ntcip.pattern_in_force(ad)
    if not ad.readback(values) and running == wanted and running in slots.values():
        problems = ad.health()
        if not problems:
            return finish("deployed", f"{why}; the controller holds the set and runs pattern {running} of its "
                          "time base with clean health: finished", summary)
        why += "; health check failed: " + "; ".join(problems)
    snapshot = decode_values(summary["snapshot"])
    if not ad.readback(snapshot):
        return finish("failed", f"{why}; readback equals the snapshot: the controller is unchanged")
    try:
        tod_ntcip.restore_set(ad, snapshot, int(summary.get("previous_control") or 0))
    except (DeployFailed, SnmpError, SnmpTimeout) as exc:
        raise WulinError(f"plan set {h[:12]}: restoring the controller failed ({exc}); signal "
                         f"{ticket.record.signal_id!r} stays leased: run `wulin plan recover` again") from None
    return finish("rolled_back", f"{why}; rolled back to the snapshot taken before the deploy (readback verified)")
