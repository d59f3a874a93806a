"""Demand read from a scenario's route files: vehicles per route and flow per controlled lane.

The route files (vehicles, trips, flows, routes, route distributions) are turned into
vehicles per hour on each controlled in-lane for a chosen window: each route's consecutive
edge pairs are the turning movements it makes, and a turn's flow is shared evenly among the
lanes that carry it.  Trips and flows given by ``from``/``to`` are routed on the fastest path
of the empty network, as SUMO does.  Webster's plans (:mod:`controllers.webster`) are sized
on these flows; reading SUMO's files belongs with the simulation layer.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.errors import WulinError

if TYPE_CHECKING:
    from sim.scenario import Scenario
    from sim.state import DistrictLayout


def _window_share(begin: float, end: float, w0: float, w1: float) -> float:
    if end <= begin:
        return 1.0 if w0 <= begin < w1 else 0.0
    return max(0.0, min(end, w1) - max(begin, w0)) / (end - begin)


def _flow_count(el: Any, begin: float, end: float, where: str) -> float:
    """Expected number of vehicles a ``<flow>`` inserts between begin and end."""
    a = el.attrib
    dur = max(end - begin, 0.0)
    try:
        if "vehsPerHour" in a:
            return float(a["vehsPerHour"]) * dur / 3600.0
        if "period" in a:
            p = a["period"]
            if p.startswith("exp("):
                return float(p[4:-1]) * dur
            return dur / float(p) if float(p) > 0 else 0.0
        if "probability" in a:
            return float(a["probability"]) * dur
        if "number" in a:
            return float(a["number"])
    except ValueError:
        raise WulinError(f"{where}: flow {a.get('id')!r} has a rate that is not a number") from None
    raise WulinError(f"{where}: flow {a.get('id')!r} has no rate (vehsPerHour, period, "
                     "probability or number)")


def _route_edges(el: Any) -> list[str] | None:
    r = el.find("route")
    if r is not None and r.get("edges"):
        return r.get("edges").split()
    return None


def demand_routes(route_files: Iterable[Path], net: Any, window: tuple[float, float],
                  ) -> dict[tuple[str, ...], float]:
    """Vehicles per route (edge tuple) departing within ``window`` (seconds since midnight)."""
    import xml.etree.ElementTree as ET

    w0, w1 = window
    routes: dict[str, list[tuple[list[str], float]]] = {}
    out: dict[tuple[str, ...], float] = {}
    fastest: dict[tuple[str, str], list[str]] = {}

    def route_of(el: Any, where: str) -> list[tuple[list[str], float]]:
        edges = _route_edges(el)
        if edges:
            return [(edges, 1.0)]
        rid = el.get("route")
        if rid:
            if rid not in routes:
                raise WulinError(f"{where}: {el.tag} {el.get('id')!r} uses unknown route {rid!r}")
            return routes[rid]
        src, dst = el.get("from"), el.get("to")
        if src and dst:
            key = (src, dst)
            if key not in fastest:
                try:
                    path, _ = net.getFastestPath(net.getEdge(src), net.getEdge(dst))
                except KeyError as exc:
                    raise WulinError(f"{where}: {el.tag} {el.get('id')!r}: edge {exc} not in the network") from None
                fastest[key] = [e.getID() for e in path] if path else []
            return [(fastest[key], 1.0)] if fastest[key] else []
        return []

    def add(choices: list[tuple[list[str], float]], n: float) -> None:
        total = sum(p for _, p in choices) or 1.0
        for edges, p in choices:
            key = tuple(edges)
            out[key] = out.get(key, 0.0) + n * p / total

    for path in route_files:
        where = str(path)
        try:
            root = ET.parse(path).getroot()
        except (ET.ParseError, OSError) as exc:
            raise WulinError(f"{where}: cannot read route file ({exc})") from None
        for el in root:
            tag = el.tag
            if tag == "route" and el.get("id"):
                routes[el.get("id")] = [(el.get("edges", "").split(), 1.0)]
            elif tag == "routeDistribution" and el.get("id"):
                routes[el.get("id")] = [
                    ((r.get("edges") or "").split() or routes.get(r.get("refId", ""), [([], 0)])[0][0],
                     float(r.get("probability", 1.0)))
                    for r in el.findall("route")
                ]
            elif tag in ("vehicle", "trip"):
                dep = el.get("depart", "0")
                try:
                    t = float(dep)
                except ValueError:
                    continue  # "triggered" and friends: no fixed time
                if w0 <= t < w1:
                    add(route_of(el, where), 1.0)
            elif tag == "flow":
                b, e = float(el.get("begin", 0)), float(el.get("end", 86400))
                share = _window_share(b, e, w0, w1)
                if share > 0:
                    n = _flow_count(el, b, e, where) * share
                    add(route_of(el, where), n)
    return out


def lane_flows_from_demand(scenario: Scenario, layout: DistrictLayout,
                           window: tuple[float, float] | None = None, scale: float | None = None,
                           *, peak_minutes: float | None = None, left_pce: float = 1.0,
                           ) -> dict[str, float]:
    """Design flow (veh/h, in through-car equivalents) on every controlled in-lane.

    Args:
        scenario: Its network and route files.
        layout: The signals.
        window: ``(begin, end)`` seconds since midnight; default: the scenario's window.
        scale: Demand factor; default: the scenario's ``scale``.
        peak_minutes: Design on the busiest sub-window of this length inside the window (the
            peak-hour-factor practice: a plan sized on the window's average fails in its
            peak); ``None`` uses the window's average.
        left_pce: Through-car equivalents of a left turn that is never protected (a permitted
            left yields to opposing traffic).  2.0 is an engineering assumption in the range
            HCM's permitted-left equivalents span for moderate opposing flow.
    """
    import sumolib

    w = window or (scenario.begin, scenario.end)
    if not w[1] > w[0]:
        raise WulinError(f"window {w}: end must be after begin")
    net = sumolib.net.readNet(str(scenario.net_file))
    sc_scale = scenario.scale if scale is None else scale
    turn_lanes: dict[tuple[str, str], list[tuple[str, float]]] = {}
    for spec in layout.specs:
        never_protected = [all(st[mv.index] != "G" for st in spec.stages) for mv in spec.movements]
        for mv, perm in zip(spec.movements, never_protected, strict=True):
            lanes = turn_lanes.setdefault((mv.from_edge, mv.to_edge), [])
            if all(lane != mv.in_lane for lane, _ in lanes):
                lanes.append((mv.in_lane, left_pce if (mv.is_left and perm) else 1.0))
    if peak_minutes is None or peak_minutes * 60.0 >= w[1] - w[0]:
        subs = [w]
    else:
        step = peak_minutes * 60.0
        n = int((w[1] - w[0]) // step)
        subs = [(w[0] + i * step, w[0] + (i + 1) * step) for i in range(n)]
    best = {lane: 0.0 for lane in layout.in_lanes}
    for sub in subs:
        routes = demand_routes(scenario.route_files, net, sub)
        factor = sc_scale * 3600.0 / (sub[1] - sub[0])
        flows = {lane: 0.0 for lane in layout.in_lanes}
        for edges, n_veh in routes.items():
            for e1, e2 in zip(edges, edges[1:], strict=False):
                lanes = turn_lanes.get((e1, e2))
                if lanes:
                    for lane, pce in lanes:
                        flows[lane] += n_veh * factor * pce / len(lanes)
        for lane, f in flows.items():
            best[lane] = max(best[lane], f)
    return best


def demand_window(route_files: Iterable[Path]) -> tuple[float, float] | None:
    """``(first, last)`` departure time in the route files: vehicles' and trips' ``depart``,
    flows' ``begin`` and ``end`` (a flow without ``end`` runs on: ``inf``); ``None`` when
    they schedule nothing at a fixed time."""
    import xml.etree.ElementTree as ET

    first, last = float("inf"), float("-inf")
    for path in route_files:
        try:
            for _ev, el in ET.iterparse(path):
                if el.tag in ("vehicle", "trip", "flow", "personFlow", "person"):
                    b, e = _departs(el)
                    first, last = min(first, b), max(last, e)
                    el.clear()
        except (ET.ParseError, OSError) as exc:
            raise WulinError(f"{path}: cannot read route file ({exc})") from None
    return (first, last) if first <= last else None


def _departs(el: Any) -> tuple[float, float]:
    if el.tag in ("flow", "personFlow"):
        end = el.get("end")
        return float(el.get("begin", 0)), float(end) if end is not None else float("inf")
    try:
        t = float(el.get("depart", "nan"))
    except ValueError:
        return float("inf"), float("-inf")  # "triggered" and friends: no fixed time
    return (t, t + 1.0) if t == t else (float("inf"), float("-inf"))


def active_window(scenario: Scenario) -> tuple[float, float]:
    """The demand's active window inside the scenario's: from the first departure to one
    second after the last (the scenario's window when demand runs all of it)."""
    found = demand_window(scenario.route_files)
    if found is None:
        return (scenario.begin, scenario.end)
    w = (max(found[0], scenario.begin), min(found[1], scenario.end))
    return w if w[1] > w[0] else (scenario.begin, scenario.end)
