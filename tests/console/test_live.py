"""The cockpit's live mode: a scenario in SUMO with the deployed plans, frames pushed to viewers,
started and stopped by operators (audited), bounded, and gone on shutdown."""

from __future__ import annotations

import time

import pytest

from console.cockpit import Monitor
from console.live import LiveRun, check_request
from deploy.store import PlanStore
from sim.errors import WulinError
from tests.deploy.conftest import make_plan

pytest.importorskip("libsumo")


def wait_for(monitor: Monitor, key: str, timeout: float = 60.0) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        live = monitor.live()
        if live is not None and key in live:
            return live
        time.sleep(0.1)
    raise AssertionError(f"no live frame with {key!r}: last {monitor.live()}")


def test_live_run_loads_the_deployed_plans_and_sends_frames(store: PlanStore) -> None:
    monitor = Monitor(store, 60.0, 0.1)
    seen: list[dict] = []  # type: ignore[type-arg]
    publish = monitor.publish_live
    monitor.publish_live = lambda f: (seen.append(f), publish(f))  # type: ignore[method-assign]
    run = LiveRun(monitor)
    plan = make_plan(greens=(50, 30), offset=7)
    run.start("grid-am-v1", 300.0, {"B1": plan})
    try:
        with pytest.raises(WulinError, match="running already"):
            run.start("grid-am-v1", 300.0, {})
        frame = wait_for(monitor, "time")
        assert frame["end"] > frame["time"] > 0
        b1 = frame["signals"]["B1"]
        assert isinstance(b1["queue"], int) and b1["queue"] >= 0
        assert set(b1["state"]) <= set("rRgGyYuoOs") and len(b1["state"]) > 0
        started = next(f for f in seen if "started" in f)
        assert started == {"started": "grid-am-v1", "speed": 300.0, "plans": ["B1"]}
        states = {f["signals"]["B1"]["state"] for f in seen if "signals" in f}
        assert states <= {state for _, state, _ in plan.sumo_phases()}  # B1 runs the deployed plan
        first = frame["time"]
        assert wait_for(monitor, "time")["time"] >= first
        assert monitor.payload()["live"]["signals"].keys() == frame["signals"].keys()
    finally:
        run.stop()
    assert not run.running and not run._proc.is_alive()
    assert monitor.live()["done"] == "stopped"


def test_bad_requests_are_one_clear_error() -> None:
    with pytest.raises(WulinError, match="scenario id"):
        check_request("../etc/passwd", 10)
    with pytest.raises(WulinError, match="speed"):
        check_request("grid-am-v1", 5000)


def test_an_unknown_scenario_shows_as_an_error_in_the_cockpit(store: PlanStore) -> None:
    monitor = Monitor(store, 60.0, 0.1)
    run = LiveRun(monitor)
    run.start("no-such-scenario-v1", 10.0, {})
    try:
        assert "no-such-scenario-v1" in wait_for(monitor, "error")["error"]
    finally:
        run.stop()


def test_operators_start_and_stop_it_over_http_and_it_is_audited(client_for, app, store: PlanStore) -> None:  # type: ignore[no-untyped-def]
    vic = client_for("vic")
    r = vic.post("/cockpit/live", data={"csrf": vic.csrf, "scenario": "grid-am-v1", "speed": "100"},
                 follow_redirects=False)
    assert r.status_code == 403 and not app.state.console.live.running
    ann = client_for("ann")
    assert 'id="live-start"' in ann.get("/cockpit").text
    r = ann.post("/cockpit/live", data={"csrf": ann.csrf, "scenario": "grid-am-v1", "speed": "300"},
                 follow_redirects=False)
    assert r.status_code == 303
    try:
        wait_for(app.state.console.monitor, "time")
        assert 'id="live-stop"' in ann.get("/cockpit").text
        assert ann.get("/cockpit/status").json()["live"]["signals"]["B1"]["state"]
    finally:
        r = ann.post("/cockpit/live/stop", data={"csrf": ann.csrf}, follow_redirects=False)
    assert r.status_code == 303 and not app.state.console.live.running
    logged = [(e.actor, e.channel, e.action) for e in store.audit()]
    assert ("ann", "web", "live.start") in logged and ("ann", "web", "live.stop") in logged
    assert ("vic", "web", "web.refused") in logged
    r = ann.post("/cockpit/live", data={"csrf": ann.csrf, "scenario": "x y", "speed": "3"})
    assert r.status_code == 400 and "scenario id" in r.text


def test_console_started_with_live_runs_it_in_the_name_of_who_logged_in(store: PlanStore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from console.app import create_app
    from tests.deploy.conftest import ANN

    from .conftest import config

    app = create_app(config(tmp_path, live_scenario="grid-am-v1", live_speed=300.0), store, monitor=False,
                     live_actor=ANN)
    with TestClient(app):
        wait_for(app.state.console.monitor, "time")
        assert app.state.console.live.running
    assert not app.state.console.live.running  # stopped with the console
    entry = [e for e in store.audit() if e.action == "live.start"][-1]
    assert (entry.actor, entry.channel, entry.detail["scenario"]) == (ANN.name, ANN.channel, "grid-am-v1")
