"""Tamper evidence that does not depend on the database (issue 11 items 1 and 6).

The attacker here can write the database (SQLite file or PostgreSQL account) but cannot read
the store key, which lives outside it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controllers.plan import PlanStage, TimingPlan, canonical_json, sha256_hex
from deploy.store import PlanStore, Refused
from sim.errors import WulinError
from wulin.cli import app

from .conftest import ANN, BOB, CAPS, add_users, conflicts_for, make_plan, make_profile, propose

EVIDENCE = {"kind": "experiment", "mean_travel_time_s": {"live": 180.0, "proposed": 171.0}}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "s.sqlite"
    s = PlanStore(path)
    add_users(s)
    s.register_device("B1", "127.0.0.1", 16161, make_profile(), CAPS)
    s.close()
    return path


def _sql(path: Path, *stmts: str, args: tuple[object, ...] = ()) -> None:
    con = sqlite3.connect(path)
    for q in stmts:
        con.execute(q, args if "?" in q else ())
    con.commit()
    con.close()


def _deploy(store: PlanStore, h: str) -> None:
    store.begin_deploy(h, ANN, holder="t", lease_s=60)


def test_state_set_to_approved_in_the_database_is_not_deployed(db: Path) -> None:
    h = propose(PlanStore(db), make_plan()).hash
    _sql(db, "UPDATE plans SET state='approved', approved_by='bob', approver_role='supervisor', "
             "approved_at='2026-01-01T00:00:00+00:00', approved_hash=hash")
    with pytest.raises(Refused, match="approval signature does not verify"):
        _deploy(PlanStore(db), h)
    assert PlanStore(db).get(h).state == "approved"  # nothing moved


def test_rewritten_approver_or_proposer_is_not_deployed(db: Path) -> None:
    store = PlanStore(db)
    h = propose(store, make_plan(), evidence=EVIDENCE).hash
    store.approve(h, BOB)
    for edit in ("UPDATE plans SET approved_by='cat'", "UPDATE plans SET proposed_by='dan'",
                 "UPDATE plans SET approved_at='2030-01-01T00:00:00+00:00'"):
        snapshot = sqlite3.connect(db).execute("SELECT approved_by, proposed_by, approved_at FROM plans").fetchone()
        _sql(db, edit)
        with pytest.raises(Refused, match="approval signature does not verify"):
            _deploy(PlanStore(db), h)
        _sql(db, "UPDATE plans SET approved_by=?, proposed_by=?, approved_at=?", args=snapshot)
    _deploy(PlanStore(db), h)  # restored: the signature verifies again


def test_plan_json_rewritten_with_its_hash_is_not_deployed(db: Path) -> None:
    store = PlanStore(db)
    h = propose(store, make_plan(), evidence=EVIDENCE).hash
    store.approve(h, BOB)
    evil = make_plan(greens=(70, 10))
    _sql(db, "UPDATE plans SET plan_json=?, hash=?, approved_hash=? WHERE hash=?",
         args=(evil.to_json(), evil.plan_hash(), evil.plan_hash(), h))
    with pytest.raises(Refused, match="approval signature does not verify"):
        _deploy(PlanStore(db), evil.plan_hash())


def test_conflict_data_swapped_before_approval_is_refused(db: Path) -> None:
    store = PlanStore(db)
    bad = _conflicting_plan()
    h = propose(store, bad, evidence=EVIDENCE).hash
    n = len(conflicts_for("B1"))
    _sql(db, "UPDATE plans SET conflicts_json=?", args=(canonical_json([[False] * n] * n),))
    with pytest.raises(Refused, match="conflict data differs from what was recorded"):
        store.approve(h, BOB)


def _conflicting_plan() -> TimingPlan:
    """Link 4 (a crossing movement) green together with the north-south greens."""
    ok = make_plan()
    first = PlanStage("ns+x", "GGGgGrrrGGGgrrrr", 40, min_green=10, walk=7, ped_clearance=3)
    return TimingPlan(**{**ok.__dict__, "stages": (first, ok.stages[1])})  # type: ignore[arg-type]


def _rows(db: Path) -> list[list[object]]:
    con = sqlite3.connect(db)
    rows = con.execute("SELECT seq, ts, actor, channel, action, plan_hash, outcome, detail FROM audit "
                       "ORDER BY seq").fetchall()
    con.close()
    return [list(r) for r in rows]


def _rechain(db: Path, rows: list[list[object]]) -> None:
    """What an attacker without the key can do: renumber and recompute the hashes unkeyed."""
    prev = "0" * 64
    _sql(db, "DROP TRIGGER audit_no_delete", "DELETE FROM audit")
    con = sqlite3.connect(db)
    for seq, row in enumerate(rows, 1):
        row = [seq, *row[1:]]
        h = sha256_hex(canonical_json([*row, prev]))
        con.execute("INSERT INTO audit VALUES (?,?,?,?,?,?,?,?,?,?)", (*row, prev, h))
        prev = h
    con.commit()
    con.close()


def test_deleting_refused_entries_and_rechaining_is_detected(db: Path) -> None:
    store = PlanStore(db)
    rec = propose(store, make_plan())
    with pytest.raises(Refused):
        store.approve(rec.hash, ANN)  # a refused self-approval: the entry someone wants gone
    assert store.verify_audit().ok
    kept = [r for r in _rows(db) if r[6] != "refused"]
    _rechain(db, kept)
    check = PlanStore(db).verify_audit()
    assert not check.ok
    assert any("MAC does not verify" in p for p in check.problems)
    assert any("truncated" in p for p in check.problems)  # the published head is beyond the new end


def test_forged_approval_appended_is_detected(db: Path) -> None:
    store = PlanStore(db)
    rec = propose(store, make_plan())
    rows = _rows(db)
    con = sqlite3.connect(db)
    last_seq, last_hash = con.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    row = [last_seq + 1, "2026-01-01T00:00:00+00:00", "bob", "cli", "approve", rec.hash, "ok",
           json.dumps({"tier": "large"})]
    con.execute("INSERT INTO audit VALUES (?,?,?,?,?,?,?,?,?,?)",
                (*row, last_hash, sha256_hex(canonical_json([*row, last_hash]))))
    con.commit()
    con.close()
    check = PlanStore(db).verify_audit()
    assert not check.ok and check.problems == [
        f"entry {len(rows) + 1}: its MAC does not verify with the store key (altered, forged or re-chained)"]


def test_truncating_the_newest_entries_is_detected(db: Path) -> None:
    store = PlanStore(db)
    propose(store, make_plan())
    propose(store, make_plan(greens=(45, 35)))
    n = store.verify_audit().entries
    _sql(db, "DROP TRIGGER audit_no_delete", f"DELETE FROM audit WHERE seq > {n - 2}")
    check = PlanStore(db).verify_audit()
    assert not check.ok and check.problems == [
        f"entries {n - 1}-{n} missing: the published head names entry {n}, the log ends at {n - 2} (truncated)"]
    r = CliRunner().invoke(app, ["plan", "audit", "--verify", "--store", str(db)])
    assert r.exit_code == 1 and "audit log TAMPERED" in r.output and "truncated" in r.output


def test_truncation_with_the_head_file_deleted_is_not_called_intact(db: Path) -> None:
    store = PlanStore(db)
    propose(store, make_plan())
    n = store.verify_audit().entries
    store.head_file.unlink()
    _sql(db, "DROP TRIGGER audit_no_delete", f"DELETE FROM audit WHERE seq > {n - 2}")
    check = PlanStore(db).verify_audit()
    assert not check.ok and any("no signed head" in p for p in check.problems)
    r = CliRunner().invoke(app, ["plan", "audit", "--verify", "--store", str(db)])
    assert r.exit_code == 1 and "audit log TAMPERED" in r.output


def test_a_file_that_is_not_a_sqlite_database_is_refused_and_kept(tmp_path: Path) -> None:
    for data in (b"x", b"user notes\n"):
        path = tmp_path / "notes.txt"
        path.write_bytes(data)
        with pytest.raises(WulinError, match="not a SQLite database"):
            PlanStore(path)
        assert path.read_bytes() == data  # SQLite would have written a database over a short file
    with pytest.raises(WulinError, match="not a regular file"):
        PlanStore(tmp_path)


def test_store_files_are_private_and_the_key_is_outside_the_database(db: Path) -> None:
    store = PlanStore(db)
    for path in (db, store.key_file, store.head_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert store.key_file.read_text().strip() not in db.read_bytes().decode("latin-1")
    assert Path(os.environ["XDG_CONFIG_HOME"], "wulin") == store.key_file.parent == store.head_file.parent


def test_a_store_without_its_key_is_refused(db: Path) -> None:
    store = PlanStore(db)
    store.key_file.unlink()
    with pytest.raises(WulinError, match="store key .* is missing"):
        PlanStore(db)


def test_users_and_tokens_made_in_the_database_do_not_log_in(db: Path) -> None:
    from argon2 import PasswordHasher

    from deploy.identity import AuthError, Principal, token_digest

    known = PasswordHasher().hash("mallory-password")
    _sql(db, "INSERT INTO users (name, role, created_at, password_hash, disabled, failed_logins, sig) "
             "VALUES ('mallory', 'supervisor', '2026-01-01', ?, 0, 0, '')", args=(known,))
    _sql(db, "UPDATE users SET role = 'supervisor' WHERE name = 'ann'")  # an engineer promoted
    _sql(db, "INSERT INTO tokens (digest, user, created_at, expires_at, sig) VALUES (?, 'bob', '2026-01-01', "
             "'2099-01-01T00:00:00+00:00', '')", args=(token_digest("wulin_forged"),))
    store = PlanStore(db)
    with pytest.raises(AuthError, match="does not verify with the store key"):
        store.authenticate("mallory", "mallory-password")
    with pytest.raises(AuthError, match="does not verify with the store key"):
        store.authenticate_token("wulin_forged")
    rec = propose(store, make_plan(), BOB, evidence=EVIDENCE)
    with pytest.raises(Refused, match="the account record does not verify"):
        store.approve(rec.hash, Principal("ann", "supervisor"))


def test_proposer_rewritten_before_approval_is_refused(db: Path) -> None:
    store = PlanStore(db)
    h = propose(store, make_plan(), BOB, evidence=EVIDENCE).hash  # bob proposes...
    _sql(db, "UPDATE plans SET proposed_by = 'ann'")  # ...and makes it look like ann's
    with pytest.raises(Refused, match="not the one the signed audit log names .*a second person must"):
        store.approve(h, BOB)


def test_a_key_others_can_read_is_refused(db: Path) -> None:
    key = PlanStore(db).key_file
    key.chmod(0o644)
    with pytest.raises(WulinError, match="readable by others \\(mode 0644\\)"):
        PlanStore(db)
