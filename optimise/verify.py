"""SUMO micro runs of plan sets through the experiment runner (parallel worker processes, resumable).

Two experiments, both ordinary experiment folders (``wulin report`` reads them):

* :func:`verify_candidates`: candidate plan sets x demand factors x seeds, each candidate a
  variation (``plan = "<file>.json"``, ``scale``, the period's ``window``) run by the
  ``field`` controller (the variation's programs are loaded before it and ``field`` adds
  none of its own unless a program needed yellows put in, which :func:`check_runnable`
  refuses).
* :func:`compare_controllers`: the optimised plans (``fixed-time`` with ``plans``) against
  the current plans (``field``), ``webster`` and SUMO's ``actuated`` on held-out seeds, in the
  same experiment, the same paired statistics.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from sim.errors import WulinError

if TYPE_CHECKING:
    from optimise.periods import Period
    from sim.scenario import Scenario
    from sim.topology import SignalSpec

KPI = "mean_time_loss"


def _v(value: Any) -> str:
    return json.dumps(str(value) if isinstance(value, Path) else value)


def check_runnable(specs: Sequence[SignalSpec]) -> None:
    """Refuse networks whose field programs get yellows put in (they would replace the variation's)."""
    bad = [sp.id for sp in specs if sp.amber_inserted]
    if bad:
        raise WulinError(f"signals {', '.join(bad[:5])}: their network programs go green to red, so SUMO "
                         "verification of candidate plans is not supported on this network yet")


def _header(name: str, scenario: Scenario, controllers: Sequence[str], seeds: Sequence[int]) -> list[str]:
    return [f"name = {_v(name)}", f"scenarios = [{_v(str(scenario.source))}]",
            f"controllers = [{', '.join(_v(c) for c in controllers)}]",
            f"seeds = [{', '.join(str(int(s)) for s in seeds)}]"]


def _variation(name: str, period: Period, plan: Path | None = None, scale: float | None = None) -> list[str]:
    out = ["", "[[variations]]", f"name = {_v(name)}",
           f"window = [{period.sim_begin:g}, {period.end:g}]", f"warmup = {period.warmup:g}"]
    if plan is not None:
        out.append(f"plan = {_v(str(Path(plan).resolve()))}")
    if scale is not None:
        out.append(f"scale = {scale:g}")
    return out


def verify_candidates(scenario: Scenario, period: Period, candidates: dict[str, Path],
                      seeds: Sequence[int], factors: Sequence[float], out: Path, *,
                      workers: int, progress: bool = True, console: Any = None) -> pd.DataFrame:
    """Mean time loss of each candidate over factors x seeds: columns candidate, factor, seed, KPI."""
    from experiments.results import load_experiment
    from experiments.runner import run_experiment
    from experiments.spec import parse_spec

    lines = _header(f"optimise-verify-{period.name.lower()}", scenario, ["field"], seeds)
    names: dict[str, tuple[str, float]] = {}
    for cand, path in candidates.items():
        for f in factors:
            vname = f"{cand}-x{round(f * 100)}"
            names[vname] = (cand, f)
            lines += _variation(vname, period, path, f * scenario.scale)
    spec = parse_spec("\n".join(lines) + "\n")
    run_experiment(spec, out, workers=workers, progress=progress, console=console)
    _, runs = load_experiment(out)
    runs = runs[runs["variation"].isin(names)].copy()
    runs["candidate"] = runs["variation"].map(lambda v: names[v][0])
    runs["factor"] = runs["variation"].map(lambda v: names[v][1])
    return runs[["candidate", "factor", "seed", KPI, "flag"]].reset_index(drop=True)


def compare_controllers(scenario: Scenario, period: Period, plans_file: Path, seeds: Sequence[int],
                        out: Path, *, workers: int, progress: bool = True, console: Any = None
                        ) -> pd.DataFrame:
    """Per-run KPIs of optimised vs field, webster and actuated on ``seeds`` (held out)."""
    from experiments.results import load_experiment
    from experiments.runner import run_experiment
    from experiments.spec import parse_spec
    from sim.clock import format_clock

    ctrls = ["field", "webster", "actuated", "fixed-time"]
    lines = _header(f"optimise-compare-{period.name.lower()}", scenario, ctrls, seeds)
    lines += ['baseline = "webster"', "", '[controller_params."fixed-time"]',
              f"plans = {_v(str(Path(plans_file).resolve()))}", "", "[controller_params.webster]",
              f"window = {_v(format_clock(period.start) + '-' + format_clock(period.end))}"]
    lines += _variation("period", period)
    spec = parse_spec("\n".join(lines) + "\n")
    run_experiment(spec, out, workers=workers, progress=progress, console=console)
    _, runs = load_experiment(out)
    return runs
