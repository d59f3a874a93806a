"""DistrictState: layout index arrays and reads that match SUMO's own getters."""

from __future__ import annotations

import numpy as np
import pytest

from sim.errors import WulinError
from sim.scenario import Scenario
from sim.simulation import Simulation
from sim.state import LANE_VARIABLES, DistrictLayout, StateReader, lane_variables
from sim.topology import load_signal_specs


@pytest.fixture(scope="module")
def layout(tiny_scenario: Scenario) -> DistrictLayout:
    return DistrictLayout.from_specs(load_signal_specs(tiny_scenario.net_file))


def test_layout_indexes(layout: DistrictLayout) -> None:
    assert layout.n_signals == 4
    assert layout.in_ptr[-1] == layout.n_in and layout.mov_ptr[-1] == layout.n_movements
    for s, spec in enumerate(layout.specs):
        sl = layout.signal_slice(s)
        assert layout.in_lanes[sl] == spec.in_lanes
        movs = range(layout.mov_ptr[s], layout.mov_ptr[s + 1])
        for k, m in zip(movs, spec.movements, strict=True):
            assert layout.in_lanes[layout.mov_in[k]] == m.in_lane
            assert layout.out_lanes[layout.mov_out[k]] == m.out_lane
            assert layout.mov_link[k] == m.index
        for k in range(spec.n_stages):
            assert tuple(np.flatnonzero(layout.stage_green[s, k])) == spec.stage_links(k)
        assert not layout.stage_green[s, spec.n_stages :].any()


@pytest.mark.parametrize("backend", ["libsumo", "traci"])
def test_read_matches_getters(
    tiny_scenario: Scenario, layout: DistrictLayout, backend: str
) -> None:
    with Simulation(tiny_scenario, seed=2, backend=backend) as sim:  # type: ignore[arg-type]
        reader = StateReader(sim, layout)
        state = None
        for t in (120, 125, 300):
            sim.step_until(tiny_scenario.begin + t)
            state = reader.read(into=state)
            lane = sim.conn.lane
            for i, lid in enumerate(layout.in_lanes):
                assert state.queue[i] == lane.getLastStepHaltingNumber(lid)
                assert state.count[i] == lane.getLastStepVehicleNumber(lid)
                assert state.speed[i] == pytest.approx(lane.getLastStepMeanSpeed(lid), rel=1e-5)
                assert state.waiting[i] == pytest.approx(lane.getWaitingTime(lid), rel=1e-5)
            for i, lid in enumerate(layout.out_lanes):
                assert state.out_count[i] == lane.getLastStepVehicleNumber(lid)
            tl = sim.conn.trafficlight
            for s, spec in enumerate(layout.specs):
                phase_state = tl.getRedYellowGreenState(spec.id)
                if not state.in_transition[s]:
                    assert spec.stages[state.stage[s]] == phase_state
                assert state.stage_time[s] == tl.getSpentDuration(spec.id)
            assert state.time == tiny_scenario.begin + t
        assert state is not None and state.count.sum() > 0


def test_reset_renews_traci_subscriptions(tiny_scenario: Scenario, layout: DistrictLayout) -> None:
    with Simulation(tiny_scenario, seed=2, backend="traci") as sim:
        reader = StateReader(sim, layout)
        sim.step_until(tiny_scenario.begin + 200)
        before = reader.read().count.copy()
        sim.reset()
        sim.step_until(tiny_scenario.begin + 200)
        assert np.array_equal(reader.read().count, before)


def test_actuator_stages_override_program(tiny_scenario: Scenario, layout: DistrictLayout) -> None:
    with Simulation(tiny_scenario, seed=2) as sim:
        reader = StateReader(sim, layout)
        stage = np.arange(layout.n_signals, dtype=np.int32) % 2
        st = reader.read(
            stage=stage, stage_time=np.full(layout.n_signals, 7.0), in_transition=np.ones(4, bool)
        )
        assert (
            st.stage.tolist() == stage.tolist()
            and (st.stage_time == 7).all()
            and st.in_transition.all()
        )


@pytest.mark.parametrize("backend", ["libsumo", "traci"])
@pytest.mark.parametrize("variables", [("count",), ("queue", "count"), LANE_VARIABLES])
def test_batched_read_equals_per_lane_calls(
    tiny_scenario: Scenario, layout: DistrictLayout, backend: str, variables: tuple[str, ...]
) -> None:
    """The batched reader gives exactly (float32 of) what one getter call per lane gives; the
    variables not asked for stay 0; the program stages match a per-signal read."""
    getters = {"queue": "getLastStepHaltingNumber", "count": "getLastStepVehicleNumber",
               "speed": "getLastStepMeanSpeed", "waiting": "getWaitingTime"}
    with Simulation(tiny_scenario, seed=3, backend=backend) as sim:  # type: ignore[arg-type]
        reader = StateReader(sim, layout, variables)
        reader.subscribe()
        state = None
        seen = 0.0
        for t in (90, 200, 333, 500):
            sim.step_until(tiny_scenario.begin + t)
            state = reader.read(into=state)
            lane, tl = sim.conn.lane, sim.conn.trafficlight
            for var in LANE_VARIABLES:
                per_lane = [getattr(lane, getters[var])(x) for x in layout.in_lanes]
                want = np.array(per_lane, np.float32) if var in variables else np.zeros(len(per_lane))
                assert np.array_equal(getattr(state, var), want), var
            out = [lane.getLastStepVehicleNumber(x) for x in layout.out_lanes]
            assert np.array_equal(state.out_count, np.array(out, np.float32))
            spent = [tl.getSpentDuration(s) for s in layout.signal_ids]
            assert np.array_equal(state.stage_time, np.array(spent, np.float32))
            for s, sid in enumerate(layout.signal_ids):
                phase = tl.getPhase(sid)
                assert state.stage[s] == reader._phase_stage[s][phase]
                assert state.in_transition[s] == reader._phase_transition[s][phase]
            seen += float(state.count.sum())
        assert seen > 0


@pytest.mark.parametrize("by_edge", [True, False])
def test_counts_by_edge_equal_lane_counts(grid_scenario: Scenario, by_edge: bool) -> None:
    """Counts read edge first (only the occupied edges' lanes) equal one getter per lane, on
    a network of two-lane edges; the reader picks edge first while few edges are occupied."""
    layout = DistrictLayout.from_specs(load_signal_specs(grid_scenario.net_file))
    with Simulation(grid_scenario, seed=2) as sim:
        reader = StateReader(sim, layout, ("queue", "count"))
        assert len(reader._edges) < len(reader._lanes)
        reader.read()  # at the start the network is empty: the next read goes by edge
        assert reader._by_edge
        seen = 0.0
        for t in (120, 600, 1500, 2400):
            sim.step_until(grid_scenario.begin + t)
            reader._by_edge = by_edge
            state = reader.read()
            lane = sim.conn.lane
            want = [lane.getLastStepVehicleNumber(x) for x in layout.in_lanes]
            assert np.array_equal(state.count, np.array(want, np.float32))
            out = [lane.getLastStepVehicleNumber(x) for x in layout.out_lanes]
            assert np.array_equal(state.out_count, np.array(out, np.float32))
            halting = [lane.getLastStepHaltingNumber(x) for x in layout.in_lanes]
            assert np.array_equal(state.queue, np.array(halting, np.float32))
            seen += float(state.count.sum())
        assert seen > 0


def test_lane_variables_follow_state_fields() -> None:
    assert lane_variables(None) == LANE_VARIABLES
    assert lane_variables(("count", "out_count", "stage", "in_transition")) == ("count",)
    assert lane_variables(("queue", "stage_time")) == ("queue", "count")
    assert lane_variables(("waiting", "speed")) == ("count", "speed", "waiting")


def test_unknown_lane_variable_is_one_clear_error(tiny_scenario: Scenario,
                                                  layout: DistrictLayout) -> None:
    with pytest.raises(WulinError, match="unknown lane variable.*'occupancy'"):
        StateReader(Simulation(tiny_scenario, seed=1), layout, ("occupancy",))
