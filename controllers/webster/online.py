"""``webster-online``: Webster splits recomputed every cycle from flows counted at the stop lines.

SUMO has no such program type, so the episode loop drives the actuator with a plan clock per
signal; a cycle boundary's arithmetic is one compiled call (``kernels.webster_online_loop``)
that follows :func:`controllers.webster.formula.webster_timing` operation for operation.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from controllers.base import Capabilities, ControllerBase, Decision
from controllers.webster.formula import SAT_FLOW
from controllers.webster.plans import network_intergreen
from sim.errors import WulinError

if TYPE_CHECKING:
    from sim.state import DistrictLayout, DistrictState


class OnlineWebsterController(ControllerBase):
    """Webster splits recomputed every cycle from flows measured at the stop lines.

    Each signal runs its own cycle clock through the actuator.  At every cycle boundary the
    vehicles counted per in-lane over the cycle (E1 loops at the stop line, added by the
    episode loop) are turned into flow ratios, smoothed, and Webster's formula gives the next
    cycle and greens.  Stage order is the program's.

    Two ways to drive it, the same plan: the episode loop hands each signal's whole next cycle
    to SUMO (``whole_cycles``: :meth:`plan_cycles` at the boundary ->
    :meth:`~sim.actuator.SignalActuator.run_cycle` -> :meth:`cycle_booked` with the cycle's
    end), so Python stops once per cycle per signal; any other driver calls :meth:`act`,
    which asks for each stage at the end of the previous green (one stop per stage).

    Args:
        yellow: Yellow seconds; default: each signal's own (its network program's).
        all_red: All-red seconds; default: each signal's own.
        min_green: Smallest green.
        min_cycle: Smallest cycle.
        max_cycle: Largest cycle.
        sat_flow: Saturation flow, veh/h of green per lane.
        smoothing: Weight of the newest cycle's flows (1 = no memory).
    """

    name = "webster-online"
    capabilities = Capabilities(needs_state=False, lane_counts=True, whole_cycles=True,
                                own_schedule=True)

    def __init__(self, yellow: float | None = None, all_red: float | None = None,
                 min_green: float = 7.0, min_cycle: float = 40.0, max_cycle: float = 150.0,
                 sat_flow: float = SAT_FLOW, smoothing: float = 0.5) -> None:
        if not 0 < smoothing <= 1:
            raise WulinError(f"webster-online: smoothing must be in (0, 1], got {smoothing}")
        if (yellow is not None and not yellow > 0) or (all_red is not None and not all_red >= 0):
            raise WulinError(f"webster-online: need yellow > 0 and all_red >= 0, got "
                             f"{yellow}, {all_red}")
        self.decision_interval = 1.0
        self.yellow_arg, self.all_red_arg = yellow, all_red
        self.min_green = float(min_green)
        self.min_cycle, self.max_cycle = float(min_cycle), float(max_cycle)
        self.sat_flow = float(sat_flow)
        self.smoothing = float(smoothing)
        self.actuator_params: dict[str, Any] = {}

    def reset(self, layout: DistrictLayout, seed: int) -> None:
        from controllers import kernels

        super().reset(layout, seed)
        n = layout.n_signals
        inter = [network_intergreen(spec) for spec in layout.specs]
        self.yellow = np.array([y if self.yellow_arg is None else float(self.yellow_arg)
                                for y, _ in inter])
        self.all_red = np.array([r if self.all_red_arg is None else float(self.all_red_arg)
                                 for _, r in inter])
        self.clearance = self.yellow + self.all_red
        # per signal: which of its in-lanes each stage serves, and by how many stages each
        # lane is served (stage_ratios' rule, precomputed: it runs every cycle)
        self._stage_lanes: list[list[np.ndarray]] = []
        self._n_serving: list[np.ndarray] = []
        for s_, spec in enumerate(layout.specs):
            local = {lane: i for i, lane in enumerate(layout.in_lanes[layout.signal_slice(s_)])}
            idx = [np.array([local[x] for x in spec.lanes_of_stage(k)], dtype=np.int64)
                   for k in range(spec.n_stages)]
            serving = np.zeros(len(local))
            for ix in idx:
                serving[ix] += 1
            self._stage_lanes.append(idx)
            self._n_serving.append(np.maximum(serving, 1))
        # greens never shorter than the actuator's minimum, never capped below the plan
        self.actuator_params = {"yellow": self.yellow, "all_red": self.all_red,
                                "min_green": self.min_green, "max_green": self.max_cycle}
        # per-signal work runs at every stage end: plain Python lists (a numpy scalar read or
        # write costs ~100 ns, a list element ~10 ns)
        self._lanes = [(int(layout.in_ptr[s_]), int(layout.in_ptr[s_ + 1])) for s_ in range(n)]
        self._clearance_l = self.clearance.tolist()
        # a cycle boundary (flows -> Webster's greens) is one compiled call on flat arrays
        # (``kernels.webster_online_loop``): the plain-Python version cost ~20 µs per cycle
        # on the caches SUMO's steps leave cold, most of webster-online's own time
        rows = [ix for idx in self._stage_lanes for ix in idx]
        lo_of = [lo for lo, _ in self._lanes]
        self._stage_ptr = np.cumsum([0] + [len(idx) for idx in self._stage_lanes], dtype=np.int64)
        self._lane_ptr = np.cumsum([0] + [len(ix) for ix in rows], dtype=np.int64)
        self._stage_lane_idx = np.concatenate(
            [ix + lo_of[s_] for s_, idx in enumerate(self._stage_lanes) for ix in idx]
            + [np.zeros(0, np.int64)]).astype(np.int64)
        self._n_serving_all = np.concatenate(self._n_serving + [np.zeros(0)]).astype(np.float64)
        self._in_ptr = np.ascontiguousarray(layout.in_ptr)
        self.counts = np.zeros(layout.n_in)
        self.counts_at = np.zeros(layout.n_in)
        self.flow = np.full(layout.n_in, math.nan)
        self._counts_checked: np.ndarray | None = None
        self._greens_buf = np.zeros(max(spec.n_stages for spec in layout.specs) if n else 1)
        self._kernel = kernels.entry_point(kernels.jitted("webster_online"), self._kernel_args(
            0, 1.0, self.counts, 0.0))
        self.cycle_start = [math.nan] * n
        self.greens: list[list[float]] = []
        for spec in layout.specs:
            g = [max(self.min_green, float(spec.phases[i].duration)) for i in spec.stage_phases]
            self.greens.append(g)
        self.cycles: list[tuple[float, float]] = []  # (time, cycle) of every recomputation
        self.k = [0] * n
        self.boundary = [-math.inf] * n
        self.started = [False] * n
        self._keep = np.full(n, -1, dtype=np.int32)
        self._next = -math.inf

    def _read_counts(self, s: int) -> np.ndarray:
        """Cumulative stop-line counts of all in-lanes, signal ``s``'s read from the loops now."""
        lo, hi = self._lanes[s]
        counter = getattr(self, "lane_counter", None)
        if counter is None:  # without loops (check_controller) flows stay unmeasured
            return self.counts
        return counter.read(slice(lo, hi))  # type: ignore[no-any-return]

    def _kernel_args(self, s: int, elapsed: float, counts: np.ndarray, clearance: float
                     ) -> tuple[Any, ...]:
        return (s, elapsed, counts, self.counts_at, self.flow, self._n_serving_all,
                self._in_ptr, self._stage_ptr, self._lane_ptr, self._stage_lane_idx, clearance,
                self.min_green, self.min_cycle, self.max_cycle, self.sat_flow, self.smoothing,
                self._greens_buf)

    def _recompute(self, s: int, elapsed: float) -> None:
        counts = self._read_counts(s)
        if counts is not self._counts_checked:  # the compiled call takes float64 exactly
            fixed = np.ascontiguousarray(counts, dtype=np.float64)
            if fixed is counts:
                self._counts_checked = counts
            counts = fixed
        c = self._kernel(*self._kernel_args(s, float(elapsed), counts, self._clearance_l[s]))
        self.greens[s] = self._greens_buf[:len(self.greens[s])].tolist()
        self.cycles.append((elapsed, c))

    def next_decision_time(self, time: float) -> float:
        """The next stage end (cycle end when run by cycles) of any signal."""
        return self._next

    def plan_cycles(self, time: float) -> list[tuple[int, list[float]]]:
        """The signals whose cycle ends at ``time``, with their next cycle's greens.

        At a signal's first call its cycle starts with the program's greens; at every later
        boundary the greens come from the flows counted over the cycle just ended.  Hand each
        to the actuator (``run_cycle``) and report its end with :meth:`cycle_booked`.
        """
        lim = time + 1e-9
        out = []
        for s, b in enumerate(self.boundary):  # (a plain loop: no comprehension frame)
            if b > lim:
                continue
            if math.isnan(self.cycle_start[s]):  # first call: start counting
                lo, hi = self._lanes[s]
                self.counts_at[lo:hi] = self._read_counts(s)[lo:hi]
            else:
                self._recompute(s, time - self.cycle_start[s])
            self.cycle_start[s] = time
            self.boundary[s] = math.inf  # until cycle_booked says when the cycle ends
            out.append((s, self.greens[s]))
        return out

    def cycle_booked(self, s: int, end: float) -> None:
        """Signal ``s``'s cycle, handed to SUMO, ends at ``end`` (its next boundary)."""
        self.boundary[s] = end
        self._next = min(self.boundary)

    def act(self, state: DistrictState) -> Decision:
        t = float(state.time)
        if t + 1e-9 < self._next:  # no stage ends before the next step: nothing to ask
            return self._keep.copy()
        out = self._keep.copy()
        clearance, greens, bnd, k_of = self._clearance_l, self.greens, self.boundary, self.k
        lim = t + 1e-9
        for s in [s for s, b in enumerate(bnd) if b <= lim]:
            if math.isnan(self.cycle_start[s]):  # first call: start the cycle in stage 0
                lo, hi = self._lanes[s]
                self.counts_at[lo:hi] = self._read_counts(s)[lo:hi]
                self.cycle_start[s] = t
                k_of[s] = 0
            else:
                k_of[s] += 1
                if k_of[s] >= len(greens[s]):  # cycle boundary: new splits
                    self._recompute(s, t - self.cycle_start[s])
                    self.cycle_start[s] = t
                    k_of[s] = 0
            k = k_of[s]
            # stage k is asked for at the end of the previous green; it gets the clearance
            # plus its green before the next stage is asked for
            bnd[s] = t + greens[s][k] + (clearance[s] if k or self.started[s] else 0.0)
            self.started[s] = True
            out[s] = k
        self._next = min(bnd)
        return out
