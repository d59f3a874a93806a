"""Approaching vehicles: speed-binned vehicle counts per lane segment, read from SUMO.

The lane aggregates of :class:`~sim.state.DistrictState` (vehicles, halting vehicles, mean
speed per lane) cannot tell a platoon 20 m from the stop line from one 180 m away, which is
what a signal deciding whether to extend a green needs to know (Surtrac's clusters, the
"approaching vehicles" observations of PressLight / CoLight).  This module bins every vehicle
on a controlled in-lane by its distance to the stop line (:data:`SEGMENTS`) and its speed
(:data:`SPEED_BINS`, as a share of the lane's limit): ``[n_in, BINS]`` counts.

Reading it costs per-vehicle calls, so it is opt-in: a :class:`~sim.state.StateReader` reads it
only when asked for the ``approach`` field (the ``approach`` observation term).  With libsumo
the vehicles of the occupied in-lanes are listed lane by lane and their lane position and
speed read by compiled getters mapped over the ids (``np.fromiter(map(getter, ids))``, no
Python bytecode per vehicle); measured on the Wulin AM peak in the README
(``benchmarks/bench_env.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: Segment bounds, metres upstream of the stop line: [0, 30), [30, 90), [90, 200).
SEGMENTS = (0.0, 30.0, 90.0, 200.0)
#: Speed bin bounds as a share of the lane's speed limit: crawling/stopped, moving.
SPEED_BINS = (0.0, 0.3)
N_SEGMENTS = len(SEGMENTS) - 1
BINS = N_SEGMENTS * len(SPEED_BINS)
"""Bins per lane, segment-major: ``segment * len(SPEED_BINS) + speed bin``."""


def segment_capacity(lane_length: np.ndarray, vehicle_space: float = 7.5) -> np.ndarray:
    """``[n, BINS]`` vehicles each bin's segment holds (a short lane's segments are cut at its
    length; at least 1, so a segment beyond the lane scales by 1 and stays 0)."""
    lo = np.minimum(np.asarray(SEGMENTS[:-1])[None, :], lane_length[:, None])
    hi = np.minimum(np.asarray(SEGMENTS[1:])[None, :], lane_length[:, None])
    cap = np.maximum((hi - lo) / vehicle_space, 1.0)
    return np.repeat(cap, len(SPEED_BINS), axis=1).astype(np.float32)


def bin_index(distance: np.ndarray, speed_share: np.ndarray) -> np.ndarray:
    """Bin of each vehicle from its distance to the stop line and speed / limit; -1 beyond the
    last segment."""
    seg = np.searchsorted(np.asarray(SEGMENTS), distance, side="right") - 1
    spd = np.searchsorted(np.asarray(SPEED_BINS), speed_share, side="right") - 1
    ok = (seg >= 0) & (seg < N_SEGMENTS)
    return np.where(ok, seg * len(SPEED_BINS) + np.clip(spd, 0, len(SPEED_BINS) - 1), -1)


class ApproachReader:
    """Fills ``[n_lanes, BINS]`` counts for ``lanes`` from a running simulation.

    Args:
        conn: The simulation's connection (libsumo module or traci connection).
        lanes: The lanes to read (each once).
        lengths: Their lengths, metres.
        speed_limits: Their speed limits, m/s.
    """

    def __init__(self, conn: Any, lanes: Sequence[str], lengths: np.ndarray,
                 speed_limits: np.ndarray) -> None:
        self.conn = conn
        self.lanes = np.array(lanes, dtype=object)
        self.lengths = np.asarray(lengths, dtype=np.float64)
        self.limits = np.maximum(np.asarray(speed_limits, dtype=np.float64), 0.1)
        low = getattr(getattr(conn, "libsumo", None), "_libsumo", None)
        self._ids = getattr(low, "lane_getLastStepVehicleIDs", None) or conn.lane.getLastStepVehicleIDs
        self._pos = getattr(low, "vehicle_getLanePosition", None) or conn.vehicle.getLanePosition
        self._speed = getattr(low, "vehicle_getSpeed", None) or conn.vehicle.getSpeed

    def read(self, occupied: np.ndarray, out: np.ndarray) -> None:
        """Count the vehicles of the lanes at indices ``occupied`` into ``out`` (zeroed first)."""
        out[:] = 0.0
        if len(occupied) == 0:
            return
        per_lane = [self._ids(lane) for lane in self.lanes[occupied]]
        sizes = np.fromiter(map(len, per_lane), np.int64, len(per_lane))
        ids = [v for vs in per_lane for v in vs]
        if not ids:
            return
        n = len(ids)
        pos = np.fromiter(map(self._pos, ids), np.float64, n)
        speed = np.fromiter(map(self._speed, ids), np.float64, n)
        lane = np.repeat(np.asarray(occupied, dtype=np.int64), sizes)
        b = bin_index(self.lengths[lane] - pos, speed / self.limits[lane])
        keep = b >= 0
        np.add.at(out, (lane[keep], b[keep]), 1.0)
