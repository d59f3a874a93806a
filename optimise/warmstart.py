"""Starting points for the search: Webster's plans and the green shares max-pressure produced.

*Policy distillation*: max-pressure runs the period once in SUMO (seed 1) with an observer
reading each signal's stage at every decision; the time each stage held (its clearance
included, as the state reports it) gives its share of the cycle, and the number of stage
changes gives the mean cycle.  Those shares and that cycle, turned into a plan with the
signal's own stages, are a warm start the fixed-time search can beat or keep.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from controllers.plan import TimingPlan
    from optimise.periods import Period
    from sim.scenario import Scenario
    from sim.state import DistrictState
    from sim.topology import SignalSpec


@dataclass
class StageHistory:
    """An episode observer: seconds each signal spent per stage, and its stage changes."""

    n_signals: int
    n_stages: int
    start: float
    time_in: np.ndarray = field(init=False)
    changes: np.ndarray = field(init=False)
    _last: np.ndarray | None = None
    _t: float | None = None

    def __post_init__(self) -> None:
        self.time_in = np.zeros((self.n_signals, self.n_stages))
        self.changes = np.zeros(self.n_signals)

    def __call__(self, state: DistrictState) -> None:
        t = float(state.time)
        stage = np.asarray(state.stage).copy()
        if self._last is not None and self._t is not None and t > self.start:
            rows = np.arange(self.n_signals)
            self.time_in[rows, self._last] += t - self._t
            self.changes += stage != self._last
        self._last, self._t = stage, t


def distilled_plans(history: StageHistory, specs: list[SignalSpec], base: list[TimingPlan],
                    min_cycle: float, max_cycle: float) -> list[TimingPlan]:
    """Plans with the shares and mean cycle of an observed run (one per signal, ``base``'s stages)."""
    out = []
    for s, (spec, plan) in enumerate(zip(specs, base, strict=True)):
        n = len(plan.stages)
        spent = np.array([history.time_in[s, spec.stages.index(st.state)] if st.state in spec.stages else 0.0
                          for st in plan.stages])
        total = spent.sum()
        cycles = history.changes[s] / max(n, 1)
        c = float(np.clip(total / cycles if cycles > 0 else plan.cycle, min_cycle, max_cycle))
        share = spent / total if total > 0 else np.full(n, 1.0 / n)
        effective = c - n * plan.clearance
        greens = [max(st.min_green, round(effective * w)) for st, w in zip(plan.stages, share, strict=True)]
        out.append(replace(plan.with_splits(greens), name="max-pressure shares", source="distilled"))
    return out


def observe_max_pressure(scenario: Scenario, period: Period, specs: list[SignalSpec],
                         seed: int = 1) -> StageHistory:
    """Run max-pressure over the period (one SUMO run) and record its stage history."""
    from experiments.episode import run_episode

    sc = replace(scenario, begin=period.sim_begin, end=period.end, warmup=period.warmup)
    hist = StageHistory(len(specs), max(sp.n_stages for sp in specs), period.start)
    run_episode(sc, "max-pressure", seed=seed, observers=(hist,))
    return hist
