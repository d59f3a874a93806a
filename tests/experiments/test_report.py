"""The HTML report renders with its tables and figures, self-contained."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.report import build_report
from sim.errors import WulinError


def test_report_sections_tables_and_figures(tiny_results: Path, tmp_path: Path) -> None:
    path = build_report(tiny_results, tmp_path / "r.html")
    text = path.read_text()
    for heading in ("Summary", "Comparison charts", "Paired differences against field",
                    "What-if effects against base", "Intersections", "Events applied"):
        assert heading in text, heading
    # one summary table per variation, the paired table, a per-intersection table per variation
    assert text.count("<table>") >= 2 + 1 + 1 + 2
    for signal in ("A0", "A1", "B0", "B1"):
        assert f"<td class=l>{signal}</td>" in text
    assert "max-pressure" in text and "p = " in text
    # figures: bar charts, then a map and a delay-over-time chart per variation, all inline PNG
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(images) == 1 + 2 * 2
    assert all(base64.b64decode(img)[:8] == b"\x89PNG\r\n\x1a\n" for img in images)
    assert "http://" not in text and "https://" not in text  # nothing to fetch


def test_report_on_a_folder_without_results(tmp_path: Path) -> None:
    with pytest.raises(WulinError, match="not an experiment folder"):
        build_report(tmp_path)


@pytest.mark.slow
def test_cli_report_prints_summary(tiny_results: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.html"
    res = subprocess.run([sys.executable, "-m", "wulin", "report", str(tiny_results), "--out", str(out)],
                         capture_output=True, text=True, env={"COLUMNS": "160", "PATH": ""})
    assert res.returncode == 0, res.stderr
    assert "tiny-test-v1 · closed" in res.stdout and "max-pressure" in res.stdout
    assert out.is_file() and "report:" in res.stdout


def test_report_marks_flagged_runs_red(tiny_results: Path, tmp_path: Path) -> None:
    import json
    import shutil

    folder = tmp_path / "exp"
    shutil.copytree(tiny_results, folder)
    runs = sorted(p for p in (folder / "runs").iterdir() if p.is_dir())
    for run in runs:  # every run clean but one, which teleported twice
        doc = json.loads((run / "summary.json").read_text())
        doc["kpis"].update(teleports=0.0, never_inserted=0.0, unfinished_share=1.0, flag="")
        if run == runs[0]:
            doc["kpis"].update(teleports=2.0, flag="2 teleports")
        (run / "summary.json").write_text(json.dumps(doc))
    text = build_report(folder, tmp_path / "r.html").read_text()
    seed = json.loads((runs[0] / "summary.json").read_text())["key"]["seed"]
    assert text.count("<tr class=flagged>") == 1
    assert f"seed {seed}: 2 teleports" in text
    assert "Flagged (red)" in text and "never inserted" in text
