"""``PolicyController``: a trained policy as a :class:`~controllers.base.Controller`.

It runs through the same episode loop (:func:`experiments.episode.run_episode`) and the same
actuator as every baseline, so a policy is compared with fixed-time and max-pressure on equal
terms.  Observations are computed by :func:`sim.observations.observe` from the
:class:`~sim.state.DistrictState` the loop reads, exactly as in training; the actuator gets
the yellow, all-red, minimum and maximum green the policy was trained with
(``actuator_params``).

* ``stage`` policies decide every ``delta_t`` seconds.
* ``splits`` policies choose a plan once per ``cycle`` and then serve it: the controller is
  asked every second and requests the next stage when the planned green has run.

Example::

    ctl = PolicyController("runs/grid-ppo")
    result = run_episode("grid-am-v1", ctl, seed=1)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from agents.config import load_run
from controllers.base import ControllerBase
from sim.env import SplitSchedule, stage_decision
from sim.errors import WulinError
from sim.observations import SignalPadding, needed_variables, observe
from sim.red_limit import RedLimit

if TYPE_CHECKING:
    from sim.state import DistrictLayout, DistrictState


def model_path(run_dir: Path, checkpoint: str | None = None) -> Path:
    """``model.zip``, a named checkpoint, or the newest checkpoint when training was cut short."""
    from agents.train import checkpoints

    if checkpoint:
        p = Path(checkpoint)
        p = p if p.is_file() else run_dir / "checkpoints" / checkpoint
        if not p.is_file():
            raise WulinError(f"{run_dir}: checkpoint {checkpoint!r} not found; "
                             f"have: {[c.name for _, c in checkpoints(run_dir)]}")
        return p
    if (run_dir / "model.zip").is_file():
        return run_dir / "model.zip"
    ck = checkpoints(run_dir)
    if not ck:
        raise WulinError(f"{run_dir}: no model.zip and no checkpoint; train first (`wulin train`)")
    return ck[-1][1]


class PolicyController(ControllerBase):
    """Runs a stable-baselines3 policy trained by ``wulin train``.

    Args:
        run: The run folder (holds ``run.json`` and ``model.zip``) or the name of a policy
            shipped in ``agents/policies/`` (:mod:`agents.shipped`).
        checkpoint: A checkpoint file name or path instead of ``model.zip``.
        deterministic: Take the most likely action (True for evaluation).
        max_red: Serve a stage whose vehicles have waited this long at red
            (:mod:`sim.red_limit`; ``stage`` policies); default: the training config's.
    """

    name = "policy"

    def __init__(self, run: Path | str, checkpoint: str | None = None,
                 deterministic: bool = True, max_red: float | None = None) -> None:
        from stable_baselines3 import DQN, PPO

        from agents.shipped import check_model, resolve_run

        self.run_dir, config = load_run(resolve_run(run))
        check_model(self.run_dir)
        self.env_config = config.env
        self.algorithm = config.algorithm
        self.model_file = model_path(self.run_dir, checkpoint)
        cls = {"ppo": PPO, "dqn": DQN}[self.algorithm]  # the model admits these two only
        self.model = cls.load(str(self.model_file), device="cpu")
        self.deterministic = deterministic
        self.splits = self.env_config.action_mode == "splits"
        self.decision_interval = 1.0 if self.splits else float(self.env_config.delta_t)
        # per-signal clearance needs the layout: set in full at reset
        self.actuator_params = {"min_green": self.env_config.min_green,
                                "max_green": self.env_config.max_green}
        # the state the episode loop reads for it: what its observation uses (acting computes
        # no reward; "queue" adds nothing to the base set), per-vehicle approach bins included
        self.state_fields = needed_variables(tuple(self.env_config.observation), "queue")
        self.name = f"policy:{self.run_dir.name}"
        self.max_red = _seconds(self.env_config.max_red if max_red is None else max_red)

    @classmethod
    def check_arg(cls, run: str) -> None:
        """``policy:RUN``: RUN must be a run folder or a shipped policy (no model is loaded)."""
        from agents.shipped import resolve_run

        resolve_run(run)

    def reset(self, layout: DistrictLayout, seed: int) -> None:
        super().reset(layout, seed)
        self.actuator_params = self.env_config.actuator_params(layout)
        self.padding = SignalPadding.build(layout, self.env_config.max_green,
                                          self.env_config.min_green)
        probe = observe(self.padding, self.env_config.observation,
                        _empty_state(layout))
        want = self.model.observation_space.shape
        if probe.shape[1:] != tuple(want):
            raise WulinError(
                f"{self.run_dir}: the policy was trained on observations of width {want[0]}, "
                f"this network gives {probe.shape[1]} (different lane/stage counts); "
                "train on this network or one with the same intersection sizes"
            )
        self.schedule = SplitSchedule(self.padding, self.env_config)
        self.red_limit = RedLimit(self.padding, self.max_red)
        self._next_plan: float | None = None

    def _predict(self, state: DistrictState) -> np.ndarray:
        obs = observe(self.padding, self.env_config.observation, state)
        action, _ = self.model.predict(obs, deterministic=self.deterministic)
        return np.asarray(action)

    def act(self, state: DistrictState) -> np.ndarray:
        if not self.splits:
            decision = stage_decision(self._predict(state), self.layout.n_stages, state.stage,
                                      state.in_transition)
            return self.red_limit.apply(decision, state)
        if self._next_plan is None or state.time >= self._next_plan - 1e-6:
            self.schedule.set_action(self._predict(state))
            self._next_plan = state.time + self.env_config.cycle
        return self.schedule.decision(state.stage, state.stage_time, state.in_transition)


def _seconds(value: object) -> float:
    """``max_red`` as seconds >= 0 (a number or its text, as ``-p max_red=120`` gives it)."""
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        x = float("nan")
    if not (x >= 0 and np.isfinite(x)):
        raise WulinError(f"policy: max_red must be seconds >= 0 (0: no limit), got {value!r}")
    return x


def _empty_state(layout: DistrictLayout) -> DistrictState:
    from sim.state import DistrictState

    return DistrictState.empty(layout)
