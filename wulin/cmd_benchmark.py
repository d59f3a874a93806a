"""`wulin benchmark resco`: the RESCO maps, every applicable controller, the table.

Wiring only: the maps and settings are in :mod:`experiments.resco`, the table in
:mod:`experiments.resco_table`, the runs go through :func:`experiments.runner.run_experiment`.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

console = Console()
benchmark_app = typer.Typer(help="Public benchmarks beside their published figures.",
                            no_args_is_help=True)


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


@benchmark_app.command("resco")
def resco(
    out: Path = typer.Option(Path("results/resco"), "--out",
                             help="Folder for scenarios, experiments, runs and the table."),
    maps: str = typer.Option("all", "--maps",
                             help="Comma-separated RESCO maps, 'all' or 'small' "
                                  "(grid4x4, arterial4x4, cologne1, ingolstadt1)."),
    controllers: str = typer.Option("", "--controllers",
                                    help="Comma-separated controllers (default: every one that "
                                         "applies without training)."),
    seeds: int = typer.Option(3, "--seeds", min=1, help="Seeds 1..N per map and controller."),
    workers: int | None = typer.Option(None, "--workers", "-j", help="Local worker processes."),
    report: bool = typer.Option(True, "--report/--no-report",
                                help="Write each map's report.html after its runs."),
    table_only: bool = typer.Option(False, "--table-only",
                                    help="Only rewrite the table from the runs already in --out."),
) -> None:
    """Run the RESCO maps with RESCO's windows, decision interval, yellow and delay metric
    (no teleports), every applicable controller, and write OUT/table.md beside the published
    figures.  Resumable: finished runs are kept; run it again to continue."""
    from controllers.base import available_controllers
    from experiments import resco
    from experiments.durable import write_text_atomic
    from experiments.resco_table import markdown_table
    from sim.files import check_writable_dir
    from sim.network_path import add_search_dirs

    chosen = tuple(resco.MAPS) if maps == "all" else (
        resco.SMALL_MAPS if maps == "small" else _names(maps))
    ctls = _names(controllers) or resco.CONTROLLERS
    resco.check_choice(chosen, ctls, available_controllers())
    check_writable_dir(out)
    if not table_only:
        specs = resco.prepare(out, chosen, ctls, tuple(range(1, seeds + 1)))
        add_search_dirs([out / "networks"])
        for name, spec_file in specs.items():
            _run_map(name, spec_file, out, workers, report)
    table = markdown_table(out / "results", chosen, ctls)
    write_text_atomic(out / "table.md", table)
    console.print(table, highlight=False, soft_wrap=True)
    console.print(f"table -> {out / 'table.md'} (RESCO delay, s/veh, mean ± 95 % CI over seeds)")


def _run_map(name: str, spec_file: Path, out: Path, workers: int | None, report: bool) -> None:
    """One map's experiment and its report; a failure is reported and the next map runs."""
    from experiments.report import build_report
    from experiments.runner import ExperimentInterrupted, run_experiment
    from experiments.spec import load_spec
    from sim.errors import WulinError

    spec = load_spec(spec_file)
    console.print(f"[bold]{name}[/]: {len(spec.runs())} runs -> {out / 'results' / spec.name}")
    exp_dir = out / "results" / spec.name
    try:
        run_experiment(spec, exp_dir, workers=workers, console=console)
    except ExperimentInterrupted as exc:
        console.print(f"[yellow]{exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None
    except WulinError as exc:
        console.print(f"[red]{name}: {exc}", highlight=False, soft_wrap=True)
    if report and (exp_dir / "runs").is_dir():
        try:
            console.print(f"report: {build_report(exp_dir)}")
        except WulinError as exc:  # e.g. no run finished: the table says why
            console.print(f"[red]{name}: no report: {exc}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(benchmark_app, name="benchmark")
