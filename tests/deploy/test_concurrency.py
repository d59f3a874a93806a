"""Atomic state transitions: of many concurrent deploys exactly one reaches `deploying`
(issue 11 item 3), in threads and in separate processes, on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.store import PlanStore, Refused

from .conftest import ANN, BOB, make_plan, propose

EVIDENCE = {"kind": "experiment", "mean_travel_time_s": {"live": 180.0, "proposed": 171.0}}
TRIALS = 15


def _approved(store: PlanStore, greens: tuple[float, float] = (40, 40)) -> str:
    h = propose(store, make_plan(greens=greens), evidence=EVIDENCE).hash
    store.approve(h, BOB)
    return h


def _race(store: PlanStore, refs: list[str]) -> list[str]:
    """Start one deploy per ref at once; the holders that got the lease."""
    barrier = threading.Barrier(len(refs))
    won: list[str] = []
    errors: list[BaseException] = []

    def go(k: int, ref: str) -> None:
        barrier.wait()
        try:
            store.begin_deploy(ref, ANN, holder=f"h{k}", lease_s=60)
            won.append(f"h{k}")
        except Refused:
            pass
        except BaseException as exc:  # anything else is a bug (a lock error, a traceback)
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(k, r)) for k, r in enumerate(refs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return won


def test_concurrent_deploys_of_one_plan_exactly_one_wins(store: PlanStore) -> None:
    h = _approved(store)
    for _ in range(TRIALS):
        won = _race(store, [h] * 6)
        assert len(won) == 1
        assert store.get(h).state == "deploying" and store.lease("B1").holder == won[0]  # type: ignore[union-attr]
        store.finish_deploy(h, ANN, "failed", {"message": "trial"}, holder=won[0])  # a retry is allowed next
    starts = [e for e in store.audit(h) if e.action == "deploy.start"]
    assert len(starts) == TRIALS and all(e.outcome == "ok" for e in starts)
    refused = [e for e in store.audit() if e.action == "deploy" and e.outcome == "refused"]
    assert len(refused) == TRIALS * 5  # every loser is on record
    assert store.verify_audit().ok


def test_one_deploy_per_signal_across_plans(store: PlanStore) -> None:
    a, b = _approved(store), _approved(store, (42, 38))
    winners = set()
    for _ in range(TRIALS):
        won = _race(store, [a, b, a, b])
        assert len(won) == 1
        held = store.lease("B1")
        assert held is not None and held.holder == won[0]
        winners.add(held.plan_hash)
        store.finish_deploy(held.plan_hash, ANN, "failed", {"message": "trial"}, holder=won[0])
    # either plan may win any trial; the plans that won are failed, one that never won is untouched
    assert {h: store.get(h).state for h in (a, b)} == {h: "failed" if h in winners else "approved" for h in (a, b)}


# ---------------------------------------------------------------- two processes
_STORE: PlanStore | None = None


def _worker_init(url: str, config: str) -> None:
    global _STORE
    os.environ["XDG_CONFIG_HOME"] = config
    _STORE = PlanStore(url)


def _worker_deploy(ref: str, holder: str, barrier: Any) -> str:
    assert _STORE is not None
    barrier.wait()
    try:
        _STORE.begin_deploy(ref, ANN, holder=holder, lease_s=60)
        return "won"
    except Refused:
        return "refused"


@pytest.fixture
def pool(store: PlanStore) -> Iterator[tuple[Any, Any]]:
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(2, _worker_init, (store.url, os.environ["XDG_CONFIG_HOME"])) as p:
        yield p, manager.Barrier(2)


def test_two_processes_exactly_one_wins(store: PlanStore, pool: tuple[Any, Any], tmp_path: Path) -> None:
    p, barrier = pool
    h = _approved(store)
    for trial in range(TRIALS):
        jobs = [p.apply_async(_worker_deploy, (h, f"p{trial}-{k}", barrier)) for k in range(2)]
        results = [j.get(timeout=60) for j in jobs]
        assert sorted(results) == ["refused", "won"], results
        held = store.lease("B1")
        assert held is not None and store.get(h).state == "deploying"
        store.finish_deploy(h, ANN, "failed", {"message": "trial"}, holder=held.holder)
