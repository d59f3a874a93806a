"""Each fault injected into the closed loop ends safe and visible: the hurt devices fall back to
their time-of-day plan within ``unitBackupTime`` + one cycle, nothing unsafe reaches SUMO (each
state checked against the conflict matrix), and central control resumes when the link returns."""

from __future__ import annotations

import pytest

pytest.importorskip("libsumo")

BACKUP_S = 10


def _run(kind: str, start: float = 60.0, duration: float = 30.0, end_after: float = 200.0):  # noqa: ANN202
    from controllers.base import make_controller
    from deploy.cosim_faults import FaultRun, FaultSpec
    from deploy.sumo_bridge import run_cosim
    from sim.scenario import load_scenario

    sc = load_scenario("grid-am-v1")
    fr = FaultRun(FaultSpec(kind, start, duration), sc.begin)
    res = run_cosim(sc, make_controller("max-pressure"), 1, end=sc.begin + end_after, backup_s=BACKUP_S, fault=fr)
    assert res.unsafe_count == 0 and res.unsafe == [] and res.alarms == 0
    return res, fr.summary()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["loss-all", "loss-one", "late", "central-crash"])
def test_silence_of_any_kind_falls_back_safely_and_central_resumes(kind: str) -> None:
    """Silence long enough to see the plan run a whole cycle (backup time + 2 cycles of 94 s)."""
    res, f = _run(kind, duration=250.0, end_after=340.0)
    assert f["devices"] == (9 if kind in ("loss-all", "central-crash") else 1)
    assert res.fallbacks == f["devices"]
    assert BACKUP_S - 1 <= f["fell_back_s"] <= BACKUP_S + 1  # the watchdog, at unitBackupTime
    assert f["in_plan_within_target"] == f["devices"]  # in step with its plan within backup time + 1 cycle
    assert f["in_plan_s"] <= f["target_s"]
    assert f["resumed_s"] is not None and f["resumed_s"] <= 3  # central has it again within seconds
    if kind == "late":  # the answers came, after central had given up on them
        assert res.central.timeouts >= 200


def test_an_intermittent_link_keeps_central_control_and_stays_safe() -> None:
    """Half the messages lost for 30 s: heartbeats still get through well inside the backup time."""
    res, f = _run("intermittent")
    assert res.central.timeouts > 5 and res.fallbacks == 0 and f["fell_back_s"] is None
    assert f["resumed_s"] == 0  # still under central control when the window ends


def test_a_device_reboot_shows_start_up_flash_then_its_plan_and_central_takes_it_again() -> None:
    res, f = _run("reboot", duration=20.0)
    assert res.flash_entries == 1  # the green it showed ended in the fail-safe flash, not in an unsafe state
    assert f["fell_back_s"] == pytest.approx(20.0, abs=1)  # answering again after its silence
    assert f["resumed_s"] is not None and f["resumed_s"] <= 3
    assert res.central.resumed >= 1  # the new SNMP engine (boots + 1) was resynchronised


def test_commands_the_device_must_refuse_or_defer() -> None:
    res, f = _run("refused", duration=60.0, end_after=150.0)
    assert any("conflicting hold" in n and "inconsistentValue" in n for n in f["notes"]), f["notes"]
    assert f["min_green_kept"] is True  # the force-off at the green's start waited for the minimum green
    assert res.fallbacks == 0


def test_fault_options_are_checked() -> None:
    from deploy.cosim_faults import FaultSpec
    from sim.errors import WulinError

    with pytest.raises(WulinError, match="unknown fault 'flood'"):
        FaultSpec("flood")
    with pytest.raises(WulinError, match="duration above 0"):
        FaultSpec("loss-one", 10, 0)
