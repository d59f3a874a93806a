"""WorkerPool on trivial tasks (no SUMO): retries, recorded deaths, idle deaths, temp folders."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from experiments.pool import WorkerPool, describe_exit, sweep
from experiments.results import RunError, RunOutput
from experiments.spec import RunKey


def _task(shared: str, key: RunKey, work: Path) -> RunOutput | RunError:
    """Seed 1 always kills its worker; the others write a temp file and return."""
    (work / f"{key.seed}.tmp").write_text("x")
    if key.seed == 1:
        os._exit(3)
    return RunOutput(key, {"seed": key.seed, "shared": shared, "tmpdir": os.environ["TMPDIR"]})


def _keys(*seeds: int) -> list[RunKey]:
    return [RunKey("s", "base", "c", s) for s in seeds]


def test_dying_run_fails_after_three_attempts_others_done(tmp_path: Path) -> None:
    done: list[RunOutput | RunError] = []
    retries: list[tuple[int, int, str]] = []
    with WorkerPool(_task, "spec", workers=2, work_root=tmp_path / "work") as pool:
        pool.run(_keys(1, 2, 3), done.append, lambda k, n, why: retries.append((k.seed, n, why)))
    assert retries == [(1, 2, "exited with status 3"), (1, 3, "exited with status 3")]
    failed = [r for r in done if isinstance(r, RunError)]
    assert len(failed) == 1 and failed[0].key.seed == 1 and failed[0].attempts == 3
    assert "died on each of 3 attempts (last: exited with status 3)" in failed[0].message
    ok = sorted((r.key.seed, r.attempts, r.summary["shared"]) for r in done if isinstance(r, RunOutput))
    assert ok == [(2, 1, "spec"), (3, 1, "spec")]
    assert all(str(tmp_path / "work") in r.summary["tmpdir"] for r in done if isinstance(r, RunOutput))
    sweep(tmp_path / "work")
    assert not (tmp_path / "work").exists()  # every worker's folder went with it


def test_worker_dead_while_idle_costs_no_attempt(tmp_path: Path) -> None:
    done: list[RunOutput | RunError] = []
    with WorkerPool(_task, "spec", workers=1, work_root=tmp_path / "work") as pool:
        pool.run(_keys(2), done.append, lambda *a: None)
        (idle,) = pool._workers
        os.kill(idle.process.pid, signal.SIGKILL)
        idle.process.join(5)
        pool.run(_keys(3), done.append, lambda *a: None)
    assert [(r.key.seed, r.attempts) for r in done] == [(2, 1), (3, 1)]
    assert all(isinstance(r, RunOutput) for r in done)


def test_sweep_keeps_live_drivers_folders(tmp_path: Path) -> None:
    (tmp_path / f"{os.getppid()}-1").mkdir(parents=True)  # a live process: kept
    dead = 2**22 + 12345  # above the default pid_max: no such process
    (tmp_path / f"{dead}-7").mkdir()
    sweep(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{os.getppid()}-1"]
    assert describe_exit(-9) == "killed by SIGKILL" and describe_exit(1) == "exited with status 1"
