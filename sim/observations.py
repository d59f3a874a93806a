"""Observation and reward terms for the RL environments, chosen by name from registries.

Every term works on a whole :class:`~sim.state.DistrictState` at once and returns one row per
signal (``[n_signals, width]`` for observations, ``[n_signals]`` for rewards), so the
Gymnasium env, the PettingZoo env and :class:`agents.policy_controller.PolicyController`
compute exactly the same numbers from the same state.

Heterogeneous intersections share one observation space by *padding*: a signal with fewer
in-lanes or stages than the largest one gets zeros in the missing slots (and a ``mask`` term
says which stages exist).  :class:`SignalPadding` holds the index arrays for that, built once.

Observation terms (all scaled to about [0, 1], pressure to [-1, 1]):

========== ======================= ===================================================
name       width per signal        meaning
========== ======================= ===================================================
stage      K + 2                   one-hot current stage, in-transition flag,
                                   time in stage / max green (clipped at 1)
mask       K                       1 for the stages this signal has
density    L                       vehicles per in-lane / lane capacity (length / 7.5 m)
queue      L                       halting vehicles per in-lane / capacity
waiting    L                       tanh(accumulated waiting time / (60 s x capacity))
speed      L                       mean speed / speed limit (1 on an empty lane)
pressure   L                       in-lane density minus mean density of its exits
time-loss  L                       vehicles x (1 - speed / limit) / capacity
stage-     K                       per stage: the max-pressure of its green movements
pressure                           (vehicles upstream minus downstream, shared as in
                                   max-pressure), as sign(p) log(1 + |p|) / log(101):
                                   monotone, so the best stage stays the largest entry,
                                   and never saturating (clipped at +-2: |p| > 10,000)
green-ready 1                      1 when the signal is in green and has served its
                                   minimum green (a change would start now)
approach   L x 6                   per in-lane, vehicles in 3 segments upstream of the
                                   stop line (0-30, 30-90, 90-200 m) x 2 speed bins
                                   (below / above 30 % of the limit), over the segment's
                                   capacity (:mod:`sim.approach`; per-vehicle reads)
upstream   2 L                     neighbour information: per in-lane, the vehicles on
                                   the upstream signals' in-lanes whose movements feed
                                   it (:mod:`sim.feeds`), then those of them whose
                                   movement is green now, over the lane's capacity
signal-    T                       one-hot of the signal's type (number of stages,
type                               number of in-lanes); with a shared policy network
                                   its first layer makes this a learned per-type
                                   embedding (``T`` types in the layout)
========== ======================= ===================================================

``K`` is the largest number of stages and ``L`` the largest number of controlled in-lanes of
any signal in the layout.

Reward terms (one value per signal, larger is better, per decision):

============= ==========================================================================
queue         minus the halting vehicles on the signal's in-lanes
pressure      minus |vehicles on in-lanes - vehicles on out-lanes| (max-pressure's objective)
waiting       minus the accumulated waiting time on the in-lanes / 100 s
diff-waiting  decrease of the accumulated waiting time since the last decision / 100 s
              (sumo-rl's default reward)
time-loss     minus the rate at which vehicles on the in-lanes lose time, vehicle-seconds
              per second: sum of count x (1 - speed / limit).  The lane-level estimate of
              SUMO's ``timeLoss``, the KPI the baselines are compared on.
============= ==========================================================================

Register more with :func:`register_observation` and :func:`register_reward`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sim.approach import BINS, segment_capacity
from sim.errors import WulinError
from sim.feeds import FeedArrays, feed_arrays
from sim.state import APPROACH, LANE_VARIABLES, DistrictLayout, DistrictState

VEHICLE_SPACE = 7.5  # metres per queued car (5 m length + 2.5 m gap): lane capacity


@dataclass(frozen=True, eq=False)
class SignalPadding:
    """Per-signal padded index arrays over a :class:`DistrictLayout` (built once).

    Attributes:
        layout: The layout.
        n_lanes: ``L``, the largest number of in-lanes of a signal.
        n_stages: ``K``, the largest number of stages of a signal.
        lane_index: ``[S, L]`` index into ``layout.in_lanes`` (0 where padded).
        lane_valid: ``[S, L]`` True for real lanes.
        lane_capacity: ``[S, L]`` vehicles a lane holds (1 where padded).
        lane_speed: ``[S, L]`` speed limit in m/s (1 where padded).
        exit_density_weight: ``[n_in, n_out]`` averaging matrix: each in-lane's mean over
            the out-lanes of its movements.
        out_capacity: ``[n_out]`` vehicles an out-lane holds.
        stage_valid: ``[S, K]`` True for the stages a signal has.
        max_green: ``[S]`` maximum green used to scale time in stage.
        stage_in: ``[S * K, n_in]`` weight of each in-lane's count in each stage's pressure.
        stage_out: ``[S * K, n_out]`` weight of each out-lane's count in each stage's pressure.
        min_green: ``[S]`` minimum green (the ``green-ready`` term).
        approach_capacity: ``[S, L, BINS]`` vehicles each approach segment holds.
        feeds: The links from upstream signals (:func:`sim.feeds.feed_arrays`).
        signal_type: ``[S]`` type index (distinct (stages, in-lanes) pairs, sorted).
    """

    layout: DistrictLayout
    n_lanes: int
    n_stages: int
    lane_index: np.ndarray
    lane_valid: np.ndarray
    lane_capacity: np.ndarray
    lane_speed: np.ndarray
    exit_density_weight: np.ndarray
    out_capacity: np.ndarray
    stage_valid: np.ndarray
    max_green: np.ndarray
    stage_in: np.ndarray
    stage_out: np.ndarray
    min_green: np.ndarray
    approach_capacity: np.ndarray
    feeds: FeedArrays
    signal_type: np.ndarray

    @classmethod
    def build(
        cls,
        layout: DistrictLayout,
        max_green: float | np.ndarray = 90.0,
        min_green: float | np.ndarray = 5.0,
    ) -> SignalPadding:
        S = layout.n_signals
        per_signal = np.diff(layout.in_ptr)
        L = int(per_signal.max()) if S else 1
        K = int(layout.n_stages.max()) if S else 1
        lane_index = np.zeros((S, L), dtype=np.int64)
        lane_valid = np.zeros((S, L), dtype=bool)
        for s in range(S):
            a, b = int(layout.in_ptr[s]), int(layout.in_ptr[s + 1])
            lane_index[s, : b - a] = np.arange(a, b)
            lane_valid[s, : b - a] = True
        cap_all = np.maximum(layout.in_lane_length / VEHICLE_SPACE, 1.0).astype(np.float32)
        speeds = np.array(
            [spec.lane_speeds[lane] for spec in layout.specs for lane in spec.in_lanes],
            dtype=np.float32,
        )
        lane_capacity = np.where(lane_valid, cap_all[lane_index], 1.0).astype(np.float32)
        lane_speed = np.where(lane_valid, speeds[lane_index] if speeds.size else 1.0, 1.0)
        w = np.zeros((layout.n_in, layout.n_out), dtype=np.float32)
        np.add.at(w, (layout.mov_in, layout.mov_out), 1.0)
        w = (w > 0).astype(np.float32)
        w /= np.maximum(w.sum(axis=1, keepdims=True), 1.0)
        stage_valid = np.arange(K)[None, :] < layout.n_stages[:, None]
        mg = np.broadcast_to(np.asarray(max_green, dtype=np.float32), (S,)).copy()
        mg[~np.isfinite(mg)] = 120.0  # "no maximum": scale time in stage by two minutes
        stage_in, stage_out = _stage_pressure_weights(layout, K)
        return cls(
            layout=layout,
            n_lanes=L,
            n_stages=K,
            lane_index=lane_index,
            lane_valid=lane_valid,
            lane_capacity=lane_capacity,
            lane_speed=lane_speed.astype(np.float32),
            exit_density_weight=w,
            out_capacity=np.maximum(layout.out_lane_length / VEHICLE_SPACE, 1.0).astype(np.float32),
            stage_valid=stage_valid,
            max_green=np.maximum(mg, 1.0),
            stage_in=stage_in,
            stage_out=stage_out,
            min_green=np.broadcast_to(np.asarray(min_green, dtype=np.float32), (S,)).copy(),
            approach_capacity=segment_capacity(layout.in_lane_length)[lane_index],
            feeds=feed_arrays(layout),
            signal_type=_signal_types(layout),
        )

    def lanes(self, values: np.ndarray) -> np.ndarray:
        """Per-in-lane ``values`` as ``[S, L]``, zero where padded."""
        return np.where(self.lane_valid, values[self.lane_index], 0.0).astype(np.float32)


def _stage_pressure_weights(layout: DistrictLayout, K: int) -> tuple[np.ndarray, np.ndarray]:
    """Max-pressure's movement weights summed per (signal, stage): ``[S*K, n_in]``, ``[S*K, n_out]``.

    A movement's pressure is its in-lane count shared among the lane's movements minus its
    out-lane count shared among the movements feeding it (``controllers.kernels``), so a
    stage's pressure is a fixed linear map of the lane counts.
    """
    S = layout.n_signals
    w_in = np.zeros((max(S * K, 1), layout.n_in), dtype=np.float32)
    w_out = np.zeros((max(S * K, 1), layout.n_out), dtype=np.float32)
    if layout.n_movements == 0:
        return w_in, w_out
    fan_out = np.bincount(layout.mov_in, minlength=layout.n_in).astype(np.float32)
    fan_in = np.bincount(layout.mov_out, minlength=layout.n_out).astype(np.float32)
    for s in range(S):
        for m in range(int(layout.mov_ptr[s]), int(layout.mov_ptr[s + 1])):
            i, o, link = int(layout.mov_in[m]), int(layout.mov_out[m]), int(layout.mov_link[m])
            for k in range(int(layout.n_stages[s])):
                if layout.stage_green[s, k, link]:
                    w_in[s * K + k, i] += 1.0 / fan_out[i]
                    w_out[s * K + k, o] += 1.0 / fan_in[o]
    return w_in, w_out


def _signal_types(layout: DistrictLayout) -> np.ndarray:
    keys = list(zip(layout.n_stages.tolist(), np.diff(layout.in_ptr).tolist(), strict=True))
    index = {k: i for i, k in enumerate(sorted(set(keys)))}
    return np.array([index[k] for k in keys], dtype=np.int64)


ObservationFn = Callable[[SignalPadding, DistrictState], np.ndarray]
RewardFn = Callable[[SignalPadding, DistrictState, "DistrictState | None", float], np.ndarray]


@dataclass(frozen=True)
class ObservationTerm:
    """A named observation term: its width and bounds given the padding, and its function."""

    name: str
    fn: ObservationFn
    width: Callable[[SignalPadding], int]
    low: float = 0.0
    high: float = 1.0


_OBSERVATIONS: dict[str, ObservationTerm] = {}
#: Rewards that use the previous state (the envs copy the state before each decision only
#: for these); add a name here when registering another one.
DIFFERENTIAL_REWARDS: set[str] = {"diff-waiting"}
_REWARDS: dict[str, RewardFn] = {}


def register_observation(
    name: str, width: Callable[[SignalPadding], int], low: float = 0.0, high: float = 1.0
) -> Callable[[ObservationFn], ObservationFn]:
    """Decorator: register an observation term ``fn(padding, state) -> [S, width]``."""

    def deco(fn: ObservationFn) -> ObservationFn:
        _OBSERVATIONS[name] = ObservationTerm(name, fn, width, low, high)
        return fn

    return deco


def register_reward(name: str) -> Callable[[RewardFn], RewardFn]:
    """Decorator: register a reward ``fn(padding, state, previous_state, dt) -> [S]``."""

    def deco(fn: RewardFn) -> RewardFn:
        _REWARDS[name] = fn
        return fn

    return deco


def available_observations() -> list[str]:
    return sorted(_OBSERVATIONS)


def available_rewards() -> list[str]:
    return sorted(_REWARDS)


def observation_term(name: str, where: str = "observation") -> ObservationTerm:
    """The term registered as ``name``; a :class:`WulinError` listing the known ones otherwise."""
    if name not in _OBSERVATIONS:
        raise WulinError(
            f"{where}: unknown observation {name!r}; known: {', '.join(available_observations())}"
        )
    return _OBSERVATIONS[name]


def reward_fn(name: str, where: str = "reward") -> RewardFn:
    """The reward registered as ``name``; a :class:`WulinError` listing the known ones otherwise."""
    if name not in _REWARDS:
        raise WulinError(f"{where}: unknown reward {name!r}; known: {', '.join(available_rewards())}")
    return _REWARDS[name]


# ------------------------------------------------------------------ observation terms
def _lanes_width(p: SignalPadding) -> int:
    return p.n_lanes


@register_observation("stage", width=lambda p: p.n_stages + 2)
def obs_stage(p: SignalPadding, st: DistrictState) -> np.ndarray:
    S = p.layout.n_signals
    out = np.zeros((S, p.n_stages + 2), dtype=np.float32)
    stage = np.clip(st.stage, 0, p.n_stages - 1)
    out[np.arange(S), stage] = 1.0
    out[:, p.n_stages] = st.in_transition
    out[:, p.n_stages + 1] = np.minimum(st.stage_time / p.max_green, 1.0)
    return out


@register_observation("mask", width=lambda p: p.n_stages)
def obs_mask(p: SignalPadding, st: DistrictState) -> np.ndarray:
    return p.stage_valid.astype(np.float32)


@register_observation("density", width=_lanes_width)
def obs_density(p: SignalPadding, st: DistrictState) -> np.ndarray:
    return np.minimum(p.lanes(st.count) / p.lane_capacity, 1.0)


@register_observation("queue", width=_lanes_width)
def obs_queue(p: SignalPadding, st: DistrictState) -> np.ndarray:
    return np.minimum(p.lanes(st.queue) / p.lane_capacity, 1.0)


@register_observation("waiting", width=_lanes_width)
def obs_waiting(p: SignalPadding, st: DistrictState) -> np.ndarray:
    return np.tanh(p.lanes(st.waiting) / (60.0 * p.lane_capacity)).astype(np.float32)


@register_observation("speed", width=_lanes_width)
def obs_speed(p: SignalPadding, st: DistrictState) -> np.ndarray:
    v = np.where(p.lanes(st.count) > 0, p.lanes(st.speed) / p.lane_speed, 1.0)
    return np.where(p.lane_valid, np.clip(v, 0.0, 1.0), 0.0).astype(np.float32)


def _exit_density(p: SignalPadding, st: DistrictState) -> np.ndarray:
    out_density = np.minimum(st.out_count / p.out_capacity, 1.0)
    return p.exit_density_weight @ out_density  # [n_in]


@register_observation("pressure", width=_lanes_width, low=-1.0, high=1.0)
def obs_pressure(p: SignalPadding, st: DistrictState) -> np.ndarray:
    exit_d = p.lanes(_exit_density(p, st))
    return np.clip(obs_density(p, st) - exit_d, -1.0, 1.0).astype(np.float32)


def _lane_time_loss(p: SignalPadding, st: DistrictState) -> np.ndarray:
    """Vehicles x (1 - speed / limit) per in-lane, ``[S, L]``: seconds lost per second."""
    count = p.lanes(st.count)
    slow = 1.0 - np.clip(p.lanes(st.speed) / p.lane_speed, 0.0, 1.0)
    return np.where(count > 0, count * slow, 0.0).astype(np.float32)


@register_observation("time-loss", width=_lanes_width)
def obs_time_loss(p: SignalPadding, st: DistrictState) -> np.ndarray:
    return np.minimum(_lane_time_loss(p, st) / p.lane_capacity, 1.0)


def stage_pressure(p: SignalPadding, st: DistrictState) -> np.ndarray:
    """Max-pressure's pressure of every stage, ``[S, K]`` (0 for padded stages)."""
    raw = p.stage_in @ st.count - p.stage_out @ st.out_count
    return np.where(p.stage_valid, raw.reshape(p.layout.n_signals, p.n_stages), 0.0)


_LOG101 = float(np.log(101.0))


@register_observation("stage-pressure", width=lambda p: p.n_stages, low=-2.0, high=2.0)
def obs_stage_pressure(p: SignalPadding, st: DistrictState) -> np.ndarray:
    x = stage_pressure(p, st)
    y = np.sign(x) * np.log1p(np.abs(x)) / _LOG101
    return np.clip(y, -2.0, 2.0).astype(np.float32)


@register_observation("green-ready", width=lambda p: 1)
def obs_green_ready(p: SignalPadding, st: DistrictState) -> np.ndarray:
    ready = ~st.in_transition & (st.stage_time >= p.min_green - 1e-6)
    return ready.astype(np.float32)[:, None]


@register_observation("approach", width=lambda p: p.n_lanes * BINS)
def obs_approach(p: SignalPadding, st: DistrictState) -> np.ndarray:
    bins = np.where(p.lane_valid[:, :, None], st.approach[p.lane_index], 0.0)
    return np.minimum(bins / p.approach_capacity, 1.0).reshape(len(bins), -1).astype(np.float32)


@register_observation("upstream", width=lambda p: 2 * p.n_lanes)
def obs_upstream(p: SignalPadding, st: DistrictState) -> np.ndarray:
    f, n_in = p.feeds, p.layout.n_in
    green = p.layout.stage_green[f.signal, st.stage[f.signal], f.link] & ~st.in_transition[f.signal]
    vehicles = f.share * st.count[f.lane]
    up = np.bincount(f.fed, vehicles, minlength=n_in)
    up_green = np.bincount(f.fed, vehicles * green, minlength=n_in)
    parts = [np.minimum(p.lanes(x) / p.lane_capacity, 1.0) for x in (up, up_green)]
    return np.concatenate(parts, axis=1).astype(np.float32)


@register_observation("signal-type", width=lambda p: int(p.signal_type.max(initial=0)) + 1)
def obs_signal_type(p: SignalPadding, st: DistrictState) -> np.ndarray:
    out = np.zeros((len(p.signal_type), int(p.signal_type.max(initial=0)) + 1), np.float32)
    out[np.arange(len(p.signal_type)), p.signal_type] = 1.0
    return out


# ------------------------------------------------------------------ reward terms
@register_reward("queue")
def reward_queue(p: SignalPadding, st: DistrictState, prev: DistrictState | None, dt: float) -> np.ndarray:
    return -p.lanes(st.queue).sum(axis=1)


@register_reward("pressure")
def reward_pressure(
    p: SignalPadding, st: DistrictState, prev: DistrictState | None, dt: float
) -> np.ndarray:
    lay = p.layout
    inc = np.add.reduceat(st.count, lay.in_ptr[:-1]) if lay.n_in else np.zeros(lay.n_signals)
    out = np.add.reduceat(st.out_count, lay.out_ptr[:-1]) if lay.n_out else np.zeros(lay.n_signals)
    return -np.abs(inc - out).astype(np.float32)


@register_reward("waiting")
def reward_waiting(
    p: SignalPadding, st: DistrictState, prev: DistrictState | None, dt: float
) -> np.ndarray:
    return -p.lanes(st.waiting).sum(axis=1) / 100.0


@register_reward("diff-waiting")
def reward_diff_waiting(
    p: SignalPadding, st: DistrictState, prev: DistrictState | None, dt: float
) -> np.ndarray:
    now = p.lanes(st.waiting).sum(axis=1)
    if prev is None:
        return np.zeros_like(now)
    return (p.lanes(prev.waiting).sum(axis=1) - now) / 100.0


@register_reward("time-loss")
def reward_time_loss(
    p: SignalPadding, st: DistrictState, prev: DistrictState | None, dt: float
) -> np.ndarray:
    return -_lane_time_loss(p, st).sum(axis=1)


def observe(p: SignalPadding, names: tuple[str, ...], st: DistrictState) -> np.ndarray:
    """Concatenate the named terms: ``[S, sum of widths]`` float32."""
    parts = [observation_term(n).fn(p, st) for n in names]
    return np.concatenate(parts, axis=1).astype(np.float32, copy=False)


def observation_bounds(p: SignalPadding, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Per-signal lower and upper bounds of :func:`observe`."""
    lows, highs = [], []
    for n in names:
        t = observation_term(n)
        w = t.width(p)
        lows.append(np.full(w, t.low, np.float32))
        highs.append(np.full(w, t.high, np.float32))
    return np.concatenate(lows), np.concatenate(highs)


# ------------------------------------------------------------------ reading only what is used
_OBS_VARIABLES: dict[str, tuple[str, ...]] = {
    "stage": (), "mask": (), "green-ready": (), "density": ("count",), "queue": ("queue",),
    "waiting": ("waiting",), "speed": ("count", "speed"), "pressure": ("count",),
    "time-loss": ("count", "speed"), "stage-pressure": ("count",),
    "approach": ("count", APPROACH), "upstream": ("count",), "signal-type": (),
}
_REWARD_VARIABLES: dict[str, tuple[str, ...]] = {
    "queue": ("queue",), "pressure": ("count",), "waiting": ("waiting",),
    "diff-waiting": ("waiting",), "time-loss": ("count", "speed"),
}


def needed_variables(observation: tuple[str, ...], reward: str) -> tuple[str, ...]:
    """The in-lane variables an observation and reward read (``queue`` and ``count`` always:
    the envs' ``info`` reports them; :data:`~sim.state.APPROACH` for the per-vehicle bins).
    A registered term not listed here needs the four lane variables."""
    need = {"queue", "count"}
    for name in observation:
        need.update(_OBS_VARIABLES.get(name, LANE_VARIABLES))
    need.update(_REWARD_VARIABLES.get(reward, LANE_VARIABLES))
    return tuple(v for v in (*LANE_VARIABLES, APPROACH) if v in need)
