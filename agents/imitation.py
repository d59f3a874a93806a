"""Warm start by imitation: behaviour cloning of a baseline controller, then PPO fine-tuning.

"Imitate, then improve" (behaviour cloning as pre-training for policy-gradient fine-tuning,
as in DQfD / AlphaGo's supervised policy, and used for traffic signals by e.g. the
"demonstration" variants of PressLight/MPLight).  Training from scratch on a whole district
spends most of its budget rediscovering that a signal should serve the stage with the
longest queue; starting from max-pressure's decisions lets PPO spend the budget improving on it.

1. :func:`collect` runs the teacher (one of :data:`TEACHERS`: max-pressure or the
   schedule-driven controller, the real baseline controllers, with the scenario's tuned
   parameters when the config says ``tuned = true``) through the *training environments*:
   at every decision each worker asks the teacher what it would do in the env's current
   :class:`DistrictState` (:func:`teacher_actions`, through ``SignalVecEnv.env_method``; the
   env then also reads the lane variables the teacher reads), records ``(observation,
   teacher action)`` for every signal and steps the env with those actions.  A teacher's
   "keep" (``-1``) is recorded as the signal's current stage, which the env reads as keep
   (:func:`sim.env.stage_decision`).  Decisions taken while a signal is in yellow / all-red
   are not used for the policy loss (the env ignores actions then).  The teacher is asked at
   the env's decisions (every ``delta_t``), not at its own decision interval.
2. :func:`clone` trains the PPO policy on them: cross-entropy of the actor on the teacher's
   actions, and mean squared error of the critic on the discounted returns of the teacher's
   episodes (so the first PPO updates start from a critic that already fits the policy,
   instead of a random one whose advantages would pull the policy away at once).
3. ``agents.train`` then runs PPO on the env reward from this initialisation, with the
   learning rate, clip range and entropy of the config (small, so the policy improves on
   the teacher instead of forgetting it).

The policy that comes out is a neural network deciding from observations; the teacher is
used only during training.  ``imitation.json`` in the run folder records the data size, the
teacher's episodes and the cloned policy's agreement with the teacher.
"""

from __future__ import annotations

import math
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.errors import WulinError

if TYPE_CHECKING:
    from agents.vec_env import SignalVecEnv
    from sim.state import DistrictLayout, DistrictState

TEACHERS = ("max-pressure", "schedule-driven")
"""Controllers that can teach: they decide from the env's :class:`DistrictState` (SUMO's own
``actuated`` program decides inside SUMO, with its own yellow and detectors, so it cannot be
asked "what would you do in this state?")."""


@dataclass(frozen=True)
class ImitationConfig:
    """The ``[imitation]`` table of a training TOML.

    Attributes:
        teacher: Controller to imitate (one of :data:`TEACHERS`).
        teacher_params: Its parameters (on top of the tuned ones when ``tuned``).
        tuned: Start from the parameters ``wulin tune`` saved for the scenario
            (``experiments.tuned``), when it has them.
        episodes: Teacher episodes per environment (worker) to collect.
        epochs: Passes over the collected data.
        learning_rate: Adam learning rate of the cloning.
        batch_size: Samples per gradient step.
        value_coef: Weight of the critic's loss against the actor's cross-entropy.
        gamma: Discount of the critic's return targets (use PPO's gamma).
    """

    teacher: str = "max-pressure"
    teacher_params: dict[str, Any] = field(default_factory=dict)
    tuned: bool = False
    episodes: int = 2
    epochs: int = 10
    learning_rate: float = 1e-3
    batch_size: int = 512
    value_coef: float = 0.5
    gamma: float = 0.95

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "[imitation]") -> ImitationConfig:
        """Build from a TOML table; every bad field raises a :class:`WulinError` naming it."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise WulinError(f"{where}: unknown field(s) {', '.join(unknown)}; "
                             f"allowed: {', '.join(sorted(known))}")
        kw = {**asdict(cls()), **data}
        if kw["teacher"] not in TEACHERS:
            raise WulinError(f"{where}: field 'teacher' must be one of {', '.join(TEACHERS)}, "
                             f"got {kw['teacher']!r}")
        if not isinstance(kw["teacher_params"], dict):
            raise WulinError(f"{where}: field 'teacher_params' must be a table, "
                             f"got {kw['teacher_params']!r}")
        if not isinstance(kw["tuned"], bool):
            raise WulinError(f"{where}: field 'tuned' must be true or false, got {kw['tuned']!r}")
        for name in ("episodes", "epochs", "batch_size"):
            v = kw[name]
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise WulinError(f"{where}: field '{name}' must be an integer >= 1, got {v!r}")
        for name in ("learning_rate", "value_coef", "gamma"):
            v = kw[name]
            ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            if not ok or v < 0 or (name != "value_coef" and v == 0) or (name == "gamma" and v > 1):
                raise WulinError(f"{where}: field '{name}' must be a positive number"
                                 f"{' <= 1' if name == 'gamma' else ''}, got {v!r}")
            kw[name] = float(v)
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Teacher:
    """A baseline controller answering "what would you do now?" for an env's state.

    Args:
        layout: The env's controlled signals.
        name: Teacher name (one of :data:`TEACHERS`).
        params: The controller's parameters.
        use_numba: Use the controller's compiled kernel (warm the cache in the parent first:
            :func:`warm_teacher`).
    """

    def __init__(self, layout: DistrictLayout, name: str = "max-pressure",
                 params: Mapping[str, Any] | None = None, use_numba: bool = True) -> None:
        from controllers.base import make_controller

        if name not in TEACHERS:
            raise WulinError(f"teacher {name!r} unknown; known: {', '.join(TEACHERS)}")
        self.layout = layout
        self.controller: Any = make_controller(name, **{**(params or {}), "use_numba": use_numba})
        self.controller.reset(layout, 0)
        self.state_fields = tuple(getattr(self.controller, "state_fields", ()) or ())
        self._time = -math.inf

    def actions(self, state: DistrictState) -> tuple[np.ndarray, np.ndarray]:
        """``(action [S], usable [S])``: the teacher's stage (keep -> current stage) per signal,
        and False for signals in a transition (the env ignores their action)."""
        if state.time < self._time:  # a new episode: forget the last one's memory
            self.controller.reset(self.layout, 0)
        self._time = state.time
        d = np.asarray(self.controller.act(state), dtype=np.int64)
        a = np.where(d >= 0, d, state.stage.astype(np.int64))
        return a, ~np.asarray(state.in_transition, dtype=bool)


_TEACHERS: weakref.WeakKeyDictionary[Any, Teacher] = weakref.WeakKeyDictionary()


def teacher_actions(env: Any, name: str = "max-pressure",
                    params: Mapping[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The teacher's ``(action, usable)`` for one env's current state, run in its worker.

    One :class:`Teacher` per env object (a restarted env gets a fresh one), so its state
    follows the env's episodes; the env is made to read what the teacher reads.
    """
    teacher = _TEACHERS.get(env)
    if teacher is None:
        teacher = _TEACHERS[env] = Teacher(env.engine.layout, name, params)
        env.engine.read_also(teacher.state_fields)
    return teacher.actions(env.engine.state)


def teacher_params(config: ImitationConfig, scenario: str) -> dict[str, Any]:
    """The teacher's parameters: the scenario's tuned ones when asked for, then the config's."""
    from experiments.tuned import effective_params
    from sim.scenario import load_scenario

    return effective_params(load_scenario(scenario), config.teacher, config.teacher_params,
                            use_tuned=config.tuned)


def _teacher_actions(venv: SignalVecEnv, name: str,
                     params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Every slot's teacher action and whether the env will use it (not in transition)."""
    per_slot = venv.env_method(teacher_actions, name, params)
    res = per_slot[::venv.n_agents]  # an env's slots share its one answer
    return (np.concatenate([a for a, _ in res]).astype(np.int64),
            np.concatenate([u for _, u in res]).astype(bool))


def warm_teacher(name: str, layout: DistrictLayout) -> None:
    """Compile the teacher's Numba kernel once in this process (workers then load the cache)."""
    from controllers.base import make_controller, random_states

    ctl: Any = make_controller(name)
    ctl.reset(layout, 0)
    ctl.act(random_states(layout, 1)[0])


@dataclass
class Demonstrations:
    """Teacher decisions collected from the training envs (one row per signal decision).

    Attributes:
        obs: ``[N, W]`` observations.
        actions: ``[N]`` teacher actions.
        usable: ``[N]`` False where the signal was in a transition.
        returns: ``[N]`` discounted returns of the teacher's episodes (critic targets).
        episodes: One dict per teacher episode (seed, steps, mean return, mean queue).
        wall_s: Seconds the collection took.
    """

    obs: np.ndarray
    actions: np.ndarray
    usable: np.ndarray
    returns: np.ndarray
    episodes: list[dict[str, Any]]
    wall_s: float


def discounted_returns(rewards: np.ndarray, dones: np.ndarray, gamma: float) -> np.ndarray:
    """``G_t = r_t + gamma G_{t+1}``, restarting after each ``done``; ``[T, n]`` arrays."""
    out = np.zeros_like(rewards, dtype=np.float32)
    g = np.zeros(rewards.shape[1], dtype=np.float64)
    for t in range(rewards.shape[0] - 1, -1, -1):
        g = rewards[t] + gamma * g * (1.0 - dones[t])
        out[t] = g
    return out


def collect(
    venv: SignalVecEnv,
    episodes: int,
    gamma: float,
    *,
    teacher: str = "max-pressure",
    params: Mapping[str, Any] | None = None,
    progress: bool = True,
    should_stop: Callable[[], bool] = lambda: False,
) -> Demonstrations:
    """Run the teacher in every env of ``venv`` for ``episodes`` episodes each.

    Raises:
        KeyboardInterrupt: ``should_stop()`` became true (Ctrl-C).
    """
    t0 = time.time()
    n_workers = venv.n_workers
    obs = venv.reset()
    obs_l: list[np.ndarray] = []
    act_l: list[np.ndarray] = []
    use_l: list[np.ndarray] = []
    rew_l: list[np.ndarray] = []
    done_l: list[np.ndarray] = []
    done_eps = np.zeros(n_workers, dtype=np.int64)
    log_start = len(venv.episode_log)
    per_ep = venv.steps_per_episode()
    total = per_ep * episodes
    bar = _bar(progress, total, "imitation: teacher episodes")
    step = 0
    try:
        while (done_eps < episodes).any():
            if should_stop():
                raise KeyboardInterrupt
            a, usable = _teacher_actions(venv, teacher, params or {})
            obs_l.append(obs)
            act_l.append(a)
            use_l.append(usable)
            obs, r, dones, _ = venv.step(a)
            rew_l.append(r)
            done_l.append(dones)
            step += 1
            for w in range(n_workers):
                if dones[w * venv.n_agents]:
                    done_eps[w] += 1
            if bar is not None and step % 20 == 0:
                bar.update(bar.task_ids[0], completed=min(step, total))
    finally:
        if bar is not None:
            bar.stop()
    rewards, dones_arr = np.stack(rew_l), np.stack(done_l).astype(np.float32)
    returns = discounted_returns(rewards, dones_arr, gamma)
    # workers that finished early ran on into extra episodes: keep only whole episodes
    keep = np.ones_like(rewards, dtype=bool)
    for w in range(n_workers):
        cols = slice(w * venv.n_agents, (w + 1) * venv.n_agents)
        ends = np.flatnonzero(dones_arr[:, w * venv.n_agents])
        last = ends[episodes - 1] if len(ends) >= episodes else len(rewards) - 1
        keep[last + 1:, cols] = False
    W = obs.shape[1]
    return Demonstrations(
        obs=np.stack(obs_l)[keep].reshape(-1, W),
        actions=np.stack(act_l)[keep].reshape(-1),
        usable=np.stack(use_l)[keep].reshape(-1),
        returns=returns[keep].reshape(-1),
        episodes=[dict(r) for r in venv.episode_log[log_start:]],
        wall_s=time.time() - t0,
    )


def clone(
    model: Any,
    demos: Demonstrations,
    config: ImitationConfig,
    *,
    seed: int = 0,
    progress: bool = True,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict[str, Any]:
    """Behaviour cloning of an SB3 PPO model's actor (and fit of its critic) on ``demos``.

    Returns:
        Metrics: samples, agreement with the teacher on usable decisions before and after,
        final losses, seconds.

    Raises:
        WulinError: the model is not an actor-critic (PPO) policy.
        KeyboardInterrupt: ``should_stop()`` became true (Ctrl-C).
    """
    import torch
    from stable_baselines3.common.policies import ActorCriticPolicy

    policy = model.policy
    if not isinstance(policy, ActorCriticPolicy):
        raise WulinError("[imitation] needs algorithm = \"ppo\" (an actor-critic policy)")
    t0 = time.time()
    dev = policy.device
    obs = torch.as_tensor(demos.obs, dtype=torch.float32, device=dev)
    act = torch.as_tensor(demos.actions, dtype=torch.long, device=dev)
    use = torch.as_tensor(demos.usable, dtype=torch.float32, device=dev)
    ret = torch.as_tensor(demos.returns, dtype=torch.float32, device=dev)
    n = len(obs)
    if n == 0:
        raise WulinError("imitation: the teacher produced no decisions (episode too short?)")
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(policy.parameters(), lr=config.learning_rate)
    before = agreement(policy, obs, act, use)
    steps_per_epoch = math.ceil(n / config.batch_size)
    bar = _bar(progress, config.epochs * steps_per_epoch, "imitation: cloning")
    policy.set_training_mode(True)
    pi_loss = v_loss = float("nan")
    try:
        for epoch in range(config.epochs):
            perm = torch.randperm(n, generator=gen)
            for b in range(steps_per_epoch):
                if should_stop():
                    raise KeyboardInterrupt
                idx = perm[b * config.batch_size:(b + 1) * config.batch_size]
                values, log_prob, _ = policy.evaluate_actions(obs[idx], act[idx])
                w = use[idx]
                lp = -(log_prob * w).sum() / w.sum().clamp(min=1.0)
                lv = torch.nn.functional.mse_loss(values.flatten(), ret[idx])
                loss = lp + config.value_coef * lv
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
                opt.step()
                pi_loss, v_loss = float(lp.detach()), float(lv.detach())
                if bar is not None:
                    bar.update(bar.task_ids[0], completed=epoch * steps_per_epoch + b + 1)
    finally:
        if bar is not None:
            bar.stop()
    policy.set_training_mode(False)
    return {
        "samples": int(n),
        "usable_samples": int(demos.usable.sum()),
        "agreement_before": before,
        "agreement_after": agreement(policy, obs, act, use),
        "policy_loss": pi_loss,
        "value_loss": v_loss,
        "return_std": float(demos.returns.std()),
        "clone_wall_s": round(time.time() - t0, 1),
    }


def agreement(policy: Any, obs: Any, act: Any, use: Any) -> float:
    """Share of usable decisions where the policy's most likely action is the teacher's."""
    import torch

    with torch.no_grad():
        hits = 0.0
        for i in range(0, len(obs), 8192):
            dist = policy.get_distribution(obs[i:i + 8192])
            pred = dist.distribution.probs.argmax(dim=1)
            hits += float(((pred == act[i:i + 8192]).float() * use[i:i + 8192]).sum())
    return hits / max(float(use.sum()), 1.0)


def _bar(enabled: bool, total: int, label: str) -> Any:
    if not enabled:
        return None
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    prog = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), transient=True)
    prog.start()
    prog.add_task(label, total=total)
    return prog
