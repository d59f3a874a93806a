"""Runs survive faults: killed workers, killed drivers, damaged files, unwritable folders (issue 11)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from experiments import recorder, runner
from experiments.history import read_history
from experiments.results import finished_runs, load_experiment
from experiments.runner import run_experiment
from experiments.spec import load_spec
from sim.errors import WulinError
from sim.scenario import Scenario

from .conftest import SHORT, spec_text, write_spec

BASE_ONLY = SHORT.split('[[variations]]\nname = "closed"')[0]
WULIN = [sys.executable, "-m", "wulin"]


def _cli(spec: Path, out: Path, tmp: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "TMPDIR": str(tmp)}
    return subprocess.Popen([*WULIN, "experiment", "run", str(spec), "--out", str(out), "--no-report", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _running(out: Path) -> dict[int, str]:
    """Worker pid -> the run it is on, read from the workers' temporary folders."""
    found = {}
    work = out / ".work"
    for d in list(work.iterdir()) if work.is_dir() else []:
        with_run = [r.name for r in d.iterdir() if r.name.startswith("wulin-run-")] if d.is_dir() else []
        if with_run:
            found[int(d.name.split("-")[1])] = with_run[0]
    return found


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z"
    except OSError:
        return True


def _private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


@pytest.mark.slow
def test_killed_worker_run_retried_others_finish(long_scenario: Scenario, tmp_path: Path) -> None:
    """SIGKILL the worker of seed 2 once and of seed 1 every time: 2 is retried, 1 ends failed."""
    spec = write_spec(tmp_path, spec_text(long_scenario, controllers='["max-pressure"]', seeds="[1, 2, 3]"))
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    tmp.mkdir()
    proc = _cli(spec, out, tmp, "--workers", "2")
    killed: dict[int, str] = {}
    while proc.poll() is None:
        for pid, run in _running(out).items():
            seed2_once = "--s2-" in run and not any("--s2-" in r for r in killed.values())
            if pid not in killed and ("--s1-" in run or seed2_once):
                os.kill(pid, signal.SIGKILL)
                killed[pid] = run
        time.sleep(0.02)
    stdout, stderr = proc.communicate()
    assert proc.returncode == 2, stderr
    assert "Traceback" not in stdout + stderr
    err = " ".join(stderr.split())
    assert "1 of 3 runs failed" in err and "died on each of 3 attempts" in err and "SIGKILL" in err
    ids = {f"tiny-long-v1--base--max-pressure--s{s}" for s in (1, 2, 3)}
    s1, s2, s3 = sorted(ids)
    assert finished_runs(out) == {s2, s3}
    assert json.loads((out / "runs" / s2 / "summary.json").read_text())["attempts"] == 2
    assert "died on each of 3 attempts" in (out / "runs" / f"{s1}.error.txt").read_text()
    events = read_history(out)
    retries = [(e["run_id"], e["attempt"]) for e in events if e["event"] == "retry"]
    assert sorted(retries) == [(s1, 2), (s1, 3), (s2, 2)]
    assert [e["run_id"] for e in events if e["event"] == "failed"] == [s1]
    assert events[-1]["event"] == "end" and events[-1]["status"] == "failed"
    assert all(_gone(p) for p in killed)
    assert not (out / ".work").exists() and not list(tmp.iterdir())  # no temporary folder left


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_driver_death_ends_its_workers(long_scenario: Scenario, tmp_path: Path, sig: signal.Signals) -> None:
    spec = write_spec(tmp_path, spec_text(long_scenario, controllers='["max-pressure"]', seeds="[1, 2, 3, 4]"))
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    tmp.mkdir()
    proc = _cli(spec, out, tmp, "--workers", "2")
    deadline = time.time() + 120
    while len(_running(out)) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    workers = list(_running(out))
    assert len(workers) == 2
    os.kill(proc.pid, sig)
    stdout, stderr = proc.communicate(timeout=60)
    deadline = time.time() + 10
    while not all(_gone(p) for p in workers) and time.time() < deadline:
        time.sleep(0.05)
    assert all(_gone(p) for p in workers), "workers outlived their driver"
    if sig == signal.SIGKILL:  # its workers' folders are left for the next run to sweep
        res = subprocess.run([*WULIN, "experiment", "run", str(spec), "--out", str(out), "--no-report",
                              "--workers", "2"], capture_output=True, text=True,
                             env={**os.environ, "TMPDIR": str(tmp)})
        assert res.returncode == 0, res.stderr
        assert len(finished_runs(out)) == 4
    else:  # stopped cleanly: one line saying how to resume, no traceback
        assert proc.returncode == 130, stderr
        text = " ".join((stdout + stderr).split())
        assert "interrupted:" in text and "run the same command again to resume" in text
        assert "Traceback" not in stdout + stderr
        assert read_history(out)[-1]["status"] == "interrupted"
    assert not (out / ".work").exists() and not list(tmp.iterdir())


def test_rerun_appends_history_and_keeps_user_files(tiny_scenario: Scenario, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    tmp = _private_tmp(tmp_path, monkeypatch)
    path = write_spec(tmp_path, spec_text(tiny_scenario, BASE_ONLY, controllers='["field"]', seeds="[1]"))
    spec = load_spec(path)
    # a folder of the user's that holds another experiment.toml: refused, untouched
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "experiment.toml").write_text("# my own notes\n")
    with pytest.raises(WulinError, match="not an experiment folder.*experiment.toml"):
        run_experiment(spec, mine, workers=1, progress=False)
    assert (mine / "experiment.toml").read_text() == "# my own notes\n"
    assert sorted(p.name for p in mine.iterdir()) == ["experiment.toml"]

    monkeypatch.chdir(tmp_path)
    out = Path("out")  # relative: the runs' temporary folders must still work
    run_experiment(spec, out, workers=1, progress=False)
    edited = spec.text + "# the user's remark\n"
    (out / "experiment.toml").write_text(edited)
    manifest = (out / "manifest.json").read_bytes()
    run_experiment(spec, out, workers=1, progress=False)
    assert (out / "experiment.toml").read_text() == edited
    assert (out / "manifest.json").read_bytes() == manifest
    events = read_history(out)
    assert [e["event"] for e in events] == ["start", "end", "start", "end"]
    assert events[2]["to_run"] == [] and events[2]["finished_before"] == 1
    assert not list(tmp.iterdir()) and not (out / ".work").exists()


@pytest.mark.parametrize("damage", ["cut summary", "cut parquet", "changed parquet"])
def test_damaged_run_file_detected_and_rerun(tiny_scenario: Scenario, tmp_path: Path, damage: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_spec(tmp_path, spec_text(tiny_scenario, BASE_ONLY, controllers='["field"]'))
    spec = load_spec(path)
    out = tmp_path / "out"
    run_experiment(spec, out, workers=1, progress=False)
    rid = spec.runs()[0].run_id
    name = "summary.json" if damage == "cut summary" else "trips.parquet"
    victim = out / "runs" / rid / name
    data = victim.read_bytes()
    if damage == "changed parquet":  # same size, one byte changed in the middle
        data = data[: len(data) // 2] + bytes([data[len(data) // 2] ^ 0xFF]) + data[len(data) // 2 + 1:]
    else:
        data = data[: len(data) // 2]
    victim.write_bytes(data)

    assert rid not in finished_runs(out)
    with pytest.raises(WulinError, match=name):
        load_experiment(out)
    res = subprocess.run([*WULIN, "report", str(out)], capture_output=True, text=True)
    assert res.returncode == 2 and "Traceback" not in res.stderr and name in res.stderr

    calls: list[str] = []
    real = runner.execute_run
    monkeypatch.setattr(runner, "execute_run", lambda s, k, **kw: (calls.append(k.run_id), real(s, k, **kw))[1])
    run_experiment(spec, out, workers=1, progress=False)
    assert calls == [rid]  # only the damaged run ran again
    assert finished_runs(out) == {k.run_id for k in spec.runs()}
    kept = list((out / "damaged").iterdir())
    assert len(kept) == 1 and kept[0].name.startswith(rid)
    assert any(e["event"] == "damaged" and e["run_id"] == rid for e in read_history(out))
    _, runs = load_experiment(out)
    assert len(runs) == 2


@pytest.mark.parametrize("where", ["under a file", "system folder"])
def test_unwritable_out_one_error_before_any_work(tiny_scenario: Scenario, tmp_path: Path, where: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load_spec(write_spec(tmp_path, spec_text(tiny_scenario, BASE_ONLY, controllers='["field"]')))
    (tmp_path / "a-file").write_text("x")
    out = tmp_path / "a-file" / "out" if where == "under a file" else Path("/sys/wulin-test-out")

    def no_work(*a: object, **k: object) -> None:
        raise AssertionError("work started before the output folder was checked")

    monkeypatch.setattr(runner, "_warm_numba", no_work)
    monkeypatch.setattr(runner, "execute_run", no_work)
    with pytest.raises(WulinError, match="cannot write there"):
        run_experiment(spec, out, workers=1, progress=False)
    res = subprocess.run([*WULIN, "experiment", "run", str(tmp_path / "exp.toml"), "--out", str(out)],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "Traceback" not in res.stderr and "cannot write there" in res.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_results_folder_refused(tiny_results: Path, tiny_scenario: Scenario, tmp_path: Path) -> None:
    spec = load_spec(write_spec(tmp_path, spec_text(tiny_scenario, SHORT)))
    os.chmod(tiny_results, 0o555)
    try:
        with pytest.raises(WulinError, match="cannot write there"):
            run_experiment(spec, tiny_results, workers=1, progress=False)
    finally:
        os.chmod(tiny_results, 0o755)


def test_folder_unwritable_midway_keeps_finished_results(tiny_scenario: Scenario, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The folder turns read-only after the first run: one error, the second run saved elsewhere."""
    tmp = _private_tmp(tmp_path, monkeypatch)
    spec = load_spec(write_spec(tmp_path, spec_text(tiny_scenario, BASE_ONLY, controllers='["field"]')))
    out = tmp_path / "out"
    real = recorder.write_run

    def read_only_after_one(folder: Path, result: object) -> Path:
        if Path(folder) == out and finished_runs(out):
            raise PermissionError(13, "Permission denied", str(out / "runs"))
        return real(folder, result)  # type: ignore[arg-type]

    monkeypatch.setattr(recorder, "write_run", read_only_after_one)
    with pytest.raises(WulinError) as exc:
        run_experiment(spec, out, workers=1, progress=False)
    msg = str(exc.value)
    first, second = (k.run_id for k in spec.runs())
    assert f"{out}: cannot write the results any more (Permission denied" in msg
    assert f"1 of 2 runs are saved there; the finished run(s) {second} were saved to" in msg
    assert "run the same command again to resume" in msg
    assert finished_runs(out) == {first}
    rescued = [p for p in tmp.iterdir() if p.name.startswith("wulin-unsaved-tiny-")]
    assert len(rescued) == 1 and finished_runs(rescued[0]) == {second}
    assert read_history(out)[-1]["status"] == "unwritable"
    assert [p.name for p in tmp.iterdir()] == [rescued[0].name]  # nothing else left in temp


def test_damaged_folder_files_rebuilt_or_named(tiny_scenario: Scenario, tmp_path: Path) -> None:
    """Cut-short resolved.json, manifest.json and history line: rebuilt, named, or skipped."""
    spec = load_spec(write_spec(tmp_path, spec_text(tiny_scenario, BASE_ONLY, controllers='["field"]', seeds="[1]")))
    out = tmp_path / "out"
    run_experiment(spec, out, workers=1, progress=False)
    for name in ("resolved.json", "manifest.json"):
        (out / name).write_text((out / name).read_text()[:40])
    with open(out / "history.jsonl", "a") as f:
        f.write('{"event": "start", "ti')  # a line cut short by a kill
    with pytest.raises(WulinError, match="resolved.json: damaged"):
        load_experiment(out)
    res = subprocess.run([*WULIN, "report", str(out)], capture_output=True, text=True)
    assert res.returncode == 2 and "Traceback" not in res.stderr and "resolved.json" in res.stderr

    run_experiment(spec, out, workers=1, progress=False)  # same declaration: both rebuilt
    assert json.loads((out / "resolved.json").read_text())["name"] == "tiny"
    assert json.loads((out / "manifest.json").read_text())["seeds"] == [1]
    assert [e["event"] for e in read_history(out)] == ["start", "end", "start", "end"]
    # a different declaration never overwrites a damaged record of the old one
    (out / "resolved.json").write_text("{")
    other = load_spec(write_spec(tmp_path, spec_text(tiny_scenario, BASE_ONLY, controllers='["field"]',
                                                     seeds="[1, 2]"), "other.toml"))
    with pytest.raises(WulinError, match="resolved.json: damaged"):
        run_experiment(other, out, workers=1, progress=False)
    assert (out / "resolved.json").read_text() == "{"
