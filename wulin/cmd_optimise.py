"""``wulin plan optimise``: time-of-day plans optimised in simulation (wiring only; :mod:`optimise.run`)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from wulin.options import NETWORKS_OPT

console = Console()


def _floats(text: str, flag: str) -> tuple[float, ...]:
    from sim.errors import WulinError

    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise WulinError(f"{flag}: {text!r} is not a comma-separated list of numbers") from None


def _ints(text: str, flag: str) -> tuple[int, ...]:
    from sim.errors import WulinError

    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise WulinError(f"{flag}: {text!r} is not a comma-separated list of whole numbers") from None


def plan_optimise(
    scenario: str = typer.Argument(..., help="Scenario id or .toml path."),
    periods: str = typer.Option(..., "--periods", help="NAME=HH:MM-HH:MM[,NAME=...], e.g. AM=07:00-09:00."),
    out: Path = typer.Option(..., "--out", help="Output folder (plans, schedules, reports, checkpoints)."),
    seeds: int = typer.Option(2, "--seeds", help="Seeds 1..N: screen demand draws and SUMO verification."),
    held_out: str = typer.Option("101,102,103", "--held-out-seeds", help="Seeds of the final comparison."),
    factors: str = typer.Option("0.9,1.0,1.1", "--demand-factors", help="Demand factors the objective averages."),
    verify_factors: str = typer.Option("1.0", "--verify-factors", help="Demand factors of the SUMO verification."),
    generations: int = typer.Option(30, "--generations", help="CMA-ES generations."),
    popsize: int | None = typer.Option(None, "--popsize", help="Candidates per generation (default CMA's)."),
    workers: int = typer.Option(2, "--workers", help="Screen threads and SUMO worker processes."),
    resume: bool = typer.Option(False, "--resume", help="Continue a killed run from its last generation."),
    signals: str = typer.Option("", "--signals", help="Optimise only these signal ids (others keep theirs)."),
    common_cycle: bool = typer.Option(False, "--common-cycle", help="One cycle for all optimised signals."),
    min_cycle: float = typer.Option(40.0, "--min-cycle", help="Smallest cycle, s."),
    max_cycle: float = typer.Option(150.0, "--max-cycle", help="Largest cycle, s."),
    min_green: float = typer.Option(0.0, "--min-green", help="Raise every minimum green to this, s."),
    stop_weight: float = typer.Option(1.0, "--stop-weight", help="Objective seconds per stop."),
    no_distill: bool = typer.Option(False, "--no-distill", help="Skip the max-pressure warm start."),
    no_verify: bool = typer.Option(False, "--no-verify", help="Skip SUMO verification and comparison."),
    networks: list[Path] | None = NETWORKS_OPT,
) -> None:
    """Optimise cycle, splits and offsets per period; write checked plans and day schedules."""
    import numba

    from optimise.run import OptimiseOptions, optimise
    from optimise.screen import Weights
    from optimise.search import SearchConfig

    opts = OptimiseOptions(
        periods=periods, out=out, seeds=seeds, held_out_seeds=_ints(held_out, "--held-out-seeds"),
        demand_factors=_floats(factors, "--demand-factors"),
        verify_factors=_floats(verify_factors, "--verify-factors"),
        search=SearchConfig(generations=generations, popsize=popsize), workers=workers, resume=resume,
        signals=tuple(s.strip() for s in signals.split(",") if s.strip()), common_cycle=common_cycle,
        min_cycle=min_cycle, max_cycle=max_cycle, min_green=min_green, weights=Weights(stop=stop_weight),
        distill=not no_distill, verify=not no_verify, compare=not no_verify)
    if workers >= 1:
        numba.set_num_threads(min(workers, numba.get_num_threads()))
    results = optimise(scenario, opts, console, say=lambda s: console.print(s, highlight=False))
    for r in results:
        d = r["doc"]
        line = f"{d['period']}: screen best {d['screen_best']:.1f} s/veh after {d['generations']} generations"
        if "held_out" in d:
            line += "; held-out mean time loss " + ", ".join(
                f"{c} {v['mean']:.1f} s" for c, v in d["held_out"].items())
        console.print(line, highlight=False)
        if d.get("bandwidth"):
            console.print(f"{d['period']}: through bandwidth at the speed limit, s (current -> optimised): "
                          + "; ".join(f"{b['corridor']} {b['heading']} {b['before_s']:g} -> {b['after_s']:g}"
                                      for b in d["bandwidth"]), highlight=False)
    console.print(f"plans -> {out}/plans/, schedules -> {out}/schedules/", highlight=False)


def register(app: typer.Typer) -> None:
    from wulin.cmd_plan import plan_app

    plan_app.command("optimise")(plan_optimise)
