"""The plan store: plans, evidence, devices, users, the plan state machine and the audit log.

SQLAlchemy 2 over a SQLite file by default, PostgreSQL by URL (``postgresql+psycopg://...``).

* **Plans** are stored as canonical JSON under their SHA-256 hash; the hash is recomputed from
  the stored JSON every time a plan is approved or deployed, so an edited row is refused.
* **State machine**::

      proposed --approve--> approved --deploy--> deploying --> deployed --rollback--> rolled_back
         |                     |                     |---> failed (device unchanged)
         +--reject--> rejected +--reject--> rejected +---> rolled_back (automatic)
      failed --deploy--> deploying (a retry keeps the approval: the hash is the same)

* **Two-person rule**: engineers propose, supervisors approve; the approver must differ from
  the proposer and the approval binds the plan's hash.  Approval needs ``validate_plan``
  without violation *and* the target device's capabilities (:mod:`deploy.profile`); a change
  larger than :data:`LARGE_CHANGE_S` against the live plan (or a new stage structure) also
  needs evidence on record (experiment results comparing it with the live plan).
* **Audit log**: one row per action, refused ones included (who, when, what, outcome), each
  row carrying the SHA-256 of its content and of the row before (a hash chain).  Database
  triggers refuse UPDATE and DELETE on it; :meth:`PlanStore.verify_audit` recomputes the chain
  and reports the first row that was altered, removed or inserted.  Truncating the newest rows
  cannot be seen from inside the database: keep the head hash printed by ``wulin plan audit``.

There is no authentication here: the user name comes from the command line (``--user`` or
``WULIN_USER``) and is checked against the users table and its roles.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    event,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from controllers.plan import TimingPlan, canonical_json, change_size, sha256_hex, validate_plan
from deploy.profile import Capabilities, DeviceProfile, check_capabilities
from sim.errors import WulinError

DEFAULT_URL = "sqlite:///runs/plan-store.sqlite"
ROLES = ("engineer", "supervisor")
STATES = ("proposed", "approved", "deploying", "deployed", "rolled_back", "rejected", "failed")
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "proposed": ("approved", "rejected"),
    "approved": ("deploying", "rejected"),
    "deploying": ("deployed", "failed", "rolled_back"),
    "deployed": ("rolled_back",),
    "failed": ("deploying",),
    "rolled_back": (),
    "rejected": (),
}
LARGE_CHANGE_S = 10.0  # seconds of cycle/offset/split change above which evidence is required
GENESIS = "0" * 64


class Refused(WulinError):
    """An action the rules forbid (self-approval, wrong state, wrong role...)."""


class Base(DeclarativeBase):
    pass


class UserRow(Base):
    __tablename__ = "users"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[str] = mapped_column(String(40))


class DeviceRow(Base):
    __tablename__ = "devices"
    signal_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(128))
    port: Mapped[int] = mapped_column(Integer)
    # Where its credentials are in the secrets file (deploy/secrets.py); never the secrets.
    credentials_ref: Mapped[str] = mapped_column(String(128))
    snmp_version: Mapped[str] = mapped_column(String(8))
    profile_json: Mapped[str] = mapped_column(Text)
    capabilities_json: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[str] = mapped_column(String(40))


class PlanRow(Base):
    __tablename__ = "plans"
    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    signal_id: Mapped[str] = mapped_column(String(128), index=True)
    name: Mapped[str] = mapped_column(String(256))
    plan_json: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), index=True)
    proposed_by: Mapped[str] = mapped_column(String(64))
    proposed_at: Mapped[str] = mapped_column(String(40))
    approved_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    approved_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    approved_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    deployed_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")


class EvidenceRow(Base):
    __tablename__ = "evidence"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    plan_hash: Mapped[str] = mapped_column(ForeignKey("plans.hash"), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    summary_json: Mapped[str] = mapped_column(Text)
    added_by: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[str] = mapped_column(String(40))


class AuditRow(Base):
    __tablename__ = "audit"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    plan_hash: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def audit_hash(seq: int, ts: str, actor: str, action: str, plan_hash: str, outcome: str, detail: str,
               prev_hash: str) -> str:
    """The SHA-256 that chains an audit row to the one before."""
    return sha256_hex(canonical_json([seq, ts, actor, action, plan_hash, outcome, detail, prev_hash]))


_SQLITE_TRIGGERS = [
    "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
]
_PG_TRIGGERS = [
    "CREATE OR REPLACE FUNCTION wulin_audit_append_only() RETURNS trigger AS $$ "
    "BEGIN RAISE EXCEPTION 'the audit log is append-only'; END; $$ LANGUAGE plpgsql",
    "DROP TRIGGER IF EXISTS audit_append_only ON audit",
    "CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit "
    "FOR EACH ROW EXECUTE FUNCTION wulin_audit_append_only()",
]


@dataclass(frozen=True)
class PlanRecord:
    """A stored plan and where it stands."""

    hash: str
    signal_id: str
    name: str
    state: str
    proposed_by: str
    proposed_at: str
    approved_by: str | None
    approved_at: str | None
    deployed_at: str | None
    note: str
    plan: TimingPlan


@dataclass(frozen=True)
class Device:
    """A controller the store knows: address, profile, capabilities, and where its SNMP
    credentials are in the secrets file (:mod:`deploy.secrets`; the store holds no secret)."""

    signal_id: str
    host: str
    port: int
    credentials_ref: str
    snmp_version: str
    profile: DeviceProfile
    capabilities: Capabilities


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    ts: str
    actor: str
    action: str
    plan_hash: str
    outcome: str
    detail: dict[str, Any]
    hash: str


class PlanStore:
    """Plans, approvals, devices and the audit log in one database.

    Args:
        url: SQLAlchemy URL; a plain file path means a SQLite file there.
    """

    def __init__(self, url: str | Path = DEFAULT_URL) -> None:
        url = str(url)
        if "://" not in url:
            url = f"sqlite:///{Path(url).resolve()}"
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        try:
            self.engine = create_engine(url, future=True)
            if self.engine.dialect.name == "sqlite":
                event.listen(self.engine, "connect", _sqlite_pragmas)
            Base.metadata.create_all(self.engine)
            with self.engine.begin() as conn:
                ddl = _PG_TRIGGERS if self.engine.dialect.name == "postgresql" else _SQLITE_TRIGGERS
                for stmt in ddl:
                    conn.execute(text(stmt))
        except SQLAlchemyError as exc:
            raise WulinError(f"plan store {url}: cannot open it ({exc.__class__.__name__}: {exc.args[0] if exc.args else ''})") from None
        except ModuleNotFoundError as exc:
            raise WulinError(f"plan store {url}: database driver {exc.name!r} is not installed") from None
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ plumbing
    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._sessions() as s, s.begin():
            yield s

    def _append(self, s: Session, actor: str, action: str, plan_hash: str, outcome: str,
                detail: dict[str, Any] | None = None) -> AuditRow:
        last = s.execute(select(AuditRow).order_by(AuditRow.seq.desc()).limit(1)).scalar_one_or_none()
        seq = 1 if last is None else last.seq + 1
        prev = GENESIS if last is None else last.hash
        ts = _now()
        det = canonical_json(detail or {})
        row = AuditRow(seq=seq, ts=ts, actor=actor, action=action, plan_hash=plan_hash, outcome=outcome,
                       detail=det, prev_hash=prev,
                       hash=audit_hash(seq, ts, actor, action, plan_hash, outcome, det, prev))
        s.add(row)
        s.flush()
        return row

    def _record_refusal(self, actor: str, action: str, plan_hash: str, reason: str) -> None:
        for _ in range(5):
            try:
                with self._tx() as s:
                    self._append(s, actor, action, plan_hash, "refused", {"reason": reason})
                return
            except IntegrityError:  # another writer took the same sequence number
                continue

    def _run(self, actor: str, action: str, plan_hash: str, fn: Any) -> Any:
        """Run ``fn(session)`` in one transaction; a refusal is audited and re-raised."""
        for attempt in range(5):
            try:
                with self._tx() as s:
                    return fn(s)
            except Refused as exc:
                self._record_refusal(actor, action, plan_hash, str(exc))
                raise
            except IntegrityError:
                if attempt == 4:
                    raise
            except OperationalError as exc:
                raise WulinError(f"plan store {self.url}: {exc.orig}") from None
        raise AssertionError("unreachable")

    def _user(self, s: Session, name: str, role: str | None = None) -> UserRow:
        user = s.get(UserRow, name)
        if user is None:
            raise Refused(f"unknown user {name!r}; an administrator adds users with `wulin plan user add`")
        # A supervisor may also do an engineer's work (propose); never the other way round.
        if role is not None and user.role != role and not (role == "engineer" and user.role == "supervisor"):
            raise Refused(f"user {name!r} has role {user.role!r}; this needs a {role}")
        return user

    def _plan_row(self, s: Session, ref: str) -> PlanRow:
        ref = ref.strip().rstrip("….").removeprefix("sha256:")
        rows = s.execute(select(PlanRow).where(PlanRow.hash.startswith(ref.lower()))).scalars().all()
        if not rows or len(ref) < 6:
            raise Refused(f"no plan with hash {ref!r} in the store; `wulin plan list` shows them")
        if len(rows) > 1:
            raise Refused(f"hash prefix {ref!r} matches {len(rows)} plans; give more digits")
        return rows[0]

    @staticmethod
    def _stored_plan(row: PlanRow) -> TimingPlan:
        """The plan as stored, refused if its JSON no longer hashes to its key."""
        actual = sha256_hex(row.plan_json)
        if actual != row.hash:
            raise Refused(
                f"plan {row.hash[:12]}: the stored plan no longer matches its hash (now {actual[:12]}); "
                "it was changed after it was stored and cannot be approved or deployed"
            )
        return TimingPlan.from_json(row.plan_json, f"plan {row.hash[:12]}")

    @staticmethod
    def _move(row: PlanRow, new: str) -> None:
        if new not in TRANSITIONS[row.state]:
            raise Refused(f"plan {row.hash[:12]} is {row.state}; it cannot become {new}")
        row.state = new

    @staticmethod
    def _record(row: PlanRow, plan: TimingPlan | None = None) -> PlanRecord:
        return PlanRecord(
            hash=row.hash, signal_id=row.signal_id, name=row.name, state=row.state, proposed_by=row.proposed_by,
            proposed_at=row.proposed_at, approved_by=row.approved_by, approved_at=row.approved_at,
            deployed_at=row.deployed_at, note=row.note,
            plan=plan or TimingPlan.from_json(row.plan_json, f"plan {row.hash[:12]}"),
        )

    # ------------------------------------------------------------------ users and devices
    def add_user(self, name: str, role: str, actor: str = "admin") -> None:
        """Add a user with a role (``engineer`` or ``supervisor``)."""
        if role not in ROLES:
            raise WulinError(f"role {role!r} is not one of {', '.join(ROLES)}")
        if not name or len(name) > 64:
            raise WulinError("a user name is 1-64 characters")

        def go(s: Session) -> None:
            if s.get(UserRow, name) is not None:
                raise Refused(f"user {name!r} exists already")
            s.add(UserRow(name=name, role=role, created_at=_now()))
            self._append(s, actor, "user.add", "", "ok", {"user": name, "role": role})

        self._run(actor, "user.add", "", go)

    def users(self) -> dict[str, str]:
        with self._tx() as s:
            return {u.name: u.role for u in s.execute(select(UserRow).order_by(UserRow.name)).scalars()}

    def register_device(self, signal_id: str, host: str, port: int, profile: DeviceProfile,
                        capabilities: Capabilities, *, credentials_ref: str | None = None,
                        snmp_version: str = "3", actor: str = "admin") -> None:
        """Add or replace a controller's address, profile and (probed) capabilities.

        Its credentials are not given here: they are in the secrets file under
        ``credentials_ref`` (default: the signal id), put there with
        :meth:`deploy.secrets.SecretsFile.put`.  ``snmp_version`` "2c" is the explicit v2c
        opt-in; "3" (USM authPriv) is the default.
        """
        if profile.signal_id != signal_id:
            raise WulinError(f"device {signal_id!r}: its profile is for {profile.signal_id!r}")
        if snmp_version not in ("3", "2c"):
            raise WulinError(f"device {signal_id!r}: SNMP version {snmp_version!r}; use 3 (or 2c, opted in)")
        ref = credentials_ref or signal_id

        def go(s: Session) -> None:
            row = s.get(DeviceRow, signal_id) or DeviceRow(signal_id=signal_id)
            row.host, row.port, row.snmp_version = host, int(port), snmp_version
            row.credentials_ref = ref
            row.profile_json, row.capabilities_json = profile.to_json(), json.dumps(capabilities.to_dict())
            row.updated_at = _now()
            s.add(row)
            self._append(s, actor, "device.register", "", "ok",
                         {"signal_id": signal_id, "host": host, "port": int(port), "snmp": snmp_version,
                          "credentials_ref": ref})

        self._run(actor, "device.register", "", go)

    def device(self, signal_id: str) -> Device:
        """The registered controller of ``signal_id``; :class:`Refused` when there is none."""
        with self._tx() as s:
            return self._device(s, signal_id)

    def _device(self, s: Session, signal_id: str) -> Device:
        row = s.get(DeviceRow, signal_id)
        if row is None:
            raise Refused(
                f"unknown device: no controller is registered for signal {signal_id!r}; "
                "register it (`wulin emulator start` registers its emulated ones)"
            )
        return Device(row.signal_id, row.host, row.port, row.credentials_ref,
                      row.snmp_version, DeviceProfile.from_json(row.profile_json, f"device {signal_id}"),
                      Capabilities.from_dict(json.loads(row.capabilities_json)))

    def devices(self) -> list[Device]:
        with self._tx() as s:
            return [self._device(s, sid) for sid in s.execute(select(DeviceRow.signal_id)).scalars()]

    # ------------------------------------------------------------------ plans
    def propose(self, plan: TimingPlan, actor: str, evidence: dict[str, Any] | None = None,
                note: str = "") -> PlanRecord:
        """Store ``plan`` as proposed by ``actor`` (an engineer), with optional evidence."""
        h = plan.plan_hash()

        def go(s: Session) -> PlanRecord:
            self._user(s, actor, "engineer")
            if s.get(PlanRow, h) is not None:
                raise Refused(f"plan {h[:12]} is already in the store")
            row = PlanRow(hash=h, signal_id=plan.signal_id, name=plan.name, plan_json=plan.to_json(),
                          state="proposed", proposed_by=actor, proposed_at=_now(), note=note)
            s.add(row)
            problems = validate_plan(plan)
            self._append(s, actor, "propose", h, "ok", {"signal_id": plan.signal_id, "name": plan.name,
                                                         "violations": problems})
            if evidence is not None:
                self._add_evidence(s, h, evidence, actor)
            return self._record(row, plan)

        return self._run(actor, "propose", h, go)

    def _add_evidence(self, s: Session, h: str, evidence: dict[str, Any], actor: str) -> None:
        kind = str(evidence.get("kind", "experiment"))
        s.add(EvidenceRow(plan_hash=h, kind=kind, summary_json=canonical_json(evidence), added_by=actor,
                          added_at=_now()))
        self._append(s, actor, "evidence", h, "ok", {"kind": kind, "sha256": sha256_hex(canonical_json(evidence))})

    def add_evidence(self, ref: str, evidence: dict[str, Any], actor: str) -> None:
        """Attach evidence (for example experiment results against the live plan) to a plan."""
        def go(s: Session) -> None:
            self._user(s, actor)
            row = self._plan_row(s, ref)
            self._add_evidence(s, row.hash, evidence, actor)

        self._run(actor, "evidence", ref, go)

    def evidence(self, ref: str) -> list[dict[str, Any]]:
        with self._tx() as s:
            row = self._plan_row(s, ref)
            rows = s.execute(select(EvidenceRow).where(EvidenceRow.plan_hash == row.hash)
                             .order_by(EvidenceRow.id)).scalars()
            return [json.loads(e.summary_json) | {"added_by": e.added_by, "added_at": e.added_at} for e in rows]

    def get(self, ref: str) -> PlanRecord:
        """A plan by hash or unique hash prefix (at least 6 hex digits)."""
        with self._tx() as s:
            return self._record(self._plan_row(s, ref))

    def plans(self, signal_id: str | None = None, state: str | None = None) -> list[PlanRecord]:
        """Stored plans, oldest first, optionally of one signal or in one state."""
        with self._tx() as s:
            q = select(PlanRow).order_by(PlanRow.proposed_at)
            if signal_id:
                q = q.where(PlanRow.signal_id == signal_id)
            if state:
                q = q.where(PlanRow.state == state)
            return [self._record(r) for r in s.execute(q).scalars()]

    def live_plan(self, signal_id: str) -> PlanRecord | None:
        """The plan most recently deployed to ``signal_id`` and still in force."""
        with self._tx() as s:
            row = s.execute(select(PlanRow).where(PlanRow.signal_id == signal_id, PlanRow.state == "deployed")
                            .order_by(PlanRow.deployed_at.desc()).limit(1)).scalar_one_or_none()
            return self._record(row) if row else None

    def approve(self, ref: str, actor: str) -> PlanRecord:
        """Approve a proposed plan: second person, supervisor, valid plan, capable device."""
        def go(s: Session) -> PlanRecord:
            row = self._plan_row(s, ref)
            if actor == row.proposed_by:
                raise Refused(f"{actor!r} proposed plan {row.hash[:12]} and cannot approve it: a second person must")
            self._user(s, actor, "supervisor")
            if row.state != "proposed":
                raise Refused(f"plan {row.hash[:12]} is {row.state}; only a proposed plan can be approved")
            plan = self._stored_plan(row)
            problems = validate_plan(plan)
            if problems:
                raise Refused(f"plan {row.hash[:12]} is not valid: " + "; ".join(problems))
            dev = self._device(s, plan.signal_id)
            cap = check_capabilities(plan, dev.profile, dev.capabilities)
            if cap:
                raise Refused(f"device {plan.signal_id!r} cannot run plan {row.hash[:12]}: " + "; ".join(cap))
            live = s.execute(select(PlanRow).where(PlanRow.signal_id == plan.signal_id, PlanRow.state == "deployed")
                             .order_by(PlanRow.deployed_at.desc()).limit(1)).scalar_one_or_none()
            size = change_size(TimingPlan.from_json(live.plan_json), plan) if live else math.inf
            has_evidence = s.execute(select(EvidenceRow.id).where(EvidenceRow.plan_hash == row.hash)).first()
            tier = "large" if size > LARGE_CHANGE_S else "small"
            if tier == "large" and not has_evidence:
                what = f"a {size:g} s change" if live and math.isfinite(size) else (
                    "a new stage structure" if live else "the first plan for this signal")
                raise Refused(f"plan {row.hash[:12]} is {what}: attach evidence (`wulin plan propose --evidence`) "
                              "before it can be approved")
            self._move(row, "approved")
            row.approved_by, row.approved_at, row.approved_hash = actor, _now(), row.hash
            self._append(s, actor, "approve", row.hash, "ok",
                         {"tier": tier, "change_s": None if math.isinf(size) else size})
            return self._record(row, plan)

        return self._run(actor, "approve", ref, go)

    def reject(self, ref: str, actor: str, reason: str) -> PlanRecord:
        def go(s: Session) -> PlanRecord:
            row = self._plan_row(s, ref)
            self._user(s, actor, "supervisor")
            if not reason.strip():
                raise Refused("a rejection needs a reason")
            self._move(row, "rejected")
            row.note = reason
            self._append(s, actor, "reject", row.hash, "ok", {"reason": reason})
            return self._record(row)

        return self._run(actor, "reject", ref, go)

    def begin_deploy(self, ref: str, actor: str, plan: TimingPlan | None = None) -> tuple[PlanRecord, Device]:
        """Check that ``ref`` may be deployed now and mark it deploying.

        ``plan``, when given, is the plan the caller is about to send: its hash must be the
        approved one (a plan changed after approval is refused).
        """
        def go(s: Session) -> tuple[PlanRecord, Device]:
            row = self._plan_row(s, ref)
            user = self._user(s, actor)
            if row.state not in ("approved", "failed"):
                raise Refused(f"plan {row.hash[:12]} is {row.state}; only an approved plan can be deployed")
            stored = self._stored_plan(row)
            if row.approved_hash != row.hash:
                raise Refused(f"plan {row.hash[:12]}: its approval was for another hash")
            if plan is not None and plan.plan_hash() != row.approved_hash:
                raise Refused(
                    f"the plan to deploy hashes to {plan.plan_hash()[:12]}, the approval binds "
                    f"{row.approved_hash[:12]}: a plan changed after approval is not deployed"
                )
            dev = self._device(s, row.signal_id)
            busy = s.execute(select(PlanRow.hash).where(PlanRow.signal_id == row.signal_id,
                                                        PlanRow.state == "deploying")).scalars().first()
            if busy is not None:
                raise Refused(f"plan {busy[:12]} is being deployed to {row.signal_id!r}; one deploy at a time")
            self._move(row, "deploying")
            self._append(s, actor, "deploy.start", row.hash, "ok",
                         {"role": user.role, "device": f"{dev.host}:{dev.port}"})
            return self._record(row, stored), dev

        return self._run(actor, "deploy", ref, go)

    def finish_deploy(self, ref: str, actor: str, outcome: str, detail: dict[str, Any]) -> PlanRecord:
        """Record how a deploy ended: ``deployed``, ``failed`` or ``rolled_back``."""
        def go(s: Session) -> PlanRecord:
            row = self._plan_row(s, ref)
            if row.state != "deploying":
                raise Refused(f"plan {row.hash[:12]} is {row.state}, not deploying")
            self._move(row, outcome)
            if outcome == "deployed":
                row.deployed_at = _now()
            row.note = str(detail.get("message", ""))
            self._append(s, actor, "deploy.finish", row.hash, outcome, detail)
            return self._record(row)

        return self._run(actor, "deploy.finish", ref, go)

    def begin_rollback(self, ref: str, actor: str) -> tuple[PlanRecord, Device]:
        """Check that a deployed plan may be rolled back by ``actor`` (a supervisor)."""
        def go(s: Session) -> tuple[PlanRecord, Device]:
            row = self._plan_row(s, ref)
            self._user(s, actor, "supervisor")
            if row.state != "deployed":
                raise Refused(f"plan {row.hash[:12]} is {row.state}; only a deployed plan can be rolled back")
            return self._record(row), self._device(s, row.signal_id)

        return self._run(actor, "rollback", ref, go)

    def finish_rollback(self, ref: str, actor: str, ok: bool, detail: dict[str, Any]) -> PlanRecord:
        def go(s: Session) -> PlanRecord:
            row = self._plan_row(s, ref)
            if ok:
                self._move(row, "rolled_back")
            self._append(s, actor, "rollback", row.hash, "ok" if ok else "failed", detail)
            return self._record(row)

        return self._run(actor, "rollback", ref, go)

    def log(self, actor: str, action: str, plan_hash: str, outcome: str, detail: dict[str, Any]) -> None:
        """Append a free audit entry (deploy steps, probes)."""
        self._run(actor, action, plan_hash, lambda s: self._append(s, actor, action, plan_hash, outcome, detail))

    # ------------------------------------------------------------------ audit
    def audit(self, plan_ref: str | None = None) -> list[AuditEntry]:
        with self._tx() as s:
            q = select(AuditRow).order_by(AuditRow.seq)
            if plan_ref:
                q = q.where(AuditRow.plan_hash.startswith(plan_ref.lower()))
            return [AuditEntry(r.seq, r.ts, r.actor, r.action, r.plan_hash, r.outcome, json.loads(r.detail), r.hash)
                    for r in s.execute(q).scalars()]

    def verify_audit(self) -> tuple[bool, list[str], str]:
        """Recompute the hash chain: ``(ok, problems, head hash)``."""
        problems: list[str] = []
        prev, expect_seq = GENESIS, 1
        with self._tx() as s:
            for r in s.execute(select(AuditRow).order_by(AuditRow.seq)).scalars():
                if r.seq != expect_seq:
                    problems.append(f"entry {expect_seq}" + (f"-{r.seq - 1}" if r.seq - 1 > expect_seq else "")
                                    + " missing (deleted)")
                if r.prev_hash != prev:
                    problems.append(f"entry {r.seq}: does not follow the entry before it (chain broken)")
                h = audit_hash(r.seq, r.ts, r.actor, r.action, r.plan_hash, r.outcome, r.detail, r.prev_hash)
                if h != r.hash:
                    problems.append(f"entry {r.seq}: content does not match its hash (altered)")
                prev, expect_seq = r.hash, r.seq + 1
        return not problems, problems, prev


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()
