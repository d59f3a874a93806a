"""Webster's formula: cycle and greens from the critical flow ratio of each stage.

Webster (1958): with critical flow ratios ``y_k`` (flow / saturation flow of the most loaded
lane served by stage ``k``), ``Y = sum(y_k)`` and lost time ``L`` per cycle,

    C0 = (1.5 L + 5) / (1 - Y),      g_k = (C0 - L) * y_k / Y.

Pure arithmetic on numbers and a :class:`~sim.topology.SignalSpec`; no SUMO, no plans.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sim.topology import SignalSpec

SAT_FLOW = 1800.0  # veh/h of green per lane (HCM base; urban China often 1550-1650)


def webster_timing(
    y: Sequence[float], clearance: float, *, min_green: float = 5.0, min_cycle: float = 40.0,
    max_cycle: float = 180.0, y_cap: float = 0.9, startup_lost: float = 2.0,
) -> tuple[float, list[float]]:
    """Webster's cycle and greens for critical flow ratios ``y`` (one per stage).

    Args:
        y: Critical flow ratio of each stage.
        clearance: Yellow plus all-red after each stage, seconds.
        min_green: Smallest green, seconds.
        min_cycle: Smallest cycle, seconds.
        max_cycle: Largest cycle (also used when the intersection is oversaturated).
        y_cap: ``Y`` above this is treated as oversaturated (cycle = ``max_cycle``).
        startup_lost: Start-up lost time per stage, seconds (lost time = clearance - 1 s of
            yellow used + start-up, about 4 s per stage with 3+2 s clearance).

    Returns:
        ``(cycle, greens)`` with whole-second greens; ``cycle = sum(greens) + n * clearance``.
    """
    # plain floats, not numpy: webster-online calls this at every cycle of every signal, and
    # for a handful of stages numpy's call overhead is most of the cost (same results: the
    # same operations in the same order; numpy's sum is sequential below 8 values)
    n = len(y)
    ys = [max(float(v), 0.0) for v in y]
    lost = n * (clearance - 1.0 + startup_lost)
    big_y = 0.0
    if n < 8:
        for v in ys:
            big_y += v
    else:
        big_y = float(np.sum(ys))
    if big_y <= 1e-9:  # no demand: the shortest cycle, equal greens
        ys, big_y = [1.0] * n, float(n)
        c0 = min_cycle
    elif big_y >= y_cap:
        c0 = max_cycle
    else:
        c0 = (1.5 * lost + 5.0) / (1.0 - big_y)
    c0 = min(max(c0, min_cycle, n * (min_green + clearance)), max_cycle)
    effective = c0 - n * clearance
    greens = [max(min_green, float(round(effective * yk / big_y))) for yk in ys]
    return sum(greens) + n * clearance, greens


def stage_ratios(spec: SignalSpec, lane_flow: dict[str, float], sat_flow: float = SAT_FLOW
                 ) -> list[float]:
    """Critical flow ratio of each stage: the most loaded lane it serves.

    A lane served in several stages (a shared right turn, say) counts its flow divided among
    them, so a lane green all the time does not dictate every stage.
    """
    served = [set(spec.lanes_of_stage(k)) for k in range(spec.n_stages)]
    n_serving = {lane: sum(lane in s for s in served) for lane in spec.in_lanes}
    return [
        max((lane_flow.get(lane, 0.0) / n_serving[lane] / sat_flow for lane in served[k]),
            default=0.0)
        for k in range(spec.n_stages)
    ]
