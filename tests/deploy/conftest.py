"""Fixtures for the deploy tests: plans, profiles, stores (SQLite, and PostgreSQL when available)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from controllers.plan import PlanStage, TimingPlan
from deploy.identity import Principal
from deploy.profile import Capabilities, DeviceProfile, single_ring_profile
from deploy.store import PlanRecord, PlanStore

GRID_NET = Path(__file__).resolve().parents[2] / "networks" / "grid" / "grid.net.xml"
PASSWORDS = {"root": "root-password", "ann": "ann-password", "bob": "bob-password", "cat": "cat-password"}
ROOT = Principal("root", "admin", "test")
ANN = Principal("ann", "engineer", "test")
BOB = Principal("bob", "supervisor", "test")
CAT = Principal("cat", "supervisor", "test")
_CONFLICTS: dict[str, list[list[bool]]] = {}


def conflicts_for(signal_id: str) -> list[list[bool]]:
    """The grid network's conflict matrix of one signal (read once)."""
    if not _CONFLICTS:
        from sim.topology import load_signal_specs

        _CONFLICTS.update({k: [list(r) for r in v.conflicts] for k, v in load_signal_specs(GRID_NET).items()})
    return _CONFLICTS[signal_id]


def propose(store: PlanStore, plan: TimingPlan, actor: Principal = ANN, **kw: object) -> PlanRecord:
    """Propose with the grid's conflicts on record, as `wulin plan propose` does."""
    return store.propose(plan, actor, conflicts=conflicts_for(plan.signal_id), **kw)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _private_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Store keys and head files go to the test's own folder, never the user's; argon2 runs
    with its cheapest parameters (the real ones cost about a second per login on a busy CI box)."""
    from argon2 import PasswordHasher

    monkeypatch.setattr("deploy.identity._hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("WULIN_SECRETS", str(tmp_path / "config" / "device-secrets.json"))
    monkeypatch.delenv("WULIN_KEY_FILE", raising=False)
    monkeypatch.delenv("WULIN_HEAD_FILE", raising=False)
    monkeypatch.delenv("WULIN_TOKEN", raising=False)
    monkeypatch.delenv("WULIN_USER", raising=False)


def add_users(store: PlanStore) -> None:
    """root (admin), ann (engineer), bob and cat (supervisors)."""
    store.init_admin("root", PASSWORDS["root"])
    for who in (ANN, BOB, CAT):
        store.add_user(ROOT, who.name, who.role, PASSWORDS[who.name])


def make_plan(signal_id: str = "B1", greens: tuple[float, ...] = (40, 40), offset: float = 0,
              name: str = "test") -> TimingPlan:
    """A valid two-stage plan over the grid signal's 16 links (NS, then EW)."""
    states = ("GGGgrrrrGGGgrrrr", "rrrrGGGgrrrrGGGg")
    stages = tuple(PlanStage(f"stage {k}", states[k], g, min_green=10, walk=7, ped_clearance=3)
                   for k, g in enumerate(greens))
    cycle = sum(greens) + len(greens) * 5
    return TimingPlan(signal_id, cycle, offset, stages, yellow=3, all_red=2, name=name, source="test")


def make_profile(signal_id: str = "B1") -> DeviceProfile:
    return single_ring_profile(signal_id, 2)


CAPS = Capabilities(max_phases=8, max_patterns=8, max_splits=8, max_rings=2, max_sequences=8, max_channels=8)


def _pg_store() -> Iterator[PlanStore]:
    url = os.environ.get("WULIN_TEST_PG_URL")
    if not url:
        pytest.skip("PostgreSQL store tests need WULIN_TEST_PG_URL")
    from sqlalchemy import create_engine, text

    schema = f"t{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    with admin.begin() as c:
        c.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in url else "?"
    store = PlanStore(f"{url}{sep}options=-csearch_path%3D{schema}")
    try:
        yield store
    finally:
        store.close()
        with admin.begin() as c:
            c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PlanStore]:
    """An empty store with users root (admin), ann (engineer), bob and cat (supervisors) and device B1."""
    if request.param == "sqlite":
        s = PlanStore(tmp_path / "store.sqlite")
        gen: Iterator[PlanStore] | None = None
    else:
        gen = _pg_store()
        s = next(gen)
    add_users(s)
    s.register_device("B1", "127.0.0.1", 16161, make_profile(), CAPS)
    yield s
    if gen is not None:
        with pytest.raises(StopIteration):
            next(gen)
    else:
        s.close()
