"""``wulin simulate`` and ``wulin scenarios``."""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from wulin.options import NETWORKS_OPT

if TYPE_CHECKING:
    from sim.sumo_log import SumoMessages

console = Console()


def _fmt(v: float, unit: str = "") -> str:
    if v != v:  # NaN
        return "-"
    return f"{v:,.1f}{unit}" if abs(v) < 1e5 else f"{v:,.0f}{unit}"


# The KPIs `wulin simulate` prints, in order; labels, units and formats come from the registry.
SIMULATE_KPIS = ("trips", "finished", "running_at_end", "never_inserted", "mean_travel_time",
                 "mean_time_loss", "resco_delay", "mean_time_loss_finished", "mean_waiting_time",
                 "mean_depart_delay", "mean_stops", "teleports", "total_co2_kg")


def kpi_table(title: str, summary: dict[str, float], network: dict[str, float]) -> Table:
    """A two-column rich table of the run's KPIs (registry labels), with its flag if any."""
    from sim.kpi_registry import KPI_BY_COLUMN, run_flag

    values = {**summary, "teleports": network["teleports"]}
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("KPI")
    table.add_column("value", justify="right")
    for column in SIMULATE_KPIS:
        kpi, v = KPI_BY_COLUMN[column], values.get(column, float("nan"))
        text = "-" if v != v else kpi.fmt.format(v) + (f" {kpi.unit}" if kpi.unit else "")
        table.add_row(kpi.label, text)
    table.add_row("Mean speed (network)", _fmt(network["mean_speed"] * 3.6, " km/h"))
    flag = run_flag(values)
    if flag:
        table.add_row("[red]flag: do not rank on this run[/]", f"[red]{flag}[/]")
    return table


def parse_params(items: list[str]) -> dict[str, object]:
    """``["a=1", "b=x.json"]`` -> ``{"a": 1, "b": "x.json"}`` (numbers and booleans parsed)."""
    from sim.errors import WulinError

    out: dict[str, object] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise WulinError(f"--param {item!r}: expected KEY=VALUE, for example --param plans=plans.json")
        value: object = raw
        low = raw.strip().lower()
        if low in ("true", "false"):
            value = low == "true"
        else:
            for cast in (int, float):
                try:
                    value = cast(raw)
                    break
                except ValueError:
                    pass
        out[key.strip().replace("-", "_")] = value
    return out


def simulate(
    scenario: str = typer.Argument(
        ..., help="Scenario id (see `wulin scenarios`) or a .toml path."
    ),
    seed: int = typer.Option(1, "--seed", help="SUMO random seed."),
    controller: str = typer.Option(
        "field", "--controller", "-c", help="Controller name (see `wulin controllers`)."
    ),
    gui: bool = typer.Option(False, "--gui", help="Show sumo-gui (uses traci)."),
    backend: str = typer.Option("libsumo", "--backend", help="libsumo (fast) or traci."),
    out: Path | None = typer.Option(
        None, "--out", help="Keep SUMO outputs (tripinfo, statistics, its message log) here."
    ),
    param: list[str] = typer.Option(
        [], "--param", "-p", help="Controller parameter KEY=VALUE (repeatable), e.g. -p plans=plans.json"
    ),
    tuned: bool = typer.Option(False, "--tuned", help="Use the scenario's tuned parameters for "
                               "the controller (`wulin tune`); --param values win."),
    networks: list[Path] | None = NETWORKS_OPT,
) -> None:
    """Run a scenario with a controller and print its KPI table."""
    from sim.errors import WulinError
    from sim.kpi import summarise
    from sim.scenario import format_clock, load_scenario
    from sim.simulation import check_seed

    if backend not in ("libsumo", "traci"):
        raise WulinError(f"--backend: expected 'libsumo' or 'traci', got {backend!r}")
    check_seed(seed, "--seed")
    if out is not None:
        from sim.files import check_writable_dir

        check_writable_dir(out)  # before the run, not after it
    params = parse_params(param)
    sc = load_scenario(scenario)
    if tuned:
        from experiments.tuned import effective_params

        params = effective_params(sc, controller, params)
        console.print(f"parameters: {params or 'the defaults (not tuned on this scenario)'}",
                      highlight=False)
    console.print(
        f"[bold]{sc.id}[/]: {sc.description}\n"
        f"{format_clock(sc.begin)}-{format_clock(sc.end)}, warm-up {sc.warmup:g} s, "
        f"controller [bold]{controller}[/], seed {seed}, {backend}{' + gui' if gui else ''}"
    )
    from experiments.episode import run_episode

    work = out if out is not None else Path(tempfile.mkdtemp(prefix="wulin-simulate-"))
    try:
        res = run_episode(
            sc, controller, seed=seed, backend=backend, gui=gui, output_dir=work,  # type: ignore[arg-type]
            progress=True, controller_params=params,
        )
        messages = _sumo_messages(work, None if out else f"{sc.id}.{controller}.seed{seed}")
    finally:
        if out is None:
            shutil.rmtree(work, ignore_errors=True)
    trips, network, wall = res.trips, res.network, res.wall_time
    console.print(kpi_table(f"{sc.id} · {controller} · seed {seed}", summarise(trips), network))
    sim_s = sc.duration
    console.print(
        f"simulated {sim_s:,.0f} s in {wall:,.1f} s wall ({sim_s / max(wall, 1e-9):,.0f}x real time)"
    )
    if messages is not None:
        console.print(messages.summary(), highlight=False, soft_wrap=True)


def _sumo_messages(work: Path, keep_as: str | None) -> SumoMessages | None:
    """SUMO's message counts of the run in ``work``; with ``keep_as``, its log is first copied
    to the temporary directory's ``wulin-logs/`` (the run folder itself is about to go)."""
    from sim.sumo_log import read_sumo_logs

    messages = read_sumo_logs(work)
    if messages is None or keep_as is None:
        return messages
    kept = Path(tempfile.gettempdir()) / "wulin-logs" / (re.sub(r"[^\w.-]+", "_", keep_as)
                                                         + ".sumo.log")
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(messages.log, kept)
    return replace(messages, log=kept)


def scenarios(networks: list[Path] | None = NETWORKS_OPT) -> None:
    """List every scenario with its network, time window and description."""
    from sim.scenario import format_clock, list_scenarios

    found = list_scenarios()
    table = Table(title="Scenarios", header_style="bold", show_lines=True)
    # the id is what users type: never cut, whatever the terminal's width (fold, not "…");
    # the description goes under it, so the row needs no sixth column in 80 columns
    table.add_column("id · description", overflow="fold", ratio=1,
                     min_width=max((len(sc.id) for sc in found), default=2))
    for col in ("network", "window", "warm-up", "scale"):
        table.add_column(col, no_wrap=True)
    for sc in found:
        table.add_row(
            f"[bold]{sc.id}[/]\n[dim]{escape(sc.description)}[/]",
            sc.network,
            f"{format_clock(sc.begin)}-{format_clock(sc.end)}",
            f"{sc.warmup:g} s",
            f"{sc.scale:g}",
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)
    app.command("scenarios")(scenarios)
