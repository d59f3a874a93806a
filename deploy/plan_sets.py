"""Time-of-day plan sets in the plan store: propose, approve, deploy, roll back, audited.

A :class:`~controllers.plan.PlanSet` (one signal's plans and the schedule that runs them)
goes through the same state machine and rules as a single plan (:mod:`deploy.store`), as one
unit bound by one hash, the schedule's, which covers every plan's hash:

* **propose** (an engineer): the set's canonical JSON is stored under its hash, with the
  network's conflict matrix (its digest in the signed audit entry) and the evidence (the
  verification run's summary);
* **approve** (a supervisor other than the proposer): every plan of the set must pass every
  rule of :func:`deploy.rules.decide_approval` (two persons, role, state, engineering checks
  with the conflicts, the device's capabilities, evidence for a large change against the plan
  in force at that time of day), the set must still hash to its key, and the controller must
  have a pattern for each plan besides pattern 1 and the running one; the approval is signed
  over ``plan-set:<hash>``, so a plan's approval can never pass for a set's;
* **deploy** / **rollback** take the signal's lease (one device action per signal, plans and
  sets alike), verify the signature, keep the device's snapshot signed before writing, and
  record the outcome; every step is in the audit log under the set's hash.

This is a mixin of :class:`deploy.store.PlanStore`, on its database and audit chain.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import String, Text, select, text, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from controllers.plan import PlanSet, TimingPlan, canonical_json, sha256_hex, validate_plan
from deploy.identity import Principal
from deploy.rules import ApprovalFacts, DeviceFacts, decide_approval
from deploy.signing import ApprovalClaim, approval_mac, same
from deploy.storebase import TRANSITIONS, Base, Refused, T
from deploy.storebase import now_iso as _now


class PlanSetRow(Base):
    __tablename__ = "plan_sets"
    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    signal_id: Mapped[str] = mapped_column(String(128), index=True)
    name: Mapped[str] = mapped_column(String(256))
    set_json: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), index=True)
    proposed_by: Mapped[str] = mapped_column(String(64))
    proposed_at: Mapped[str] = mapped_column(String(40))
    approved_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    approved_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    approved_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    approver_role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    approval_sig: Mapped[str | None] = mapped_column(String(64), nullable=True)
    deployed_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    conflicts_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    evidence_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")


@dataclass(frozen=True)
class PlanSetRecord:
    """A stored plan set and where it stands."""

    hash: str
    signal_id: str
    name: str
    state: str
    proposed_by: str
    proposed_at: str
    approved_by: str | None
    deployed_at: str | None
    note: str
    plan_set: PlanSet
    evidence: dict[str, Any] | None


@dataclass(frozen=True)
class SetTicket:
    """A device action on a plan set the store allowed (``summary``: the signed deploy record)."""

    record: PlanSetRecord
    device: Any
    lease: Any
    summary: dict[str, Any] | None = None


def set_name(ps: PlanSet) -> str:
    """``night 00:00 / am 07:00 / ...``: the schedule in words."""
    return " / ".join(f"{ps.plan(h).name or h[:8]} {t}" for t, h in ps.schedule.entries)[:256]


def claim_hash(h: str) -> str:
    """What a set's approval signature binds (never a plan's hash)."""
    return f"plan-set:{h}"


class PlanSets:
    """Plan sets in the store (mixed into :class:`deploy.store.PlanStore`)."""

    _key: bytes

    # The store's plumbing (deploy.store.PlanStore and deploy.accounts.Accounts define these).
    def _tx(self) -> AbstractContextManager[Session]:
        raise NotImplementedError

    def _run(self, actor: Any, action: str, plan_hash: str, fn: Callable[[Session], T]) -> T:
        raise NotImplementedError

    def _append(self, s: Session, actor: Any, action: str, plan_hash: str, outcome: str,
                detail: dict[str, Any] | None = None) -> Any:
        raise NotImplementedError

    def _user(self, s: Session, actor: Any, roles: tuple[str, ...] | None = None) -> Any:
        raise NotImplementedError

    def _device(self, s: Session, signal_id: str) -> Any:
        raise NotImplementedError

    def _acquire(self, s: Session, row: Any, purpose: str, holder: str, actor: Principal, lease_s: float) -> Any:
        raise NotImplementedError

    def _release(self, s: Session, row: Any, holder: str) -> None:
        raise NotImplementedError

    def _signed_entry(self, s: Session, plan_hash: str, action: str, outcome: str) -> Any:
        raise NotImplementedError

    def _signed_detail(self, s: Session, plan_hash: str, action: str, outcome: str) -> dict[str, Any] | None:
        raise NotImplementedError

    @staticmethod
    def _live_row(s: Session, signal_id: str) -> Any:
        raise NotImplementedError

    # ---------------------------------------------------------------- rows and records
    @staticmethod
    def _set_row(s: Session, ref: str) -> PlanSetRow:
        ref = ref.strip().removeprefix("sha256:").lower()
        rows = s.execute(select(PlanSetRow).where(PlanSetRow.hash.startswith(ref))).scalars().all()
        if not rows or len(ref) < 6:
            raise Refused(f"no plan set with hash {ref!r} in the store; `wulin plan schedule list` shows them")
        if len(rows) > 1:
            raise Refused(f"hash prefix {ref!r} matches {len(rows)} plan sets; give more digits")
        return rows[0]

    @staticmethod
    def _stored_set(row: PlanSetRow) -> PlanSet:
        """The set as stored, refused when it no longer hashes to its key."""
        try:
            ps = PlanSet.from_json(row.set_json, f"plan set {row.hash[:12]}")
        except Exception as exc:  # noqa: BLE001  (an edited row may be anything)
            raise Refused(f"plan set {row.hash[:12]}: the stored set is no longer readable ({exc})") from None
        if ps.set_hash() != row.hash:
            raise Refused(f"plan set {row.hash[:12]}: the stored set no longer matches its hash (now "
                          f"{ps.set_hash()[:12]}); it was changed after it was stored")
        return ps

    @staticmethod
    def _set_record(row: PlanSetRow, ps: PlanSet | None = None) -> PlanSetRecord:
        return PlanSetRecord(row.hash, row.signal_id, row.name, row.state, row.proposed_by, row.proposed_at,
                             row.approved_by, row.deployed_at, row.note,
                             ps or PlanSet.from_json(row.set_json, f"plan set {row.hash[:12]}"),
                             json.loads(row.evidence_json) if row.evidence_json else None)

    @staticmethod
    def _set_transition(s: Session, row: PlanSetRow, new: str, **values: Any) -> None:
        if new not in TRANSITIONS[row.state]:
            raise Refused(f"plan set {row.hash[:12]} is {row.state}; it cannot become {new}")
        stmt = (update(PlanSetRow).where(PlanSetRow.hash == row.hash, PlanSetRow.state == row.state)
                .values(state=new, **values).execution_options(synchronize_session=False))
        if s.execute(stmt).rowcount != 1:  # type: ignore[attr-defined]
            raise Refused(f"plan set {row.hash[:12]} changed while this action ran; nothing was done")
        s.refresh(row)

    def plan_set(self, ref: str) -> PlanSetRecord:
        """A plan set by hash or unique prefix (at least 6 hex digits)."""
        with self._tx() as s:
            return self._set_record(self._set_row(s, ref))

    def plan_sets(self, signal_id: str | None = None, state: str | None = None) -> list[PlanSetRecord]:
        """Stored plan sets, oldest first."""
        with self._tx() as s:
            q = select(PlanSetRow).order_by(PlanSetRow.proposed_at)
            if signal_id:
                q = q.where(PlanSetRow.signal_id == signal_id)
            if state:
                q = q.where(PlanSetRow.state == state)
            return [self._set_record(r) for r in s.execute(q).scalars()]

    @staticmethod
    def _live_set_row(s: Session, signal_id: str) -> PlanSetRow | None:
        return s.execute(select(PlanSetRow).where(PlanSetRow.signal_id == signal_id, PlanSetRow.state == "deployed")
                         .order_by(PlanSetRow.deployed_at.desc()).limit(1)).scalar_one_or_none()

    # ---------------------------------------------------------------- propose, approve, reject
    def propose_set(self, ps: PlanSet, actor: Principal, evidence: dict[str, Any] | None = None, note: str = "",
                    conflicts: list[list[bool]] | None = None, conflicts_source: str = "") -> PlanSetRecord:
        """Store ``ps`` as proposed by ``actor`` (an engineer), with conflicts and evidence."""
        h = ps.set_hash()
        conflicts_json = canonical_json(conflicts) if conflicts is not None else None

        def go(s: Session) -> PlanSetRecord:
            self._user(s, actor, ("engineer", "supervisor"))
            self._device(s, ps.signal_id)  # unknown signal: refused now
            if s.get(PlanSetRow, h) is not None:
                raise Refused(f"plan set {h[:12]} is already in the store")
            row = PlanSetRow(hash=h, signal_id=ps.signal_id, name=set_name(ps), set_json=ps.to_json(),
                             state="proposed", proposed_by=actor.name, proposed_at=_now(), note=note,
                             conflicts_json=conflicts_json,
                             evidence_json=canonical_json(evidence) if evidence is not None else None)
            s.add(row)
            self._append(s, actor, "set.propose", h, "ok", {
                "signal_id": ps.signal_id, "schedule": [list(e) for e in ps.schedule.entries],
                "violations": {p.short_hash: validate_plan(p, conflicts) for p in ps.plans},
                "conflicts_sha256": sha256_hex(conflicts_json) if conflicts_json else None,
                "conflicts_source": conflicts_source,
                "evidence_sha256": sha256_hex(row.evidence_json) if row.evidence_json else None})
            return self._set_record(row, ps)

        return self._run(actor, "set.propose", h, go)

    def _set_reasons(self, s: Session, row: PlanSetRow, user: Any) -> tuple[list[str], str]:
        """Every reason the set may not be approved by ``user``, and its largest change tier."""
        ps = self._stored_set(row)
        entry = self._signed_entry(s, row.hash, "set.propose", "ok")
        proposed = json.loads(entry.detail) if entry is not None else {}
        conflicts = json.loads(row.conflicts_json) if row.conflicts_json else None
        trusted = conflicts is None or proposed.get("conflicts_sha256") == sha256_hex(row.conflicts_json or "")
        evidence_ok = row.evidence_json is not None and proposed.get("evidence_sha256") == sha256_hex(row.evidence_json)
        try:
            dev = self._device(s, row.signal_id)
        except Refused:  # no controller registered: a reason below
            dev = None
        reasons: list[str] = []
        tiers = []
        for plan in ps.plans:
            facts = ApprovalFacts(
                plan=plan, plan_hash=row.hash, actual_hash=ps.set_hash(), state=row.state,
                proposer=row.proposed_by, proposer_on_record=entry.actor if entry is not None else None,
                approver=user.name, approver_role=user.role, approver_active=not user.disabled,
                conflicts=conflicts, conflicts_trusted=trusted,
                device=DeviceFacts(dev.profile, dev.capabilities) if dev else None,
                live=self._live_at(s, ps, plan), has_evidence=evidence_ok)
            decision = decide_approval(facts)
            reasons += [r.replace(f"plan {row.hash[:12]}", f"plan set {row.hash[:12]} ({plan.name or plan.short_hash})")
                        for r in decision.reasons]
            tiers.append(decision.tier)
        if dev is not None:
            caps = dev.capabilities
            free = min(caps.max_patterns, caps.max_splits, caps.max_sequences) - 1  # pattern 1 is the local plan
            if len(ps.plans) > free:
                reasons.append(f"plan set {row.hash[:12]}: its {len(ps.plans)} plans need as many patterns; the "
                               f"controller of {row.signal_id!r} has {max(free, 0)} besides pattern 1")
        return list(dict.fromkeys(reasons)), ("large" if "large" in tiers else "small")

    def _live_at(self, s: Session, ps: PlanSet, plan: TimingPlan) -> TimingPlan | None:
        """What runs on the signal when ``plan`` starts: the live set's plan then, else the live plan."""
        live = self._live_set_row(s, ps.signal_id)
        start = next(t for t, h in ps.schedule.entries if h == plan.plan_hash())
        if live is not None:
            return PlanSet.from_json(live.set_json).plan_at(start)
        row = self._live_row(s, ps.signal_id)
        return TimingPlan.from_json(row.plan_json) if row is not None else None

    def approve_set(self, ref: str, actor: Principal) -> PlanSetRecord:
        """Approve a proposed plan set if every plan passes every rule; sign it."""
        def go(s: Session) -> PlanSetRecord:
            row = self._set_row(s, ref)
            user = self._user(s, actor)
            reasons, tier = self._set_reasons(s, row, user)
            if reasons:
                raise Refused("; ".join(reasons))
            claim = ApprovalClaim(claim_hash(row.hash), row.signal_id, user.name, user.role, _now(), row.proposed_by)
            self._set_transition(s, row, "approved", approved_by=claim.approver, approved_at=claim.approved_at,
                                 approved_hash=row.hash, approver_role=claim.role,
                                 approval_sig=approval_mac(self._key, claim))
            self._append(s, actor, "set.approve", row.hash, "ok", {"tier": tier})
            return self._set_record(row)

        return self._run(actor, "set.approve", ref, go)

    def reject_set(self, ref: str, actor: Principal, reason: str) -> PlanSetRecord:
        """Reject a proposed or approved set (a supervisor), with a reason."""
        def go(s: Session) -> PlanSetRecord:
            row = self._set_row(s, ref)
            self._user(s, actor, ("supervisor",))
            if not reason.strip():
                raise Refused("a rejection needs a reason")
            self._set_transition(s, row, "rejected", note=reason)
            self._append(s, actor, "set.reject", row.hash, "ok", {"reason": reason})
            return self._set_record(row)

        return self._run(actor, "set.reject", ref, go)

    # ---------------------------------------------------------------- deploy and rollback
    def _check_set_approval(self, row: PlanSetRow) -> None:
        short = row.hash[:12]
        if row.approved_hash != row.hash:
            raise Refused(f"plan set {short}: its approval was for another hash")
        claim = ApprovalClaim(claim_hash(row.hash), row.signal_id, row.approved_by or "", row.approver_role or "",
                              row.approved_at or "", row.proposed_by)
        if not same(row.approval_sig, approval_mac(self._key, claim)):
            raise Refused(f"plan set {short}: its approval signature does not verify (changed outside the store); "
                          "it is not deployed")
        if claim.approver == claim.proposer or claim.role != "supervisor":
            raise Refused(f"plan set {short}: its approval breaks the two-person rule")

    def begin_set_deploy(self, ref: str, actor: Principal, ps: PlanSet | None = None, *, holder: str,
                         lease_s: float) -> SetTicket:
        """Check that a set may be deployed now, take the signal's lease, mark it deploying."""
        def go(s: Session) -> SetTicket:
            row = self._set_row(s, ref)
            user = self._user(s, actor, ("engineer", "supervisor"))
            if row.state not in ("approved", "failed"):
                raise Refused(f"plan set {row.hash[:12]} is {row.state}; only an approved set can be deployed")
            stored = self._stored_set(row)
            self._check_set_approval(row)
            if ps is not None and ps.set_hash() != row.approved_hash:
                raise Refused(f"the plan set to deploy hashes to {ps.set_hash()[:12]}, the approval binds "
                              f"{(row.approved_hash or '')[:12]}: a set changed after approval is not deployed")
            dev = self._device(s, row.signal_id)
            lease = self._acquire(s, row, "set-deploy", holder, actor, lease_s)
            self._set_transition(s, row, "deploying")
            self._append(s, actor, "set.deploy.start", row.hash, "ok",
                         {"role": user.role, "device": f"{dev.host}:{dev.port}", "lease_until": lease.expires_at})
            return SetTicket(self._set_record(row, stored), dev, lease)

        return self._run(actor, "set.deploy", ref, go)

    def record_set_snapshot(self, ticket: SetTicket, actor: Principal, summary: dict[str, Any]) -> None:
        """Keep, signed, what the device held before anything is written."""
        def go(s: Session) -> None:
            held = s.execute(text("SELECT holder FROM leases WHERE signal_id = :s"),
                             {"s": ticket.record.signal_id}).scalar_one_or_none()
            if held != ticket.lease.holder:
                raise Refused(f"signal {ticket.record.signal_id!r}: lease lost before the snapshot was kept")
            self._append(s, actor, "set.deploy.snapshot", ticket.record.hash, "ok", summary)

        self._run(actor, "set.deploy.snapshot", ticket.record.hash, go)

    def finish_set_deploy(self, ref: str, actor: Principal, outcome: str, detail: dict[str, Any], *,
                          holder: str) -> PlanSetRecord:
        """Record how a set deploy ended (deployed, failed, rolled_back); frees the lease."""
        def go(s: Session) -> PlanSetRecord:
            row = self._set_row(s, ref)
            if row.state != "deploying":
                raise Refused(f"plan set {row.hash[:12]} is {row.state}, not deploying")
            self._release(s, row, holder)
            extra = {"deployed_at": _now()} if outcome == "deployed" else {}
            if outcome == "deployed":  # the set it replaces is no longer in force
                old = self._live_set_row(s, row.signal_id)
                if old is not None:
                    s.execute(update(PlanSetRow).where(PlanSetRow.hash == old.hash)
                              .values(note=f"replaced by {row.hash[:12]}"))
            self._set_transition(s, row, outcome, note=str(detail.get("message", ""))[:2000], **extra)
            self._append(s, actor, "set.deploy.finish", row.hash, outcome, detail)
            return self._set_record(row)

        return self._run(actor, "set.deploy.finish", ref, go)

    def begin_set_rollback(self, ref: str, actor: Principal, *, holder: str, lease_s: float) -> SetTicket:
        """A supervisor rolls back a deployed set: its signed deploy record, and the lease."""
        def go(s: Session) -> SetTicket:
            row = self._set_row(s, ref)
            self._user(s, actor, ("supervisor",))
            if row.state != "deployed":
                raise Refused(f"plan set {row.hash[:12]} is {row.state}; only a deployed set can be rolled back")
            summary = self._signed_detail(s, row.hash, "set.deploy.finish", "deployed")
            if summary is None or "snapshot" not in summary:
                raise Refused(f"plan set {row.hash[:12]}: no signed snapshot on record to roll back to")
            lease = self._acquire(s, row, "set-rollback", holder, actor, lease_s)
            self._append(s, actor, "set.rollback.start", row.hash, "ok",
                         {"lease_until": lease.expires_at})
            return SetTicket(self._set_record(row), self._device(s, row.signal_id), lease, summary)

        return self._run(actor, "set.rollback", ref, go)

    def finish_set_rollback(self, ref: str, actor: Principal, ok: bool, detail: dict[str, Any], *,
                            holder: str) -> PlanSetRecord:
        """Record how a set rollback ended; frees the lease."""
        def go(s: Session) -> PlanSetRecord:
            row = self._set_row(s, ref)
            self._release(s, row, holder)
            if ok:
                self._set_transition(s, row, "rolled_back")
            self._append(s, actor, "set.rollback", row.hash, "ok" if ok else "failed", detail)
            return self._set_record(row)

        return self._run(actor, "set.rollback", ref, go)

    def take_over_set(self, signal_id: str, actor: Principal, old: Any, holder: str, lease_s: float,
                      why: str) -> SetTicket:
        """Take a dead holder's lease on a set deploy or rollback, for a recovery (refused if it
        changed since it was read); the ticket carries the signed snapshot or deploy record."""
        def go(s: Session) -> SetTicket:
            self._user(s, actor, ("engineer", "supervisor"))
            row = self._set_row(s, old.plan_hash)
            until = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=lease_s)).isoformat()
            moved = s.execute(text("UPDATE leases SET holder = :h, actor = :a, expires_at = :e "
                                   "WHERE signal_id = :s AND holder = :old"),
                              {"h": holder, "a": actor.name, "e": until, "s": signal_id, "old": old.holder})
            if moved.rowcount != 1:  # type: ignore[attr-defined]
                raise Refused(f"signal {signal_id!r}: its lease changed hands meanwhile; look again")
            wanted = ("set.deploy.snapshot", "ok") if old.purpose == "set-deploy" else ("set.deploy.finish", "deployed")
            summary = self._signed_detail(s, row.hash, *wanted)
            self._append(s, actor, "set.recover.start", row.hash, "ok",
                         {"signal_id": signal_id, "purpose": old.purpose, "dead_holder": old.actor, "why": why,
                          "state": row.state, "snapshot_on_record": summary is not None})
            lease = replace(old, holder=holder, actor=actor.name, expires_at=until)
            return SetTicket(self._set_record(row), self._device(s, signal_id), lease, summary)

        return self._run(actor, "set.recover", old.plan_hash, go)
