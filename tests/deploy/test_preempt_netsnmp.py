"""The preempt objects read and written with Net-SNMP's snmpset / snmpget / snmpwalk on the
emulator (an independent client), and the preemptState enumeration pinned to the reference table."""

from __future__ import annotations

import csv
from collections.abc import Iterator

import pytest

from deploy import oids as O
from deploy.emulator import ControllerEmulator

from .conftest import CAPS, make_plan, make_profile
from .test_emulator_netsnmp import REFERENCE, needs_netsnmp, ro, run, rw, target

# Pinned from ntcip_oids.tsv.
DWELL_PHASE_1 = "1.3.6.1.4.1.1206.4.2.1.6.2.1.13.1"  # preemptDwellPhase.1
EXIT_PHASE_1 = "1.3.6.1.4.1.1206.4.2.1.6.2.1.15.1"  # preemptExitPhase.1
MAX_PRESENCE_1 = "1.3.6.1.4.1.1206.4.2.1.6.2.1.11.1"  # preemptMaximumPresence.1
STATE_1 = "1.3.6.1.4.1.1206.4.2.1.6.2.1.16.1"  # preemptState.1
CONTROL_STATE_1 = "1.3.6.1.4.1.1206.4.2.1.6.3.1.2.1"  # preemptControlState.1
GREENS_1 = "1.3.6.1.4.1.1206.4.2.1.1.4.1.4.1"  # phaseStatusGroupGreens.1
MAX_PREEMPTS = "1.3.6.1.4.1.1206.4.2.1.6.1.0"


class HandClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def field() -> Iterator[tuple[ControllerEmulator, HandClock]]:
    clock = HandClock()
    e = ControllerEmulator(make_profile(), make_plan(), CAPS, snmp_v2c=True, clock=clock).start()
    yield e, clock
    e.stop()


def get(emu: ControllerEmulator, oid: str) -> str:
    out = run("snmpget", "-v2c", "-c", ro(emu), "-Oqv", "-r", "0", "-t", "2", target(emu), oid)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def set_(emu: ControllerEmulator, *varbinds: str) -> None:
    out = run("snmpset", "-v2c", "-c", rw(emu), "-r", "0", "-t", "2", target(emu), *varbinds)
    assert out.returncode == 0, out.stderr


@needs_netsnmp
def test_snmpset_calls_a_preempt_and_snmpget_follows_its_state(field: tuple[ControllerEmulator, HandClock]) -> None:
    emu, clock = field
    assert get(emu, MAX_PREEMPTS) == "6"
    set_(emu, DWELL_PHASE_1, "x", "02", EXIT_PHASE_1, "x", "01", MAX_PRESENCE_1, "i", "60")
    assert get(emu, STATE_1) == "2"  # notActive
    assert get(emu, GREENS_1) == "1"  # phase 1 green (stage 0)
    clock.t = 3.0
    set_(emu, CONTROL_STATE_1, "i", "1")
    clock.t = 4.0
    assert get(emu, STATE_1) == "4"  # entryStarted: phase 1 times its minimum green first
    assert get(emu, GREENS_1) == "1"
    clock.t = 20.0
    assert get(emu, STATE_1) == "6"  # dwell
    assert get(emu, GREENS_1) == "2"  # phase 2 green
    assert get(emu, CONTROL_STATE_1) == "1"
    set_(emu, CONTROL_STATE_1, "i", "0")
    clock.t = 21.0
    assert get(emu, STATE_1) == "8"  # exitStarted
    clock.t = 32.0  # the dwell green's own minimum (10 s from 15 s), clearance, exit green
    assert get(emu, STATE_1) == "2" and get(emu, GREENS_1) == "1"
    assert emu.unit.preempts.served == 1 and not emu.unit.monitor.tripped


@needs_netsnmp
def test_maximum_presence_over_snmp(field: tuple[ControllerEmulator, HandClock]) -> None:
    emu, clock = field
    set_(emu, DWELL_PHASE_1, "x", "02", MAX_PRESENCE_1, "i", "30")
    set_(emu, CONTROL_STATE_1, "i", "1")
    clock.t = 20.0
    assert get(emu, STATE_1) == "6"
    clock.t = 31.0
    assert get(emu, STATE_1) == "9"  # maxPresence: ended, the input still on


@needs_netsnmp
def test_the_device_refuses_bad_preempt_values(field: tuple[ControllerEmulator, HandClock]) -> None:
    emu, _ = field
    no_dwell = run("snmpset", "-v2c", "-c", rw(emu), "-r", "0", "-t", "2", target(emu), CONTROL_STATE_1, "i", "1")
    assert no_dwell.returncode != 0 and "inconsistentValue" in no_dwell.stderr
    two_stages = run("snmpset", "-v2c", "-c", rw(emu), "-r", "0", "-t", "2", target(emu), DWELL_PHASE_1, "x", "0102")
    assert two_stages.returncode != 0 and "inconsistentValue" in two_stages.stderr
    read_only = run("snmpset", "-v2c", "-c", rw(emu), "-r", "0", "-t", "2", target(emu), STATE_1, "i", "6")
    assert read_only.returncode != 0 and "notWritable" in read_only.stderr
    walk = run("snmpwalk", "-v2c", "-c", ro(emu), "-On", target(emu), "1.3.6.1.4.1.1206.4.2.1.6.2.1.16")
    assert walk.returncode == 0 and len(walk.stdout.splitlines()) == 6


@pytest.mark.skipif(not REFERENCE.is_file(), reason="shared/reference/ntcip_oids.tsv not beside the repository")
def test_preempt_state_enumeration_is_the_reference_tables() -> None:
    with REFERENCE.open(newline="") as fh:
        table = {row["object"]: row for row in csv.DictReader(fh, delimiter="\t")}
    enum = table["preemptState"]["range/enum"]
    for name, value in (("notActive", O.PREEMPT_NOT_ACTIVE), ("notActiveWithCall", O.PREEMPT_WITH_CALL),
                        ("entryStarted", O.PREEMPT_ENTRY_STARTED), ("trackService", O.PREEMPT_TRACK_SERVICE),
                        ("dwell", O.PREEMPT_DWELL), ("linkActive", O.PREEMPT_LINK_ACTIVE),
                        ("exitStarted", O.PREEMPT_EXIT_STARTED), ("maxPresence", O.PREEMPT_MAX_PRESENCE_STATE)):
        assert f"{name}({value})" in enum
    assert table["preemptControlState"]["range/enum"] == "0..1"


# The emulator's private priority objects (deploy.priority; the reference table has no NTCIP 1211).
PRIORITY_REQUEST_1 = "1.3.6.1.4.1.32473.1206.3.4.1.2.1"
PRIORITY_STATE_1 = "1.3.6.1.4.1.32473.1206.3.4.1.3.1"
PRIORITY_MAX_EXTENSION = "1.3.6.1.4.1.32473.1206.3.1.0"


@needs_netsnmp
def test_snmpset_requests_priority_and_snmpget_reads_its_state(field: tuple[ControllerEmulator, HandClock]) -> None:
    emu, clock = field
    set_(emu, PRIORITY_MAX_EXTENSION, "i", "15")
    clock.t = 35.0
    set_(emu, PRIORITY_REQUEST_1, "i", "1")  # a late bus on phase 1, 5 s before its force-off
    clock.t = 36.0
    assert get(emu, PRIORITY_STATE_1) == "3"  # active
    clock.t = 50.0
    assert get(emu, GREENS_1) == "1"  # phase 1 still green, 10 s past its force-off
    clock.t = 56.0
    assert get(emu, PRIORITY_STATE_1) == "4" and get(emu, GREENS_1) == "0"  # served; extension ended at 55 s
    set_(emu, PRIORITY_REQUEST_1, "i", "0")
    clock.t = 57.0
    assert get(emu, PRIORITY_STATE_1) == "1"
