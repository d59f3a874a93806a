"""``unitBackupTime``: central commands unheard for that long end central control; the device
returns to its time-of-day plan on its own (within the backup time and one cycle)."""

from __future__ import annotations

from deploy import oids as O
from deploy.phase_engine import bit

from .engine_helpers import Bench

HOLD = O.PHASE_CONTROL_HOLD + (1,)


def _in_step_with_the_plan(b: Bench) -> bool:
    """Whether the device shows what a device that never left its plan shows now."""
    ref = Bench(tod=b.t)
    return ref.dev.unit.heads() == b.dev.unit.heads() and ref.dev.unit.engine.state.stage == b.dev.unit.engine.state.stage


def test_central_silence_returns_the_device_to_its_plan_within_backup_time_and_a_cycle() -> None:
    b = Bench()
    assert b.set((O.UNIT_BACKUP_TIME, 30)) == "noError"
    for _ in range(6):  # central holds phase 1 in free mode, heartbeat every 10 s
        assert b.set((O.SYSTEM_PATTERN_CONTROL, O.PATTERN_FREE), (HOLD, bit(1))) == "noError"
        b.run(10)
    assert b.dev.value(O.UNIT_CONTROL_STATUS) == O.CONTROL_SYSTEM
    assert b.trace == b.trace[:1] and b.trace[0].kind == "green"  # held green for a minute
    silent_at = b.t
    while b.dev.value(O.UNIT_CONTROL_STATUS) != O.CONTROL_BACKUP:
        b.run(1)
    assert b.t - silent_at <= 30 + 1
    assert b.dev.value(HOLD) == 0 and b.dev.value(O.SYSTEM_PATTERN_CONTROL) == 0 and b.dev.backup_fallbacks == 1
    fell_back = b.t
    while not _in_step_with_the_plan(b):
        b.run(1)
    assert b.t - fell_back <= 90  # one cycle of the time-of-day plan
    b.run(200)
    assert _in_step_with_the_plan(b) and not b.dev.unit.monitor.tripped


def test_phase_control_alone_is_a_central_command_too() -> None:
    b = Bench()
    b.set((O.UNIT_BACKUP_TIME, 20), (HOLD, bit(1)))
    b.run(15)
    b.set((HOLD, bit(1)))  # the heartbeat: any phase control SET
    b.run(15)
    assert b.dev.value(HOLD) == bit(1)
    b.run(10)
    assert b.dev.value(HOLD) == 0 and b.dev.value(O.UNIT_CONTROL_STATUS) == O.CONTROL_BACKUP


def test_no_backup_time_no_fallback() -> None:
    b = Bench()
    b.set((HOLD, bit(1)))
    b.run(600)
    assert b.dev.value(HOLD) == bit(1) and b.dev.backup_fallbacks == 0
