"""``wulin controllers``, ``wulin plan webster`` and ``wulin compare``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

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


def plan_webster(
    scenario: str = typer.Argument(..., help="Scenario id or .toml path."),
    window: str = typer.Option(None, "--window", help="Demand window HH:MM-HH:MM (default: the scenario's)."),
    out: Path = typer.Option(..., "--out", help="Folder for plans.json, plans.add.xml, validation.txt."),
    common_cycle: bool = typer.Option(False, "--common-cycle", help="One cycle for all signals."),
    corridor: str = typer.Option("", "--corridor", help="Green wave along signal ids in travel order (A1,B1,C1) or a road name (\"Yan'an Rd\")."),
    heading: str = typer.Option(None, "--heading", help="Travel direction N/S/E/W of a corridor given by road name."),
    yellow: float = typer.Option(None, "--yellow", help="Yellow seconds (default: each signal's own)."),
    all_red: float = typer.Option(None, "--all-red", help="All-red seconds (default: each signal's own)."),
    speed: float = typer.Option(40.0, "--speed", help="Green-wave progression speed, km/h."),
    sat_flow: float = typer.Option(1800.0, "--sat-flow", help="Saturation flow, veh/h of green per lane."),
) -> None:
    """Webster plans from the scenario's demand: JSON, SUMO tlLogic and a validation report."""
    from controllers.corridor import coordinate_corridor, resolve_corridor
    from controllers.plan import plans_to_additional, validate_plan
    from controllers.webster import parse_window, webster_plans
    from sim.scenario import load_scenario
    from sim.state import DistrictLayout
    from sim.topology import load_signal_specs

    sc = load_scenario(scenario)
    w = parse_window(window) if window else None
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
        problems = validate_plan(plan, spec.conflicts)
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
) -> None:
    """Run controllers x seeds and print mean travel time and time loss per controller."""
    import statistics

    from rich.progress import Progress

    from experiments.episode import run_episode
    from sim.errors import WulinError
    from sim.kpi import summarise
    from sim.scenario import load_scenario

    sc = load_scenario(scenario)
    names = [c.strip() for c in controllers_.split(",") if c.strip()]
    if seeds < 1:
        raise WulinError(f"--seeds: need at least 1, got {seeds}")
    from controllers.base import controller_class

    for n in names:
        controller_class(n)  # unknown names fail before any simulation
    rows = []
    with Progress(console=console, transient=True) as prog:
        task = prog.add_task(f"{sc.id}", total=len(names) * seeds)
        for name in names:
            tt, tl, share, tele = [], [], [], []
            for seed in range(1, seeds + 1):
                prog.update(task, description=f"{sc.id} · {name} · seed {seed}")
                r = run_episode(sc, name, seed=seed)
                s = summarise(r.trips)
                tt.append(s["mean_travel_time"])
                tl.append(s["mean_time_loss"])
                share.append(r.controller_time / r.wall_time)
                tele.append(float(r.network.get("teleports", 0.0)))
                prog.advance(task)
            rows.append((name, statistics.mean(tt), _sd(tt), statistics.mean(tl), _sd(tl),
                         100 * statistics.mean(share), statistics.mean(tele)))
    table = Table(title=f"{sc.id}, seeds 1-{seeds}", header_style="bold")
    for col in ("controller", "mean travel time (s)", "mean time loss (s)", "teleports",
                "controller share of wall"):
        table.add_column(col, justify="right" if col != "controller" else "left")
    md = [f"`wulin compare {sc.id} --seeds {seeds}` (mean ± sd over seeds 1-{seeds}, trips after "
          "warm-up; teleports: mean per run)", "",
          "| controller | mean travel time (s) | mean time loss (s) | teleports |",
          "|---|---:|---:|---:|"]
    for name, tt_m, tt_s, tl_m, tl_s, sh, tp in rows:
        table.add_row(name, f"{tt_m:.1f} ± {tt_s:.1f}", f"{tl_m:.1f} ± {tl_s:.1f}", f"{tp:.1f}",
                      f"{sh:.2f} %")
        md.append(f"| {name} | {tt_m:.1f} ± {tt_s:.1f} | {tl_m:.1f} ± {tl_s:.1f} | {tp:.1f} |")
    console.print(table)
    if markdown is not None:
        markdown.write_text("\n".join(md) + "\n")
        console.print(f"Markdown table -> {markdown}")


def _sd(xs: list[float]) -> float:
    import statistics

    return statistics.stdev(xs) if len(xs) > 1 else 0.0


def register(app: typer.Typer) -> None:
    from wulin.cmd_plan import plan_app

    app.command("controllers")(controllers)
    app.command("compare")(compare)
    plan_app.command("webster")(plan_webster)
