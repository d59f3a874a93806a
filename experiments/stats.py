"""Statistics over seeds: means with 95 % confidence intervals and paired differences.

Runs of the same scenario and variation with the same seed see the same demand (SUMO draws
departures from the seed), so two controllers are compared *paired by seed*: the difference
per seed removes the seed-to-seed variation that both share, and the test is a paired t-test
(``scipy.stats.ttest_rel``) or, when declared, the Wilcoxon signed-rank test (no normality
assumption, but with 5 seeds its smallest two-sided p-value is 0.0625).

The KPIs, their directions and the run flag come from :mod:`sim.kpi_registry`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from sim.kpi_registry import FLAG_COLUMN, KPI_BY_COLUMN, KPIS, Kpi, run_flag

__all__ = ["KPIS", "KPI_BY_COLUMN", "Kpi", "add_flags", "mean_ci", "paired_differences",
           "paired_test", "summary_table"]


def add_flags(runs: pd.DataFrame) -> pd.DataFrame:
    """The per-run table with its ``flag`` column (:func:`sim.kpi_registry.run_flag`).

    Runs written with a flag keep it; older ones get it computed from their KPIs.
    """
    old = runs[FLAG_COLUMN] if FLAG_COLUMN in runs.columns else pd.Series([None] * len(runs))
    flags = [f if isinstance(f, str) else run_flag(r)
             for f, r in zip(old, runs.to_dict("records"), strict=True)]
    return runs.assign(**{FLAG_COLUMN: flags})


def mean_ci(values: Sequence[float] | np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of its Student-t confidence interval (NaN width for one value)."""
    from scipy import stats

    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return math.nan, math.nan
    m = float(x.mean())
    if n < 2:
        return m, math.nan
    sd = float(x.std(ddof=1))
    return m, float(stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n))


def paired_test(a: Sequence[float], b: Sequence[float], test: str = "t-test") -> float:
    """Two-sided p-value that the paired differences ``a - b`` have zero mean (median).

    Returns 1.0 when every difference is zero, NaN with fewer than two pairs.
    """
    from scipy import stats

    x, y = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 2:
        return math.nan
    d = x - y
    if np.allclose(d, 0.0):
        return 1.0
    if test == "wilcoxon":
        return float(stats.wilcoxon(x, y).pvalue)
    if np.allclose(d, d[0]):  # constant non-zero difference: t is infinite
        return 0.0
    return float(stats.ttest_rel(x, y).pvalue)


def summary_table(runs: pd.DataFrame, kpis: Sequence[str] | None = None,
                  by: Sequence[str] = ("scenario", "variation", "controller")) -> pd.DataFrame:
    """Per group: number of seeds, flagged runs, and each KPI's mean and 95 % CI half-width.

    Columns: ``by`` + ``n`` + ``flagged`` (runs whose figures should not rank controllers,
    see :func:`sim.kpi_registry.run_flag`) + ``flag`` (their reasons, ``seed N: ...``) +
    ``<kpi>`` + ``<kpi>_ci`` for each KPI.
    """
    kpis = [k for k in (kpis or [k.column for k in KPIS]) if k in runs.columns]
    runs = add_flags(runs)
    rows = []
    for keys, g in runs.groupby(list(by), sort=False):
        row = dict(zip(by, keys if isinstance(keys, tuple) else (keys,), strict=True))
        row["n"] = len(g)
        flags = [(seed, f) for seed, f in zip(g.get("seed", range(len(g))), g.get(FLAG_COLUMN, []),
                                              strict=False) if isinstance(f, str) and f]
        row["flagged"] = len(flags)
        row[FLAG_COLUMN] = "; ".join(f"seed {seed}: {f}" for seed, f in flags)
        for k in kpis:
            row[k], row[f"{k}_ci"] = mean_ci(g[k].to_numpy())
        rows.append(row)
    return pd.DataFrame(rows)


def paired_differences(runs: pd.DataFrame, *, against: str, value: str, kpis: Sequence[str] | None = None,
                       test: str = "t-test", level: float = 0.95) -> pd.DataFrame:
    """Paired differences of every group against a reference, matched by seed.

    Args:
        runs: The per-run table (scenario, variation, controller, seed, KPIs).
        against: The column that varies: ``"controller"`` (against a baseline controller) or
            ``"variation"`` (what-if against a reference variation).
        value: The reference value of that column.
        kpis: KPI columns (default: all known ones present).
        test: ``"t-test"`` or ``"wilcoxon"``.
        level: Confidence level of the interval.

    Returns:
        One row per (other keys, compared value, KPI): ``n`` pairs, ``reference`` and ``value``
        means, ``diff`` (value - reference), ``diff_ci``, ``pct`` change and ``p`` value.
    """
    kpis = [k for k in (kpis or [k.column for k in KPIS]) if k in runs.columns]
    others = [c for c in ("scenario", "variation", "controller") if c != against]
    rows = []
    for keys, g in runs.groupby(others, sort=False):
        ref = g[g[against] == value].set_index("seed")
        if ref.empty:
            continue
        for other, h in g[g[against] != value].groupby(against, sort=False):
            h = h.set_index("seed")
            seeds = sorted(set(ref.index) & set(h.index))
            if not seeds:
                continue
            for k in kpis:
                a = h.loc[seeds, k].to_numpy(float)
                b = ref.loc[seeds, k].to_numpy(float)
                d_mean, d_ci = mean_ci(a - b, level)
                b_mean = float(np.nanmean(b)) if len(b) else math.nan
                rows.append({
                    **dict(zip(others, keys, strict=True)), against: other, "reference": value,
                    "kpi": k, "n": len(seeds), "reference_mean": b_mean,
                    "value_mean": float(np.nanmean(a)), "diff": d_mean, "diff_ci": d_ci,
                    "pct": 100.0 * d_mean / b_mean if b_mean else math.nan,
                    "p": paired_test(a, b, test),
                })
    columns = [*others, against, "reference", "kpi", "n", "reference_mean", "value_mean", "diff",
               "diff_ci", "pct", "p"]
    return pd.DataFrame(rows, columns=columns)
