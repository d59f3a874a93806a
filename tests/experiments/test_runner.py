"""Runner: results folder, resume after a kill, Ray gives the local results, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from experiments import runner
from experiments.results import finished_runs
from experiments.runner import run_experiment
from experiments.spec import load_spec
from sim.errors import WulinError
from sim.scenario import Scenario

from .conftest import SHORT, spec_text, write_spec

KPI_COLUMNS = ["mean_travel_time", "mean_time_loss", "control_delay", "queue_mean", "queue_p95",
               "throughput_vph", "teleports", "total_co2_kg", "mean_stops"]


def test_results_folder(tiny_results: Path) -> None:
    for name in ("experiment.toml", "resolved.json", "manifest.json", "runs.parquet", "runs.csv"):
        assert (tiny_results / name).is_file(), name
    manifest = json.loads((tiny_results / "manifest.json").read_text())
    assert manifest["seeds"] == [1, 2] and len(manifest["runs"]) == 8
    assert manifest["versions"]["eclipse-sumo"]
    assert any(p.endswith("tiny.net.xml") for p in manifest["inputs"])
    assert all(len(h) == 64 for h in manifest["inputs"].values())
    runs = pd.read_parquet(tiny_results / "runs.parquet")
    assert len(runs) == 8 and set(runs["controller"]) == {"field", "max-pressure"}
    assert runs[KPI_COLUMNS].notna().all().all()
    assert (runs["total_co2_kg"] > 0).all() and (runs["control_delay"] > 0).all()
    run = tiny_results / "runs" / "tiny-test-v1--closed--field--s1"
    inter = pd.read_parquet(run / "intersections.parquet")
    assert sorted(inter["signal"]) == ["A0", "A1", "B0", "B1"]
    assert set(inter["los"]) <= set("ABCDEF")
    appr = pd.read_parquet(run / "approaches.parquet")
    assert {"signal", "edge", "control_delay", "queue_p95", "throughput_vph"} <= set(appr.columns)
    assert len(pd.read_parquet(run / "trips.parquet")) > 0
    assert len(pd.read_parquet(run / "queues.parquet")) > 0
    events = json.loads((run / "summary.json").read_text())["events"]
    assert events[0]["kind"] == "closure" and events[0]["started"] is not None


def test_same_seed_same_numbers(tiny_results: Path, tiny_scenario: Scenario, tmp_path: Path) -> None:
    spec = load_spec(write_spec(tmp_path, spec_text(tiny_scenario, SHORT, seeds="[2]",
                                                    controllers='["max-pressure"]')))
    again = runner.execute_run(spec, spec.runs()[0])
    first = json.loads((tiny_results / "runs" / spec.runs()[0].run_id / "summary.json").read_text())
    for k in KPI_COLUMNS:
        assert again.summary[k] == pytest.approx(first["kpis"][k], rel=1e-12, nan_ok=True), k


def test_resume_after_kill_skips_finished_runs(tiny_scenario: Scenario, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load_spec(write_spec(tmp_path, spec_text(tiny_scenario, SHORT, controllers='["field"]')))
    out = tmp_path / "out"
    real = runner.execute_run
    calls: list[str] = []

    def killed_after_two(spec_, key, **kw):  # type: ignore[no-untyped-def]
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if the process were killed during the third run
        calls.append(key.run_id)
        return real(spec_, key, **kw)

    monkeypatch.setattr(runner, "execute_run", killed_after_two)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(spec, out, workers=1, progress=False)
    done = finished_runs(out)
    assert done == set(calls) and len(done) == 2
    stamps = {r: (out / "runs" / r / "summary.json").stat().st_mtime_ns for r in done}
    # a half-written run left behind by a kill is cleaned up, never mistaken for a finished one
    (out / "runs" / ".tiny-test-v1--closed--field--s2.tmp-999").mkdir()

    calls.clear()
    monkeypatch.setattr(runner, "execute_run", lambda s, k, **kw: (calls.append(k.run_id), real(s, k, **kw))[1])
    run_experiment(spec, out, workers=1, progress=False)
    assert len(finished_runs(out)) == 4
    assert set(calls) == {k.run_id for k in spec.runs()} - done  # only the missing ones ran
    assert all((out / "runs" / r / "summary.json").stat().st_mtime_ns == s for r, s in stamps.items())
    assert not list((out / "runs").glob(".*"))


def test_changed_declaration_refuses_old_folder(tiny_scenario: Scenario, tmp_path: Path) -> None:
    spec = load_spec(write_spec(tmp_path, spec_text(tiny_scenario, SHORT, controllers='["field"]', seeds="[1]")))
    out = tmp_path / "out"
    run_experiment(spec, out, workers=1, progress=False)
    other = load_spec(write_spec(tmp_path, spec_text(tiny_scenario, SHORT, controllers='["field"]',
                                                     seeds="[1, 7]"), "other.toml"))
    with pytest.raises(WulinError, match="different declaration"):
        run_experiment(other, out, workers=1, progress=False)


def test_failed_run_is_reported_and_others_kept(tiny_scenario: Scenario, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load_spec(write_spec(tmp_path, spec_text(tiny_scenario, SHORT, controllers='["field"]', seeds="[1]")))
    real = runner.execute_run

    def fail_closed(spec_, key, **kw):  # type: ignore[no-untyped-def]
        if key.variation == "closed":
            raise WulinError("SUMO died")
        return real(spec_, key, **kw)

    monkeypatch.setattr(runner, "execute_run", fail_closed)
    with pytest.raises(WulinError, match="1 of 2 runs failed"):
        run_experiment(spec, tmp_path / "out", workers=1, progress=False)
    assert finished_runs(tmp_path / "out") == {"tiny-test-v1--base--field--s1"}
    assert "SUMO died" in (tmp_path / "out" / "runs" / "tiny-test-v1--closed--field--s1.error.txt").read_text()


@pytest.mark.slow
def test_local_processes_give_sequential_results(tiny_results: Path, tiny_scenario: Scenario,
                                                 tmp_path: Path) -> None:
    spec = load_spec(write_spec(tmp_path, spec_text(tiny_scenario, SHORT)))
    out = run_experiment(spec, tmp_path / "par", workers=2, progress=False)
    a = pd.read_parquet(out / "runs.parquet").set_index("run_id").sort_index()
    b = pd.read_parquet(tiny_results / "runs.parquet").set_index("run_id").sort_index()
    pd.testing.assert_frame_equal(a[KPI_COLUMNS], b[KPI_COLUMNS])


@pytest.mark.slow
def test_ray_executor_matches_local(tiny_results: Path, tiny_scenario: Scenario, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    body = SHORT.split("[[variations]]\nname = \"closed\"")[0]
    spec = load_spec(write_spec(tmp_path, spec_text(tiny_scenario, body)))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        out = run_experiment(spec, tmp_path / "ray", executor="ray", progress=False)
    finally:
        ray.shutdown()
    a = pd.read_parquet(out / "runs.parquet").set_index("run_id").sort_index()
    b = pd.read_parquet(tiny_results / "runs.parquet").set_index("run_id").sort_index().loc[a.index]
    assert len(a) == 4
    pd.testing.assert_frame_equal(a[KPI_COLUMNS], b[KPI_COLUMNS])


@pytest.mark.slow
def test_cli_run_killed_then_resumed(tiny_scenario: Scenario, tmp_path: Path) -> None:
    """A real SIGKILL of `wulin experiment run`, then the same command finishes the rest."""
    seeds = "[1, 2, 3, 4, 5, 6]"
    path = write_spec(tmp_path, spec_text(tiny_scenario, SHORT, controllers='["field"]', seeds=seeds))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "wulin", "experiment", "run", str(path), "--out", str(out),
           "--workers", "1", "--no-report"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, cwd=tmp_path)
    deadline = time.time() + 120
    while len(finished_runs(out)) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = finished_runs(out)
    assert 2 <= len(before) < 12
    stamps = {r: (out / "runs" / r / "summary.json").stat().st_mtime_ns for r in before}
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert f"{len(before)} of 12 runs already finished" in " ".join(res.stdout.split())
    assert len(finished_runs(out)) == 12
    assert all((out / "runs" / r / "summary.json").stat().st_mtime_ns == s for r, s in stamps.items())


def test_cli_validate(tiny_scenario: Scenario, tmp_path: Path) -> None:
    good = write_spec(tmp_path, spec_text(tiny_scenario, SHORT))
    bad = write_spec(tmp_path, spec_text(tiny_scenario, SHORT.replace("at = 100", "at = -5")), "bad.toml")
    wulin = [sys.executable, "-m", "wulin"]
    res = subprocess.run([*wulin, "experiment", "validate", str(good)], capture_output=True, text=True)
    assert res.returncode == 0 and "8 runs" in " ".join(res.stdout.split())
    res = subprocess.run([*wulin, "experiment", "validate", str(bad)], capture_output=True, text=True)
    assert res.returncode == 2
    err = " ".join(res.stderr.split())
    assert "closures[0].at" in err and "line " in err and "Traceback" not in err
