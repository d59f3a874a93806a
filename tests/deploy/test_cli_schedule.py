"""The `wulin plan schedule` walkthrough on the command line, against an emulator on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.emulator import ControllerEmulator
from deploy.secrets import SecretsFile
from deploy.store import PlanStore, Refused
from sim.errors import WulinError

from .conftest import CAPS, make_plan, make_profile
from .test_cli_plan import as_user, setup_users, wulin

NIGHT = make_plan(greens=(30, 30), name="night")
AM = make_plan(greens=(50, 30), offset=5, name="am")
DAY = make_plan(greens=(40, 40), name="day")


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    emu = ControllerEmulator(make_profile(), make_plan(name="local"), CAPS, time_scale=300, verify_s=1,
                             tod_start=8 * 3600).start()
    store = tmp_path / "store.sqlite"
    secrets = tmp_path / "secrets" / "device-secrets.json"
    SecretsFile(secrets).put("B1", emu.credentials)
    PlanStore(store).register_device("B1", emu.host, emu.port, emu.profile, CAPS)
    env = {"WULIN_STORE": str(store), "WULIN_SECRETS": str(secrets), "COLUMNS": "200"}
    env["_emu"] = emu  # type: ignore[assignment]
    yield env
    emu.stop()


def _period_files(tmp_path: Path) -> list[str]:
    args = []
    for when, plan in (("00:00", NIGHT), ("07:00", AM), ("09:30", DAY), ("22:00", NIGHT)):
        path = tmp_path / f"{plan.name}.json"
        path.write_text(json.dumps([plan.to_dict()]))
        args += ["--at", f"{when}={path}"]
    return args


def test_make_propose_approve_deploy_rollback(env: dict[str, str], tmp_path: Path) -> None:
    sets = tmp_path / "sets"
    r = wulin(env, "plan", "schedule", "make", *_period_files(tmp_path), "--out", str(sets))
    assert r.exit_code == 0 and "1 plan set(s), 4 period(s)" in r.output, r.output
    r = wulin(env, "plan", "schedule", "show", str(sets))
    assert r.exit_code == 0 and "09:30" in r.output and "am" in r.output
    r = wulin(env, "plan", "schedule", "export", str(sets), "--out", str(tmp_path / "tod.add.xml"))
    assert r.exit_code == 0 and "3 programs and 1 WAUT(s)" in r.output
    xml = (tmp_path / "tod.add.xml").read_text()
    assert xml.count("<tlLogic") == 3 and xml.count("<wautSwitch") == 4 and 'time="34200"' in xml
    evidence = tmp_path / "ev.json"
    evidence.write_text(json.dumps({"kind": "verification", "scenario": "grid-am-v1", "seeds": "1,2,3",
                                    "kpis": {"mean_time_loss (schedule)": {"mean": 50.0, "ci": 1.0}}}))
    setup_users(env, ("ann", "engineer"), ("bob", "supervisor"))
    r = as_user(env, "ann", "plan", "schedule", "propose", str(sets), "--evidence", str(evidence))
    assert r.exit_code == 0 and "proposed" in r.output, r.output
    h = r.output.split()[1]
    r = as_user(env, "ann", "plan", "schedule", "approve", h[:12])
    assert isinstance(r.exception, Refused)
    assert as_user(env, "bob", "plan", "schedule", "approve", h[:12]).exit_code == 0
    r = as_user(env, "ann", "plan", "schedule", "deploy", h[:12], "--sets", str(sets), "--activation-timeout", "5")
    assert r.exit_code == 0 and "deployed: schedule in force, readback verified" in r.output, r.output
    assert "day-plan event(s)" in r.output and "device verify passed" in r.output
    assert "deployed" in wulin(env, "plan", "schedule", "list").output
    audit = wulin(env, "plan", "audit", h[:12]).output
    assert [line.split()[4] for line in audit.splitlines()] == [
        "set.propose", "set.approve", "set.approve", "set.deploy.start", "set.deploy.snapshot", "set.deploy.finish"]
    r = as_user(env, "bob", "plan", "schedule", "rollback", h[:12], "--activation-timeout", "5")
    assert r.exit_code == 0 and "rolled_back" in r.output, r.output
    emu: ControllerEmulator = env["_emu"]  # type: ignore[assignment]
    assert emu.active_pattern == 1
    assert "audit log intact" in wulin(env, "plan", "audit", "--verify").output


def test_bad_schedules_are_one_clear_error(env: dict[str, str], tmp_path: Path) -> None:
    files = _period_files(tmp_path)
    r = wulin(env, "plan", "schedule", "make", *files[2:], "--out", str(tmp_path / "x"))
    assert isinstance(r.exception, WulinError) and 'the first entry must be at "00:00"' in str(r.exception)
    r = wulin(env, "plan", "schedule", "make", *files, "--at", f"07:00={tmp_path / 'day.json'}", "--out",
              str(tmp_path / "x"))
    assert isinstance(r.exception, WulinError) and "sort the entries by time" in str(r.exception)
    assert not (tmp_path / "x").exists()  # nothing written
    sets = tmp_path / "sets"
    assert wulin(env, "plan", "schedule", "make", *files, "--out", str(sets)).exit_code == 0
    (sets / "plans-0930.json").unlink()
    r = wulin(env, "plan", "schedule", "show", str(sets))
    assert isinstance(r.exception, WulinError) and "entry '09:30' names plan" in str(r.exception)
    c1 = tmp_path / "c1"
    c1_plan = make_plan("C1")
    (tmp_path / "c1.json").write_text(json.dumps([c1_plan.to_dict()]))
    assert wulin(env, "plan", "schedule", "make", "--at", f"00:00={tmp_path / 'c1.json'}", "--out", str(c1)).exit_code == 0
    setup_users(env, ("ann", "engineer"))
    r = as_user(env, "ann", "plan", "schedule", "propose", str(c1))
    assert isinstance(r.exception, Refused) and "no controller is registered for signal 'C1'" in str(r.exception)
