"""The controller benchmark runs (decision timing only, few calls): its kernel calls stay in step
with the kernels' signatures."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import REPO


def test_bench_controllers_decision_timing_runs() -> None:
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_controllers.py"),
                          "--episodes", "", "--calls", "20"],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    for name in ("max-pressure", "sotl"):
        row = re.search(rf"^{name}\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)x\s+([\d.]+)x$",
                        run.stdout, re.M)
        assert row is not None, run.stdout
        assert all(float(v) > 0 for v in row.groups())
