"""Deploy orchestration: interrupts and killed deploys end in a recorded, consistent state
(issue 11 items 4 and 5)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deploy import service
from deploy.emulator import ControllerEmulator
from deploy.ntcip import DeployReport, NtcipAdapter
from deploy.secrets import SecretsFile
from deploy.service import ActionInterrupted, DeployOptions
from deploy.store import PlanStore, Refused
from wulin.cli import app

from .conftest import ANN, BOB, CAPS, ROOT, add_users, make_plan, make_profile, propose

EVIDENCE = {"kind": "experiment", "mean_travel_time_s": {"live": 180.0, "proposed": 171.0}}
REPO = Path(__file__).resolve().parents[2]
PLAN = make_plan(greens=(50, 30), offset=7, name="new")


def _setup(tmp_path: Path, time_scale: float) -> tuple[PlanStore, ControllerEmulator, str]:
    emu = ControllerEmulator(make_profile(), make_plan(name="local"), CAPS, time_scale=time_scale,
                             verify_s=1).start()
    SecretsFile().put("B1", emu.credentials)  # the conftest points WULIN_SECRETS into tmp_path
    store = PlanStore(tmp_path / "s.sqlite")
    add_users(store)
    store.register_device("B1", emu.host, emu.port, emu.profile, CAPS)
    h = propose(store, PLAN, evidence=EVIDENCE).hash
    store.approve(h, BOB)
    return store, emu, h


@pytest.fixture
def fast(tmp_path: Path) -> Iterator[tuple[PlanStore, ControllerEmulator, str]]:
    store, emu, h = _setup(tmp_path, 300)
    yield store, emu, h
    emu.stop()


def test_ctrl_c_while_waiting_for_the_cycle_boundary_rolls_back(
        fast: tuple[PlanStore, ControllerEmulator, str], monkeypatch: pytest.MonkeyPatch) -> None:
    store, emu, h = fast
    real_wait, fired = NtcipAdapter._wait, []

    def wait(self: NtcipAdapter, what: str, timeout: float, fn: object) -> None:
        if what.startswith("pattern 2") and not fired:
            fired.append(what)
            raise KeyboardInterrupt  # the user presses Ctrl-C while the controller has the request
        real_wait(self, what, timeout, fn)  # type: ignore[arg-type]

    monkeypatch.setattr(NtcipAdapter, "_wait", wait)
    with pytest.raises(ActionInterrupted, match="interrupted \\(\\w+\\); recorded rolled_back"):
        service.deploy(store, h, ANN, DeployOptions(activation_timeout_s=5))
    assert fired and store.get(h).state == "rolled_back" and store.lease("B1") is None
    time.sleep(1.0)  # over three emulated cycles: the controller must not switch later
    assert emu.active_pattern == 1 and emu.pending_pattern is None
    finish = [e for e in store.audit(h) if e.action == "deploy.finish"][-1]
    assert finish.outcome == "rolled_back" and "interrupted" in finish.detail["message"]
    assert store.verify_audit().ok


def test_ctrl_c_after_the_switch_rolls_the_controller_back(
        fast: tuple[PlanStore, ControllerEmulator, str], monkeypatch: pytest.MonkeyPatch) -> None:
    store, emu, h = fast
    real_health, seen = NtcipAdapter.health, []

    def health(self: NtcipAdapter) -> list[str]:
        if not seen:
            seen.append(emu.active_pattern)
            raise KeyboardInterrupt  # the controller already runs the new plan
        return real_health(self)

    monkeypatch.setattr(NtcipAdapter, "health", health)
    with pytest.raises(ActionInterrupted, match="recorded rolled_back"):
        service.deploy(store, h, ANN, DeployOptions(activation_timeout_s=5))
    assert seen == [2] and emu.active_pattern == 1 and store.get(h).state == "rolled_back"
    assert store.lease("B1") is None and store.verify_audit().ok


class _AdapterInterrupt(KeyboardInterrupt):
    """Stands for deploy.ntcip's interrupt that carries the adapter's consistent outcome."""

    def __init__(self, report: DeployReport) -> None:
        super().__init__(report.message)
        self.report = report


def test_an_interrupt_that_reports_its_outcome_is_recorded_as_reported(
        fast: tuple[PlanStore, ControllerEmulator, str], monkeypatch: pytest.MonkeyPatch) -> None:
    store, _, h = fast

    def deploy(self: NtcipAdapter, plan: object) -> DeployReport:
        rep = DeployReport("B1", h, outcome="failed", message="transaction aborted; controller unchanged")
        raise _AdapterInterrupt(rep)

    monkeypatch.setattr(NtcipAdapter, "deploy", deploy)
    with pytest.raises(ActionInterrupted, match="recorded failed: transaction aborted; controller unchanged"):
        service.deploy(store, h, ANN, DeployOptions(activation_timeout_s=5))
    assert store.get(h).state == "failed" and store.lease("B1") is None
    finish = [e for e in store.audit(h) if e.action == "deploy.finish"][-1]
    assert finish.outcome == "failed" and finish.detail["interrupted"] is True


def test_rollback_needs_the_lease_and_works_after_a_deploy(fast: tuple[PlanStore, ControllerEmulator, str]) -> None:
    store, emu, h = fast
    out = service.deploy(store, h, ANN, DeployOptions(activation_timeout_s=5))
    assert out.ok and out.state == "deployed" and emu.active_pattern == 2
    with pytest.raises(Refused, match="needs a supervisor"):
        service.rollback(store, h, ANN, DeployOptions(activation_timeout_s=5))
    back = service.rollback(store, h, BOB, DeployOptions(activation_timeout_s=5))
    assert back.ok and store.get(h).state == "rolled_back" and emu.active_pattern == 1


def test_recover_refuses_a_live_holder_and_an_idle_signal(fast: tuple[PlanStore, ControllerEmulator, str]) -> None:
    store, _, h = fast
    with pytest.raises(Exception, match="no deploy or rollback is under way"):
        service.recover(store, "B1", ANN, DeployOptions())
    store.begin_deploy(h, ANN, holder=service.holder_id(), lease_s=600)  # this very process holds it
    with pytest.raises(Exception, match="is under way until"):
        service.recover(store, "B1", ANN, DeployOptions())


def _deploy_process(store: PlanStore, h: str, token: str, until: str) -> subprocess.Popen[str]:
    """`wulin plan deploy` in its own process; returns once it printed a line containing ``until``."""
    env = os.environ | {"PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "COLUMNS": "200", "WULIN_TOKEN": token}
    proc = subprocess.Popen([sys.executable, "-m", "wulin", "plan", "deploy", h, "--store", store.url,
                             "--activation-timeout", "60"], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    watchdog = threading.Timer(90, proc.kill)
    watchdog.start()
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if until in line:
            break
    watchdog.cancel()
    assert any(until in ln for ln in lines), "".join(lines)
    return proc


def _kill9(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL


def _recover(store: PlanStore, token: str) -> str:
    r = CliRunner().invoke(app, ["plan", "recover", "B1", "--store", store.url, "--activation-timeout", "60"],
                           env={"WULIN_TOKEN": token, "COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    return r.output


@pytest.mark.slow
def test_kill_9_while_activating_then_recover_rolls_back(tmp_path: Path) -> None:
    store, emu, h = _setup(tmp_path, 2)  # a 45 s wall-clock cycle: the deploy waits at the boundary
    try:
        token = store.issue_token(ROOT, "ann").token
        proc = _deploy_process(store, h, token, "waiting for the cycle boundary")
        _kill9(proc)
        assert store.get(h).state == "deploying" and store.lease("B1") is not None
        with pytest.raises(Refused, match="is deploying; if that deploy died, run `wulin plan recover B1`"):
            store.begin_deploy(h, ANN, holder="another", lease_s=60)
        out = _recover(store, token)
        assert "rolled_back" in out and "is gone" in out
        assert store.get(h).state == "rolled_back" and store.lease("B1") is None
        assert emu.active_pattern == 1 and emu.pending_pattern is None
        found = [e for e in store.audit(h) if e.action == "deploy.finish"][-1].detail["found"]
        assert found == {"running_pattern": 1, "pattern_control": 2, "plan_slot": 2}
        assert [e.action for e in store.audit(h)][-2:] == ["recover.start", "deploy.finish"]
        assert store.verify_audit().ok
    finally:
        emu.stop()


@pytest.mark.slow
def test_sigterm_while_activating_ends_recorded_and_rolled_back(tmp_path: Path) -> None:
    store, emu, h = _setup(tmp_path, 2)  # a 45 s wall-clock cycle: the deploy waits at the boundary
    try:
        token = store.issue_token(ROOT, "ann").token
        proc = _deploy_process(store, h, token, "waiting for the cycle boundary")
        proc.send_signal(signal.SIGTERM)  # as Ctrl-C: cancel the switch, restore, record
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode != 0, out
        plan = store.get(h)
        assert plan.state in ("rolled_back", "failed"), out
        assert store.lease("B1") is None
        assert emu.active_pattern == 1 and emu.pending_pattern is None
        assert store.verify_audit().ok
    finally:
        emu.stop()


@pytest.mark.slow
def test_kill_9_after_the_switch_then_recover_finishes_and_rollback_works(tmp_path: Path) -> None:
    store, emu, h = _setup(tmp_path, 10)  # a 9 s wall-clock cycle
    try:
        token = store.issue_token(ROOT, "ann").token
        proc = _deploy_process(store, h, token, "coordPatternStatus = 2")
        _kill9(proc)  # killed during the health check: the controller already runs the plan
        out = _recover(store, token)
        assert "deployed" in out and "clean health: finished" in out
        assert store.get(h).state == "deployed" and emu.active_pattern == 2
        back = service.rollback(store, h, BOB, DeployOptions(activation_timeout_s=60))
        assert back.ok and store.get(h).state == "rolled_back" and emu.active_pattern == 1
    finally:
        emu.stop()


def _dead_holder() -> str:
    """A lease holder whose process is gone (a pid no process has)."""
    import socket

    return f"{socket.gethostname()}:{2**22 + 12345}:dead"


def test_recover_a_deploy_that_died_before_writing(fast: tuple[PlanStore, ControllerEmulator, str]) -> None:
    store, emu, h = fast
    store.begin_deploy(h, ANN, holder=_dead_holder(), lease_s=600)  # died before its snapshot
    out = service.recover(store, "B1", ANN, DeployOptions(activation_timeout_s=5))
    assert out.state == "failed" and "nothing was written" in out.message
    assert store.get(h).state == "failed" and store.lease("B1") is None and emu.active_pattern == 1
    assert service.deploy(store, h, ANN, DeployOptions(activation_timeout_s=5)).ok  # a retry works


def test_recover_a_rollback_that_died(fast: tuple[PlanStore, ControllerEmulator, str]) -> None:
    store, emu, h = fast
    assert service.deploy(store, h, ANN, DeployOptions(activation_timeout_s=5)).ok
    store.begin_rollback(h, BOB, holder=_dead_holder(), lease_s=600)  # died before touching the device
    with pytest.raises(Refused, match="held by a rollback"):
        service.rollback(store, h, BOB, DeployOptions(activation_timeout_s=5))
    out = service.recover(store, "B1", ANN, DeployOptions(activation_timeout_s=5))
    assert out.state == "rolled_back" and emu.active_pattern == 1 and store.lease("B1") is None
    assert [e.action for e in store.audit(h)][-2:] == ["recover.start", "rollback"]
