"""The plan store: plans, evidence, devices, users, the plan state machine and the audit log.

SQLAlchemy 2 over a SQLite file by default, PostgreSQL by URL (``postgresql+psycopg://...``).

* **Identity** (:mod:`deploy.identity`, tables and methods in :mod:`deploy.accounts`, which
  :class:`PlanStore` inherits): every change is made for an authenticated
  :class:`~deploy.identity.Principal` (password or API token); user names are normalised
  (``Wang`` and ``wang `` are one user); only an admin manages users and tokens; failed logins
  are audited and lock the user after a few in a row.
* **Plans** are stored as canonical JSON under their SHA-256 hash; the hash is recomputed from
  the stored JSON every time a plan is approved or deployed, so an edited row is refused.
* **State machine**::

      proposed --approve--> approved --deploy--> deploying --> deployed --rollback--> rolled_back
         |                     |                     |---> failed (device unchanged)
         +--reject--> rejected +--reject--> rejected +---> rolled_back (automatic)
      failed --deploy--> deploying (a retry keeps the approval: the hash is the same)

  Every transition is one conditional ``UPDATE ... WHERE state = <expected>``: of two
  concurrent actions on one plan exactly one changes it.  A device action (deploy, rollback,
  recovery) also holds the signal's **lease**, one row per signal (its primary key is the
  signal), with an expiry: one device action per signal at a time, enforced by the database.
* **Approval** runs every rule of :func:`deploy.rules.decide_approval` (two persons,
  supervisor, every engineering check including the network's conflicts, device capabilities,
  evidence) and is **signed** (:mod:`deploy.signing`) with a key kept outside the database;
  a deploy refuses a plan whose approval signature does not verify, so setting
  ``state = 'approved'`` or rewriting the approver in the database deploys nothing.
* **Audit log**: one row per action, refused ones included (who, through which channel, when,
  what, outcome), each keyed to the one before with an HMAC (the key outside the database);
  database triggers refuse UPDATE and DELETE on it; after every write the signed chain head
  is appended to a head file outside the database.  :meth:`PlanStore.verify_audit` reports
  altered, removed, inserted, re-chained, forged and truncated entries.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    CursorResult,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    delete,
    event,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from controllers.plan import TimingPlan, canonical_json, sha256_hex, validate_plan
from deploy.accounts import ADMINS, Accounts, IssuedToken, TokenRow, UserInfo, UserRow
from deploy.identity import (
    Principal,
)
from deploy.plan_sets import PlanSets
from deploy.profile import Capabilities, DeviceProfile
from deploy.rules import LARGE_CHANGE_S, ApprovalFacts, DeviceFacts, decide_approval
from deploy.signing import (
    ApprovalClaim,
    Head,
    HeadFile,
    approval_mac,
    default_paths,
    entry_mac,
    load_key,
    private_file,
    same,
)
from deploy.storebase import STATES as STATES  # the state machine, shared with plan sets
from deploy.storebase import TRANSITIONS, Actor, Base, Refused, T
from deploy.storebase import actor_parts as _who
from deploy.storebase import now_iso as _now
from deploy.storebase import parse_iso as _parse
from deploy.websessions import WebSessions
from sim.errors import WulinError

__all__ = ["ADMINS", "LARGE_CHANGE_S", "IssuedToken", "PlanStore", "Refused", "TokenRow", "UserInfo"]

DEFAULT_URL = "sqlite:///runs/plan-store.sqlite"
GENESIS = "0" * 64
_AUDIT_LOCK = 0x57554C494E  # PostgreSQL advisory lock key of the audit appenders ("WULIN")
PROPOSERS = ("engineer", "supervisor")  # a supervisor may also do an engineer's work
DEPLOYERS = ("engineer", "supervisor")
SUPERVISORS = ("supervisor",)


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
    approver_role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    approval_sig: Mapped[str | None] = mapped_column(String(64), nullable=True)
    deployed_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    conflicts_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")


class EvidenceRow(Base):
    __tablename__ = "evidence"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    plan_hash: Mapped[str] = mapped_column(ForeignKey("plans.hash"), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    summary_json: Mapped[str] = mapped_column(Text)
    added_by: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[str] = mapped_column(String(40))


class LeaseRow(Base):
    """One device action per signal: the primary key is the signal."""

    __tablename__ = "leases"
    signal_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    plan_hash: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(16))  # deploy or rollback
    holder: Mapped[str] = mapped_column(String(128))
    actor: Mapped[str] = mapped_column(String(64))
    acquired_at: Mapped[str] = mapped_column(String(40))
    expires_at: Mapped[str] = mapped_column(String(40))


class AuditRow(Base):
    __tablename__ = "audit"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))
    plan_hash: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    def fields(self) -> list[object]:
        """What the entry's MAC covers (besides the MAC before it)."""
        return [self.seq, self.ts, self.actor, self.channel, self.action, self.plan_hash, self.outcome,
                self.detail]


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
    conflicts: list[list[bool]] | None = None  # the network's conflict matrix recorded at propose


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
    """One audit log entry as read back."""

    seq: int
    ts: str
    actor: str
    channel: str
    action: str
    plan_hash: str
    outcome: str
    detail: dict[str, Any]
    hash: str


@dataclass(frozen=True)
class AuditCheck:
    """What :meth:`PlanStore.verify_audit` found.

    Attributes:
        ok: No problem found.
        problems: Each problem in plain words.
        head: MAC of the newest entry (GENESIS for an empty log).
        entries: How many entries there are.
        published: Sequence number of the newest signed head in the head file (0: none).
    """

    ok: bool
    problems: list[str]
    head: str
    entries: int
    published: int


@dataclass(frozen=True)
class Lease:
    """Who holds a signal for a device action, and until when."""

    signal_id: str
    plan_hash: str
    purpose: str
    holder: str
    actor: str
    acquired_at: str
    expires_at: str

    def expired(self, now: dt.datetime | None = None) -> bool:
        """Whether the lease ran out (at ``now``, default the current time)."""
        return _parse(self.expires_at) <= (now or dt.datetime.now(dt.UTC))


@dataclass(frozen=True)
class Ticket:
    """A device action the store allowed: the plan, its device and the lease held for it.

    ``summary`` is the signed deploy record a rollback or a recovery restores from (the
    ``deploy.finish`` or ``deploy.snapshot`` audit detail), when there is one.
    """

    record: PlanRecord
    device: Device
    lease: Lease
    summary: dict[str, Any] | None = None


def _check_sqlite_file(db: Path) -> None:
    """Refuse an existing file that is not a SQLite database: SQLite would write over a short one."""
    if not db.is_file():
        raise WulinError(f"plan store {db}: not a regular file; name a SQLite file or a database URL")
    with db.open("rb") as fh:
        head = fh.read(16)
    if head and head != b"SQLite format 3\x00":
        raise WulinError(f"plan store {db}: not a SQLite database (the file holds something else); "
                         "name the store file, or a new path for `wulin plan init`")


class PlanStore(Accounts, WebSessions, PlanSets):
    """Plans, approvals, devices, users and the audit log in one database.

    Args:
        url: SQLAlchemy URL; a plain file path means a SQLite file there (created 0600).
        key_file: The store key (outside the database); default :func:`deploy.signing.default_paths`.
        head_file: Where signed chain heads are published; same default.
    """

    def __init__(self, url: str | Path = DEFAULT_URL, key_file: Path | None = None,
                 head_file: Path | None = None) -> None:
        url = str(url)
        if "://" not in url:
            url = f"sqlite:///{Path(url).resolve()}"
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            db = Path(url[len("sqlite:///"):])
            if not db.exists():
                private_file(db)  # SQLite gives its journal the database file's mode too
            else:
                _check_sqlite_file(db)
        self.url = url
        self.engine = self._open(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        default_key, default_head = default_paths(url)
        self.key_file, self.head_file = key_file or default_key, head_file or default_head
        with self._sessions() as s:
            fresh = s.execute(select(AuditRow.seq).limit(1)).first() is None
        self._key = load_key(self.key_file, create=fresh)
        self._heads = HeadFile(self.head_file, self._key)

    @staticmethod
    def _open(url: str) -> Any:
        try:
            engine = create_engine(url, future=True)
            if engine.dialect.name == "sqlite":
                event.listen(engine, "connect", _sqlite_pragmas)
                event.listen(engine, "begin", _sqlite_begin_immediate)
            Base.metadata.create_all(engine)
            with engine.begin() as conn:
                for stmt in _PG_TRIGGERS if engine.dialect.name == "postgresql" else _SQLITE_TRIGGERS:
                    conn.execute(text(stmt))
            cols = {c["name"] for c in inspect(engine).get_columns("users")}
            if "password_hash" not in cols:
                raise WulinError(f"plan store {url}: made by an older version without authentication; "
                                 "move it aside and create a new store with `wulin plan init`")
        except SQLAlchemyError as exc:
            raise WulinError(f"plan store {url}: cannot open it ({exc.__class__.__name__}: "
                             f"{exc.args[0] if exc.args else ''})") from None
        except ModuleNotFoundError as exc:
            raise WulinError(f"plan store {url}: database driver {exc.name!r} is not installed") from None
        return engine

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    # ------------------------------------------------------------------ plumbing
    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._sessions() as s:
            with s.begin():
                yield s
            head = s.info.pop("head", None)
        if head is not None:  # published only once the entry is committed
            self._heads.publish(head)

    def _append(self, s: Session, actor: Actor, action: str, plan_hash: str, outcome: str,
                detail: dict[str, Any] | None = None) -> AuditRow:
        if s.get_bind().dialect.name == "postgresql":
            # One appender at a time (until commit), so the next sequence number is never taken
            # twice; SQLite's BEGIN IMMEDIATE serialises writers already.
            s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _AUDIT_LOCK})
        last = s.execute(select(AuditRow).order_by(AuditRow.seq.desc()).limit(1)).scalar_one_or_none()
        name, channel = _who(actor)
        row = AuditRow(seq=1 if last is None else last.seq + 1, ts=_now(), actor=name, channel=channel,
                       action=action, plan_hash=plan_hash, outcome=outcome, detail=canonical_json(detail or {}),
                       prev_hash=GENESIS if last is None else last.hash)
        row.hash = entry_mac(self._key, row.fields(), row.prev_hash)
        s.add(row)
        s.flush()
        s.info["head"] = Head(row.seq, row.hash)
        return row

    def _record_refusal(self, actor: Actor, action: str, plan_hash: str, reason: str) -> None:
        for _ in range(5):
            try:
                with self._tx() as s:
                    self._append(s, actor, action, plan_hash, "refused", {"reason": reason})
                return
            except IntegrityError:  # another writer took the same sequence number
                continue

    def _run(self, actor: Actor, action: str, plan_hash: str, fn: Callable[[Session], T]) -> T:
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
    def _transition(s: Session, row: PlanRow, new: str, **values: Any) -> None:
        """Move ``row`` to ``new`` only if nobody moved it since it was read (a conditional UPDATE)."""
        if new not in TRANSITIONS[row.state]:
            raise Refused(f"plan {row.hash[:12]} is {row.state}; it cannot become {new}")
        done = _changed(s, update(PlanRow).where(PlanRow.hash == row.hash, PlanRow.state == row.state)
                        .values(state=new, **values).execution_options(synchronize_session=False))
        if done != 1:
            raise Refused(f"plan {row.hash[:12]} changed while this action ran (another user or process "
                          "acted on it first); nothing was done")
        s.refresh(row)

    @staticmethod
    def _record(row: PlanRow, plan: TimingPlan | None = None) -> PlanRecord:
        return PlanRecord(
            hash=row.hash, signal_id=row.signal_id, name=row.name, state=row.state, proposed_by=row.proposed_by,
            proposed_at=row.proposed_at, approved_by=row.approved_by, approved_at=row.approved_at,
            deployed_at=row.deployed_at, note=row.note,
            plan=plan or TimingPlan.from_json(row.plan_json, f"plan {row.hash[:12]}"),
            conflicts=json.loads(row.conflicts_json) if row.conflicts_json else None,
        )

    def _trusted(self, row: AuditRow) -> bool:
        """Whether one audit entry carries a valid MAC (it was written with the store key)."""
        return same(row.hash, entry_mac(self._key, row.fields(), row.prev_hash))

    def _signed_entry(self, s: Session, plan_hash: str, action: str, outcome: str) -> AuditRow | None:
        """The newest correctly keyed ``action`` entry of a plan (None: none)."""
        rows = s.execute(select(AuditRow).where(AuditRow.plan_hash == plan_hash, AuditRow.action == action,
                                                AuditRow.outcome == outcome)
                         .order_by(AuditRow.seq.desc())).scalars()
        return next((r for r in rows if self._trusted(r)), None)

    def _signed_detail(self, s: Session, plan_hash: str, action: str, outcome: str) -> dict[str, Any] | None:
        """The detail of the newest correctly keyed ``action`` entry of a plan (None: none)."""
        entry = self._signed_entry(s, plan_hash, action, outcome)
        return json.loads(entry.detail) if entry is not None else None

    # ------------------------------------------------------------------ devices
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
    def propose(self, plan: TimingPlan, actor: Principal, evidence: dict[str, Any] | None = None,
                note: str = "", conflicts: list[list[bool]] | None = None,
                conflicts_source: str = "") -> PlanRecord:
        """Store ``plan`` as proposed by ``actor`` (an engineer).

        Args:
            plan: The plan.
            actor: Who proposes.
            evidence: Optional evidence (experiment results against the live plan).
            note: Why this plan.
            conflicts: The network's conflict matrix for the plan's signal; approval needs it
                (its digest goes into the signed audit entry, so it cannot be swapped later).
            conflicts_source: Where the matrix came from (the .net.xml), for the record.
        """
        h = plan.plan_hash()
        conflicts_json = canonical_json(conflicts) if conflicts is not None else None

        def go(s: Session) -> PlanRecord:
            self._user(s, actor, PROPOSERS)
            if s.get(PlanRow, h) is not None:
                raise Refused(f"plan {h[:12]} is already in the store")
            row = PlanRow(hash=h, signal_id=plan.signal_id, name=plan.name, plan_json=plan.to_json(),
                          state="proposed", proposed_by=actor.name, proposed_at=_now(), note=note,
                          conflicts_json=conflicts_json)
            s.add(row)
            problems = validate_plan(plan, conflicts)
            self._append(s, actor, "propose", h, "ok", {
                "signal_id": plan.signal_id, "name": plan.name, "violations": problems,
                "conflicts_sha256": sha256_hex(conflicts_json) if conflicts_json else None,
                "conflicts_source": conflicts_source})
            if evidence is not None:
                self._add_evidence(s, h, evidence, actor)
            return self._record(row, plan)

        return self._run(actor, "propose", h, go)

    def _add_evidence(self, s: Session, h: str, evidence: dict[str, Any], actor: Principal) -> None:
        kind = str(evidence.get("kind", "experiment"))
        s.add(EvidenceRow(plan_hash=h, kind=kind, summary_json=canonical_json(evidence), added_by=actor.name,
                          added_at=_now()))
        self._append(s, actor, "evidence", h, "ok", {"kind": kind, "sha256": sha256_hex(canonical_json(evidence))})

    def add_evidence(self, ref: str, evidence: dict[str, Any], actor: Principal) -> None:
        """Attach evidence (for example experiment results against the live plan) to a plan."""
        def go(s: Session) -> None:
            self._user(s, actor, PROPOSERS)
            row = self._plan_row(s, ref)
            self._add_evidence(s, row.hash, evidence, actor)

        self._run(actor, "evidence", ref, go)

    def evidence(self, ref: str) -> list[dict[str, Any]]:
        """The evidence attached to a plan, oldest first, with who added it and when."""
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

    @staticmethod
    def _live_row(s: Session, signal_id: str) -> PlanRow | None:
        return s.execute(select(PlanRow).where(PlanRow.signal_id == signal_id, PlanRow.state == "deployed")
                         .order_by(PlanRow.deployed_at.desc()).limit(1)).scalar_one_or_none()

    def live_plan(self, signal_id: str) -> PlanRecord | None:
        """The plan most recently deployed to ``signal_id`` and still in force."""
        with self._tx() as s:
            row = self._live_row(s, signal_id)
            return self._record(row) if row else None

    def _approval_facts(self, s: Session, row: PlanRow, user: UserRow) -> ApprovalFacts:
        """Gather from the database what :func:`deploy.rules.decide_approval` looks at."""
        plan = TimingPlan.from_json(row.plan_json, f"plan {row.hash[:12]}")
        entry = self._signed_entry(s, row.hash, "propose", "ok")
        proposed = json.loads(entry.detail) if entry is not None else {}
        conflicts = json.loads(row.conflicts_json) if row.conflicts_json else None
        trusted = conflicts is None or proposed.get("conflicts_sha256") == sha256_hex(row.conflicts_json or "")
        dev = self._device(s, row.signal_id) if s.get(DeviceRow, row.signal_id) is not None else None
        live = self._live_row(s, row.signal_id)
        return ApprovalFacts(
            plan=plan, plan_hash=row.hash, actual_hash=sha256_hex(row.plan_json), state=row.state,
            proposer=row.proposed_by, proposer_on_record=entry.actor if entry is not None else None,
            approver=user.name, approver_role=user.role,
            approver_active=not user.disabled, conflicts=conflicts, conflicts_trusted=trusted,
            device=DeviceFacts(dev.profile, dev.capabilities) if dev else None,
            live=TimingPlan.from_json(live.plan_json) if live else None,
            has_evidence=s.execute(select(EvidenceRow.id).where(EvidenceRow.plan_hash == row.hash)).first()
            is not None,
        )

    def approve(self, ref: str, actor: Principal) -> PlanRecord:
        """Approve a proposed plan if :func:`deploy.rules.decide_approval` allows it, and sign it."""
        def go(s: Session) -> PlanRecord:
            row = self._plan_row(s, ref)
            user = self._user(s, actor)
            decision = decide_approval(self._approval_facts(s, row, user))
            if not decision.allowed:
                raise Refused("; ".join(decision.reasons))
            claim = ApprovalClaim(row.hash, row.signal_id, user.name, user.role, _now(), row.proposed_by)
            self._transition(s, row, "approved", approved_by=claim.approver, approved_at=claim.approved_at,
                             approved_hash=row.hash, approver_role=claim.role,
                             approval_sig=approval_mac(self._key, claim))
            self._append(s, actor, "approve", row.hash, "ok", {"tier": decision.tier, "change_s": decision.change_s})
            return self._record(row)

        return self._run(actor, "approve", ref, go)

    def reject(self, ref: str, actor: Principal, reason: str) -> PlanRecord:
        """Reject a proposed or approved plan (a supervisor's action), with a reason."""
        def go(s: Session) -> PlanRecord:
            row = self._plan_row(s, ref)
            self._user(s, actor, SUPERVISORS)
            if not reason.strip():
                raise Refused("a rejection needs a reason")
            self._transition(s, row, "rejected", note=reason)
            self._append(s, actor, "reject", row.hash, "ok", {"reason": reason})
            return self._record(row)

        return self._run(actor, "reject", ref, go)

    # ------------------------------------------------------------------ deploy, rollback, recovery
    def _check_approval(self, row: PlanRow) -> None:
        """Refuse a plan whose approval is not one this store signed (edited in the database)."""
        short = row.hash[:12]
        if row.approved_hash != row.hash:
            raise Refused(f"plan {short}: its approval was for another hash")
        claim = ApprovalClaim(row.hash, row.signal_id, row.approved_by or "", row.approver_role or "",
                              row.approved_at or "", row.proposed_by)
        if not same(row.approval_sig, approval_mac(self._key, claim)):
            raise Refused(f"plan {short}: its approval signature does not verify (the approval, the approver, "
                          "the proposer or the plan was changed outside the store); it is not deployed")
        if claim.approver == claim.proposer or claim.role != "supervisor":
            raise Refused(f"plan {short}: its approval breaks the two-person rule")

    def _acquire(self, s: Session, row: PlanRow, purpose: str, holder: str, actor: Principal,
                 lease_s: float) -> Lease:
        """Take the signal's lease (its primary key makes a second holder impossible)."""
        held = s.get(LeaseRow, row.signal_id)
        if held is not None:
            raise Refused(
                f"signal {row.signal_id!r} is held by a {held.purpose} of plan {held.plan_hash[:12]} "
                f"({held.actor}, until {held.expires_at[:19]} UTC); one device action at a time. If that "
                f"process died, run `wulin plan recover {row.signal_id}`")
        now = dt.datetime.now(dt.UTC)
        lease = LeaseRow(signal_id=row.signal_id, plan_hash=row.hash, purpose=purpose, holder=holder,
                         actor=actor.name, acquired_at=now.isoformat(),
                         expires_at=(now + dt.timedelta(seconds=lease_s)).isoformat())
        s.add(lease)
        s.flush()
        return _lease(lease)

    def _release(self, s: Session, row: PlanRow, holder: str) -> None:
        gone = _changed(s, delete(LeaseRow).where(LeaseRow.signal_id == row.signal_id, LeaseRow.holder == holder))
        if gone != 1:
            raise Refused(f"signal {row.signal_id!r}: this process no longer holds its lease (it expired and "
                          "was recovered by another); the outcome is recorded by the recovery")

    def begin_deploy(self, ref: str, actor: Principal, plan: TimingPlan | None = None, *, holder: str,
                     lease_s: float) -> Ticket:
        """Check that ``ref`` may be deployed now, take the signal's lease and mark it deploying.

        ``plan``, when given, is the plan the caller is about to send: its hash must be the
        approved one (a plan changed after approval is refused).
        """
        def go(s: Session) -> Ticket:
            row = self._plan_row(s, ref)
            user = self._user(s, actor, DEPLOYERS)
            if row.state == "deploying":
                raise Refused(f"plan {row.hash[:12]} is deploying; if that deploy died, run "
                              f"`wulin plan recover {row.signal_id}`")
            if row.state not in ("approved", "failed"):
                raise Refused(f"plan {row.hash[:12]} is {row.state}; only an approved plan can be deployed")
            stored = self._stored_plan(row)
            self._check_approval(row)
            if plan is not None and plan.plan_hash() != row.approved_hash:
                raise Refused(f"the plan to deploy hashes to {plan.plan_hash()[:12]}, the approval binds "
                              f"{(row.approved_hash or '')[:12]}: a plan changed after approval is not deployed")
            dev = self._device(s, row.signal_id)
            lease = self._acquire(s, row, "deploy", holder, actor, lease_s)
            self._transition(s, row, "deploying")
            self._append(s, actor, "deploy.start", row.hash, "ok",
                         {"role": user.role, "device": f"{dev.host}:{dev.port}", "lease_until": lease.expires_at})
            return Ticket(self._record(row, stored), dev, lease)

        return self._run(actor, "deploy", ref, go)

    def record_snapshot(self, ticket: Ticket, actor: Principal, summary: dict[str, Any]) -> None:
        """Keep, signed in the audit log, what the device held before anything is written:
        a recovery restores from it if this process dies."""
        def go(s: Session) -> None:
            held = s.get(LeaseRow, ticket.record.signal_id)
            if held is None or held.holder != ticket.lease.holder:
                raise Refused(f"signal {ticket.record.signal_id!r}: lease lost before the snapshot was kept")
            self._append(s, actor, "deploy.snapshot", ticket.record.hash, "ok", summary)

        self._run(actor, "deploy.snapshot", ticket.record.hash, go)

    def finish_deploy(self, ref: str, actor: Principal, outcome: str, detail: dict[str, Any], *,
                      holder: str) -> PlanRecord:
        """Record how a deploy ended (``deployed``, ``failed`` or ``rolled_back``); frees the lease."""
        def go(s: Session) -> PlanRecord:
            row = self._plan_row(s, ref)
            if row.state != "deploying":
                raise Refused(f"plan {row.hash[:12]} is {row.state}, not deploying")
            self._release(s, row, holder)
            extra = {"deployed_at": _now()} if outcome == "deployed" else {}
            self._transition(s, row, outcome, note=str(detail.get("message", "")), **extra)
            self._append(s, actor, "deploy.finish", row.hash, outcome, detail)
            return self._record(row)

        return self._run(actor, "deploy.finish", ref, go)

    def begin_rollback(self, ref: str, actor: Principal, *, holder: str, lease_s: float) -> Ticket:
        """Check that a deployed plan may be rolled back by ``actor`` (a supervisor); take the lease."""
        def go(s: Session) -> Ticket:
            row = self._plan_row(s, ref)
            self._user(s, actor, SUPERVISORS)
            if row.state != "deployed":
                raise Refused(f"plan {row.hash[:12]} is {row.state}; only a deployed plan can be rolled back")
            summary = self._signed_detail(s, row.hash, "deploy.finish", "deployed")
            if summary is None or "snapshot" not in summary:
                raise Refused(f"plan {row.hash[:12]}: no signed snapshot on record to roll back to")
            lease = self._acquire(s, row, "rollback", holder, actor, lease_s)
            self._append(s, actor, "rollback.start", row.hash, "ok", {"lease_until": lease.expires_at})
            return Ticket(self._record(row), self._device(s, row.signal_id), lease, summary)

        return self._run(actor, "rollback", ref, go)

    def finish_rollback(self, ref: str, actor: Principal, ok: bool, detail: dict[str, Any], *,
                        holder: str) -> PlanRecord:
        """Record how a rollback ended; frees the lease."""
        def go(s: Session) -> PlanRecord:
            row = self._plan_row(s, ref)
            self._release(s, row, holder)
            if ok:
                self._transition(s, row, "rolled_back")
            self._append(s, actor, "rollback", row.hash, "ok" if ok else "failed", detail)
            return self._record(row)

        return self._run(actor, "rollback", ref, go)

    def lease(self, signal_id: str) -> Lease | None:
        """The lease held on ``signal_id`` (None: no device action under way)."""
        with self._tx() as s:
            row = s.get(LeaseRow, signal_id)
            return _lease(row) if row else None

    def take_over(self, signal_id: str, actor: Principal, old: Lease, holder: str, lease_s: float,
                  why: str) -> Ticket:
        """Take a dead holder's lease for a recovery (refused if it changed since it was read).

        The ticket's summary is the signed pre-deploy snapshot (deploy) or the deployed
        record (rollback), when one was kept.
        """
        def go(s: Session) -> Ticket:
            self._user(s, actor, DEPLOYERS)
            row = self._plan_row(s, old.plan_hash)
            until = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=lease_s)).isoformat()
            moved = _changed(s, update(LeaseRow).where(LeaseRow.signal_id == signal_id, LeaseRow.holder == old.holder)
                              .values(holder=holder, actor=actor.name, expires_at=until))
            if moved != 1:
                raise Refused(f"signal {signal_id!r}: its lease changed hands meanwhile; look again")
            wanted = ("deploy.snapshot", "ok") if old.purpose == "deploy" else ("deploy.finish", "deployed")
            summary = self._signed_detail(s, row.hash, *wanted)
            self._append(s, actor, "recover.start", row.hash, "ok",
                         {"signal_id": signal_id, "purpose": old.purpose, "dead_holder": old.actor, "why": why,
                          "state": row.state, "snapshot_on_record": summary is not None})
            lease = Lease(signal_id, row.hash, old.purpose, holder, actor.name, old.acquired_at, until)
            return Ticket(self._record(row), self._device(s, signal_id), lease, summary)

        return self._run(actor, "recover", old.plan_hash, go)

    def log(self, actor: Actor, action: str, plan_hash: str, outcome: str, detail: dict[str, Any]) -> None:
        """Append a free audit entry (deploy steps, probes)."""
        self._run(actor, action, plan_hash, lambda s: self._append(s, actor, action, plan_hash, outcome, detail))

    # ------------------------------------------------------------------ audit
    def audit(self, plan_ref: str | None = None) -> list[AuditEntry]:
        """Audit entries, oldest first, optionally of the plans whose hash starts with ``plan_ref``."""
        with self._tx() as s:
            q = select(AuditRow).order_by(AuditRow.seq)
            if plan_ref:
                q = q.where(AuditRow.plan_hash.startswith(plan_ref.lower()))
            return [AuditEntry(r.seq, r.ts, r.actor, r.channel, r.action, r.plan_hash, r.outcome,
                               json.loads(r.detail), r.hash) for r in s.execute(q).scalars()]

    def verify_audit(self) -> AuditCheck:
        """Recompute the keyed chain and compare its end with the published head."""
        problems: list[str] = []
        prev, expect_seq, macs = GENESIS, 1, {}
        with self._tx() as s:
            for r in s.execute(select(AuditRow).order_by(AuditRow.seq)).scalars():
                if r.seq != expect_seq:
                    problems.append(f"entry {expect_seq}" + (f"-{r.seq - 1}" if r.seq - 1 > expect_seq else "")
                                    + " missing (deleted)")
                if r.prev_hash != prev:
                    problems.append(f"entry {r.seq}: does not follow the entry before it (chain broken)")
                if not self._trusted(r):
                    problems.append(f"entry {r.seq}: its MAC does not verify with the store key "
                                    "(altered, forged or re-chained)")
                prev, expect_seq, macs[r.seq] = r.hash, r.seq + 1, r.hash
        head, head_problems = self._heads.latest()
        problems += head_problems
        last = expect_seq - 1
        if head is None and last > 0:
            problems.append(f"no signed head in {self.head_file} for a log of {last} entries (the head file "
                            "was deleted or replaced): truncation of the newest entries cannot be ruled out")
        if head is not None and head.seq > last:
            problems.append(f"entries {last + 1}-{head.seq} missing: the published head names entry {head.seq}, "
                            f"the log ends at {last} (truncated)")
        elif head is not None and macs.get(head.seq) != head.entry_mac:
            problems.append(f"entry {head.seq} differs from the published head (rewritten)")
        return AuditCheck(not problems, problems, prev, last, head.seq if head else 0)


def _changed(s: Session, stmt: Any) -> int:
    """Run an UPDATE or DELETE; how many rows it changed."""
    return cast(CursorResult[Any], s.execute(stmt)).rowcount


def _lease(row: LeaseRow) -> Lease:
    return Lease(row.signal_id, row.plan_hash, row.purpose, row.holder, row.actor, row.acquired_at, row.expires_at)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # SQLAlchemy's "begin" event below opens transactions
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def _sqlite_begin_immediate(conn: Any) -> None:
    # Take SQLite's write lock at BEGIN: two transactions that read then write never deadlock
    # into "database is locked", they queue.
    conn.exec_driver_sql("BEGIN IMMEDIATE")
