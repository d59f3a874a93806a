"""Plan store: every transition, every refusal, and a tamper-evident audit log."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from controllers.plan import PlanStage, TimingPlan
from deploy.store import TRANSITIONS, PlanRecord, PlanStore, Refused, Ticket
from sim.errors import WulinError

from .conftest import ANN, BOB, CAT, ROOT, add_users, make_plan, propose

EVIDENCE = {"kind": "experiment", "scenario": "grid-am-v1", "seeds": [1, 2, 3],
            "mean_travel_time_s": {"live": 180.0, "proposed": 171.0}}


def _approved(store: PlanStore, plan: TimingPlan | None = None) -> str:
    plan = plan or make_plan()
    rec = propose(store, plan, evidence=EVIDENCE)
    store.approve(rec.hash, BOB)
    return rec.hash


def _begin(store: PlanStore, ref: str, plan: TimingPlan | None = None, holder: str = "test") -> Ticket:
    return store.begin_deploy(ref, ANN, plan, holder=holder, lease_s=60)


def _finish(store: PlanStore, ref: str, outcome: str, detail: dict[str, Any] | None = None) -> PlanRecord:
    return store.finish_deploy(ref, ANN, outcome, detail or {"message": outcome, "snapshot": {}}, holder="test")


def test_happy_path_transitions_and_audit(store: PlanStore) -> None:
    plan = make_plan()
    rec = propose(store, plan, evidence=EVIDENCE)
    assert rec.state == "proposed" and rec.hash == plan.plan_hash() and rec.plan == plan
    assert store.evidence(rec.hash[:8])[0]["scenario"] == "grid-am-v1"
    rec = store.approve(rec.hash[:10], BOB)
    assert (rec.state, rec.approved_by) == ("approved", "bob")
    ticket = _begin(store, rec.hash, plan)
    assert ticket.record.state == "deploying" and ticket.device.port == 16161
    assert store.lease("B1").holder == "test"  # type: ignore[union-attr]
    rec = _finish(store, rec.hash, "deployed", {"message": "readback ok", "snapshot": {}})
    assert rec.state == "deployed" and rec.deployed_at and store.lease("B1") is None
    assert store.live_plan("B1").hash == plan.plan_hash()  # type: ignore[union-attr]
    back = store.begin_rollback(rec.hash, CAT, holder="rb", lease_s=60)
    assert back.summary == {"message": "readback ok", "snapshot": {}}
    rec = store.finish_rollback(rec.hash, CAT, True, {"message": "restored"}, holder="rb")
    assert rec.state == "rolled_back" and store.live_plan("B1") is None
    actions = [(e.actor, e.action, e.outcome) for e in store.audit(plan.plan_hash())]
    assert actions == [("ann", "propose", "ok"), ("ann", "evidence", "ok"), ("bob", "approve", "ok"),
                       ("ann", "deploy.start", "ok"), ("ann", "deploy.finish", "deployed"),
                       ("cat", "rollback.start", "ok"), ("cat", "rollback", "ok")]
    assert {e.channel for e in store.audit(plan.plan_hash())} == {"test"}
    check = store.verify_audit()
    assert check.ok and check.problems == [] and len(check.head) == 64 and check.published == check.entries


def test_reject_failed_retry_and_terminal_states(store: PlanStore) -> None:
    a = propose(store, make_plan(greens=(41, 39)), evidence=EVIDENCE)
    assert store.reject(a.hash, BOB, "offset not coordinated").state == "rejected"
    with pytest.raises(Refused, match="only a proposed plan can be approved"):
        store.approve(a.hash, CAT)
    revoked = _approved(store, make_plan(greens=(42, 38)))
    assert store.reject(revoked, CAT, "demand changed").state == "rejected"  # approved -> rejected
    h = _approved(store)
    _begin(store, h)
    assert _finish(store, h, "failed").state == "failed"
    _begin(store, h)  # a retry keeps the approval
    assert _finish(store, h, "rolled_back").state == "rolled_back"
    with pytest.raises(Refused, match="only an approved plan can be deployed"):
        _begin(store, h)
    assert TRANSITIONS["rolled_back"] == () and TRANSITIONS["rejected"] == ()


def test_refusals_are_refused_and_audited(store: PlanStore) -> None:
    from deploy.identity import Principal

    plan = make_plan()
    rec = propose(store, plan)
    with pytest.raises(Refused, match="cannot approve it: a second person must"):
        store.approve(rec.hash, ANN)
    with pytest.raises(Refused, match="unknown user 'zed'"):
        store.approve(rec.hash, Principal("zed", "supervisor"))
    with pytest.raises(Refused, match="the first plan for this signal: attach evidence"):
        store.approve(rec.hash, BOB)
    with pytest.raises(Refused, match="only an approved plan can be deployed"):
        _begin(store, rec.hash, plan)
    with pytest.raises(Refused, match="already in the store"):
        propose(store, plan)
    with pytest.raises(Refused, match="needs a supervisor"):
        store.reject(rec.hash, ANN, "no")
    with pytest.raises(Refused, match="no plan with hash"):
        store.approve("abcdef", BOB)
    # A supervisor may propose, and then may not approve their own plan either.
    own = propose(store, make_plan(greens=(45, 35)), BOB, evidence=EVIDENCE)
    with pytest.raises(Refused, match="a second person must"):
        store.approve(own.hash, BOB)
    refused = [e for e in store.audit() if e.outcome == "refused"]
    assert len(refused) == 8 and all(e.detail["reason"] for e in refused)
    assert store.verify_audit().ok


def test_invalid_plan_cannot_be_approved(store: PlanStore) -> None:
    bad = make_plan().with_offset(0)
    bad = TimingPlan(**{**bad.__dict__, "yellow": 2})  # type: ignore[arg-type]
    rec = propose(store, bad, evidence=EVIDENCE)
    assert store.audit(rec.hash)[0].detail["violations"]
    with pytest.raises(Refused, match="is not valid: .*yellow 2 s is below"):
        store.approve(rec.hash, BOB)
    assert store.get(rec.hash).state == "proposed"


def test_device_capabilities_and_unknown_device(store: PlanStore) -> None:
    three = make_plan(greens=(30, 30))
    three = TimingPlan(**{**three.__dict__, "stages": three.stages + (PlanStage("x", "GGGGrrrrrrrrrrrr", 20),),
                          "cycle": three.cycle + 25})  # type: ignore[arg-type]
    rec = store.propose(three, ANN, evidence=EVIDENCE, conflicts=None)
    with pytest.raises(Refused, match="cannot run plan .*3 stages, the device profile maps 2"):
        store.approve(rec.hash, BOB)
    frac = make_plan(greens=(40.5, 39.5))
    rec = propose(store, frac, evidence=EVIDENCE)
    with pytest.raises(Refused, match="not a whole number of seconds"):
        store.approve(rec.hash, BOB)
    other = propose(store, make_plan(signal_id="C2"), evidence=EVIDENCE)
    with pytest.raises(Refused, match="unknown device: no controller is registered for signal 'C2'"):
        store.approve(other.hash, BOB)


def test_plan_changed_after_approval_is_not_deployed(store: PlanStore) -> None:
    h = _approved(store)
    other = _approved(store, make_plan(greens=(42, 38)))
    _begin(store, other)
    with pytest.raises(Refused, match="signal 'B1' is held by a deploy of plan .*one device action at a time"):
        _begin(store, h, holder="someone else")
    _finish(store, other, "failed")
    changed = make_plan(greens=(41, 39))
    with pytest.raises(Refused, match="a plan changed after approval is not deployed"):
        _begin(store, h, changed)
    # Editing the stored JSON behind the store's back is caught too.
    with store.engine.begin() as c:
        c.execute(text("UPDATE plans SET plan_json = replace(plan_json, :a, :b) WHERE hash = :h"),
                  {"a": '"green":40', "b": '"green":45', "h": h})
    with pytest.raises(Refused, match="no longer matches its hash"):
        _begin(store, h)


def test_small_change_needs_no_evidence_large_one_does(store: PlanStore) -> None:
    h = _approved(store)
    _begin(store, h)
    _finish(store, h, "deployed")
    small = propose(store, make_plan(greens=(44, 36)))
    assert store.approve(small.hash, BOB).state == "approved"
    assert store.audit(small.hash)[-1].detail == {"change_s": 4, "tier": "small"}
    large = propose(store, make_plan(greens=(60, 20)))
    with pytest.raises(Refused, match="is a 20 s change: attach evidence"):
        store.approve(large.hash, BOB)
    store.add_evidence(large.hash, EVIDENCE, ANN)
    assert store.approve(large.hash, CAT).state == "approved"


def test_audit_is_append_only_and_tampering_is_detected(store: PlanStore) -> None:
    _approved(store)
    assert store.verify_audit().ok
    with pytest.raises(Exception, match="append-only"), store.engine.begin() as c:
        c.execute(text("UPDATE audit SET actor = 'mallory' WHERE seq = 5"))
    with pytest.raises(Exception, match="append-only"), store.engine.begin() as c:
        c.execute(text("DELETE FROM audit WHERE seq = 5"))
    # Someone with full database rights drops the guard and edits a row: the chain shows it.
    drop = ("DROP TRIGGER audit_no_update" if store.engine.dialect.name == "sqlite"
            else "DROP TRIGGER audit_append_only ON audit")
    with store.engine.begin() as c:
        c.execute(text(drop))
        c.execute(text("UPDATE audit SET actor = 'mallory' WHERE seq = 5"))
    check = store.verify_audit()
    assert not check.ok and check.problems == [
        "entry 5: its MAC does not verify with the store key (altered, forged or re-chained)"]


def test_deleted_audit_rows_are_detected(tmp_path: Path) -> None:
    store = PlanStore(tmp_path / "s.sqlite")
    add_users(store)
    propose(store, make_plan())
    store.close()
    con = sqlite3.connect(tmp_path / "s.sqlite")
    con.execute("DROP TRIGGER audit_no_delete")
    con.execute("DELETE FROM audit WHERE seq = 2")
    con.commit()
    con.close()
    check = PlanStore(tmp_path / "s.sqlite").verify_audit()
    assert not check.ok and "entry 2 missing (deleted)" in check.problems
    assert "entry 3: does not follow the entry before it (chain broken)" in check.problems


def test_user_and_store_errors(tmp_path: Path) -> None:
    store = PlanStore(tmp_path / "s.sqlite")
    store.init_admin("root", "root-password")
    with pytest.raises(WulinError, match="role 'boss' is not one of viewer, engineer, supervisor, admin"):
        store.add_user(ROOT, "x", "boss", "x-password")
    with pytest.raises(WulinError, match="at least 8 characters"):
        store.add_user(ROOT, "x", "engineer", "short")
    store.add_user(ROOT, "x", "engineer", "x-password")
    with pytest.raises(Refused, match="exists already"):
        store.add_user(ROOT, "X ", "engineer", "x-password")
    assert [(u.name, u.role) for u in store.users()] == [("root", "admin"), ("x", "engineer")]
    with pytest.raises(Refused, match="the store already has users"):
        store.init_admin("eve", "eve-password")
    with pytest.raises(WulinError, match="cannot open it|driver"):
        PlanStore("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_conflicting_plan_is_refused_approval(store: PlanStore) -> None:
    ok = make_plan()
    first = PlanStage("ns+x", "GGGgGrrrGGGgrrrr", 40, min_green=10, walk=7, ped_clearance=3)
    bad = TimingPlan(**{**ok.__dict__, "stages": (first, ok.stages[1])})  # type: ignore[arg-type]
    rec = propose(store, bad, evidence=EVIDENCE)
    assert any("conflicting links" in v for v in store.audit(rec.hash)[0].detail["violations"])
    with pytest.raises(Refused, match="conflicting links have protected green together"):
        store.approve(rec.hash, BOB)
    unknown = store.propose(make_plan(greens=(43, 37)), ANN, evidence=EVIDENCE)  # no conflict data
    with pytest.raises(Refused, match="no conflict data for signal 'B1' on record"):
        store.approve(unknown.hash, BOB)
