"""Experiments warn about plans that fail the engineering checks (issue 11 item 8)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from controllers.plan import PlanStage, TimingPlan
from experiments.plan_checks import plan_warnings
from experiments.spec import load_spec

REPO = Path(__file__).resolve().parents[2]


def _plan(states: tuple[str, ...], yellow: float) -> TimingPlan:
    stages = tuple(PlanStage(f"stage {k}", s, 40, min_green=10, walk=7, ped_clearance=3)
                   for k, s in enumerate(states))
    return TimingPlan("B1", 90, 0, stages, yellow=yellow, all_red=2, name="probe", source="test")


def _spec(tmp_path: Path, plan: TimingPlan, how: str) -> Path:
    (tmp_path / "plans.json").write_text(plan.to_json())
    body = ('[[variations]]\nname = "p"\nplan = "plans.json"\n' if how == "variation"
            else '[controller_params.fixed-time]\nplans = "plans.json"\n')
    text = (f'name = "probe"\nscenarios = ["grid-am-v1"]\ncontrollers = ["fixed-time"]\nseeds = [1]\n{body}')
    path = tmp_path / "exp.toml"
    path.write_text(text)
    return path


def test_a_conflicting_plan_with_a_short_yellow_is_reported(tmp_path: Path) -> None:
    bad = _plan(("GGGGGGGGGGGGGGGG", "rrrrGGGgrrrrGGGg"), yellow=1)
    for how in ("variation", "controller"):
        warnings = plan_warnings(load_spec(_spec(tmp_path, bad, how)))
        assert any("conflict" in w for w in warnings), warnings
        assert any("yellow 1 s" in w for w in warnings), warnings
        assert all("signal B1 on grid.net.xml" in w for w in warnings)


def test_a_valid_plan_gives_no_warning(tmp_path: Path) -> None:
    good = _plan(("GGGgrrrrGGGgrrrr", "rrrrGGGgrrrrGGGg"), yellow=3)
    assert plan_warnings(load_spec(_spec(tmp_path, good, "variation"))) == []


def test_experiment_validate_prints_the_warning(tmp_path: Path) -> None:
    path = _spec(tmp_path, _plan(("GGGGGGGGGGGGGGGG", "rrrrGGGgrrrrGGGg"), yellow=1), "variation")
    out = subprocess.run([sys.executable, "-m", "wulin", "experiment", "validate", str(path)], cwd=REPO,
                         capture_output=True, text=True, timeout=120, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert "warning: plan fails the engineering checks" in out.stdout and "conflict" in out.stdout
