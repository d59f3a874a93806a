"""Adaptive mode as an approved thing: propose, approve (two people, signed, hash-bound), deploy
(fallback plan downloaded and verified first, then central control), watchdog, rollback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy import adaptive_service
from deploy import oids as O
from deploy.adaptive import AdaptiveConfig, AdaptiveRow, AdaptiveStore
from deploy.emulator import ControllerEmulator
from deploy.secrets import SecretsFile
from deploy.service import DeployOptions
from deploy.store import PlanStore, Refused

from .conftest import ANN, BOB, CAPS, add_users, make_plan, make_profile, propose

PLAN = make_plan(greens=(50, 30), offset=7, name="fallback")
EVIDENCE = {"kind": "experiment", "mean_travel_time_s": {"live": 180.0, "proposed": 171.0}}


def _config(plan_hash: str, **bounds: object) -> AdaptiveConfig:
    return AdaptiveConfig.parse({"name": "central max-pressure", "controller": "max-pressure",
                                          "params": {"decision_interval": 5}, "bounds": bounds,
                                          "fallback": {"B1": plan_hash}})


@pytest.fixture
def field(tmp_path: Path) -> Iterator[tuple[PlanStore, ControllerEmulator, str]]:
    emu = ControllerEmulator(make_profile(), make_plan(name="local"), CAPS, time_scale=300, verify_s=1).start()
    SecretsFile().put("B1", emu.credentials)
    store = PlanStore(tmp_path / "s.sqlite")
    add_users(store)
    store.register_device("B1", emu.host, emu.port, emu.profile, CAPS)
    h = propose(store, PLAN, evidence=EVIDENCE).hash
    yield store, emu, h
    emu.stop()


def test_propose_approve_deploy_watchdog_rollback(field: tuple[PlanStore, ControllerEmulator, str]) -> None:
    store, emu, plan_hash = field
    astore = AdaptiveStore(store)
    rec = astore.propose(_config(plan_hash), ANN)
    with pytest.raises(Refused, match="must be approved first"):  # its fallback plan is only proposed
        astore.approve(rec.hash, BOB)
    store.approve(plan_hash, BOB)
    with pytest.raises(Refused, match="supervisor|two-person"):
        astore.approve(rec.hash, ANN)  # the proposer, and an engineer
    assert astore.approve(rec.hash, BOB).state == "approved"

    out = adaptive_service.deploy(store, rec.hash, ANN, DeployOptions(activation_timeout_s=10))
    assert out.ok and out.state == "deployed", out.message
    assert store.get(plan_hash).state == "deployed"  # the fallback went first, as the time-of-day plan
    slot = emu.active_pattern
    assert slot != 1 and emu.tod_pattern() == slot  # (the deploy read its tables back: they hold the plan)
    # switched to central control; nobody feeds the watchdog here, so it falls back to that plan
    time.sleep(0.2)  # 60 emulated seconds, over the 10 s backup time
    with emu.lock:
        emu.advance()
        assert emu.backup_fallbacks == 1 and emu.value(O.UNIT_CONTROL_STATUS) == O.CONTROL_BACKUP
        assert emu.active_pattern == slot

    with pytest.raises(Refused, match="supervisor"):
        adaptive_service.rollback(store, rec.hash, ANN, DeployOptions(activation_timeout_s=10))
    back = adaptive_service.rollback(store, rec.hash, BOB, DeployOptions(activation_timeout_s=10))
    assert back.ok and astore.get(rec.hash).state == "rolled_back"
    assert int(emu.db[O.SYSTEM_PATTERN_CONTROL]) == O.PATTERN_STANDBY and not emu.unit.commanded
    actions = [e.action for e in store.audit(rec.hash)]
    assert actions[:2] == ["adaptive.propose", "adaptive.approve"] and "adaptive.deploy.finish" in actions
    assert "adaptive.rollback.finish" in actions and store.verify_audit().ok


def test_an_edited_or_forged_configuration_deploys_nothing(field: tuple[PlanStore, ControllerEmulator, str]) -> None:
    store, emu, plan_hash = field
    store.approve(plan_hash, BOB)
    astore = AdaptiveStore(store)
    rec = astore.propose(_config(plan_hash), ANN)
    astore.approve(rec.hash, BOB)
    with store._tx() as s:  # someone raises the maximum green in the database
        row = s.get(AdaptiveRow, rec.hash)
        row.config_json = row.config_json.replace('"max_green":60.0', '"max_green":120.0')
    with pytest.raises(Refused, match="changed"):
        adaptive_service.deploy(store, rec.hash, ANN, DeployOptions(activation_timeout_s=10))
    rec2 = astore.propose(_config(plan_hash, max_green=50.0), ANN)
    with store._tx() as s:  # or marks it approved by hand
        s.get(AdaptiveRow, rec2.hash).state = "approved"
    with pytest.raises(Refused, match="signature does not verify"):
        adaptive_service.deploy(store, rec2.hash, ANN, DeployOptions(activation_timeout_s=10))
    assert emu.value(O.UNIT_CONTROL_STATUS) != O.CONTROL_SYSTEM and emu.active_pattern == 1
    assert any(e.outcome == "refused" for e in store.audit(rec2.hash))


def test_bounds_and_fallback_plans_are_checked(tmp_path: Path) -> None:
    from sim.errors import WulinError

    with pytest.raises(WulinError, match="max_green"):
        _config("0" * 64, min_green=10.0, max_green=8.0)
    with pytest.raises(WulinError, match="heartbeat"):
        _config("0" * 64, heartbeat=8.0, backup_time=10)
    with pytest.raises(WulinError, match="64 hex"):
        _config("abc")
    f = tmp_path / "a.toml"
    f.write_text('name = "x"\ncontroller = "max-pressure"\n[bounds]\nmax_cycle = 30\n[fallback]\nB1 = "' + "0" * 64 + '"\n')
    with pytest.raises(WulinError, match="line 4.*max_cycle"):
        AdaptiveConfig.load(f)


def test_the_command_line_walkthrough(tmp_path: Path) -> None:
    """`wulin adaptive propose / approve / deploy / list / show / rollback` against an emulator."""
    from .test_cli_plan import as_user, setup_users, wulin

    emu = ControllerEmulator(make_profile(), make_plan(name="local"), CAPS, time_scale=300, verify_s=1).start()
    try:
        store_file, secrets = tmp_path / "store.sqlite", tmp_path / "secrets" / "device-secrets.json"
        SecretsFile(secrets).put("B1", emu.credentials)
        PlanStore(store_file).register_device("B1", emu.host, emu.port, emu.profile, CAPS)
        env = {"WULIN_STORE": str(store_file), "WULIN_SECRETS": str(secrets), "COLUMNS": "200"}
        setup_users(env, ("ann", "engineer"), ("bob", "supervisor"))
        store = PlanStore(store_file)
        h = propose(store, PLAN, evidence=EVIDENCE).hash
        store.approve(h, BOB)
        cfg = tmp_path / "central.toml"
        cfg.write_text(f'name = "central mp"\ncontroller = "max-pressure"\n[bounds]\nmax_green = 60.0\n'
                       f'[fallback]\nB1 = "{h}"\n')
        r = as_user(env, "ann", "adaptive", "propose", str(cfg))
        assert r.exit_code == 0, r.output
        ref = r.output.split()[1][:12]
        r = as_user(env, "ann", "adaptive", "approve", ref)
        assert isinstance(r.exception, Refused) and "supervisor" in str(r.exception)  # the proposer, an engineer
        assert as_user(env, "bob", "adaptive", "approve", ref).exit_code == 0
        r = as_user(env, "ann", "adaptive", "deploy", ref, "--activation-timeout", "10")
        assert r.exit_code == 0 and "deployed" in r.output, r.output
        r = wulin(env, "adaptive", "list")
        assert "central mp" in r.output and "deployed" in r.output
        assert '"max_green": 60.0' in wulin(env, "adaptive", "show", ref).output
        r = as_user(env, "bob", "adaptive", "rollback", ref)
        assert r.exit_code == 0 and "rolled_back" in r.output, r.output
    finally:
        emu.stop()
