"""Simulation lifecycle, determinism and failure handling."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time

import pytest

from sim.errors import SimulationError, WulinError
from sim.kpi import network_kpis, read_tripinfo, summarise
from sim.scenario import Scenario
from sim.simulation import Simulation


def _run_kpis(scenario: Scenario, seed: int, backend: str = "libsumo") -> dict[str, float]:
    sim = Simulation(scenario, seed=seed, backend=backend, tripinfo=True)  # type: ignore[arg-type]
    with sim:
        sim.step_until(scenario.end)
    trips = read_tripinfo(sim.tripinfo_file, scenario.measure_begin)
    out = {**summarise(trips), **network_kpis(sim.statistics_file, trips)}
    sim.cleanup()
    return {k: v for k, v in out.items() if v == v}  # drop NaN (emissions off): NaN != NaN


@pytest.mark.parametrize("backend", ["libsumo", "traci"])
def test_lifecycle_start_step_three_resets_close(tiny_scenario: Scenario, backend: str) -> None:
    sim = Simulation(tiny_scenario, seed=3, backend=backend)  # type: ignore[arg-type]
    assert not sim.running
    sim.start()
    assert sim.time == tiny_scenario.begin
    sim.step()
    assert sim.time == tiny_scenario.begin + 1
    for k in range(3):
        sim.step_until(tiny_scenario.begin + 100 + k)
        sim.reset(seed=10 + k)
        assert sim.time == tiny_scenario.begin and sim.seed == 10 + k
    sim.step_until(tiny_scenario.end)
    assert sim.finished
    sim.close()
    sim.close()  # idempotent
    assert not sim.running
    with pytest.raises(WulinError, match="not started"):
        sim.step()


def _child(scenario: Scenario, seed: int, q: mp.Queue) -> None:
    q.put(_run_kpis(scenario, seed)["arrived"])


def test_two_simulations_in_parallel_processes(tiny_scenario: Scenario) -> None:
    ctx = mp.get_context("spawn")
    q: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=_child, args=(tiny_scenario, s, q)) for s in (1, 2)]
    for p in procs:
        p.start()
    results = [q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert all(r > 0 for r in results)


def test_same_seed_same_kpis_other_seed_differs(tiny_scenario: Scenario) -> None:
    a, b, c = (_run_kpis(tiny_scenario, s) for s in (5, 5, 6))
    assert a == b
    assert a != c


def test_traci_and_libsumo_agree(tiny_scenario: Scenario) -> None:
    assert _run_kpis(tiny_scenario, 4, "libsumo") == _run_kpis(tiny_scenario, 4, "traci")


def test_second_libsumo_in_one_process_is_refused(tiny_scenario: Scenario) -> None:
    with Simulation(tiny_scenario, seed=1):
        with pytest.raises(WulinError, match="one simulation per process"):
            Simulation(tiny_scenario, seed=2).start()
        # traci simulations can run beside it
        with Simulation(tiny_scenario, seed=2, backend="traci") as other:
            other.step()


def test_sumo_killed_mid_run_raises_promptly(tiny_scenario: Scenario) -> None:
    sim = Simulation(tiny_scenario, seed=1, backend="traci", timeout=20).start()
    sim.step_until(tiny_scenario.begin + 30)
    os.kill(sim.sumo_pid, signal.SIGKILL)
    t0 = time.monotonic()
    with pytest.raises(SimulationError) as err:
        sim.step_until(tiny_scenario.begin + 60)
    assert time.monotonic() - t0 < 20  # a failure, not a hang (bound is the socket timeout)
    assert "tiny-test-v1" in str(err.value) and "seed 1" in str(err.value)
    assert not sim.running


def test_sumo_error_carries_sumo_message(tiny_scenario: Scenario, tmp_path) -> None:
    broken = tmp_path / "broken.add.xml"
    broken.write_text(
        '<additional><e1Detector id="d" lane="no_such_lane" pos="1" file="x"/></additional>'
    )
    for backend in ("libsumo", "traci"):
        with pytest.raises(SimulationError) as err:
            Simulation(tiny_scenario, seed=1, backend=backend, additional_files=[broken]).start()  # type: ignore[arg-type]
        assert "no_such_lane" in str(err.value)


@pytest.mark.parametrize("seed", [-1, 2**31, 1.5, "3", True])
def test_bad_seed(tiny_scenario: Scenario, seed: object) -> None:
    with pytest.raises(WulinError, match="seed"):
        Simulation(tiny_scenario, seed=seed)  # type: ignore[arg-type]


def test_bad_backend(tiny_scenario: Scenario) -> None:
    with pytest.raises(WulinError, match="backend"):
        Simulation(tiny_scenario, seed=1, backend="sumo-rl")  # type: ignore[arg-type]


def test_sumo_warnings_go_to_the_log_not_the_terminal(tiny_scenario: Scenario, capfd) -> None:
    """A vehicle held still for 300 s makes SUMO teleport it and warn, mid-run: the warnings
    are counted in the log, and none reaches the terminal (fd 1 or 2)."""
    from sim.sumo_log import read_sumo_log

    sim = Simulation(tiny_scenario, seed=1)
    try:
        with sim:
            sim.step_until(tiny_scenario.begin + 30)
            for veh in sim.conn.vehicle.getIDList():
                sim.conn.vehicle.setSpeed(veh, 0.0)
            sim.step_until(tiny_scenario.end)
        messages = read_sumo_log(sim.error_log)
        printed = capfd.readouterr()
        assert messages.teleports > 0 and messages.warnings >= messages.teleports
        assert "Warning" not in printed.out + printed.err
        line = messages.summary()
        assert f"{messages.teleports} teleports" in line and str(sim.error_log) in line
    finally:
        sim.cleanup()


def test_private_folder_removed_after_an_exception(tiny_scenario: Scenario) -> None:
    """A run that fails before cleanup() leaves no wulin-sim* folder behind."""
    import gc

    def failing_run() -> str:
        sim = Simulation(tiny_scenario, seed=1)
        with sim:
            sim.step()
            raise RuntimeError(str(sim.output_dir))

    with pytest.raises(RuntimeError) as info:
        failing_run()
    folder = str(info.value)
    del info
    gc.collect()
    assert folder and not os.path.exists(folder)


def test_no_warnings_given_by_the_caller_is_not_given_twice(tiny_scenario: Scenario) -> None:
    """Callers that already pass --no-warnings (the experiment runner, the env) still start."""
    sim = Simulation(tiny_scenario, seed=1, extra_args=["--no-warnings", "true"])
    assert sim.sumo_args().count("--no-warnings") == 1
    try:
        with sim:
            sim.step()
    finally:
        sim.cleanup()
