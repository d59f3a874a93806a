"""Schedule-driven control (Xie, Smith, Barlow et al.; Surtrac), all signals in one Numba kernel.

Every ``decision_interval`` seconds each signal turns the vehicles approaching it into
clusters of jobs per stage and finds, by a forward dynamic program over stage sequences and
durations, the schedule that minimises their cumulative delay over the horizon; it then
extends its current stage or switches to the schedule's first stage (rolling horizon).  Each
signal keeps its planned schedule, from which its downstream neighbours read the vehicles it
will send them (non-local jobs).  The algorithm is in :mod:`controllers.schedule_kernels`; this
module holds the controller and the approach tables it derives from the layout once.

What it reads: lane state (vehicles, halting vehicles, mean speed per in-lane), the
:class:`~sim.state.DistrictState` every controller gets, so it needs no per-vehicle calls and
no detectors; a lane's moving vehicles are taken as spread evenly over its free length.  The
:class:`~sim.actuator.SignalActuator` enforces yellow, all-red, minimum and maximum green as
for every controller; the planner uses the same values and never asks for a change before the
minimum green is served.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from controllers.base import KEEP, ControllerBase, KernelController
from sim.errors import WulinError
from sim.feeds import FeedArrays, feed_arrays

if TYPE_CHECKING:
    from sim.state import DistrictLayout, DistrictState


class ApproachTables(NamedTuple):
    """What the kernel needs to know about each signal's approaches (built once per layout).

    Attributes:
        lane_w: ``[in-lane, stage]`` share of the lane's vehicles each stage serves
            (:func:`_lane_shares`).
        lane_len: In-lane lengths, metres.
        lane_vmax: In-lane speed limits, m/s.
        n_lanes: ``[signal, stage]`` lanes with a green link in the stage.
        feeds: Upstream feeds, grouped by the signal they feed: ``(ptr, upstream signal,
            upstream in-lane, its link, fed in-lane, share of the upstream lane's vehicles,
            travel time)``; a movement whose out-lane lies on an edge another signal's
            in-lanes are on feeds each of them, sharing evenly.
    """

    lane_w: np.ndarray
    lane_len: np.ndarray
    lane_vmax: np.ndarray
    n_lanes: np.ndarray
    feeds: tuple[np.ndarray, ...]


def approach_tables(layout: DistrictLayout, neighbours: bool = True) -> ApproachTables:
    """The :class:`ApproachTables` of ``layout`` (``neighbours=False``: no feeds)."""
    from controllers.kernels import lane_stage_matrix

    green = lane_stage_matrix(layout).astype(np.float64)
    lane_w = _lane_shares(layout)
    speeds = {ln: v for sp in layout.specs for ln, v in sp.lane_speeds.items()}
    lane_vmax = np.array([speeds.get(ln, 13.9) for ln in layout.in_lanes], dtype=np.float64)
    lane_len = layout.in_lane_length.astype(np.float64)
    n_lanes = np.zeros(layout.stage_green.shape[:2], dtype=np.float64)
    for i in range(layout.n_in):
        n_lanes[layout.in_lane_signal[i]] += green[i, : n_lanes.shape[1]]
    return ApproachTables(
        lane_w, lane_len, lane_vmax, n_lanes, _feeds(layout, lane_len, lane_vmax, neighbours)
    )


def _lane_shares(layout: DistrictLayout) -> np.ndarray:
    """``[in-lane, stage]``: each movement takes its share of the lane's vehicles (one over
    the lane's movements) to the stages it is green in, split evenly; a movement green in
    every stage (a free right turn) is served whatever the signal does and counts nowhere."""
    from controllers.kernels import movement_weights

    w_in, _ = movement_weights(layout)
    lane_w = np.zeros((layout.n_in, layout.stage_green.shape[1]), dtype=np.float64)
    for s in range(layout.n_signals):
        ns = int(layout.n_stages[s])
        for m in range(int(layout.mov_ptr[s]), int(layout.mov_ptr[s + 1])):
            g = layout.stage_green[s, :ns, layout.mov_link[m]]
            n_green = int(g.sum())
            if 0 < n_green < ns:
                lane_w[layout.mov_in[m], :ns] += np.where(g, w_in[m] / n_green, 0.0)
    return lane_w


def _feeds(
    layout: DistrictLayout, lane_len: np.ndarray, lane_vmax: np.ndarray, neighbours: bool
) -> tuple[np.ndarray, ...]:
    """:data:`ApproachTables.feeds` from :func:`sim.feeds.feed_arrays`, with each fed lane's
    free-flow travel time."""
    f = feed_arrays(layout)
    if not neighbours:
        f = FeedArrays(*(a[:0] for a in f))
    ptr = np.searchsorted(layout.in_lane_signal[f.fed], np.arange(layout.n_signals + 1))
    tt = (lane_len[f.fed] / lane_vmax[f.fed]).astype(np.float64)
    return (ptr.astype(np.int64), f.signal, f.lane, f.link, f.fed, f.share, tt)


class ScheduleDrivenController(KernelController):
    """Schedule-driven control (Surtrac-style), re-planned every ``decision_interval`` seconds.

    Args:
        decision_interval: Seconds between re-plans.
        horizon: Seconds of arrivals planned for.
        min_green: Minimum green (planner and actuator), seconds.
        max_green: Maximum green (planner and actuator), seconds.
        yellow: Yellow seconds; default: each signal's own program's (as Webster keeps it).
        all_red: All-red seconds; default: each signal's own program's.
        headway: Saturation headway per lane, seconds per vehicle.
        startup: Start-up lost time at the beginning of a green, seconds.
        gap: Arrivals this many seconds apart begin a new cluster.
        span: A cluster of arrivals spans at most this many seconds.
        clusters: Clusters per stage, the queue included (fewer where the DP would pass
            ``schedule_kernels.MAX_CODES`` states).
        gain: Switch only when that saves at least this many vehicle-seconds over the best
            schedule that extends the current stage.
        max_red: When the signal switches, a stage with queued vehicles red this long goes
            next, seconds.
        slow: Moving vehicles are taken to approach at least this share of the speed limit.
        neighbours: Read upstream signals' planned outflows (non-local jobs).
        use_numba: Use the compiled kernel (False runs its outer loop as Python).
    """

    name = "schedule-driven"
    state_fields = ("count", "queue", "speed", "stage", "stage_time", "in_transition")

    def __init__(
        self,
        decision_interval: float = 2.0,
        horizon: float = 60.0,
        min_green: float = 5.0,
        max_green: float = 60.0,
        yellow: float | None = None,
        all_red: float | None = None,
        headway: float = 2.0,
        startup: float = 2.0,
        gap: float = 3.0,
        span: float = 20.0,
        clusters: int = 3,
        gain: float = 0.0,
        max_red: float = 120.0,
        slow: float = 0.5,
        neighbours: bool = True,
        use_numba: bool = True,
    ) -> None:
        from controllers import schedule_kernels as sk

        positive = {
            "decision_interval": decision_interval,
            "horizon": horizon,
            "headway": headway,
            "span": span,
            "max_red": max_red,
            "max_green": max_green,
            "slow": slow,
        }
        for key, v in positive.items():
            if not v > 0:
                raise WulinError(f"schedule-driven: {key} must be > 0, got {v}")
        for key, v in {
            "min_green": min_green,
            "yellow": 0 if yellow is None else yellow,
            "all_red": 0 if all_red is None else all_red,
            "startup": startup,
            "gap": gap,
            "gain": gain,
        }.items():
            if not v >= 0:
                raise WulinError(f"schedule-driven: {key} must be >= 0, got {v}")
        if int(clusters) != clusters or not 1 <= clusters <= 8:
            raise WulinError(f"schedule-driven: clusters must be an integer 1..8, got {clusters}")
        self.decision_interval = float(decision_interval)
        self.params = np.zeros(sk.N_PARAMS, dtype=np.float64)
        for idx, v in (
            (sk.HORIZON, horizon),
            (sk.HEADWAY, headway),
            (sk.STARTUP, startup),
            (sk.GAP, gap),
            (sk.SPAN, span),
            (sk.CLUSTERS, clusters),
            (sk.GAIN, gain),
            (sk.MAX_RED, max_red),
            (sk.SLOW, slow),
            (sk.MIN_GREEN, min_green),
            (sk.MAX_GREEN, max_green),
        ):
            self.params[idx] = float(v)
        self.neighbours = bool(neighbours)
        self.yellow_arg, self.all_red_arg = yellow, all_red
        self.actuator_params: dict[str, Any] = {"min_green": min_green, "max_green": max_green}
        self.use_numba = use_numba

    def reset(self, layout: DistrictLayout, seed: int) -> None:
        from controllers import schedule_kernels as sk
        from controllers.webster.plans import network_intergreen

        ControllerBase.reset(self, layout, seed)
        kernel = sk.schedule_driven_loop
        self._kernel = kernel if self.use_numba else kernel.py_func
        self.out = np.full(layout.n_signals, KEEP, dtype=np.int32)
        self._args: tuple[Any, ...] | None = None
        self._bound: tuple[Any, ...] = ()
        self._call = self._kernel
        self.tables = approach_tables(layout, self.neighbours)
        self.caps = sk.cluster_caps(layout.n_stages, int(self.params[sk.CLUSTERS]))
        self.sizes = sk.work_sizes(layout.n_stages, self.caps, self.params[sk.HORIZON])
        k = layout.stage_green.shape[1]
        self.waited = np.zeros((layout.n_signals, k), dtype=np.float64)
        self.blk_start = np.full((layout.n_signals, k), np.inf)
        self.blk_end = np.full((layout.n_signals, k), np.inf)
        self._now = np.zeros(1, dtype=np.float64)
        self._clock = np.full(1, -np.inf)
        inter = [network_intergreen(spec) for spec in layout.specs]
        yellow = np.array(
            [y if self.yellow_arg is None else float(self.yellow_arg) for y, _ in inter]
        )
        all_red = np.array(
            [r if self.all_red_arg is None else float(self.all_red_arg) for _, r in inter]
        )
        self.clearance = yellow + all_red
        self.actuator_params = {**self.actuator_params, "yellow": yellow, "all_red": all_red}

    def kernel_args(self, state: DistrictState) -> tuple:
        lay, tab = self.layout, self.tables
        return (
            self._now,
            state.count,
            state.queue,
            state.speed,
            state.stage,
            state.stage_time,
            state.in_transition,
            lay.in_ptr,
            lay.n_stages,
            lay.stage_green,
            tab.lane_w,
            tab.lane_len,
            tab.lane_vmax,
            tab.n_lanes,
            self.caps,
            self.clearance,
            tab.feeds,
            self.params,
            self.waited,
            self._clock,
            self.blk_start,
            self.blk_end,
            self.sizes,
            self.out,
        )

    def act(self, state: DistrictState) -> np.ndarray:
        self._now[0] = state.time
        return super().act(state)
