"""Plan sets: the plans proposed by one upload, reviewed together.

The store knows single plans only, and its rules (two persons, roles, states, signatures) stay
per plan.  What makes plans one set is a ``plan.set`` entry in the audit log, written by the
console right after proposing them: its id, the full hashes, the signals and the file names,
under the proposer's name and channel.  The audit log is append-only and chained, so a set's
members cannot be changed afterwards; approving a set approves each member through the store.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from deploy.identity import Principal
from deploy.store import AuditEntry, PlanRecord, PlanStore

ACTION = "plan.set"
SET_ID = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class PlanSet:
    """One upload's plans.

    Attributes:
        id: 16 hex digits.
        proposed_by: Who uploaded them.
        proposed_at: When (ISO, UTC).
        hashes: The members' full plan hashes, by signal.
        files: The uploaded files' names.
    """

    id: str
    proposed_by: str
    proposed_at: str
    hashes: tuple[str, ...]
    files: tuple[str, ...]


def record(store: PlanStore, actor: Principal, plans: list[PlanRecord], files: list[str]) -> str:
    """Write the set of ``plans`` to the audit log; returns its id."""
    set_id = secrets.token_hex(8)
    members = sorted(plans, key=lambda r: r.signal_id)
    store.log(actor, ACTION, "", "ok", {"set": set_id, "plans": [r.hash for r in members],
                                        "signals": [r.signal_id for r in members], "files": files})
    return set_id


def _from_entry(e: AuditEntry) -> PlanSet | None:
    d = e.detail
    if e.action != ACTION or e.outcome != "ok" or not SET_ID.fullmatch(str(d.get("set", ""))):
        return None
    return PlanSet(d["set"], e.actor, e.ts, tuple(str(h) for h in d.get("plans", [])),
                   tuple(str(f) for f in d.get("files", [])))


def all_sets(store: PlanStore) -> list[PlanSet]:
    """Every plan set, newest first."""
    return [s for e in reversed(store.audit()) if (s := _from_entry(e)) is not None]


def find(store: PlanStore, set_id: str) -> PlanSet | None:
    """The set ``set_id`` (None: no such set, or not a set id)."""
    if not SET_ID.fullmatch(set_id):
        return None
    return next((s for s in all_sets(store) if s.id == set_id), None)


def sets_of(store: PlanStore, plan_hash: str) -> list[PlanSet]:
    """The sets ``plan_hash`` was proposed in."""
    return [s for s in all_sets(store) if plan_hash in s.hashes]
