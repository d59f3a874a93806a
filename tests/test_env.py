"""Conformance and behaviour of the Gymnasium and PettingZoo environments (sim/env.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from sim.env import EnvConfig, SplitSchedule, WulinEnv, WulinParallelEnv, parallel_env
from sim.errors import WulinError
from sim.observations import SignalPadding, available_observations, available_rewards, observe
from sim.state import DistrictState

SHORT = {"episode_seconds": 120}


def test_gymnasium_check_env_single_signal(tiny_scenario):
    from gymnasium.utils.env_checker import check_env

    env = WulinEnv(tiny_scenario, signals="A0", config=SHORT)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # any checker warning is a failure
            check_env(env, skip_render_check=True)
    finally:
        env.close()


def test_gymnasium_check_env_centralised_splits(tiny_scenario):
    from gymnasium.utils.env_checker import check_env

    env = WulinEnv(tiny_scenario, config={**SHORT, "action_mode": "splits", "cycle": 60})
    try:
        check_env(env, skip_render_check=True)
        assert env.action_space.shape == (env.engine.layout.n_signals * env.engine.n_actions,)
    finally:
        env.close()


def test_sb3_check_env(tiny_scenario):
    from stable_baselines3.common.env_checker import check_env

    env = WulinEnv(tiny_scenario, signals="B1", config=SHORT)
    try:
        check_env(env, warn=True)
    finally:
        env.close()


def test_pettingzoo_parallel_api(tiny_scenario):
    from pettingzoo.test import parallel_api_test

    env = WulinParallelEnv(tiny_scenario, config=SHORT)
    try:
        parallel_api_test(env, num_cycles=40)
    finally:
        env.close()


def test_pettingzoo_parallel_seed(tiny_scenario):
    from pettingzoo.test import parallel_seed_test

    # two envs step side by side in one process: libsumo allows one simulation, so traci
    made: list[WulinParallelEnv] = []

    def fn() -> WulinParallelEnv:
        made.append(parallel_env(scenario=tiny_scenario, config={"episode_seconds": 60}, backend="traci"))
        return made[-1]

    try:
        parallel_seed_test(fn, num_cycles=15)
    finally:
        for e in made:
            e.close()


def test_gymnasium_ids_are_registered():
    import gymnasium as gym

    assert "wulin/District-v0" in gym.envs.registration.registry
    assert "wulin/Signal-v0" in gym.envs.registration.registry


def test_same_seed_same_episode_different_seed_differs(tiny_scenario):
    env = WulinParallelEnv(tiny_scenario, config={"episode_seconds": 300})
    try:
        def run(seed: int) -> list[float]:
            env.reset(seed=seed)
            out = []
            k = 0
            while env.agents:
                acts = {a: (k // 4) % 2 for a in env.agents}
                _, r, *_ = env.step(acts)
                out.append(sum(r.values()))
                k += 1
            return out

        a, b, c = run(3), run(3), run(4)
        assert a == b
        assert a != c
        assert len(a) == 300 // 5
    finally:
        env.close()


def test_stage_actions_reach_the_actuator(tiny_scenario):
    env = WulinParallelEnv(tiny_scenario, config={"episode_seconds": 100, "min_green": 5})
    try:
        env.reset(seed=1)
        eng = env.engine
        assert (eng.actuator.stage == 0).all()
        for _ in range(4):  # ask for stage 1 long enough to get through yellow and all-red
            env.step({a: 1 for a in env.agents})
        assert (eng.actuator.stage == 1).all()
        obs, *_ = env.step({a: 1 for a in env.agents})
        K = eng.n_actions
        o = obs[env.possible_agents[0]]
        assert o[1] == 1.0 and o[0] == 0.0  # the stage one-hot shows stage 1
        assert o[K] == 0.0  # not in transition
    finally:
        env.close()


def test_parallel_actions_of_any_scalar_kind(tiny_scenario):
    """Actions as ints, numpy scalars, 0-d or one-element arrays (mixed) reach the same stages;
    a missing agent asks for stage 0; an action that is no stage index is one clear error."""
    env = WulinParallelEnv(tiny_scenario, config={"episode_seconds": 100, "min_green": 5})
    try:
        env.reset(seed=1)
        agents = env.possible_agents
        kinds = [1, np.int64(1), np.array(1), np.array([1])]
        acts = {a: kinds[i % len(kinds)] for i, a in enumerate(agents[1:])}
        for _ in range(4):
            _, _, _, _, infos = env.step(acts)
        stage = env.engine.actuator.stage
        assert stage[0] == 0 and (stage[1:] == 1).all()
        assert not infos[agents[0]]["action_mask"].flags.writeable
        with pytest.raises(WulinError, match=repr(agents[0])):
            env.step({agents[0]: np.array([1, 2])})
    finally:
        env.close()


def test_padded_actions_keep_the_stage(tiny_scenario):
    """A signal with fewer stages than the largest one treats padded actions as 'keep'."""
    from sim.env import stage_decision

    d = stage_decision(np.array([0, 3, 3, 1]), np.array([2, 4, 2, 2]))
    assert d.dtype == np.int32 and d.tolist() == [0, 3, -1, 1]
    # the current stage keeps (max-pressure's -1), and so does any action during a transition
    d = stage_decision(np.array([0, 3, 1, 1]), np.array([2, 4, 2, 2]), stage=np.array([0, 1, 0, 0]),
                       in_transition=np.array([False, False, False, True]))
    assert d.tolist() == [-1, 3, 1, -1]
    env = WulinParallelEnv(tiny_scenario, config={"episode_seconds": 60})
    try:
        _, infos = env.reset(seed=1)
        K = env.engine.n_actions
        for i, agent in enumerate(env.possible_agents):
            mask = infos[agent]["action_mask"]
            assert mask.dtype == np.int8 and mask.shape == (K,)
            assert mask.sum() == env.engine.layout.n_stages[i]
    finally:
        env.close()


def test_padding_for_heterogeneous_signals(tiny_scenario):
    """Signals with different lane and stage counts share one padded observation width."""
    from sim.env import district_layout
    from sim.state import DistrictLayout

    lay = district_layout(tiny_scenario)
    spec0 = lay.specs[0]
    # a fake smaller signal: the first stage only
    from dataclasses import replace

    small = replace(spec0, id="zz-small", stages=spec0.stages[:1], stage_phases=spec0.stage_phases[:1])
    mixed = DistrictLayout.from_specs([*lay.specs, small])
    p = SignalPadding.build(mixed)
    assert p.stage_valid[-1].tolist() == [True] + [False] * (p.n_stages - 1)
    st = DistrictState.empty(mixed)
    st.count[:] = 3
    names = tuple(available_observations())
    o = observe(p, names, st)
    assert o.shape[0] == mixed.n_signals
    assert np.isfinite(o).all()


def test_split_schedule_greens_fill_the_cycle(tiny_scenario):
    from sim.env import district_layout

    lay = district_layout(tiny_scenario)
    cfg = EnvConfig(action_mode="splits", cycle=90, yellow=3, all_red=2, min_green=5, max_green=80)
    sched = SplitSchedule(SignalPadding.build(lay, cfg.max_green), cfg)
    a = np.zeros((lay.n_signals, int(lay.n_stages.max())), np.float32)
    a[:, 0] = 1.0
    sched.set_action(a)
    n = lay.n_stages
    total = sched.greens.sum(axis=1) + n * (cfg.yellow + cfg.all_red)
    np.testing.assert_allclose(total, 90.0, atol=1e-6)
    assert (sched.greens[:, 0] > sched.greens[:, 1]).all()
    assert (sched.greens[:, : int(n.min())] >= cfg.min_green).all()


def test_splits_episode_runs_plans(tiny_scenario):
    env = WulinParallelEnv(tiny_scenario, config={"action_mode": "splits", "cycle": 60,
                                                  "episode_seconds": 180})
    try:
        env.reset(seed=2)
        steps = 0
        while env.agents:
            env.step({a: np.array([0.5, -0.5], np.float32)[: env.engine.n_actions]
                      for a in env.agents})
            steps += 1
        assert steps == 3
        plans = env.engine.split_plans()
        g = [green for _, green in next(iter(plans.values()))]
        assert g[0] > g[1]
    finally:
        env.close()


def test_every_reward_runs(tiny_scenario):
    for name in available_rewards():
        env = WulinEnv(tiny_scenario, config={"episode_seconds": 30, "reward": name})
        try:
            env.reset(seed=1)
            _, r, term, trunc, info = env.step(env.action_space.sample())
            assert np.isfinite(r)
            assert not term
        finally:
            env.close()


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"delta_t": 0}, "delta_t"),
        ({"reward": "nope"}, "reward"),
        ({"observation": ["queue", "nope"]}, "observation"),
        ({"action_mode": "phase"}, "action_mode"),
        ({"min_green": 10, "max_green": 5}, "max_green"),
        ({"colour": 1}, "colour"),
    ],
)
def test_config_errors_name_the_field(bad, field):
    with pytest.raises(WulinError, match=field):
        EnvConfig.from_dict(bad, where="run.toml: [env]")


def test_unknown_signal_lists_known(tiny_scenario):
    with pytest.raises(WulinError, match="known signals"):
        WulinEnv(tiny_scenario, signals="nope")


def test_needed_variables():
    from sim.observations import needed_variables

    assert needed_variables(("stage", "mask", "density", "queue"), "queue") == ("queue", "count")
    assert needed_variables(("stage-pressure",), "time-loss") == ("queue", "count", "speed")
    assert needed_variables(("waiting",), "queue") == ("queue", "count", "waiting")


@pytest.mark.parametrize("backend", ["libsumo", "traci"])
def test_subset_reader_reads_the_same_values_as_sumo(tiny_scenario, backend):
    """The env reads only what its observation and reward use (traci: subscribes to only
    those); the values equal SUMO's own getters."""
    env = WulinParallelEnv(tiny_scenario, config={"episode_seconds": 120}, backend=backend)
    try:
        env.reset(seed=4)
        eng = env.engine
        assert eng.reader.variables == ("queue", "count")
        lane = eng.sim.conn.lane
        rng = np.random.default_rng(0)
        seen = 0.0
        while env.agents:
            env.step({a: int(rng.integers(0, 2)) for a in env.agents})
            st, lay = eng.state, eng.layout
            assert st.count.tolist() == [lane.getLastStepVehicleNumber(x) for x in lay.in_lanes]
            assert st.queue.tolist() == [lane.getLastStepHaltingNumber(x) for x in lay.in_lanes]
            assert st.out_count.tolist() == [lane.getLastStepVehicleNumber(x)
                                             for x in lay.out_lanes]
            seen += float(st.count.sum())
        assert seen > 0
    finally:
        env.close()


class _Replay:
    """A controller that replays the env's actions through the episode loop."""

    name = "replay"

    def __init__(self, actions: list, config: EnvConfig) -> None:
        from controllers.base import Capabilities

        self.actions = actions
        self.config = config
        self.decision_interval = config.delta_t
        self.actuator_params: dict = {}  # per-signal clearance: set at reset
        self.capabilities = Capabilities()

    def reset(self, layout, seed):  # type: ignore[no-untyped-def]
        self.layout, self.k = layout, 0
        self.actuator_params = self.config.actuator_params(layout)

    def act(self, state):  # type: ignore[no-untyped-def]
        from sim.env import stage_decision

        a = self.actions[min(self.k, len(self.actions) - 1)]
        self.k += 1
        return stage_decision(a, self.layout.n_stages, state.stage, state.in_transition)

    def sumo_additional_files(self, scenario, workdir):  # type: ignore[no-untyped-def]
        return []


def test_env_and_episode_loop_give_the_same_signals_and_trips(tiny_scenario, tmp_path):
    """Parity: the same stage actions from the environments' engine and from the episode loop
    (a controller replaying them) give identical signal states at every decision and
    identical trips: one actuator path, one loop core, one clock."""
    from controllers.base import check_controller
    from experiments.episode import run_episode
    from sim.env import SignalEngine
    from sim.kpi import read_tripinfo

    cfg = EnvConfig(delta_t=4.0, min_green=6.0, max_green=40.0, yellow=3.0, all_red=1.0)
    trip_file = tmp_path / "env.tripinfo.xml"
    eng = SignalEngine(tiny_scenario, cfg, sumo_args=(
        "--no-warnings", "true", "--tripinfo-output", str(trip_file),
        "--tripinfo-output.write-unfinished", "true"))
    rng = np.random.default_rng(7)
    actions, env_seen = [], []
    try:
        eng.reset(seed=3)
        while not eng.done:
            st = eng.state
            env_seen.append((float(st.time), st.stage.tolist(), st.stage_time.tolist(),
                             st.in_transition.tolist()))
            a = rng.integers(0, eng.n_actions, eng.layout.n_signals)
            actions.append(a)
            eng.step(a)
    finally:
        eng.close()
    env_trips = read_tripinfo(trip_file, tiny_scenario.measure_begin)

    replay = _Replay(actions, cfg)
    check_controller(replay, eng.layout, steps=5)
    loop_seen: list = []
    res = run_episode(tiny_scenario, replay, seed=3, observers=[lambda st: loop_seen.append(
        (float(st.time), st.stage.tolist(), st.stage_time.tolist(), st.in_transition.tolist()))])
    assert res.decisions == len(actions) > 50
    assert loop_seen == env_seen
    assert any(any(s[3]) for s in env_seen)  # transitions happened
    assert len(env_trips) > 50
    assert env_trips.reset_index(drop=True).equals(res.trips.reset_index(drop=True))
