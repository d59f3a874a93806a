"""Approved preempt configurations: proposed and approved like plans, then pushed over NTCIP.

A signal's preempt table (:class:`~deploy.preempt_config.PreemptConfig`) decides how long an
emergency vehicle may hold an intersection, so control-room staff review it as they review a
timing plan, with the plan store's own rules, kept minimal:

* stored as canonical JSON under its SHA-256 hash, recomputed whenever it is approved or
  pushed (an edited row is refused);
* ``proposed --approve--> approved``, ``proposed | approved --reject--> rejected``; one
  conditional UPDATE per transition;
* two people: the approver is a supervisor and not the proposer; the approval is signed
  with the store key (:func:`deploy.signing.approval_mac`, over ``"preempt:" + hash`` so a plan
  approval can never stand for a preempt one) and checked again before a push;
* the configuration is checked against the signal's registered device profile (phases that
  serve one stage, links, presence limits) before approval;
* every action, refused ones included, goes to the store's audit log (actions
  ``preempt-propose``, ``preempt-approve``, ``preempt-reject``, ``preempt-push``).

:func:`push_preempt` writes the approved table to a controller (one SET PDU per preempt row)
and reads it back; a readback that differs is reported as failed; the actor must be one who
may deploy plans (an engineer or a supervisor).  :func:`push_registered` (``wulin plan preempt
push``) does it for the signal's registered controller, as a plan deploy reaches it (the
store's device record, credentials from the secrets file), after the same checks as an
approval (the table against the device's profile) and refused while a plan deploy or rollback
holds the signal.  :class:`PreemptApprovals`
works on a :class:`~deploy.store.PlanStore` (its users, key, audit log and database; it adds
one table), rather than inside it, so the plan store's module does not grow another concern.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, Text, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from controllers.plan import sha256_hex
from deploy.identity import Principal
from deploy.preempt import N_PREEMPTS
from deploy.preempt_config import PreemptConfig
from deploy.signing import ApprovalClaim, approval_mac, same
from deploy.storebase import Base, Refused, now_iso
from sim.errors import WulinError

if TYPE_CHECKING:
    from deploy.secrets import SecretsFile
    from deploy.snmp import SnmpClient
    from deploy.store import PlanStore

_NEXT = {"proposed": ("approved", "rejected"), "approved": ("rejected",), "rejected": ()}


class PreemptRow(Base):
    __tablename__ = "preempt_configs"
    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    signal_id: Mapped[str] = mapped_column(String(128), index=True)
    config_json: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), index=True)
    proposed_by: Mapped[str] = mapped_column(String(64))
    proposed_at: Mapped[str] = mapped_column(String(40))
    approved_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    approved_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    approver_role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    approval_sig: Mapped[str | None] = mapped_column(String(64), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")


@dataclass(frozen=True)
class PreemptRecord:
    """A stored preempt configuration and where it stands."""

    hash: str
    signal_id: str
    state: str
    proposed_by: str
    approved_by: str | None
    config: PreemptConfig


def _claim(row: PreemptRow) -> ApprovalClaim:
    return ApprovalClaim("preempt:" + row.hash, row.signal_id, row.approved_by or "", row.approver_role or "",
                         row.approved_at or "", row.proposed_by)


class PreemptApprovals:
    """The preempt configurations of a plan store (module docstring)."""

    def __init__(self, store: PlanStore) -> None:
        self.store = store
        Base.metadata.create_all(store.engine, tables=[PreemptRow.__table__])  # type: ignore[list-item]

    def _preempt_row(self, s: Session, ref: str) -> PreemptRow:
        ref = ref.strip().removeprefix("sha256:").lower()
        rows = s.execute(select(PreemptRow).where(PreemptRow.hash.startswith(ref))).scalars().all()
        if len(ref) < 6 or len(rows) != 1:
            raise Refused(f"no single preempt configuration with hash {ref!r} in the store")
        row = rows[0]
        if sha256_hex(row.config_json) != row.hash:
            raise Refused(f"preempt configuration {row.hash[:12]}: the stored values no longer match its hash")
        return row

    @staticmethod
    def _preempt_record(row: PreemptRow) -> PreemptRecord:
        cfg = PreemptConfig.from_json(row.config_json, f"preempt configuration {row.hash[:12]}")
        return PreemptRecord(row.hash, row.signal_id, row.state, row.proposed_by, row.approved_by, cfg)

    def _move(self, s: Session, row: PreemptRow, new: str, **values: Any) -> None:
        if new not in _NEXT[row.state]:
            raise Refused(f"preempt configuration {row.hash[:12]} is {row.state}; it cannot become {new}")
        stmt = (update(PreemptRow).where(PreemptRow.hash == row.hash, PreemptRow.state == row.state)
                .values(state=new, **values).execution_options(synchronize_session=False))
        if s.execute(stmt).rowcount != 1:  # type: ignore[attr-defined]
            raise Refused(f"preempt configuration {row.hash[:12]} changed while this action ran; nothing was done")
        s.refresh(row)

    def propose_preempt(self, cfg: PreemptConfig, actor: Principal, note: str = "") -> PreemptRecord:
        """Store ``cfg`` as proposed by ``actor`` (an engineer or supervisor)."""
        h = cfg.config_hash()

        def go(s: Session) -> PreemptRecord:
            self.store._user(s, actor, ("engineer", "supervisor"))
            if s.get(PreemptRow, h) is not None:
                raise Refused(f"preempt configuration {h[:12]} is already in the store")
            row = PreemptRow(hash=h, signal_id=cfg.signal_id, config_json=cfg.to_json(), state="proposed",
                             proposed_by=actor.name, proposed_at=now_iso(), note=note)
            s.add(row)
            self.store._append(s, actor, "preempt-propose", h, "ok", {"signal_id": cfg.signal_id, "note": note})
            return self._preempt_record(row)

        return self.store._run(actor, "preempt-propose", h, go)

    def approve_preempt(self, ref: str, actor: Principal) -> PreemptRecord:
        """Approve a proposed configuration: a supervisor other than the proposer, the values
        sound for the signal's registered device, the approval signed."""
        def go(s: Session) -> PreemptRecord:
            row = self._preempt_row(s, ref)
            user = self.store._user(s, actor, ("supervisor",))
            if user.name == row.proposed_by:
                raise Refused(f"preempt configuration {row.hash[:12]}: the proposer cannot approve it (two-person rule)")
            rec = self._preempt_record(row)
            problems = rec.config.problems(self.store._device(s, row.signal_id).profile)
            if problems:
                raise Refused(f"preempt configuration {row.hash[:12]}: " + "; ".join(problems))
            at = now_iso()
            claim = ApprovalClaim("preempt:" + row.hash, row.signal_id, user.name, user.role, at, row.proposed_by)
            self._move(s, row, "approved", approved_by=user.name, approved_at=at, approver_role=user.role,
                       approval_sig=approval_mac(self.store._key, claim))
            self.store._append(s, actor, "preempt-approve", row.hash, "ok", {"signal_id": row.signal_id})
            return self._preempt_record(row)

        return self.store._run(actor, "preempt-approve", ref, go)

    def reject_preempt(self, ref: str, actor: Principal, reason: str) -> PreemptRecord:
        """Reject a proposed or approved configuration (a supervisor), with a reason."""
        def go(s: Session) -> PreemptRecord:
            row = self._preempt_row(s, ref)
            self.store._user(s, actor, ("supervisor",))
            if not reason.strip():
                raise Refused("a rejection needs a reason")
            self._move(s, row, "rejected", note=reason)
            self.store._append(s, actor, "preempt-reject", row.hash, "ok", {"reason": reason})
            return self._preempt_record(row)

        return self.store._run(actor, "preempt-reject", ref, go)

    def preempt_configs(self, signal_id: str | None = None) -> list[PreemptRecord]:
        """Every stored configuration (of one signal), newest proposal first."""
        with self.store._tx() as s:
            q = select(PreemptRow).order_by(PreemptRow.proposed_at.desc())
            if signal_id is not None:
                q = q.where(PreemptRow.signal_id == signal_id)
            return [self._preempt_record(r) for r in s.execute(q).scalars()]

    def approved_preempt(self, ref: str) -> PreemptConfig:
        """The configuration ``ref`` if it is approved and its approval verifies (else refused)."""
        with self.store._tx() as s:
            row = self._preempt_row(s, ref)
            if row.state != "approved":
                raise Refused(f"preempt configuration {row.hash[:12]} is {row.state}, not approved")
            claim = _claim(row)
            if not same(row.approval_sig, approval_mac(self.store._key, claim)) or claim.approver == claim.proposer:
                raise Refused(f"preempt configuration {row.hash[:12]}: its approval does not verify "
                              "(changed outside the store); it is not pushed")
            return self._preempt_record(row).config


def push_preempt(approvals: PreemptApprovals, ref: str, actor: Principal, client: SnmpClient) -> bool:
    """Write the approved configuration ``ref`` to a controller and read it back; audited.

    Returns:
        Whether the device holds exactly the approved table afterwards.
    """
    cfg = _approved_for_push(approvals, ref, actor)
    h = cfg.config_hash()
    binds = cfg.varbinds()
    per_row = len(binds) // N_PREEMPTS
    for i in range(0, len(binds), per_row):  # one PDU per preempt row: each row atomic
        client.set(binds[i:i + per_row])
    got: dict[tuple[int, ...], Any] = {}
    for i in range(0, len(binds), per_row):
        got.update(client.get([o for o, _ in binds[i:i + per_row]]))
    back = PreemptConfig.from_values(cfg.signal_id, got)
    ok = back.config_hash() == h
    approvals.store.log(actor, "preempt-push", h, "ok" if ok else "failed",
              {"signal_id": cfg.signal_id, "readback_sha256": back.config_hash()})
    return ok


def _approved_for_push(approvals: PreemptApprovals, ref: str, actor: Principal) -> PreemptConfig:
    """The approved configuration ``ref``, if ``actor`` may push it (else refused, audited)."""
    from deploy.store import DEPLOYERS

    approvals.store._run(actor, "preempt-push", ref,  # a refusal is audited by the store
                         lambda s: approvals.store._user(s, actor, DEPLOYERS))
    try:
        return approvals.approved_preempt(ref)
    except Refused as exc:
        approvals.store.log(actor, "preempt-push", ref, "refused", {"reason": str(exc)})
        raise


@dataclass(frozen=True)
class PushResult:
    """What a push to a registered controller did."""

    hash: str
    signal_id: str
    ok: bool  # the device holds exactly the approved table


def push_registered(approvals: PreemptApprovals, ref: str, signal_id: str, actor: Principal,
                    secrets: SecretsFile | None = None) -> PushResult:
    """Push the approved configuration ``ref`` to the registered controller of ``signal_id``.

    Raises:
        Refused: not approved (or the approval does not verify), a role that may not push, a
            table for another signal or one the device's profile cannot serve, no registered
            controller, or a plan deploy or rollback holding the signal (all audited).
        WulinError: the controller did not take the table (audited as failed).
    """
    from deploy.ntcip import adapter_for
    from deploy.snmp import SnmpError, SnmpTimeout

    cfg = _approved_for_push(approvals, ref, actor)
    h, store = cfg.config_hash(), approvals.store
    try:
        if cfg.signal_id != signal_id:
            raise Refused(f"preempt configuration {h[:12]} is for signal {cfg.signal_id!r}, not {signal_id!r}")
        device = store.device(signal_id)
        problems = cfg.problems(device.profile)
        if problems:
            raise Refused(f"preempt configuration {h[:12]} does not fit {signal_id}'s controller: " + "; ".join(problems))
        lease = store.lease(signal_id)
        if lease is not None:
            raise Refused(f"signal {signal_id!r}: a plan {lease.purpose} by {lease.actor} holds it; push once it "
                          f"has finished (or `wulin plan recover {signal_id}`)")
        ad = adapter_for(device, secrets)
    except Refused as exc:
        store.log(actor, "preempt-push", h, "refused", {"reason": str(exc)})
        raise
    try:
        ok = push_preempt(approvals, h, actor, ad.writer)
    except (SnmpError, SnmpTimeout) as exc:
        store.log(actor, "preempt-push", h, "failed", {"signal_id": signal_id, "error": str(exc)})
        raise WulinError(f"signal {signal_id!r}: the controller did not take preempt configuration {h[:12]} "
                         f"({exc}); rows written before the error stay written, read them back with a new push") from None
    finally:
        ad.close()
    return PushResult(h, signal_id, ok)
