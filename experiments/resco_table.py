"""The RESCO table: our controllers' RESCO delay per map, beside the published figures.

Reads the runs of each map's experiment (``experiments.resco``), takes the mean and the 95 %
Student-t interval of ``resco_delay`` over the seeds, and writes a Markdown table with one row
per map.  A controller whose runs failed shows ``fails: <reason>`` (the first line of the
run's error); a map not run shows ``not run``.

The published figures (Fixed, MaxPressure, IDQN, IPPO, MPLight, FMA2C of Ault & Sharon 2021)
sit in :data:`PUBLISHED`.  The paper's table was not found in any text we could reach, so they
are read off the plot in the RESCO repository's README (``delays.png``, 1814 x 1416 pixels),
to about 5 %: the dashed lines (Fixed Time, Max Pressure), the learning curves' last plotted
episode (IDQN, MPLight; on ingolstadt1 the plot shows only the MPLight* variant) and the
markers at 1400 episodes (IPPO, FMA2C).  Every such cell is printed with "≈"; a figure the
plot does not show (off its axis, or not drawn) is ``None`` and printed "off plot".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from experiments.results import collect
from experiments.stats import mean_ci

PUBLISHED_COLUMNS = ("Fixed", "MaxPressure", "IDQN", "IPPO", "MPLight", "FMA2C")
# map -> column -> mean delay in seconds read off RESCO's delays.png (see the docstring);
# None: not on the plot
PUBLISHED: dict[str, dict[str, float | None]] = {
    "grid4x4": {"Fixed": None, "MaxPressure": 34, "IDQN": 34, "IPPO": 44, "MPLight": 48, "FMA2C": 100},
    "arterial4x4": {"Fixed": None, "MaxPressure": 820, "IDQN": 1350, "IPPO": 690, "MPLight": 1010,
                    "FMA2C": 650},
    "cologne1": {"Fixed": 57, "MaxPressure": 28, "IDQN": 27, "IPPO": 55, "MPLight": 28, "FMA2C": 28},
    "cologne3": {"Fixed": 47, "MaxPressure": 92, "IDQN": 40, "IPPO": 19, "MPLight": None, "FMA2C": 27},
    "cologne8": {"Fixed": 63, "MaxPressure": 22, "IDQN": 22, "IPPO": 22, "MPLight": None, "FMA2C": 33},
    "ingolstadt1": {"Fixed": 39, "MaxPressure": 28, "IDQN": 22, "IPPO": 20, "MPLight": 31.5, "FMA2C": 25},
    "ingolstadt7": {"Fixed": 91, "MaxPressure": 80, "IDQN": 40, "IPPO": 31, "MPLight": 97, "FMA2C": 49},
    "ingolstadt21": {"Fixed": 133, "MaxPressure": 76, "IDQN": 85, "IPPO": 67, "MPLight": None, "FMA2C": 91},
}
PUBLISHED_SOURCE = (
    "Ault & Sharon, Reinforcement Learning Benchmarks for Traffic Signal Control, NeurIPS 2021 "
    "Datasets & Benchmarks (openreview.net/forum?id=LqRSh6V0vR; github.com/Pi-Star-Lab/RESCO, "
    "README plot delays.png, read off to about 5 %)"
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
    figures = PUBLISHED.get(map_name)
    if figures is None:
        return "not found"
    value = figures.get(column)
    return "off plot" if value is None else f"≈{value:g}"


def markdown_table(results: Path, maps: Sequence[str], controllers: Sequence[str]) -> str:
    """The table: one row per map, our controllers then the published columns (one column
    saying "not found" if :data:`PUBLISHED` were empty)."""
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
