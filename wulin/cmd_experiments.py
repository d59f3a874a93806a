"""``wulin experiment run|validate`` and ``wulin report``: what-if experiments and their reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from wulin.console_tables import fit_table
from wulin.options import NETWORKS_OPT

console = Console()
experiment_app = typer.Typer(help="Declare, check and run what-if experiments (TOML).",
                             no_args_is_help=True)


def _summary_tables(exp_dir: Path) -> list[Table]:
    """Rich tables of the main KPIs per scenario and variation (mean ± 95 % CI over seeds)."""
    import math

    from rich import box

    from experiments.results import load_experiment
    from experiments.spec import scenario_label
    from experiments.stats import KPI_BY_COLUMN, paired_differences, summary_table
    from experiments.tables import cell
    from sim.kpi_registry import FLAG_RULE

    spec, runs = load_experiment(exp_dir)
    shown = ("mean_travel_time", "mean_time_loss", "control_delay", "queue_p95", "throughput_vph",
             "teleports", "total_co2_kg")
    cols = [k for k in shown if k in runs.columns]
    if "teleports" in cols and not runs["teleports"].fillna(0).any():
        cols.remove("teleports")
    summ = summary_table(runs, cols)
    vorder = {v.name: i for i, v in enumerate(spec.variations)}
    summ = summ.sort_values("variation", key=lambda s: s.map(vorder), kind="stable")
    diff = paired_differences(runs, against="controller", value=spec.baseline, kpis=["mean_time_loss"],
                              test=spec.test)
    order = {c: i for i, c in enumerate(spec.controllers)}
    tables = []
    for (sc, var), g in summ.groupby(["scenario", "variation"], sort=False):
        # light borders, the interval under the mean: fits 80 columns, names never truncated
        seeds = f"{g['n'].iloc[0]} seeds" if g["n"].nunique() == 1 else "seeds"
        t = Table(title=f"{scenario_label(sc)} · {var} (mean ± 95 % CI over {seeds})", header_style="bold",
                  box=box.SIMPLE_HEAD)
        t.add_column("controller", no_wrap=True)
        show_n = g["n"].nunique() > 1  # else the title says it
        if show_n:
            t.add_column("n", justify="right")
        for k in cols:
            t.add_column(KPI_BY_COLUMN[k].short, justify="right")
        t.add_column(f"loss vs {spec.baseline}", justify="right")
        for _, r in g.sort_values("controller", key=lambda s: s.map(order)).iterrows():
            cells = [cell(r, k, "\n") for k in cols]
            d = diff[(diff["scenario"] == sc) & (diff["variation"] == var) & (diff["controller"] == r["controller"])]
            if len(d):
                x = d.iloc[0]
                sig = "*" if math.isfinite(x["p"]) and x["p"] < 0.05 else ""
                vs = f"{x['pct']:+.0f} %{sig}"
            else:
                vs = "base" if r["controller"] == spec.baseline else "-"
            t.add_row(r["controller"], *([str(r["n"])] if show_n else []), *cells, vs,
                      style="red" if r["flag"] else None)
        t.caption = f"* paired {spec.test} p < 0.05 against {spec.baseline}"
        if g["flag"].astype(bool).any():  # which runs, and why
            t.caption += "\n" + FLAG_RULE + "\n" + "\n".join(
                f"{c}: {f}" for c, f in zip(g["controller"], g["flag"], strict=True) if f)
        tables.append(t)
    return tables


@experiment_app.command("validate")
def validate(spec_file: Path = typer.Argument(..., help="Experiment declaration (.toml)."),
             networks: list[Path] | None = NETWORKS_OPT) -> None:
    """Check a declaration without running it: scenarios, controllers, ids, times, seeds."""
    from experiments.spec import load_spec

    spec = load_spec(spec_file)
    _warn_unsafe_plans(spec)
    console.print(
        f"[green]ok[/] {spec_file}: experiment [bold]{spec.name}[/], {len(spec.runs())} runs = "
        f"{len(spec.scenarios)} scenario(s) x {len(spec.variations)} variation(s) x "
        f"{len(spec.controllers)} controller(s) x {len(spec.seeds)} seed(s)"
    )


def _warn_unsafe_plans(spec: Any) -> None:
    """Print every engineering-check violation of the plans the experiment simulates."""
    from experiments.plan_checks import plan_warnings

    for line in plan_warnings(spec):
        console.print(f"[yellow]warning: plan fails the engineering checks: {line}[/]",
                      highlight=False, soft_wrap=True)


@experiment_app.command("run")
def run(
    spec_file: Path = typer.Argument(..., help="Experiment declaration (.toml)."),
    executor: str = typer.Option("local", "--executor", help="local (processes) or ray."),
    address: str | None = typer.Option(None, "--address", help="Ray cluster address (ray executor)."),
    workers: int | None = typer.Option(None, "--workers", "-j", help="Local worker processes (default: cores)."),
    out: Path | None = typer.Option(None, "--out", help="Results folder (default: results/<name>)."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write report.html at the end."),
    networks: list[Path] | None = NETWORKS_OPT,
) -> None:
    """Run every run not yet finished (a killed experiment resumes), then write the report.

    A worker process that dies has its run tried again (3 attempts in all); Ctrl-C or SIGTERM
    stops the workers, keeps the finished runs and exits 130 with one line saying how to resume.
    """
    from experiments.runner import ExperimentInterrupted, run_experiment
    from experiments.spec import load_spec

    spec = load_spec(spec_file)
    out_dir = out or Path("results") / spec.name
    _warn_unsafe_plans(spec)
    console.print(f"experiment [bold]{spec.name}[/]: {len(spec.runs())} runs, executor {executor} -> {out_dir}")
    try:
        run_experiment(spec, out_dir, executor=executor, workers=workers, address=address, console=console)
    except ExperimentInterrupted as exc:
        console.print(f"[yellow]{exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None
    for t in _summary_tables(out_dir):
        console.print(fit_table(t, console.width))
    if report:
        from experiments.report import build_report

        path = build_report(out_dir)
        console.print(f"report: [bold]{path.resolve()}[/]")


def report_cmd(
    exp_dir: Path = typer.Argument(..., help="Experiment results folder."),
    out: Path | None = typer.Option(None, "--out", help="HTML file (default: EXP_DIR/report.html)."),
) -> None:
    """Write the self-contained HTML report of an experiment and print its summary."""
    from experiments.report import build_report

    for t in _summary_tables(exp_dir):
        console.print(fit_table(t, console.width))
    path = build_report(exp_dir, out)
    console.print(f"report: [bold]{path.resolve()}[/]")


def register(app: typer.Typer) -> None:
    app.add_typer(experiment_app, name="experiment")
    app.command("report")(report_cmd)
