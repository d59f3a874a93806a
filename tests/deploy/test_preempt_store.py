"""Preempt configurations in the plan store: two people, hash-bound, audited, pushed and read back."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update

from deploy import oids as O
from deploy.emulator import ControllerEmulator
from deploy.ntcip import snmp_session
from deploy.preempt_config import PreemptConfig, PreemptSetting, dumps, per_stage
from deploy.preempt_store import PreemptApprovals, PreemptRow, push_preempt
from deploy.store import PlanStore
from deploy.storebase import Refused
from sim.errors import WulinError

from .conftest import ANN, BOB, CAPS, make_plan, make_profile

CONFIG = PreemptConfig(signal_id="B1", preempts=(
    PreemptSetting(number=1, dwell_phases=(2,), exit_phases=(1,), min_green=12, max_presence=90),
    PreemptSetting(number=2, dwell_phases=(1,), delay=2, non_locking=True)))


def test_two_people_approve_and_the_push_reads_back(store: PlanStore) -> None:
    ap = PreemptApprovals(store)
    rec = ap.propose_preempt(CONFIG, ANN, note="ambulance route B1")
    assert rec.state == "proposed" and rec.hash == CONFIG.config_hash()
    with pytest.raises(Refused, match="supervisor"):
        ap.approve_preempt(rec.hash, ANN)
    with pytest.raises(Refused, match="not approved"):
        ap.approved_preempt(rec.hash)
    assert ap.approve_preempt(rec.hash[:12], BOB).state == "approved"
    emu = ControllerEmulator(make_profile(), make_plan(), CAPS).start()
    try:
        client = snmp_session(emu.host, emu.port, emu.credentials, True, 2.0, 0)
        assert push_preempt(ap, rec.hash, BOB, client)
        client.close()
        assert emu.db[O.PREEMPT_DWELL_PHASE + (1,)] == b"\x02" and emu.db[O.PREEMPT_MIN_GREEN + (1,)] == 12
        assert emu.db[O.PREEMPT_CONTROL + (2,)] == 1 and emu.db[O.PREEMPT_DWELL_PHASE + (3,)] == b""
    finally:
        emu.stop()
    actions = [(e.action, e.outcome) for e in store.audit() if e.action.startswith("preempt")]
    assert ("preempt-propose", "ok") in actions and ("preempt-approve", "refused") in actions
    assert ("preempt-approve", "ok") in actions and ("preempt-push", "ok") in actions
    assert store.verify_audit().ok


def test_the_proposer_cannot_approve_and_bad_tables_are_refused(store: PlanStore) -> None:
    ap = PreemptApprovals(store)
    rec = ap.propose_preempt(CONFIG, BOB)
    with pytest.raises(Refused, match="two-person"):
        ap.approve_preempt(rec.hash, BOB)
    bad = PreemptConfig(signal_id="B1", preempts=(PreemptSetting(number=1, dwell_phases=(1, 2)),))
    rec2 = ap.propose_preempt(bad, ANN)
    with pytest.raises(Refused, match="do not serve one stage"):
        ap.approve_preempt(rec2.hash, BOB)
    assert [r.state for r in ap.preempt_configs("B1")] == ["proposed", "proposed"]


def test_an_edited_row_is_neither_approved_nor_pushed(store: PlanStore) -> None:
    ap = PreemptApprovals(store)
    rec = ap.propose_preempt(per_stage(make_profile()), ANN)
    ap.approve_preempt(rec.hash, BOB)
    with store._tx() as s:  # someone edits the approved row in the database
        s.execute(update(PreemptRow).where(PreemptRow.hash == rec.hash)
                  .values(config_json=CONFIG.to_json()))
    with pytest.raises(Refused, match="no longer match"):
        ap.approved_preempt(rec.hash)
    with store._tx() as s:  # ... or forges an approval
        s.execute(update(PreemptRow).where(PreemptRow.hash == rec.hash)
                  .values(config_json=per_stage(make_profile()).to_json(), approved_by="cat"))
    with pytest.raises(Refused, match="does not verify"):
        ap.approved_preempt(rec.hash)


def test_config_file_errors_name_the_field() -> None:
    with pytest.raises(WulinError, match=r"p.json: field 'preempts\[0\].number'"):
        PreemptConfig.from_json('{"signal_id": "B1", "preempts": [{"number": 0, "dwell_phases": [1]}]}', "p.json")
    with pytest.raises(WulinError, match="unknown|not allowed|extra"):
        PreemptConfig.from_json('{"signal_id": "B1", "preempts": [], "colour": 1}', "p.json")
    with pytest.raises(WulinError, match="repeat"):
        PreemptConfig.from_json('{"signal_id": "B1", "preempts": [{"number": 1, "dwell_phases": [1]},'
                                '{"number": 1, "dwell_phases": [2]}]}', "p.json")
    assert PreemptConfig.from_json(CONFIG.to_json()) == CONFIG


def test_command_line_propose_approve_list_and_cosim_options(store: PlanStore, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from wulin.cli import app
    from wulin.cmd_cosim import emergency_options

    from .conftest import PASSWORDS

    cfg_file = tmp_path / "b1-preempt.json"
    cfg_file.write_text(dumps(CONFIG))
    env = {"WULIN_STORE": store.url.removeprefix("sqlite:///"), "COLUMNS": "200"}

    def as_user(who: str, *args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(app, [*args, "--user", who, "--password-stdin"], env=env,
                                  input=PASSWORDS[who] + "\n")

    r = as_user("ann", "plan", "preempt", "propose", str(cfg_file), "--note", "ambulance")
    assert r.exit_code == 0 and CONFIG.config_hash() in r.output, r.output
    r = as_user("ann", "plan", "preempt", "approve", CONFIG.config_hash()[:12])
    assert r.exit_code != 0 and "supervisor" in str(r.exception or r.output)
    r = as_user("bob", "plan", "preempt", "approve", CONFIG.config_hash()[:12])
    assert r.exit_code == 0 and "approved" in r.output, r.output
    r = CliRunner().invoke(app, ["plan", "preempt", "list"], env=env)
    assert r.exit_code == 0 and "approved" in r.output and "dwell [2]" in r.output
    opts = emergency_options(["07:00:30,left1A1,C1right1"], 200.0, True, [CONFIG.config_hash()[:12]], env["WULIN_STORE"])
    assert opts.configs == {"B1": CONFIG} and opts.trips[0].depart == 7 * 3600 + 30
