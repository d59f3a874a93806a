"""The conflict monitor: the compatibility matrix from the network, conflicts and clearance
faults, and the unit's flash and alarm when it trips."""

from __future__ import annotations

from deploy import oids as O
from deploy.conflict_monitor import ConflictMonitor, compatibility
from deploy.phase_engine import PhaseOutputs, bit
from deploy.profile import DeviceProfile

from .conftest import conflicts_for
from .engine_helpers import STATES, Bench


def test_compatibility_comes_from_the_link_conflicts() -> None:
    two_ring = DeviceProfile(signal_id="B1", stage_phases=((1, 5), (2, 6)), phase_rings={1: 1, 5: 2, 2: 1, 6: 2},
                             channels={1: 1, 5: 5, 2: 2, 6: 6})
    comp = compatibility(two_ring, STATES, conflicts_for("B1"))
    assert comp[1] == bit(1) | bit(5) and comp[6] == bit(2) | bit(6)  # same stage: together; across: never
    # a stage whose links are no foe of another's may run with it
    no_foes = [[False] * 16 for _ in range(16)]
    assert compatibility(two_ring, STATES, no_foes)[1] == bit(1) | bit(2) | bit(5) | bit(6)
    assert compatibility(two_ring, STATES, None)[2] == bit(2) | bit(6)  # unknown network: stages conflict


def test_monitor_flags_conflicts_and_missing_yellow() -> None:
    comp = {1: bit(1), 2: bit(2)}
    m = ConflictMonitor(comp)
    assert m.check(PhaseOutputs(greens=bit(1), reds=bit(2)), 0) is None
    fault = m.check(PhaseOutputs(greens=bit(1), yellows=bit(2)), 10)
    assert fault is not None and fault.kind == "conflict" and fault.phases == (1, 2)
    assert fault.describe() == "MMU CONFLICT PHASES 01 and 02"
    assert m.check(PhaseOutputs(reds=bit(1) | bit(2)), 20) is None  # latched: the first fault stays
    m.reset()
    m.check(PhaseOutputs(greens=bit(1), reds=bit(2)), 30)
    clear = m.check(PhaseOutputs(reds=bit(1), greens=bit(2)), 40)  # green to red with no yellow
    assert clear is not None and (clear.kind, clear.phases) == ("clearance", (1,))
    short = ConflictMonitor(comp, min_yellow=30)
    short.check(PhaseOutputs(yellows=bit(1), reds=bit(2)), 0)
    assert short.check(PhaseOutputs(reds=bit(1) | bit(2)), 20).kind == "clearance"  # type: ignore[union-attr]


def test_a_conflicting_output_puts_the_unit_into_flash_with_an_alarm() -> None:
    b = Bench()
    b.run(5)
    assert b.dev.value(O.UNIT_FLASH_STATUS) == O.FLASH_NOT_FLASH and b.dev.value(O.SHORT_ALARM_STATUS) == 0
    b.dev.unit.stuck_on = bit(2)  # phase 2's load switch fails on while phase 1 is green
    b.run(1)
    assert b.dev.value(O.UNIT_FLASH_STATUS) == O.FLASH_MMU
    assert b.dev.value(O.SHORT_ALARM_STATUS) & O.SHORT_ALARM_CRITICAL
    assert b.dev.value(O.MONITOR_FAULT) == b"MMU CONFLICT PHASES 01 and 02"
    assert b.dev.unit.heads() == "r" * 16 and b.dev.value(O.PHASE_STATUS_GREENS + (1,)) == 0
    b.dev.unit.stuck_on = 0
    assert b.set((O.PHASE_CONTROL_HOLD + (1,), bit(1)), (O.SYSTEM_PATTERN_CONTROL, 1)) == "noError"
    b.run(200)  # nothing a manager sets brings it out: the monitor latches until it is reset
    assert b.dev.value(O.UNIT_FLASH_STATUS) == O.FLASH_MMU and b.trace[-1].kind == "flash"
    b.dev.unit.reset_monitor()
    b.set((O.PHASE_CONTROL_HOLD + (1,), 0))
    b.run(3)
    assert [i.kind for i in b.trace[-2:]] == ["red", "green"] and b.dev.value(O.SHORT_ALARM_STATUS) == 0


def test_system_pattern_flash_and_back_through_red() -> None:
    b = Bench()
    b.run(10)
    assert b.set((O.SYSTEM_PATTERN_CONTROL, O.PATTERN_FLASH)) == "noError"
    b.run(5)
    assert b.dev.value(O.UNIT_FLASH_STATUS) == O.FLASH_AUTOMATIC and b.trace[-1].kind == "flash"
    assert b.set((O.SYSTEM_PATTERN_CONTROL, 0)) == "noError"
    b.run(3)
    assert [i.kind for i in b.trace[-3:]] == ["flash", "red", "green"] and not b.dev.unit.monitor.tripped
