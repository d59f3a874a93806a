"""Adaptive mode as an approved thing: a central controller configuration bound to its fallback plans.

What two people approve before a central system may command field controllers is not a plan
but a *mode*: which controller runs centrally, with which parameters, inside which bounds
(minimum and maximum green, maximum cycle, the devices' ``unitBackupTime`` and the heartbeat
that keeps it fed), and, per signal, the time-of-day plan the device runs when central control
stops (its fallback).  :class:`AdaptiveConfig` is that value, read from TOML::

    name = "Wulin AM central max-pressure"
    controller = "max-pressure"
    [params]                       # the controller's own (as `wulin simulate -p`)
    decision_interval = 5
    [bounds]
    min_green = 5.0
    max_green = 60.0
    max_cycle = 180.0
    backup_time = 10
    heartbeat = 2.0
    [fallback]                     # signal -> hash of its time-of-day plan in the plan store
    B1 = "3f1c..."

Its canonical JSON has a SHA-256 hash, and the fallback plans enter it by *their* hashes, so
an approval binds the controller, its bounds and every fallback plan at once.

:class:`AdaptiveStore` keeps configurations beside the plans in the plan store (same
database, same users, same signing key and audit chain) with the plans' rules:
``proposed -> approved -> deploying -> deployed -> rolling_back -> rolled_back`` (``failed``
when a deploy or rollback stops, ``rejected`` by a supervisor; ``rolling_back`` is what a
central process, :mod:`deploy.adaptive_run`, sees to stop before the rollback releases the
devices, so it does not take them again); the proposer is an engineer or supervisor, the approver
a supervisor who is not the proposer; an approval is signed (:func:`deploy.signing.approval_mac`
over the configuration's hash) and checked again at deploy and rollback, so an edited row or a
forged approval deploys nothing; every action, refused ones too, is in the audit log.  A
configuration can be approved only when each fallback plan is itself approved (or deployed)
with a signature that verifies, and fits the bounds.  The device side (download the fallback
plans, verify, switch to central control; and back) is :mod:`deploy.adaptive_service`; the
process that then drives the devices (``wulin adaptive run``, which only a deployed
configuration whose approval verifies may start, audited at start and stop) is
:mod:`deploy.adaptive_run`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, StrictFloat, StrictInt, StrictStr, model_validator
from sqlalchemy import String, Text, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from controllers.plan import TimingPlan, canonical_json, sha256_hex
from deploy.identity import Principal
from deploy.signing import ApprovalClaim, approval_mac, same
from deploy.storebase import Base, Refused, now_iso
from sim.config import ConfigIssue, ConfigModel, load_toml_model, validate

CLAIM_SIGNAL = "adaptive"  # the signal field of an adaptive configuration's approval claim
FALLBACK_STATES = ("approved", "deployed")  # a fallback plan's states that may back an approval


class Bounds(ConfigModel):
    """What the central controller may do, and how the devices watch it (seconds)."""

    min_green: StrictFloat | StrictInt = Field(5.0, ge=1)
    max_green: StrictFloat | StrictInt = Field(60.0, gt=0)
    max_cycle: StrictFloat | StrictInt = Field(180.0, gt=0)
    backup_time: StrictInt = Field(10, ge=1, le=255)
    heartbeat: StrictFloat | StrictInt = Field(2.0, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> Bounds:
        if self.max_green <= self.min_green:
            raise ConfigIssue(f"must be above min_green ({self.min_green:g} s)", "max_green")
        if self.max_cycle < self.max_green:
            raise ConfigIssue(f"must be at least max_green ({self.max_green:g} s)", "max_cycle")
        if self.heartbeat * 2 > self.backup_time:
            raise ConfigIssue(f"must be at most half the backup time ({self.backup_time} s), so one lost "
                              "heartbeat does not end central control", "heartbeat")
        return self


class AdaptiveConfig(ConfigModel):
    """A central controller configuration with its fallback plans (module docstring)."""

    name: StrictStr = Field(min_length=1)
    controller: StrictStr = Field(min_length=1)
    params: dict[str, StrictFloat | StrictInt | StrictStr | bool] = Field(default_factory=dict)
    bounds: Bounds = Field(default_factory=Bounds)  # type: ignore[arg-type]  # every field has a default
    fallback: dict[str, StrictStr] = Field(min_length=1)

    @model_validator(mode="after")
    def _hashes(self) -> AdaptiveConfig:
        for sid, h in self.fallback.items():
            if len(h) != 64 or any(c not in "0123456789abcdef" for c in h):
                raise ConfigIssue(f"must be a plan's full SHA-256 hash (64 hex digits), got {h!r}", f"fallback.{sid}")
        return self

    @classmethod
    def load(cls, path: Path | str) -> AdaptiveConfig:
        return load_toml_model(cls, path, "adaptive configuration")

    @classmethod
    def parse(cls, data: dict[str, Any], source: str = "<adaptive configuration>") -> AdaptiveConfig:
        """From a parsed document; a problem is one WulinError naming the field."""
        return validate(cls, data, source)

    def to_json(self) -> str:
        return canonical_json(self.model_dump(mode="json"))

    def config_hash(self) -> str:
        return sha256_hex(self.to_json())


def check_fallback(cfg: AdaptiveConfig, sid: str, plan: TimingPlan) -> list[str]:
    """Why ``plan`` cannot be ``sid``'s fallback under ``cfg``'s bounds (empty: it can)."""
    b, out = cfg.bounds, []
    if plan.signal_id != sid:
        out.append(f"fallback plan for {sid!r} is a plan of {plan.signal_id!r}")
    if plan.cycle > b.max_cycle:
        out.append(f"{sid}: its fallback plan's cycle {plan.cycle:g} s is over max_cycle {b.max_cycle:g} s")
    short = [s.name for s in plan.stages if s.min_green < b.min_green]
    if short:
        out.append(f"{sid}: its fallback plan's minimum green of {', '.join(short)} is under {b.min_green:g} s")
    return out


class AdaptiveRow(Base):
    __tablename__ = "adaptive_configs"
    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    config_json: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), index=True)
    proposed_by: Mapped[str] = mapped_column(String(64))
    proposed_at: Mapped[str] = mapped_column(String(40))
    approved_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    approved_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    approver_role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    approval_sig: Mapped[str | None] = mapped_column(String(64), nullable=True)
    deployed_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")


@dataclass(frozen=True)
class AdaptiveRecord:
    """A stored configuration and where it stands."""

    hash: str
    name: str
    state: str
    config: AdaptiveConfig
    proposed_by: str
    approved_by: str | None
    note: str


class AdaptiveStore:
    """Adaptive configurations in a :class:`~deploy.store.PlanStore` (module docstring)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        Base.metadata.create_all(store.engine, tables=[AdaptiveRow.__table__])  # type: ignore[list-item]

    def _row(self, s: Session, ref: str) -> AdaptiveRow:
        rows = s.query(AdaptiveRow).filter(AdaptiveRow.hash.startswith(ref.strip().lower())).all() if ref.strip() else []
        if len(rows) != 1:
            raise Refused(f"adaptive configuration {ref!r}: {'no such' if not rows else 'ambiguous'} hash "
                          "(see `wulin adaptive list`)")
        return rows[0]

    @staticmethod
    def _record(row: AdaptiveRow) -> AdaptiveRecord:
        cfg = AdaptiveConfig.model_validate(json.loads(row.config_json))
        return AdaptiveRecord(row.hash, row.name, row.state, cfg, row.proposed_by, row.approved_by, row.note)

    def _transition(self, s: Session, row: AdaptiveRow, new: str, expected: tuple[str, ...], **values: Any) -> None:
        """One conditional UPDATE: of two concurrent actions exactly one moves the row."""
        n = s.execute(update(AdaptiveRow).where(AdaptiveRow.hash == row.hash, AdaptiveRow.state.in_(expected))
                      .values(state=new, **values)).rowcount  # type: ignore[attr-defined]
        if n != 1:
            raise Refused(f"adaptive configuration {row.hash[:12]} is {row.state}, not {' or '.join(expected)}")
        s.refresh(row)

    # ------------------------------------------------------------------ proposal and approval
    def propose(self, cfg: AdaptiveConfig, actor: Principal, note: str = "") -> AdaptiveRecord:
        """Store ``cfg`` as proposed by ``actor`` (an engineer or supervisor)."""
        from deploy.store import PROPOSERS

        h = cfg.config_hash()

        def go(s: Session) -> AdaptiveRecord:
            self.store._user(s, actor, PROPOSERS)
            if s.get(AdaptiveRow, h) is not None:
                raise Refused(f"adaptive configuration {h[:12]} is already in the store")
            row = AdaptiveRow(hash=h, name=cfg.name, config_json=cfg.to_json(), state="proposed",
                              proposed_by=actor.name, proposed_at=now_iso(), note=note)
            s.add(row)
            self.store._append(s, actor, "adaptive.propose", h, "ok", {
                "name": cfg.name, "controller": cfg.controller, "fallback": dict(cfg.fallback)})
            return self._record(row)

        return self.store._run(actor, "adaptive.propose", h, go)

    def _fallback_problems(self, s: Session, cfg: AdaptiveConfig) -> list[str]:
        from deploy.store import PlanRow

        out = []
        for sid, h in sorted(cfg.fallback.items()):
            row = s.get(PlanRow, h)
            if row is None:
                out.append(f"{sid}: fallback plan {h[:12]} is not in the plan store")
                continue
            if row.state not in FALLBACK_STATES:
                out.append(f"{sid}: fallback plan {h[:12]} is {row.state}; it must be approved first")
                continue
            try:
                self.store._check_approval(row)
            except Refused as exc:
                out.append(f"{sid}: {exc}")
                continue
            out += check_fallback(cfg, sid, self.store._stored_plan(row))
        return out

    def approve(self, ref: str, actor: Principal) -> AdaptiveRecord:
        """Approve (a supervisor other than the proposer) and sign; every fallback plan must be approved."""
        from deploy.store import SUPERVISORS

        def go(s: Session) -> AdaptiveRecord:
            row = self._row(s, ref)
            user = self.store._user(s, actor, SUPERVISORS)
            if user.name == row.proposed_by:
                raise Refused(f"adaptive configuration {row.hash[:12]}: its proposer cannot approve it "
                              "(two-person rule)")
            cfg = self._verified(row)
            problems = self._fallback_problems(s, cfg)
            if problems:
                raise Refused("; ".join(problems))
            claim = ApprovalClaim(row.hash, CLAIM_SIGNAL, user.name, user.role, now_iso(), row.proposed_by)
            self._transition(s, row, "approved", ("proposed",), approved_by=claim.approver,
                             approved_at=claim.approved_at, approver_role=claim.role,
                             approval_sig=approval_mac(self.store._key, claim))
            self.store._append(s, actor, "adaptive.approve", row.hash, "ok", {"fallback": dict(cfg.fallback)})
            return self._record(row)

        return self.store._run(actor, "adaptive.approve", ref, go)

    def reject(self, ref: str, actor: Principal, reason: str) -> AdaptiveRecord:
        from deploy.store import SUPERVISORS

        def go(s: Session) -> AdaptiveRecord:
            row = self._row(s, ref)
            self.store._user(s, actor, SUPERVISORS)
            if not reason.strip():
                raise Refused("a rejection needs a reason")
            self._transition(s, row, "rejected", ("proposed", "approved"), note=reason)
            self.store._append(s, actor, "adaptive.reject", row.hash, "ok", {"reason": reason})
            return self._record(row)

        return self.store._run(actor, "adaptive.reject", ref, go)

    def _verified(self, row: AdaptiveRow) -> AdaptiveConfig:
        """The stored configuration, refused if its JSON no longer hashes to its key."""
        if sha256_hex(row.config_json) != row.hash:
            raise Refused(f"adaptive configuration {row.hash[:12]}: its stored JSON was changed (hash differs)")
        return AdaptiveConfig.model_validate(json.loads(row.config_json))

    def check_approval(self, row: AdaptiveRow) -> AdaptiveConfig:
        """Refuse a configuration whose approval this store did not sign, or that breaks the rules."""
        cfg = self._verified(row)
        claim = ApprovalClaim(row.hash, CLAIM_SIGNAL, row.approved_by or "", row.approver_role or "",
                              row.approved_at or "", row.proposed_by)
        if not same(row.approval_sig, approval_mac(self.store._key, claim)):
            raise Refused(f"adaptive configuration {row.hash[:12]}: its approval signature does not verify "
                          "(changed outside the store); nothing is deployed")
        if claim.approver == claim.proposer or claim.role != "supervisor":
            raise Refused(f"adaptive configuration {row.hash[:12]}: its approval breaks the two-person rule")
        return cfg

    # ------------------------------------------------------------------ deploy and rollback records
    def begin(self, ref: str, actor: Principal, action: str, detail: dict[str, Any] | None = None) -> AdaptiveRecord:
        """Check that ``ref`` may be deployed (``deploy``), rolled back (``rollback``) or run by a
        central process (``run``: it must be deployed) by ``actor``; audited with ``detail``."""
        from deploy.store import DEPLOYERS, SUPERVISORS

        expected = {"deploy": ("approved", "failed", "rolled_back"), "rollback": ("deployed", "failed", "rolling_back"),
                    "run": ("deployed",)}[action]

        def go(s: Session) -> AdaptiveRecord:
            row = self._row(s, ref)
            self.store._user(s, actor, SUPERVISORS if action == "rollback" else DEPLOYERS)
            if row.state not in expected:
                raise Refused(f"adaptive configuration {row.hash[:12]} is {row.state}; {action} needs "
                              f"{' or '.join(expected)}")
            cfg = self.check_approval(row)
            if action == "deploy":
                problems = self._fallback_problems(s, cfg)
                if problems:
                    raise Refused("; ".join(problems))
                self._transition(s, row, "deploying", expected)
            elif action == "rollback":  # a running central process sees it and stops (deploy.adaptive_run)
                self._transition(s, row, "rolling_back", expected)
            self.store._append(s, actor, f"adaptive.{action}.start", row.hash, "ok", detail or {})
            return self._record(row)

        return self.store._run(actor, f"adaptive.{action}", ref, go)

    def finish(self, ref: str, actor: Principal, action: str, state: str, detail: dict[str, Any]) -> AdaptiveRecord:
        """Record how a deploy (``deployed`` / ``failed``) or rollback (``rolled_back`` / ``failed``) ended."""
        def go(s: Session) -> AdaptiveRecord:
            row = self._row(s, ref)
            before = ("deploying",) if action == "deploy" else ("rolling_back",)
            extra = {"deployed_at": now_iso()} if state == "deployed" else {}
            self._transition(s, row, state, before, note=str(detail.get("message", "")), **extra)
            self.store._append(s, actor, f"adaptive.{action}.finish", row.hash, state, detail)
            return self._record(row)

        return self.store._run(actor, f"adaptive.{action}.finish", ref, go)

    def note(self, ref: str, actor: Principal, action: str, outcome: str, detail: dict[str, Any]) -> None:
        """Append ``action`` (a central process's stop: ``adaptive.run.stop``) to the audit chain."""
        def go(s: Session) -> None:
            self.store._append(s, actor, action, self._row(s, ref).hash, outcome, detail)

        self.store._run(actor, action, ref, go)

    def state_of(self, ref: str) -> str:
        """Where ``ref`` stands now (one query: a central process asks every round)."""
        with self.store._tx() as s:
            return self._row(s, ref).state

    def get(self, ref: str) -> AdaptiveRecord:
        with self.store._tx() as s:
            return self._record(self._row(s, ref))

    def list(self) -> list[AdaptiveRecord]:
        with self.store._tx() as s:
            return [self._record(r) for r in s.query(AdaptiveRow).order_by(AdaptiveRow.proposed_at).all()]
