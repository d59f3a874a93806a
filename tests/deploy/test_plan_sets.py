"""Time-of-day plan sets (issue 13 item 4): proposed, approved by two people, deployed to the
emulator as patterns plus its NTCIP time base, followed by the device's own clock, rolled back;
bad sets and devices that cannot hold them end in clear errors with nothing half-written."""

from __future__ import annotations

import shutil
import socket
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from controllers.plan import PlanSet, TimeOfDaySchedule, TimingPlan, load_plan_sets
from deploy import oids as O
from deploy import set_service, timebase, tod_ntcip
from deploy.device_model import DeviceModel
from deploy.emulator import ControllerEmulator
from deploy.ntcip import NtcipAdapter
from deploy.profile import Capabilities
from deploy.secrets import SecretsFile
from deploy.service import DeployOptions
from deploy.store import PlanStore, Refused
from sim.errors import WulinError

from .conftest import ANN, BOB, CAPS, add_users, conflicts_for, make_plan, make_profile

NIGHT = make_plan(greens=(30, 30), name="night")
AM = make_plan(greens=(50, 30), offset=5, name="am")
DAY = make_plan(greens=(40, 40), name="day")
EVIDENCE = {"kind": "verification", "objective": {"live": 120.0, "proposed": 104.0}, "seeds": [101, 102, 103]}


def make_set(*entries: tuple[str, TimingPlan], plans: tuple[TimingPlan, ...] | None = None) -> PlanSet:
    sched = TimeOfDaySchedule("B1", tuple((t, p.plan_hash()) for t, p in entries))
    return PlanSet(sched, plans if plans is not None else tuple(dict.fromkeys(p for _, p in entries)))


SET = make_set(("00:00", NIGHT), ("07:00", AM), ("09:30", DAY), ("22:00", NIGHT))


def _store(tmp_path: Path, emu: ControllerEmulator) -> PlanStore:
    SecretsFile().put("B1", emu.credentials)
    store = PlanStore(tmp_path / "s.sqlite")
    add_users(store)
    store.register_device("B1", emu.host, emu.port, emu.profile, emu.caps)
    return store


@pytest.fixture
def emu() -> Iterator[ControllerEmulator]:
    e = ControllerEmulator(make_profile(), make_plan(name="local"), CAPS, time_scale=300, verify_s=1,
                           tod_start=8 * 3600).start()
    yield e
    e.stop()


def _approved(store: PlanStore, ps: PlanSet = SET) -> str:
    h = store.propose_set(ps, ANN, evidence=EVIDENCE, conflicts=conflicts_for("B1")).hash
    store.approve_set(h, BOB)
    return h


OPTS = DeployOptions(activation_timeout_s=5)


# ---------------------------------------------------------------- the set as a value
def test_set_hash_is_the_schedule_hash_and_covers_every_plan() -> None:
    assert SET.set_hash() == SET.schedule.schedule_hash()
    assert [p.name for p in SET.plans] == ["night", "am", "day"]
    assert SET.plan_at("08:00") == AM and SET.plan_at("23:00") == NIGHT
    other = make_set(("00:00", NIGHT), ("07:00", make_plan(greens=(51, 29), offset=5, name="am")),
                     ("09:30", DAY), ("22:00", NIGHT))
    assert other.set_hash() != SET.set_hash()  # one plan changed: the set's hash changes
    assert PlanSet.from_json(SET.to_json()) == SET


def test_bad_sets_are_clear_errors() -> None:
    with pytest.raises(WulinError, match="names plan .* which is not in the set"):
        make_set(("00:00", NIGHT), ("07:00", AM), plans=(NIGHT,))
    with pytest.raises(WulinError, match="is never run by the schedule"):
        make_set(("00:00", NIGHT), plans=(NIGHT, AM))
    with pytest.raises(WulinError, match="sort the entries"):
        make_set(("00:00", NIGHT), ("09:00", AM), ("08:00", DAY))
    with pytest.raises(WulinError, match="sort the entries"):  # two entries at one time overlap
        make_set(("00:00", NIGHT), ("07:00", AM), ("07:00", DAY))
    with pytest.raises(WulinError, match="is for signal 'C1'"):
        PlanSet(TimeOfDaySchedule("B1", (("00:00", make_plan("C1").plan_hash()),)), (make_plan("C1"),))


def test_plan_sets_load_from_a_folder_of_plans_and_schedules(tmp_path: Path) -> None:
    (tmp_path / "am").mkdir()
    AM.save(tmp_path / "am" / "plans.json")
    NIGHT.save(tmp_path / "night.json")
    DAY.save(tmp_path / "day.json")
    (tmp_path / "report.json").write_text('{"format": "wulin.optimise-report/1", "x": 1}')
    (tmp_path / "evidence.json").write_text('{"kind": "verification", "seeds": "1,2,3"}')
    (tmp_path / "B1.schedule.json").write_text(SET.schedule.to_json())
    assert load_plan_sets(tmp_path) == {"B1": SET}
    (tmp_path / "day.json").unlink()
    with pytest.raises(WulinError, match="B1.schedule.json: entry '09:30' names plan .* in no plan file"):
        load_plan_sets(tmp_path)


# ---------------------------------------------------------------- the device follows its time base
class Clock:
    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _download(dev: DeviceModel, clock: Clock, values: dict[O.OID, object]) -> None:
    """One database transaction on the device model (no socket)."""
    tok = b"test-session"
    assert dev.set([(O.TX_OWNER, tok), (O.DB_CREATE_TRANSACTION, O.TX_TRANSACTION)]).status == "noError"
    items = sorted(values.items())
    for i in range(0, len(items), 16):
        assert dev.set([(O.TX_OWNER, tok), *items[i:i + 16]]).status == "noError"
    assert dev.set([(O.TX_OWNER, tok), (O.DB_CREATE_TRANSACTION, O.TX_VERIFY)]).status == "noError"
    clock.t += 2
    dev.advance()
    assert dev.verify_status == 2, dev.verify_error
    assert dev.set([(O.TX_OWNER, tok), (O.DB_CREATE_TRANSACTION, O.TX_NORMAL)]).status == "noError"


def test_device_switches_pattern_at_the_event_time_at_a_cycle_boundary() -> None:
    clock = Clock()
    dev = DeviceModel(make_profile(), make_plan(name="local"), CAPS, verify_s=1, clock=clock, tod_start=9 * 3600)
    slots = timebase.choose_slots(SET, dev.profile, CAPS, {1})
    values = timebase.pattern_values(SET, dev.profile, CAPS, slots)
    values.update(timebase.timebase_values(SET, slots, dev.timebase_sizes))
    _download(dev, clock, values)
    clock.t += 200
    dev.advance()
    assert dev.active_pattern == slots[AM.plan_hash()]  # 09:03: the AM event (07:00) is in force
    assert dev.value(O.TIMEBASE_ACTION_STATUS) == 2 and dev.value(O.DAY_PLAN_STATUS) == 1
    cycle = AM.cycle
    clock.t = 30 * 60 - 1  # 09:29:59
    dev.advance()
    start = dev._cycle_start
    assert dev.active_pattern == slots[AM.plan_hash()]
    clock.t = 30 * 60 + 1  # 09:30:01: DAY's event is in force, the AM cycle still runs
    dev.advance()
    assert dev.tod_pattern() == slots[DAY.plan_hash()]
    if start + cycle > clock.t:
        assert dev.active_pattern == slots[AM.plan_hash()]
    clock.t = start + 2 * cycle
    dev.advance()
    assert dev.active_pattern == slots[DAY.plan_hash()]
    assert (dev._cycle_start - start) % cycle == 0  # switched exactly at an AM cycle boundary
    clock.t = 13 * 3600 + 600  # 22:10: NIGHT again
    dev.advance()
    assert dev.active_pattern == slots[NIGHT.plan_hash()]
    clock.t = 22 * 3600 + 600  # 07:10 the next day: AM again
    dev.advance()
    assert dev.active_pattern == slots[AM.plan_hash()]


def test_device_verify_refuses_an_event_naming_no_action() -> None:
    clock = Clock()
    dev = DeviceModel(make_profile(), make_plan(), CAPS, verify_s=1, clock=clock)
    tok = b"t"
    dev.set([(O.TX_OWNER, tok), (O.DB_CREATE_TRANSACTION, O.TX_TRANSACTION)])
    assert dev.set([(O.TX_OWNER, tok), (O.DAY_PLAN_ACTION + (1, 2), O.TIMEBASE_PATTERN + (3,))]).status == "noError"
    dev.set([(O.TX_OWNER, tok), (O.DB_CREATE_TRANSACTION, O.TX_VERIFY)])
    assert dev.verify_status == 1 and b"DAY PLAN 1 EVENT 2 ACTION FAULT" in dev.verify_error


def test_phase_table_mismatch_across_plans_is_named() -> None:
    other = TimingPlan.from_dict(make_plan(name="pm").to_dict() | {"yellow": 4, "all_red": 1})
    ps = make_set(("00:00", NIGHT), ("17:00", other))
    with pytest.raises(WulinError, match="differ in phase 1's yellow .* one phase table for all patterns"):
        timebase.pattern_values(ps, make_profile(), CAPS, {NIGHT.plan_hash(): 4, other.plan_hash(): 5})


def test_shared_minimum_green_is_the_largest_and_every_split_must_hold_it() -> None:
    stricter = make_plan(greens=(50, 30), name="strict")
    stricter = TimingPlan.from_dict(stricter.to_dict() | {"stages": [
        st.to_dict() | {"min_green": 32} for st in stricter.stages[:1]] + [stricter.stages[1].to_dict()]})
    ok = make_set(("00:00", AM), ("17:00", stricter))
    slots = {AM.plan_hash(): 4, stricter.plan_hash(): 5}
    v = timebase.pattern_values(ok, make_profile(), CAPS, slots)
    assert v[O.PHASE_MIN_GREEN + (1,)] == 32 and v[O.PHASE_MIN_GREEN + (2,)] == 10
    short = make_set(("00:00", NIGHT), ("17:00", stricter))  # NIGHT: 30 s green, a 35 s split < 32 + 5
    with pytest.raises(WulinError, match="plan 'night' stage 0: split 35 s is shorter than phase 1's"):
        timebase.pattern_values(short, make_profile(), CAPS, {NIGHT.plan_hash(): 4, stricter.plan_hash(): 5})


# ---------------------------------------------------------------- the store and the NTCIP path
def test_propose_approve_deploy_follow_and_roll_back(tmp_path: Path, emu: ControllerEmulator) -> None:
    store = _store(tmp_path, emu)
    before = dict(emu.db)
    h = _approved(store)
    out = set_service.deploy_set(store, h, ANN, OPTS)
    assert out.ok and out.state == "deployed", out.message
    rec = store.plan_set(h)
    assert rec.state == "deployed" and rec.evidence == EVIDENCE
    finish = [e for e in store.audit(h) if e.action == "set.deploy.finish"][-1]
    slots = finish.detail["slots"]
    assert emu.active_pattern == slots[AM.plan_hash()]  # 08:00 on the device: the AM plan
    assert len(set(slots.values())) == 3 and 1 not in slots.values()
    # what the device holds is the set, read back through its own objects
    assert emu.db[O.DAY_PLAN_HOUR + (1, 2)] == 7 and emu.db[O.DAY_PLAN_MINUTE + (1, 3)] == 30
    assert emu.db[O.DAY_PLAN_ACTION + (1, 4)] == O.TIMEBASE_ACTION_NUMBER + (1,)
    assert emu.db[O.DAY_PLAN_ACTION + (1, 5)] == O.NULL_OID
    assert emu.db[O.TIMEBASE_PATTERN + (2,)] == slots[AM.plan_hash()]
    assert emu.db[O.PATTERN_CYCLE + (slots[DAY.plan_hash()],)] == DAY.cycle
    actions = [e.action for e in store.audit(h)]
    assert actions == ["set.propose", "set.approve", "set.deploy.start", "set.deploy.snapshot",
                       "set.deploy.finish"]
    with pytest.raises(Refused, match="needs a supervisor"):
        set_service.rollback_set(store, h, ANN, OPTS)
    back = set_service.rollback_set(store, h, BOB, OPTS)
    assert back.ok and store.plan_set(h).state == "rolled_back", back.message
    assert emu.active_pattern == 1
    changed = {o for o in before if emu.db[o] != before[o] and emu.spec[o].kind in ("P", "P2")}
    assert not changed, sorted(map(O.name_of, changed))[:5]
    assert store.verify_audit().ok


def test_two_person_rule_and_hash_binding(tmp_path: Path, emu: ControllerEmulator) -> None:
    store = _store(tmp_path, emu)
    h = store.propose_set(SET, BOB, evidence=EVIDENCE, conflicts=conflicts_for("B1")).hash
    with pytest.raises(Refused, match="cannot approve it: a second person must"):
        store.approve_set(h, BOB)
    with pytest.raises(Refused, match="has role 'engineer'"):
        store.approve_set(h, ANN)
    store.reject_set(h, BOB, "self-proposed")
    h2 = _approved(store, make_set(("00:00", NIGHT), ("07:00", AM)))
    with pytest.raises(Refused, match="a set changed after approval is not deployed"):
        set_service.deploy_set(store, h2, ANN, OPTS, make_set(("00:00", NIGHT), ("07:30", AM)))
    with sqlite3.connect(tmp_path / "s.sqlite") as db:  # the stored set edited behind the store's back
        row = db.execute("SELECT set_json FROM plan_sets WHERE hash = ?", (h2,)).fetchone()[0]
        db.execute("UPDATE plan_sets SET set_json = ? WHERE hash = ?", (row.replace('"07:00"', '"06:00"'), h2))
    with pytest.raises(Refused, match="no longer matches its hash"):
        set_service.deploy_set(store, h2, ANN, OPTS)
    refused = [e for e in store.audit(h2) if e.outcome == "refused"]
    assert refused and store.verify_audit().ok


def test_a_set_needs_evidence_and_conflicts(tmp_path: Path, emu: ControllerEmulator) -> None:
    store = _store(tmp_path, emu)
    h = store.propose_set(SET, ANN).hash
    with pytest.raises(Refused, match="no conflict data .*attach evidence"):
        store.approve_set(h, BOB)


def test_unknown_signal_is_refused_at_propose(tmp_path: Path, emu: ControllerEmulator) -> None:
    store = _store(tmp_path, emu)
    c1 = make_plan("C1")
    ps = PlanSet(TimeOfDaySchedule("C1", (("00:00", c1.plan_hash()),)), (c1,))
    with pytest.raises(Refused, match="unknown device: no controller is registered for signal 'C1'"):
        store.propose_set(ps, ANN, evidence=EVIDENCE, conflicts=conflicts_for("C1"))


def _nothing_written(emu: ControllerEmulator, before: dict[O.OID, object]) -> None:
    changed = [O.name_of(o) for o in before if emu.spec[o].kind in ("P", "P2") and emu.db[o] != before[o]]
    assert not changed, changed[:5]
    assert emu.db[O.DB_CREATE_TRANSACTION] == O.TX_NORMAL and emu.tx_state == O.TX_NORMAL


def test_device_without_enough_patterns_fails_before_writing(tmp_path: Path) -> None:
    caps = Capabilities(max_phases=8, max_patterns=3, max_splits=3, max_rings=2, max_sequences=3, max_channels=8)
    with ControllerEmulator(make_profile(), make_plan(name="local"), caps, time_scale=300, verify_s=1,
                            tod_start=8 * 3600) as emu:
        store = _store(tmp_path, emu)
        h = store.propose_set(SET, ANN, evidence=EVIDENCE, conflicts=conflicts_for("B1")).hash
        with pytest.raises(Refused, match="its 3 plans need as many patterns"):
            store.approve_set(h, BOB)
        h2 = _approved(store, make_set(("00:00", NIGHT), ("07:00", AM)))
        ad = NtcipAdapter(emu.host, emu.port, emu.profile, emu.credentials, activation_timeout_s=5)
        assert ad.deploy(make_plan(greens=(45, 35), name="central")).ok  # system pattern 2 runs now
        ad.close()
        before = dict(emu.db)
        out = set_service.deploy_set(store, h2, ANN, OPTS)
        assert out.state == "failed" and "1 free pattern(s)" in out.message and "nothing was written" in out.message
        _nothing_written(emu, before)


class SmallTimebase(ControllerEmulator):
    timebase_sizes = timebase.TimebaseSizes(max_events=3)


def test_device_without_enough_day_plan_events_fails_before_writing(tmp_path: Path) -> None:
    with SmallTimebase(make_profile(), make_plan(name="local"), CAPS, time_scale=300, verify_s=1,
                       tod_start=8 * 3600) as emu:
        store = _store(tmp_path, emu)
        h = _approved(store)
        before = dict(emu.db)
        out = set_service.deploy_set(store, h, ANN, OPTS)
        assert out.state == "failed" and "4 entries" in out.message and "maxDayPlanEvents" in out.message
        _nothing_written(emu, before)


def test_device_verify_failure_rolls_the_transaction_back(tmp_path: Path, emu: ControllerEmulator) -> None:
    store = _store(tmp_path, emu)
    h = _approved(store)
    before = dict(emu.db)
    emu.arm("verify-error")
    out = set_service.deploy_set(store, h, ANN, OPTS)
    assert out.state == "failed" and "device verify failed" in out.message
    assert "readback confirms the controller is unchanged" in out.message
    _nothing_written(emu, before)
    assert emu.active_pattern == 1


# ---------------------------------------------------------------- Net-SNMP reads the schedule
# Copied from shared/reference/ntcip_oids.tsv (NTCIP 1201 GLOBAL time base, NTCIP 1202 .5).
PINNED = {
    "maxTimeBaseScheduleEntries": "1.3.6.1.4.1.1206.4.2.6.3.3.1", "timeBaseScheduleMonth": "1.3.6.1.4.1.1206.4.2.6.3.3.2.1.2",
    "timeBaseScheduleDay": "1.3.6.1.4.1.1206.4.2.6.3.3.2.1.3", "timeBaseScheduleDate": "1.3.6.1.4.1.1206.4.2.6.3.3.2.1.4",
    "timeBaseScheduleDayPlan": "1.3.6.1.4.1.1206.4.2.6.3.3.2.1.5", "maxDayPlans": "1.3.6.1.4.1.1206.4.2.6.3.3.3",
    "maxDayPlanEvents": "1.3.6.1.4.1.1206.4.2.6.3.3.4", "dayPlanHour": "1.3.6.1.4.1.1206.4.2.6.3.3.5.1.3",
    "dayPlanMinute": "1.3.6.1.4.1.1206.4.2.6.3.3.5.1.4", "dayPlanActionNumberOID": "1.3.6.1.4.1.1206.4.2.6.3.3.5.1.5",
    "dayPlanStatus": "1.3.6.1.4.1.1206.4.2.6.3.3.6", "maxTimebaseAscActions": "1.3.6.1.4.1.1206.4.2.1.5.2",
    "timebaseAscActionNumber": "1.3.6.1.4.1.1206.4.2.1.5.3.1.1", "timebaseAscPattern": "1.3.6.1.4.1.1206.4.2.1.5.3.1.2",
    "timebaseAscActionStatus": "1.3.6.1.4.1.1206.4.2.1.5.4",
}


def test_time_base_oids_are_the_reference_tables() -> None:
    for name, text in PINNED.items():
        assert O.dotted(O.NAMED[name]) == text, name


@pytest.mark.skipif(shutil.which("snmpwalk") is None, reason="Net-SNMP tools not installed (Debian package 'snmp')")
def test_net_snmp_reads_the_deployed_schedule() -> None:
    with ControllerEmulator(make_profile(), make_plan(name="local"), CAPS, time_scale=300, verify_s=1,
                            tod_start=8 * 3600, snmp_v2c=True) as emu:
        ad = NtcipAdapter(emu.host, emu.port, emu.profile, emu.credentials, activation_timeout_s=5)
        rep = tod_ntcip.deploy_set(ad, SET)
        ad.close()
        assert rep.ok, rep.message
        base = ["-v2c", "-c", str(emu.credentials.read_community), "-On", "-r", "1", "-t", "2",
                f"udp:{emu.host}:{emu.port}"]

        def net_snmp(tool: str, *oids: str) -> list[str]:
            out = subprocess.run([tool, *base, *oids], capture_output=True, text=True, timeout=20)
            assert out.returncode == 0, out.stderr
            return out.stdout.splitlines()

        hours = net_snmp("snmpwalk", PINNED["dayPlanHour"] + ".1")
        assert len(hours) == timebase.TimebaseSizes().max_events
        assert hours[:4] == [f".{PINNED['dayPlanHour']}.1.{e} = INTEGER: {h}" for e, h in enumerate((0, 7, 9, 22), 1)]
        minutes = net_snmp("snmpwalk", PINNED["dayPlanMinute"] + ".1")
        assert minutes[2] == f".{PINNED['dayPlanMinute']}.1.3 = INTEGER: 30"
        actions = net_snmp("snmpwalk", PINNED["dayPlanActionNumberOID"] + ".1")
        assert actions[1] == f".{PINNED['dayPlanActionNumberOID']}.1.2 = OID: .{PINNED['timebaseAscActionNumber']}.2"
        assert actions[4].endswith("= OID: .0.0")  # an unused event
        now = net_snmp("snmpget", PINNED["timebaseAscActionStatus"] + ".0", PINNED["dayPlanStatus"] + ".0",
                       PINNED["timebaseAscPattern"] + ".2", PINNED["timeBaseScheduleDayPlan"] + ".1")
        assert now[0].endswith("INTEGER: 2") and now[1].endswith("INTEGER: 1")  # 08:00: AM's action, day plan 1
        assert now[2].endswith(f"INTEGER: {rep.slot}") and now[3].endswith("INTEGER: 1")
        assert emu.active_pattern == rep.slot


# ---------------------------------------------------------------- a killed deploy is recovered
DEAD = f"{socket.gethostname()}:999999:dead0000"  # a process of this host that no longer runs


def _killed_after(store: PlanStore, emu: ControllerEmulator, h: str, write: bool) -> None:
    """A deploy that took the lease and kept its snapshot, wrote the set (or not), then died."""
    ticket = store.begin_set_deploy(h, ANN, holder=DEAD, lease_s=600)
    ad = NtcipAdapter(emu.host, emu.port, emu.profile, emu.credentials, activation_timeout_s=5)
    prepared = tod_ntcip.set_values(ad, SET)
    store.record_set_snapshot(ticket, ANN, tod_ntcip.pre_deploy_record(ad, *prepared))
    if write:
        assert tod_ntcip.deploy_set(ad, SET, prepared).ok
    ad.close()


@pytest.mark.parametrize("write", [True, False])
def test_a_killed_set_deploy_is_recovered(tmp_path: Path, emu: ControllerEmulator, write: bool) -> None:
    store = _store(tmp_path, emu)
    h = _approved(store)
    _killed_after(store, emu, h, write)
    assert store.lease("B1") is not None and store.plan_set(h).state == "deploying"
    out = set_service.recover_set(store, "B1", ANN, OPTS)
    assert store.lease("B1") is None
    assert [e.action for e in store.audit(h)][-2:] == ["set.recover.start", "set.deploy.finish"]
    if write:
        assert out.state == "deployed" and "holds the set and runs pattern" in out.message
        assert set_service.rollback_set(store, h, BOB, OPTS).ok  # the kept snapshot serves the rollback
        assert emu.active_pattern == 1
    else:
        assert out.state == "failed" and "the controller is unchanged" in out.message
    assert store.verify_audit().ok


@pytest.mark.parametrize("activation", ["pattern", "schedule"])
def test_a_single_plan_deploys_and_rolls_back_over_a_running_set(emu: ControllerEmulator, activation: str) -> None:
    ad = NtcipAdapter(emu.host, emu.port, emu.profile, emu.credentials, activation_timeout_s=5)
    rep = tod_ntcip.deploy_set(ad, SET)
    assert rep.ok and emu.active_pattern == rep.slot
    assert ad.action_in_force() == 2  # 08:00: the AM event's action, not action 1
    single = NtcipAdapter(emu.host, emu.port, emu.profile, emu.credentials, activation_timeout_s=5,
                          activation=activation)
    one = single.deploy(make_plan(greens=(45, 35), name="one"))
    assert one.ok, one.message
    back = single.rollback(one.summary())
    assert back.outcome == "rolled_back", back.message
    assert emu.active_pattern == rep.slot and emu.db[O.TIMEBASE_PATTERN + (2,)] == rep.slot
    ad.close()
    single.close()


def test_ctrl_c_at_the_cycle_boundary_restores_the_controller(tmp_path: Path, emu: ControllerEmulator,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from deploy.service import ActionInterrupted

    store = _store(tmp_path, emu)
    h = _approved(store)
    before = dict(emu.db)
    real_wait, fired = NtcipAdapter._wait, []

    def wait(self: NtcipAdapter, what: str, timeout: float, fn: object) -> None:
        if what.startswith("pattern") and not fired:
            fired.append(what)
            raise KeyboardInterrupt
        real_wait(self, what, timeout, fn)  # type: ignore[arg-type]

    monkeypatch.setattr(NtcipAdapter, "_wait", wait)
    with pytest.raises(ActionInterrupted, match="recorded rolled_back"):
        set_service.deploy_set(store, h, ANN, OPTS)
    assert fired and store.plan_set(h).state == "rolled_back" and store.lease("B1") is None
    _nothing_written(emu, before)
    assert store.verify_audit().ok


def test_ctrl_c_then_the_cycle_boundary_during_the_restore_still_restores(tmp_path: Path, emu: ControllerEmulator,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The new schedule's pattern starts between the restore reading the running pattern and
    the device's verify: the device refuses to clear the pattern it runs, the restore tries
    again without it (a CI run once met this race)."""
    from deploy.service import ActionInterrupted

    store = _store(tmp_path, emu)
    h = _approved(store)
    before, old = dict(emu.db), emu.active_pattern
    real_wait, real_write, fired, raced = NtcipAdapter._wait, NtcipAdapter.write_tables, [], []

    def wait(self: NtcipAdapter, what: str, timeout: float, fn: object) -> None:
        if what.startswith("pattern") and not fired:
            fired.append(what)
            raise KeyboardInterrupt
        real_wait(self, what, timeout, fn)  # type: ignore[arg-type]

    def write(self: NtcipAdapter, values: dict[O.OID, object]) -> None:
        if fired and not raced:  # the restore's first write: let the boundary come first
            raced.append(self._get(O.COORD_PATTERN_STATUS))
            real_wait(self, "the boundary", 5, lambda: self._get(O.COORD_PATTERN_STATUS) != old)
        real_write(self, values)  # type: ignore[arg-type]

    monkeypatch.setattr(NtcipAdapter, "_wait", wait)
    monkeypatch.setattr(NtcipAdapter, "write_tables", write)
    with pytest.raises(ActionInterrupted, match="recorded rolled_back"):
        set_service.deploy_set(store, h, ANN, OPTS)
    assert raced == [old] and store.plan_set(h).state == "rolled_back"
    _nothing_written(emu, before)
    assert store.verify_audit().ok
