"""Trained policies shipped in the repository (``agents/policies/<name>/``), and shipping one.

A fresh clone has no ``runs/`` folder (training takes half an hour), so the policies the
README reports are committed in a small form: only what inference needs.

* ``model.zip``: the stable-baselines3 model with the optimizer's state reset (Adam's moment
  estimates are two thirds of a trained model's bytes and play no part in ``predict``);
  the policy's weights are the trained ones, bit for bit.
* ``run.json``: the training configuration as ``wulin train`` recorded it (the
  :class:`~agents.config.TrainConfig` table the controller reads: observation, actuator
  settings, action mode).
* ``provenance.json``: the training command, git commit, timesteps, training seed,
  evaluation seeds held out, package versions, input hashes and the SHA-256 of
  ``model.zip`` (checked when the policy is loaded).

``policy:NAME`` (``wulin simulate wulin-am-peak-v1 --controller policy:wulin-am-peak-ppo``,
an experiment's ``controllers``) finds a run folder first (a path to a ``wulin train``
output) and a shipped policy otherwise (:func:`resolve_run`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sim.errors import WulinError

SHIPPED = Path(__file__).resolve().parent / "policies"
FORMAT = "wulin.shipped-policy/1"


def shipped_policies() -> list[str]:
    """Names of the policies shipped in ``agents/policies/``."""
    if not SHIPPED.is_dir():
        return []
    return sorted(p.name for p in SHIPPED.iterdir() if (p / "run.json").is_file())


def resolve_run(run: Path | str) -> Path:
    """The folder of ``run``: a run folder (holds ``run.json``) or a shipped policy's name.

    Raises:
        WulinError: neither; the message lists the shipped policies.
    """
    path = Path(run)
    if (path / "run.json").is_file():
        return path
    if path.name == str(run) and (SHIPPED / path.name / "run.json").is_file():
        return SHIPPED / path.name
    names = ", ".join(shipped_policies()) or "none"
    raise WulinError(f"policy {str(run)!r}: not a run folder (no run.json there) nor a shipped "
                     f"policy (shipped: {names}); pass a folder `wulin train` wrote or a shipped name")


def check_model(folder: Path) -> None:
    """A shipped policy's ``model.zip`` must have the SHA-256 its provenance records."""
    from sim.files import load_json
    from sim.provenance import file_sha256

    prov_file = folder / "provenance.json"
    if not prov_file.is_file():
        return  # a run folder of `wulin train`, not a shipped policy
    prov = load_json(prov_file, "policy provenance")
    want = prov.get("model_sha256") if isinstance(prov, dict) else None
    got = file_sha256(folder / "model.zip") if (folder / "model.zip").is_file() else "missing"
    if want != got:
        raise WulinError(f"{folder / 'model.zip'}: SHA-256 {got[:16]}... differs from the "
                         f"{str(want)[:16]}... in provenance.json; restore the file (git checkout)")


def _lean_model(src: Path, dest: Path) -> int:
    """Save ``src``'s model to ``dest`` with a freshly made optimizer (same weights); returns
    the timesteps it was trained for (a resumed run may pass its config's total)."""
    from stable_baselines3 import DQN, PPO

    from agents.config import load_run

    run_dir, config = load_run(src)
    if not (run_dir / "model.zip").is_file():
        raise WulinError(f"{run_dir}: no model.zip; ship a finished training run")
    cls = {"ppo": PPO, "dqn": DQN}[config.algorithm]
    model = cls.load(str(run_dir / "model.zip"), device="cpu")
    pol = model.policy
    pol.optimizer = pol.optimizer_class(pol.parameters(), lr=model.lr_schedule(1.0),
                                        **pol.optimizer_kwargs)
    model.save(str(dest))
    return int(model.num_timesteps)


def ship_policy(run: Path, name: str, command: str, eval_seeds: list[int]) -> Path:
    """Copy the model and configuration of the training run ``run`` to ``agents/policies/name``.

    Args:
        run: A ``wulin train`` run folder.
        name: The shipped policy's name.
        command: The training command that made the run.
        eval_seeds: Seeds the reported figures use (held out from training).
    """
    from experiments.durable import write_text_atomic
    from sim.files import load_json
    from sim.provenance import file_sha256

    manifest = load_json(Path(run) / "run.json", "training run manifest")
    dest = SHIPPED / name
    dest.mkdir(parents=True, exist_ok=True)
    trained_steps = _lean_model(Path(run), dest / "model.zip")
    config = manifest["config"]
    write_text_atomic(dest / "run.json", json.dumps(
        {"format": manifest.get("format"), "config": config}, indent=2) + "\n")
    prov: dict[str, Any] = {
        "format": FORMAT, "name": name, "training_command": command,
        "config_file": manifest.get("config_file"), "git_commit": manifest.get("git_commit"),
        "git_dirty": manifest.get("git_dirty"), "trained": manifest.get("created"),
        "total_timesteps": trained_steps, "training_seed": config.get("seed"),
        "training_episode_seeds": "above 1,000,000 (agents.vec_env.episode_seed)",
        "evaluation_seeds": eval_seeds, "versions": manifest.get("versions"),
        "inputs": {Path(k).name: v for k, v in manifest.get("inputs", {}).items()},
        "model_sha256": file_sha256(dest / "model.zip"),
        "note": "model.zip holds the trained weights; the optimizer state is reset (inference only)",
    }
    write_text_atomic(dest / "provenance.json", json.dumps(prov, indent=2) + "\n")
    return dest
