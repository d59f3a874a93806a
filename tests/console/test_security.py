"""Security of the console: each bad request refused, and audited, whatever the browser sends."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from console.config import ConsoleConfig
from deploy.identity import LOCK_AFTER
from deploy.store import PlanStore
from sim.errors import WulinError
from tests.deploy.conftest import BOB, make_plan, propose

from .conftest import EVIDENCE, csrf_of


def refusals(store: PlanStore, action: str = "web.refused") -> list[str]:
    """Reasons of the refused audit entries of ``action`` (channel web)."""
    return [e.detail.get("reason", "") for e in store.audit() if e.action == action and e.outcome == "refused"
            and e.channel == "web"]


@pytest.fixture
def plan_hash(store: PlanStore) -> str:
    return propose(store, make_plan(greens=(42, 38), name="am"), evidence=EVIDENCE).hash


def test_login_sets_strict_http_only_cookie_and_logout_ends_the_session(client_for) -> None:  # type: ignore[no-untyped-def]
    c = client_for()
    page = c.get("/login")
    r = c.post("/login", data={"username": "bob", "password": "bob-password", "csrf": csrf_of(page.text)},
               follow_redirects=False)
    cookie = r.headers["set-cookie"].lower()
    assert "wulin_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    assert c.get("/plans").status_code == 200
    c.post("/logout", data={"csrf": csrf_of(c.get("/plans").text)})
    assert c.get("/plans", follow_redirects=False).headers["location"] == "/login"


def test_secure_cookies_when_configured(store: PlanStore, tmp_path: Path) -> None:
    from console.app import create_app

    from .conftest import config

    app = create_app(config(tmp_path, secure_cookies=True), store, monitor=False)
    with TestClient(app, base_url="https://127.0.0.1") as c:
        page = c.get("/login")
        r = c.post("/login", data={"username": "bob", "password": "bob-password", "csrf": csrf_of(page.text)},
                   follow_redirects=False)
        assert "secure" in r.headers["set-cookie"].lower()


def test_expired_session_is_refused_and_audited(client_for, app, store: PlanStore, plan_hash: str) -> None:  # type: ignore[no-untyped-def]
    c = client_for("cat")
    app.state.console.sessions.expire(c.cookies["wulin_session"])
    r = c.post(f"/plans/{plan_hash}/approve", data={"csrf": c.csrf, "hash": plan_hash}, follow_redirects=False)
    assert r.status_code == 401
    assert store.get(plan_hash).state == "proposed"
    assert "session expired or unknown" in refusals(store)


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_csrf_missing_or_wrong_is_refused_and_audited(client_for, store: PlanStore, plan_hash: str,
                                                      token: str | None) -> None:  # type: ignore[no-untyped-def]
    c = client_for("cat")
    data = {"hash": plan_hash} | ({"csrf": token} if token else {})
    r = c.post(f"/plans/{plan_hash}/approve", data=data)
    assert r.status_code == 403 and "CSRF" in r.text
    assert store.get(plan_hash).state == "proposed"
    assert refusals(store) == ["CSRF token missing or wrong"]


def test_login_without_csrf_is_refused(client_for, store: PlanStore) -> None:  # type: ignore[no-untyped-def]
    c = client_for()
    r = c.post("/login", data={"username": "bob", "password": "bob-password"})
    assert r.status_code == 403 and "wulin_session" not in c.cookies
    assert refusals(store) == ["login without a valid CSRF token"]


def test_wrong_role_is_refused_and_audited(client_for, store: PlanStore, plan_hash: str) -> None:  # type: ignore[no-untyped-def]
    viewer = client_for("vic")
    r = viewer.post(f"/plans/{plan_hash}/approve", data={"csrf": viewer.csrf, "hash": plan_hash})
    assert r.status_code == 403 and "supervisor" in r.text
    assert store.get(plan_hash).state == "proposed"
    assert [e for e in store.audit() if e.action == "approve" and e.outcome == "refused" and e.actor == "vic"
            and e.channel == "web"]
    assert viewer.get("/admin").status_code == 403
    engineer = client_for("ann")
    r = engineer.post(f"/plans/{plan_hash}/rollback", data={"csrf": engineer.csrf, "hash": plan_hash})
    assert r.status_code == 403
    assert len(refusals(store)) == 2  # /admin by vic, rollback by ann


def test_self_approval_through_a_crafted_form_is_refused(client_for, store: PlanStore) -> None:  # type: ignore[no-untyped-def]
    h = propose(store, make_plan(greens=(44, 36)), actor=BOB).hash
    bob = client_for("bob")
    r = bob.post(f"/plans/{h}/approve", data={"csrf": bob.csrf, "hash": h, "comment": "mine"})
    assert r.status_code == 403 and "cannot approve" in r.text
    assert store.get(h).state == "proposed"
    refused = [e for e in store.audit(h) if e.action == "approve"]
    assert [(e.actor, e.channel, e.outcome) for e in refused] == [("bob", "web", "refused")]


def test_replayed_approval_is_refused(client_for, store: PlanStore, plan_hash: str) -> None:  # type: ignore[no-untyped-def]
    cat = client_for("cat")
    form = {"csrf": cat.csrf, "hash": plan_hash}
    assert cat.post(f"/plans/{plan_hash}/approve", data=form, follow_redirects=False).status_code == 303
    again = cat.post(f"/plans/{plan_hash}/approve", data=form)
    assert again.status_code == 403
    approvals = [(e.actor, e.channel, e.outcome) for e in store.audit(plan_hash) if e.action == "approve"]
    assert approvals == [("cat", "web", "ok"), ("cat", "web", "refused")]


def test_a_posted_hash_other_than_the_plans_is_refused(client_for, store: PlanStore, plan_hash: str) -> None:  # type: ignore[no-untyped-def]
    other = propose(store, make_plan(greens=(41, 39), name="other")).hash
    cat = client_for("cat")
    for posted in (other, plan_hash[:12], ""):
        r = cat.post(f"/plans/{plan_hash}/approve", data={"csrf": cat.csrf, "hash": posted})
        assert r.status_code == 409
    assert store.get(plan_hash).state == "proposed" and store.get(other).state == "proposed"
    assert len([r for r in refusals(store) if "hash" in r]) == 3


XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_html_in_every_text_field_is_escaped(client_for, store: PlanStore) -> None:  # type: ignore[no-untyped-def]
    rec = propose(store, make_plan(greens=(43, 37), name=XSS), note=XSS, evidence={"kind": XSS, "text": XSS,
                                                                                    "kpis": {XSS: {"mean": 1}}})
    root = client_for("root")
    r = root.post("/admin/users", data={"csrf": root.csrf, "name": "eve <b>x</b>", "role": "viewer",
                                        "password": "eve-password"})
    assert r.status_code in (200, 303)
    cat = client_for("cat")
    cat.post(f"/plans/{rec.hash}/reject", data={"csrf": cat.csrf, "hash": rec.hash, "comment": XSS})
    pages = [cat.get("/plans").text, cat.get(f"/plans/{rec.hash}").text, cat.get("/audit").text,
             root.get("/admin").text]
    for html in pages:
        assert "<script>alert" not in html and "<img src=x" not in html and "<b>x</b>" not in html
    assert "&lt;script&gt;" in pages[1] and "&lt;b&gt;x&lt;/b&gt;" in pages[3]
    assert "script-src 'self'" in cat.get("/plans").headers["content-security-policy"]


def test_sql_metacharacters_are_plain_text(client_for, store: PlanStore, plan_hash: str) -> None:  # type: ignore[no-untyped-def]
    c = client_for()
    page = c.get("/login")
    r = c.post("/login", data={"username": "bob' OR '1'='1", "password": "' OR 1=1 --", "csrf": csrf_of(page.text)})
    assert r.status_code == 401
    bob = client_for("bob")
    assert bob.get("/plans/abcdef' OR 1=1 --").status_code == 403
    assert bob.get("/audit", params={"plan": "' OR 1=1 --"}).status_code == 200
    assert len(store.plans()) == 1 and store.verify_audit().ok
    assert [e for e in store.audit() if e.action == "login" and e.outcome == "refused" and e.channel == "web"]


@pytest.mark.parametrize("name", ["../store.sqlite", "..%2Fstore.sqlite", "%2e%2e/%2e%2e/etc/passwd",
                                  "/etc/passwd", "link/secret.txt", "missing.html"])
def test_path_traversal_in_the_file_parameter_is_refused(client_for, store: PlanStore, tmp_path: Path,
                                                          name: str) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "files" / "report.html").write_text("<p>report</p>")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (tmp_path / "files" / "link").symlink_to(outside)
    bob = client_for("bob")
    assert bob.get("/files/report.html").text == "<p>report</p>"
    r = bob.get(f"/files/{name}")
    assert r.status_code == 404 and "secret" not in r.text and "root:" not in r.text
    if r.request.url.path.startswith("/files/"):  # httpx folds a literal "../" before sending, as browsers do
        assert any("is not a report" in x for x in refusals(store))


def test_brute_force_login_locks_the_user_and_is_audited(client_for, store: PlanStore) -> None:  # type: ignore[no-untyped-def]
    c = client_for()
    for _ in range(LOCK_AFTER):
        r = c.post("/login", data={"username": "bob", "password": "guess-guess",
                                   "csrf": csrf_of(c.get("/login").text)})
        assert r.status_code == 401
    r = c.post("/login", data={"username": "bob", "password": "bob-password", "csrf": csrf_of(c.get("/login").text)})
    assert r.status_code == 401 and "wulin_session" not in c.cookies
    fails = [e for e in store.audit() if e.action == "login" and e.actor == "bob" and e.channel == "web"]
    assert len(fails) == LOCK_AFTER + 1 and fails[-1].detail["locked"] and "locked" in fails[-1].detail["reason"]


def test_nothing_listens_beyond_loopback_unless_public() -> None:
    with pytest.raises(WulinError, match="--public"):
        ConsoleConfig(host="0.0.0.0")
    assert ConsoleConfig(host="0.0.0.0", public=True).cookie_secure
    assert not ConsoleConfig(host="::1").cookie_secure


def test_pages_need_a_login(client_for) -> None:  # type: ignore[no-untyped-def]
    c = client_for()
    for path in ("/plans", "/cockpit", "/audit", "/admin", "/cockpit/status"):
        r = c.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login"
    assert re.search(r"deny", c.get("/login").headers["x-frame-options"], re.I)


def test_an_open_event_stream_ends_when_its_session_does(client_for, app) -> None:  # type: ignore[no-untyped-def]
    c = client_for("vic")
    with c.stream("GET", "/cockpit/events") as r:
        lines = r.iter_lines()
        assert next(lines) == "event: status"
        app.state.console.sessions.end(c.cookies["wulin_session"])
        rest = list(lines)  # returns only because the server closes the stream
    assert all(not line.startswith("event:") for line in rest[1:])
