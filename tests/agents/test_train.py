"""Training, resume, crash recovery and the PolicyController on a tiny generated network."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pandas as pd
import pytest

from agents.config import config_from_dict, load_train_config
from sim.errors import WulinError


def _cfg(sc, algorithm="ppo", **kw):
    algo = {"n_steps": 32, "batch_size": 64, "n_epochs": 2} if algorithm == "ppo" else \
        {"learning_starts": 40, "buffer_size": 2000}
    data = {"name": "tiny", "scenario": str(sc.source), "algorithm": algorithm,
            "n_envs": 1, "subprocess": False, "seed": 0, "checkpoint_every": 128,
            "env": {"episode_seconds": 160}, "algo": algo, "policy": {"net_arch": [16]}}
    data.update(kw)
    return config_from_dict(data, "tiny.toml")


@pytest.fixture(scope="module")
def trained_run(tiny_scenario, tmp_path_factory):
    from agents.train import train

    run = tmp_path_factory.mktemp("runs") / "tiny"
    train(_cfg(tiny_scenario), run, total_timesteps=320, progress=False)
    return run


def test_tiny_ppo_run_writes_a_complete_run_folder(trained_run):
    from agents.train import checkpoints

    assert (trained_run / "model.zip").is_file()
    assert (trained_run / "learning_curve.png").stat().st_size > 1000
    manifest = json.loads((trained_run / "run.json").read_text())
    assert manifest["config"]["algorithm"] == "ppo"
    assert set(manifest["inputs"])  # scenario, network and demand hashes
    assert [s for s, _ in checkpoints(trained_run)][0] == 128
    ep = pd.read_csv(trained_run / "episodes.csv")
    # 4 signals x 32 decisions per 160 s episode = 128 timesteps per episode; PPO collects
    # whole rollouts (32 steps x 4 slots = 128), so 320 timesteps become 384: three episodes
    assert len(ep) == 3 and (ep["steps"] == 32).all()
    assert ep["timesteps"].tolist() == [128, 256, 384]
    assert any((trained_run / "tb").rglob("events.out.tfevents*"))


def test_resume_continues_the_timestep_counter(trained_run, tiny_scenario):
    from stable_baselines3 import PPO

    from agents.train import train

    before = len(pd.read_csv(trained_run / "episodes.csv"))
    train(_cfg(tiny_scenario), trained_run, resume=True, total_timesteps=640, progress=False)
    model = PPO.load(str(trained_run / "model.zip"))
    assert model.num_timesteps >= 640
    assert len(pd.read_csv(trained_run / "episodes.csv")) > before


def test_existing_run_is_not_overwritten_and_config_must_match(trained_run, tiny_scenario):
    from agents.train import train

    with pytest.raises(WulinError, match="--resume"):
        train(_cfg(tiny_scenario), trained_run, total_timesteps=10, progress=False)
    with pytest.raises(WulinError, match="config differs"):
        train(_cfg(tiny_scenario, seed=5), trained_run, resume=True, total_timesteps=10,
              progress=False)


def test_damaged_run_manifest_is_one_clear_error(trained_run, tmp_path):
    from agents.config import load_run
    from agents.policy_controller import PolicyController

    run_dir, config = load_run(trained_run)  # read back into the training model
    assert config.algorithm == "ppo" and config.env.delta_t > 0
    manifest = json.loads((run_dir / "run.json").read_text())
    manifest["config"]["algorithm"] = "a2c"
    for name, text, needle in (("cut", '{"config": {"name": "ti', "run.json"),
                               ("list", "[1, 2]", "not a training run manifest"),
                               ("bad", json.dumps(manifest), "run.json.*algorithm")):
        bad = tmp_path / name
        bad.mkdir()
        (bad / "run.json").write_text(text)
        with pytest.raises(WulinError, match=needle):
            PolicyController(bad)


def test_tiny_dqn_run(tiny_scenario, tmp_path):
    from agents.train import train

    model = train(_cfg(tiny_scenario, "dqn"), tmp_path / "dqn", total_timesteps=200, progress=False)
    assert model.is_file()
    assert (tmp_path / "dqn" / "checkpoints" / "replay_buffer.pkl").is_file()


def test_policy_controller_runs_in_the_episode_loop(trained_run, tiny_scenario):
    from agents.policy_controller import PolicyController
    from controllers.base import check_controller
    from experiments.episode import run_episode

    ctl = PolicyController(trained_run)
    check_controller(ctl, tiny_scenario, steps=10)
    assert ctl.actuator_params["min_green"] == 5.0
    res = run_episode(tiny_scenario, ctl, seed=1)
    assert res.decisions == int(tiny_scenario.duration / 5.0)
    assert len(res.trips) > 0


def test_policy_controller_matches_the_env(trained_run, tiny_scenario):
    """The controller's decisions equal the env's actions for the same state (same obs)."""
    from agents.policy_controller import PolicyController
    from sim.env import WulinParallelEnv, stage_decision

    ctl = PolicyController(trained_run)
    env = WulinParallelEnv(tiny_scenario, config=ctl.env_config.to_dict())
    try:
        obs, _ = env.reset(seed=3)
        ctl.reset(env.engine.layout, 3)
        for _ in range(5):
            batch = np.stack([obs[a] for a in env.possible_agents])
            act, _ = ctl.model.predict(batch, deterministic=True)
            st = env.engine.state
            d = ctl.act(st)
            assert d.tolist() == stage_decision(act, ctl.layout.n_stages,
                                                st.stage, st.in_transition).tolist()
            obs, *_ = env.step({a: int(act[i]) for i, a in enumerate(env.possible_agents)})
    finally:
        env.close()


def test_sumo_failure_in_process_restarts_the_environment(tiny_scenario):
    from agents.vec_env import SignalVecEnv

    venv = SignalVecEnv({"scenario": str(tiny_scenario.source), "config": {"episode_seconds": 100}},
                        n_envs=1, seed=0, subprocess=False)
    try:
        venv.reset()
        acts = np.zeros(venv.num_envs, dtype=np.int64)
        venv.step(acts)
        import libsumo

        libsumo.close()  # SUMO goes away under the environment
        obs, rew, dones, infos = venv.step(acts)
        assert dones.all() and "crashed" in infos[0]
        assert venv._local.restarts == 1
        for _ in range(3):  # and training goes on
            obs, rew, dones, infos = venv.step(acts)
        assert not dones.any() and np.isfinite(obs).all()
    finally:
        venv.close()


@pytest.mark.slow
def test_dead_worker_process_is_restarted(tiny_scenario):
    from agents.vec_env import SignalVecEnv

    venv = SignalVecEnv({"scenario": str(tiny_scenario.source), "config": {"episode_seconds": 100}},
                        n_envs=2, seed=0, subprocess=True)
    try:
        venv.reset()
        acts = np.zeros(venv.num_envs, dtype=np.int64)
        venv.step(acts)
        os.kill(venv.worker_pids()[1], signal.SIGKILL)  # as if libsumo segfaulted
        obs, rew, dones, infos = venv.step(acts)
        A = venv.n_agents
        assert dones[A:].all() and not dones[:A].any()
        assert venv.process_restarts == 1
        obs, rew, dones, infos = venv.step(acts)
        assert obs.shape == (2 * A, *venv.observation_space.shape)
    finally:
        venv.close()


def test_shipped_configs_load():
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "agents" / "configs"
    files = sorted(folder.glob("*.toml"))
    assert files
    for f in files:
        cfg = load_train_config(f)
        assert cfg.total_timesteps > 0


@pytest.mark.parametrize(
    "bad, field",
    [({"algorithm": "sac"}, "algorithm"), ({"n_envs": 0}, "n_envs"), ({"scenario": ""}, "scenario"),
     ({"n_envs": 2, "subprocess": False}, "subprocess"), ({"epochs": 3}, "epochs"),
     ({"env": {"reward": "x"}}, "reward")],
)
def test_config_errors(bad, field, tiny_scenario):
    with pytest.raises(WulinError, match=field):
        _cfg(tiny_scenario, **bad)
