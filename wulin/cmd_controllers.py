"""``wulin controllers``, ``wulin plan webster`` and ``wulin compare``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from wulin.console_tables import fit_table
from wulin.options import NETWORKS_OPT

console = Console()


def controllers() -> None:
    """List the registered controllers."""
    from controllers.base import available_controllers, describe_controller

    table = Table(title="Controllers", header_style="bold")
    table.add_column("name")
    table.add_column("description")
    for name in available_controllers():
        table.add_row(name, describe_controller(name))
    console.print(table)


# (low, high) bounds of `plan webster`'s numeric options; None = no bound on that side
_WEBSTER_BOUNDS = {"yellow": (0.0, 10.0), "all_red": (0.0, 10.0), "speed": (1.0, 150.0), "sat_flow": (100.0, 5000.0)}


def _check_webster_numbers(**values: float | None) -> None:
    """Refuse a non-finite or out-of-range numeric option with one clear line."""
    import math

    from sim.errors import WulinError

    for name, value in values.items():
        if value is None:
            continue
        low, high = _WEBSTER_BOUNDS[name]
        if not math.isfinite(value) or not low <= value <= high:
            flag = "--" + name.replace("_", "-")
            raise WulinError(f"{flag} {value:g}: must be a finite number from {low:g} to {high:g}")


def plan_webster(
    scenario: str = typer.Argument(..., help="Scenario id or .toml path."),
    window: str = typer.Option(None, "--window", help="Demand window HH:MM-HH:MM (default: the demand's active window, first to last departure)."),
    out: Path = typer.Option(..., "--out", help="Folder for plans.json, plans.add.xml, validation.txt."),
    common_cycle: bool = typer.Option(False, "--common-cycle", help="One cycle for all signals."),
    corridor: str = typer.Option("", "--corridor", help="Green wave along signal ids in travel order (A1,B1,C1) or a road name (\"Yan'an Rd\")."),
    heading: str = typer.Option(None, "--heading", help="Travel direction N/S/E/W of a corridor given by road name."),
    yellow: float = typer.Option(None, "--yellow", help="Yellow seconds (default: each signal's own)."),
    all_red: float = typer.Option(None, "--all-red", help="All-red seconds (default: each signal's own)."),
    speed: float = typer.Option(40.0, "--speed", help="Green-wave progression speed, km/h."),
    sat_flow: float = typer.Option(1800.0, "--sat-flow", help="Saturation flow, veh/h of green per lane."),
    networks: list[Path] | None = NETWORKS_OPT,
) -> None:
    """Webster plans from the scenario's demand: JSON, SUMO tlLogic and a validation report."""
    from controllers.corridor import coordinate_corridor, resolve_corridor
    from controllers.plan import plans_to_additional, validate_plan
    from controllers.webster import parse_window, webster_plans
    from controllers.webster.plans import default_window
    from sim.files import check_writable_dir
    from sim.scenario import format_clock, load_scenario
    from sim.state import DistrictLayout
    from sim.topology import load_signal_specs

    _check_webster_numbers(yellow=yellow, all_red=all_red, speed=speed, sat_flow=sat_flow)
    check_writable_dir(out)  # before reading demand, not after

    sc = load_scenario(scenario)
    w = parse_window(window) if window else default_window(sc)
    console.print(f"demand window {format_clock(w[0])}-{format_clock(w[1])}"
                  + ("" if window else " (the demand's active window: first to last departure)"))
    layout = DistrictLayout.from_specs(load_signal_specs(sc.net_file))
    plans = webster_plans(sc, layout, w, common_cycle=common_cycle, sat_flow=sat_flow, progress=True,
                          yellow=yellow, all_red=all_red)
    if corridor:
        route = resolve_corridor(corridor, layout, sc.net_file, heading)
        console.print(f"corridor {route.road or ''}: {' -> '.join(route.signals)}")
        plans = coordinate_corridor(plans, layout, route, speed)
    out.mkdir(parents=True, exist_ok=True)
    (out / "plans.json").write_text("[\n" + ",\n".join(p.to_json() for p in plans) + "\n]\n")
    (out / "plans.add.xml").write_text(plans_to_additional(plans, "wulin-webster"))
    lines, n_bad = [], 0
    table = Table(title=f"Webster plans · {sc.id}", header_style="bold")
    for col in ("signal", "cycle", "greens", "offset", "valid", "hash"):
        table.add_column(col)
    for plan in plans:
        spec = layout.specs[layout.index[plan.signal_id]]
        problems = validate_plan(plan, spec.conflicts, unused=spec.unused_links)
        n_bad += bool(problems)
        lines.append(f"{plan.signal_id} sha256:{plan.plan_hash()} cycle {plan.cycle:g} s: "
                     + ("valid" if not problems else "; ".join(problems)))
        table.add_row(plan.signal_id, f"{plan.cycle:g}", "/".join(f"{s.green:g}" for s in plan.stages),
                      f"{plan.offset:g}", "yes" if not problems else "[red]no[/]", plan.plan_hash()[:12])
    (out / "validation.txt").write_text("\n".join(lines) + "\n")
    console.print(table)
    console.print(f"{len(plans)} plans, {n_bad} with violations -> {out}/plans.json, "
                  f"{out}/plans.add.xml, {out}/validation.txt")
    if n_bad:
        raise typer.Exit(1)


def compare(
    scenario: str = typer.Argument(..., help="Scenario id or .toml path."),
    controllers_: str = typer.Option("field,fixed-time,webster,webster-online,max-pressure,sotl,actuated,delay-based",
                                     "--controllers", help="Comma-separated controller names."),
    seeds: int = typer.Option(3, "--seeds", help="Seeds 1..N per controller."),
    markdown: Path | None = typer.Option(None, "--markdown", help="Also write the table as Markdown here."),
    out: Path | None = typer.Option(None, "--out", help="Keep the experiment folder here (resumable; "
                                    "`wulin report OUT` renders it). Default: a temporary folder."),
    workers: int | None = typer.Option(None, "--workers", help="Worker processes (default: one per core)."),
    defaults: bool = typer.Option(False, "--defaults", help="Run every controller with its defaults, "
                                  "not the scenario's tuned parameters (`wulin tune`)."),
    networks: list[Path] | None = NETWORKS_OPT,
) -> None:
    """Run controllers x seeds through the experiment runner; mean ± 95 % CI per controller."""
    from experiments.compare import comparison_spec, describe_params, run_comparison
    from experiments.spec import scenario_label
    from experiments.tables import COMPARE_KPIS, markdown_summary, rich_summary
    from sim.errors import WulinError
    from sim.kpi_registry import COUNTING_RULE, FLAG_RULE

    if seeds < 1:
        raise WulinError(f"--seeds: need at least 1, got {seeds}")
    names = [c.strip() for c in controllers_.split(",") if c.strip()]
    spec = comparison_spec(scenario, names, range(1, seeds + 1),
                           description=f"wulin compare {scenario_label(scenario)}",
                           tuned=not defaults)
    params = describe_params(spec)
    for line in params:
        console.print(f"parameters: {line}", highlight=False)
    result = run_comparison(spec, out, workers=workers, console=console)
    sid = scenario_label(spec.scenarios[0])
    table = rich_summary(result.summary, COMPARE_KPIS, f"{sid}, seeds 1-{seeds} (mean ± 95 % CI over seeds)")
    console.print(fit_table(table, console.width))
    console.print(f"{COUNTING_RULE}\n{FLAG_RULE}")
    if out is not None:
        console.print(f"results: {out} (report: wulin report {out})")
    if markdown is not None:
        flag = " --defaults" if defaults else ""
        md = [f"`wulin compare {sid} --seeds {seeds}{flag}` (mean ± 95 % CI over seeds 1-{seeds}; "
              "all vehicles due after the warm-up; teleports: mean per run)", "",
              *markdown_summary(result.summary, COMPARE_KPIS),
              *(["", *(f"- parameters: {line}" for line in params)] if params else [])]
        markdown.write_text("\n".join(md) + "\n")
        console.print(f"Markdown table -> {markdown}")


def register(app: typer.Typer) -> None:
    from wulin.cmd_plan import plan_app

    app.command("controllers")(controllers)
    app.command("compare")(compare)
    plan_app.command("webster")(plan_webster)
