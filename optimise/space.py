"""The decision space: a vector in ``[0, 1]^n`` <-> one :class:`~controllers.plan.TimingPlan` per signal.

Per signal: its cycle (between the smallest cycle that holds every minimum green and clearance,
and the maximum cycle), the green share of each stage (the green above the minimum greens is
shared in proportion) and its offset (a fraction of the cycle).  With ``common_cycle`` one
cycle variable serves every signal (a coordination group), so offsets keep their meaning from
cycle to cycle.  Decoded greens are whole seconds; the plans keep each signal's stages,
yellow, all-red and pedestrian times, so every decoded plan passes the plan checks by
construction (:meth:`PlanSpace.check` runs them).  Box bounds suit CMA-ES's bounded mode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from controllers.plan import DEFAULT_LIMITS, PlanLimits, TimingPlan, check_plan
from sim.errors import WulinError

if TYPE_CHECKING:
    from sim.topology import SignalSpec

MIN_SHARE = 0.01


@dataclass(frozen=True)
class PlanSpace:
    """Bounds and layout of the decision vector.

    Attributes:
        base: One plan per signal: its stages, intergreen and pedestrian times.
        min_greens: Minimum green per signal and stage (plan minimum, walk + clearance, floor).
        cycle_min: Smallest feasible cycle per signal.
        cycle_max: Largest cycle.
        common_cycle: One cycle for all signals.
        name: Name given to decoded plans.
    """

    base: tuple[TimingPlan, ...]
    min_greens: tuple[tuple[float, ...], ...]
    cycle_min: tuple[float, ...]
    cycle_max: float
    common_cycle: bool = False
    name: str = "optimised"

    @classmethod
    def build(cls, base: list[TimingPlan], limits: PlanLimits = DEFAULT_LIMITS, *,
              min_green: float = 0.0, common_cycle: bool = False, name: str = "optimised") -> PlanSpace:
        """The space around ``base``; an infeasible signal raises one :class:`WulinError`.

        Args:
            base: One plan per signal.
            limits: Cycle bounds and the minimum-green floor.
            min_green: Raise every stage's minimum green to at least this.
        """
        mins, cmins = [], []
        for p in base:
            g = tuple(max(s.min_green, s.walk + s.ped_clearance, limits.min_green_floor, min_green)
                      for s in p.stages)
            need = sum(g) + len(g) * p.clearance
            if need > limits.max_cycle:
                raise WulinError(
                    f"signal {p.signal_id!r}: its minimum greens ({' + '.join(f'{x:g}' for x in g)} s) and "
                    f"{len(g)} x {p.clearance:g} s clearance need a cycle of {need:g} s, above the maximum "
                    f"cycle {limits.max_cycle:g} s; lower --min-green or raise --max-cycle")
            mins.append(g)
            cmins.append(max(limits.min_cycle, need))
        if common_cycle:
            cmins = [max(cmins)] * len(cmins)
        return cls(tuple(base), tuple(mins), tuple(cmins), float(limits.max_cycle), common_cycle, name)

    # ------------------------------------------------------------------ layout
    @property
    def n_signals(self) -> int:
        return len(self.base)

    def _cycle_index(self, s: int) -> int:
        return 0 if self.common_cycle else self._start(s)

    def _start(self, s: int) -> int:
        """Index of signal ``s``'s first variable (its cycle, or its first share)."""
        first = 1 if self.common_cycle else 0
        per = [len(p.stages) + 1 + (0 if self.common_cycle else 1) for p in self.base]
        return first + sum(per[:s])

    def _shares(self, s: int) -> slice:
        a = self._start(s) + (0 if self.common_cycle else 1)
        return slice(a, a + len(self.base[s].stages))

    def _offset_index(self, s: int) -> int:
        return self._shares(s).stop

    @property
    def dim(self) -> int:
        return self._start(self.n_signals)

    def bounds(self) -> np.ndarray:
        """``(dim, 2)`` lower and upper bounds."""
        b = np.tile([0.0, 1.0], (self.dim, 1))
        for s in range(self.n_signals):
            b[self._shares(s), 0] = MIN_SHARE
        return b

    # ------------------------------------------------------------------ decode / encode
    def decode(self, x: np.ndarray) -> list[TimingPlan]:
        """One plan per signal from a vector (clipped into the bounds)."""
        b = self.bounds()
        x = np.clip(np.asarray(x, float), b[:, 0], b[:, 1])
        out = []
        for s, p in enumerate(self.base):
            mins = self.min_greens[s]
            c = self.cycle_min[s] + x[self._cycle_index(s)] * (self.cycle_max - self.cycle_min[s])
            spare = max(c - len(mins) * p.clearance - sum(mins), 0.0)
            w = x[self._shares(s)]
            greens = _whole(np.array(mins) + spare * w / w.sum(), mins, round(spare + sum(mins)))
            plan = p.with_splits(greens)
            plan = plan.with_offset(round(x[self._offset_index(s)] * plan.cycle) % plan.cycle)
            out.append(replace(plan, name=self.name, source="optimise"))
        return out

    def encode(self, plans: list[TimingPlan]) -> np.ndarray:
        """The vector closest to ``plans`` (same signals and stages as the base)."""
        x = np.zeros(self.dim)
        cycles = []
        for s, (p, base) in enumerate(zip(plans, self.base, strict=True)):
            if len(p.stages) != len(base.stages):
                raise WulinError(f"signal {p.signal_id!r}: a warm start has {len(p.stages)} stages, the "
                                 f"signal's plan {len(base.stages)}")
            mins = self.min_greens[s]
            extra = np.array([max(st.green - m, 0.0) for st, m in zip(p.stages, mins, strict=True)])
            x[self._shares(s)] = np.maximum(extra / extra.sum() if extra.sum() > 0 else 1.0 / len(mins),
                                            MIN_SHARE)
            span = self.cycle_max - self.cycle_min[s]
            u = (p.cycle - self.cycle_min[s]) / span if span > 0 else 0.0
            cycles.append(u)
            x[self._cycle_index(s)] = u
            x[self._offset_index(s)] = (p.offset % p.cycle) / p.cycle if p.cycle > 0 else 0.0
        if self.common_cycle:
            x[0] = max(cycles)
        return np.clip(x, self.bounds()[:, 0], self.bounds()[:, 1])

    def check(self, plans: list[TimingPlan], specs: list[SignalSpec], limits: PlanLimits) -> list[str]:
        """Run the plan checks on decoded plans; raise a :class:`WulinError` on the first bad one.

        The yellow and all-red are not decision variables: each signal keeps its network's
        intergreen, so a network whose own clearances are below the limits' minimums (a 0 s
        all-red, say) is checked against those clearances, and each such case is returned as
        a note for the result file rather than refused.
        """
        notes = []
        for plan, spec, base in zip(plans, specs, self.base, strict=True):
            own = replace(limits, min_yellow=min(limits.min_yellow, base.yellow),
                          min_all_red=min(limits.min_all_red, base.all_red),
                          max_all_red=max(limits.max_all_red, base.all_red))
            if own != limits:
                notes.append(f"{plan.signal_id}: keeps its network intergreen {base.yellow:g} s yellow + "
                             f"{base.all_red:g} s all-red, outside the limits ({limits.min_yellow:g} s yellow, "
                             f"{limits.min_all_red:g}-{limits.max_all_red:g} s all-red)")
            check_plan(plan, spec.conflicts, own, spec.unused_links)
        return notes


def _whole(raw: np.ndarray, mins: tuple[float, ...], total: int) -> list[float]:
    """Whole-second greens, each at least its minimum, adding up to ``total`` where possible."""
    out = [float(max(math.ceil(m - 1e-9), math.floor(g))) for g, m in zip(raw, mins, strict=True)]
    order = np.argsort(-(raw - np.floor(raw)))
    i = 0
    while sum(out) < total and i < 4 * len(out):
        out[int(order[i % len(out)])] += 1.0
        i += 1
    return out


def timing_arrays(plans: list[TimingPlan]) -> tuple[np.ndarray, ...]:
    """``(cycle, offset, starts, greens, n_stages)`` of the kernel for ``plans``."""
    k = max(len(p.stages) for p in plans)
    starts = np.zeros((len(plans), k))
    greens = np.zeros((len(plans), k))
    for s, p in enumerate(plans):
        starts[s, : len(p.stages)] = p.stage_starts
        greens[s, : len(p.stages)] = [st.green for st in p.stages]
    return (np.array([p.cycle for p in plans]), np.array([p.offset for p in plans]), starts, greens,
            np.array([len(p.stages) for p in plans], np.int64))
