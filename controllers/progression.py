"""Progression along one direction of a corridor: the through band its signals' plans leave.

A vehicle at the speed limit that passes the direction's first stop line at time ``t`` passes
signal ``j``'s at ``t + T_j`` (``T_j``: the travel times of
:class:`~controllers.main_corridors.CorridorDirection` added up).  Each signal's through links
are green, yellow or red over time as SUMO runs its plan (:meth:`TimingPlan.timeline`).  For
one green window ``[a, b)`` of the first signal, the *through band* is the longest interval of
departures inside it that meet green at every signal (the intersection of the windows shifted
by ``-T_j``, exact interval arithmetic; yellow does not count).  The direction's *bandwidth* is
the width of that band, averaged over the first signal's green windows that start within the
horizon.

With one cycle at every signal of the direction the band is the same every cycle, so the mean
is the classical bandwidth, exactly.  When the cycles differ the signals drift against each
other and the band changes from cycle to cycle: the mean (and the minimum, kept beside it) is
then over the horizon the caller gives (the optimiser uses the period's first hour).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import TYPE_CHECKING

from controllers.plan import Interval, TimingPlan

if TYPE_CHECKING:
    from controllers.main_corridors import CorridorDirection


@dataclass(frozen=True)
class ThroughBand:
    """Departures at the first stop line, ``[start, end)``, that meet green at every signal.

    ``window`` is the start of the first signal's green window it lies in; ``start == end``
    when no departure of that window gets through on green.
    """

    window: float
    start: float
    end: float

    @property
    def width(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Progression:
    """One direction under one set of plans over a horizon.

    Attributes:
        arrivals: Seconds from the first stop line to each signal's (``T_j``, first 0).
        timelines: Per signal, what its through links show, from ``start - longest cycle`` to
            past the horizon's end plus the travel time.
        bands: The through band of each of the first signal's green windows in the horizon.
        common_cycle: Whether every signal of the direction runs one cycle (then exact).
    """

    arrivals: tuple[float, ...]
    timelines: tuple[tuple[Interval, ...], ...]
    bands: tuple[ThroughBand, ...]
    common_cycle: bool

    @property
    def bandwidth(self) -> float:
        """Mean through band, seconds (0 without a green window in the horizon)."""
        return sum(b.width for b in self.bands) / len(self.bands) if self.bands else 0.0

    @property
    def min_bandwidth(self) -> float:
        return min((b.width for b in self.bands), default=0.0)


def progression(plans: Mapping[str, TimingPlan], direction: CorridorDirection, start: float,
                horizon: float) -> Progression:
    """The through bands of ``direction`` for departures from ``start`` to ``start + horizon``.

    Args:
        plans: Plans by signal id (every signal of the direction needs one).
        direction: The corridor direction (signals, their through links, travel times).
        start: Seconds of the day.
        horizon: Seconds; windows of the first signal starting in ``[start, start + horizon)``.
    """
    sigs = direction.signals
    arrivals = tuple(accumulate(direction.travel_times, initial=0.0))
    longest = max(plans[s].cycle for s in sigs)
    t0, t1 = start - longest, start + horizon + longest + arrivals[-1]
    timelines = tuple(tuple(plans[s].timeline(links, t0, t1)) for s, links in zip(sigs, direction.links,
                                                                                 strict=True))
    greens = [[(iv.start - tj, iv.end - tj) for iv in tl if iv.colour == "G"]
              for tl, tj in zip(timelines, arrivals, strict=True)]
    bands = []
    for a, b in greens[0]:
        if not start <= a < start + horizon:  # (the timeline starts a cycle early: no cut window)
            continue
        feasible = [(a, b)]
        for g in greens[1:]:
            feasible = _intersect(feasible, g)
        lo, hi = max(feasible, key=lambda iv: iv[1] - iv[0], default=(a, a))
        bands.append(ThroughBand(a, lo, hi))
    common = len({plans[s].cycle for s in sigs}) == 1
    return Progression(arrivals, timelines, tuple(bands), common)


def _intersect(a: Sequence[tuple[float, float]], b: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Intersection of two sorted lists of disjoint intervals."""
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if hi > lo:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out
