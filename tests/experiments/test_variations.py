"""Each variation really changes the simulation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.spec import Closure, Incident, SignalFailure, Variation
from experiments.variations import prepare
from sim import variations as simvar
from sim.scenario import Scenario
from sim.simulation import Simulation


def _drive(scenario: Scenario, variation: Variation, workdir: Path, until: float,
           probe: object, every: float = 5.0, seed: int = 1) -> list:
    """Run with the variation's hook every ``every`` s; collect ``probe(sim, t)`` each call."""
    prep = prepare(scenario, variation, workdir)
    out = []
    with Simulation(prep.scenario, seed=seed, additional_files=prep.additional_files,
                    extra_args=prep.extra_args) as sim:
        t = sim.time
        while t < until:
            sim.step_until(t + every)
            t = sim.time
            if prep.hook is not None:
                prep.hook(sim, t)
            out.append((t, probe(sim, t)))  # type: ignore[operator]
        log = prep.hook.log if prep.hook is not None else []
    return [out, log]


def test_closed_lane_carries_no_vehicles_while_closed(tiny_scenario: Scenario, tmp_path: Path) -> None:
    lane = "A0B0_0"
    var = Variation("closed", closures=(Closure(lanes=(lane,), at=100.0, duration=200.0),))
    samples, log = _drive(tiny_scenario, var, tmp_path, 420,
                          lambda sim, t: simvar.lane_vehicle_counts(sim, [lane])[0])
    before = [n for t, n in samples if t < 100]
    closed = [n for t, n in samples if 160 <= t < 300]  # 60 s for vehicles already on it to leave
    after = [n for t, n in samples if t > 330]
    assert sum(before) > 0, "the lane should carry traffic before the closure"
    assert closed and max(closed) == 0
    assert sum(after) > 0, "traffic should use the lane again once reopened"
    assert log[0]["started"] == 100.0 and log[0]["ended"] == 300.0


def test_edge_closure_reroutes_around(tiny_scenario: Scenario, tmp_path: Path) -> None:
    edge = "A0B0"
    var = Variation("closed", closures=(Closure(edges=(edge,), at=60.0),))
    samples, _ = _drive(tiny_scenario, var, tmp_path, 300,
                        lambda sim, t: simvar.lane_vehicle_counts(sim, [f"{edge}_0", "A0A1_0"]))
    assert max(n[0] for t, n in samples if t >= 120) == 0
    # the left0A0 -> B0right0 flow now goes north first
    assert max(n[1] for t, n in samples if t >= 120) > 0


def test_incident_stops_a_vehicle(tiny_scenario: Scenario, tmp_path: Path) -> None:
    lane = "left0A0_0"
    var = Variation("inc", incidents=(Incident(lane=lane, at=60.0, duration=120.0, position=120.0),))
    samples, log = _drive(tiny_scenario, var, tmp_path, 260, lambda sim, t: {
        v: (sim.conn.vehicle.getSpeed(v), sim.conn.vehicle.getLanePosition(v))
        for v in sim.conn.lane.getLastStepVehicleIDs(lane)})
    vid = log[0]["detail"]
    assert isinstance(vid, str) and log[0]["started"] is not None
    start = log[0]["started"]
    stopped = [s[vid] for t, s in samples if start + 30 <= t <= start + 110 and vid in s]
    assert stopped and all(speed < 0.1 for speed, _ in stopped)
    assert all(abs(pos - 120.0) < 1.0 for _, pos in stopped)
    # vehicles behind it queue on the lane
    assert max(len(s) for t, s in samples if start + 30 <= t <= start + 110) >= 3


def test_signal_failure_flashes_then_restores(tiny_scenario: Scenario, tmp_path: Path) -> None:
    var = Variation("fail", signal_failures=(SignalFailure(signal="B1", at=50.0, duration=100.0),))
    samples, log = _drive(tiny_scenario, var, tmp_path, 250,
                          lambda sim, t: (simvar.signal_state(sim, "B1"), sim.conn.trafficlight.getProgram("B1")))
    during = [s for t, (s, _) in samples if 50 <= t < 150]
    after = [(s, p) for t, (s, p) in samples if t >= 150]
    assert during and all(set(s) == {"o"} for s in during)
    assert after and all("o" not in s and p == "0" for s, p in after)
    assert log[0]["ended"] == 150.0


def test_demand_scale_inserts_more_vehicles(tiny_scenario: Scenario) -> None:
    from experiments.episode import run_episode
    from experiments.spec import effective_scenario

    def inserted(scale: float) -> float:
        sc = effective_scenario(tiny_scenario, Variation("s", scale=scale, window=(0.0, 300.0)))
        return run_episode(sc, "field", seed=1).network["inserted"]

    one, two = inserted(1.0), inserted(2.0)
    assert two > 1.6 * one


def test_plan_file_becomes_the_running_program(tiny_scenario: Scenario, tmp_path: Path) -> None:
    from controllers.plan import TimingPlan
    from sim.topology import load_signal_specs

    spec = load_signal_specs(tiny_scenario.net_file)["A0"]
    plan = TimingPlan.from_sumo_phases("A0", [(p.duration, p.state) for p in spec.phases],
                                       name="whatif-test")
    longer = plan.with_splits([g + 20 for g in plan.splits])
    path = tmp_path / "plans.json"
    path.write_text(json.dumps([longer.to_dict()]))
    var = Variation("plan", plan=path)
    samples, _ = _drive(tiny_scenario, var, tmp_path / "work", 20,
                        lambda sim, t: sim.conn.trafficlight.getProgram("A0"))
    assert samples[-1][1] == "whatif"


@pytest.mark.parametrize("hook_every", [5.0, 60.0])
def test_events_fire_at_first_call_at_or_after_declared_time(tiny_scenario: Scenario, tmp_path: Path,
                                                             hook_every: float) -> None:
    var = Variation("c", closures=(Closure(lanes=("A0B0_0",), at=100.0, duration=30.0),
                                   Closure(lanes=("A1B1_0",), at=100.0, duration=10.0)))
    _, log = _drive(tiny_scenario, var, tmp_path, 300, lambda sim, t: None, every=hook_every)
    if hook_every == 5.0:
        assert (log[0]["started"], log[0]["ended"]) == (100.0, 130.0)
        assert (log[1]["started"], log[1]["ended"]) == (100.0, 110.0)
    else:
        assert (log[0]["started"], log[0]["ended"]) == (120.0, 180.0)
        # the whole 10 s closure falls between two calls: recorded, never applied
        assert log[1]["started"] == log[1]["ended"] == 120.0


def test_native_controllers_get_events_on_time(tiny_scenario: Scenario, tmp_path: Path) -> None:
    """SUMO-native controllers advance in 60 s chunks; the loop also stops at each event's
    declared start and end, so events apply on time, not at the next chunk."""
    from experiments.episode import run_episode

    t0 = tiny_scenario.begin
    var = Variation("c", closures=(Closure(lanes=("A0B0_0",), at=t0 + 107.0, duration=23.0),))
    prep = prepare(tiny_scenario, var, tmp_path)
    assert prep.hook is not None
    assert prep.hook.next_time(t0) == t0 + 107.0
    run_episode(prep.scenario, "field", seed=1, hooks=[prep.hook],
                additional_files=prep.additional_files, extra_args=prep.extra_args)
    log = prep.hook.log
    assert (log[0]["started"], log[0]["ended"]) == (t0 + 107.0, t0 + 130.0)
    assert prep.hook.next_time(t0 + 200.0) == float("inf")
