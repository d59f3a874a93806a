"""Drift detection: an out-of-band SET that reverts or changes a deployed plan is noticed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deploy import oids as O
from deploy import service
from deploy.drift import check_drift, live_expectations
from deploy.emulator import ControllerEmulator
from deploy.ntcip import NtcipAdapter, adapter_for
from deploy.secrets import SecretsFile
from deploy.service import DeployOptions
from deploy.snmp import SnmpClient
from deploy.store import PlanStore
from deploy.usm import UsmManager
from wulin.cli import app

from .conftest import ANN, BOB, CAPS, add_users, make_plan, make_profile, propose

NEW = make_plan(greens=(50, 30), offset=7, name="new")


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[ControllerEmulator, PlanStore, SecretsFile, dict[str, str]]]:
    """An emulator running NEW, deployed through the store (so the store says NEW is live)."""
    emu = ControllerEmulator(make_profile(), make_plan(name="local"), CAPS, time_scale=300, verify_s=3).start()
    vault = SecretsFile()  # the conftest points WULIN_SECRETS into the test's folder
    vault.put("B1", emu.credentials)
    store = PlanStore(tmp_path / "store.sqlite")
    add_users(store)
    store.register_device("B1", emu.host, emu.port, emu.profile, CAPS)
    h = propose(store, NEW, evidence={"kind": "experiment", "note": "test"}).hash
    store.approve(h, BOB)
    out = service.deploy(store, h, ANN, DeployOptions(activation_timeout_s=5))
    assert out.ok, out.message
    env = {"WULIN_STORE": str(tmp_path / "store.sqlite"), "WULIN_SECRETS": str(vault.path), "COLUMNS": "200"}
    yield emu, store, vault, env
    store.close()
    emu.stop()


def check(store: PlanStore, vault: SecretsFile):  # type: ignore[no-untyped-def]
    return check_drift(live_expectations(store), lambda d: adapter_for(d, vault, timeout=0.3))


def out_of_band(emu: ControllerEmulator) -> SnmpClient:
    """Someone else holding the write credential, with their own SNMP tool."""
    assert emu.credentials.writer is not None
    return SnmpClient(emu.host, emu.port, timeout=0.3, usm=UsmManager(emu.credentials.writer))


def wait_pattern(emu: ControllerEmulator, pattern: int) -> None:
    deadline = time.monotonic() + 5
    while emu.active_pattern != pattern and time.monotonic() < deadline:
        time.sleep(0.02)
    assert emu.active_pattern == pattern


def test_no_drift_while_the_controller_runs_the_live_plan(live) -> None:  # type: ignore[no-untyped-def]
    emu, store, vault, env = live
    assert check(store, vault) == []
    r = CliRunner().invoke(app, ["plan", "drift"], env=env)
    assert r.exit_code == 0, r.output
    assert "no drift: 1 controller(s) run their live plan" in r.output


def test_out_of_band_revert_is_detected(live) -> None:  # type: ignore[no-untyped-def]
    emu, store, vault, env = live
    out_of_band(emu).set([(O.SYSTEM_PATTERN_CONTROL, 0)])  # back to the time-of-day (local) plan
    alarms = check(store, vault)
    if emu.active_pattern == 2:  # before the cycle boundary: the switch is pending
        assert [a.kind for a in alarms] == ["pending"] and "switching to pattern 1" in alarms[0].message
    wait_pattern(emu, 1)
    alarms = check(store, vault)
    assert [(a.signal_id, a.kind) for a in alarms] == [("B1", "tables")]
    assert "runs pattern 1" in alarms[0].message and any("splitTime" in d for d in alarms[0].differences)
    r = CliRunner().invoke(app, ["plan", "drift", "--watch", "0.05", "--count", "2"], env=env)
    assert r.exit_code == 1, r.output
    assert r.output.count("DRIFT B1 (tables)") == 2


def test_out_of_band_timing_change_is_detected(live) -> None:  # type: ignore[no-untyped-def]
    emu, store, vault, _ = live
    # Another manager rewrites the running pattern's first split in its own transaction.
    other = NtcipAdapter(emu.host, emu.port, emu.profile, emu.credentials, timeout=0.3)
    changed = {O.SPLIT_TIME + (2, 1): 60, O.SPLIT_TIME + (2, 2): 30}
    other.write_tables(changed)
    assert emu.active_pattern == 2
    alarms = check(store, vault)
    assert [a.kind for a in alarms] == ["tables"]
    assert "splitTime.2.1: store 55, controller 60" in alarms[0].differences


def test_unreachable_controller_is_an_alarm(live) -> None:  # type: ignore[no-untyped-def]
    emu, store, vault, _ = live
    emu.stop()
    alarms = check(store, vault)
    assert [a.kind for a in alarms] == ["unreachable"] and "cannot read it back" in alarms[0].message


@pytest.mark.parametrize(("args", "message"), [
    (["--watch", "nan"], "--watch nan"), (["--watch", "-1"], "--watch -1"),
    (["--timeout", "0"], "--timeout 0"), (["--count", "-2"], "--count -2"),
])
def test_drift_options_are_checked(tmp_path: Path, args: list[str], message: str) -> None:
    r = CliRunner().invoke(app, ["plan", "drift", "--store", str(tmp_path / "s.sqlite"), *args])
    assert r.exception is not None and message in str(r.exception)
