"""Identity: normalised names, argon2 passwords, API tokens, admin-only user management,
login throttling (issue 11 item 2; issue 15 item 2)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text

from deploy.identity import LOCK_AFTER, AuthError, Principal, normalise_name
from deploy.store import PlanStore, Refused
from sim.errors import WulinError

from .conftest import ANN, BOB, CAPS, PASSWORDS, ROOT, add_users, make_plan, make_profile, propose


@pytest.fixture
def users(tmp_path: Path) -> PlanStore:
    s = PlanStore(tmp_path / "s.sqlite")
    add_users(s)
    return s


@pytest.mark.parametrize("raw", ["Wang", "wang ", " WANG", "Ｗａｎｇ", "wAnG\t"])
def test_lookalike_names_are_one_user(raw: str) -> None:
    assert normalise_name(raw) == "wang"


@pytest.mark.parametrize("raw", ["wa\x00ng", "wang\n", "wa\u200bng", "", "   ", "x" * 65, "a\u2028b"])
def test_bad_names_are_refused(raw: str) -> None:
    with pytest.raises(WulinError, match="user name"):
        normalise_name(raw)


@given(st.text(min_size=1, max_size=80))
def test_normalising_is_idempotent_or_refused(raw: str) -> None:
    try:
        once = normalise_name(raw)
    except WulinError:
        return
    assert normalise_name(once) == once and once == once.strip() and 1 <= len(once) <= 64


def test_lookalike_cannot_be_added_or_self_approve(users: PlanStore) -> None:
    with pytest.raises(Refused, match="exists already"):
        users.add_user(ROOT, "Ann ", "supervisor", "another-password")
    # The supervisor "bob" logs in as "BOB" and is still the proposer of his own plan.
    rec = propose(users, make_plan(), BOB, evidence={"kind": "experiment"})
    users.register_device("B1", "127.0.0.1", 16161, make_profile(), CAPS)
    with pytest.raises(Refused, match="second person"):
        users.approve(rec.hash, users.authenticate("BOB ", PASSWORDS["bob"]))


def test_non_admin_cannot_manage_users(users: PlanStore) -> None:
    for who in (ANN, BOB):
        with pytest.raises(Refused, match="needs an admin"):
            users.add_user(who, "eve", "supervisor", "eve-password")
        with pytest.raises(Refused, match="needs an admin"):
            users.issue_token(who, "ann")
    assert "eve" not in {u.name for u in users.users()}
    refused = [e for e in users.audit() if e.action == "user.add" and e.outcome == "refused"]
    assert [e.actor for e in refused] == ["ann", "bob"]


def test_password_login_and_lockout_are_audited(users: PlanStore) -> None:
    who = users.authenticate("Ann", PASSWORDS["ann"])
    assert who == Principal("ann", "engineer", "cli")
    for _ in range(LOCK_AFTER):
        with pytest.raises(AuthError, match="wrong user name or password"):
            users.authenticate("ann", "guess-guess")
    with pytest.raises(AuthError, match="locked after"):
        users.authenticate("ann", PASSWORDS["ann"])  # even the right password, while locked
    with pytest.raises(AuthError, match="wrong user name or password"):
        users.authenticate("nobody", "whatever-it-is")
    logins = [e for e in users.audit() if e.action == "login"]
    assert len(logins) == LOCK_AFTER + 2 and all(e.outcome == "refused" for e in logins)
    assert logins[LOCK_AFTER - 1].detail["locked"] is True
    users.set_disabled(ROOT, "ann", disabled=False)  # an admin unlocks
    assert users.authenticate("ann", PASSWORDS["ann"]).name == "ann"
    assert users.verify_audit().ok


def test_tokens_expire_and_are_revoked(users: PlanStore) -> None:
    issued = users.issue_token(ROOT, "bob", days=1)
    assert issued.token.startswith("wulin_") and users.authenticate_token(issued.token) == Principal(
        "bob", "supervisor", "cli")
    with users.engine.begin() as c:  # the token is stored hashed, never in clear
        stored = c.execute(text("SELECT digest FROM tokens")).scalars().all()
    assert issued.token not in stored and len(stored) == 1
    with pytest.raises(AuthError, match="unknown API token"):
        users.authenticate_token(issued.token + "x")
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).isoformat()
    other = users.issue_token(ROOT, "ann")
    with users.engine.begin() as c:
        c.execute(text("UPDATE tokens SET expires_at = :t WHERE digest LIKE :d"),
                  {"t": past, "d": other.token_id + "%"})
    with pytest.raises(AuthError, match="expired"):
        users.authenticate_token(other.token)
    users.revoke_token(ROOT, issued.token_id)
    with pytest.raises(AuthError, match="revoked"):
        users.authenticate_token(issued.token)


def test_disabled_user_can_do_nothing(users: PlanStore) -> None:
    token = users.issue_token(ROOT, "ann").token
    users.set_disabled(ROOT, "ann")
    with pytest.raises(AuthError, match="disabled"):
        users.authenticate("ann", PASSWORDS["ann"])
    with pytest.raises(AuthError, match="disabled"):
        users.authenticate_token(token)
    with pytest.raises(Refused, match="disabled"):
        propose(users, make_plan())  # a principal made before the account was disabled
    with pytest.raises(Refused, match="cannot disable their own"):
        users.set_disabled(ROOT, "root")
