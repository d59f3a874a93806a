"""The red-time limit under a learned policy: hand-built states and a policy that never changes."""

from __future__ import annotations

import numpy as np
import pytest

from sim.observations import SignalPadding
from sim.red_limit import RedLimit
from sim.scenario import Scenario
from sim.state import DistrictLayout, DistrictState
from sim.topology import load_signal_specs


@pytest.fixture(scope="module")
def padding(tiny_scenario: Scenario) -> SignalPadding:
    return SignalPadding.build(DistrictLayout.from_specs(load_signal_specs(tiny_scenario.net_file)),
                               max_green=60.0, min_green=5.0)


def _lanes_of_stage(p: SignalPadding, s: int, k: int) -> np.ndarray:
    return np.flatnonzero(p.stage_in[s * p.n_stages + k] > 0)


def test_a_starved_stage_with_queued_vehicles_goes_next(padding: SignalPadding) -> None:
    lay = padding.layout
    guard = RedLimit(padding, max_red=60.0)
    st = DistrictState.empty(lay)
    keep = np.full(lay.n_signals, -1, np.int32)
    st.queue[_lanes_of_stage(padding, 0, 1)] = 2.0  # signal 0, stage 1 has halted vehicles
    st.stage_time[:] = 30.0
    for t in (0.0, 30.0, 59.0):  # stage 0 green at every signal; stage 1 red 59 s
        st.time = t
        assert guard.apply(keep, st).tolist() == keep.tolist()
    st.time = 60.0
    got = guard.apply(keep, st)
    assert got[0] == 1 and (got[1:] == -1).all()  # only signal 0 has demand on its red stage
    assert guard.forced == 1


def test_the_guard_waits_for_minimum_green_and_transitions(padding: SignalPadding) -> None:
    lay = padding.layout
    guard = RedLimit(padding, max_red=10.0)
    st = DistrictState.empty(lay)
    keep = np.full(lay.n_signals, -1, np.int32)
    st.queue[_lanes_of_stage(padding, 0, 1)] = 1.0
    st.stage_time[:] = 2.0  # minimum green (5 s) not served yet
    guard.apply(keep, st)
    st.time = 20.0
    assert guard.apply(keep, st)[0] == -1
    st.in_transition[0], st.stage_time[0] = True, 30.0  # yellow: no request either
    st.time = 21.0
    assert guard.apply(keep, st)[0] == -1
    st.in_transition[0] = False
    st.time = 22.0
    assert guard.apply(keep, st)[0] == 1
    st.stage[0] = 1  # stage 1 now green: it no longer waits
    st.time = 23.0
    assert guard.apply(keep, st)[0] == -1 and guard.waited[0, 1] == 0.0


def test_no_limit_and_no_demand_change_nothing(padding: SignalPadding) -> None:
    lay = padding.layout
    st = DistrictState.empty(lay)
    st.stage_time[:] = 30.0
    decision = np.zeros(lay.n_signals, np.int32)
    off = RedLimit(padding, max_red=0.0)
    on = RedLimit(padding, max_red=5.0)
    for t in (0.0, 100.0):
        st.time = t
        assert off.apply(decision, st).tolist() == decision.tolist()
        assert on.apply(decision, st).tolist() == decision.tolist()  # nobody waits at a red


def _longest_red_with_queue(tiny_scenario: Scenario, max_red: float) -> tuple[float, int]:
    """A policy that always asks for stage 0 (no maximum green), for ten minutes: the longest a stage holding
    halted vehicles had been red at a decision, and how often the guard stepped in."""
    from sim.env import WulinParallelEnv

    env = WulinParallelEnv(tiny_scenario, config={"episode_seconds": 600, "min_green": 5,
                                                  "max_red": max_red, "delta_t": 5, "max_green": 3600})
    try:
        env.reset(seed=1)
        eng, p = env.engine, env.engine.padding
        longest = 0.0
        while env.agents:
            env.step({ag: 0 for ag in env.possible_agents})
            queued = (p.stage_in @ (eng.state.queue > 0)).reshape(p.stage_valid.shape) > 0
            waited = eng.red_limit.waited[queued & p.stage_valid]
            longest = max(longest, float(waited.max(initial=0.0)))
        return longest, eng.red_limit.forced
    finally:
        env.close()


def test_env_with_max_red_serves_the_queues_a_policy_ignores(tiny_scenario: Scenario) -> None:
    free, forced_free = _longest_red_with_queue(tiny_scenario, 0.0)
    bound, forced = _longest_red_with_queue(tiny_scenario, 40.0)
    assert forced_free == 0 and forced > 0
    assert free > 300 and bound < free / 4
