"""The RESCO table: our controllers' RESCO delay per map, beside the published figures.

Reads the runs of each map's experiment (``experiments.resco``), takes the mean and the 95 %
Student-t interval of ``resco_delay`` over the seeds, and writes a Markdown table with one row
per map.  A controller whose runs failed shows ``fails: <reason>`` (the first line of the
run's error); a map not run shows ``not run``.

The published figures (Fixed, MaxPressure, IDQN, IPPO, MPLight, FMA2C of Ault & Sharon 2021)
sit in :data:`PUBLISHED`.  The RESCO repository's README gives them only as a plot
(``delays.png``), and the paper's table was not found in any text we could search, so the
mapping is empty and every published cell reads "not found": no number is invented.  Fill a
cell only with a figure read from the paper, and say where in ``PUBLISHED_SOURCE``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from experiments.results import collect
from experiments.stats import mean_ci

PUBLISHED_COLUMNS = ("Fixed", "MaxPressure", "IDQN", "IPPO", "MPLight", "FMA2C")
# map -> column -> mean delay in seconds, as printed in the paper; empty: see the docstring
PUBLISHED: dict[str, dict[str, float]] = {}
PUBLISHED_SOURCE = (
    "Ault & Sharon, Reinforcement Learning Benchmarks for Traffic Signal Control, NeurIPS 2021 "
    "Datasets & Benchmarks (openreview.net/forum?id=LqRSh6V0vR; github.com/Pi-Star-Lab/RESCO, "
    "README plot delays.png)"
)


def _errors(exp_dir: Path) -> dict[str, str]:
    """controller -> last line of a failed run's error (``runs/<run_id>.error.txt``)."""
    out: dict[str, str] = {}
    for err in sorted((exp_dir / "runs").glob("*.error.txt")):
        controller = err.name.removesuffix(".error.txt").split("--")[2]
        text = err.read_text(errors="replace").strip()
        out.setdefault(controller, text.splitlines()[-1][:120] if text else "error")
    return out


def _cell(values: Sequence[float]) -> str:
    m, half = mean_ci(values)
    if math.isnan(m):
        return "—"
    return f"{m:.1f}" if math.isnan(half) else f"{m:.1f} ± {half:.1f}"


def map_cells(exp_dir: Path, controllers: Sequence[str]) -> dict[str, str]:
    """controller -> ``mean ± CI`` of RESCO delay (s/veh) over the seeds of one map."""
    if not (exp_dir / "runs").is_dir():
        return {c: "not run" for c in controllers}
    try:
        runs = collect(exp_dir)
    except Exception:  # noqa: BLE001 - no finished run yet reads as "not run"
        runs = pd.DataFrame(columns=["controller", "resco_delay"])
    if "controller" not in runs.columns:  # no finished run yet
        runs = pd.DataFrame(columns=["controller", "resco_delay"])
    errors = _errors(exp_dir)
    cells: dict[str, str] = {}
    for c in controllers:
        values = runs.loc[runs["controller"] == c, "resco_delay"].tolist()
        if values:
            seeds = len(values)
            cells[c] = _cell(values) + ("" if seeds >= 3 else f" ({seeds} seed{'s' * (seeds > 1)})")
        else:
            cells[c] = f"fails: {errors[c]}" if c in errors else "not run"
    return cells


def published_cell(map_name: str, column: str) -> str:
    value = PUBLISHED.get(map_name, {}).get(column)
    return "not found" if value is None else f"{value:g}"


def markdown_table(results: Path, maps: Sequence[str], controllers: Sequence[str]) -> str:
    """The table: one row per map, our controllers then the published columns (one column
    saying "not found" while :data:`PUBLISHED` is empty)."""
    published = PUBLISHED_COLUMNS if PUBLISHED else ()
    head = ["map", *controllers, *(f"{c} (pub.)" for c in published)]
    if not published:
        head.append("published " + "/".join(PUBLISHED_COLUMNS))
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in maps:
        cells = map_cells(results / f"resco-{name}", controllers)
        pub = [published_cell(name, c) for c in published] or ["not found"]
        lines.append("| " + " | ".join([name, *(cells[c] for c in controllers), *pub]) + " |")
    return "\n".join(lines) + "\n"
