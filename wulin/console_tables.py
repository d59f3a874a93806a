"""Tables that fit the terminal: wide ones are turned on their side instead of being cut.

Rich squeezes a table that is too wide for the terminal until its headers end in "…"
(``cont…``, ``trav…``).  :func:`fit_table` keeps a table that fits (headers may wrap between
words) and otherwise transposes it: one row per column and one column per row, which is
narrow when a table has many KPI columns and few rows (controllers); a table too wide either
way is split into groups of columns.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.console import Console, Group, RenderableType
from rich.table import Column, Table
from rich.text import Text


def _longest_word(cell: object) -> int:
    plain = Text.from_markup(cell).plain if isinstance(cell, str) else str(cell)
    return max((cell_len(w) for w in plain.split()), default=0)


def _column_minimums(table: Table) -> list[int]:
    pad = table.padding[1] + table.padding[3] if len(table.padding) == 4 else 2
    return [max([_longest_word(c.header), *(_longest_word(x) for x in c.cells)]) + pad
            for c in table.columns]


def min_width(table: Table) -> int:
    """The fewest terminal columns that show every word of every cell (headers included) whole.

    Counted here rather than with rich's own measurement, whose minimum lets a long first
    word ("controller", "max-pressure") end in "…".
    """
    widths = _column_minimums(table)
    return sum(widths) + len(widths) + 1  # a border left of every column and one at the end


def natural_width(table: Table) -> int:
    """Terminal columns the table takes with no cell wrapped."""
    return Console(width=100_000).measure(table).maximum


def fits(table: Table, width: int) -> bool:
    """Whether ``table`` shows in ``width`` columns with no cell wrapped."""
    return natural_width(table) <= width


def transposed(table: Table) -> Table:
    """``table`` with rows and columns swapped (title, caption and header style kept).

    The first column's cells become the headers; every other column becomes a row that
    starts with its header.
    """
    columns = table.columns
    out = Table(title=table.title, caption=table.caption, header_style=table.header_style)
    out.add_column(str(columns[0].header) if columns else "")
    for cell in (columns[0].cells if columns else []):
        out.add_column(cell if isinstance(cell, str) else str(cell), justify="right")
    for col in columns[1:]:
        out.add_row(col.header, *col.cells)
    return out


def column_groups(table: Table, width: int) -> list[Table]:
    """``table`` cut into several tables, one under the other: each repeats the first column
    and takes as many of the others, in order, as fit ``width`` unwrapped (at least one)."""
    first, rest = table.columns[0], table.columns[1:]
    groups: list[list[Column]] = [[]]
    for col in rest:
        trial = _subtable(table, first, [*groups[-1], col], title=False)
        if groups[-1] and not fits(trial, width):
            groups.append([])
        groups[-1].append(col)
    return [_subtable(table, first, cols, title=i == 0) for i, cols in enumerate(groups)]


def _subtable(table: Table, first: Column, cols: list[Column], title: bool) -> Table:
    out = Table(title=table.title if title else None, header_style=table.header_style)
    for col in (first, *cols):
        out.add_column(col.header, justify=col.justify)
    for row in zip(first.cells, *(c.cells for c in cols), strict=True):
        out.add_row(*row)
    return out


def fit_table(table: Table, width: int) -> RenderableType:
    """``table`` shown in ``width`` columns with no word cut.

    ``table`` itself if it fits unwrapped; else :func:`transposed` if that fits; else the
    narrower of the two split into :func:`column_groups` (the caption once, at the end).
    """
    if not table.columns or fits(table, width):
        return table
    turned = transposed(table)
    if fits(turned, width):
        return turned
    best = turned if natural_width(turned) < natural_width(table) else table
    parts: list[RenderableType] = list(column_groups(best, width))
    if table.caption:
        parts.append(Text(str(table.caption), style="dim"))
    return Group(*parts)
