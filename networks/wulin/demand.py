"""Time-of-day demand for the Wulin model: zones, OD flows, fixed routes, calibration, buses.

* Zones: every boundary road end (entry and exit edge) and the internal zones of
  ``estimates.csv`` (car parks and shopping centres round Wulin Square and Yan'an Rd), each
  with a peak-hour size (an estimate, except Tiyuchang Rd W, calibrated to counts).
* OD flows per hour, 07:00-20:00 (plus a 06:30-07:00 pre-load at the 07:00 rates): a
  production-constrained gravity model; productions and attractions follow the hourly
  profiles of the table; boundary-to-boundary pairs are weighted by side (same side,
  adjacent, opposite).  These flows are assumptions.
* Routes: fastest free-flow path per OD pair on the built network (fixed routes, so the
  counted movements are known exactly from the demand).
* Calibration: :func:`networks.wulin.calibration.ipf` scales the OD flows per hour to the
  counts at Qingchun Rd x Yan'an Rd and the Baochu Rd x Tiyuchang Rd boundary flows.
* Buses: fixed-period lines on Yan'an Rd (looping round Wulin Square on the west runway),
  Tiyuchang Rd, Fengqi Rd and Huancheng N Rd, both directions, serving the bus stops of
  ``estimates.csv`` (category ``bus_stop``): far-side bays a little after a junction, and
  the Wulin Square hub on the west runway (``demand/busstops.add.xml``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from networks.wulin.calibration import ipf, target_matches, targets
from networks.wulin.tables import HOURS, Tables, edge_id, local_xy

PRELOAD = 6.5 * 3600  # demand starts 30 min before 07:00 so scenarios can warm up
BUS_LINES = {
    "bus_yanan_loop": "f_ya_s ya_qc ya_fq ya_ty sq_sw sq_nw ya_hn ya_ty ya_fq ya_qc f_ya_s",
    "bus_tiyuchang_eb": "f_ty_w hw_ty wl_ty sq_sw ya_ty zs_ty zh_ty jg_ty f_ty_e",
    "bus_tiyuchang_wb": "f_ty_e jg_ty zh_ty zs_ty ya_ty sq_sw wl_ty hw_ty f_ty_w",
    "bus_fengqi_eb": "f_fq_w hw_fq fq_hx wl_fq ya_fq zs_fq zh_fq jg_fq f_fq_e",
    "bus_fengqi_wb": "f_fq_e jg_fq zh_fq zs_fq ya_fq wl_fq fq_hx hw_fq f_fq_w",
    "bus_huancheng_eb": "f_tianmushan wulinmen wl_hn sq_nw ya_hn zs_hn zh_hn jg_hn f_hn_e",
    "bus_huancheng_wb": "f_hn_e jg_hn zh_hn zs_hn ya_hn sq_nw wl_hn wulinmen f_tianmushan",
}


def zones(tables: Tables) -> dict[str, dict[str, Any]]:
    """Zone id -> {source edge, sink edge, side, size}."""
    out: dict[str, dict[str, Any]] = {}
    x0, y0 = local_xy(30.2675, 120.1665)
    for n in sorted(tables.nodes.values(), key=lambda n: n.id):
        if n.kind != "fringe":
            continue
        nb = next(
            (b if a == n.id else a)
            for r in tables.roads.values()
            for a, b in zip(r.nodes, r.nodes[1:], strict=False)
            if n.id in (a, b)
        )
        x, y = local_xy(n.lat, n.lon)
        ang = math.degrees(math.atan2(y - y0, x - x0))
        side = "E" if -45 <= ang < 45 else "N" if 45 <= ang < 135 else "S" if -135 <= ang < -45 else "W"
        out[n.id] = {
            "source": edge_id(n.id, nb), "sink": edge_id(nb, n.id), "side": side,
            "size": tables.num("zone", n.id, "vph"), "internal": False,
        }
    for key, _f, edge in tables.rows("zone_edge"):
        out[key] = {"source": edge, "sink": edge, "side": "I",
                    "size": tables.num("zone", key, "vph"), "internal": True}
    return out


def _pair_factor(tables: Tables, a: dict[str, Any], b: dict[str, Any]) -> float:
    if a["internal"] or b["internal"]:
        return tables.num("demand", "gravity", "internal")
    if a["side"] == b["side"]:
        return tables.num("demand", "gravity", "same_side")
    opposite = {"N": "S", "S": "N", "E": "W", "W": "E"}
    key = "opposite_side" if opposite[a["side"]] == b["side"] else "adjacent_side"
    return tables.num("demand", "gravity", key)


def routes_for(net: Any, zs: dict[str, dict[str, Any]]) -> dict[tuple[str, str], tuple[str, ...]]:
    """Fastest free-flow passenger-car route for every OD pair that has one."""
    out: dict[tuple[str, str], tuple[str, ...]] = {}
    for o in sorted(zs):
        src = net.getEdge(zs[o]["source"])
        for d in sorted(zs):
            if o == d or zs[o]["source"] == zs[d]["sink"]:
                continue
            path, _cost = net.getFastestPath(src, net.getEdge(zs[d]["sink"]), vClass="passenger")
            if path:
                out[(o, d)] = tuple(e.getID() for e in path)
    return out


def od_flows(tables: Tables, zs: dict[str, dict[str, Any]], routes: dict[tuple[str, str], Any], hour: int) -> dict[tuple[str, str], float]:
    """Uncalibrated OD flows (veh/h) for one hour: production-constrained gravity model."""
    pb, po, pi = tables.profile("boundary"), tables.profile("internal_out"), tables.profile("internal_in")
    flows: dict[tuple[str, str], float] = {}
    for o, zo in zs.items():
        prod = zo["size"] * (po[hour] if zo["internal"] else pb[hour])
        weights = {
            d: zd["size"] * (pi[hour] if zd["internal"] else pb[hour]) * _pair_factor(tables, zo, zd)
            for d, zd in zs.items() if (o, d) in routes
        }
        total = sum(weights.values())
        for d, w in weights.items():
            flows[(o, d)] = prod * w / total
    return flows


def calibrated_flows(tables: Tables, net: Any, progress: bool = False) -> tuple[dict[tuple[str, str], tuple[str, ...]], dict[int, dict[tuple[str, str], float]]]:
    """Routes and calibrated OD flows (veh/h) for every demand hour."""
    zs = zones(tables)
    routes = routes_for(net, zs)
    tg = targets(tables)
    seeds = _seed_routes(net, zs, routes, tg)
    routes.update({od: r for od, (r, _f) in seeds.items()})
    hours = list(HOURS)
    out = {}
    iterator: Any = hours
    if progress:
        from rich.progress import track

        iterator = track(hours, description="calibrating demand", transient=True)
    for h in iterator:
        base = od_flows(tables, zs, routes, h)
        base.update({od: f for od, (_r, f) in seeds.items()})
        out[h] = ipf(base, routes, [t for t in tg if t.hour == h])
    return routes, out


def _seed_routes(net: Any, zs: dict[str, dict[str, Any]], routes: dict[tuple[str, str], tuple[str, ...]], tg: list[Any]) -> dict[tuple[str, str], tuple[tuple[str, ...], float]]:
    """A route through every counted movement that no fastest OD route uses.

    Fitting can only scale existing flows, so a counted movement with no route gets one:
    from the nearest zone to the approach, through the movement, to the nearest zone after
    it (an assumption that only shapes where counted vehicles come from and go to).
    """
    out: dict[tuple[str, str], tuple[tuple[str, ...], float]] = {}
    done: set[tuple[str, ...]] = set()
    for t in tg:
        if t.edges in done or any(target_matches(t)(r) for r in routes.values()):
            continue
        done.add(t.edges)
        a, b = net.getEdge(t.edges[0]), net.getEdge(t.edges[-1])
        best_in = min(
            ((net.getFastestPath(net.getEdge(z["source"]), a, vClass="passenger"), o) for o, z in sorted(zs.items())),
            key=lambda x: (x[0][1] if x[0][0] else math.inf, x[1]),
        )
        best_out = min(
            ((net.getFastestPath(b, net.getEdge(z["sink"]), vClass="passenger"), d) for d, z in sorted(zs.items())),
            key=lambda x: (x[0][1] if x[0][0] else math.inf, x[1]),
        )
        (p_in, _c1), o = best_in
        (p_out, _c2), d = best_out
        if not p_in or not p_out:
            continue
        edges = tuple(e.getID() for e in p_in) + tuple(e.getID() for e in p_out)
        if len(t.edges) == 2 and edges[len(p_in) - 1 : len(p_in) + 1] != t.edges:
            edges = tuple(e.getID() for e in p_in[:-1]) + tuple(e.getID() for e in p_out)
        tag = "_".join(t.name.split()[1:]) if t.name.startswith("ya_qc") else "via"
        out[(o, f"{d}_via_{tag}")] = (edges, 10.0)
    return out


def routes_xml(
    tables: Tables,
    routes: dict[tuple[str, str], tuple[str, ...]],
    flows: dict[int, dict[tuple[str, str], float]],
    begin: float,
    end: float,
    buses: bool = True,
) -> str:
    """SUMO route file: vehicle types, routes, hourly flows clipped to ``begin``..``end``."""
    min_flow = tables.num("demand", "counts", "min_flow")
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        "<!-- generated by networks/wulin/build.py from estimates.csv and data/counts.csv; do not edit -->",
        "<routes>",
        '    <vType id="car" vClass="passenger" accel="2.6" decel="4.5" sigma="0.5" length="4.8" minGap="2.5" maxSpeed="16.67" speedDev="0.1"/>',
        '    <vType id="bus" vClass="bus" accel="1.2" decel="4.0" sigma="0.3" length="12" minGap="3" maxSpeed="13.89" speedDev="0.05"/>',
    ]
    used = sorted({od for hf in flows.values() for od, v in hf.items() if v >= min_flow and od in routes})
    for o, d in used:
        lines.append(f'    <route id="{o}__{d}" edges="{" ".join(routes[(o, d)])}"/>')
    if buses:
        for name, chain in BUS_LINES.items():
            nodes = chain.split()
            edges = " ".join(edge_id(a, b) for a, b in zip(nodes, nodes[1:], strict=False))
            lines.append(f'    <route id="{name}" edges="{edges}"/>')
    entries: list[tuple[float, str]] = []
    for h in sorted(flows):
        t0 = max(begin, h * 3600.0 if h != HOURS[0] else PRELOAD)
        t1 = min(end, (h + 1) * 3600.0)
        if t1 <= t0:
            continue
        for (o, d), v in sorted(flows[h].items()):
            if v < min_flow or (o, d) not in routes:
                continue
            entries.append((t0, f'    <flow id="h{h:02d}_{o}__{d}" type="car" route="{o}__{d}" begin="{t0:.0f}" '
                                f'end="{t1:.0f}" vehsPerHour="{v:.1f}" departLane="best" departSpeed="max"/>'))
    if buses:
        period = tables.num("demand", "bus", "period")
        dwell = tables.num("demand", "bus", "dwell")
        stops = bus_stops(tables)
        b0 = max(begin, PRELOAD)
        for k, name in enumerate(BUS_LINES):
            nodes = BUS_LINES[name].split()
            edges = [edge_id(a, b) for a, b in zip(nodes, nodes[1:], strict=False)]
            served = sorted((edges.index(e), sid) for sid, e in stops.items() if e in edges)
            body = "".join(
                f'\n        <stop busStop="{sid}" duration="{dwell:g}" parking="true"/>'
                for _i, sid in served
            )
            entries.append((b0, f'    <flow id="{name}" type="bus" route="{name}" begin="{b0 + 23 * k:.0f}" '
                                f'end="{end:.0f}" period="{period:g}" departLane="best" departSpeed="max">'
                                f"{body}\n    </flow>"))
    entries.sort(key=lambda e: e[0])  # SUMO wants departures sorted
    lines += [e[1] for e in entries]
    lines.append("</routes>")
    return "\n".join(lines) + "\n"


def bus_stops(tables: Tables) -> dict[str, str]:
    """Bus stop id -> edge, from ``estimates.csv`` (category ``bus_stop``), in file order."""
    return {key: value for key, field_, value in tables.rows("bus_stop") if field_ == "edge"}


def _stop_name(tables: Tables, sid: str) -> str:
    return tables.values.get(("bus_stop", sid, "name"), sid.replace("_", " "))


def busstops_xml(tables: Tables, net: Any) -> str:
    """Additional file with the bus stops (``busStop``), placed on their edges' curb lane.

    Raises:
        WulinError: a stop names an edge that is missing or too short for the stop.
    """
    from sim.errors import WulinError

    start = tables.num("demand", "bus", "stop_begin")
    length = tables.num("demand", "bus", "stop_length")
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        "<!-- bus stops from estimates.csv (category bus_stop); generated by networks/wulin/build.py -->",
        "<additional>",
    ]
    for sid, edge in bus_stops(tables).items():
        if not net.hasEdge(edge):
            raise WulinError(f"estimates.csv: bus_stop {sid}: edge {edge!r} is not in the network; fix it")
        e = net.getEdge(edge)
        if e.getLength() < start + length + 20:
            raise WulinError(
                f"estimates.csv: bus_stop {sid}: edge {edge} is {e.getLength():.0f} m long, too short "
                f"for a stop at {start:g}-{start + length:g} m; choose a longer edge"
            )
        name = quoteattr(_stop_name(tables, sid))
        lines.append(
            f'    <busStop id="{sid}" lane="{edge}_0" startPos="{start:g}" endPos="{start + length:g}" '
            f"name={name} lines=\"{' '.join(n for n, c in BUS_LINES.items() if _on_line(edge, c))}\"/>"
        )
    lines.append("</additional>")
    return "\n".join(lines) + "\n"


def _on_line(edge: str, chain: str) -> bool:
    a, _sep, b = edge.partition("-")
    nodes = chain.split()
    return any(x == a and y == b for x, y in zip(nodes, nodes[1:], strict=False))


INCIDENT_EDGE = "ya_fq-ya_ty"  # Yan'an Rd northbound, Fengqi Rd to Tiyuchang Rd
INCIDENT_BEGIN, INCIDENT_END = 7.75 * 3600, 8.25 * 3600  # 07:45-08:15


def incident_xml() -> str:
    """Additional file: the curb lane of Yan'an Rd northbound (Fengqi-Tiyuchang) blocked 07:45-08:15.

    The closure is a 30 m obstruction (a broken-down vehicle with its cones) standing in the
    curb lane from 150 m into the block for 30 minutes: traffic merges into the other two
    lanes past it, and right-turners from Fengqi Rd still enter the block (a lane closure
    by permissions would cut their only connection).  The obstruction writes no tripinfo,
    so trip KPIs only count real traffic.
    """
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<!-- AM incident: one lane of Yan'an Rd blocked for 30 minutes (generated by networks/wulin/build.py) -->\n"
        "<additional>\n"
        '    <vType id="obstruction" vClass="passenger" length="30" minGap="0" maxSpeed="13.89" '
        'color="1,0,0" guiShape="truck">\n'
        '        <param key="has.tripinfo.device" value="false"/>\n'
        "    </vType>\n"
        f'    <route id="incident_route" edges="{INCIDENT_EDGE}"/>\n'
        f'    <vehicle id="incident_yanan" type="obstruction" route="incident_route" depart="{INCIDENT_BEGIN:.0f}" '
        'departLane="0" departPos="180" departSpeed="0">\n'
        f'        <stop lane="{INCIDENT_EDGE}_0" startPos="150" endPos="180" until="{INCIDENT_END:.0f}"/>\n'
        "    </vehicle>\n"
        "</additional>\n"
    )


Routes = dict[tuple[str, str], tuple[str, ...]]
HourFlows = dict[int, dict[tuple[str, str], float]]
AM_DESIGN_HOURS = (7, 8)  # the AM peak hours whose movement flows set the day plans' splits
EVENING_HOURS = (18, 19)


def plan_demand(tables: Tables, net_file: Path, evening_net: Path, progress: bool = True) -> tuple[Routes, HourFlows, Routes, HourFlows]:
    """Calibrated day demand and the evening demand routed on the evening variant.

    Returns:
        Day routes, day flows per hour, evening routes, evening flows per hour (the
        calibrated 18:00-20:00 OD flows, routed round the pedestrian street).
    """
    import sumolib

    routes, flows = calibrated_flows(tables, sumolib.net.readNet(str(net_file)), progress=progress)
    eve_routes = routes_for(sumolib.net.readNet(str(evening_net)), zones(tables))
    eve_flows = {h: flows[h] for h in EVENING_HOURS}
    return routes, flows, eve_routes, eve_flows


def movement_flows(tables: Tables, routes: Routes, flows: HourFlows, hours: tuple[int, ...], buses: bool = True) -> dict[tuple[str, str], float]:
    """Design-hour flow (veh/h) of every movement (from edge, to edge).

    Each movement takes its largest hourly flow over ``hours``; buses count as two cars
    (a common passenger-car equivalent).
    """
    out: dict[tuple[str, str], float] = {}
    for h in hours:
        hour: dict[tuple[str, str], float] = {}
        for od, v in flows[h].items():
            r = routes.get(od)
            if r is None:
                continue
            for a, b in zip(r, r[1:], strict=False):
                hour[(a, b)] = hour.get((a, b), 0.0) + v
        if buses:
            per_hour = 2.0 * 3600.0 / tables.num("demand", "bus", "period")
            for chain in BUS_LINES.values():
                nodes = chain.split()
                edges = [edge_id(a, b) for a, b in zip(nodes, nodes[1:], strict=False)]
                for a, b in zip(edges, edges[1:], strict=False):
                    hour[(a, b)] = hour.get((a, b), 0.0) + per_hour
        for mv, v in hour.items():
            out[mv] = max(out.get(mv, 0.0), v)
    return out


def write_demand(tables: Tables, demand: tuple[Routes, HourFlows, Routes, HourFlows], net_file: Path, out_dir: Path) -> list[Path]:
    """Write ``demand/day.rou.xml`` (06:30-20:00), ``demand/evening.rou.xml``, the bus stops
    and the incident file."""
    import sumolib

    routes, flows, eve_routes, eve_flows = demand
    day = out_dir / "demand" / "day.rou.xml"
    day.write_text(routes_xml(tables, routes, flows, PRELOAD, 20 * 3600.0), encoding="utf-8")
    evening = out_dir / "demand" / "evening.rou.xml"
    evening.write_text(routes_xml(tables, eve_routes, eve_flows, 18.5 * 3600, 20 * 3600.0), encoding="utf-8")
    incident = out_dir / "demand" / "incident.add.xml"
    incident.write_text(incident_xml(), encoding="utf-8")
    stops = out_dir / "demand" / "busstops.add.xml"
    stops.write_text(busstops_xml(tables, sumolib.net.readNet(str(net_file))), encoding="utf-8")
    return [day, evening, incident, stops]
