"""Roles changed by an admin (seen at once by the user's open session), sessions that survive a
restart of the console, and the experiment report embedded in the review page."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from console.app import create_app
from deploy.store import PlanStore
from tests.deploy.conftest import make_plan, propose

from .conftest import config


def test_admin_changes_a_role_and_the_open_session_sees_it_at_once(client_for, store: PlanStore) -> None:  # type: ignore[no-untyped-def]
    vic = client_for("vic")
    assert vic.get("/plans/new").status_code == 403
    root = client_for("root")
    assert 'class="set-role" data-user="vic"' in root.get("/admin").text
    r = root.post("/admin/users/vic/role", data={"csrf": root.csrf, "role": "engineer"}, follow_redirects=False)
    assert r.status_code == 303 and {u.name: u.role for u in store.users()}["vic"] == "engineer"
    assert vic.get("/plans/new").status_code == 200  # same session, new role
    entry = [e for e in store.audit() if e.action == "user.role"][-1]
    assert (entry.actor, entry.channel, entry.detail["to"]) == ("root", "web", "engineer")


def test_role_changes_refused_by_the_store_or_by_role(client_for, store: PlanStore) -> None:  # type: ignore[no-untyped-def]
    root = client_for("root")
    r = root.post("/admin/users/root/role", data={"csrf": root.csrf, "role": "viewer"})
    assert r.status_code == 403 and "last active admin" in r.text
    bob = client_for("bob")
    r = bob.post("/admin/users/bob/role", data={"csrf": bob.csrf, "role": "admin"})
    assert r.status_code == 403 and {u.name: u.role for u in store.users()}["bob"] == "supervisor"
    r = root.post("/admin/users/vic/role", data={"csrf": "wrong", "role": "admin"})
    assert r.status_code == 403 and {u.name: u.role for u in store.users()}["vic"] == "viewer"


def test_a_session_survives_a_restart_of_the_console(store: PlanStore, tmp_path: Path, client_for) -> None:  # type: ignore[no-untyped-def]
    ann = client_for("ann")
    cookie = ann.cookies["wulin_session"]
    again = create_app(config(tmp_path), store, monitor=False)  # a new process's state, same store
    with TestClient(again, base_url="http://127.0.0.1") as c:
        c.cookies.set("wulin_session", cookie)
        page = c.get("/plans/new")
        assert page.status_code == 200 and "Propose a plan" in page.text
        r = c.post("/logout", data={"csrf": ann.csrf}, follow_redirects=False)
        assert r.status_code == 303 and store.load_session(cookie) is None
    assert ann.get("/plans", follow_redirects=False).status_code == 200  # the first app's cache ...
    fresh = create_app(config(tmp_path), store, monitor=False)
    with TestClient(fresh, base_url="http://127.0.0.1") as c:
        c.cookies.set("wulin_session", cookie)
        assert c.get("/plans", follow_redirects=False).headers["location"] == "/login"  # ... but it is gone


def test_the_report_is_embedded_sandboxed_and_only_from_the_files_folder(client_for, store: PlanStore,
                                                                        tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "files" / "exp").mkdir()
    (tmp_path / "files" / "exp" / "report.html").write_text("<h1>report</h1><script>alert(1)</script>")
    inside = propose(store, make_plan(greens=(44, 36)), evidence={"kind": "experiment", "report": "exp/report.html"})
    outside = propose(store, make_plan(greens=(46, 34)), evidence={"kind": "experiment", "report": "../store.sqlite"})
    bob = client_for("bob")
    page = bob.get(f"/plans/{inside.hash}")
    assert '<iframe class="report" src="/files/exp/report.html" sandbox' in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    report = bob.get("/files/exp/report.html")
    assert report.headers["content-security-policy"] == "sandbox; frame-ancestors 'self'"
    assert report.headers["x-frame-options"] == "SAMEORIGIN"
    assert "<iframe" not in bob.get(f"/plans/{outside.hash}").text
