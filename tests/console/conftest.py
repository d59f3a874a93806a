"""Fixtures for the console tests: a store with users, the console app, logged-in clients."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from console.app import create_app
from console.config import ConsoleConfig
from deploy.store import PlanStore
from tests.deploy.conftest import CAPS, GRID_NET, PASSWORDS, add_users, make_profile

EVIDENCE = {"kind": "experiment", "scenario": "grid-test", "seeds": 5,
            "kpis": {"mean travel time (s)": {"mean": 118.4, "ci": 2.3}, "mean delay (s)": {"mean": 31.2, "ci": 1.1}}}
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(autouse=True)
def _private_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Store keys and head files go to the test's own folder, never the user's."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("WULIN_SECRETS", str(tmp_path / "config" / "device-secrets.json"))
    for name in ("WULIN_KEY_FILE", "WULIN_HEAD_FILE", "WULIN_TOKEN", "WULIN_USER"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[PlanStore]:
    """root (admin), ann (engineer), bob and cat (supervisors), vic (viewer); device B1."""
    s = PlanStore(tmp_path / "store.sqlite")
    add_users(s)
    from tests.deploy.conftest import ROOT

    s.add_user(ROOT, "vic", "viewer", "vic-password")
    s.register_device("B1", "127.0.0.1", 9, make_profile(), CAPS)
    yield s
    s.close()


PASSWORDS_ALL = PASSWORDS | {"vic": "vic-password"}


def config(tmp_path: Path, **kw: object) -> ConsoleConfig:
    files = tmp_path / "files"
    files.mkdir(exist_ok=True)
    base: dict[str, object] = {"store_url": "unused", "net": GRID_NET, "secure_cookies": False,
                               "files_root": files, "activation_timeout_s": 30.0}
    return ConsoleConfig(**(base | kw))  # type: ignore[arg-type]


@pytest.fixture
def app(store: PlanStore, tmp_path: Path):  # type: ignore[no-untyped-def]
    return create_app(config(tmp_path), store, monitor=False)


def csrf_of(html: str) -> str:
    m = CSRF_RE.search(html)
    assert m, "no CSRF field on the page"
    return m.group(1)


def login(client: TestClient, name: str, password: str | None = None) -> str:
    """Log ``client`` in as ``name``; returns the session's CSRF token."""
    page = client.get("/login")
    r = client.post("/login", data={"username": name, "password": password or PASSWORDS_ALL[name],
                                    "csrf": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return csrf_of(client.get("/plans").text)


@pytest.fixture
def client_for(app):  # type: ignore[no-untyped-def]
    """A factory of logged-in TestClients (one browser each)."""
    made: list[TestClient] = []

    def make(name: str | None = None) -> TestClient:
        c = TestClient(app, base_url="http://127.0.0.1")
        made.append(c)
        if name is not None:
            c.csrf = login(c, name)  # type: ignore[attr-defined]
        return c

    yield make
    for c in made:
        c.close()
