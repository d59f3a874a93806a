"""The screen's objective: one number per candidate, the mean over demand draws of the kernel's score.

The score estimates what the headline KPI measures, mean time loss of every vehicle due
(:mod:`sim.kpi_registry`): queued and waiting vehicle-seconds plus an acceleration loss per
stop, over all vehicles due (those crossing no signal included, with no loss), plus declared
weights: seconds per stop, per blocked vehicle-second (spill-back) and per vehicle still
queued at the end (unfinished).  Robustness: the mean over demand factors x seeds, a seed
drawing each route's vehicles per bin from a Poisson law (seed 0: the expected demand).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from controllers.plan import TimingPlan
from optimise import kernels as K
from optimise.model import BIN, NetworkModel
from optimise.space import timing_arrays

STOP_LOSS = 6.0  # seconds lost decelerating to a stop and back to speed (about 4.5 m/s² and 2.6 m/s² at 40 km/h)


@dataclass(frozen=True)
class Weights:
    """Objective weights, seconds per unit (the unit of the objective is s/vehicle)."""

    stop: float = 1.0
    spill: float = 0.5
    unfinished: float = 120.0


def demand_draws(model: NetworkModel, factors: list[float], seeds: list[int]) -> list[np.ndarray]:
    """Demand matrices, one per (factor, seed)."""
    out = []
    for f in factors:
        for seed in seeds:
            lam = model.demand * f
            if seed:
                rng = np.random.default_rng(seed)
                lam = rng.poisson(lam * BIN) / BIN
            out.append(np.ascontiguousarray(lam, dtype=np.float64))
    return out


def run_screen(model: NetworkModel, plans: list[TimingPlan], demand: np.ndarray,
               dt: float = 1.0) -> np.ndarray:
    """The kernel's raw result for one plan set and one demand matrix."""
    cycle, offset, starts, greens, n_st = timing_arrays(plans)
    m = model
    return K.screen_kernel(m.begin, m.measure_from, m.end, dt, BIN, cycle, offset, starts, greens,
                           n_st, m.mv_sig, m.mv_gf, m.mv_cap, m.mv_from, m.mv_down, m.mv_ptr, m.mv_pos,
                           m.pos_mv, m.pos_next, m.pos_tt, m.pos_adjacent, m.pos_counted,
                           m.route_first, m.route_tt0, m.route_entry, demand, m.edge_storage, m.ring)


def score(model: NetworkModel, res: np.ndarray, weights: Weights) -> float:
    """Objective of one kernel result, s/vehicle."""
    due = res[K.DUE] + model.n_other * (model.end - model.measure_from)
    due = max(due, 1.0)
    loss = (res[K.DELAY] + STOP_LOSS * res[K.STOPS]) / due
    return float(loss + (weights.stop * res[K.STOPS] + weights.spill * res[K.BLOCKED]
                         + weights.unfinished * res[K.LEFT]) / due)


def time_loss(model: NetworkModel, res: np.ndarray) -> float:
    """The screen's estimate of mean time loss per vehicle due, s."""
    due = max(res[K.DUE] + model.n_other * (model.end - model.measure_from), 1.0)
    return float((res[K.DELAY] + STOP_LOSS * res[K.STOPS]) / due)


@dataclass
class Objective:
    """Mean score over the demand draws, for plan sets evaluated in a batch (threads)."""

    model: NetworkModel
    draws: list[np.ndarray]
    weights: Weights

    def __call__(self, plans: list[TimingPlan]) -> float:
        return self.batch([plans])[0]

    def batch(self, candidates: list[list[TimingPlan]]) -> list[float]:
        """Objective of each candidate plan set."""
        res = self.raw(candidates)
        return [float(np.mean([score(self.model, r, self.weights) for r in per])) for per in res]

    def raw(self, candidates: list[list[TimingPlan]]) -> np.ndarray:
        """Kernel results ``[candidate, draw, N_OUT]``."""
        arrays = [timing_arrays(p) for p in candidates]
        cycle, offset, starts, greens = (np.ascontiguousarray(np.stack([a[i] for a in arrays]))
                                         for i in range(4))
        m = self.model
        demands = np.ascontiguousarray(np.stack(self.draws))
        return K.screen_batch(m.begin, m.measure_from, m.end, 1.0, BIN, cycle, offset, starts, greens,
                              arrays[0][4], m.mv_sig, m.mv_gf, m.mv_cap, m.mv_from, m.mv_down, m.mv_ptr,
                              m.mv_pos, m.pos_mv, m.pos_next, m.pos_tt, m.pos_adjacent, m.pos_counted,
                              m.route_first, m.route_tt0, m.route_entry, demands, m.edge_storage, m.ring)
