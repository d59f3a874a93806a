"""`wulin adaptive run`: the central process of a deployed configuration, on the wall clock,
against real emulators on loopback (two grid signals, B1 and A0, one detector per in-lane)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from controllers.plan import TimingPlan
from deploy import adaptive_service, service
from deploy import oids as O
from deploy.adaptive import AdaptiveConfig, AdaptiveRow, AdaptiveStore
from deploy.detectors import DetectorReading, detector_calls
from deploy.emulator import ControllerEmulator, SwitchClock
from deploy.secrets import SecretsFile
from deploy.service import DeployOptions
from deploy.store import PlanStore, Refused

from .conftest import (
    ANN,
    BOB,
    CAPS,
    ROOT,
    add_users,
    conflicts_for,
    make_plan,
    make_profile,
    propose,
)
from .test_adaptive import EVIDENCE
from .test_cli_plan import as_user

SIGNALS = ("A0", "B1")  # not neighbours: no lane between them, so one's queue is not the other's out_count
BACKUP_S, HEARTBEAT_S = 4, 1.0  # a run of 12 s outlasts the backup time three times
OPTS = DeployOptions(activation_timeout_s=10)


def _plan(sid: str, name: str) -> TimingPlan:
    return make_plan(sid, greens=(50, 30), name=name)


def _grid():  # noqa: ANN202 - sim.topology.SignalSpec per signal
    from sim.topology import load_signal_specs

    from .conftest import GRID_NET

    return load_signal_specs(GRID_NET)


def _emulator(sid: str, clock: SwitchClock) -> ControllerEmulator:
    """One detector per in-lane, as central control reads them."""
    spec = _grid()[sid]
    return ControllerEmulator(make_profile(sid), _plan(sid, "local"), CAPS, clock=clock, verify_s=1,
                              conflicts=conflicts_for(sid), detectors=detector_calls(spec)).start()


@dataclass
class Field:
    store: PlanStore
    emus: dict[str, ControllerEmulator]
    clocks: list[SwitchClock]
    env: dict[str, str]
    ref: str = ""

    def run(self, *args: str):  # type: ignore[no-untyped-def]
        return as_user(self.env, "ann", "adaptive", "run", self.ref, "--scenario", "grid-am-v1",
                       "--status-every", "2", *args)


def _field(tmp_path: Path, emus: dict[str, ControllerEmulator], clocks: list[SwitchClock]) -> Field:
    """Users, the devices registered (credentials in the secrets file), fallback plans approved,
    and a configuration proposed."""
    store = PlanStore(tmp_path / "store.sqlite")
    add_users(store)
    fallback = {}
    for sid, emu in emus.items():
        SecretsFile().put(sid, emu.credentials)
        store.register_device(sid, emu.host, emu.port, emu.profile, CAPS)
        fallback[sid] = propose(store, _plan(sid, "fallback"), evidence=EVIDENCE).hash
        store.approve(fallback[sid], BOB)
    cfg = AdaptiveConfig.parse({"name": "central max-pressure", "controller": "max-pressure",
                                "params": {"decision_interval": 2},
                                "bounds": {"backup_time": BACKUP_S, "heartbeat": HEARTBEAT_S}, "fallback": fallback})
    env = {"WULIN_STORE": str(tmp_path / "store.sqlite"), "COLUMNS": "200"}
    return Field(store, emus, clocks, env, AdaptiveStore(store).propose(cfg, ANN).hash)


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[Field]:
    """Two emulators under central control by a deployed configuration, their clocks at wall speed."""
    clocks = [SwitchClock(300) for _ in SIGNALS]
    emus: dict[str, ControllerEmulator] = {}
    try:
        for sid, clock in zip(SIGNALS, clocks, strict=True):
            emus[sid] = _emulator(sid, clock)
        f = _field(tmp_path, emus, clocks)
        AdaptiveStore(f.store).approve(f.ref, BOB)
        for h in AdaptiveStore(f.store).get(f.ref).config.fallback.values():  # fast: each waits for a cycle
            assert service.deploy(f.store, h, ANN, replace(OPTS, activation="schedule")).ok
        for sid, clock in zip(SIGNALS, clocks, strict=True):  # wall speed before central control begins
            with emus[sid].lock:
                clock.set_scale(1.0)
        out = adaptive_service.deploy(f.store, f.ref, ANN, OPTS)
        assert out.ok, out.message
        yield f
    finally:
        for e in emus.values():
            e.stop()


def _wait(cond: Callable[[], bool], what: str, limit_s: float = 60.0) -> None:
    """Wait for ``cond`` (a deadline far beyond need: the test asserts the outcome, not the time)."""
    end = time.monotonic() + limit_s
    while not cond():
        assert time.monotonic() < end, f"never happened: {what}"
        time.sleep(0.05)


def _value(emu: ControllerEmulator, o: O.OID) -> int:
    with emu.lock:
        emu.advance()
        return int(emu.value(o))


def _stage_lane(emu: ControllerEmulator, stage: int) -> int:
    """A detector on an in-lane served by ``stage`` only."""
    phase = stage + 1
    return next(d for d in range(1, 9) if _value(emu, O.VEHICLE_DETECTOR_CALL_PHASE + (d,)) == phase)


def test_refused_unless_approved_signed_and_deployed(tmp_path: Path) -> None:
    """Not approved, approved but not deployed, marked deployed by hand, edited in the database:
    each refused (and audited) before any device is reached."""
    emus = {sid: ControllerEmulator(make_profile(sid), _plan(sid, "local"), CAPS) for sid in SIGNALS}  # not started
    f = _field(tmp_path, emus, [])
    r = f.run()
    assert isinstance(r.exception, Refused) and "is proposed; run needs deployed" in str(r.exception)
    with f.store._tx() as s:  # marked deployed by hand, never approved
        s.get(AdaptiveRow, f.ref).state = "deployed"
    r = f.run()
    assert isinstance(r.exception, Refused) and "signature does not verify" in str(r.exception)
    with f.store._tx() as s:
        s.get(AdaptiveRow, f.ref).state = "proposed"
    AdaptiveStore(f.store).approve(f.ref, BOB)
    r = f.run()
    assert isinstance(r.exception, Refused) and "is approved; run needs deployed" in str(r.exception)
    with f.store._tx() as s:  # marked deployed, and its maximum green raised, in the database
        row = s.get(AdaptiveRow, f.ref)
        row.state = "deployed"
        row.config_json = row.config_json.replace('"max_green":60.0', '"max_green":120.0')
    r = f.run()
    assert isinstance(r.exception, Refused) and "changed" in str(r.exception)
    refused = [e for e in f.store.audit(f.ref) if e.action == "adaptive.run" and e.outcome == "refused"]
    assert len(refused) == 4 and not any(e.action == "adaptive.run.start" for e in f.store.audit(f.ref))


def _commanded(emu: ControllerEmulator) -> int:
    """The stage central holds the device on (-1: none)."""
    hold = _value(emu, O.PHASE_CONTROL_HOLD + (1,))
    return hold.bit_length() - 1 if hold else -1


@pytest.mark.slow
def test_a_run_drives_the_devices_from_their_detectors_then_leaves_them_to_their_watchdogs(deployed: Field) -> None:
    """A run longer than the backup time keeps every device under central control; a vehicle
    standing on a detector of the stage not held makes max-pressure command that stage; after
    the run (no --release) each device falls back to its verified fallback plan by its watchdog."""
    f = deployed
    fell = {sid: e.backup_fallbacks for sid, e in f.emus.items() if _value(e, O.UNIT_CONTROL_STATUS)}
    asked: dict[str, int] = {}

    def vehicles() -> None:  # once central holds each device on a stage, a car waits at the other one
        for sid, emu in f.emus.items():
            _wait(lambda emu=emu: _commanded(emu) >= 0, f"{sid} commanded")
            asked[sid] = 1 - _commanded(emu)
            d = _stage_lane(emu, asked[sid])
            with emu.lock:
                emu.unit.feed({d: DetectorReading(True, 0)})

    feeder = threading.Thread(target=vehicles, daemon=True)
    feeder.start()
    r = f.run("--for", "25")
    feeder.join(5)
    assert r.exit_code == 0, r.output
    print(r.output)
    assert "stopped: ran for 25 s (--for)" in r.output and f"within unitBackupTime ({BACKUP_S} s)" in r.output
    last = [ln for ln in r.output.splitlines() if "late rounds" in ln][-1]
    assert "central control 2/2" in last and "unanswered 0" in last and "taken again 0" in last, last
    for sid, emu in f.emus.items():
        assert _commanded(emu) == asked[sid], sid  # the stage serving the lane with the vehicle
        assert _value(emu, O.PHASE_STATUS_GREENS + (1,)) == 1 << asked[sid], sid  # and it is green
    stop = [e for e in f.store.audit(f.ref) if e.action == "adaptive.run.stop"]
    assert [e.action for e in f.store.audit(f.ref)].count("adaptive.run.start") == 1 and len(stop) == 1
    assert stop[0].outcome == "ok" and stop[0].detail["rounds"] >= 20 and stop[0].detail["taken_again"] == 0
    for sid, emu in f.emus.items():  # nobody feeds the watchdogs now
        _wait(lambda emu=emu: _value(emu, O.UNIT_CONTROL_STATUS) == O.CONTROL_BACKUP, f"{sid} falls back")
        assert emu.backup_fallbacks == fell[sid] + 1 and emu.active_pattern == emu.tod_pattern() != 1
    assert f.store.verify_audit().ok


@pytest.mark.slow
def test_release_returns_the_devices_to_their_plans_at_once(deployed: Field) -> None:
    f = deployed
    fell = {sid: e.backup_fallbacks for sid, e in f.emus.items() if _value(e, O.UNIT_CONTROL_STATUS)}
    r = f.run("--for", "3", "--release")
    assert r.exit_code == 0, r.output
    assert "released 2 of 2 device(s) to their time-of-day plans" in r.output
    for sid, emu in f.emus.items():  # at once: no watchdog fallback, the commands cleared
        assert _value(emu, O.UNIT_CONTROL_STATUS) != O.CONTROL_SYSTEM and emu.backup_fallbacks == fell[sid]
        assert int(emu.db[O.SYSTEM_PATTERN_CONTROL]) == O.PATTERN_STANDBY and not emu.unit.commanded
    stop = [e for e in f.store.audit(f.ref) if e.action == "adaptive.run.stop"][-1]
    assert stop.detail["released"] == {"A0": "", "B1": ""} and stop.outcome == "ok"


@pytest.mark.slow
def test_a_rollback_stops_the_run_and_a_rolled_back_configuration_is_refused(deployed: Field) -> None:
    """A supervisor's rollback while the process runs: the process sees it in the store, stops
    without taking the released devices again; then the configuration cannot be run."""
    f = deployed
    done: list[object] = []

    def supervisor() -> None:
        _wait(lambda: all(_commanded(e) >= 0 for e in f.emus.values()), "central control")
        done.append(adaptive_service.rollback(f.store, f.ref, BOB, OPTS))

    sup = threading.Thread(target=supervisor, daemon=True)
    sup.start()
    r = f.run("--for", "60")
    sup.join(30)
    assert r.exit_code == 0, r.output
    assert re.search("stopped: the configuration is (rolling_back|rolled_back) now", r.output), r.output
    assert "the devices were not taken again: the rollback returns them" in r.output
    out = done[0]
    assert out.ok and AdaptiveStore(f.store).get(f.ref).state == "rolled_back", out.message  # type: ignore[attr-defined]
    for emu in f.emus.values():
        assert _value(emu, O.UNIT_CONTROL_STATUS) != O.CONTROL_SYSTEM
    r = f.run("--for", "3")
    assert isinstance(r.exception, Refused) and "is rolled_back; run needs deployed" in str(r.exception)


def test_command_line_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from wulin.cli import main

    emus = {sid: ControllerEmulator(make_profile(sid), _plan(sid, "local"), CAPS) for sid in SIGNALS}  # not started
    f = _field(tmp_path, emus, [])
    monkeypatch.setenv("WULIN_STORE", f.env["WULIN_STORE"])
    token = f.store.issue_token(ROOT, "ann").token

    def error(*args: str) -> str:
        with pytest.raises(SystemExit) as ex:
            main(["adaptive", "run", *args])
        err = capsys.readouterr().err.strip()
        assert ex.value.code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
        return err

    assert "log in with --user NAME" in error(f.ref)
    assert "adaptive configuration 'feedbeef': no such hash" in error("feedbeef", "--token", token)
    assert "--for: 0 s must be above 0" in error(f.ref, "--for", "0", "--token", token)
    AdaptiveStore(f.store).approve(f.ref, BOB)
    with f.store._tx() as s:  # (deployed; its devices never started)
        s.get(AdaptiveRow, f.ref).state = "deployed"
    assert "--scenario: the configuration names no network" in error(f.ref, "--token", token)
    assert "has no signal A0, B1 of the configuration" in error(f.ref, "--token", token, "--scenario",
                                                                  str(Path(__file__).parents[2] / "networks" / "wulin"
                                                                      / "scenarios" / "wulin-am-peak-v1.toml"))
    assert "does not answer" in error(f.ref, "--token", token, "--scenario", "grid-am-v1", "--link-timeout", "0.1")
    run = [(e.action, e.outcome) for e in f.store.audit(f.ref) if e.action.startswith("adaptive.run")]
    assert run == [("adaptive.run.start", "ok"), ("adaptive.run.stop", "failed")]  # started, never ran a round
