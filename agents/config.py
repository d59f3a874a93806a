"""Training configuration: a TOML file loaded into a frozen :class:`TrainConfig`.

Example (``agents/configs/grid-ppo.toml``)::

    name = "grid-ppo"
    scenario = "grid-am-v1"
    algorithm = "ppo"          # "ppo" or "dqn"
    total_timesteps = 200000   # decisions summed over all signals and environments
    n_envs = 2                 # environments, one SUMO process each
    subprocess = true
    seed = 1
    checkpoint_every = 20000   # timesteps between checkpoints
    torch_threads = 1

    [env]                      # sim.env.EnvConfig
    delta_t = 5
    observation = ["stage", "mask", "density", "queue"]
    reward = "queue"
    episode_seconds = 3600

    [algo]                     # passed to stable_baselines3.PPO / DQN
    learning_rate = 3e-4
    n_steps = 128

    [policy]
    net_arch = [64, 64]

    [imitation]                # optional (PPO): clone max-pressure first, agents.imitation
    episodes = 2               # teacher episodes per environment
    epochs = 10
"""

from __future__ import annotations

from dataclasses import field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationInfo, model_validator
from pydantic.dataclasses import dataclass as config_dataclass

from agents.imitation import ImitationConfig
from sim.config import DATACLASS_CONFIG, Bool, ConfigIssue, Name, Text, validate
from sim.env_config import EnvConfig
from sim.errors import WulinError
from sim.files import load_json, load_toml

ALGORITHMS = ("ppo", "dqn")
Count = Annotated[int, Field(strict=True, ge=1)]


def _imitation(value: Any) -> Any:
    """The ``[imitation]`` table through :meth:`ImitationConfig.from_dict` (its own checks)."""
    if isinstance(value, ImitationConfig) or value is None:
        return value
    if not isinstance(value, dict):
        raise ConfigIssue(f"must be a table, got {value!r}")
    try:
        return ImitationConfig.from_dict(value, where="x")
    except WulinError as exc:
        raise ConfigIssue(str(exc).removeprefix("x: ")) from None


@config_dataclass(frozen=True, config=DATACLASS_CONFIG)
class TrainConfig:
    """A training run, as declared in TOML (see the module docstring); a validated frozen
    dataclass, so ``dataclasses.replace(cfg, n_envs=4)`` is checked again.

    ``source`` is the TOML file (None when built from data); it is not a key of the file.
    """

    name: Name
    scenario: Name
    algorithm: str = "ppo"
    total_timesteps: Count = 100_000
    n_envs: Count = 1
    subprocess: Bool = True
    seed: Annotated[int, Field(strict=True, ge=0, le=2**31 - 1)] = 0
    checkpoint_every: Count = 20_000
    torch_threads: Annotated[int, Field(strict=True, ge=1, le=1024)] = 1
    env: EnvConfig = field(default_factory=EnvConfig)
    algo: dict[Name, Any] = field(default_factory=dict)
    policy: dict[Name, Any] = field(default_factory=dict)
    description: Text = ""
    imitation: Annotated[ImitationConfig | None, BeforeValidator(_imitation)] = None
    source: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_file(cls, data: Any, info: ValidationInfo) -> Any:
        """A file's table: its name defaults to the file's stem; ``source`` is not a key of it."""
        if not (isinstance(data, dict) and isinstance(info.context, dict)):
            return data  # built in code (or by dataclasses.replace)
        if "source" in data:
            raise ConfigIssue("is not a key of a training file; remove it", "source")
        return {"name": info.context.get("stem", ""), **data, "source": info.context.get("source")}

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.algorithm not in ALGORITHMS:
            raise ConfigIssue(f"must be one of {', '.join(ALGORITHMS)}, got {self.algorithm!r}", "algorithm")
        if self.algorithm == "dqn" and self.env.action_mode != "stage":
            raise ConfigIssue('DQN needs discrete actions; set action_mode = "stage" or use ppo',
                              "env", "action_mode")
        if self.imitation is not None and self.algorithm != "ppo":
            raise ConfigIssue('needs algorithm = "ppo" (an actor-critic); remove [imitation] or '
                              "switch to ppo", "imitation")
        if self.imitation is not None and self.env.action_mode != "stage":
            raise ConfigIssue('imitates stage decisions; set [env] action_mode = "stage" or remove '
                              "[imitation]", "imitation")
        if self.n_envs > 1 and not self.subprocess:
            raise ConfigIssue(f"must be true for n_envs = {self.n_envs} (one SUMO per process)", "subprocess")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain data (``run.json``); :func:`config_from_dict` reads it back."""
        return {
            "name": self.name, "scenario": self.scenario, "algorithm": self.algorithm,
            "total_timesteps": self.total_timesteps, "n_envs": self.n_envs,
            "subprocess": self.subprocess, "seed": self.seed,
            "checkpoint_every": self.checkpoint_every, "torch_threads": self.torch_threads,
            "description": self.description, "env": self.env.to_dict(), "algo": dict(self.algo),
            "policy": dict(self.policy),
            **({"imitation": self.imitation.to_dict()} if self.imitation else {}),
        }


def config_from_dict(data: dict[str, Any], src: object = "config", text: str | None = None) -> TrainConfig:
    """Check a parsed TOML table; every error names ``src``, the line, the field and the fix."""
    context = {"stem": Path(str(src)).stem, "source": src if isinstance(src, Path) else None}
    return validate(TrainConfig, data, src, text=text, context=context)


def load_train_config(path: Path | str) -> TrainConfig:
    """Load and check a training TOML.

    Raises:
        WulinError: missing file, bad TOML, or a bad field (named, with the fix).
    """
    path = Path(path)
    data, text = load_toml(path, "training config")
    return config_from_dict(data, path, text)


def load_run(run: Path | str) -> tuple[Path, TrainConfig]:
    """The run folder and the training config its ``run.json`` recorded, read back into the model.

    Raises:
        WulinError: the folder or its manifest is missing, damaged or not a training manifest.
    """
    run_dir = Path(run)
    manifest = run_dir / "run.json"
    if not manifest.is_file():
        raise WulinError(f"{run_dir}: not a training run (run.json missing); "
                         "pass the folder `wulin train` wrote")
    data = load_json(manifest, "training run manifest")
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
        raise WulinError(f"{manifest}: not a training run manifest (no `config` table); "
                         "pass the folder `wulin train` wrote")
    return run_dir, config_from_dict(data["config"], src=manifest)
