"""Console tables fit an 80-column terminal: headers whole, wide tables turned on their side."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from wulin.console_tables import fit_table, fits, transposed

HEADERS = ["controller", "n", "travel s", "loss s", "delay s/veh", "q95 veh", "veh/h", "telep.",
           "CO2 kg", "loss vs field"]


def _kpi_table() -> Table:
    t = Table(title="wulin-am-peak-v1 · base (mean ± 95 % CI over seeds)")
    for h in HEADERS:
        t.add_column(h)
    for name in ("field", "actuated", "max-pressure"):
        t.add_row(name, "3", "104.2 ± 12.3", "61.0 ± 9.8", "31.2 ± 4.4", "18.0 ± 2.1",
                  "4,712 ± 23", "2.0 ± 1.1", "512.3 ± 3.0", "-12 %*")
    return t


def _render(table: Table, width: int) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(table)
    return console.export_text()


def test_a_wide_kpi_table_is_transposed_at_80_columns_with_nothing_cut() -> None:
    table = _kpi_table()
    assert not fits(table, 80)
    text = _render(fit_table(table, 80), 80)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    for word in [*HEADERS, "max-pressure", "104.2 ± 12.3"]:
        assert word in text


def test_a_table_that_fits_is_left_alone() -> None:
    table = _kpi_table()
    assert fit_table(table, 200) is table
    assert "…" not in _render(table, 200)


def test_transposed_swaps_rows_and_columns() -> None:
    t = transposed(_kpi_table())
    assert [c.header for c in t.columns] == ["controller", "field", "actuated", "max-pressure"]
    assert [next(iter(c.cells)) for c in t.columns] == ["n", "3", "3", "3"]
    assert t.row_count == len(HEADERS) - 1


def test_too_wide_either_way_is_split_into_column_groups() -> None:
    """Many rows and many columns: neither way fits; groups of columns, nothing cut."""
    table = _kpi_table()
    for k in range(4):
        table.add_row(f"policy-{k}", "3", *(["1.0 ± 0.1"] * 7), "-1 %")
    text = _render(fit_table(table, 80), 80)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    assert all(f"policy-{k}" in text for k in range(4))
