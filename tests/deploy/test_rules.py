"""The approval rules as a pure function: no database (issue 18 item 7; issue 11 item 8)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controllers.plan import PlanStage, TimingPlan
from deploy.rules import LARGE_CHANGE_S, ApprovalFacts, DeviceFacts, change_tier, decide_approval

from .conftest import CAPS, conflicts_for, make_plan, make_profile


def _facts(plan: TimingPlan | None = None, **kw: object) -> ApprovalFacts:
    plan = plan or make_plan()
    base = ApprovalFacts(
        plan=plan, plan_hash=plan.plan_hash(), actual_hash=plan.plan_hash(), state="proposed", proposer="ann",
        proposer_on_record="ann",
        approver="bob", approver_role="supervisor", approver_active=True, conflicts=conflicts_for("B1"),
        conflicts_trusted=True, device=DeviceFacts(make_profile(), CAPS), live=None, has_evidence=True)
    return replace(base, **kw)  # type: ignore[arg-type]


def _conflicting() -> TimingPlan:
    ok = make_plan()
    first = PlanStage("ns+x", "GGGgGrrrGGGgrrrr", 40, min_green=10, walk=7, ped_clearance=3)
    return TimingPlan(**{**ok.__dict__, "stages": (first, ok.stages[1])})  # type: ignore[arg-type]


def test_a_clean_approval_is_allowed() -> None:
    d = decide_approval(_facts())
    assert d.allowed and d.reasons == () and d.tier == "large" and d.change_s is None


def test_conflicting_plan_is_refused_although_valid_without_the_network() -> None:
    d = decide_approval(_facts(_conflicting()))
    assert not d.allowed
    assert any("conflicting links have protected green together" in r for r in d.reasons)
    # The same plan without conflict data is refused too, for that reason.
    d = decide_approval(_facts(_conflicting(), conflicts=None))
    assert any("no conflict data" in r for r in d.reasons)


@pytest.mark.parametrize(("change", "needle"), [
    ({"approver": "ann"}, "a second person must"),
    ({"proposer": "dan"}, "not the one the signed audit log names"),
    ({"proposer_on_record": None}, "not the one the signed audit log names"),
    ({"approver_role": "engineer"}, "this needs a supervisor"),
    ({"approver_role": "admin"}, "this needs a supervisor"),
    ({"approver_active": False}, "is disabled"),
    ({"state": "approved"}, "only a proposed plan can be approved"),
    ({"actual_hash": "f" * 64}, "no longer matches its hash"),
    ({"conflicts_trusted": False}, "differs from what was recorded"),
    ({"device": None}, "unknown device"),
    ({"has_evidence": False}, "the first plan for this signal: attach evidence"),
])
def test_each_rule_refuses_on_its_own(change: dict[str, object], needle: str) -> None:
    d = decide_approval(_facts(**change))
    assert not d.allowed and any(needle in r for r in d.reasons), d.reasons


def test_every_reason_is_reported_not_just_the_first() -> None:
    d = decide_approval(_facts(_conflicting(), approver="ann", approver_role="engineer", device=None,
                               has_evidence=False))
    assert len(d.reasons) == 5


def test_change_tiers() -> None:
    live = make_plan()
    assert change_tier(make_plan(greens=(44, 36)), live) == ("small", 4)
    assert change_tier(make_plan(greens=(60, 20)), live) == ("large", 20)
    assert change_tier(make_plan(), None) == ("large", None)
    d = decide_approval(_facts(make_plan(greens=(44, 36)), live=live, has_evidence=False))
    assert d.allowed and d.tier == "small"


greens = st.tuples(st.integers(10, 70), st.integers(10, 70))


@settings(max_examples=60, deadline=None)
@given(g=greens, live=st.none() | greens, proposer=st.sampled_from(["ann", "bob"]),
       approver=st.sampled_from(["ann", "bob", "cat"]),
       role=st.sampled_from(["viewer", "engineer", "supervisor", "admin"]), evidence=st.booleans(),
       conflicting=st.booleans())
def test_properties(g: tuple[int, int], live: tuple[int, int] | None, proposer: str, approver: str, role: str,
                    evidence: bool, conflicting: bool) -> None:
    plan = make_plan(greens=g)
    if conflicting:
        plan = TimingPlan(**{**plan.__dict__, "stages": (replace(plan.stages[0], state="GGGgGrrrGGGgrrrr"),
                                                          plan.stages[1])})  # type: ignore[arg-type]
    f = _facts(plan, proposer=proposer, proposer_on_record=proposer, approver=approver, approver_role=role,
               has_evidence=evidence, live=make_plan(greens=live) if live else None)
    d = decide_approval(f)
    assert d.allowed == (not d.reasons)
    if approver == proposer or role != "supervisor" or conflicting:
        assert not d.allowed
    if d.allowed:
        assert evidence or (d.change_s is not None and d.change_s <= LARGE_CHANGE_S)
    assert decide_approval(f) == d  # pure: the same facts, the same decision
