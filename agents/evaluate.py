"""``evaluate``: a trained policy and the baselines through the same episode loop and seeds.

Every controller runs :func:`experiments.episode.run_episode` on the same scenario and the same
SUMO seeds, and the table reports the trip KPIs of ``sim.kpi.summarise`` per controller (mean
and standard deviation over the seeds).  Evaluation seeds are small integers (1, 2, 3...);
training episodes use seeds from :func:`agents.vec_env.episode_seed` (above 1,000,000), so the
evaluation seeds are held out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sim.errors import WulinError

DEFAULT_BASELINES = ("field", "max-pressure")
KPIS = ("mean_time_loss", "mean_travel_time", "mean_waiting_time", "finished", "trips")


def evaluate(
    run: Path | str,
    scenario: str,
    seeds: Sequence[int],
    *,
    baselines: Sequence[str] = DEFAULT_BASELINES,
    checkpoint: str | None = None,
    on_episode: Callable[[str, int, dict[str, float]], None] | None = None,
    progress: bool = False,
) -> Any:
    """Run the policy of ``run`` and each baseline on ``scenario`` for every seed.

    Returns:
        A pandas DataFrame, one row per (controller, seed), with the KPI summary columns.

    Raises:
        WulinError: bad run folder, unknown scenario or controller, SUMO failure.
    """
    import pandas as pd

    from agents.policy_controller import PolicyController
    from experiments.episode import run_episode
    from sim.scenario import load_scenario

    if not seeds:
        raise WulinError("--seeds: evaluate at least one seed")
    sc = load_scenario(scenario)
    rows = []
    entries: list[tuple[str, Callable[[], Any]]] = [
        ("policy", lambda: PolicyController(run, checkpoint=checkpoint))
    ]
    entries += [(name, lambda name=name: name) for name in baselines]
    for label, make in entries:
        for seed in seeds:
            res = run_episode(sc, make(), seed=int(seed), progress=progress)
            summ = res.summary()
            row = {"controller": label, "seed": int(seed), **summ}
            rows.append(row)
            if on_episode is not None:
                on_episode(label, int(seed), summ)
    return pd.DataFrame(rows)


def summary_table(df: Any) -> Any:
    """Per controller: mean, standard deviation and 95 % confidence half-width over seeds.

    Columns ``<kpi>_mean``, ``<kpi>_std`` (sample, ddof 1; 0 for one seed) and ``<kpi>_ci95``
    (Student t half-width, ``t(0.975, n-1) * std / sqrt(n)``; 0 for one seed).
    """
    import numpy as np
    from scipy import stats

    cols = [c for c in KPIS if c in df.columns]
    g = df.groupby("controller", sort=False)[cols]
    n = g.size()
    std = g.std(ddof=1).fillna(0.0)
    t = np.array([stats.t.ppf(0.975, k - 1) if k > 1 else 0.0 for k in n])
    ci = std.mul(t / np.sqrt(n.to_numpy()), axis=0)
    return g.mean().add_suffix("_mean").join(std.add_suffix("_std")).join(ci.add_suffix("_ci95"))
