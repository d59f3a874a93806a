"""``evaluate``: a trained policy and the baselines, compared as one in-memory experiment.

The policy (the registered ``policy`` controller with ``run`` and ``checkpoint`` parameters)
and every baseline run through the experiment runner on the same scenario and the same SUMO
seeds (:mod:`experiments.compare`), so the table reports the KPIs of :mod:`sim.kpi_registry`
as mean ± 95 % confidence half-width over the seeds, the same statistic as ``wulin compare``
and ``wulin experiment run``.  Evaluation seeds are small integers (1, 2, 3...); training
episodes use seeds from :func:`agents.vec_env.episode_seed` (above 1,000,000), so the
evaluation seeds are held out.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sim.errors import WulinError

if TYPE_CHECKING:
    from experiments.compare import Comparison

DEFAULT_BASELINES = ("actuated", "max-pressure")  # the strongest baseline first (tuned where saved)


def evaluate(
    run: Path | str,
    scenario: str,
    seeds: Sequence[int],
    *,
    baselines: Sequence[str] = DEFAULT_BASELINES,
    checkpoint: str | None = None,
    max_red: float | None = None,
    out: Path | None = None,
    workers: int | None = None,
    progress: bool = False,
    console: object = None,
) -> Comparison:
    """Run the policy of ``run`` and each baseline on ``scenario`` for every seed.

    Args:
        run: Run folder written by ``wulin train``.
        scenario: Scenario id or the path of a scenario TOML.
        seeds: Evaluation seeds.
        baselines: Controllers to compare with.
        checkpoint: A checkpoint instead of the final model.
        max_red: The red-time limit under the policy (:mod:`sim.red_limit`); default: the
            training config's.
        out: Keep the experiment folder here (default: a temporary one).
        workers: Worker processes (default: the runner's).
        progress: Show the runner's progress bar.
        console: A ``rich`` console for the runner's messages.

    Returns:
        The comparison: ``runs`` has one row per (controller, seed), the policy's controller
        being ``"policy"``; ``summary`` the mean ± 95 % CI per controller.

    Raises:
        WulinError: bad run folder, unknown scenario or controller, SUMO failure.
    """
    from experiments.compare import comparison_spec, run_comparison

    if not seeds:
        raise WulinError("--seeds: evaluate at least one seed")
    if "policy" in baselines:
        raise WulinError("--baselines: 'policy' is the policy evaluated; name other controllers")
    if checkpoint and Path(checkpoint).is_file():  # workers may resolve paths elsewhere
        checkpoint = str(Path(checkpoint).resolve())
    params = {"run": str(Path(run).resolve()), "checkpoint": checkpoint, "max_red": max_red}
    spec = comparison_spec(scenario, ["policy", *baselines], seeds, name="evaluate",
                           controller_params={"policy": params},
                           description=f"wulin evaluate {Path(run).name}")
    return run_comparison(spec, out, workers=workers, progress=progress, console=console)
