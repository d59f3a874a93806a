"""``wulin network ...``: build a network, import one, draw its map, calibrate the Wulin demand."""

from __future__ import annotations

import re
from pathlib import Path

import typer

network_app = typer.Typer(help="SUMO networks: build, import, map, calibrate.", no_args_is_help=True)
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _network_dir(name: str) -> Path:
    from sim.errors import WulinError
    from sim.scenario import NETWORKS_DIR

    if not _NAME.match(name) or not (NETWORKS_DIR / name / "build.py").is_file():
        known = sorted(p.parent.name for p in NETWORKS_DIR.glob("*/build.py"))
        raise WulinError(f"network {name!r}: no networks/{name}/build.py; known networks: {', '.join(known)}")
    return NETWORKS_DIR / name


@network_app.command("build")
def build_cmd(name: str = typer.Argument(..., help="Network folder under networks/ (wulin, grid).")) -> None:
    """Rebuild a network (and its demand) with its networks/NAME/build.py."""
    import importlib

    from rich.console import Console

    _network_dir(name)
    module = importlib.import_module(f"networks.{name}.build")
    with Console().status(f"building {name}..."):
        paths = module.build()
    for p in paths:
        Console().print(f"wrote {p}")


@network_app.command("map")
def map_cmd(
    name: str = typer.Argument(..., help="Network folder under networks/."),
    out: Path = typer.Option(None, help="PNG to write (default networks/NAME/NAME_map.png)."),
) -> None:
    """Draw the network's map with road names and signal ids to a PNG."""
    from rich.console import Console

    from networks.wulin.mapplot import draw_map
    from sim.errors import WulinError
    from sim.files import check_writable_dir

    folder = _network_dir(name)
    net = folder / f"{name}.net.xml"
    if not net.is_file():
        raise WulinError(f"{net}: not built; run `wulin network build {name}`")
    target = out or folder / f"{name}_map.png"
    if target.is_dir():
        raise WulinError(f"--out {target}: is a folder; name the PNG file to write")
    check_writable_dir(target.parent, "--out folder")  # before drawing, not after
    draw_map(net, target, title=f"{name}: roads and signal ids")
    Console().print(f"wrote {target}")


@network_app.command("calibrate")
def calibrate_cmd(
    name: str = typer.Argument("wulin", help="Only 'wulin' has counts."),
    begin: str = typer.Option("07:00", help="First counted hour to simulate."),
    end: str = typer.Option("19:00", help="End of the simulated window."),
    seed: int = typer.Option(1, help="SUMO seed."),
    out: Path = typer.Option(None, help="Also write the Markdown table here."),
) -> None:
    """Simulate the counted hours and print GEH per counted movement."""
    from rich.console import Console

    from networks.wulin.calibration import geh_report, report_markdown
    from networks.wulin.tables import load_tables
    from sim.clock import parse_clock
    from sim.errors import WulinError
    from sim.files import check_writable_dir

    if name != "wulin":
        raise WulinError(f"network {name!r}: calibration counts exist only for 'wulin'")
    b, e = parse_clock(begin, "--begin"), parse_clock(end, "--end")
    if e <= b:
        raise WulinError(f"--end ({end}) must be after --begin ({begin})")
    if out is not None:
        if out.is_dir():
            raise WulinError(f"--out {out}: is a folder; name the Markdown file to write")
        check_writable_dir(out.parent, "--out folder")  # before the hour-long simulation
    rows = geh_report(load_tables(), begin=b, end=e, seed=seed)
    text = report_markdown(rows)
    Console().print(text, highlight=False)
    if out:
        out.write_text(text, encoding="utf-8")
        Console().print(f"wrote {out}")


@network_app.command("import")
def import_cmd(
    source: Path = typer.Argument(..., help="A .sumocfg, a .net.xml, an OSM extract (.osm) or a CityFlow roadnet (.json)."),
    out: Path = typer.Option(..., "--out", help="Folder of networks to write NAME/ into (put it on WULIN_NETWORKS)."),
    name: str = typer.Option(..., "--name", help="Network name (lower case, dashes); its scenario is NAME-v1."),
    demand: list[Path] = typer.Option([], "--demand", help="Routes/trips/flows for a .net.xml (repeatable), "
                                      "or the flow JSON of a CityFlow roadnet."),
    od: Path | None = typer.Option(None, "--od", help="OD matrix CSV origin,destination,veh/h between edges "
                                   "(.net.xml or OSM)."),
    begin: str | None = typer.Option(None, "--begin", help="Scenario start (default: the .sumocfg's, else 0)."),
    end: str | None = typer.Option(None, "--end", help="Scenario end (default: the .sumocfg's; CityFlow: its flows')."),
    warmup: float = typer.Option(0.0, "--warmup", help="Seconds excluded from KPIs."),
    period: float = typer.Option(2.0, "--period", help="OSM random trips: seconds between departures."),
    seed: int = typer.Option(1, "--seed", help="OSM random trips: seed."),
) -> None:
    """Import a network with its demand into OUT/NAME: a folder that works anywhere on disk."""
    from rich.console import Console

    from networks.imports import import_network
    from sim.files import check_writable_dir

    check_writable_dir(out)
    with Console().status(f"importing {source.name}..."):
        done = import_network(source, out, name, demand=demand, od=od, begin=begin, end=end,
                              warmup=warmup, period=period, seed=seed)
    for note in done.notes:
        Console().print(f"note: {note}", highlight=False)
    Console().print(f"wrote {done.folder}\nrun it: wulin simulate {done.scenario_id} --networks {out}",
                    highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(network_app, name="network")
