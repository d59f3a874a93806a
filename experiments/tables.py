"""Summary tables for the terminal (rich) and for Markdown, from the KPI registry.

Each cell is the mean over seeds ± the half-width of its 95 % confidence interval, formatted
as the registry says; a row holding flagged runs (:func:`sim.kpi_registry.run_flag`) is red
in the terminal and marked in Markdown, with its reasons in a last column.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from sim.kpi_registry import KPI_BY_COLUMN

# what `wulin compare` and `wulin evaluate` print: headline first, then the honesty columns
COMPARE_KPIS: tuple[str, ...] = ("mean_travel_time", "mean_time_loss", "resco_delay",
                                 "mean_time_loss_finished", "unfinished_share", "teleports")


def cell(row: Any, column: str, sep: str = " ") -> str:
    """``mean ± ci`` of one KPI in a summary row (``sep`` before the ±), ``-`` when missing."""
    k = KPI_BY_COLUMN[column]
    value = float(row[column])
    if not math.isfinite(value):
        return "-"
    ci = float(row.get(f"{column}_ci", math.nan))
    return k.format(value) + (f"{sep}± {k.format(ci)}" if math.isfinite(ci) else "")


def _flag(row: Any) -> str:
    flag = row.get("flag", "")
    return flag if isinstance(flag, str) else ""


def rich_summary(summary: pd.DataFrame, columns: Sequence[str], title: str,
                 label: str = "controller") -> Any:
    """A ``rich`` table: one row per ``label`` value, flagged rows in red."""
    from rich import box
    from rich.table import Table

    cols = [c for c in columns if c in summary.columns]
    # light borders, short headers, the interval under the mean: the table fits an 80-column
    # terminal and names never wrap
    table = Table(title=title, header_style="bold", box=box.SIMPLE_HEAD)
    table.add_column(label, no_wrap=True)
    show_n = summary["n"].nunique() > 1
    if show_n:
        table.add_column("n", justify="right")
    for c in cols:
        table.add_column(KPI_BY_COLUMN[c].short or KPI_BY_COLUMN[c].header, justify="right")
    table.caption = "; ".join(f"{KPI_BY_COLUMN[c].short}: {KPI_BY_COLUMN[c].header}"
                              for c in cols if KPI_BY_COLUMN[c].short)
    flagged = any(_flag(r) for _, r in summary.iterrows())
    if flagged:
        table.add_column("flag")
    for _, r in summary.iterrows():
        cells = [str(r[label]), *([str(int(r["n"]))] if show_n else []), *(cell(r, c, "\n") for c in cols)]
        if flagged:
            cells.append(_flag(r))
        table.add_row(*cells, style="red" if _flag(r) else None)
    return table


def markdown_summary(summary: pd.DataFrame, columns: Sequence[str],
                     label: str = "controller") -> list[str]:
    """Markdown table lines; a flagged row's name ends with ``⚑`` and its reasons follow."""
    cols = [c for c in columns if c in summary.columns]
    flagged = any(_flag(r) for _, r in summary.iterrows())
    head = [label, *(KPI_BY_COLUMN[c].header for c in cols)] + (["flag"] if flagged else [])
    lines = ["| " + " | ".join(head) + " |",
             "|---|" + "---:|" * len(cols) + ("---|" if flagged else "")]
    for _, r in summary.iterrows():
        name = str(r[label]) + (" ⚑" if _flag(r) else "")
        cells = [name, *(cell(r, c) for c in cols)] + ([_flag(r)] if flagged else [])
        lines.append("| " + " | ".join(cells) + " |")
    return lines
