"""Starting points for the search: Webster's plans and the green shares max-pressure produced.

*Webster at the checks' floor*: Webster's formula is run again with the smallest minimum green
the plan checks allow (``PlanLimits.min_green_floor``, or ``--min-green`` or a stage's walk and
pedestrian clearance where higher) instead of its own 7 s default, at its cycle and at shorter
ones (``CYCLE_FACTORS`` x Webster's cycle, never below ``--min-cycle``).  Webster's cycle formula
assumes random arrivals and a fixed lost time; in SUMO the Wulin peaks lose less with shorter
cycles (README, optimiser section), and the screen, coarse near the optimum, cannot be trusted
to find that direction in 137 variables.  These few structured plan sets are warm starts and
are all verified in SUMO (:func:`optimise.run._candidates`), so SUMO, not the screen, decides.

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


CYCLE_FACTORS = (1.0, 0.9, 0.8)


def webster_floor_plans(scenario: Scenario, period: Period, specs: list[SignalSpec], *, min_green: float,
                        min_cycle: float, max_cycle: float,
                        factors: tuple[float, ...] = CYCLE_FACTORS) -> dict[str, list[TimingPlan]]:
    """Webster's plans at minimum green ``min_green``, one plan set per cycle factor.

    Named ``webster-min<G>-c<percent>``; a scaled cycle is clipped to ``[min_cycle, max_cycle]`` and to
    what the stages' minimum greens and clearances need; the greens keep Webster's ratios.
    """
    from controllers.webster.plans import webster_plan
    from sim.demand import lane_flows_from_demand
    from sim.state import DistrictLayout

    flows = lane_flows_from_demand(scenario, DistrictLayout.from_specs(specs), (period.start, period.end))
    base = [webster_plan(sp, flows, min_green=min_green, min_cycle=min_cycle, max_cycle=max_cycle,
                         name="webster at the floor") for sp in specs]
    # every set is re-timed to its clipped cycle, factor 1 included: Webster's whole-second
    # greens can sum to a second below ``min_cycle``
    return {f"webster-min{min_green:g}-c{round(f * 100)}":
            [webster_plan(sp, flows, min_green=min_green, name="webster at the floor",
                          cycle=_scaled_cycle(p, f, min_green, min_cycle, max_cycle))
             for sp, p in zip(specs, base, strict=True)] for f in factors}


def _scaled_cycle(plan: TimingPlan, factor: float, min_green: float, min_cycle: float, max_cycle: float) -> float:
    need = len(plan.stages) * (min_green + plan.clearance)
    # above max_cycle only when the minimum greens cannot fit (PlanSpace.build then says so)
    return float(max(need, min(max_cycle, max(plan.cycle * factor, min_cycle))))


def observe_max_pressure(scenario: Scenario, period: Period, specs: list[SignalSpec],
                         seed: int = 1) -> StageHistory:
    """Run max-pressure over the period (one SUMO run) and record its stage history."""
    from experiments.episode import run_episode

    sc = replace(scenario, begin=period.sim_begin, end=period.end, warmup=period.warmup)
    hist = StageHistory(len(specs), max(sp.n_stages for sp in specs), period.start)
    run_episode(sc, "max-pressure", seed=seed, observers=(hist,))
    return hist
