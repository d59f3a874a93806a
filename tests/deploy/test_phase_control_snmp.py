"""Phase status and phase control over real SNMP on loopback: with the project's own client
(SNMPv3 authPriv) and with Net-SNMP's snmpset / snmpget (an independent client)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from deploy import oids as O
from deploy.emulator import ControllerEmulator
from deploy.ntcip import snmp_session
from deploy.phase_engine import bit

from .conftest import CAPS, conflicts_for, make_plan, make_profile
from .test_emulator_netsnmp import needs_netsnmp, run, target, v3

CONTROL = {"omit": O.PHASE_CONTROL_OMIT, "ped-omit": O.PHASE_CONTROL_PED_OMIT, "hold": O.PHASE_CONTROL_HOLD,
           "force-off": O.PHASE_CONTROL_FORCE_OFF, "veh-call": O.PHASE_CONTROL_VEH_CALL,
           "ped-call": O.PHASE_CONTROL_PED_CALL}


class Clock:
    """The device's clock, moved by the test (the emulator then runs in lockstep with it)."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def bench() -> Iterator[tuple[ControllerEmulator, Clock]]:
    clock = Clock()
    emu = ControllerEmulator(make_profile(), make_plan(), CAPS, clock=clock, conflicts=conflicts_for("B1")).start()
    yield emu, clock
    emu.stop()


def _advance(emu: ControllerEmulator, clock: Clock, seconds: int) -> None:
    for _ in range(seconds):
        clock.t += 1
        with emu.lock:
            emu.advance()


def test_phase_status_and_control_with_the_project_client(bench) -> None:  # noqa: ANN001
    emu, clock = bench
    reader = snmp_session(emu.host, emu.port, emu.credentials, False, 1.0, 1)
    writer = snmp_session(emu.host, emu.port, emu.credentials, True, 1.0, 1)
    got = reader.get([O.PHASE_STATUS_GREENS + (1,), O.PHASE_STATUS_REDS + (1,), O.PHASE_STATUS_ONS + (1,),
                      O.MAX_PHASE_GROUPS])
    assert list(got.values()) == [bit(1), bit(2), bit(1), 1]  # stage 0 (phase 1) green at the offset
    for name, col in CONTROL.items():  # each control object: written, read back, cleared
        value = bit(1) if name == "hold" else bit(2)
        writer.set([(col + (1,), value)])
        assert reader.get([col + (1,)])[col + (1,)] == value, name
        writer.set([(col + (1,), 0)])
    writer.set([(O.SYSTEM_PATTERN_CONTROL, O.PATTERN_FREE), (O.PHASE_CONTROL_VEH_CALL + (1,), bit(2)),
                (O.PHASE_CONTROL_FORCE_OFF + (1,), bit(1))])
    _advance(emu, clock, 11)  # minimum green 10 s, then yellow
    got = reader.get([O.PHASE_STATUS_YELLOWS + (1,), O.PHASE_STATUS_NEXTS + (1,), O.PHASE_STATUS_VEH_CALLS + (1,)])
    assert list(got.values()) == [bit(1), bit(2), bit(2)]
    _advance(emu, clock, 5)
    assert reader.get([O.PHASE_STATUS_GREENS + (1,)])[O.PHASE_STATUS_GREENS + (1,)] == bit(2)
    reader.close()
    writer.close()


@needs_netsnmp
def test_net_snmp_reads_phase_status_and_sets_every_phase_control_object(bench) -> None:  # noqa: ANN001
    emu, clock = bench
    creds = emu.credentials
    assert creds.writer is not None
    greens = run("snmpget", *v3(creds.reader), "-Oqv", target(emu), O.dotted(O.PHASE_STATUS_GREENS + (1,)))
    assert greens.returncode == 0 and greens.stdout.strip() == str(bit(1)), greens.stderr
    for name, col in CONTROL.items():
        value = bit(1) if name == "hold" else bit(2)
        ok = run("snmpset", *v3(creds.writer), "-Oqv", target(emu), O.dotted(col + (1,)), "i", str(value))
        assert ok.returncode == 0 and ok.stdout.strip() == str(value), (name, ok.stderr)
        back = run("snmpget", *v3(creds.reader), "-Oqv", target(emu), O.dotted(col + (1,)))
        assert back.stdout.strip() == str(value), name
    # the hold keeps phase 1 green past its force-off point (40 s); a conflicting hold is refused whole
    _advance(emu, clock, 60)
    assert emu.unit.engine.state.stage == 0 and emu.unit.engine.state.interval == "green"
    bad = run("snmpset", *v3(creds.writer), target(emu), O.dotted(O.PHASE_CONTROL_HOLD + (1,)), "i", "3")
    assert bad.returncode != 0 and "inconsistentValue" in bad.stderr
    assert emu.value(O.PHASE_CONTROL_HOLD + (1,)) == bit(1)
    # the whole status group walks
    walk = run("snmpwalk", *v3(creds.reader), "-On", target(emu), O.dotted(O.PHASE_STATUS_ENTRY))
    assert walk.returncode == 0 and len(walk.stdout.splitlines()) == 11 * ((CAPS.max_phases + 7) // 8)
