"""Import from an OpenStreetMap extract (``.osm`` XML).

netconvert builds the network with SUMO's OSM typemap (cars' roads only), guessed traffic
signals (``--tls.guess``, and the OSM signals joined per junction), ramps and roundabouts
guessed and isolated edges removed; signal programs are netconvert's own, with amber and a
2 s all-red (netconvert has none by default; the plan checks want at least 1 s of red
clearance).
Demand is random trips (SUMO's ``randomTrips.py``, routed by duarouter, one vehicle every
``period`` seconds, seeded) or an OD matrix between edges (:mod:`.od`).
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from networks.imports.draft import Draft, net_edges
from networks.imports.od import od_flows
from sim.errors import WulinError
from sim.tools import run_tool, sumo_binary, sumo_tools_dir

NETCONVERT_OPTIONS = (
    "--geometry.remove", "true", "--roundabouts.guess", "true", "--ramps.guess", "true",
    "--junctions.join", "true", "--tls.guess-signals", "true", "--tls.discard-simple", "true",
    "--tls.join", "true", "--tls.guess", "true", "--tls.default-type", "static", "--tls.allred.time", "2",
    "--remove-edges.isolated", "true", "--keep-edges.by-vclass", "passenger",
    "--output.street-names", "true", "--no-turnarounds", "true", "--no-warnings", "true",
)


def _check_roads(source: Path) -> None:
    """An OSM file with at least one ``<way>`` tagged ``highway``, else one clear line."""
    try:
        in_way, root_seen = False, False
        for event, elem in ET.iterparse(source, events=("start", "end")):
            if not root_seen:
                root_seen = True
                if elem.tag != "osm":
                    raise WulinError(f"{source}: not an OSM file (its root element is <{elem.tag}>, expected <osm>)")
            if elem.tag == "way":
                in_way = event == "start"
            elif in_way and event == "start" and elem.tag == "tag" and elem.get("k") == "highway":
                return
    except ET.ParseError as exc:
        raise WulinError(f"{source}: not readable XML ({exc})") from None
    raise WulinError(f"{source}: no roads: no <way> has a <tag k=\"highway\">; export an area with streets")


def _random_trips(draft: Draft, period: float, seed: int, source: Path) -> Path:
    """Routed random trips over the scenario's window (``demand/random.rou.xml``)."""
    assert draft.net is not None and draft.end is not None
    (draft.root / "demand").mkdir(exist_ok=True)
    routes = draft.root / "demand" / "random.rou.xml"
    run_tool([sys.executable, str(sumo_tools_dir() / "randomTrips.py"), "-n", str(draft.net),
              "-o", str(draft.root / "demand" / "random.trips.xml"), "-r", str(routes),
              "-b", f"{draft.begin:g}", "-e", f"{draft.end:g}", "-p", f"{period:g}",
              "--seed", str(seed), "--fringe-factor", "5", "--min-distance", "200",
              "--vehicle-class", "passenger", "--validate"], source, "randomTrips.py")
    (draft.root / "demand" / "random.trips.xml").unlink(missing_ok=True)
    for extra in draft.root.glob("demand/random.rou.alt.xml"):
        extra.unlink()
    if not routes.is_file() or "<vehicle" not in routes.read_text(encoding="utf-8"):
        raise WulinError(f"{source}: randomTrips.py found no route through the network; "
                         "give an OD matrix (--od) or a larger extract")
    return routes


def build(source: Path, draft: Draft, *, od: Path | None, period: float, seed: int) -> None:
    """Fill ``draft`` from the OSM extract ``source``."""
    _check_roads(source)
    typemap = sumo_tools_dir().parent / "data" / "typemap" / "osmNetconvert.typ.xml"
    run_tool([sumo_binary("netconvert"), "--osm-files", str(source), "--type-files", str(typemap),
              *NETCONVERT_OPTIONS, "--output-file", str(draft.net_path)], source, "netconvert")
    if not draft.net_path.is_file() or not net_edges(draft.net_path):
        raise WulinError(f"{source}: no roads: netconvert kept no edge for cars from it")
    draft.net = draft.net_path
    draft.routes.append(od_flows(od, draft, "demand") if od else _random_trips(draft, period, seed, source))
    draft.description = f"imported from OpenStreetMap {source.name}"
