"""The one comparison path: compare and evaluate as in-memory experiments through the runner."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from experiments.compare import comparison_spec, run_comparison
from experiments.tables import COMPARE_KPIS, markdown_summary, rich_summary
from sim.errors import WulinError
from sim.kpi_registry import KPIS
from sim.scenario import Scenario

REPO = Path(__file__).resolve().parents[2]


def test_comparison_runs_through_the_runner(tiny_scenario: Scenario, tmp_path: Path) -> None:
    spec = comparison_spec(str(tiny_scenario.source), ["field", "max-pressure"], [1, 2])
    assert spec.name == "compare-tiny-test-v1" and spec.seeds == (1, 2)
    assert [v.name for v in spec.variations] == ["base"]
    out = tmp_path / "cmp"
    result = run_comparison(spec, out, workers=1, progress=False)
    assert result.folder == out and (out / "runs.parquet").is_file()
    assert (out / "experiment.toml").read_text() == spec.text  # reruns as a declared experiment
    assert list(result.runs["controller"]) == ["field", "field", "max-pressure", "max-pressure"]
    assert "flag" in result.runs.columns
    # every registered KPI is produced by a run (sim.kpi, the runner or the intersection KPIs)
    assert {k.column for k in KPIS if not k.declared_only} <= set(result.runs.columns)
    summ = result.summary.set_index("controller")
    for c in ("field", "max-pressure"):
        mine = result.runs[result.runs["controller"] == c]["mean_time_loss"]
        assert summ.loc[c, "mean_time_loss"] == pytest.approx(mine.mean())
        assert summ.loc[c, "n"] == 2 and summ.loc[c, "mean_time_loss_ci"] > 0
    # a temporary folder is removed afterwards
    again = run_comparison(spec, None, workers=1, progress=False)
    assert again.folder is None
    assert again.runs["mean_time_loss"].tolist() == result.runs["mean_time_loss"].tolist()


def test_comparison_bad_input() -> None:
    with pytest.raises(WulinError, match="unknown controller 'nope'"):
        comparison_spec("grid-am-v1", ["field", "nope"], [1])
    with pytest.raises(WulinError, match="controller"):
        comparison_spec("grid-am-v1", [], [1])
    with pytest.raises(WulinError, match="seed"):
        comparison_spec("grid-am-v1", ["field"], [])


def _summary() -> pd.DataFrame:
    return pd.DataFrame({
        "controller": ["calm", "jammed"], "n": [3, 3], "flagged": [0, 1],
        "flag": ["", "seed 2: 4 teleports"],
        "mean_time_loss": [30.0, 90.0], "mean_time_loss_ci": [1.5, float("nan")],
        "teleports": [0.0, 1.3], "teleports_ci": [0.0, 2.0],
    })


def test_tables_mark_flagged_rows() -> None:
    from rich.console import Console

    table = rich_summary(_summary(), COMPARE_KPIS, "t")
    assert [str(r.style) for r in table.rows] == ["None", "red"]
    console = Console(width=80, record=True)
    console.print(table)
    text = console.export_text()
    assert "jammed" in text and "seed 2: 4 teleports" in text and "30.0" in text
    md = markdown_summary(_summary(), COMPARE_KPIS)
    assert md[2].startswith("| calm | 30.0 ± 1.5 | 0 ± 0 |")
    assert md[3] == "| jammed ⚑ | 90.0 | 1 ± 2 | seed 2: 4 teleports |"


@pytest.mark.slow
def test_cli_compare_on_a_scenario_file(tiny_scenario: Scenario, tmp_path: Path) -> None:
    md = tmp_path / "t.md"
    res = subprocess.run(
        [sys.executable, "-m", "wulin", "compare", str(tiny_scenario.source), "--controllers",
         "field,max-pressure", "--seeds", "2", "--workers", "1", "--markdown", str(md)],
        capture_output=True, text=True, cwd=tmp_path, env={"COLUMNS": "80", "PATH": "",
                                                           "PYTHONPATH": str(REPO)})
    assert res.returncode == 0, res.stderr
    assert "mean ± 95 % CI over seeds" in res.stdout and "max-pressure" in res.stdout
    text = md.read_text()
    assert "`wulin compare tiny-test-v1 --seeds 2`" in text
    assert "| Mean time loss, all vehicles (s) |" in text.splitlines()[2]
