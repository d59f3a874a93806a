"""Greens for a given cycle: a cycle's effective green shared among stages in proportion.

Used by Webster's plans for a forced common cycle (:mod:`controllers.webster.plans`) and by the
corridor green wave, which rescales every corridor plan to the corridor's longest cycle
(:mod:`controllers.corridor`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from sim.errors import WulinError


def scale_greens(y: Sequence[float], greens: Sequence[float], cycle: float, clearance: float,
                 min_green: float) -> list[float]:
    """Whole-second greens for a forced ``cycle``, in proportion to the weights ``y``.

    Args:
        y: Weight of each stage (Webster's flow ratios, or the greens themselves to rescale
            a plan); all zero shares the green equally.
        greens: The greens being replaced (their number is the number of stages).
        cycle: The cycle to fill, seconds.
        clearance: Yellow plus all-red after each stage, seconds.
        min_green: Smallest green, seconds.

    Raises:
        WulinError: the cycle cannot hold every stage's minimum green and clearance.
    """
    n = len(greens)
    effective = cycle - n * clearance
    if effective < n * min_green:
        raise WulinError(f"cycle {cycle:g} s is too short for {n} stages of {min_green:g} s green")
    weights = np.asarray(y, dtype=float) if sum(y) > 0 else np.ones(n)
    raw = np.maximum(min_green, effective * weights / weights.sum())
    out = [float(math.floor(g)) for g in raw]
    # hand out the rounding remainder one second at a time to the largest fractions
    rest = int(round(effective - sum(out)))
    order = np.argsort(-(raw - np.floor(raw)))
    for i in range(abs(rest)):
        j = int(order[i % n])
        out[j] += 1.0 if rest > 0 else (-1.0 if out[j] > min_green else 0.0)
    return out
