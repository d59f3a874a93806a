"""``wulin tune``: search a baseline's parameters on a scenario and save the best (experiments.tuning)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer
from rich.console import Console

from wulin.options import NETWORKS_OPT

console = Console()


def _seeds(text: str) -> list[int]:
    from sim.errors import WulinError
    from sim.simulation import check_seed

    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise WulinError(f"--seeds {text!r}: expected comma-separated integers, e.g. 101,102") from None
    for s in seeds:
        check_seed(s, "--seeds")
    return seeds


def _ranges(items: list[str]) -> dict[str, str]:
    from sim.errors import WulinError

    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise WulinError(f"--range {item!r}: expected NAME=LOW:HIGH, e.g. --range min_green=5:15")
        out[name.strip()] = value.strip()
    return out


def tune(
    scenario: str = typer.Argument(..., help="Scenario id or .toml path."),
    controller: str = typer.Option(..., "--controller", "-c", help="Controller to tune "
                                   "(max-pressure, sotl, actuated, delay-based, webster-online)."),
    trials: int = typer.Option(12, "--trials", help="Trials in all (resumed ones count; a study "
                                "holding more is judged on its first N)."),
    seeds: str = typer.Option("101,102", "--seeds", help="Tuning seeds, comma-separated "
                              "(keep the reporting seeds 1-3 out)."),
    ranges: list[str] = typer.Option([], "--range", help="NAME=LOW:HIGH (or NAME=a,b for a "
                                     "choice) replacing a default range; repeatable."),
    study: Path | None = typer.Option(None, "--study", help="Folder of the study file "
                                      "(default runs/tune/SCENARIO--CONTROLLER); resumed when "
                                      "it holds the same study."),
    sampler_seed: int = typer.Option(0, "--sampler-seed", help="TPE sampler seed."),
    save: bool = typer.Option(True, "--save/--no-save", help="Write the best parameters to the "
                              "scenario's tuned file (<network>/tuned/<scenario>.toml)."),
    networks: list[Path] | None = NETWORKS_OPT,
) -> None:
    """Tune a controller's parameters on a scenario (Optuna TPE; objective: mean time loss of all vehicles)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from experiments.spec import scenario_label
    from experiments.tuned import save_tuned
    from experiments.tuning import tune as run_tune
    from experiments.tuning import tuned_entry
    from sim.scenario import load_scenario

    seed_list = _seeds(seeds)
    folder = study or Path("runs") / "tune" / f"{scenario_label(scenario)}--{controller}"
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(f"{controller} on {scenario_label(scenario)}", total=trials)

        def show(st: object) -> None:
            best = st.best()  # type: ignore[attr-defined]
            label = f"best {best.value:.2f} s" if best and best.value is not None else "best -"
            d = st.defaults  # type: ignore[attr-defined]
            dflt = f"defaults {d.value:.2f} s" if d and d.value is not None else "defaults -"
            bar.update(task, completed=min(len(st.trials), trials),  # type: ignore[attr-defined]
                       description=f"{controller} on {st.scenario} · {dflt} · {label}")  # type: ignore[attr-defined]

        result = run_tune(scenario, controller, trials=trials, seeds=seed_list, study_dir=folder,
                          ranges=_ranges(ranges), sampler_seed=sampler_seed, on_trial=show)
    best, dflt = result.best, result.study.defaults
    params = ", ".join(f"{k}={v}" for k, v in best.params.items()) or "the defaults"
    console.print(f"best: {params} -> {best.value:.2f} s mean time loss on seeds {seed_list} "
                  f"(defaults: {dflt.value if dflt else float('nan'):.2f} s); study: {result.path}")
    if save:
        command = shlex.join(["wulin", "tune", *sys.argv[2:]]) if sys.argv[1:2] == ["tune"] \
            else f"wulin tune {scenario} --controller {controller} --trials {trials} --seeds {seeds}"
        path = save_tuned(load_scenario(scenario), controller, tuned_entry(result, command))
        console.print(f"tuned parameters -> {path}")


def register(app: typer.Typer) -> None:
    app.command("tune")(tune)
