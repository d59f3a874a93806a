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

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.imitation import ImitationConfig
from sim.env import EnvConfig
from sim.errors import WulinError

ALGORITHMS = ("ppo", "dqn")
_TOP = {"name", "scenario", "algorithm", "total_timesteps", "n_envs", "subprocess", "seed",
        "checkpoint_every", "torch_threads", "env", "algo", "policy", "description", "imitation"}


@dataclass(frozen=True)
class TrainConfig:
    """A training run, as declared in TOML (see the module docstring)."""

    name: str
    scenario: str
    algorithm: str = "ppo"
    total_timesteps: int = 100_000
    n_envs: int = 1
    subprocess: bool = True
    seed: int = 0
    checkpoint_every: int = 20_000
    torch_threads: int = 1
    env: EnvConfig = field(default_factory=EnvConfig)
    algo: dict[str, Any] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    source: Path | None = None
    imitation: ImitationConfig | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "scenario": self.scenario, "algorithm": self.algorithm,
            "total_timesteps": self.total_timesteps, "n_envs": self.n_envs,
            "subprocess": self.subprocess, "seed": self.seed,
            "checkpoint_every": self.checkpoint_every, "torch_threads": self.torch_threads,
            "description": self.description, "env": self.env.to_dict(), "algo": dict(self.algo),
            "policy": dict(self.policy),
            **({"imitation": self.imitation.to_dict()} if self.imitation else {}),
        }


def _int(data: dict[str, Any], key: str, default: int, src: object, minimum: int) -> int:
    v = data.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise WulinError(f"{src}: field '{key}' must be an integer >= {minimum}, got {v!r}")
    return v


def config_from_dict(data: dict[str, Any], src: object = "config") -> TrainConfig:
    """Check a parsed TOML table; every error names ``src``, the field and the fix."""
    unknown = sorted(set(data) - _TOP)
    if unknown:
        raise WulinError(f"{src}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_TOP))}")
    scenario = data.get("scenario")
    if not isinstance(scenario, str) or not scenario:
        raise WulinError(f"{src}: field 'scenario' is missing; add scenario = \"grid-am-v1\"")
    algorithm = data.get("algorithm", "ppo")
    if algorithm not in ALGORITHMS:
        raise WulinError(f"{src}: field 'algorithm' must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}")
    for key in ("env", "algo", "policy", "imitation"):
        if not isinstance(data.get(key, {}), dict):
            raise WulinError(f"{src}: [{key}] must be a table")
    env = EnvConfig.from_dict(data.get("env", {}), where=f"{src}: [env]")
    if algorithm == "dqn" and env.action_mode != "stage":
        raise WulinError(f"{src}: DQN needs discrete actions; set [env] action_mode = \"stage\" or use ppo")
    imitation = None
    if "imitation" in data:
        if algorithm != "ppo":
            raise WulinError(f"{src}: [imitation] needs algorithm = \"ppo\" (an actor-critic); "
                             "remove [imitation] or switch to ppo")
        if env.action_mode != "stage":
            raise WulinError(f"{src}: [imitation] imitates stage decisions; set [env] "
                             "action_mode = \"stage\" or remove [imitation]")
        imitation = ImitationConfig.from_dict(data["imitation"], where=f"{src}: [imitation]")
    subprocess = data.get("subprocess", True)
    if not isinstance(subprocess, bool):
        raise WulinError(f"{src}: field 'subprocess' must be true or false")
    n_envs = _int(data, "n_envs", 1, src, 1)
    if n_envs > 1 and not subprocess:
        raise WulinError(f"{src}: n_envs = {n_envs} needs subprocess = true (one SUMO per process)")
    name = data.get("name", Path(str(src)).stem)
    if not isinstance(name, str) or not name:
        raise WulinError(f"{src}: field 'name' must be a non-empty string")
    return TrainConfig(
        name=name,
        scenario=scenario,
        algorithm=algorithm,
        total_timesteps=_int(data, "total_timesteps", 100_000, src, 1),
        n_envs=n_envs,
        subprocess=subprocess,
        seed=_int(data, "seed", 0, src, 0),
        checkpoint_every=_int(data, "checkpoint_every", 20_000, src, 1),
        torch_threads=_int(data, "torch_threads", 1, src, 1),
        env=env,
        algo=dict(data.get("algo", {})),
        policy=dict(data.get("policy", {})),
        description=str(data.get("description", "")),
        source=Path(str(src)) if isinstance(src, Path) else None,
        imitation=imitation,
    )


def load_train_config(path: Path | str) -> TrainConfig:
    """Load and check a training TOML.

    Raises:
        WulinError: missing file, bad TOML, or a bad field (named, with the fix).
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise WulinError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise WulinError(f"{path}: invalid TOML ({exc})") from None
    return config_from_dict(data, path)
