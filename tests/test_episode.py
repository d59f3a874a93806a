"""The one episode loop: every controller runs, results are reproducible, hooks see the state."""

from __future__ import annotations

import pytest

from controllers.base import available_controllers
from experiments.episode import EpisodeResult, run_episode
from sim.errors import WulinError


# "policy" needs a trained run (tests/agents/test_train.py runs one through the loop)
@pytest.mark.parametrize("name", [n for n in available_controllers() if n != "policy"])
def test_every_controller_runs(tiny_scenario, name) -> None:
    res = run_episode(tiny_scenario, name, seed=2)
    assert isinstance(res, EpisodeResult)
    assert res.controller == name and res.scenario_id == tiny_scenario.id
    assert len(res.trips) > 50
    assert res.network["teleports"] == 0
    assert (res.trips["depart"] >= tiny_scenario.measure_begin).all()
    if name in ("max-pressure", "sotl", "webster-online"):
        assert res.decisions > 0 and res.controller_time > 0
    assert 0 <= res.controller_time < res.wall_time


def test_same_seed_same_trips(tiny_scenario) -> None:
    a = run_episode(tiny_scenario, "max-pressure", seed=5)
    b = run_episode(tiny_scenario, "max-pressure", seed=5)
    assert a.trips["duration"].tolist() == b.trips["duration"].tolist()
    assert a.decisions == b.decisions


def test_hooks_and_observers(tiny_scenario, tmp_path) -> None:
    seen, times = [], []
    res = run_episode(
        tiny_scenario, "sotl", seed=1, output_dir=tmp_path,
        hooks=[lambda sim, t: times.append(t)],
        observers=[lambda st: seen.append((st.time, st.stage.copy(), st.in_transition.copy()))],
    )
    assert len(seen) == res.decisions == len(times)
    assert seen[0][0] == tiny_scenario.begin
    assert any(s[1].any() for s in seen)  # some signal left stage 0
    assert list(tmp_path.glob("*.tripinfo.xml"))  # outputs kept when a folder is given


def test_native_observers(tiny_scenario) -> None:
    seen: list[float] = []
    run_episode(tiny_scenario, "actuated", seed=1, observers=[lambda st: seen.append(st.time)])
    assert len(seen) >= 5 and seen == sorted(seen)


def test_errors(tiny_scenario) -> None:
    with pytest.raises(WulinError, match="unknown controller"):
        run_episode(tiny_scenario, "nope", seed=1)
    with pytest.raises(WulinError, match="unknown scenario"):
        run_episode("no-such-scenario-v1", "field", seed=1)
    with pytest.raises(WulinError, match="not valid JSON"):
        run_episode(tiny_scenario, "fixed-time", seed=1,
                    controller_params={"plans": str(tiny_scenario.source)})


def test_skipping_idle_decisions_changes_nothing(tiny_scenario) -> None:
    """webster-online says when it next has something to say; skipping the act() calls in
    between (no observers) gives the same traffic as calling it every interval."""
    every: list[float] = []
    a = run_episode(tiny_scenario, "webster-online", seed=4)
    b = run_episode(tiny_scenario, "webster-online", seed=4,
                    observers=[lambda st: every.append(st.time)])
    assert a.trips["duration"].tolist() == b.trips["duration"].tolist()
    assert b.decisions == len(every) == int(tiny_scenario.duration)  # every second
    assert 0 < a.decisions < b.decisions / 5


def test_time_breakdown(tiny_scenario) -> None:
    r = run_episode(tiny_scenario, "max-pressure", seed=1)
    assert r.step_time > 0 and r.state_time > 0 and r.controller_time > 0
    assert r.step_time + r.state_time + r.controller_time < r.wall_time
    # the same accounts on the thread's CPU clock
    assert r.step_cpu > 0 and r.state_cpu > 0 and r.controller_cpu > 0
    assert r.step_cpu + r.state_cpu + r.controller_cpu <= r.cpu_time
    s = r.summary()
    assert {"state_time", "step_time", "controller_time", "controller_cpu", "cpu_time"} <= set(s)


def test_loop_counts_are_booked_as_state_reading(tiny_scenario) -> None:
    r = run_episode(tiny_scenario, "webster-online", seed=1)
    assert r.state_time > 0 and r.state_cpu > 0 and r.controller_cpu >= 0
