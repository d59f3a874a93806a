"""The traffic state central control estimates from the devices' detector objects.

In the field a central system does not see vehicles: it sees what each controller's detectors
report over NTCIP 1202, here one stop-bar loop per incoming lane (detector ``d`` of a device
on its ``d``-th in-lane, as the co-simulation wires them): per period, the vehicles that
crossed it (``detectorVolume``) and the share of time it was covered (``detectorOccupancy``),
and whether it sees a vehicle now (``vehicleDetectorStatusGroupActive``).  Central reads them
every round (a second; :class:`deploy.central.NtcipActuator` with ``read_detectors``, the
devices' ``volumeOccupancyPeriod`` set to that second) and :class:`DetectorStateReader` turns
them into the :class:`sim.state.DistrictState` the controllers read, in place of SUMO's lanes.

The estimator, per lane and per second, is an input-output queue count held to what the
stop bar shows (kept simple on purpose: it uses nothing a stop-bar loop does not give, and
each rule is one line):

* **arrivals** ``rate``: the lane's mean stop-bar volume per second, the running mean over the
  first :data:`RATE_WINDOW_S` seconds, then an exponential mean with that time constant.  Over
  several cycles what leaves a lane is what arrived, so departures measure arrivals (a loop at
  the stop bar cannot see a vehicle arrive at the back of a queue);
* **queue**: ``queue + rate - volume`` each second, so it grows at the arrival rate while the
  lane is held and falls by the vehicles counted leaving when it is served; a second in which
  the loop was never covered and sees nothing means no vehicle stands at the stop bar: the
  queue is 0; a loop that sees a vehicle now means at least 1; never more than the lane holds
  (its length over :data:`JAM_SPACING_M`).

What the controllers get: ``queue`` the estimate; ``count`` the same estimate (a stop-bar loop
sees only the vehicles the signal holds: the moving vehicles further up the lane, which SUMO's
``count`` includes, are not seen, so max-pressure's pressure becomes a queue pressure.  Adding
them by Little's law, arrival rate times free-flow time over the lane, was tried and is worse:
that term is nearly constant, so it ranks stages by lane length and flow, not by what waits;
see the README); ``out_count`` the estimate of the downstream lane where it is another signal's detected
in-lane, 0 where it leaves the district (no detector there: taken as free); the stages from
the devices' phase status, as with ``--state sumo``.  ``speed`` and ``waiting`` cannot be
measured by a stop-bar count: a controller that reads them is refused (:func:`check_fields`)
rather than given made-up values.

Standard library only (``deploy`` does not import numpy or ``sim``): the state's arrays are
written by slice assignment.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sim.errors import WulinError

if TYPE_CHECKING:
    from deploy.central import DetectorSample

JAM_SPACING_M = 7.5  # metres of lane per standing vehicle (car and gap)
RATE_WINDOW_S = 300.0  # the arrival rate's time constant: several cycles
DETECTED_FIELDS = ("queue", "count", "out_count", "stage", "stage_time", "in_transition")
"""The :class:`DistrictState` fields ``--state devices`` gives (estimated or from the devices)."""


def check_fields(controller: str, fields: Sequence[str]) -> None:
    """Refuse a controller that reads a state field the detectors cannot give."""
    missing = [f for f in fields if f not in DETECTED_FIELDS]
    if missing:
        raise WulinError(f"controller {controller!r} reads {', '.join(missing)} from the state; the devices' "
                         f"stop-bar detectors give {', '.join(DETECTED_FIELDS)} only: run it with --state sumo")


class LaneQueues:
    """The queue estimate of each lane (module docstring), updated once per detector period.

    Args:
        lengths: Each lane's length in metres (its storage).
        window_s: The arrival rate's time constant, seconds.
    """

    def __init__(self, lengths: Sequence[float], window_s: float = RATE_WINDOW_S) -> None:
        self.capacity = [max(1.0, float(x) / JAM_SPACING_M) for x in lengths]
        self.window_s = float(window_s)
        self.queue = [0.0] * len(self.capacity)
        self.rate = [0.0] * len(self.capacity)  # vehicles per second
        self._seen = [0.0] * len(self.capacity)  # seconds of readings so far

    def update(self, lane: int, volume: int, occupancy: int, present: bool, seconds: float = 1.0) -> None:
        """One period's reading of the lane's stop-bar loop: ``volume`` vehicles, ``occupancy``
        0-200 (NTCIP's 0.5 % steps), ``present`` a vehicle on it now."""
        self._seen[lane] += seconds
        weight = seconds / min(self._seen[lane], self.window_s)
        self.rate[lane] += (volume / seconds - self.rate[lane]) * weight
        if occupancy == 0 and not present:
            self.queue[lane] = 0.0
            return
        q = self.queue[lane] + self.rate[lane] * seconds - volume
        self.queue[lane] = min(max(q, 1.0 if present else 0.0), self.capacity[lane])


class DetectorStateReader:
    """Builds the controllers' state from the devices' detector samples.

    Args:
        in_lanes: The layout's in-lanes (the state's ``queue`` / ``count`` order).
        in_lengths: Their lengths, metres.
        out_lanes: The layout's out-lanes (``out_count`` order).
        detector_lanes: Per device (central's order), the in-lane index of detector ``d`` at
            position ``d - 1``.
        period_s: The detectors' ``volumeOccupancyPeriod``, seconds.
    """

    def __init__(self, in_lanes: Sequence[str], in_lengths: Sequence[float], out_lanes: Sequence[str],
                 detector_lanes: Sequence[Sequence[int]], period_s: float = 1.0) -> None:
        self.queues = LaneQueues(in_lengths)
        self.detector_lanes = [list(x) for x in detector_lanes]
        self.period_s = float(period_s)
        pos = {lane: k for k, lane in enumerate(in_lanes)}
        self._out_from = [pos.get(lane, -1) for lane in out_lanes]  # -1: leaves the district
        self.periods = 0  # device periods taken

    def update(self, samples: Sequence[DetectorSample]) -> None:
        """Take each device's new period (a device not read this round keeps its lanes' estimates)."""
        for lanes, s in zip(self.detector_lanes, samples, strict=True):
            if not s.new:
                continue
            self.periods += 1
            for d, lane in enumerate(lanes):
                self.queues.update(lane, s.volume[d], s.occupancy[d], bool(s.active >> d & 1), self.period_s)

    def read(self, into: Any, stage: Sequence[int], stage_time: Sequence[float],
             in_transition: Sequence[bool], time: float) -> Any:
        """Write the estimate and the devices' stages into ``into`` (a :class:`sim.state.DistrictState`)."""
        q = self.queues.queue
        into.queue[:] = q
        into.count[:] = q
        into.out_count[:] = [q[k] if k >= 0 else 0.0 for k in self._out_from]
        into.stage[:] = stage
        into.stage_time[:] = stage_time
        into.in_transition[:] = in_transition
        into.time = time
        return into
