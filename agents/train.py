"""``train``: PPO or DQN with one policy shared by all signals, checkpoints and resume.

A run folder holds everything needed to reproduce, resume and evaluate the run::

    run.json              resolved config, seeds, package versions, git commit, input hashes
    tb/                   TensorBoard logs (``tensorboard --logdir RUN/tb``)
    checkpoints/          step_<timesteps>.zip every ``checkpoint_every`` timesteps
    episodes.csv          one row per finished training episode (learning curve data)
    learning_curve.png    mean episode return and mean queue against timesteps
    imitation.json        with an ``[imitation]`` table: the teacher's episodes and how well
                          the cloned policy agrees with it (``agents.imitation``)
    model.zip             the final policy

Resume after an interruption: run the same command again with ``--resume``; training goes on
from the newest checkpoint with the timestep counter kept (DQN's replay buffer is saved with
each checkpoint too).  Timesteps count decisions summed over all signals and environments.
"""

from __future__ import annotations

import csv
import json
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any

from agents.config import TrainConfig, load_run
from sim.errors import WulinError

_CKPT = re.compile(r"step_(\d+)\.zip$")
EPISODE_FIELDS = ("index", "timesteps", "wall_clock", "worker", "episode", "seed", "steps",
                  "mean_return", "mean_queue", "wall_s", "crashed")


class TrainingInterrupted(Exception):
    """Training stopped on SIGINT / SIGTERM after writing a checkpoint.

    Attributes:
        checkpoint: The checkpoint written (None when stopped before the model existed).
        timesteps: Timesteps trained so far.
    """

    def __init__(self, checkpoint: Path | None, timesteps: int) -> None:
        super().__init__(f"interrupted at {timesteps:,} timesteps; checkpoint: {checkpoint}")
        self.checkpoint = checkpoint
        self.timesteps = timesteps


class StopFlag:
    """SIGINT / SIGTERM -> a flag the training loop polls (a second SIGINT raises at once)."""

    def __init__(self) -> None:
        self.stop = False
        self.signum = 0
        self._old: dict[int, Any] = {}

    def __call__(self) -> bool:
        return self.stop

    def _handle(self, signum: int, frame: Any) -> None:
        if self.stop and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.stop = True
        self.signum = signum

    def __enter__(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()


def run_manifest(config: TrainConfig) -> dict[str, Any]:
    """Resolved config, versions, git commit and input-file hashes of a run."""
    from sim.provenance import code_version, package_versions, scenario_inputs
    from sim.scenario import load_scenario

    return {
        "format": "wulin.train-run/1",
        "config": config.to_dict(),
        "config_file": str(config.source) if config.source else None,
        **code_version(),
        "versions": package_versions(),
        "inputs": scenario_inputs(load_scenario(config.scenario)),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """``(timesteps, path)`` of the run's checkpoints, oldest first."""
    out = []
    for p in (Path(run_dir) / "checkpoints").glob("step_*.zip"):
        m = _CKPT.search(p.name)
        if m:
            out.append((int(m[1]), p))
    return sorted(out)


def _algo_class(name: str) -> Any:
    from stable_baselines3 import DQN, PPO

    return {"ppo": PPO, "dqn": DQN}[name]


def _make_model(config: TrainConfig, venv: Any, run_dir: Path) -> Any:
    cls = _algo_class(config.algorithm)
    policy_kwargs = dict(config.policy)
    if "net_arch" in policy_kwargs:
        policy_kwargs["net_arch"] = list(policy_kwargs["net_arch"])
    try:
        return cls("MlpPolicy", venv, seed=config.seed, tensorboard_log=str(run_dir / "tb"),
                   policy_kwargs=policy_kwargs or None, verbose=0, device="cpu", **config.algo)
    except TypeError as exc:
        where = config.source or "config"
        raise WulinError(f"{where}: [algo] or [policy] has a parameter {config.algorithm.upper()} "
                         f"does not take ({exc})") from None


class _Callbacks:
    """Checkpoints and the episode log, as one SB3 callback (built lazily: SB3 is heavy)."""

    @staticmethod
    def make(config: TrainConfig, run_dir: Path, venv: Any, stop: StopFlag) -> Any:
        from stable_baselines3.common.callbacks import BaseCallback

        class RunCallback(BaseCallback):
            def __init__(self) -> None:
                super().__init__()
                self.next_ckpt = 0
                self.logged = 0
                self.csv_path = run_dir / "episodes.csv"

            def _on_training_start(self) -> None:
                n = self.model.num_timesteps
                self.next_ckpt = (n // config.checkpoint_every + 1) * config.checkpoint_every
                self.logged = len(venv.episode_log)

            def _flush_episodes(self) -> None:
                rows = venv.episode_log[self.logged:]
                if not rows:
                    return
                new = not self.csv_path.exists()
                with self.csv_path.open("a", newline="") as fh:
                    w = csv.DictWriter(fh, fieldnames=EPISODE_FIELDS, extrasaction="ignore")
                    if new:
                        w.writeheader()
                    for r in rows:
                        w.writerow({**r, "timesteps": self.model.num_timesteps})
                        if r["mean_queue"] == r["mean_queue"]:  # not NaN
                            self.logger.record_mean("wulin/mean_queue", r["mean_queue"])
                        self.logger.record_mean("wulin/mean_return", r["mean_return"])
                self.logged = len(venv.episode_log)

            def _on_step(self) -> bool:
                self._flush_episodes()
                if self.model.num_timesteps >= self.next_ckpt:
                    save_checkpoint(self.model, run_dir, config)
                    self.next_ckpt += config.checkpoint_every
                return not stop.stop  # False ends learn() cleanly (Ctrl-C)

            def _on_training_end(self) -> None:
                self._flush_episodes()

        return RunCallback()


def save_checkpoint(model: Any, run_dir: Path, config: TrainConfig) -> Path:
    """Write ``checkpoints/step_<timesteps>.zip`` (and DQN's replay buffer)."""
    folder = run_dir / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step_{model.num_timesteps}.zip"
    tmp = folder / f".tmp_step_{model.num_timesteps}.zip"
    model.save(str(tmp))  # write then rename: an interrupted save never looks like a checkpoint
    tmp.replace(path)
    if config.algorithm == "dqn":
        model.save_replay_buffer(str(folder / "replay_buffer.pkl"))
    return path


def train(
    config: TrainConfig,
    run_dir: Path | str,
    *,
    resume: bool = False,
    progress: bool = True,
    total_timesteps: int | None = None,
) -> Path:
    """Train (or resume) a run; returns the path of the final ``model.zip``.

    Args:
        config: The run's configuration.
        run_dir: The run folder (created).
        resume: Continue from the newest checkpoint in ``run_dir``.
        progress: Show a progress bar.
        total_timesteps: Override ``config.total_timesteps`` (a short test run).

    Raises:
        WulinError: ``run_dir`` already holds a run and ``resume`` is False, or ``resume`` is
            True but there is nothing to resume, or a bad config.
    """
    import torch

    from agents.vec_env import SignalVecEnv

    run_dir = Path(run_dir)
    total = int(total_timesteps or config.total_timesteps)
    ckpts = checkpoints(run_dir)
    manifest_path = run_dir / "run.json"
    if resume:
        if not manifest_path.exists():
            raise WulinError(f"{run_dir}: no run to resume (run.json missing); drop --resume to start one")
        if load_run(run_dir)[1].to_dict() != config.to_dict():
            raise WulinError(f"{run_dir}: the config differs from the one this run started with "
                             f"({manifest_path}); resume with the same config or start a new run")
    elif manifest_path.exists() or ckpts:
        raise WulinError(f"{run_dir}: already holds a run; pass --resume to continue it, "
                         "or choose another --out folder")
    run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        manifest_path.write_text(json.dumps(run_manifest(config), indent=2))
    torch.set_num_threads(config.torch_threads)

    env_kwargs = {"scenario": config.scenario, "config": config.env.to_dict(), "backend": "libsumo"}
    if config.imitation is not None and not ckpts:
        from agents.imitation import warm_teacher
        from sim.env import district_layout
        from sim.scenario import load_scenario

        # compile once here: workers compiling at once can race
        warm_teacher(config.imitation.teacher, district_layout(load_scenario(config.scenario), None))
    with StopFlag() as stop:
        venv = SignalVecEnv(env_kwargs, n_envs=config.n_envs, seed=config.seed + len(ckpts) * 101,
                            subprocess=config.subprocess)
        model = None
        ready = False  # False while cloning: a half-cloned model is not worth a checkpoint
        try:
            if resume and ckpts:
                steps, path = ckpts[-1]
                model = _algo_class(config.algorithm).load(str(path), env=venv, device="cpu")
                buf = run_dir / "checkpoints" / "replay_buffer.pkl"
                if config.algorithm == "dqn" and buf.exists():
                    model.load_replay_buffer(str(buf))
            else:
                model = _make_model(config, venv, run_dir)
                if config.imitation is not None:
                    _imitate(model, venv, config, run_dir, progress, stop)
            ready = True
            remaining = total - model.num_timesteps
            if remaining > 0 and not stop.stop:
                callback = _Callbacks.make(config, run_dir, venv, stop)
                model.learn(total_timesteps=remaining, callback=callback, progress_bar=progress,
                            reset_num_timesteps=not (resume and ckpts), tb_log_name="run")
            if stop.stop:
                raise KeyboardInterrupt
            final = run_dir / "model.zip"
            model.save(str(final))
            save_checkpoint(model, run_dir, config)
        except KeyboardInterrupt:
            # interrupted while cloning: no checkpoint, so --resume clones again
            ckpt = save_checkpoint(model, run_dir, config) if model is not None and ready else None
            venv.close()
            if (run_dir / "episodes.csv").exists():
                plot_learning_curve(run_dir)
            raise TrainingInterrupted(ckpt, int(model.num_timesteps) if model else 0) from None
        finally:
            venv.close()
    if (run_dir / "episodes.csv").exists():
        plot_learning_curve(run_dir)
    return final


def _imitate(model: Any, venv: Any, config: TrainConfig, run_dir: Path, progress: bool,
             stop: StopFlag) -> None:
    """Behaviour cloning of the teacher before PPO (``agents.imitation``); writes imitation.json."""
    from agents.imitation import clone, collect, teacher_params

    imi = config.imitation
    assert imi is not None
    params = teacher_params(imi, config.scenario)
    demos = collect(venv, imi.episodes, imi.gamma, teacher=imi.teacher, params=params,
                    progress=progress, should_stop=stop)
    metrics = clone(model, demos, imi, seed=config.seed, progress=progress, should_stop=stop)
    eps = [e for e in demos.episodes if e.get("steps", 0) > 0]
    report = {
        "teacher": imi.teacher, "teacher_params": params, "config": imi.to_dict(), **metrics,
        "collect_wall_s": round(demos.wall_s, 1),
        "teacher_mean_return": float(sum(e["mean_return"] for e in eps) / max(len(eps), 1)),
        "teacher_mean_queue": float(sum(e["mean_queue"] for e in eps) / max(len(eps), 1)),
        "teacher_episodes": eps,
    }
    (run_dir / "imitation.json").write_text(json.dumps(report, indent=2))
    save_checkpoint(model, run_dir, config)  # step_0: a resumed run does not clone again


def plot_learning_curve(run_dir: Path | str, out: Path | str | None = None) -> Path:
    """Plot ``episodes.csv`` (mean return and mean queue against timesteps) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    run_dir = Path(run_dir)
    df = pd.read_csv(run_dir / "episodes.csv")
    df = df[df["steps"] > 0].sort_values("index")
    out_path = Path(out) if out else run_dir / "learning_curve.png"
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    win = max(1, len(df) // 10)
    for ax, col, label in ((axes[0], "mean_return", "mean episode return per signal"),
                           (axes[1], "mean_queue", "halting vehicles (mean over episode)")):
        ax.plot(df["timesteps"], df[col], ".", alpha=0.35, label="episode")
        ax.plot(df["timesteps"], df[col].rolling(win, min_periods=1).mean(), "-",
                label=f"rolling mean ({win})")
        ax.set_xlabel("timesteps (decisions, all signals)")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    imi_path = run_dir / "imitation.json"
    if imi_path.exists():  # the teacher's level, for reference
        imi = json.loads(imi_path.read_text())
        for ax, key in ((axes[0], "teacher_mean_return"), (axes[1], "teacher_mean_queue")):
            ax.axhline(imi[key], color="k", ls="--", lw=1, label=f"teacher ({imi['teacher']})")
        axes[1].legend(loc="upper right")
    axes[0].legend(loc="lower right")
    name = load_run(run_dir)[1].name if (run_dir / "run.json").exists() else run_dir.name
    fig.suptitle(f"learning curve: {name}")
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path
