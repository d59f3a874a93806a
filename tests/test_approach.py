"""Approach bins (speed-binned counts per lane segment), the neighbour and type observations,
and the network program's clearance: against plain per-vehicle reads and hand-built cases."""

from __future__ import annotations

import numpy as np
import pytest

from sim.approach import BINS, SEGMENTS, SPEED_BINS, bin_index, segment_capacity
from sim.errors import WulinError
from sim.observations import SignalPadding, needed_variables, observe
from sim.scenario import Scenario, load_scenario
from sim.simulation import Simulation
from sim.state import APPROACH, DistrictLayout, DistrictState, StateReader, lane_variables
from sim.topology import load_signal_specs


@pytest.fixture(scope="module")
def layout(tiny_scenario: Scenario) -> DistrictLayout:
    return DistrictLayout.from_specs(load_signal_specs(tiny_scenario.net_file))


def test_bins_by_distance_and_speed() -> None:
    dist = np.array([0.0, 29.9, 30.0, 89.0, 150.0, 199.9, 200.0, 500.0])
    share = np.array([0.0, 0.5, 0.1, 0.3, 0.29, 1.0, 0.0, 1.0])
    n_speed = len(SPEED_BINS)
    assert bin_index(dist, share).tolist() == [0, 1, n_speed, n_speed + 1, 2 * n_speed, 2 * n_speed + 1, -1, -1]
    cap = segment_capacity(np.array([300.0, 45.0]))
    assert cap.shape == (2, BINS)
    assert cap[0].tolist() == pytest.approx([4, 4, 8, 8, 110 / 7.5, 110 / 7.5])
    assert cap[1].tolist() == pytest.approx([4, 4, 2, 2, 1, 1])  # a 45 m lane: 15 m in segment 2, none in 3


def _reference_bins(sim: Simulation, layout: DistrictLayout) -> np.ndarray:
    """Every vehicle of every in-lane, one getter at a time, binned by hand."""
    want = np.zeros((layout.n_in, BINS))
    limits = {ln: v for sp in layout.specs for ln, v in sp.lane_speeds.items()}
    for i, lane in enumerate(layout.in_lanes):
        for v in sim.conn.lane.getLastStepVehicleIDs(lane):
            d = float(layout.in_lane_length[i]) - sim.conn.vehicle.getLanePosition(v)
            seg = next((k for k in range(len(SEGMENTS) - 1) if SEGMENTS[k] <= d < SEGMENTS[k + 1]), None)
            if seg is None:
                continue
            fast = sim.conn.vehicle.getSpeed(v) / limits[lane] >= SPEED_BINS[1]
            want[i, seg * len(SPEED_BINS) + int(fast)] += 1
    return want


@pytest.mark.parametrize("backend", ["libsumo", "traci"])
def test_reader_bins_match_per_vehicle_reads(tiny_scenario: Scenario, layout: DistrictLayout,
                                             backend: str) -> None:
    with Simulation(tiny_scenario, seed=3, backend=backend) as sim:  # type: ignore[arg-type]
        reader = StateReader(sim, layout, ("queue", APPROACH))
        state = DistrictState.empty(layout)
        seen = 0.0
        for t in (60, 180, 185, 400):
            sim.step_until(tiny_scenario.begin + t)
            reader.read(into=state)
            want = _reference_bins(sim, layout)
            assert state.approach.tolist() == want.tolist()
            assert (state.approach.sum(axis=1) <= state.count).all()
            seen += want.sum()
        assert seen > 20  # the check saw traffic


def test_approach_is_opt_in(tiny_scenario: Scenario, layout: DistrictLayout) -> None:
    assert APPROACH not in lane_variables(None)
    assert APPROACH in lane_variables(("count", APPROACH))
    assert needed_variables(("approach",), "queue") == ("queue", "count", APPROACH)
    with Simulation(tiny_scenario, seed=3) as sim:
        sim.step_until(tiny_scenario.begin + 180)
        state = StateReader(sim, layout).read()
        assert state.count.sum() > 0 and state.approach.sum() == 0


def test_approach_observation_scales_by_segment_capacity(layout: DistrictLayout) -> None:
    p = SignalPadding.build(layout)
    st = DistrictState.empty(layout)
    st.approach[0, 0] = 2.0  # two crawling vehicles in the first 30 m of in-lane 0
    st.approach[0, BINS - 1] = 1000.0  # more than the segment holds: clipped at 1
    obs = observe(p, ("approach",), st)
    assert obs.shape == (layout.n_signals, p.n_lanes * BINS)
    s = int(layout.in_lane_signal[0])
    assert obs[s, 0] == pytest.approx(2.0 / p.approach_capacity[s, 0, 0])
    assert obs[s, BINS - 1] == 1.0
    assert obs.sum() == pytest.approx(obs[s, 0] + 1.0)


def test_upstream_observation_follows_the_feeds() -> None:
    """On the demo grid: vehicles on one upstream lane show at the lanes they feed, and under
    'green now' only while the upstream movement is green."""
    from sim.env import district_layout
    from sim.feeds import feeds

    lay = district_layout(load_scenario("grid-am-v1"))
    p = SignalPadding.build(lay)
    rows = feeds(lay)
    f = rows[0]
    up_lane = int(lay.mov_in[f.movement])
    st = DistrictState.empty(lay)
    st.count[up_lane] = 10.0
    link = int(lay.mov_link[f.movement])
    green = [k for k in range(int(lay.n_stages[f.signal])) if lay.stage_green[f.signal, k, link]]
    red = [k for k in range(int(lay.n_stages[f.signal])) if not lay.stage_green[f.signal, k, link]]
    b = int(lay.in_lane_signal[f.fed])
    col = f.fed - int(lay.in_ptr[b])
    expected = sum(r.share for r in rows if r.fed == f.fed and lay.mov_in[r.movement] == up_lane) * 10.0
    st.stage[f.signal] = green[0]
    obs = observe(p, ("upstream",), st)
    assert obs[b, col] == pytest.approx(min(expected / p.lane_capacity[b, col], 1.0))
    assert obs[b, p.n_lanes + col] == pytest.approx(obs[b, col])  # all of it has green now
    st.stage[f.signal] = red[0]
    obs_red = observe(p, ("upstream",), st)
    assert obs_red[b, col] == obs[b, col] and obs_red[b, p.n_lanes + col] <= obs[b, col]
    others = np.ones(obs.shape, bool)
    fed_cols = {(int(lay.in_lane_signal[r.fed]), r.fed - int(lay.in_ptr[lay.in_lane_signal[r.fed]]))
                for r in rows if lay.mov_in[r.movement] == up_lane}
    for sb, c in fed_cols:
        others[sb, c] = others[sb, p.n_lanes + c] = False
    assert not obs[others].any()  # nothing else is fed by that lane


def test_signal_type_is_one_hot_per_kind() -> None:
    from sim.env import district_layout

    lay = district_layout(load_scenario("wulin-am-peak-v1"))
    p = SignalPadding.build(lay)
    obs = observe(p, ("signal-type",), DistrictState.empty(lay))
    assert (obs.sum(axis=1) == 1).all()
    kinds = {}
    for s in range(lay.n_signals):
        key = (int(lay.n_stages[s]), int(lay.in_ptr[s + 1] - lay.in_ptr[s]))
        kinds.setdefault(key, obs[s].tolist())
        assert obs[s].tolist() == kinds[key]  # same kind, same one-hot; another kind, another
    assert obs.shape[1] == len(kinds)


@pytest.mark.parametrize("scenario", ["grid-am-v1", "wulin-am-peak-v1"])
def test_program_clearance_is_the_plans(scenario: str) -> None:
    """The env's "program" clearance equals the intergreen Webster keeps from the program."""
    from controllers.webster.plans import network_intergreen
    from sim.env import district_layout
    from sim.env_config import EnvConfig

    lay = district_layout(load_scenario(scenario))
    for spec in lay.specs:
        assert spec.clearance == pytest.approx(network_intergreen(spec))
    params = EnvConfig(yellow="program", all_red="program").actuator_params(lay)
    assert params["yellow"].tolist() == [sp.clearance[0] for sp in lay.specs]
    assert params["all_red"].tolist() == [sp.clearance[1] for sp in lay.specs]
    fixed = EnvConfig(yellow=4, all_red=1).actuator_params(lay)
    assert set(fixed["yellow"]) == {4.0} and set(fixed["all_red"]) == {1.0}


def test_clearance_must_be_seconds_or_program() -> None:
    from sim.env_config import EnvConfig

    with pytest.raises(WulinError, match="all_red"):
        EnvConfig.from_dict({"all_red": "programme"})
    with pytest.raises(WulinError, match="yellow"):
        EnvConfig.from_dict({"yellow": -1})
