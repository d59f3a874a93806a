"""The controller's vehicle detector inputs and their NTCIP volume / occupancy counts.

Each detector input has a call phase (``vehicleDetectorCallPhase``): while it sees a vehicle it
calls that phase (a locked call when the phase is not green) and extends its green (the
engine's passage timer, :mod:`deploy.phase_engine`).  Over each ``volumeOccupancyPeriod`` the
bank counts vehicles and the time occupied and publishes them as ``detectorVolume`` (vehicles
in the period, 0-255) and ``detectorOccupancy`` (NTCIP 1202: 0-200 in steps of 0.5 %), bumping
``volumeOccupancySequence`` (0-255, wrapping) so a central system can tell new data from old.

Inputs come from the outside world: :meth:`DetectorBank.feed` takes, per tick, each
detector's presence and the vehicles that arrived on it (the co-simulation reads them from
SUMO's induction loops; tests feed them directly).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from deploy.phase_engine import bit


@dataclass
class DetectorReading:
    """What one detector saw during one tick."""

    present: bool = False
    count: int = 0


@dataclass
class DetectorBank:
    """The detector inputs of one controller.

    Attributes:
        call_phase: Detector number -> the phase it calls (0: none).
        period: ``volumeOccupancyPeriod``, seconds (0: no collection).
    """

    call_phase: dict[int, int]
    period: int = 60
    present: dict[int, bool] = field(default_factory=dict)
    volume: dict[int, int] = field(default_factory=dict)  # published
    occupancy: dict[int, int] = field(default_factory=dict)  # published, 0-200
    sequence: int = 0
    _count: dict[int, int] = field(default_factory=dict)
    _occupied: dict[int, int] = field(default_factory=dict)  # deciseconds in the period
    _elapsed: int = 0

    def feed(self, readings: Mapping[int, DetectorReading], tick: int) -> None:
        """One tick of ``tick`` deciseconds: presence now, vehicles counted, periods closed."""
        for d in self.call_phase:
            r = readings.get(d, DetectorReading())
            self.present[d] = r.present
            self._count[d] = self._count.get(d, 0) + max(int(r.count), 0)
            self._occupied[d] = self._occupied.get(d, 0) + (tick if r.present else 0)
        if self.period <= 0:
            return
        self._elapsed += tick
        if self._elapsed >= self.period * 10:
            self._publish()

    def _publish(self) -> None:
        for d in self.call_phase:
            self.volume[d] = min(self._count.get(d, 0), 255)
            self.occupancy[d] = min(round(200 * self._occupied.get(d, 0) / self._elapsed), 200)
        self.sequence = (self.sequence + 1) % 256
        self._count, self._occupied, self._elapsed = {}, {}, 0

    def presence(self) -> int:
        """Bitmap of the phases called by a detector that sees a vehicle now."""
        out = 0
        for d, p in self.call_phase.items():
            if p and self.present.get(d):
                out |= bit(p)
        return out


def detector_calls(spec: Any, lanes: Sequence[str] | None = None) -> dict[int, int]:
    """One stop-bar detector per incoming lane, as the co-simulation and central control wire
    them: detector ``d`` (1-based) on ``lanes[d - 1]`` (default: the signal's in-lanes in order),
    calling the phase of the first stage that has a green link from that lane (a single-ring
    profile: stage ``k`` is phase ``k + 1``).  ``spec`` is a :class:`sim.topology.SignalSpec`."""
    calls = {}
    for d, lane in enumerate(spec.in_lanes if lanes is None else lanes, 1):
        links = [m.index for m in spec.movements if m.in_lane == lane]
        stage = next((k for k, st in enumerate(spec.stages) if any(st[i] in "Gg" for i in links)), 0)
        calls[d] = stage + 1
    return calls
