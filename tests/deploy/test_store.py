"""Plan store: every transition, every refusal, and a tamper-evident audit log."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from controllers.plan import PlanStage, TimingPlan
from deploy.store import TRANSITIONS, PlanStore, Refused
from sim.errors import WulinError

from .conftest import make_plan

EVIDENCE = {"kind": "experiment", "scenario": "grid-am-v1", "seeds": [1, 2, 3],
            "mean_travel_time_s": {"live": 180.0, "proposed": 171.0}}


def _approved(store: PlanStore, plan: TimingPlan | None = None) -> str:
    plan = plan or make_plan()
    rec = store.propose(plan, "ann", evidence=EVIDENCE)
    store.approve(rec.hash, "bob")
    return rec.hash


def test_happy_path_transitions_and_audit(store: PlanStore) -> None:
    plan = make_plan()
    rec = store.propose(plan, "ann", evidence=EVIDENCE)
    assert rec.state == "proposed" and rec.hash == plan.plan_hash() and rec.plan == plan
    assert store.evidence(rec.hash[:8])[0]["scenario"] == "grid-am-v1"
    rec = store.approve(rec.hash[:10], "bob")
    assert (rec.state, rec.approved_by) == ("approved", "bob")
    rec, dev = store.begin_deploy(rec.hash, "ann", plan)
    assert rec.state == "deploying" and dev.port == 16161
    rec = store.finish_deploy(rec.hash, "ann", "deployed", {"message": "readback ok"})
    assert rec.state == "deployed" and rec.deployed_at
    assert store.live_plan("B1").hash == plan.plan_hash()  # type: ignore[union-attr]
    store.begin_rollback(rec.hash, "cat")
    rec = store.finish_rollback(rec.hash, "cat", True, {"message": "restored"})
    assert rec.state == "rolled_back" and store.live_plan("B1") is None
    actions = [(e.actor, e.action, e.outcome) for e in store.audit(plan.plan_hash())]
    assert actions == [("ann", "propose", "ok"), ("ann", "evidence", "ok"), ("bob", "approve", "ok"),
                       ("ann", "deploy.start", "ok"), ("ann", "deploy.finish", "deployed"),
                       ("cat", "rollback", "ok")]
    ok, problems, head = store.verify_audit()
    assert ok and problems == [] and len(head) == 64


def test_reject_failed_retry_and_terminal_states(store: PlanStore) -> None:
    a = store.propose(make_plan(greens=(41, 39)), "ann", evidence=EVIDENCE)
    assert store.reject(a.hash, "bob", "offset not coordinated").state == "rejected"
    with pytest.raises(Refused, match="is rejected; it cannot become approved|only a proposed plan"):
        store.approve(a.hash, "cat")
    revoked = _approved(store, make_plan(greens=(42, 38)))
    assert store.reject(revoked, "cat", "demand changed").state == "rejected"  # approved -> rejected
    h = _approved(store)
    store.begin_deploy(h, "ann")
    assert store.finish_deploy(h, "ann", "failed", {"message": "device busy"}).state == "failed"
    store.begin_deploy(h, "ann")  # a retry keeps the approval
    assert store.finish_deploy(h, "ann", "rolled_back", {"message": "readback mismatch"}).state == "rolled_back"
    with pytest.raises(Refused, match="only an approved plan can be deployed"):
        store.begin_deploy(h, "ann")
    assert TRANSITIONS["rolled_back"] == () and TRANSITIONS["rejected"] == ()


def test_refusals_are_refused_and_audited(store: PlanStore) -> None:
    plan = make_plan()
    rec = store.propose(plan, "ann")
    with pytest.raises(Refused, match="cannot approve it: a second person must"):
        store.approve(rec.hash, "ann")
    with pytest.raises(Refused, match="unknown user 'zed'"):
        store.approve(rec.hash, "zed")
    with pytest.raises(Refused, match="the first plan for this signal: attach evidence"):
        store.approve(rec.hash, "bob")
    with pytest.raises(Refused, match="only an approved plan can be deployed"):
        store.begin_deploy(rec.hash, "ann", plan)
    with pytest.raises(Refused, match="already in the store"):
        store.propose(plan, "ann")
    with pytest.raises(Refused, match="needs a supervisor"):
        store.reject(rec.hash, "ann", "no")
    with pytest.raises(Refused, match="no plan with hash"):
        store.approve("abcdef", "bob")
    # A supervisor may propose, and then may not approve their own plan either.
    own = store.propose(make_plan(greens=(45, 35)), "bob", evidence=EVIDENCE)
    with pytest.raises(Refused, match="a second person must"):
        store.approve(own.hash, "bob")
    refused = [e for e in store.audit() if e.outcome == "refused"]
    assert len(refused) == 8 and all(e.detail["reason"] for e in refused)
    assert store.verify_audit()[0]


def test_invalid_plan_cannot_be_approved(store: PlanStore) -> None:
    bad = make_plan().with_offset(0)
    bad = TimingPlan(**{**bad.__dict__, "yellow": 2})  # type: ignore[arg-type]
    rec = store.propose(bad, "ann", evidence=EVIDENCE)
    assert store.audit(rec.hash)[0].detail["violations"]
    with pytest.raises(Refused, match="is not valid: .*yellow 2 s is below"):
        store.approve(rec.hash, "bob")
    assert store.get(rec.hash).state == "proposed"


def test_device_capabilities_and_unknown_device(store: PlanStore) -> None:
    three = make_plan(greens=(30, 30))
    three = TimingPlan(**{**three.__dict__, "stages": three.stages + (PlanStage("x", "GGGGrrrrrrrrrrrr", 20),),
                          "cycle": three.cycle + 25})  # type: ignore[arg-type]
    rec = store.propose(three, "ann", evidence=EVIDENCE)
    with pytest.raises(Refused, match="cannot run plan .*3 stages, the device profile maps 2"):
        store.approve(rec.hash, "bob")
    frac = make_plan(greens=(40.5, 39.5))
    rec = store.propose(frac, "ann", evidence=EVIDENCE)
    with pytest.raises(Refused, match="not a whole number of seconds"):
        store.approve(rec.hash, "bob")
    other = store.propose(make_plan(signal_id="C2"), "ann", evidence=EVIDENCE)
    with pytest.raises(Refused, match="unknown device: no controller is registered for signal 'C2'"):
        store.approve(other.hash, "bob")


def test_plan_changed_after_approval_is_not_deployed(store: PlanStore, tmp_path: Path) -> None:
    h = _approved(store)
    other = _approved(store, make_plan(greens=(42, 38)))
    store.begin_deploy(other, "ann")
    with pytest.raises(Refused, match="is being deployed to 'B1'; one deploy at a time"):
        store.begin_deploy(h, "ann")
    store.finish_deploy(other, "ann", "failed", {"message": "test"})
    changed = make_plan(greens=(41, 39))
    with pytest.raises(Refused, match="a plan changed after approval is not deployed"):
        store.begin_deploy(h, "ann", changed)
    # Editing the stored JSON behind the store's back is caught too.
    with store.engine.begin() as c:
        c.execute(text("UPDATE plans SET plan_json = replace(plan_json, :a, :b) WHERE hash = :h"),
                  {"a": '"green":40', "b": '"green":45', "h": h})
    with pytest.raises(Refused, match="no longer matches its hash"):
        store.begin_deploy(h, "ann")


def test_small_change_needs_no_evidence_large_one_does(store: PlanStore) -> None:
    h = _approved(store)
    store.begin_deploy(h, "ann")
    store.finish_deploy(h, "ann", "deployed", {})
    small = store.propose(make_plan(greens=(44, 36)), "ann")
    assert store.approve(small.hash, "bob").state == "approved"
    assert store.audit(small.hash)[-1].detail == {"change_s": 4, "tier": "small"}
    large = store.propose(make_plan(greens=(60, 20)), "ann")
    with pytest.raises(Refused, match="is a 20 s change: attach evidence"):
        store.approve(large.hash, "bob")
    store.add_evidence(large.hash, EVIDENCE, "ann")
    assert store.approve(large.hash, "cat").state == "approved"


def test_audit_is_append_only_and_tampering_is_detected(store: PlanStore) -> None:
    _approved(store)
    assert store.verify_audit()[0]
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
    ok, problems, _ = store.verify_audit()
    assert not ok and problems == ["entry 5: content does not match its hash (altered)"]


def test_deleted_and_rewritten_audit_rows_are_detected(tmp_path: Path) -> None:
    store = PlanStore(tmp_path / "s.sqlite")
    store.add_user("ann", "engineer")
    store.add_user("bob", "supervisor")
    store.propose(make_plan(), "ann")
    store.close()
    con = sqlite3.connect(tmp_path / "s.sqlite")
    con.execute("DROP TRIGGER audit_no_delete")
    con.execute("DELETE FROM audit WHERE seq = 2")
    con.commit()
    con.close()
    ok, problems, _ = PlanStore(tmp_path / "s.sqlite").verify_audit()
    assert not ok and "entry 2 missing (deleted)" in problems
    assert "entry 3: does not follow the entry before it (chain broken)" in problems


def test_user_and_store_errors(tmp_path: Path) -> None:
    store = PlanStore(tmp_path / "s.sqlite")
    with pytest.raises(WulinError, match="role 'boss' is not one of engineer, supervisor"):
        store.add_user("x", "boss")
    store.add_user("x", "engineer")
    with pytest.raises(Refused, match="exists already"):
        store.add_user("x", "engineer")
    assert store.users() == {"x": "engineer"}
    with pytest.raises(WulinError, match="cannot open it|driver"):
        PlanStore("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
