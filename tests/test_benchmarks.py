"""The controller benchmark runs (decision timing only, few calls): its kernel calls stay in step
with the kernels' signatures."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import REPO


def test_bench_controllers_decision_timing_runs() -> None:
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_controllers.py"),
                          "--episodes", "", "--calls", "20"],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    for name in ("max-pressure", "sotl", "schedule-driven"):
        row = re.search(rf"^{name}\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)x\s+([\d.]+)x$",
                        run.stdout, re.M)
        assert row is not None, run.stdout
        assert all(float(v) > 0 for v in row.groups())


@pytest.mark.slow
def test_bench_scale_runs_on_a_small_grid() -> None:
    """The scale benchmark generates its grid, runs its four measurements and prints ratios;
    its temporary folder is gone afterwards."""
    import tempfile
    from pathlib import Path

    before = set(Path(tempfile.gettempdir()).glob("wulin-bench-scale-*"))
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_scale.py"), "--grid", "3",
                          "--seconds", "300", "--period", "3", "--repeat", "1"],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "9 signals" in run.stdout
    for label in ("max-pressure / raw SUMO", "PettingZoo env / raw replay"):
        row = re.search(rf"{label}.*CPU\s+([\d.]+)\s+wall\s+([\d.]+)", run.stdout)
        assert row is not None, run.stdout
        assert all(float(v) > 0 for v in row.groups())
    assert set(Path(tempfile.gettempdir()).glob("wulin-bench-scale-*")) == before


def test_bench_cosim_prints_round_percentiles_and_the_real_time_factor() -> None:
    """The co-simulation benchmark on two minutes of the grid: its figures come out of one run."""
    pytest.importorskip("libsumo")
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_cosim.py"), "--scenario", "grid-am-v1",
                          "--until", "07:02", "--snmp", "2c"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert re.search(r"^round \(poll \+ commands\), wall\s+n=\s+120\s+median\s+[\d.]+", run.stdout, re.M), run.stdout
    assert re.search(r"real-time factor: [\d.]+x wall", run.stdout) and "9 devices" in run.stdout
    assert "0 unsafe states" in run.stdout
