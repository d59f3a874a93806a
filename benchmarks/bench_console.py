"""Bounded load test of the console on loopback: cockpit viewers with live updates plus reviewers.

Starts ``wulin console`` in its own process over a fresh store (an emulated controller for B1,
two more signals registered at an address where nothing answers), logs in every simulated
user, then for ``--seconds``: ``--viewers`` browsers follow ``/cockpit/events`` (server-sent
events) and ``--reviewers`` users load the plan queue, a plan page, the cockpit and the audit
log in a loop.  Prints page latency p50/p95, update latency (from the moment the server made a
new cockpit version to its arrival at a viewer) p50/p95/max, and errors.  Stops by itself.

    python benchmarks/bench_console.py [--viewers 50] [--reviewers 5] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PASSWORD = "load-test-password"


@dataclass
class Tally:
    """What the clients measured."""

    pages: list[float] = field(default_factory=list)
    updates: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _prepare(folder: Path) -> tuple[str, object]:
    """A store with users, an emulated B1 and a proposed plan; returns (plan hash, emulator)."""
    from deploy.emulator import ControllerEmulator
    from deploy.store import PlanStore
    from sim.topology import load_signal_specs
    from tests.deploy.conftest import CAPS, GRID_NET, make_plan, make_profile

    store = PlanStore(folder / "store.sqlite")
    root = store.init_admin("root", PASSWORD)
    store.add_user(root, "eng", "engineer", PASSWORD)
    store.add_user(root, "sup", "supervisor", PASSWORD)
    emu = ControllerEmulator(make_profile(), make_plan(name="local"), CAPS, time_scale=1).start()
    from deploy.secrets import SecretsFile

    SecretsFile().put("B1", emu.credentials)  # the console reads B1 with them (in the bench's folder)
    store.register_device("B1", emu.host, emu.port, emu.profile, CAPS)
    for sid in ("A0", "C2"):
        store.register_device(sid, "127.0.0.1", 9, make_profile(sid), CAPS)
    from deploy.identity import Principal

    eng = Principal("eng", "engineer", "test")
    conflicts = [list(r) for r in load_signal_specs(GRID_NET)["B1"].conflicts]
    rec = store.propose(make_plan(greens=(45, 35), name="load"), eng, conflicts=conflicts,
                        evidence={"kind": "experiment", "kpis": {"travel time": {"mean": 100.0, "ci": 2.0}}})
    store.close()
    return rec.hash, emu


async def _login(base: str, user: str) -> httpx.AsyncClient:
    c = httpx.AsyncClient(base_url=base, timeout=30.0)
    page = await c.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = await c.post("/login", data={"username": user, "password": PASSWORD, "csrf": csrf})
    if r.status_code not in (200, 303) or "wulin_session" not in c.cookies:
        raise SystemExit(f"login as {user} failed: {r.status_code}")
    return c


async def _viewer(c: httpx.AsyncClient, end: float, t: Tally) -> None:
    first = True
    try:
        async with c.stream("GET", "/cockpit/events", timeout=httpx.Timeout(30.0, read=20.0)) as r:
            if r.status_code != 200:
                t.errors.append(f"cockpit events {r.status_code}")
                return
            async for line in r.aiter_lines():
                if line.startswith("data: "):
                    sent = json.loads(line[6:])["published"]
                    if not first:  # the first event is the snapshot at connect time, not news
                        t.updates.append(time.time() - sent)
                    first = False
                if time.monotonic() >= end:
                    return
    except (httpx.HTTPError, ValueError) as exc:
        t.errors.append(f"viewer: {type(exc).__name__}: {exc}")


async def _reviewer(c: httpx.AsyncClient, plan: str, end: float, t: Tally) -> None:
    paths = ["/plans", f"/plans/{plan}", "/cockpit", "/audit"]
    k = 0
    while time.monotonic() < end:
        t0 = time.perf_counter()
        try:
            r = await c.get(paths[k % len(paths)])
            t.pages.append(time.perf_counter() - t0)
            if r.status_code != 200:
                t.errors.append(f"{paths[k % len(paths)]} {r.status_code}")
        except httpx.HTTPError as exc:
            t.errors.append(f"reviewer: {type(exc).__name__}: {exc}")
        k += 1
        await asyncio.sleep(0.2)  # a person reads the page a moment


async def _run(base: str, plan: str, viewers: int, reviewers: int, seconds: float) -> Tally:
    t = Tally()
    watch = [await _login(base, "eng") for _ in range(viewers)]
    review = [await _login(base, "sup") for _ in range(reviewers)]
    end = time.monotonic() + seconds
    await asyncio.gather(*(_viewer(c, end, t) for c in watch), *(_reviewer(c, plan, end, t) for c in review))
    for c in watch + review:
        await c.aclose()
    return t


def _pct(xs: list[float], q: float) -> float:
    return statistics.quantiles(xs, n=100, method="inclusive")[q - 1] if len(xs) > 1 else (xs[0] if xs else float("nan"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--viewers", type=int, default=50)
    ap.add_argument("--reviewers", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="wulin-bench-console-"))
    env = os.environ | {"XDG_CONFIG_HOME": str(folder / "config"), "PYTHONPATH": str(REPO),
                        "WULIN_SECRETS": str(folder / "config" / "device-secrets.json")}
    os.environ["XDG_CONFIG_HOME"], os.environ["WULIN_SECRETS"] = env["XDG_CONFIG_HOME"], env["WULIN_SECRETS"]
    plan, emu = _prepare(folder)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "wulin", "console", "--store", str(folder / "store.sqlite"),
                               "--net", str(REPO / "networks/grid/grid.net.xml"), "--port", str(port)],
                              env=env, cwd=folder, stdout=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                httpx.get(base + "/login", timeout=1.0)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        t = asyncio.run(_run(base, plan, args.viewers, args.reviewers, args.seconds))
    finally:
        server.terminate()
        server.wait(timeout=10)
        emu.stop()  # type: ignore[attr-defined]
    ms = [x * 1000 for x in t.pages]
    up = [x * 1000 for x in t.updates]
    print(f"{args.viewers} cockpit viewers (SSE) + {args.reviewers} reviewers for {args.seconds:g} s on loopback")
    print(f"pages: {len(ms)} requests, p50 {_pct(ms, 50):.0f} ms, p95 {_pct(ms, 95):.0f} ms")
    print(f"updates: {len(up)} deliveries, p50 {_pct(up, 50):.0f} ms, p95 {_pct(up, 95):.0f} ms, "
          f"max {max(up, default=float('nan')):.0f} ms")
    print(f"errors: {len(t.errors)}" + (f" (first: {t.errors[0]})" if t.errors else ""))


if __name__ == "__main__":
    main()
