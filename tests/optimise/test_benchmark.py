"""The screen benchmark runs end to end on the grid (3 plans) and prints both figures."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_bench_optimise_prints_correlation_and_speed(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_optimise.py"), "--scenario",
                          "grid-am-v1", "--period", "AM=07:05-08:00", "--plans", "3", "--out", str(tmp_path)],
                         cwd=REPO, capture_output=True, text=True, timeout=1200,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert run.returncode == 0, run.stderr[-2000:]
    rho = re.search(r"Spearman rank correlation screen vs SUMO micro: (-?[\d.]+|nan)", run.stdout)
    speed = re.search(r"one SUMO micro run [\d.]+ s: (\d+)x faster", run.stdout)
    assert rho is not None and speed is not None, run.stdout
    assert rho.group(1) == "nan" or -1 <= float(rho.group(1)) <= 1
    assert int(speed.group(1)) > 0
