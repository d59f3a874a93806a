"""Imitation warm start: the stage-pressure observation, teacher data, cloning, and Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from agents.config import config_from_dict
from agents.imitation import ImitationConfig, discounted_returns
from sim.errors import WulinError

REPO = Path(__file__).resolve().parents[2]


def _cfg(sc, **kw):
    data = {"name": "tiny-imit", "scenario": str(sc.source), "algorithm": "ppo", "n_envs": 1,
            "subprocess": False, "seed": 0, "checkpoint_every": 128,
            "env": {"episode_seconds": 160, "min_green": 10,
                    "observation": ["stage", "green-ready", "mask", "stage-pressure", "queue"]},
            "algo": {"n_steps": 32, "batch_size": 64, "n_epochs": 2, "learning_rate": 1e-5},
            "policy": {"net_arch": [32, 32]},
            "imitation": {"episodes": 2, "epochs": 30, "batch_size": 64, "learning_rate": 3e-3}}
    data.update(kw)
    return config_from_dict(data, "tiny-imit.toml")


def test_stage_pressure_argmax_is_the_max_pressure_decision(grid_scenario):
    """The observation keeps max-pressure's ordering: its argmax is the kernel's decision."""
    from controllers.kernels import max_pressure_reference
    from sim.env import district_layout
    from sim.observations import SignalPadding, obs_stage_pressure, stage_pressure
    from sim.state import DistrictState

    lay = district_layout(grid_scenario)
    pad = SignalPadding.build(lay)
    rng = np.random.default_rng(0)
    for _ in range(20):
        st = DistrictState.empty(lay)
        st.count[:] = rng.integers(0, 30, lay.n_in)
        st.out_count[:] = rng.integers(0, 30, lay.n_out)
        st.stage[:] = rng.integers(0, lay.n_stages)
        ref = max_pressure_reference(lay, st)
        raw = stage_pressure(pad, st)
        obs = obs_stage_pressure(pad, st)
        assert (np.abs(obs) <= 2).all()
        for s in range(lay.n_signals):
            k = int(lay.n_stages[s])
            assert np.array_equal(np.argsort(raw[s, :k], kind="stable"),
                                  np.argsort(obs[s, :k], kind="stable"))
            best = int(np.argmax(raw[s, :k]))
            if raw[s, best] > raw[s, st.stage[s]] + 1e-6:  # no tie with the current stage
                assert ref[s] == best


def test_green_ready_flag(tiny_scenario):
    from sim.env import district_layout
    from sim.observations import SignalPadding, obs_green_ready
    from sim.state import DistrictState

    lay = district_layout(tiny_scenario)
    pad = SignalPadding.build(lay, 60.0, 10.0)
    st = DistrictState.empty(lay)
    st.stage_time[:] = [3.0, 10.0, 25.0, 25.0]
    st.in_transition[:] = [False, False, False, True]
    assert obs_green_ready(pad, st)[:, 0].tolist() == [0.0, 1.0, 1.0, 0.0]


def test_discounted_returns_restart_after_done():
    r = np.array([[1.0], [1.0], [1.0], [1.0]], dtype=np.float32)
    d = np.array([[0.0], [1.0], [0.0], [1.0]], dtype=np.float32)
    g = discounted_returns(r, d, 0.5)
    assert g[:, 0].tolist() == [1.5, 1.0, 1.5, 1.0]


@pytest.mark.parametrize("bad, field", [
    ({"teacher": "sotl"}, "teacher"), ({"episodes": 0}, "episodes"), ({"gamma": 1.5}, "gamma"),
    ({"learning_rate": -1}, "learning_rate"), ({"epoch": 3}, "epoch"),
    ({"teacher_params": 3}, "teacher_params"), ({"tuned": "yes"}, "tuned"),
])
def test_imitation_config_errors_name_the_field(bad, field):
    with pytest.raises(WulinError, match=field):
        ImitationConfig.from_dict(bad)


def test_imitation_needs_ppo_and_stage_actions(tiny_scenario):
    with pytest.raises(WulinError, match="ppo"):
        _cfg(tiny_scenario, algorithm="dqn", algo={})
    with pytest.raises(WulinError, match="action_mode"):
        _cfg(tiny_scenario, env={"action_mode": "splits"})


def test_teacher_actions_drive_the_env_like_max_pressure(tiny_scenario):
    """Stepping the env with the teacher's actions serves max-pressure's requests exactly."""
    from agents.imitation import Teacher
    from controllers.max_pressure import MaxPressureController
    from sim.env import WulinParallelEnv, stage_decision

    env = WulinParallelEnv(tiny_scenario, config={"episode_seconds": 120, "min_green": 10})
    try:
        env.reset(seed=2)
        eng = env.engine
        teacher = Teacher(eng.layout, use_numba=False)
        mp = MaxPressureController(use_numba=False)
        mp.reset(eng.layout, 0)
        changes = 0
        while env.agents:
            a, usable = teacher.actions(eng.state)
            want = mp.act(eng.state)
            got = stage_decision(a, eng.layout.n_stages, eng.state.stage, eng.state.in_transition)
            assert got.tolist() == want.tolist()
            assert usable.tolist() == (~eng.state.in_transition).tolist()
            changes += int((got >= 0).sum())
            env.step({ag: int(a[i]) for i, ag in enumerate(env.possible_agents)})
        assert changes > 0
    finally:
        env.close()


def test_schedule_driven_teaches_and_the_env_reads_what_it_reads(tiny_scenario):
    """A teacher reading lane speeds makes the env read them (the observation does not), and
    its requests are the schedule-driven controller's on the same states, episode after episode."""
    from agents.imitation import teacher_actions
    from controllers.schedule_driven import ScheduleDrivenController
    from sim.env import WulinParallelEnv, stage_decision

    env = WulinParallelEnv(tiny_scenario, config={"episode_seconds": 60, "min_green": 5,
                                                  "observation": ["stage", "queue"]})
    try:
        ref = ScheduleDrivenController(use_numba=False, horizon=30)
        changes = 0
        for seed in (2, 3):  # the second episode starts the teacher afresh, as the reference
            env.reset(seed=seed)
            eng = env.engine
            ref.reset(eng.layout, 0)
            while env.agents:
                a, _ = teacher_actions(env, "schedule-driven", {"use_numba": False, "horizon": 30})
                assert "speed" in eng.reader.variables
                assert eng.state.speed.max() > 0
                want = ref.act(eng.state)
                got = stage_decision(a, eng.layout.n_stages, eng.state.stage, eng.state.in_transition)
                assert got.tolist() == np.where(eng.state.in_transition, -1, want).tolist()
                changes += int((got >= 0).sum())
                env.step({ag: int(a[i]) for i, ag in enumerate(env.possible_agents)})
        assert changes > 0
    finally:
        env.close()


def test_teacher_params_start_from_the_tuned_ones():
    from agents.imitation import teacher_params

    tuned = ImitationConfig.from_dict({"tuned": True, "teacher_params": {"max_red": 99.0}})
    got = teacher_params(tuned, "wulin-am-peak-v1")
    assert got["max_red"] == 99.0 and got["min_green"] == 5.5  # the rest from networks/wulin/tuned
    assert teacher_params(ImitationConfig.from_dict({}), "wulin-am-peak-v1") == {}


@pytest.fixture(scope="module")
def imitation_run(tiny_scenario, tmp_path_factory):
    from agents.train import train

    run = tmp_path_factory.mktemp("runs") / "imit"
    train(_cfg(tiny_scenario), run, total_timesteps=384, progress=False)
    return run


def test_imitation_run_clones_the_teacher(imitation_run):
    from agents.train import checkpoints

    rep = json.loads((imitation_run / "imitation.json").read_text())
    # 2 episodes x 32 decisions x 4 signals
    assert rep["samples"] == 256 and 0 < rep["usable_samples"] <= 256
    assert rep["agreement_after"] > max(rep["agreement_before"], 0.8)
    assert len(rep["teacher_episodes"]) == 2
    assert [s for s, _ in checkpoints(imitation_run)][0] == 0  # the cloned policy, kept
    assert (imitation_run / "model.zip").is_file()


def test_resume_after_imitation_does_not_clone_again(imitation_run, tiny_scenario):
    from agents.train import train

    before = (imitation_run / "imitation.json").stat().st_mtime_ns
    train(_cfg(tiny_scenario), imitation_run, resume=True, total_timesteps=512, progress=False)
    assert (imitation_run / "imitation.json").stat().st_mtime_ns == before


@pytest.mark.slow
def test_ctrl_c_writes_a_checkpoint_and_exits_cleanly(tiny_scenario, tmp_path):
    """SIGINT to `wulin train` started as a background job (SIGINT inherited *ignored*, as
    nohup or `cmd &` in a script do): a checkpoint is written, exit status 130, no worker left."""
    from agents.train import checkpoints

    cfg = tmp_path / "sigint.toml"
    cfg.write_text(
        f'name = "sigint"\nscenario = "{tiny_scenario.source}"\nalgorithm = "ppo"\n'
        "total_timesteps = 10000000\nn_envs = 2\nsubprocess = true\nseed = 0\n"
        "checkpoint_every = 100000000\n[env]\nepisode_seconds = 160\n"
        "[algo]\nn_steps = 16\nbatch_size = 64\nn_epochs = 1\n[policy]\nnet_arch = [16]\n"
    )
    run = tmp_path / "run"
    wulin = Path(sys.executable).with_name("wulin")
    proc = subprocess.Popen(
        [str(wulin), "train", str(cfg), "--out", str(run)], cwd=REPO, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        deadline = time.time() + 120
        while not (run / "episodes.csv").exists():  # training is under way
            assert proc.poll() is None, proc.communicate()[0]
            assert time.time() < deadline, "no episode finished in 120 s"
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the whole process group
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out
    assert "--resume" in out
    ck = checkpoints(run)
    assert ck and ck[-1][0] > 0
    time.sleep(0.5)
    # the env workers are gone too (an exited helper whose new parent, a container's PID 1,
    # does not reap it may linger as a zombie: not a running process)
    ps = subprocess.run(["ps", "-o", "stat=,args=", "-g", str(proc.pid)], capture_output=True,
                        text=True).stdout.splitlines()
    assert [line for line in ps if not line.strip().startswith("Z")] == []


def test_interrupt_while_cloning_leaves_no_checkpoint(tiny_scenario, tmp_path, monkeypatch):
    """Stopped during the teacher's episodes: no half-cloned checkpoint, so --resume clones."""
    from agents import train as train_mod

    monkeypatch.setattr(train_mod.StopFlag, "__call__", lambda self: True)  # as if Ctrl-C
    with pytest.raises(train_mod.TrainingInterrupted) as info:
        train_mod.train(_cfg(tiny_scenario), tmp_path / "run", total_timesteps=384,
                        progress=False)
    assert info.value.checkpoint is None
    assert train_mod.checkpoints(tmp_path / "run") == []
    assert not (tmp_path / "run" / "imitation.json").exists()
