"""SignalVecEnv.env_method: the teacher reached through the vector env (no import cycle)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("subprocess", [False, True])
def test_env_method_runs_a_function_in_each_worker(tiny_scenario, subprocess):
    from agents.imitation import Teacher, teacher_actions
    from agents.vec_env import SignalVecEnv

    env_kwargs = {"scenario": str(tiny_scenario.source),
                  "config": {"episode_seconds": 120, "min_green": 10}}
    venv = SignalVecEnv(env_kwargs, n_envs=1, seed=0, subprocess=subprocess)
    try:
        venv.reset()
        per_slot = venv.env_method(teacher_actions)
        assert len(per_slot) == venv.num_envs == venv.n_agents
        a, usable = per_slot[0]
        assert all(r is per_slot[0] for r in per_slot)  # one call per env, shared by its slots
        assert a.shape == usable.shape == (venv.n_agents,)
        # a named method of the env answers per slot too
        spaces = venv.env_method("action_space", venv.agents[0], indices=[0])
        assert spaces == [venv.action_space]
        if not subprocess:  # in-process: the same answer as a teacher built by hand
            env = venv._local.env
            want, _ = Teacher(env.engine.layout).actions(env.engine.state)
            assert np.array_equal(a, want)
    finally:
        venv.close()
