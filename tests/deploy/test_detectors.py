"""Detector inputs: calls to their phases and the NTCIP volume / occupancy objects."""

from __future__ import annotations

from deploy import oids as O
from deploy.detectors import DetectorReading
from deploy.phase_engine import bit

from .engine_helpers import Bench


def test_volume_and_occupancy_over_the_period() -> None:
    b = Bench(detectors={1: 1, 2: 2, 3: 2})
    assert b.dev.value(O.MAX_VEHICLE_DETECTORS) == 3 and b.dev.value(O.VEHICLE_DETECTOR_CALL_PHASE + (3,)) == 2
    assert b.set((O.VOLUME_OCCUPANCY_PERIOD, 10)) == "noError"
    for k in range(10):  # detector 1 occupied half the time, 3 vehicles; detector 3 always, 1 vehicle
        b.dev.unit.feed({1: DetectorReading(k % 2 == 0, 1 if k < 3 else 0), 3: DetectorReading(True, int(k == 0))})
        b.run(1)
    assert b.dev.value(O.VOLUME_OCCUPANCY_SEQUENCE) == 1
    assert [b.dev.value(O.DETECTOR_VOLUME + (d,)) for d in (1, 2, 3)] == [3, 0, 1]
    assert [b.dev.value(O.DETECTOR_OCCUPANCY + (d,)) for d in (1, 2, 3)] == [100, 0, 200]  # 0.5 % steps
    assert b.dev.value(O.DETECTOR_STATUS_ACTIVE + (1,)) == 0b100  # detector 3 sees a vehicle now
    b.run(10)
    assert b.dev.value(O.VOLUME_OCCUPANCY_SEQUENCE) == 2 and b.dev.value(O.DETECTOR_VOLUME + (1,)) == 0


def test_a_detector_calls_its_phase_and_the_call_is_shown() -> None:
    b = Bench(detectors={1: 1, 2: 2})
    b.set((O.SYSTEM_PATTERN_CONTROL, O.PATTERN_FREE))
    b.run(3)
    assert b.dev.value(O.PHASE_STATUS_VEH_CALLS + (1,)) == 0
    b.dev.unit.feed({2: DetectorReading(True, 1)})
    b.run(1)
    b.dev.unit.feed({2: DetectorReading(False, 0)})
    assert b.dev.value(O.PHASE_STATUS_VEH_CALLS + (1,)) == bit(2)  # locked: the vehicle has gone, the call stays
    b.run(30)
    assert b.dev.unit.engine.state.stage == 1 and b.dev.value(O.PHASE_STATUS_VEH_CALLS + (1,)) == 0
