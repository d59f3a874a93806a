"""Gymnasium and PettingZoo environments over the same actuator and ``DistrictState``.

* :class:`WulinEnv` (Gymnasium): one signal (``signals="B1"``: observation of that signal,
  ``Discrete`` action; the other signals run the network's own programs in SUMO) or several /
  all signals as one centralised agent (concatenated observations, ``MultiDiscrete`` action).
* :class:`WulinParallelEnv` (PettingZoo ``ParallelEnv``): one agent per signal, every agent
  with the same observation and action space, so one policy can be shared by all signals.

Both drive the signals through :class:`~sim.actuator.SignalActuator` (yellow, all-red,
minimum and maximum green are the actuator's business, the same as for every baseline
controller) and read :class:`~sim.state.DistrictState` with :class:`~sim.state.StateReader`.
They advance SUMO on the episode loop's own core (:func:`sim.loop.advance_events` on a
:class:`sim.loop.StepClock`), so a policy is trained on exactly the actuator path and time
arithmetic it is evaluated on (``tests/test_env.py`` checks env and episode loop give the
same signal states and trips for the same actions).
Observations and rewards are chosen by name from the registries of :mod:`sim.observations`.

Action modes:

* ``"stage"``: every ``delta_t`` seconds each agent picks the stage to serve next
  (``Discrete(K)``, ``K`` = most stages of any signal).  On a signal with fewer stages a
  padded action (``k >= n_stages``) keeps the current stage; ``info["action_mask"]`` and the
  ``mask`` observation term say which actions are real.  Choosing the current stage, or any
  action while the signal is in yellow / all-red, keeps (:func:`stage_decision`).
* ``"splits"``: once per plan cycle (``cycle`` seconds) each agent adjusts the splits of a
  fixed-time plan: action ``Box(-1, 1, (K,))``, greens = ``min_green`` + the spare green time
  shared by ``softmax(2 a)`` over the signal's stages; stages are served in cycle order.
  :meth:`SignalEngine.split_plans` returns the greens of the last cycle, so a policy's output
  is a deployable timing plan.

Episodes run from the scenario's begin for ``episode_seconds`` (the whole scenario by
default) and end *truncated* (a time limit, not a terminal state).  Seeds are explicit: the
seed given to ``reset`` is SUMO's seed; ``reset(seed=None)`` draws one from the env's own
generator.  The environments write no files (SUMO's error log goes to a private temporary
folder that ``close()`` removes).

Gymnasium ids (``gymnasium.make``): ``wulin/Signal-v0`` (kwargs ``scenario``, ``signals``)
and ``wulin/District-v0``; :func:`parallel_env` is the PettingZoo constructor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from sim.actuator import SignalActuator
from sim.env_config import ACTION_MODES, EnvConfig  # noqa: F401 (re-exported)
from sim.errors import WulinError
from sim.loop import StepClock, advance_events
from sim.observations import (
    DIFFERENTIAL_REWARDS,
    SignalPadding,
    needed_variables,
    observation_bounds,
    observe,
    reward_fn,
)
from sim.red_limit import RedLimit
from sim.scenario import Scenario, load_scenario
from sim.simulation import MAX_SEED, Simulation
from sim.state import DistrictLayout, DistrictState, StateReader, lane_variables
from sim.topology import load_signal_specs


def _as_scenario(scenario: Scenario | str) -> Scenario:
    return load_scenario(scenario) if isinstance(scenario, str) else scenario


def district_layout(scenario: Scenario, signals: Sequence[str] | str | None = None) -> DistrictLayout:
    """The layout of the controlled signals (all of them by default, sorted by id).

    Raises:
        WulinError: an unknown signal id (listing the known ones).
    """
    specs = load_signal_specs(scenario.net_file)
    if signals is None:
        return DistrictLayout.from_specs(specs)
    ids = [signals] if isinstance(signals, str) else list(signals)
    missing = [s for s in ids if s not in specs]
    if missing or not ids:
        raise WulinError(
            f"signals: {missing or ids!r} not in {scenario.net_file.name}; known signals: "
            f"{', '.join(specs)}"
        )
    return DistrictLayout.from_specs([specs[s] for s in ids])


def stage_decision(
    action: np.ndarray,
    n_stages: np.ndarray,
    stage: np.ndarray | None = None,
    in_transition: np.ndarray | None = None,
) -> np.ndarray:
    """``stage`` mode: the actuator request for per-signal actions (``-1`` = keep).

    Keep (no request) for a padded action, for the current stage, and while the signal is in
    a transition: the actuator queues a request made during yellow or all-red, and a policy
    that names the stage being left would otherwise send the signal straight back to it.  So
    "choose the current stage" means exactly what max-pressure's ``-1`` means, and a policy
    can express every max-pressure decision.
    """
    a = np.asarray(action).astype(np.int64)
    keep = a >= n_stages
    if stage is not None:
        keep |= a == np.asarray(stage)
    if in_transition is not None:
        keep |= np.asarray(in_transition, dtype=bool)
    return np.where(keep, -1, a).astype(np.int32)


class SplitSchedule:
    """Serves each signal's stages in cycle order with given greens (``splits`` mode).

    Used by the environments and by :class:`agents.policy_controller.PolicyController`, so a
    trained split policy runs the same way in training and evaluation.
    """

    def __init__(self, padding: SignalPadding, config: EnvConfig) -> None:
        self.padding = padding
        self.config = config
        layout = padding.layout
        self.n_stages = layout.n_stages.astype(np.int64)
        self.greens = np.zeros((layout.n_signals, padding.n_stages), dtype=np.float64)
        self.set_action(np.zeros((layout.n_signals, padding.n_stages), dtype=np.float32))

    def set_action(self, action: np.ndarray) -> None:
        """Greens from a ``[S, K]`` action in [-1, 1] (softmax shares of the spare time)."""
        cfg, valid = self.config, self.padding.stage_valid
        a = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0) * 2.0
        a = np.where(valid, a, -np.inf)
        share = np.exp(a - a.max(axis=1, keepdims=True))
        share /= share.sum(axis=1, keepdims=True)
        n = self.n_stages.astype(np.float64)
        lost = n * sum(cfg.clearance(self.padding.layout))
        spare = np.maximum(cfg.cycle - lost - n * cfg.min_green, 0.0)
        g = cfg.min_green + spare[:, None] * share
        self.greens = np.where(valid, np.minimum(g, cfg.max_green), 0.0)

    def decision(self, stage: np.ndarray, stage_time: np.ndarray, in_transition: np.ndarray) -> np.ndarray:
        """Requests for the signals whose current green has run its planned time."""
        S = len(stage)
        green_now = self.greens[np.arange(S), np.clip(stage, 0, self.greens.shape[1] - 1)]
        due = ~in_transition & (stage_time >= green_now - 1e-6)
        d = np.full(S, -1, dtype=np.int32)
        d[due] = ((stage[due] + 1) % self.n_stages[due]).astype(np.int32)
        return d


def _make_engine(
    scenario: Scenario | str,
    config: EnvConfig | Mapping[str, Any] | None,
    signals: Sequence[str] | str | None,
    backend: str,
    render_mode: str | None,
) -> SignalEngine:
    """The shared constructor checks of both environments."""
    if render_mode is not None:
        raise WulinError("render_mode: the Wulin envs do not render; use `wulin simulate --gui`")
    cfg = config if isinstance(config, EnvConfig) else EnvConfig.from_dict(config or {})
    return SignalEngine(scenario, cfg, signals=signals, backend=backend)


class SignalEngine:
    """The shared core of both environments: one SUMO run, the actuator, the state reader.

    Args:
        scenario: Scenario or scenario id.
        config: Observation, reward and action settings.
        signals: Controlled signal ids (all by default); the others run their SUMO programs.
        backend: ``"libsumo"`` (one per process) or ``"traci"``.
        label: SUMO instance label.
        sumo_args: More SUMO options; by default SUMO's warnings (teleports) are silenced so
            training logs stay readable.
    """

    def __init__(
        self,
        scenario: Scenario | str,
        config: EnvConfig | None = None,
        *,
        signals: Sequence[str] | str | None = None,
        backend: str = "libsumo",
        label: str | None = None,
        sumo_args: Sequence[str] = ("--no-warnings", "true"),
    ) -> None:
        self.scenario = _as_scenario(scenario)
        self.sumo_args = tuple(sumo_args)
        self.config = config or EnvConfig()
        self.layout = district_layout(self.scenario, signals)
        if self.layout.n_signals == 0:
            raise WulinError(f"{self.scenario.net_file}: the network has no traffic lights to control")
        self.padding = SignalPadding.build(self.layout, self.config.max_green,
                                           self.config.min_green)
        self.obs_low, self.obs_high = observation_bounds(self.padding, self.config.observation)
        self.obs_width = int(self.obs_low.size)
        self.backend = backend
        self.label = label
        self._reward = reward_fn(self.config.reward)
        # only differential rewards look at the previous state: copy it only for them
        self._needs_prev = self.config.reward in DIFFERENTIAL_REWARDS
        self.extra_fields: tuple[str, ...] = ()
        self.sim: Simulation | None = None
        self.actuator: SignalActuator | None = None
        self.clock: StepClock | None = None
        self.reader: StateReader | None = None
        self.state: DistrictState = DistrictState.empty(self.layout)
        self._prev: DistrictState | None = None
        self.schedule = SplitSchedule(self.padding, self.config)
        self.red_limit = RedLimit(self.padding, self.config.max_red)
        self.time = self.scenario.begin
        end = self.scenario.end
        if self.config.episode_seconds > 0:
            end = min(end, self.scenario.begin + self.config.episode_seconds)
        self.end = end
        self.steps = 0

    # ------------------------------------------------------------------ spaces
    @property
    def n_actions(self) -> int:
        return self.padding.n_stages

    def agent_observation_space(self) -> spaces.Box:
        return spaces.Box(self.obs_low, self.obs_high, dtype=np.float32)

    def agent_action_space(self) -> spaces.Space:
        if self.config.action_mode == "stage":
            return spaces.Discrete(self.padding.n_stages)
        return spaces.Box(-1.0, 1.0, (self.padding.n_stages,), dtype=np.float32)

    def action_mask(self) -> np.ndarray:
        """``[S, K]`` int8: 1 for the actions that are real stages of each signal."""
        return self.padding.stage_valid.astype(np.int8)

    # ------------------------------------------------------------------ lifecycle
    def reset(self, seed: int) -> np.ndarray:
        """Start (or reload) SUMO with ``seed``; returns the first ``[S, W]`` observation."""
        if self.sim is None:
            self.sim = Simulation(self.scenario, seed=seed, backend=self.backend,  # type: ignore[arg-type]
                                  label=self.label, extra_args=self.sumo_args)
            self.sim.start()
        else:
            self.sim.reset(seed)
        # read only the lane variables the observation and reward use (and a teacher's)
        self._new_reader()
        self.actuator = SignalActuator(self.sim, self.layout, **self.config.actuator_params(self.layout))
        self.actuator.reset()
        self.clock = StepClock(self.sim.time, self.scenario.step_length, self.end)
        self.schedule = SplitSchedule(self.padding, self.config)
        self.red_limit.reset()
        self.time = self.sim.time
        self.steps = 0
        self._prev = None
        self._read()
        return observe(self.padding, self.config.observation, self.state)

    def _new_reader(self) -> None:
        assert self.sim is not None
        need = needed_variables(self.config.observation, self.config.reward)
        self.reader = StateReader(self.sim, self.layout, (*need, *self.extra_fields))
        self.reader.subscribe()

    def read_also(self, fields: Sequence[str]) -> None:
        """Also read the lane variables of these :class:`DistrictState` ``fields`` from now on
        (a teacher controller's ``state_fields``), re-reading the current state."""
        have = (*needed_variables(self.config.observation, self.config.reward), *self.extra_fields)
        wanted = tuple(v for v in lane_variables(fields) if v not in have)
        if self.sim is None or not wanted:
            return
        self.extra_fields += wanted
        self._new_reader()
        self._read()

    def close(self) -> None:
        if self.sim is not None:
            self.sim.cleanup()
            self.sim = None

    @property
    def done(self) -> bool:
        return self.time >= self.end - 1e-9

    def _read(self) -> None:
        act = self.actuator
        assert self.reader is not None and act is not None
        stage, stage_time, in_transition = act.views()  # one pass, as the episode loop
        self.reader.read(into=self.state, stage=stage, stage_time=stage_time,
                         in_transition=in_transition)

    def _advance(self, seconds: float, splits: bool = False) -> None:
        """Advance ``seconds`` (whole steps) on the episode loop's event-to-event path.

        ``stage`` mode: SUMO advances from one actuator event to the next
        (:func:`sim.loop.advance_events`, the same loop core and millisecond clock as
        ``experiments.episode``).  ``splits`` mode: the split schedule may ask for a stage at
        any step, so it is consulted every step.
        """
        sim, act, clock = self.sim, self.actuator, self.clock
        assert sim is not None and act is not None and clock is not None
        until = clock.later(seconds)
        if not splits:
            act.tick(advance_events(sim, act, clock, until))
        else:
            while clock.time < until - 1e-9:
                d = self.schedule.decision(act.stage, act.stage_time, act.in_transition)
                if (d >= 0).any():
                    act.request(d)
                act.tick(advance_events(sim, act, clock, clock.later(clock.step)))
        self.time = clock.time

    def step(self, action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Apply one decision for all controlled signals; returns ``(obs [S, W], reward [S])``.

        ``action`` is ``[S]`` stage indices (``stage`` mode; padded actions keep the stage) or
        ``[S, K]`` split adjustments in [-1, 1] (``splits`` mode).
        """
        if self.sim is None or self.actuator is None:
            raise WulinError("environment not reset; call reset() first")
        cfg = self.config
        if cfg.action_mode == "stage":
            a = np.asarray(action).reshape(self.layout.n_signals).astype(np.int64)
            if (a < 0).any() or (a >= self.padding.n_stages).any():
                raise WulinError(f"action out of range 0..{self.padding.n_stages - 1}: {a.tolist()}")
            act = self.actuator
            decision = stage_decision(a, self.layout.n_stages, act.stage, act.in_transition)
            self.actuator.request(self.red_limit.apply(decision, self.state))
            self._prev = self._copy_state() if self._needs_prev else None
            self._advance(cfg.delta_t)
            self._read()
            r = self._reward(self.padding, self.state, self._prev, cfg.delta_t)
        else:
            a = np.asarray(action, dtype=np.float32).reshape(self.layout.n_signals, self.padding.n_stages)
            self.schedule.set_action(a)
            # reward: the mean over the cycle, sampled every delta_t (one sample is too noisy)
            total = np.zeros(self.layout.n_signals, dtype=np.float64)
            samples = 0
            left = cfg.cycle
            while left > 1e-9 and not self.done:
                chunk = min(cfg.delta_t, left)
                self._prev = self._copy_state() if self._needs_prev else None
                self._advance(chunk, splits=True)
                self._read()
                total += self._reward(self.padding, self.state, self._prev, chunk)
                samples += 1
                left -= chunk
            r = total / max(samples, 1)
        self.steps += 1
        obs = observe(self.padding, cfg.observation, self.state)
        return obs, (np.asarray(r, dtype=np.float32) * cfg.reward_scale)

    def _copy_state(self) -> DistrictState:
        return self.state.copy()

    def split_plans(self) -> dict[str, list[tuple[str, float]]]:
        """``splits`` mode: per signal, ``(green state, green seconds)`` of the current plan."""
        out = {}
        for s, spec in enumerate(self.layout.specs):
            out[spec.id] = [(spec.stages[k], float(self.schedule.greens[s, k]))
                            for k in range(spec.n_stages)]
        return out

    def info(self) -> dict[str, Any]:
        """Network-level numbers for logging (vehicles halting and on the controlled lanes)."""
        return {
            "time": float(self.time),
            "queue": float(self.state.queue.sum()),
            "vehicles": float(self.state.count.sum()),
        }


def _draw_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, MAX_SEED))


class WulinEnv(gym.Env):
    """Gymnasium env: one signal, or several signals as one centralised agent.

    Args:
        scenario: Scenario or id (default ``grid-am-v1``).
        signals: One signal id (single-signal env), a list of ids, or None for all signals.
        config: :class:`EnvConfig`, or a dict of its fields.
        backend: ``"libsumo"`` or ``"traci"``.
        render_mode: Not supported (use ``wulin simulate --gui``); must be None.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        scenario: Scenario | str = "grid-am-v1",
        signals: Sequence[str] | str | None = None,
        config: EnvConfig | Mapping[str, Any] | None = None,
        backend: str = "libsumo",
        render_mode: str | None = None,
    ) -> None:
        self.engine = _make_engine(scenario, config, signals, backend, render_mode)
        self.single = isinstance(signals, str)
        S, K = self.engine.layout.n_signals, self.engine.n_actions
        box = self.engine.agent_observation_space()
        if self.single:
            self.observation_space = box
            self.action_space = self.engine.agent_action_space()
        else:
            self.observation_space = spaces.Box(np.tile(box.low, S), np.tile(box.high, S), dtype=np.float32)
            if self.engine.config.action_mode == "stage":
                self.action_space = spaces.MultiDiscrete(np.full(S, K, dtype=np.int64))
            else:
                self.action_space = spaces.Box(-1.0, 1.0, (S * K,), dtype=np.float32)

    def _obs(self, obs: np.ndarray) -> np.ndarray:
        return obs[0] if self.single else obs.reshape(-1)

    def _info(self) -> dict[str, Any]:
        mask = self.engine.action_mask()
        return {**self.engine.info(), "action_mask": mask[0] if self.single else mask}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):  # type: ignore[override]
        super().reset(seed=seed)
        sumo_seed = seed if seed is not None else _draw_seed(self.np_random)
        obs = self.engine.reset(int(sumo_seed) % (MAX_SEED + 1))
        return self._obs(obs), self._info()

    def step(self, action: Any):  # type: ignore[override]
        obs, r = self.engine.step(np.asarray(action))
        return self._obs(obs), float(r.sum()), False, self.engine.done, self._info()

    def close(self) -> None:
        self.engine.close()


class WulinParallelEnv(ParallelEnv):
    """PettingZoo ``ParallelEnv``: one agent per signal, identical spaces (padded).

    Args:
        scenario: Scenario or id (default ``grid-am-v1``).
        config: :class:`EnvConfig`, or a dict of its fields.
        signals: Controlled signals (all by default).
        backend: ``"libsumo"`` or ``"traci"`` (several envs in one process need traci).
    """

    metadata = {"name": "wulin_signals_v0", "render_modes": [], "is_parallelizable": True}

    def __init__(
        self,
        scenario: Scenario | str = "grid-am-v1",
        config: EnvConfig | Mapping[str, Any] | None = None,
        signals: Sequence[str] | None = None,
        backend: str = "libsumo",
        render_mode: str | None = None,
    ) -> None:
        self.engine = _make_engine(scenario, config, signals, backend, render_mode)
        self.possible_agents = list(self.engine.layout.signal_ids)
        self.agents: list[str] = []
        self.render_mode = None
        self._obs_space = {a: self.engine.agent_observation_space() for a in self.possible_agents}
        self._act_space = {a: self.engine.agent_action_space() for a in self.possible_agents}
        self._rng = np.random.default_rng()
        self._mask_rows: list[np.ndarray] | None = None

    def observation_space(self, agent: str) -> spaces.Space:
        return self._obs_space[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self._act_space[agent]

    def _infos(self) -> dict[str, dict[str, Any]]:
        # the mask never changes: each agent's row is made once, each step gets fresh dicts
        if self._mask_rows is None:
            mask = self.engine.action_mask()
            mask.flags.writeable = False  # shared by every step's infos
            self._mask_rows = list(mask)
        rows = zip(self.possible_agents, self._mask_rows, strict=True)
        return {a: {"action_mask": m} for a, m in rows}

    def _stage_actions(self, actions: Mapping[str, Any]) -> np.ndarray:
        """``[S]`` stage indices from the agents' actions (a missing agent: stage 0)."""
        agents = self.possible_agents
        values = [actions.get(ag, 0) for ag in agents]
        try:  # one conversion for the whole list: ints, numpy scalars, 0-d or 1-element arrays
            return np.array(values, dtype=np.int64).reshape(len(agents))
        except (TypeError, ValueError):  # anything else, agent by agent (naming the bad one)
            a = np.zeros(len(agents), dtype=np.int64)
            for i, ag in enumerate(agents):
                try:
                    a[i] = int(np.asarray(values[i]).reshape(()))
                except (TypeError, ValueError) as exc:
                    raise WulinError(f"action of agent {ag!r}: expected one stage index, "
                                     f"got {values[i]!r}") from exc
            return a

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):  # type: ignore[override]
        if seed is not None:
            self._rng = np.random.default_rng(seed)
            sumo_seed = seed % (MAX_SEED + 1)
        else:
            sumo_seed = _draw_seed(self._rng)
        obs = self.engine.reset(int(sumo_seed))
        self.agents = list(self.possible_agents)
        return {a: obs[i] for i, a in enumerate(self.agents)}, self._infos()

    def step(self, actions: Mapping[str, Any]):  # type: ignore[override]
        if not self.agents:
            raise WulinError("episode over; call reset() first")
        K = self.engine.n_actions
        if self.engine.config.action_mode == "stage":
            a = self._stage_actions(actions)
        else:
            a = np.zeros((len(self.possible_agents), K), dtype=np.float32)
            for i, ag in enumerate(self.possible_agents):
                if ag in actions:
                    a[i] = np.asarray(actions[ag], dtype=np.float32).reshape(K)
        obs, r = self.engine.step(a)
        done = self.engine.done
        agents = self.possible_agents
        observations = {ag: obs[i] for i, ag in enumerate(agents)}
        rewards = {ag: float(r[i]) for i, ag in enumerate(agents)}
        terminations = {ag: False for ag in agents}
        truncations = {ag: done for ag in agents}
        infos = self._infos()
        if done:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def state(self) -> np.ndarray:
        """The global state: every agent's observation, concatenated."""
        return observe(self.engine.padding, self.engine.config.observation, self.engine.state).reshape(-1)

    def close(self) -> None:
        self.engine.close()


def parallel_env(**kwargs: Any) -> WulinParallelEnv:
    """PettingZoo-style constructor: ``parallel_env(scenario="grid-am-v1", config={...})``."""
    return WulinParallelEnv(**kwargs)


def register_envs() -> None:
    """Register the Gymnasium ids ``wulin/Signal-v0`` and ``wulin/District-v0`` (idempotent)."""
    registry = gym.envs.registration.registry
    if "wulin/District-v0" not in registry:
        gym.register(id="wulin/District-v0", entry_point="sim.env:WulinEnv",
                     kwargs={"scenario": "grid-am-v1"}, disable_env_checker=True)
    if "wulin/Signal-v0" not in registry:
        gym.register(id="wulin/Signal-v0", entry_point="sim.env:WulinEnv",
                     kwargs={"scenario": "grid-am-v1", "signals": "B1"}, disable_env_checker=True)


register_envs()

__all__ = [
    "ACTION_MODES", "EnvConfig", "SignalEngine", "SplitSchedule", "WulinEnv", "WulinParallelEnv",
    "district_layout", "parallel_env", "register_envs", "stage_decision",
]
