"""Deploy and roll back a time-of-day plan set: the store allows, the adapter writes, the store records.

The same path as a single plan's (:mod:`deploy.service`): the store checks the signed approval
and hands out the signal's lease; the device is read and the objects the download will write
are kept, signed, in the audit log before anything is written; :mod:`deploy.tod_ntcip` does the
NTCIP work (one transaction, readback, the time base in force, health, restore on failure); the
store records the outcome.  Ctrl-C (or SIGTERM through the CLI) ends in a recorded outcome:
``failed`` with the controller unchanged (readback confirms), or ``rolled_back``.

Not covered yet: a *killed* set deploy (kill -9) leaves the signal's lease, which
``wulin plan recover`` does not settle for a set; it expires after the lease time.
"""

from __future__ import annotations

from controllers.plan import PlanSet
from deploy import tod_ntcip
from deploy.identity import Principal
from deploy.ntcip import DeployFailed, DeployInterrupted
from deploy.service import ActionInterrupted, DeployOptions, Outcome, holder_id, make_adapter
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
