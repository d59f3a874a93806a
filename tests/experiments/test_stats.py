"""Statistics on inputs with known answers."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from experiments.kpis import los
from experiments.stats import mean_ci, paired_differences, paired_test, summary_table


def test_mean_ci_known_values() -> None:
    # mean 2, sd 1, n 3: half-width = t(0.975, 2) / sqrt(3) = 4.302653 / 1.732051
    m, h = mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0
    assert h == pytest.approx(2.484138, abs=1e-5)
    m, h = mean_ci([5.0])
    assert m == 5.0 and math.isnan(h)
    assert mean_ci([4.0, 4.0, 4.0]) == (4.0, 0.0)


def test_paired_t_test_known_p() -> None:
    # differences 1, 2, 3, 4: t = 2.5 / (1.290994 / 2) = 3.872983 with 3 df -> p = 0.030466
    base = [10.0, 20.0, 30.0, 40.0]
    other = [11.0, 22.0, 33.0, 44.0]
    assert paired_test(other, base) == pytest.approx(0.030466, abs=1e-5)
    assert paired_test(base, base) == 1.0
    assert paired_test([1.0], [2.0]) != paired_test([1.0], [2.0])  # NaN with one pair


def test_wilcoxon_exact_minimum() -> None:
    # five pairs all in the same direction: exact two-sided p = 2 / 2**5
    assert paired_test([2, 3, 4, 5, 7], [1, 1, 1, 1, 1], "wilcoxon") == pytest.approx(0.0625)


def test_los_thresholds() -> None:
    assert [los(d) for d in (5, 10, 10.1, 20, 35, 55, 80, 80.1)] == list("AABBCDEF")
    assert los(float("nan")) == "-"


def _runs() -> pd.DataFrame:
    rows = []
    for seed, base in zip((1, 2, 3, 4), (10.0, 20.0, 30.0, 40.0), strict=True):
        rows.append({"scenario": "s", "variation": "v", "controller": "field", "seed": seed,
                     "mean_time_loss": base})
        rows.append({"scenario": "s", "variation": "v", "controller": "mp", "seed": seed,
                     "mean_time_loss": base + seed})
    return pd.DataFrame(rows)


def test_summary_and_paired_differences() -> None:
    runs = _runs()
    summ = summary_table(runs, ["mean_time_loss"])
    field = summ[summ["controller"] == "field"].iloc[0]
    assert field["n"] == 4 and field["mean_time_loss"] == 25.0
    diff = paired_differences(runs, against="controller", value="field", kpis=["mean_time_loss"])
    assert len(diff) == 1
    r = diff.iloc[0]
    assert r["controller"] == "mp" and r["n"] == 4
    assert r["diff"] == 2.5 and r["pct"] == pytest.approx(10.0)
    assert r["p"] == pytest.approx(0.030466, abs=1e-5)
    # pairing is by seed: shuffling the rows changes nothing
    shuffled = paired_differences(runs.sample(frac=1.0, random_state=3), against="controller",
                                  value="field", kpis=["mean_time_loss"])
    assert shuffled.iloc[0]["diff"] == 2.5


def test_paired_differences_only_common_seeds() -> None:
    runs = _runs()
    runs = runs[~((runs["controller"] == "mp") & (runs["seed"] == 4))]
    r = paired_differences(runs, against="controller", value="field", kpis=["mean_time_loss"]).iloc[0]
    assert r["n"] == 3 and r["diff"] == 2.0


def test_summary_by_controller_ci_and_flags() -> None:
    """The statistic compare and evaluate print: mean ± t half-width; flagged runs named."""
    from scipy import stats

    runs = pd.DataFrame({"controller": ["a", "a", "a", "b"], "seed": [1, 2, 3, 1],
                         "mean_time_loss": [10.0, 12.0, 14.0, 5.0],
                         "trips": [100.0] * 4, "never_inserted": [0.0, 0.0, 0.0, 5.0],
                         "unfinished_share": [5.0] * 4, "teleports": [0.0, 2.0, 0.0, 0.0]})
    t = summary_table(runs, ["mean_time_loss"], by=("controller",)).set_index("controller")
    assert t.loc["a", "mean_time_loss"] == 12.0
    assert t.loc["a", "mean_time_loss_ci"] == pytest.approx(stats.t.ppf(0.975, 2) * 2.0 / math.sqrt(3))
    assert math.isnan(t.loc["b", "mean_time_loss_ci"])  # one seed: no interval
    assert t.loc["a", "flagged"] == 1 and t.loc["a", "flag"] == "seed 2: 2 teleports"
    assert t.loc["b", "flag"] == "seed 1: 5.0 % never inserted"


def test_registry_directions_reach_the_paired_table() -> None:
    from experiments.stats import KPI_BY_COLUMN

    assert KPI_BY_COLUMN["throughput_vph"].lower_is_better is False
    assert KPI_BY_COLUMN["mean_time_loss"].headline and not KPI_BY_COLUMN["mean_time_loss_finished"].headline
