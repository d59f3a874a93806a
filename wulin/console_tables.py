"""Tables that fit the terminal: wide ones are turned on their side instead of being cut.

Rich squeezes a table that is too wide for the terminal until its headers end in "…"
(``cont…``, ``trav…``).  :func:`fit_table` keeps a table that fits (headers may wrap between
words) and otherwise transposes it: one row per column and one column per row, which is
narrow when a table has many KPI columns and few rows (controllers).
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def min_width(table: Table) -> int:
    """The fewest terminal columns that show every word of every cell (headers included) whole."""
    return Console(width=100_000).measure(table).minimum  # rich clamps to the console's width


def fits(table: Table, width: int) -> bool:
    """Whether ``table`` fits ``width`` columns with every word of every cell whole."""
    return min_width(table) <= width


def transposed(table: Table) -> Table:
    """``table`` with rows and columns swapped (title, caption and header style kept).

    The first column's cells become the headers; every other column becomes a row that
    starts with its header.
    """
    columns = table.columns
    out = Table(title=table.title, caption=table.caption, header_style=table.header_style,
                show_lines=False)
    out.add_column(str(columns[0].header) if columns else "")
    for cell in (columns[0].cells if columns else []):
        out.add_column(cell if isinstance(cell, str) else str(cell), justify="right")
    for col in columns[1:]:
        out.add_row(col.header, *col.cells)
    return out


def fit_table(table: Table, width: int) -> Table:
    """``table`` if it fits ``width`` columns, else :func:`transposed` (if that fits better)."""
    if fits(table, width) or not table.columns:
        return table
    turned = transposed(table)
    return turned if min_width(turned) < min_width(table) else table
