"""``wulin plan optimise``: the whole job, period by period (screen search, SUMO verification, outputs).

Per period: the screen model is built, warm starts are scored, CMA-ES searches (checkpointed),
the best candidates are verified in SUMO over seeds x demand factors and the one SUMO ranks
first among those better than the current plans in every run is kept
(:func:`choose_candidate`), then compared on held-out seeds with the current plans, Webster and SUMO's
actuated control.  The plans, schedules, tables and plots go to the output folder
(:mod:`optimise.output`).  Everything a user can get wrong is checked before any work.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from controllers.plan import PlanLimits, TimingPlan
from optimise.screen import Weights
from optimise.search import SearchConfig
from sim.errors import WulinError


@dataclass(frozen=True)
class OptimiseOptions:
    """Options of one optimisation (the CLI's flags)."""

    periods: str
    out: Path
    seeds: int = 2
    held_out_seeds: tuple[int, ...] = (101, 102, 103)
    demand_factors: tuple[float, ...] = (0.9, 1.0, 1.1)
    verify_factors: tuple[float, ...] = (1.0,)
    search: SearchConfig = field(default_factory=SearchConfig)
    workers: int = 2
    resume: bool = False
    signals: tuple[str, ...] = ()
    common_cycle: bool = False
    min_cycle: float = 40.0
    max_cycle: float = 150.0
    min_green: float = 0.0
    weights: Weights = field(default_factory=Weights)
    distill: bool = True
    verify: bool = True
    compare: bool = True


def check_options(opts: OptimiseOptions, signal_ids: Sequence[str]) -> None:
    """One error for any bad option (before any work)."""
    unknown = [s for s in opts.signals if s not in signal_ids]
    if unknown:
        raise WulinError(f"--signals: {', '.join(map(repr, unknown))} not in the network (signals: "
                         f"{', '.join(signal_ids[:8])}{' ...' if len(signal_ids) > 8 else ''})")
    if opts.seeds < 1 or opts.search.generations < 0 or opts.workers < 1:
        raise WulinError("--seeds and --workers must be at least 1, --generations at least 0")
    if opts.search.popsize is not None and opts.search.popsize < 2:
        raise WulinError("--popsize must be at least 2")
    if not opts.demand_factors or any(not 0 < f <= 5 for f in (*opts.demand_factors, *opts.verify_factors)):
        raise WulinError("--demand-factors: give factors in (0, 5], e.g. 0.9,1.0,1.1")
    if set(opts.held_out_seeds) & set(range(1, opts.seeds + 1)):
        raise WulinError(f"--held-out-seeds {list(opts.held_out_seeds)} overlap the search seeds "
                         f"1..{opts.seeds}; held-out seeds must be new")
    if not opts.min_cycle < opts.max_cycle:
        raise WulinError(f"--min-cycle {opts.min_cycle:g} must be below --max-cycle {opts.max_cycle:g}")


@dataclass
class Problem:
    """One period's inputs, built once."""

    scenario: Any
    period: Any
    specs: list[Any]
    current: list[TimingPlan]
    webster: list[TimingPlan]
    floor_plans: dict[str, list[TimingPlan]]
    chosen: list[int]
    space: Any
    objective: Any
    limits: PlanLimits

    def assemble(self, x: np.ndarray) -> list[TimingPlan]:
        """All signals' plans: decoded for the chosen, the current plan for the others."""
        plans = list(self.current)
        for i, p in zip(self.chosen, self.space.decode(x), strict=True):
            plans[i] = p
        return plans


def build_problem(scenario: Any, period: Any, opts: OptimiseOptions) -> Problem:
    from controllers.fixed_time import plan_from_spec
    from controllers.webster.plans import webster_plans
    from optimise.model import build_model
    from optimise.screen import Objective, demand_draws
    from optimise.space import PlanSpace
    from optimise.warmstart import webster_floor_plans
    from sim.state import DistrictLayout
    from sim.topology import load_signal_specs

    layout = DistrictLayout.from_specs(load_signal_specs(scenario.net_file))
    specs = list(layout.specs)
    check_options(opts, [sp.id for sp in specs])
    chosen = [i for i, sp in enumerate(specs) if not opts.signals or sp.id in opts.signals]
    limits = PlanLimits(min_cycle=opts.min_cycle, max_cycle=opts.max_cycle)
    current = [plan_from_spec(sp) for sp in specs]
    web = webster_plans(scenario, layout, (period.start, period.end), min_cycle=opts.min_cycle,
                        max_cycle=opts.max_cycle)
    floor = webster_floor_plans(scenario, period, specs, min_green=max(limits.min_green_floor, opts.min_green),
                                min_cycle=opts.min_cycle, max_cycle=opts.max_cycle)
    # the space's minimum greens are the checks' (the floor plans'), not Webster's 7 s default
    space = PlanSpace.build([next(iter(floor.values()))[i] for i in chosen], limits, min_green=opts.min_green,
                            common_cycle=opts.common_cycle, name=f"optimised {period.label}")
    model = build_model(scenario, period, specs, current)
    draws = demand_draws(model, list(opts.demand_factors), list(range(1, opts.seeds + 1)))
    return Problem(scenario, period, specs, current, web, floor, chosen, space,
                   Objective(model, draws, opts.weights), limits)


def warm_starts(pb: Problem, opts: OptimiseOptions, say: Callable[[str], None]) -> dict[str, np.ndarray]:
    """Named starting vectors: Webster, Webster at the checks' floor, the current plans,
    max-pressure's shares."""
    sub = [pb.current[i] for i in pb.chosen]
    warm = {"webster": pb.space.encode([pb.webster[i] for i in pb.chosen]),
            "current": pb.space.encode(sub)}
    warm |= {name: pb.space.encode([plans[i] for i in pb.chosen]) for name, plans in pb.floor_plans.items()}
    if opts.distill:
        from optimise.warmstart import distilled_plans, observe_max_pressure

        say(f"{pb.period.label}: running max-pressure once in SUMO to read its green shares")
        hist = observe_max_pressure(pb.scenario, pb.period, pb.specs)
        plans = distilled_plans(hist, pb.specs, pb.webster, opts.min_cycle, opts.max_cycle)
        warm["max-pressure"] = pb.space.encode([plans[i] for i in pb.chosen])
    return warm


def _search(pb: Problem, opts: OptimiseOptions, warm: dict[str, np.ndarray], folder: Path,
            console: Any) -> Any:
    """CMA-ES with a progress bar showing the best objective so far."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from optimise.search import problem_key, run_search

    key = problem_key(scenario=pb.scenario.id, period=pb.period, signals=[pb.specs[i].id for i in pb.chosen],
                      seeds=opts.seeds, factors=opts.demand_factors, cfg=(opts.search.popsize, opts.search.sigma,
                      opts.search.seed), bounds=(opts.min_cycle, opts.max_cycle, opts.min_green),
                      common=opts.common_cycle, weights=opts.weights)

    def evaluate(xs: list[np.ndarray]) -> list[float]:
        return pb.objective.batch([pb.assemble(x) for x in xs])

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("best {task.fields[best]:.1f} s/veh"), TimeElapsedColumn(),
                  console=console, transient=False, disable=console is None) as prog:
        task = prog.add_task(f"{pb.period.name} search", total=opts.search.generations, best=float("nan"))

        def tick(state: Any) -> None:
            prog.update(task, completed=state.generation, best=state.best_f)

        state = run_search(evaluate, pb.space.bounds(), warm, opts.search, folder / "search.ckpt", key,
                           resume=opts.resume, on_generation=tick)
        tick(state)
    return state


def _candidates(pb: Problem, state: Any, warm: dict[str, np.ndarray]
                ) -> tuple[dict[str, list[TimingPlan]], dict[str, str]]:
    """What goes to SUMO: the screen's best, the current, Webster and Webster-at-the-floor plans
    exactly as they are, and max-pressure's shares when they were the best warm start; SUMO
    decides (:func:`choose_candidate`).  A plan set failing the plan checks (a current plan with a cycle outside
    the bounds, say) is left out, with the reason."""
    chosen = set(pb.chosen)

    def only_chosen(plans: list[TimingPlan]) -> list[TimingPlan]:
        return [p if i in chosen else c for i, (p, c) in enumerate(zip(plans, pb.current, strict=True))]

    out = {"screen-best": pb.assemble(state.best_x), "current": list(pb.current),
           "webster": only_chosen(pb.webster)}
    out |= {name: only_chosen(plans) for name, plans in pb.floor_plans.items()}
    if min(state.warm, key=state.warm.__getitem__) == "max-pressure" and "max-pressure" in warm:
        out["max-pressure"] = pb.assemble(warm["max-pressure"])
    dropped = {}
    for name in ("current", "webster", *pb.floor_plans):
        try:
            pb.space.check([out[name][i] for i in pb.chosen], [pb.specs[i] for i in pb.chosen], pb.limits)
        except WulinError as exc:
            dropped[name] = str(exc)
            del out[name]
    return out, dropped


def choose_candidate(runs: Any) -> str:
    """The candidate to keep from the SUMO verification runs (columns candidate, factor, seed,
    ``mean_time_loss``): the lowest mean among those better than the current plans in *every*
    run (seed x demand factor); the current plans when none is.  A plan change must show
    itself in every draw, not only on average: on cologne1 a candidate 0.1-0.3 s better on the
    mean of two seeds (better on one, worse on the other) was 1 s worse on the held-out seeds.
    Without the current plans among the candidates (they failed the checks): the lowest mean.
    """
    table = runs.pivot_table(index=["factor", "seed"], columns="candidate", values="mean_time_loss")
    means = table.mean()
    if "current" not in table:
        return str(means.idxmin())
    beats = [c for c in table if c != "current" and bool((table[c] < table["current"]).all())]
    return str(means[beats].idxmin()) if beats else "current"


def optimise_period(scenario: Any, period: Any, opts: OptimiseOptions, console: Any = None,
                    say: Callable[[str], None] = print) -> dict[str, Any]:
    """Search, verify and compare one period; returns its result document (also written)."""
    from optimise import output, time_space
    from optimise.verify import check_runnable, compare_controllers, verify_candidates

    folder = opts.out / period.name
    t0 = time.perf_counter()
    pb = build_problem(scenario, period, opts)
    if opts.verify or opts.compare:
        check_runnable(pb.specs)
    # a resumed search has its warm starts in the checkpoint: max-pressure is not run again
    resuming = opts.resume and (folder / "search.ckpt").exists()
    warm = warm_starts(pb, replace(opts, distill=opts.distill and not resuming), say)
    t_warm = time.perf_counter()
    state = _search(pb, opts, warm, folder, console)
    warm = state.warm_x or warm
    t_search = time.perf_counter()
    candidates, dropped = _candidates(pb, state, warm)
    doc: dict[str, Any] = {"scenario": scenario.id, "period": period.label, "warm_starts": state.warm,
                           "screen_best": state.best_f, "generations": state.generation,
                           "dimension": pb.space.dim, "not_verified": dropped,
                           "screen": {n: pb.objective(p) for n, p in candidates.items()}}
    chosen = "screen-best"
    if opts.verify:
        files = {}
        for name, plans in candidates.items():
            files[name] = folder / "candidates" / f"{name}.json"
            output.write_plan_list(files[name], plans)
        runs = verify_candidates(scenario, period, files, range(1, opts.seeds + 1), opts.verify_factors,
                                 folder / "verify", workers=opts.workers, progress=console is not None,
                                 console=console)
        doc["sumo_verify"] = runs.groupby("candidate")["mean_time_loss"].mean().to_dict()
        chosen = choose_candidate(runs)
    t_verify = time.perf_counter()
    best = candidates[chosen]
    doc["check_notes"] = pb.space.check([best[i] for i in pb.chosen], [pb.specs[i] for i in pb.chosen],
                                        pb.limits)
    best = [replace(p, name=f"optimised {period.label}", source=f"optimise ({chosen})") for p in best]
    output.write_plans(opts.out / "plans" / period.name, best)
    output.write_plan_list(folder / "optimised.json", best)
    output.convergence_plot(folder / "convergence.png", state.history, f"{scenario.id} {period.label}")
    corridors = time_space.corridor_report(folder, time_space.corridors_for(scenario, period, pb.specs),
                                           pb.current, best, period, f"{scenario.id} {period.label}")
    output.write_text(folder / "changes.md", output.change_table(pb.current, best)
                      + "\n![convergence](convergence.png)\n" + corridors.markdown)
    doc["bandwidth"] = [r.to_dict() for r in corridors.rows]
    doc["chosen"] = chosen
    if opts.compare:
        runs = compare_controllers(scenario, period, folder / "optimised.json", opts.held_out_seeds,
                                   folder / "compare", workers=opts.workers, progress=console is not None,
                                   console=console)
        doc["held_out"] = runs.groupby("controller")["mean_time_loss"].agg(["mean", "std", "count"]).to_dict("index")
        from experiments.report import build_report

        doc["report"] = str(build_report(folder / "compare"))
    doc["seconds"] = {"warm_starts": t_warm - t0, "search": t_search - t_warm, "verify": t_verify - t_search,
                      "total": time.perf_counter() - t0}
    output.write_json(folder / "result.json", doc)
    return {"doc": doc, "plans": best, "current": pb.current}


def optimise(scenario_id: str, opts: OptimiseOptions, console: Any = None,
             say: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Every period of ``opts.periods``; writes the plans and the schedules."""
    from experiments.durable import check_writable
    from optimise import output
    from optimise.periods import parse_periods
    from sim.scenario import load_scenario

    scenario = load_scenario(scenario_id)
    periods = parse_periods(opts.periods, scenario)
    if any(p.name.lower() == output.CURRENT for p in periods):
        raise WulinError(f"--periods: the name {output.CURRENT!r} is reserved for the plans outside the periods")
    check_writable(opts.out)
    results = [optimise_period(scenario, p, opts, console, say) for p in periods]
    current = results[0]["current"]
    output.write_plans(opts.out / "plans" / output.CURRENT, current)
    output.write_schedules(opts.out, current, {p: r["plans"] for p, r in zip(periods, results, strict=True)})
    return results
