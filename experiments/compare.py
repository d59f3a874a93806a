"""One comparison path: controllers x seeds on one scenario, as an in-memory experiment.

``wulin compare`` and ``wulin evaluate`` both build an :class:`~experiments.spec.ExperimentSpec`
here (:func:`comparison_spec`, from TOML text, so the declaration written into the results
folder reruns with ``wulin experiment run``) and run it through the experiment runner
(:func:`run_comparison`).  Every multi-seed figure they print is therefore the same statistic
as an experiment's: the mean over seeds ± the half-width of the 95 % Student-t interval
(:func:`experiments.stats.summary_table`), with the KPIs of :mod:`sim.kpi_registry`.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from experiments.spec import ExperimentSpec, parse_spec
from experiments.stats import add_flags, summary_table
from sim.errors import WulinError


@dataclass(frozen=True)
class Comparison:
    """The outcome of a comparison.

    Attributes:
        spec: The experiment that ran.
        runs: One row per (controller, seed): key columns, KPIs and the run ``flag``.
        summary: Per controller: ``n``, ``flagged``, ``flag`` and each KPI's mean and ``_ci``.
        folder: The experiment folder kept on disk (None when it was temporary).
    """

    spec: ExperimentSpec
    runs: pd.DataFrame
    summary: pd.DataFrame
    folder: Path | None


def _toml_value(value: Any) -> str:
    # JSON strings, numbers, booleans and lists are valid TOML values
    if isinstance(value, Path):
        value = str(value)
    return json.dumps(value)


def comparison_spec(scenario: str, controllers: Sequence[str], seeds: Sequence[int], *,
                    name: str = "", controller_params: Mapping[str, Mapping[str, Any]] | None = None,
                    baseline: str | None = None, description: str = "",
                    tuned: bool = True) -> ExperimentSpec:
    """The experiment that runs ``controllers`` x ``seeds`` on ``scenario``.

    Args:
        scenario: Scenario id, or the path of a scenario TOML.
        controllers: Registered controller names (``"policy"`` with ``run`` in its params).
        seeds: SUMO seeds.
        name: Experiment name (default ``compare-<scenario id>``).
        controller_params: Keyword arguments per controller.
        baseline: Controller the paired differences are taken against (default: the first).
        description: One line for the report.
        tuned: Run each controller with the scenario's tuned parameters where it has them
            (:mod:`experiments.tuned`); False: the controllers' defaults.

    Raises:
        WulinError: unknown scenario or controller, bad seeds or parameters.
    """
    if not controllers:
        raise WulinError("--controllers: name at least one controller")
    if not seeds:
        raise WulinError("--seeds: need at least one seed")
    path = Path(scenario)
    if scenario.endswith(".toml") and path.is_file():
        scenario = str(path.resolve())  # the runner's workers may start elsewhere
    sid = Path(scenario).stem if scenario.endswith(".toml") else scenario
    name = name or "compare-" + (re.sub(r"[^a-z0-9_-]+", "-", sid.lower()).strip("-") or "scenario")
    lines = [f"name = {_toml_value(name)}", f"description = {_toml_value(description)}",
             f"scenarios = [{_toml_value(scenario)}]",
             f"controllers = [{', '.join(_toml_value(c) for c in controllers)}]",
             f"seeds = [{', '.join(str(int(s)) for s in seeds)}]"]
    if baseline:
        lines.append(f"baseline = {_toml_value(baseline)}")
    if not tuned:
        lines.append("tuned = false")
    for cname, params in (controller_params or {}).items():
        lines.append(f"\n[controller_params.{_toml_value(cname)}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in params.items() if v is not None]
    return parse_spec("\n".join(lines) + "\n")


def run_comparison(spec: ExperimentSpec, out: Path | None = None, *, workers: int | None = None,
                   progress: bool = True, console: Any = None) -> Comparison:
    """Run ``spec`` through :func:`experiments.runner.run_experiment` and summarise it.

    Args:
        spec: From :func:`comparison_spec`.
        out: Keep the experiment folder here (resumable, ``wulin report OUT`` works); a
            temporary folder, removed afterwards, when None.
        workers: Worker processes (default: the runner's, one per core).
        progress: Show the runner's progress bar.
        console: A ``rich`` console for the runner's messages.

    Raises:
        WulinError: a run failed (with ``out`` the finished runs are kept; run again to resume).
    """
    from experiments.results import load_experiment
    from experiments.runner import run_experiment

    folder = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix=f"wulin-{spec.name}-"))
    try:
        run_experiment(spec, folder, workers=workers, progress=progress, console=console)
        _, runs = load_experiment(folder)
    finally:
        if out is None:
            shutil.rmtree(folder, ignore_errors=True)
    order = {c: i for i, c in enumerate(spec.controllers)}
    runs = add_flags(runs).sort_values(["controller", "seed"], key=lambda s: s.map(order)
                                       if s.name == "controller" else s).reset_index(drop=True)
    summary = summary_table(runs, by=("controller",))
    return Comparison(spec=spec, runs=runs, summary=summary, folder=Path(out) if out else None)


def describe_params(spec: ExperimentSpec) -> list[str]:
    """One line per controller run with parameters other than its defaults (for reports)."""
    lines = []
    for sid in spec.scenarios:
        for c in spec.controllers:
            tuned = spec.tuned_params.get(sid, {}).get(c, {})
            given = spec.controller_params.get(c, {})
            merged = {**tuned, **given}
            if not merged:
                continue
            shown = ", ".join(f"{k}={v}" for k, v in merged.items() if v is not None)
            origin = "tuned" if tuned and not given else "given" if not tuned else "tuned + given"
            lines.append(f"{c} ({origin}): {shown}")
    if not spec.tuned:
        lines.append("tuned parameters off: every controller with its defaults (--defaults)")
    return lines
