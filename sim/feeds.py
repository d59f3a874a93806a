"""Which upstream movements feed each in-lane: the links between neighbouring signals.

A movement of signal ``a`` whose out-lane lies on an edge where another signal ``b`` has
in-lanes feeds each of those in-lanes, its vehicles shared evenly among them (the lane it
will take is not known); a movement's vehicles are its in-lane's shared among the lane's
movements, as in max-pressure.  Matching by edge, not lane, joins two signals whose
connecting edge changes its number of lanes.  Used by the schedule-driven controller's
non-local jobs and by the ``upstream`` observation term, both through :func:`feed_arrays`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sim.state import DistrictLayout


class Feed(NamedTuple):
    """One upstream movement feeding one in-lane.

    Attributes:
        fed: The fed in-lane (index into ``layout.in_lanes``).
        signal: The upstream signal.
        movement: The upstream movement (index into the layout's movements).
        share: Share of the upstream in-lane's vehicles that this feed carries.
    """

    fed: int
    signal: int
    movement: int
    share: float


def edge_of(lane: str) -> str:
    """The edge of a SUMO lane id (``edge_index``)."""
    return lane.rsplit("_", 1)[0]


def feeds(layout: DistrictLayout) -> list[Feed]:
    """Every :class:`Feed` of ``layout``, ordered by the signal of the fed lane."""
    by_edge: dict[str, list[int]] = {}
    for i, lane in enumerate(layout.in_lanes):
        by_edge.setdefault(edge_of(lane), []).append(i)
    fan_out = np.bincount(layout.mov_in, minlength=layout.n_in)
    rows: list[Feed] = []
    for a in range(layout.n_signals):
        for m in range(int(layout.mov_ptr[a]), int(layout.mov_ptr[a + 1])):
            fed = by_edge.get(edge_of(layout.out_lanes[layout.mov_out[m]]), [])
            share = 1.0 / float(fan_out[layout.mov_in[m]]) / max(len(fed), 1)
            rows.extend(Feed(d, a, m, share) for d in fed if int(layout.in_lane_signal[d]) != a)
    rows.sort(key=lambda r: int(layout.in_lane_signal[r.fed]))
    return rows


class FeedArrays(NamedTuple):
    """The :func:`feeds` as index arrays (one entry per feed, same order).

    Attributes:
        fed: The fed in-lane.
        signal: The upstream signal.
        lane: The upstream in-lane (the movement's in-lane).
        link: The upstream movement's link index within its signal.
        share: Share of the upstream in-lane's vehicles the feed carries.
    """

    fed: np.ndarray
    signal: np.ndarray
    lane: np.ndarray
    link: np.ndarray
    share: np.ndarray


def feed_arrays(layout: DistrictLayout) -> FeedArrays:
    """:func:`feeds` of ``layout`` as :class:`FeedArrays`."""
    rows = feeds(layout)
    i8 = np.int64
    mov = np.array([r.movement for r in rows], i8)
    return FeedArrays(
        fed=np.array([r.fed for r in rows], i8),
        signal=np.array([r.signal for r in rows], i8),
        lane=layout.mov_in[mov].astype(i8),
        link=layout.mov_link[mov].astype(i8),
        share=np.array([r.share for r in rows], np.float64),
    )
