"""Device profiles: stage-to-phase mapping, capability checks, a dual-ring deploy."""

from __future__ import annotations

import pytest

from controllers.plan import TimingPlan
from deploy import oids as O
from deploy.emulator import ControllerEmulator
from deploy.ntcip import NtcipAdapter
from deploy.profile import (
    Capabilities,
    DeviceProfile,
    check_capabilities,
    plan_from_values,
    plan_values,
)
from sim.errors import WulinError

from .conftest import CAPS, make_plan

DUAL = {
    "signal_id": "B1",
    "stage_phases": [[2, 6], [4, 8]],
    "phase_rings": {"2": 1, "4": 1, "6": 2, "8": 2},
    "channels": {"2": 2, "4": 4, "6": 6, "8": 8},
    "pattern_slots": [5, 6],
}


def test_profile_json_and_problems() -> None:
    prof = DeviceProfile.from_dict(DUAL, "dual.json")
    assert prof.rings == (1, 2) and prof.ring_sequence(1) == (2, 4) and prof.ring_sequence(2) == (6, 8)
    assert DeviceProfile.from_json(prof.to_json()) == prof
    with pytest.raises(WulinError, match="dual.json: field 'channels' is missing"):
        DeviceProfile.from_dict({k: v for k, v in DUAL.items() if k != "channels"}, "dual.json")
    bad = dict(DUAL, stage_phases=[[2, 4], [6, 8]])
    with pytest.raises(WulinError, match="needs exactly one phase in each ring"):
        DeviceProfile.from_dict(bad, "bad.json")
    bad = dict(DUAL, channels={"2": 2, "4": 4, "6": 6})
    with pytest.raises(WulinError, match="phase 8 drives no channel"):
        DeviceProfile.from_dict(bad, "bad.json")


def test_capabilities_and_units() -> None:
    prof = DeviceProfile.from_dict(DUAL)
    plan = make_plan()
    assert check_capabilities(plan, prof, CAPS) == []
    small = Capabilities(max_phases=4, max_patterns=4, max_splits=4, max_rings=1, max_sequences=4, max_channels=4)
    found = check_capabilities(plan, prof, small)
    assert "phase 8 exceeds the device's 4 phases" in found
    assert "ring 2 exceeds the device's 1 rings" in found
    assert any("pattern slot 5 is outside" in f for f in found)
    assert any("drives channel 8, the device has 4" in f for f in found)
    odd_plan = TimingPlan(**{**plan.__dict__, "yellow": 3.25, "cycle": plan.cycle + 0.5})  # type: ignore[arg-type]
    found = check_capabilities(odd_plan, prof, CAPS)
    assert "yellow 3.25 s is not a whole number of tenths (NTCIP unit)" in found
    assert "cycle 90.5 s is not a whole number of seconds (NTCIP unit)" in found
    with pytest.raises(WulinError, match="cannot go to 'B1'"):
        plan_values(odd_plan, prof, CAPS, 5)


def test_values_round_trip_to_the_plan() -> None:
    prof = DeviceProfile.from_dict(DUAL)
    plan = make_plan(greens=(50, 30), offset=7)
    values = plan_values(plan, prof, CAPS, 5)
    assert values[O.SEQUENCE_DATA + (5, 1)] == bytes([2, 4]) and values[O.SEQUENCE_DATA + (5, 2)] == bytes([6, 8])
    assert values[O.SPLIT_TIME + (5, 2)] == values[O.SPLIT_TIME + (5, 6)] == 55
    assert values[O.SPLIT_MODE + (5, 1)] == O.SPLIT_MODE_OMITTED and values[O.SPLIT_COORD_PHASE + (5, 2)] == 1
    assert values[O.PHASE_YELLOW + (2,)] == 30 and values[O.PHASE_RED_CLEAR + (8,)] == 20
    back = plan_from_values(plan, prof, values, 5)
    assert back.splits == plan.splits and back.cycle == plan.cycle and back.offset == 7
    assert [s.state for s in back.stages] == [s.state for s in plan.stages]


def test_dual_ring_deploy() -> None:
    prof = DeviceProfile.from_dict(DUAL)
    emu = ControllerEmulator(prof, make_plan(), CAPS, time_scale=300, verify_s=3).start()
    try:
        rep = NtcipAdapter(emu.host, emu.port, prof, emu.credentials, timeout=0.3, activation_timeout_s=5).deploy(
            make_plan(greens=(50, 30), offset=7))
        assert rep.ok, rep.message
        assert rep.slot == 5 and emu.active_pattern == 5  # the first central slot
        assert emu.active_plan().splits == (55, 35)  # type: ignore[union-attr]
    finally:
        emu.stop()


@pytest.mark.parametrize(
    ("change", "needle"),
    [({"channels": {"2": 2, "4": 4, "6": 6, "8": 999}}, "field 'channels.8' must be <= 255"),
     ({"stage_phases": [[2, 6], [4, True]]}, "field 'stage_phases[1][1]' must be an integer"),
     ({"stage_phases": []}, "field 'stage_phases'"),
     ({"pattern_slots": [5]}, "field 'pattern_slots[1]' is missing"),
     ({"signal_id": "x" * 5000}, "field 'signal_id'"),
     ({"colour": "red"}, "unknown field(s) colour")],
)
def test_profile_fields_are_typed(change: dict, needle: str) -> None:
    with pytest.raises(WulinError) as err:
        DeviceProfile.from_dict({**DUAL, **change}, "dual.json")
    assert str(err.value).startswith("dual.json") and needle in str(err.value)


@pytest.mark.parametrize("text", ['{"signal_id": NaN}', "[" * 5000, '{"signal_id": "B1", "channels": {"2": 1e999}}'])
def test_profile_json_limits(text: str) -> None:
    with pytest.raises(WulinError, match="p.json"):
        DeviceProfile.from_json(text, "p.json")
