"""Central control over SNMP: stage requests become phase control on real emulated controllers,
maximum green is the actuator's rule, and a central that goes quiet leaves the devices safe."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from deploy import oids as O
from deploy.central import DeviceLink, NtcipActuator
from deploy.emulator import ControllerEmulator
from deploy.ntcip import snmp_session
from deploy.profile import single_ring_profile

from .conftest import CAPS, conflicts_for
from .engine_helpers import plan_with
from .test_phase_control_snmp import Clock


@pytest.fixture
def field() -> Iterator[tuple[ControllerEmulator, NtcipActuator, Clock]]:
    clock = Clock()
    emu = ControllerEmulator(single_ring_profile("B1", 2), plan_with(), CAPS, clock=clock,
                             conflicts=conflicts_for("B1")).start()
    link = DeviceLink("B1", emu.profile, snmp_session(emu.host, emu.port, emu.credentials, False, 1.0, 1),
                      snmp_session(emu.host, emu.port, emu.credentials, True, 1.0, 0))
    central = NtcipActuator([link], [30.0], heartbeat_s=2, backup_s=5)
    yield emu, central, clock
    link.reader.close()
    link.writer.close()
    emu.stop()


def _second(emu: ControllerEmulator, central: NtcipActuator | None, clock: Clock,
            decision: list[int] | None = None) -> None:
    """One lockstep second: the device ticks, central polls, decides and commands."""
    with emu.lock:
        emu.advance()
    if central is not None:
        central.poll(clock.t)
        if decision is not None:
            central.request(decision)
        central.command(clock.t)
    clock.t += 1


def test_a_requested_stage_is_served_after_the_device_minimum_green(field) -> None:  # noqa: ANN001
    emu, central, clock = field
    central.take_control(0.0)
    assert emu.value(O.SYSTEM_PATTERN_CONTROL) == O.PATTERN_FREE and emu.value(O.UNIT_BACKUP_TIME) == 5
    assert central.stage_views(0.0)[0] == [0]  # the device's plan had stage 0's green start at 0
    for _ in range(10):  # asked for stage 1 from the start: the device times its 10 s minimum first
        _second(emu, central, clock, [1])
    assert clock.t == 10 and emu.unit.engine.state.interval == "green"
    _second(emu, central, clock)
    assert central.stage_views(10.0) == ([1], [0.0], [True])  # yellow at 10 s, leading to stage 1
    for _ in range(5):  # yellow 3 s, red 2 s, then stage 1's green at 15 s
        _second(emu, central, clock)
    assert central.stage_views(15.0) == ([1], [0.0], [False]) and emu.unit.engine.state.stage == 1
    for _ in range(9):  # asked back at once (16-24 s): stage 1 holds its own minimum green too
        _second(emu, central, clock, [0])
    assert emu.unit.engine.state.interval == "green"
    _second(emu, central, clock)
    assert emu.unit.engine.state.interval == "yellow" and central.stage_views(25.0)[0] == [0]
    assert central.stats.timeouts == 0 and central.stats.refused == 0


def test_maximum_green_moves_on_to_the_next_stage(field) -> None:  # noqa: ANN001
    emu, central, clock = field
    central.take_control(0.0)
    for _ in range(31):  # nobody asks for anything: 30 s maximum green, then the next stage in order
        _second(emu, central, clock)
    assert emu.unit.engine.state.interval == "yellow" and emu.unit.engine.state.next_stage == 1


def test_a_silent_central_leaves_the_device_on_its_plan_within_its_backup_time(field) -> None:  # noqa: ANN001
    emu, central, clock = field
    central.take_control(0.0)
    for _ in range(20):
        _second(emu, central, clock, [0])  # held in stage 0 beyond its split
    assert emu.value(O.UNIT_CONTROL_STATUS) == O.CONTROL_SYSTEM
    for _ in range(7):  # central crashed: nothing more arrives
        _second(emu, None, clock)
    assert emu.value(O.UNIT_CONTROL_STATUS) == O.CONTROL_BACKUP and emu.value(O.PHASE_CONTROL_HOLD + (1,)) == 0
    assert emu.backup_fallbacks == 1 and not emu.unit.monitor.tripped
    central.take_control(clock.t)  # the link is back: central control resumes
    assert emu.value(O.UNIT_CONTROL_STATUS) == O.CONTROL_SYSTEM
