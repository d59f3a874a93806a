"""The store's role changes (admin only, audited, the last admin kept) and console sessions
(only the id's digest stored, expiry, ended per session or per user), on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from deploy.store import PlanStore, Refused
from deploy.websessions import StoredSession, session_digest

from .conftest import ANN, ROOT


def test_an_admin_changes_a_role_and_it_is_audited(store: PlanStore) -> None:
    store.set_role(ROOT, "ann", "supervisor")
    assert {u.name: u.role for u in store.users()}["ann"] == "supervisor"
    entry = [e for e in store.audit() if e.action == "user.role"][-1]
    assert (entry.actor, entry.channel, entry.detail) == (ROOT.name, ROOT.channel, {"user": "ann", "from": "engineer",
                                                                         "to": "supervisor"})
    assert store.verify_audit().ok


def test_role_changes_keep_the_rules(store: PlanStore) -> None:
    with pytest.raises(Refused, match="admin"):
        store.set_role(ANN, "ann", "admin")  # an engineer may not promote themselves
    with pytest.raises(Refused, match="last active admin"):
        store.set_role(ROOT, "root", "viewer")
    with pytest.raises(Exception, match="role"):
        store.set_role(ROOT, "ann", "emperor")
    store.set_role(ROOT, "ann", "admin")
    store.set_role(ROOT, "root", "viewer")  # another admin exists now
    assert {u.name: u.role for u in store.users()}["root"] == "viewer"
    refused = [e for e in store.audit() if e.action == "user.role" and e.outcome == "refused"]
    assert len(refused) == 2


def test_sessions_are_stored_by_digest_and_expire(store: PlanStore) -> None:
    sid = "s" * 43
    store.save_session(sid, StoredSession("ann", "csrf-1", "zh_CN", time.time() + 60))
    assert store.load_session(sid) == StoredSession("ann", "csrf-1", "zh_CN", pytest.approx(time.time() + 60, abs=5))
    with store.engine.connect() as c:
        assert c.execute(text("SELECT digest FROM web_sessions")).scalars().all() == [session_digest(sid)]
    store.save_session("old", StoredSession("bob", "c", "en", time.time() - 1))
    assert store.load_session("old") is None and store.load_session("unknown") is None
    store.save_session("two", StoredSession("ann", "c", "en", time.time() + 60))
    store.end_sessions(sid=sid)
    assert store.load_session(sid) is None and store.session_users() == ["ann"]
    store.end_sessions(user="ann")
    assert store.session_users() == []
