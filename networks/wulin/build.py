"""Build the Wulin district model: network (two variants), field-like plans, demand.

``wulin network build wulin`` calls :func:`build`.  Steps, all deterministic so a rebuild
equals the committed files:

1. Plain XML from the source tables (``source/*.csv`` and ``estimates.csv``): nodes in
   WGS84 lon/lat, edges with road names, lanes and speeds, explicit lane-to-lane
   connections (leftmost lane left-only on roads with 3+ lanes; turn bans from the table).
2. netconvert projects to UTM zone 51N (``--proj.utm``), keeping the geo reference.
3. Field-like fixed-time programs (``signals.py``) are derived from the first pass and
   written into the final network's ``tlLogic`` (type static).
4. The evening variant (``wulin-evening.net.xml``) closes the Wulin Rd pedestrian street
   (Fengqi Rd to Changshou Rd) and applies its one-way changes: Changshou Rd one-way from
   Wulin Rd towards Hai'er Xiang ("south to north") and Heng Changshou Rd one-way west to
   east.
5. Demand (``demand.py``): calibrated time-of-day flows 06:30-20:00, buses, and the
   evening demand routed on the evening variant; scenario additional files.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from xml.sax.saxutils import quoteattr

from networks.wulin.tables import (
    Tables,
    edge_id,
    heading,
    load_tables,
    turn_angle,
    turn_class,
)
from sim.errors import WulinError

HERE = Path(__file__).resolve().parent
NET = "wulin.net.xml"
NET_EVENING = "wulin-evening.net.xml"
# Evening variant: edges removed for vehicles (pedestrian street, reversed one-way directions).
EVENING_CLOSED = (
    "wl_fq-wl_cs", "wl_cs-wl_fq",  # Wulin Rd pedestrian street, Fengqi Rd to Changshou Rd
    "hx_cs-wl_cs",  # Changshou Rd becomes one-way Wulin Rd -> Hai'er Xiang
    "hx_cs-hw_hc",  # Heng Changshou Rd becomes one-way west -> east
)


def edges_of(tables: Tables, closed: tuple[str, ...] = ()) -> dict[str, dict[str, str | int | float]]:
    """Directed edges: id -> attributes (from, to, road, name, lanes, speed, allow)."""
    out: dict[str, dict[str, str | int | float]] = {}
    for road in tables.roads.values():
        for a, b in zip(road.nodes, road.nodes[1:], strict=False):
            pairs = [(a, b)] if road.oneway else [(a, b), (b, a)]
            for u, v in pairs:
                eid = edge_id(u, v)
                if eid in closed:
                    continue
                out[eid] = {
                    "from": u, "to": v, "road": road.key, "name": road.name,
                    "lanes": road.lanes, "speed": road.speed_kmh / 3.6, "allow": road.allow,
                }
    return out


def _banned(tables: Tables) -> set[tuple[str, str, str]]:
    """(node, from road, to road) turn bans from the estimates table."""
    bans = set()
    for node, rel, value in tables.rows("turn_ban"):
        if value not in ("0", ""):
            src, dst = rel.split(">")
            bans.add((node, src, dst))
    return bans


def connections(tables: Tables, edges: dict[str, dict[str, str | int | float]]) -> list[tuple[str, str, int, int]]:
    """Explicit lane-to-lane connections (from edge, to edge, from lane, to lane)."""
    bans = _banned(tables)
    nodes = tables.nodes
    by_to: dict[str, list[str]] = {}
    by_from: dict[str, list[str]] = {}
    for eid, e in edges.items():
        by_to.setdefault(str(e["to"]), []).append(eid)
        by_from.setdefault(str(e["from"]), []).append(eid)
    conns: list[tuple[str, str, int, int]] = []
    for nid in sorted(nodes):
        if nodes[nid].kind == "fringe":
            continue
        for ein in sorted(by_to.get(nid, [])):
            e = edges[ein]
            h_in = heading(nodes[str(e["from"])], nodes[nid])
            targets = []
            for eout in sorted(by_from.get(nid, [])):
                o = edges[eout]
                if o["to"] == e["from"] or (nid, e["road"], o["road"]) in bans:
                    continue
                ang = turn_angle(h_in, heading(nodes[nid], nodes[str(o["to"])]))
                cls = turn_class(ang)
                if cls != "t":
                    targets.append((ang, cls, eout))
            targets.sort(reverse=True)  # leftmost first
            conns += _assign_lanes(int(e["lanes"]), ein, targets, edges)
    return conns


def _assign_lanes(
    n: int, ein: str, targets: list[tuple[float, str, str]], edges: dict[str, dict[str, str | int | float]]
) -> list[tuple[str, str, int, int]]:
    """Lane use of one approach; lane 0 is the rightmost."""
    lefts = [t for t in targets if t[1] == "l"]
    throughs = [t for t in targets if t[1] == "s"]
    rights = [t for t in targets if t[1] == "r"]
    lane_targets: dict[int, list[tuple[float, str, str]]] = {i: [] for i in range(n)}
    if n == 1:
        lane_targets[0] = targets
    elif throughs:
        through_lanes = list(range(n - 1)) if (lefts and n >= 3) else list(range(n))
        for i in through_lanes:
            lane_targets[i] += throughs
        for t in lefts:
            lane_targets[n - 1].append(t)
        for t in rights:
            lane_targets[0].append(t)
    else:  # no through movement (T-junction stem, multi-leg): lefts on the left, rights on the right
        split = max(1, n // 2) if lefts and rights else (0 if lefts else n)
        for i in range(n):
            if i >= split and lefts:
                lane_targets[i] += lefts
            if i < split and rights:
                lane_targets[i] += rights
    out = []
    for lane in range(n):
        for _ang, cls, eout in lane_targets[lane]:
            m = int(edges[eout]["lanes"])
            if cls == "l":
                to_lane = m - 1
            elif cls == "r":
                to_lane = 0
            else:
                to_lane = min(lane, m - 1)
            out.append((ein, eout, lane, to_lane))
    return out


def plain_xml(tables: Tables, tmp: Path, closed: tuple[str, ...] = ()) -> tuple[Path, Path, Path]:
    """Write nodes, edges and connections as SUMO plain XML in ``tmp``."""
    nod, edg, con = tmp / "wulin.nod.xml", tmp / "wulin.edg.xml", tmp / "wulin.con.xml"
    lines = ["<nodes>"]
    for n in sorted(tables.nodes.values(), key=lambda n: n.id):
        typ = {"signal": "traffic_light", "priority": "priority", "fringe": "priority"}[n.kind]
        tl = f' tl="{n.id}" tlType="static"' if n.kind == "signal" else ""
        lines.append(f'    <node id="{n.id}" x="{n.lon:.6f}" y="{n.lat:.6f}" type="{typ}"{tl}/>')
    nod.write_text("\n".join([*lines, "</nodes>"]) + "\n")
    edges = edges_of(tables, closed)
    lines = ["<edges>"]
    for eid in sorted(edges):
        e = edges[eid]
        allow = f' allow="{e["allow"]}"' if e["allow"] else ""
        lines.append(
            f'    <edge id="{eid}" from="{e["from"]}" to="{e["to"]}" name={quoteattr(str(e["name"]))} '
            f'numLanes="{e["lanes"]}" speed="{float(e["speed"]):.2f}" priority="{e["lanes"]}"{allow}/>'
        )
    edg.write_text("\n".join([*lines, "</edges>"]) + "\n")
    lines = ["<connections>"]
    for ein, eout, fl, tl in connections(tables, edges):
        lines.append(f'    <connection from="{ein}" to="{eout}" fromLane="{fl}" toLane="{tl}"/>')
    con.write_text("\n".join([*lines, "</connections>"]) + "\n")
    return nod, edg, con


def _netconvert(args: list[str], what: str) -> None:
    from sim.tools import sumo_binary

    res = subprocess.run([sumo_binary("netconvert"), *args], capture_output=True, text=True)
    if res.returncode != 0:
        raise WulinError(f"netconvert failed while {what}: {res.stderr.strip()[-2000:]}")


COMMON = [
    "--proj.utm", "true",
    "--no-turnarounds", "true",
    "--junctions.corner-detail", "0",
    "--output.street-names", "true",
    "--tls.default-type", "static",
    "--no-warnings", "true",
]


def first_pass(tables: Tables, out: Path, closed: tuple[str, ...] = ()) -> Path:
    """Network variant without signal programs (structure only) at ``out``."""
    with tempfile.TemporaryDirectory(prefix="wulin-build-") as d:
        nod, edg, con = plain_xml(tables, Path(d), closed)
        _netconvert(
            ["--node-files", str(nod), "--edge-files", str(edg), "--connection-files", str(con),
             *COMMON, "--output-file", str(out)],
            f"building {out.name} from the source tables",
        )
    return out


def add_programs(
    tables: Tables, first: Path, out: Path, flows: dict[tuple[str, str], float] | None = None
) -> Path:
    """Write ``out``: the first-pass network with field-like programs split for ``flows``."""
    from networks.wulin.signals import write_programs

    with tempfile.TemporaryDirectory(prefix="wulin-build-") as d:
        tll = Path(d) / "field.tll.xml"
        write_programs(tables, first, tll, flows)
        _netconvert(
            ["--sumo-net-file", str(first), "--tllogic-files", str(tll), *COMMON[2:],
             "--output-file", str(out)],
            f"adding the field-like programs to {out.name}",
        )
    return out


def build(out_dir: Path = HERE, *, progress: bool = True) -> list[Path]:
    """Rebuild both networks, the demand and the scenario additional files in ``out_dir``.

    The demand is calibrated on the first-pass networks (routes depend only on the road
    structure); its design-hour movement flows then set the splits of the field-like plans
    (AM peak hours for the day network, evening hours for the evening variant).
    """
    from networks.wulin.demand import (
        AM_DESIGN_HOURS,
        EVENING_HOURS,
        movement_flows,
        plan_demand,
        write_demand,
    )

    out_dir = Path(out_dir)
    (out_dir / "demand").mkdir(parents=True, exist_ok=True)
    tables = load_tables()
    with tempfile.TemporaryDirectory(prefix="wulin-build-") as d:
        day1 = first_pass(tables, Path(d) / "day.net.xml")
        eve1 = first_pass(tables, Path(d) / "evening.net.xml", EVENING_CLOSED)
        demand = plan_demand(tables, day1, eve1, progress=progress)
        routes, flows, eve_routes, eve_flows = demand
        net = add_programs(
            tables, day1, out_dir / NET, movement_flows(tables, routes, flows, AM_DESIGN_HOURS)
        )
        evening = add_programs(
            tables, eve1, out_dir / NET_EVENING,
            movement_flows(tables, eve_routes, eve_flows, EVENING_HOURS),
        )
    return [net, evening, *write_demand(tables, demand, net, out_dir)]


if __name__ == "__main__":
    for p in build():
        print(p)
