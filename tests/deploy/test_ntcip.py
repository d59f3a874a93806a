"""Deploy adapter against the emulator on loopback: the wire, readback, and every injected fault."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from deploy import oids as O
from deploy.emulator import ControllerEmulator
from deploy.ntcip import NtcipAdapter, decode_values, encode_values
from deploy.profile import plan_values
from deploy.snmp import SnmpClient, SnmpError

from .conftest import CAPS, make_plan, make_profile

BASE = make_plan(greens=(40, 40), name="local")
NEW = make_plan(greens=(50, 30), offset=7, name="new")


@pytest.fixture
def emu() -> Iterator[ControllerEmulator]:
    e = ControllerEmulator(make_profile(), BASE, CAPS, time_scale=300, verify_s=3).start()
    yield e
    e.stop()


def adapter(emu: ControllerEmulator, **kw: object) -> NtcipAdapter:
    args: dict[str, object] = dict(timeout=0.3, retries=2, activation_timeout_s=5, health_cycles=2, tx_wait_s=0.5)
    args.update(kw)
    return NtcipAdapter(emu.host, emu.port, emu.profile, emu.credentials, **args)  # type: ignore[arg-type]


def tables(emu: ControllerEmulator) -> dict[O.OID, object]:
    """The controller's committed timing tables (what must never be half-written)."""
    with emu.lock:
        return {o: v for o, v in emu.db.items() if emu.spec[o].kind == "P2"}


def test_deploy_end_to_end_on_the_wire(emu: ControllerEmulator) -> None:
    ad = adapter(emu)
    rep = ad.deploy(NEW)
    assert rep.outcome == "deployed", rep.message
    assert rep.slot == 2 and rep.previous_pattern == 1
    # Readback: the controller holds exactly the plan's values, and runs it.
    expected = plan_values(NEW, emu.profile, CAPS, 2)
    assert all(emu.db[o] == v for o, v in expected.items())
    assert emu.active_pattern == 2 and emu.active_plan().splits == NEW.splits  # type: ignore[union-attr]
    # On the wire: the order of the NTCIP 1201 transaction, as the agent saw it.
    # Every SET of the transaction carries this session's owner token first.
    seq = []
    for r in emu.pdu_log:
        if r.direction == "received" and r.pdu.kind == "set":
            vbs = r.pdu.varbinds
            if vbs[0][0] == O.TX_OWNER:
                vbs = vbs[1:]
            seq.append(O.name_of(vbs[0][0]).split(".")[0] if len(vbs) == 1 else "tables")
    assert seq == ["dbCreateTransaction", "tables", "tables", "tables", "dbCreateTransaction",
                   "dbCreateTransaction", "systemPatternControl"]
    sets = [vb for r in emu.pdu_log if r.direction == "received" and r.pdu.kind == "set" for vb in r.pdu.varbinds]
    assert [v for o, v in sets if o == O.DB_CREATE_TRANSACTION] == [2, 3, 1]
    assert {o: v for o, v in sets if o not in (O.DB_CREATE_TRANSACTION, O.SYSTEM_PATTERN_CONTROL, O.TX_OWNER)} == expected
    assert len({v for o, v in sets if o == O.TX_OWNER}) == 1
    # The manager's own record matches the agent's: every request answered once.
    sent = [r for r in rep.wire if r.direction == "sent"]
    got = [r for r in rep.wire if r.direction == "received"]
    assert len(sent) == len(got) > 10 and all(r.pdu.error_status == 0 for r in got)
    # A second deploy goes to the other slot, and the snapshot round-trips through JSON.
    rep2 = ad.deploy(make_plan(greens=(45, 35), offset=7))
    assert rep2.outcome == "deployed" and rep2.slot == 3 and emu.active_pattern == 3
    assert decode_values(encode_values(rep2.snapshot)) == rep2.snapshot


def test_manual_rollback_restores_previous_plan(emu: ControllerEmulator) -> None:
    ad = adapter(emu)
    before = tables(emu)
    rep = ad.deploy(NEW)
    assert rep.ok
    back = ad.rollback(rep.summary())
    assert back.outcome == "rolled_back", back.message
    assert tables(emu) == before and emu.active_pattern == 1


@pytest.mark.parametrize(
    ("fault", "outcome", "message"),
    [
        ("verify_error", "failed", "device verify failed: PHASE 03 CONCURRENCY FAULT"),
        ("held_by_other", "failed", "another manager holds it"),
        ("reboot", "failed", "controller is unchanged"),
        ("drop_set", "failed", "controller is unchanged"),
        ("readback_mismatch", "rolled_back", "readback differs"),
        ("bad_health", "rolled_back", "health check failed: localFreeStatus badPlan"),
    ],
)
@pytest.mark.parametrize("activation", ["pattern", "schedule"])
def test_every_fault_ends_in_rollback_or_clean_failure(emu: ControllerEmulator, fault: str, outcome: str,
                                                        message: str, activation: str) -> None:
    ad = adapter(emu, activation=activation)
    before = tables(emu)
    if fault == "verify_error":
        emu.faults.verify_error = "PHASE 03 CONCURRENCY FAULT"
    elif fault == "held_by_other":
        emu.hold_transaction_for_other()
    elif fault == "reboot":
        emu.faults.reboot_after_p2_sets = 20  # in the middle of the second table PDU
    elif fault == "drop_set":
        emu.faults.drop_set_responses = 2  # the answers to 'transaction' and the first table PDU
    elif fault == "readback_mismatch":
        emu.faults.readback_mismatch = {O.SPLIT_TIME + (2, 1): 44}
    elif fault == "bad_health":
        emu.faults.bad_health = 7
    rep = ad.deploy(NEW)
    assert rep.outcome == outcome, rep.message
    assert message in rep.message
    if fault != "held_by_other":
        assert emu.tx_state == O.TX_NORMAL, "the transaction was left open"
    # Never half-written: the timing tables are exactly as before, and the old pattern runs.
    assert tables(emu) == before
    assert emu.active_pattern == 1
    if outcome == "rolled_back":
        assert "rolled back to the snapshot (readback verified)" in rep.message
    if fault == "reboot":
        assert emu.reboots == 1
    if activation == "schedule":
        assert emu.tod_pattern() == 1 and emu.db[O.SYSTEM_PATTERN_CONTROL] == 0


def test_activation_by_time_of_day_schedule(emu: ControllerEmulator) -> None:
    ad = adapter(emu, activation="schedule")
    rep = ad.deploy(NEW)
    assert rep.ok, rep.message
    assert emu.tod_pattern() == 2 and emu.active_pattern == 2
    assert ad.status()["control"] == 0  # no system pattern control: nothing to keep refreshing
    sets = [vb for r in emu.pdu_log if r.direction == "received" and r.pdu.kind == "set" for vb in r.pdu.varbinds]
    assert (O.TIMEBASE_PATTERN + (1,), 2) in sets and all(o != O.SYSTEM_PATTERN_CONTROL for o, _ in sets)
    # The backup timer has nothing to undo: the schedule itself runs the plan.
    ad.writer.set([(O.UNIT_BACKUP_TIME, 30)])
    time.sleep(0.5)  # 150 emulated seconds
    assert emu.active_pattern == 2
    back = ad.rollback(rep.summary())
    assert back.outcome == "rolled_back", back.message
    assert emu.tod_pattern() == 1 and emu.active_pattern == 1
    # Under system pattern control, a schedule deploy is refused before writing anything.
    ad.writer.set([(O.UNIT_BACKUP_TIME, 0)])  # else the unit drops system control within 30 s
    ad2 = adapter(emu)
    assert ad2.deploy(NEW).ok and emu.db[O.SYSTEM_PATTERN_CONTROL] == 2
    rep = ad.deploy(make_plan(greens=(45, 35)))
    assert rep.outcome == "failed" and "runs system pattern 2, not its schedule" in rep.message


def test_late_and_dropped_get_answers_are_survived(emu: ControllerEmulator) -> None:
    emu.faults.delay_responses, emu.faults.delay_s = 1, 0.4  # later than the 0.3 s timeout
    emu.faults.drop_responses = 1
    rep = adapter(emu).deploy(NEW)
    assert rep.outcome == "deployed", rep.message
    assert any(r.direction == "late" for r in rep.wire), "the late answers were recognised and dropped"


def test_backup_timer_falls_back_to_local_plan(emu: ControllerEmulator) -> None:
    ad = adapter(emu)
    assert ad.deploy(NEW).ok
    ad.writer.set([(O.UNIT_BACKUP_TIME, 200)])  # emulated seconds; about 0.7 s of wall time
    deadline = time.monotonic() + 5
    while emu.active_pattern != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert emu.active_pattern == 1 and ad.status()["control"] == 0
    assert ad.reader.get([O.UNIT_CONTROL_STATUS])[O.UNIT_CONTROL_STATUS] == 4  # backupMode


def test_pattern_changes_wait_for_the_cycle_boundary() -> None:
    emu = ControllerEmulator(make_profile(), BASE, CAPS, time_scale=60, verify_s=1).start()
    try:
        ad = adapter(emu, activation_timeout_s=10)
        values = plan_values(NEW, emu.profile, CAPS, 2)
        ad.write_tables(values)
        switched: list[float] = []  # emulated time of the cycle boundary at which it switched
        emu.on_pattern_change = lambda pat, plan: switched.append(emu._cycle_start)
        ad.writer.set([(O.SYSTEM_PATTERN_CONTROL, 2)])
        asked = emu.now()
        assert emu.active_pattern == 1  # not at once
        deadline = time.monotonic() + 10
        while not switched and time.monotonic() < deadline:
            time.sleep(0.02)
        assert switched, "the pattern never changed"
        # The first boundary of the running 90 s cycle after the request.
        assert switched[0] % BASE.cycle == 0 and asked < switched[0] <= asked + BASE.cycle
        assert emu.active_pattern == 2
    finally:
        emu.stop()


def test_access_control_and_atomic_sets() -> None:
    emu = ControllerEmulator(make_profile(), BASE, CAPS, time_scale=300, verify_s=3, snmp_v2c=True).start()
    try:
        access_control_and_atomic_sets(emu)
    finally:
        emu.stop()


def access_control_and_atomic_sets(emu: ControllerEmulator) -> None:
    creds = emu.credentials
    assert creds.read_community and creds.write_community
    ro = SnmpClient(emu.host, emu.port, creds.read_community, "2c", timeout=0.3)
    rw = SnmpClient(emu.host, emu.port, creds.write_community, "1", timeout=0.3)
    with pytest.raises(SnmpError, match="noAccess"):
        ro.set([(O.UNIT_BACKUP_TIME, 5)])
    assert emu.db[O.UNIT_BACKUP_TIME] == 0
    with pytest.raises(SnmpError, match="noSuchName"):  # v1 spelling of notWritable
        rw.set([(O.UNIT_BACKUP_TIME, 5), (O.MAX_PHASES, 3)])
    assert emu.db[O.UNIT_BACKUP_TIME] == 0, "a refused PDU changes nothing"
    with pytest.raises(SnmpError) as info:
        rw.set([(O.UNIT_BACKUP_TIME, 5), (O.COORD_CORRECTION_MODE, 9)])
    assert info.value.index == 2  # the failing varbind, not the last or the first
    with pytest.raises(SnmpError, match="genErr"):  # P2 outside a transaction
        rw.set([(O.PATTERN_CYCLE + (2,), 90)])
    bad = SnmpClient(emu.host, emu.port, "guess", "2c", timeout=0.2, retries=0)
    with pytest.raises(Exception, match="no answer"):
        bad.get([O.MAX_PHASES])
    assert ro.walk(O.ASC + (1, 1))[O.MAX_PHASES] == CAPS.max_phases


def test_verify_status_numbering_is_read_by_meaning() -> None:
    prof = make_profile()
    prof = type(prof)(**{**prof.__dict__, "verify_scheme": "1201"})
    emu = ControllerEmulator(prof, BASE, CAPS, time_scale=300, verify_s=3).start()
    try:
        rep = adapter(emu).deploy(NEW)
        assert rep.ok, rep.message
        assert emu._verify_code(2) == 3
    finally:
        emu.stop()
