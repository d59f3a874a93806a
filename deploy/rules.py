"""The approval rules as one pure function: facts in, a decision (and every reason) out.

:func:`decide_approval` holds every rule a plan must pass before a supervisor's approval is
recorded; :class:`deploy.store.PlanStore` gathers the facts from the database and the console
will gather them the same way, so both front ends share one set of rules.  No database, no
clock, no I/O: the tests feed it facts directly (including generated ones).

The rules:

1. **Two persons**: the approver is not the proposer (names compared in their normalised form).
2. **Role**: the approver is an active supervisor.
3. **State**: only a proposed plan is approved.
4. **Integrity**: the stored plan still hashes to its key.
5. **Every engineering check**: :func:`controllers.plan.validate_plan` *with the network's
   conflict matrix* (no two conflicting links green together); a plan without conflict data
   on record is refused (propose it with the network).
6. **Device**: a controller is registered for the signal and can hold the plan.
7. **Evidence**: a change larger than :data:`LARGE_CHANGE_S` against the live plan, a new stage
   structure or the first plan for a signal needs evidence on record.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from controllers.plan import DEFAULT_LIMITS, TimingPlan, change_size, validate_plan
from deploy.profile import Capabilities, DeviceProfile, check_capabilities

LARGE_CHANGE_S = 10.0  # seconds of cycle/offset/split change above which evidence is required
APPROVER_ROLE = "supervisor"


@dataclass(frozen=True)
class DeviceFacts:
    """The registered controller of the plan's signal."""

    profile: DeviceProfile
    capabilities: Capabilities


@dataclass(frozen=True)
class ApprovalFacts:
    """Everything the approval rules look at.

    Attributes:
        plan: The stored plan.
        plan_hash: The key it is stored under.
        actual_hash: The hash of the stored JSON now (differs when it was edited).
        state: The plan's state.
        proposer: Normalised name of who proposed it (the plan row).
        proposer_on_record: Who proposed it according to the signed audit entry (None: no
            such entry verifies).
        approver: Normalised name of who approves.
        approver_role: The approver's role in the store.
        approver_active: False when the approver's account is disabled.
        conflicts: The network's conflict matrix for the signal (None: none on record).
        conflicts_trusted: False when the recorded matrix differs from what the (signed)
            propose entry recorded.
        device: The signal's controller (None: none registered).
        live: The plan in force on the signal (None: none).
        has_evidence: Whether evidence is on record for the plan.
    """

    plan: TimingPlan
    plan_hash: str
    actual_hash: str
    state: str
    proposer: str
    proposer_on_record: str | None
    approver: str
    approver_role: str
    approver_active: bool
    conflicts: Sequence[Sequence[bool]] | None
    conflicts_trusted: bool
    device: DeviceFacts | None
    live: TimingPlan | None
    has_evidence: bool


@dataclass(frozen=True)
class ApprovalDecision:
    """The outcome: allowed when ``reasons`` is empty."""

    reasons: tuple[str, ...]
    tier: str  # "small" or "large"
    change_s: float | None  # None: no live plan or another stage structure

    @property
    def allowed(self) -> bool:
        """True when no rule refused."""
        return not self.reasons


def _who(f: ApprovalFacts) -> list[str]:
    out = []
    short = f.plan_hash[:12]
    if f.proposer_on_record != f.proposer:
        out.append(f"plan {short}: its proposer {f.proposer!r} is not the one the signed audit log names "
                   f"({f.proposer_on_record or 'none'}); the plan record was changed outside the store")
    if f.approver in (f.proposer, f.proposer_on_record):
        out.append(f"{f.approver!r} proposed plan {short} and cannot approve it: a second person must")
    if f.approver_role != APPROVER_ROLE:
        out.append(f"user {f.approver!r} has role {f.approver_role!r}; this needs a {APPROVER_ROLE}")
    if not f.approver_active:
        out.append(f"user {f.approver!r} is disabled")
    if f.state != "proposed":
        out.append(f"plan {short} is {f.state}; only a proposed plan can be approved")
    return out


def _engineering(f: ApprovalFacts) -> list[str]:
    short = f.plan_hash[:12]
    if f.actual_hash != f.plan_hash:
        return [f"plan {short}: the stored plan no longer matches its hash (now {f.actual_hash[:12]}); "
                "it was changed after it was stored and cannot be approved or deployed"]
    out = []
    if f.conflicts is None:
        out.append(f"plan {short}: no conflict data for signal {f.plan.signal_id!r} on record; "
                   "propose it with the network (`wulin plan propose --net NET.net.xml`)")
    elif not f.conflicts_trusted:
        out.append(f"plan {short}: its conflict data differs from what was recorded when it was proposed")
    limits = f.device.profile.plan_limits() if f.device is not None else DEFAULT_LIMITS
    problems = validate_plan(f.plan, f.conflicts if f.conflicts_trusted else None, limits)
    if problems:
        out.append(f"plan {short} is not valid: " + "; ".join(problems))
    if f.device is None:
        out.append(f"unknown device: no controller is registered for signal {f.plan.signal_id!r}; "
                   "register it (`wulin emulator start` registers its emulated ones)")
    else:
        cap = check_capabilities(f.plan, f.device.profile, f.device.capabilities)
        if cap:
            out.append(f"device {f.plan.signal_id!r} cannot run plan {short}: " + "; ".join(cap))
    return out


def change_tier(plan: TimingPlan, live: TimingPlan | None) -> tuple[str, float | None]:
    """``("small" | "large", change in seconds or None)`` of ``plan`` against the live plan."""
    size = change_size(live, plan) if live is not None else math.inf
    return ("large" if size > LARGE_CHANGE_S else "small"), (None if math.isinf(size) else size)


def decide_approval(f: ApprovalFacts) -> ApprovalDecision:
    """Every reason the approval described by ``f`` is refused (none: it is allowed)."""
    reasons = _who(f) + _engineering(f)
    tier, size = change_tier(f.plan, f.live)
    if tier == "large" and not f.has_evidence:
        what = (f"a {size:g} s change" if size is not None else
                "a new stage structure" if f.live is not None else "the first plan for this signal")
        reasons.append(f"plan {f.plan_hash[:12]} is {what}: attach evidence (`wulin plan propose --evidence`) "
                       "before it can be approved")
    return ApprovalDecision(tuple(reasons), tier, size)
