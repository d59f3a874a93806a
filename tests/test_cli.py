"""The wulin command: help, scenarios, simulate, and user errors without tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sim.scenario import Scenario

REPO = Path(__file__).resolve().parent.parent


def wulin(*args: str, timeout: float = 300, columns: int = 200
          ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wulin", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"COLUMNS": str(columns), "PATH": "/usr/bin:/bin"},
    )


def test_help_lists_commands() -> None:
    out = wulin("--help")
    assert out.returncode == 0
    for cmd in ("simulate", "scenarios", "plan"):
        assert cmd in out.stdout


def test_scenarios_lists_grid() -> None:
    out = wulin("scenarios")
    assert out.returncode == 0 and "grid-am-v1" in out.stdout and "07:00-08:00" in out.stdout


def test_scenarios_never_cut_an_id_in_80_columns() -> None:
    from sim.scenario import list_scenarios

    out = wulin("scenarios", columns=80)
    assert out.returncode == 0
    assert max(len(line) for line in out.stdout.splitlines()) <= 80
    cells = {part.strip() for line in out.stdout.splitlines() for part in line.split("│")}
    for sc in list_scenarios():
        assert sc.id in cells, f"{sc.id} is not shown whole:\n{out.stdout}"


def test_simulate_prints_kpi_table(tiny_scenario: Scenario) -> None:
    out = wulin("simulate", str(tiny_scenario.source), "--seed", "3")
    assert out.returncode == 0, out.stderr
    for needle in (
        "Mean travel time, all vehicles",
        "Mean time loss, all vehicles",
        "Mean time loss, finished trips",
        "Never inserted",
        "Teleports",
        "seed 3",
    ):
        assert needle in out.stdout
    # SUMO's own messages are summed up in one line, never printed one by one
    assert "SUMO: " in out.stdout and "Warning:" not in out.stdout + out.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("simulate", "no-such-v1"), "unknown scenario 'no-such-v1'"),
        (("simulate", "grid-am-v1", "--seed", "-2"), "--seed"),
        (("simulate", "grid-am-v1", "--backend", "sumo-rl"), "--backend"),
        (("simulate", "/tmp/missing-v1.toml"), "file not found"),
    ],
)
def test_user_errors_exit_2_without_traceback(args: tuple[str, ...], needle: str) -> None:
    out = wulin(*args)
    assert out.returncode == 2
    assert needle in out.stderr
    assert "Traceback" not in out.stderr + out.stdout



@pytest.mark.parametrize("args", [["simulate", "grid-am-v1"], ["plan", "webster", "grid-am-v1"]])
def test_unwritable_out_is_refused_before_any_work(args: list[str], tmp_path: Path) -> None:
    """--out under a file is one clear error before the run (issue 11: unwritable --out)."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = wulin(*args, "--out", str(blocker / "out"))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "--out" in out.stderr and "cannot write there" in out.stderr
    assert "mean" not in out.stdout  # refused before the simulation ran
