"""Deploy, roll back and recover: the one orchestration behind the CLI (and later the console).

Every device action follows the same path: the store allows it and hands out the signal's
lease (:meth:`deploy.store.PlanStore.begin_deploy`, which also verifies the approval's
signature), the device is read and its state kept (signed, in the audit log) *before* anything
is written, the adapter does the NTCIP work, and the store records the outcome and frees the
lease.  What can interrupt that path ends in a recorded, consistent state:

* **Ctrl-C** (or any exception) during the adapter's work: the device is read again through a
  fresh adapter; whatever was written or is about to activate is undone from the kept snapshot
  (or the adapter's own rollback is confirmed), and the outcome (``rolled_back``, or ``failed``
  with the controller unchanged) is recorded before the interrupt is reported.
* **kill -9** (or a crash, or a lost machine): the lease stays behind; ``wulin plan recover
  SIGNAL`` takes it over once its holder is gone (a dead process on this host, or the lease
  expired), reads what the device runs, finishes the deploy if the device runs the plan with a
  clean health check, rolls it back otherwise, and records what it found.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controllers.plan import TimingPlan
from deploy import oids as O
from deploy.identity import Principal
from deploy.ntcip import (
    DeployFailed,
    DeployReport,
    NtcipAdapter,
    adapter_for,
    decode_values,
    encode_values,
)
from deploy.profile import plan_values
from deploy.snmp import SnmpError, SnmpTimeout
from deploy.store import Device, Lease, PlanStore, Ticket
from sim.errors import WulinError

LEASE_MARGIN_S = 120.0


class ActionInterrupted(WulinError):
    """A deploy or rollback was interrupted; the message says what was recorded.

    (Not :class:`deploy.ntcip.DeployInterrupted`, the adapter's own interrupt, which this
    module turns into this one once the outcome is recorded.)
    """


@dataclass(frozen=True)
class DeployOptions:
    """How the adapter talks to the device.

    Attributes:
        activation_timeout_s: Seconds to wait for the cycle boundary.
        activation: ``pattern`` or ``schedule`` (see :class:`deploy.ntcip.NtcipAdapter`).
        log: Called with each step's line.
    """

    activation_timeout_s: float = 400.0
    activation: str = "pattern"
    log: Callable[[str], None] | None = None

    @property
    def lease_s(self) -> float:
        """How long a device action may hold its signal: activation, health and restore."""
        return 3 * self.activation_timeout_s + LEASE_MARGIN_S


@dataclass(frozen=True)
class Outcome:
    """What a device action ended in, as recorded in the store."""

    plan_hash: str
    state: str
    message: str
    ok: bool
    pdus: int = 0


@dataclass(frozen=True)
class Finding:
    """What a controller runs, read back for a recovery.

    Attributes:
        running: ``coordPatternStatus``.
        control: ``systemPatternControl``.
        plan_slot: The pattern slot whose tables hold the plan (None: neither).
    """

    running: int
    control: int
    plan_slot: int | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-able, for the audit log."""
        return {"running_pattern": self.running, "pattern_control": self.control, "plan_slot": self.plan_slot}


def make_adapter(dev: Device, opts: DeployOptions) -> NtcipAdapter:
    """The one place an adapter is built from a registered device."""
    # credentials come from the secrets file (deploy/secrets.py), never from the store
    return adapter_for(dev, activation_timeout_s=opts.activation_timeout_s, activation=opts.activation,
                       log=opts.log)


def holder_id() -> str:
    """Who holds a lease: host, process id and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def holder_gone(holder: str) -> bool:
    """Whether a lease holder is a process of this host that no longer runs."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rpartition(")")[2].split()[0] == "Z"  # a zombie has stopped for good
    except FileNotFoundError:
        return True
    except OSError:
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


def pre_deploy_record(ad: NtcipAdapter, plan: TimingPlan) -> dict[str, Any]:
    """The device's running pattern and every object a deploy of ``plan`` may write (both slots)."""
    caps, st = ad.probe(), ad.status()
    wanted: set[Any] = set()
    for slot in ad.profile.pattern_slots:
        wanted |= set(plan_values(plan, ad.profile, caps, slot))
    wanted.add(O.TIMEBASE_PATTERN + (ad.action_in_force(),))
    snap = ad.reader.get_many(sorted(wanted))
    return {"previous_pattern": st["pattern"], "previous_control": st["control"],
            "snapshot": encode_values(snap)}


def read_device(ad: NtcipAdapter, plan: TimingPlan) -> Finding:
    """What the controller runs now and which slot (if any) holds ``plan``."""
    caps, st = ad.probe(), ad.status()
    slot = next((k for k in ad.profile.pattern_slots
                 if not ad.readback(plan_values(plan, ad.profile, caps, k))), None)
    return Finding(int(st["pattern"]), int(st["control"]), slot)


_STATE_OF = {"deployed": "deployed", "rolled_back": "rolled_back"}


def deploy(store: PlanStore, ref: str, actor: Principal, opts: DeployOptions,
           plan: TimingPlan | None = None) -> Outcome:
    """Deploy an approved plan; every way this can end is recorded in the store.

    Raises:
        Refused: the store does not allow it (state, signature, lease, role...).
        ActionInterrupted: interrupted; the device was settled and the outcome recorded.
    """
    holder = holder_id()
    ticket = store.begin_deploy(ref, actor, plan, holder=holder, lease_s=opts.lease_s)
    ad = make_adapter(ticket.device, opts)
    try:
        try:
            summary = pre_deploy_record(ad, ticket.record.plan)
        except (SnmpError, SnmpTimeout, WulinError) as exc:
            msg = f"could not read the controller before writing ({exc}); nothing was written"
            store.finish_deploy(ticket.record.hash, actor, "failed", {"message": msg}, holder=holder)
            return Outcome(ticket.record.hash, "failed", msg, False)
        store.record_snapshot(ticket, actor, summary)
        ticket = Ticket(ticket.record, ticket.device, ticket.lease, summary)
        try:
            rep = ad.deploy(ticket.record.plan)
        except BaseException as exc:  # Ctrl-C included: settle the device, record, then report
            raise _interrupted(store, ticket, actor, opts, exc, getattr(exc, "report", None)) from exc
    finally:
        ad.close()
    if rep.outcome == "rollback_failed":  # the device state is unknown: read it and settle
        store.log(actor, "deploy.step", ticket.record.hash, "failed", {"message": rep.message})
        return settle(store, ticket, actor, opts, undo=True, why=rep.message)
    state = _STATE_OF.get(rep.outcome, "failed")
    store.finish_deploy(ticket.record.hash, actor, state, rep.summary(), holder=holder)
    return Outcome(ticket.record.hash, state, rep.message, rep.ok, len(rep.wire))


def rollback(store: PlanStore, ref: str, actor: Principal, opts: DeployOptions) -> Outcome:
    """Put the controller back as it was before the plan was deployed, and record it."""
    holder = holder_id()
    ticket = store.begin_rollback(ref, actor, holder=holder, lease_s=opts.lease_s)
    ad = make_adapter(ticket.device, opts)
    try:
        try:
            rep = ad.rollback(ticket.summary or {})
        except BaseException as exc:
            raise _interrupted(store, ticket, actor, opts, exc) from exc
    finally:
        ad.close()
    ok = rep.outcome == "rolled_back"
    rec = store.finish_rollback(ticket.record.hash, actor, ok, {"message": rep.message, "steps": rep.steps},
                                holder=holder)
    return Outcome(rec.hash, rec.state, rep.message, ok, len(rep.wire))


def _interrupted(store: PlanStore, ticket: Ticket, actor: Principal, opts: DeployOptions,
                 exc: BaseException, report: object = None) -> ActionInterrupted:
    """Record an interrupted action: the adapter's own consistent outcome when its interrupt
    carries one (``failed`` or ``rolled_back``, readback verified), else what the device shows."""
    why = f"interrupted ({type(exc).__name__})"
    if isinstance(report, DeployReport) and report.outcome in ("failed", "rolled_back"):
        detail = report.summary() | {"message": f"{why}; {report.message}", "interrupted": True}
        store.finish_deploy(ticket.record.hash, actor, report.outcome, detail, holder=ticket.lease.holder)
        return ActionInterrupted(f"{why}; recorded {report.outcome}: {report.message}")
    try:
        out = settle(store, ticket, actor, opts, undo=True, why=why)
    except BaseException as again:  # noqa: BLE001  (a second interrupt, or the device is gone)
        return ActionInterrupted(
            f"{why}; the device could not be settled ({type(again).__name__}: {again}); signal "
            f"{ticket.record.signal_id!r} stays leased: run `wulin plan recover {ticket.record.signal_id}`")
    return ActionInterrupted(f"{why}; recorded {out.state}: {out.message}")


def recover(store: PlanStore, signal_id: str, actor: Principal, opts: DeployOptions) -> Outcome:
    """Finish or undo a device action whose process died, from what the device runs."""
    lease = store.lease(signal_id)
    if lease is None:
        raise WulinError(f"signal {signal_id!r}: no deploy or rollback is under way; nothing to recover")
    why = _why_recoverable(lease)
    ticket = store.take_over(signal_id, actor, lease, holder_id(), opts.lease_s, why)
    return settle(store, ticket, actor, opts, undo=False, why=why)


def _why_recoverable(lease: Lease) -> str:
    if holder_gone(lease.holder):
        return f"its process ({lease.holder}) is gone"
    if lease.expired():
        return f"its lease expired at {lease.expires_at[:19]} UTC"
    raise WulinError(
        f"signal {lease.signal_id!r}: a {lease.purpose} by {lease.actor} ({lease.holder}) is under way until "
        f"{lease.expires_at[:19]} UTC; recover only once that process is gone or the lease expired")


def settle(store: PlanStore, ticket: Ticket, actor: Principal, opts: DeployOptions, *, undo: bool,
           why: str) -> Outcome:
    """Read the device, then finish or undo the action ``ticket`` holds, and record it.

    Args:
        undo: Roll back even when the device already runs the plan (an interrupt means the
            user asked to stop); a recovery (False) finishes a deploy the device completed.
        why: Why the action is settled (goes into the record).
    """
    ad = make_adapter(ticket.device, opts)
    try:
        found = read_device(ad, ticket.record.plan)
        if ticket.lease.purpose == "rollback":
            rep = ad.rollback(ticket.summary or {})
            ok = rep.outcome == "rolled_back"
            rec = store.finish_rollback(ticket.record.hash, actor, ok, {
                "message": f"{why}; {rep.message}", "found": found.as_dict(), "steps": rep.steps},
                holder=ticket.lease.holder)
            return Outcome(rec.hash, rec.state, rep.message, ok)
        return _settle_deploy(store, ticket, actor, ad, found, undo, why)
    finally:
        ad.close()


def _settle_deploy(store: PlanStore, ticket: Ticket, actor: Principal, ad: NtcipAdapter, found: Finding,
                   undo: bool, why: str) -> Outcome:
    h, holder, summary = ticket.record.hash, ticket.lease.holder, ticket.summary
    runs = found.plan_slot is not None and found.running == found.plan_slot
    if runs and not undo and summary is not None:
        problems = ad.health()
        if not problems:
            msg = f"{why}; the controller runs the plan in pattern {found.running} with clean health: finished"
            detail = summary | {"message": msg, "found": found.as_dict(), "recovered": True}
            store.finish_deploy(h, actor, "deployed", detail, holder=holder)
            return Outcome(h, "deployed", msg, True)
        why += "; health check failed: " + "; ".join(problems)
    if summary is None:
        msg = f"{why}; no snapshot was kept, so nothing was written by this deploy"
        store.finish_deploy(h, actor, "failed", {"message": msg, "found": found.as_dict()}, holder=holder)
        return Outcome(h, "failed", msg, False)
    snapshot = decode_values(summary["snapshot"])
    prev_pattern, prev_control = int(summary["previous_pattern"]), int(summary["previous_control"])
    if not ad.readback(snapshot) and found.running == prev_pattern and found.control == prev_control:
        msg = f"{why}; readback equals the snapshot: the controller is unchanged"
        store.finish_deploy(h, actor, "failed", {"message": msg, "found": found.as_dict()}, holder=holder)
        return Outcome(h, "failed", msg, False)
    try:
        ad.restore(snapshot, prev_pattern, prev_control)
    except (DeployFailed, SnmpError, SnmpTimeout) as exc:
        store.log(actor, "recover", h, "failed", {"message": f"{why}; restore failed: {exc}", "found": found.as_dict()})
        raise WulinError(f"plan {h[:12]}: restoring the controller failed ({exc}); signal "
                         f"{ticket.record.signal_id!r} stays leased: run `wulin plan recover` again") from None
    msg = f"{why}; rolled back to the snapshot taken before the deploy (readback verified)"
    store.finish_deploy(h, actor, "rolled_back", {"message": msg, "found": found.as_dict()}, holder=holder)
    return Outcome(h, "rolled_back", msg, False)
