"""Webster's method: offline plans from demand in a time window, and online per-cycle splits.

Webster (1958): with critical flow ratios ``y_k`` (flow / saturation flow of the most loaded
lane served by stage ``k``), ``Y = sum(y_k)`` and lost time ``L`` per cycle,

    C0 = (1.5 L + 5) / (1 - Y),      g_k = (C0 - L) * y_k / Y.

* :func:`lane_flows_from_demand` turns the scenario's route files (vehicles, trips, flows,
  routes, route distributions) into vehicles per hour on each controlled in-lane for a chosen
  window: each route's consecutive edge pairs are the turning movements it makes, and a
  turn's flow is shared evenly among the lanes that carry it.  Trips and flows given by
  ``from``/``to`` are routed on the fastest path of the empty network, as SUMO does.
* :func:`webster_plans` makes one :class:`~controllers.plan.TimingPlan` per signal, keeping the
  signal's stage structure (its program's green states) and replacing the greens.
* ``webster`` runs those plans as SUMO programs (native, like ``fixed-time``).
* ``webster-online`` drives the actuator with a plan clock per signal and recomputes the splits
  at every cycle boundary from stop-line counts measured over the last cycle (SUMO has no
  such program type).
* :func:`coordinate_corridor` is a plan transform: a common cycle along a corridor and offsets
  that give a green wave at a chosen progression speed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from controllers.base import Capabilities, ControllerBase, Decision
from controllers.native import NativeController
from sim.errors import WulinError

if TYPE_CHECKING:
    from controllers.plan import TimingPlan
    from sim.scenario import Scenario
    from sim.state import DistrictLayout, DistrictState
    from sim.topology import SignalSpec

SAT_FLOW = 1800.0  # veh/h of green per lane (HCM base; urban China often 1550-1650)


# ------------------------------------------------------------------ the formula
def webster_timing(
    y: Sequence[float], clearance: float, *, min_green: float = 5.0, min_cycle: float = 40.0,
    max_cycle: float = 180.0, y_cap: float = 0.9, startup_lost: float = 2.0,
) -> tuple[float, list[float]]:
    """Webster's cycle and greens for critical flow ratios ``y`` (one per stage).

    Args:
        y: Critical flow ratio of each stage.
        clearance: Yellow plus all-red after each stage, seconds.
        min_green: Smallest green, seconds.
        min_cycle: Smallest cycle, seconds.
        max_cycle: Largest cycle (also used when the intersection is oversaturated).
        y_cap: ``Y`` above this is treated as oversaturated (cycle = ``max_cycle``).
        startup_lost: Start-up lost time per stage, seconds (lost time = clearance - 1 s of
            yellow used + start-up, about 4 s per stage with 3+2 s clearance).

    Returns:
        ``(cycle, greens)`` with whole-second greens; ``cycle = sum(greens) + n * clearance``.
    """
    # plain floats, not numpy: webster-online calls this at every cycle of every signal, and
    # for a handful of stages numpy's call overhead is most of the cost (same results: the
    # same operations in the same order; numpy's sum is sequential below 8 values)
    n = len(y)
    ys = [max(float(v), 0.0) for v in y]
    lost = n * (clearance - 1.0 + startup_lost)
    big_y = 0.0
    if n < 8:
        for v in ys:
            big_y += v
    else:
        big_y = float(np.sum(ys))
    if big_y <= 1e-9:  # no demand: the shortest cycle, equal greens
        ys, big_y = [1.0] * n, float(n)
        c0 = min_cycle
    elif big_y >= y_cap:
        c0 = max_cycle
    else:
        c0 = (1.5 * lost + 5.0) / (1.0 - big_y)
    c0 = min(max(c0, min_cycle, n * (min_green + clearance)), max_cycle)
    effective = c0 - n * clearance
    greens = [max(min_green, float(round(effective * yk / big_y))) for yk in ys]
    return sum(greens) + n * clearance, greens


def stage_ratios(spec: SignalSpec, lane_flow: dict[str, float], sat_flow: float = SAT_FLOW
                 ) -> list[float]:
    """Critical flow ratio of each stage: the most loaded lane it serves.

    A lane served in several stages (a shared right turn, say) counts its flow divided among
    them, so a lane green all the time does not dictate every stage.
    """
    served = [set(spec.lanes_of_stage(k)) for k in range(spec.n_stages)]
    n_serving = {lane: sum(lane in s for s in served) for lane in spec.in_lanes}
    return [
        max((lane_flow.get(lane, 0.0) / n_serving[lane] / sat_flow for lane in served[k]),
            default=0.0)
        for k in range(spec.n_stages)
    ]


# ------------------------------------------------------------------ demand
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


# ------------------------------------------------------------------ plans
def network_intergreen(spec: SignalSpec) -> tuple[float, float]:
    """``(yellow, all_red)`` of the signal's own program (mean per stage, as in its plan)."""
    from controllers.fixed_time import plan_from_spec

    base = plan_from_spec(spec)
    return float(base.yellow), float(base.all_red)


def webster_plan(spec: SignalSpec, lane_flow: dict[str, float], *, yellow: float | None = None,
                 all_red: float | None = None, min_green: float = 7.0, min_cycle: float = 40.0,
                 max_cycle: float = 150.0, sat_flow: float = SAT_FLOW, name: str = "webster",
                 cycle: float | None = None) -> TimingPlan:
    """A Webster plan for one signal (its program's stages, new cycle and greens).

    Webster retimes the cycle and the splits only: by default the intergreen (yellow and
    all-red) is the one the signal already has in the network's program, i.e. the field
    plan's, because clearance times come from approach speeds and intersection geometry,
    not from demand.  ``yellow`` / ``all_red`` override it.

    Args:
        yellow: Yellow seconds; default: the network program's.
        all_red: All-red seconds; default: the network program's.
        cycle: Force this cycle (a common cycle for coordination); greens keep Webster's ratios.
    """
    from controllers.fixed_time import plan_from_spec

    base = plan_from_spec(spec, min_green=min_green)
    yellow = float(base.yellow) if yellow is None else float(yellow)
    all_red = float(base.all_red) if all_red is None else float(all_red)
    if yellow <= 0 or all_red < 0:
        raise WulinError(f"webster plan for {spec.id!r}: need yellow > 0 and all_red >= 0 "
                         f"seconds, got yellow={yellow:g}, all_red={all_red:g}")
    y = stage_ratios(spec, lane_flow, sat_flow)
    # the plan's stages come from the program; map each to the spec's stage of the same state
    stage_y = []
    for st in base.stages:
        k = spec.stages.index(st.state) if st.state in spec.stages else -1
        stage_y.append(y[k] if k >= 0 else 0.0)
    clearance = yellow + all_red
    c, greens = webster_timing(stage_y, clearance, min_green=min_green, min_cycle=min_cycle,
                               max_cycle=max_cycle)
    if cycle is not None:
        greens = _scale_greens(stage_y, greens, cycle, clearance, min_green)
    from dataclasses import replace

    stages = tuple(replace(st, min_green=min(min_green, g), green=g)
                   for st, g in zip(base.stages, greens, strict=True))
    total = sum(greens) + len(greens) * clearance
    return replace(base, stages=stages, cycle=total, offset=0.0, yellow=yellow, all_red=all_red,
                   name=name, source="webster")


def _scale_greens(y: Sequence[float], greens: Sequence[float], cycle: float, clearance: float,
                  min_green: float) -> list[float]:
    n = len(greens)
    effective = cycle - n * clearance
    if effective < n * min_green:
        raise WulinError(f"cycle {cycle:g} s is too short for {n} stages of {min_green:g} s green")
    weights = np.asarray(y, dtype=float) if sum(y) > 0 else np.ones(n)
    raw = np.maximum(min_green, effective * weights / weights.sum())
    out = [float(math.floor(g)) for g in raw]
    # hand out the rounding remainder one second at a time to the largest fractions
    rest = int(round(effective - sum(out)))
    order = np.argsort(-(raw - np.floor(raw)))
    for i in range(abs(rest)):
        j = int(order[i % n])
        out[j] += 1.0 if rest > 0 else (-1.0 if out[j] > min_green else 0.0)
    return out


def webster_plans(scenario: Scenario, layout: DistrictLayout,
                  window: tuple[float, float] | None = None, *, common_cycle: bool = False,
                  progress: bool = False, **kwargs: Any) -> list[TimingPlan]:
    """One Webster plan per signal from the scenario's demand in ``window``."""
    from sim.scenario import format_clock

    w = window or (scenario.begin, scenario.end)
    flows = lane_flows_from_demand(scenario, layout, w)
    name = f"webster {format_clock(w[0])}-{format_clock(w[1])}"
    specs = layout.specs
    it: Iterable[Any] = specs
    if progress:
        from rich.progress import track

        it = track(specs, description="Webster plans", transient=True)
    plans = [webster_plan(spec, flows, name=name, **kwargs) for spec in it]
    if common_cycle and plans:
        c = max(p.cycle for p in plans)
        plans = [webster_plan(spec, flows, name=name, cycle=c, **kwargs) for spec in specs]
    return plans


@dataclass(frozen=True)
class CorridorRoute:
    """Signals along a corridor in travel order.

    Attributes:
        signals: Signal ids in travel order.
        approach_edges: Per signal, the corridor edge that enters it (``""`` when unknown:
            then the approach is inferred from the neighbouring signals).
        distances: Metres from each signal to the next (``len(signals) - 1`` values).
        road: The road name as the network spells it, when the corridor was given by name.
    """

    signals: tuple[str, ...]
    approach_edges: tuple[str, ...]
    distances: tuple[float, ...]
    road: str = ""


def _norm_name(name: str) -> str:
    return " ".join(name.replace("\u2019", "'").replace("`", "'").casefold().split())


_HEADINGS = {"n": (0.0, 1.0), "s": (0.0, -1.0), "e": (1.0, 0.0), "w": (-1.0, 0.0)}


def corridor_by_name(net_file: Path | str, layout: DistrictLayout, road: str,
                     heading: str | None = None) -> CorridorRoute:
    """The signals along the road called ``road`` (the edges' ``name`` in the .net.xml).

    The road's edges are chained head to tail (never turning back onto the opposite
    carriageway) into one chain per travel direction; the signals an edge of a chain enters
    are the corridor, in travel order, and the distances between them are measured along the
    chain's edges.  Of the two directions, ``heading`` (``"N"``, ``"S"``, ``"E"``, ``"W"``)
    picks the one whose overall course is closest to it; by default the chain with the most
    signals (ties: the one heading more east, then north).

    Raises:
        WulinError: no edge has that name (naming a few that exist), or fewer than two
            signals lie along it.
    """
    import sumolib

    want = _norm_name(road)
    net = sumolib.net.readNet(str(net_file))
    edges = [e for e in net.getEdges() if e.getFunction() != "internal"
             and _norm_name(e.getName() or "") == want]
    if not edges:
        names = sorted({e.getName() for e in net.getEdges() if e.getName()})
        hint = (f"; roads in the network include {', '.join(repr(n) for n in names[:8])}"
                if names else "; this network's edges have no names, give signal ids instead")
        raise WulinError(f"corridor: no edge of {net_file} is named {road!r}{hint}")
    if heading is not None and heading.strip().lower()[:1] not in _HEADINGS:
        raise WulinError(f"corridor heading must be N, S, E or W, got {heading!r}")
    enters: dict[str, str] = {}  # edge id -> signal id the edge enters
    for spec in layout.specs:
        for mv in spec.movements:
            enters.setdefault(mv.from_edge, spec.id)
    ids = {e.getID() for e in edges}
    nxt: dict[str, Any] = {}
    has_prev: set[str] = set()
    for e in edges:
        to, frm = e.getToNode(), e.getFromNode()
        # the successor goes on from e's end and does not turn back to e's start
        cands = [f for f in to.getOutgoing() if f.getID() in ids and f.getToNode() != frm]
        if cands:
            def straightness(f: Any, e: Any = e) -> float:
                (x0, y0), (x1, y1) = e.getShape()[-2], e.getShape()[-1]
                (u0, v0), (u1, v1) = f.getShape()[0], f.getShape()[1]
                a, b = (x1 - x0, y1 - y0), (u1 - u0, v1 - v0)
                na, nb = math.hypot(*a) or 1.0, math.hypot(*b) or 1.0
                return (a[0] * b[0] + a[1] * b[1]) / (na * nb)
            f = max(cands, key=straightness)
            if f.getID() not in has_prev:
                nxt[e.getID()] = f
                has_prev.add(f.getID())
    chains: list[list[Any]] = []
    for e in edges:
        if e.getID() in has_prev:
            continue
        chain, seen = [e], {e.getID()}
        while chain[-1].getID() in nxt and nxt[chain[-1].getID()].getID() not in seen:
            chain.append(nxt[chain[-1].getID()])
            seen.add(chain[-1].getID())
        chains.append(chain)
    routes = [_chain_route(chain, enters, edges[0].getName()) for chain in chains]
    routes = [r for r in routes if len(r[0].signals) >= 2]
    if not routes:
        raise WulinError(f"corridor: fewer than two signals lie along {road!r} in {net_file}; "
                         "give signal ids instead")

    def course(r: tuple[CorridorRoute, tuple[float, float]]) -> tuple[float, float]:
        return r[1]

    if heading is not None:
        hx, hy = _HEADINGS[heading.strip().lower()[:1]]
        best = max(routes, key=lambda r: (course(r)[0] * hx + course(r)[1] * hy)
                   / (math.hypot(*course(r)) or 1.0))
    else:
        best = max(routes, key=lambda r: (len(r[0].signals), course(r)[0], course(r)[1]))
    return best[0]


def _chain_route(chain: Sequence[Any], enters: dict[str, str], road: str
                 ) -> tuple[CorridorRoute, tuple[float, float]]:
    signals: list[str] = []
    approach: list[str] = []
    dists: list[float] = []
    run = 0.0
    for e in chain:
        run += e.getLength()
        sid = enters.get(e.getID())
        if sid is not None and (not signals or signals[-1] != sid):
            if signals:
                dists.append(run)
            signals.append(sid)
            approach.append(e.getID())
            run = 0.0
    (x0, y0), (x1, y1) = chain[0].getFromNode().getCoord(), chain[-1].getToNode().getCoord()
    return (CorridorRoute(tuple(signals), tuple(approach), tuple(dists), road),
            (x1 - x0, y1 - y0))


def resolve_corridor(corridor: str | Sequence[str], layout: DistrictLayout,
                     net_file: Path | str | None = None, heading: str | None = None
                     ) -> CorridorRoute:
    """A corridor given as signal ids (a sequence or ``"A1,B1,C1"``) or as a road name.

    A string that is not a comma-separated list of signal ids is taken as a road name and
    looked up in ``net_file`` (:func:`corridor_by_name`).

    Raises:
        WulinError: an unknown signal, or a road name without ``net_file``.
    """
    if isinstance(corridor, str):
        parts = [c.strip() for c in corridor.split(",") if c.strip()]
        if not parts or not all(p in layout.index for p in parts):
            if "," in corridor:
                bad = next(p for p in parts if p not in layout.index)
                raise WulinError(f"corridor: signal {bad!r} is not in the network")
            if net_file is None:
                raise WulinError(f"corridor {corridor!r} is not a signal id; to use a road "
                                 "name, give the network file")
            return corridor_by_name(net_file, layout, corridor, heading)
        corridor = parts
    ids = list(corridor)
    for sid in ids:
        if sid not in layout.index:
            raise WulinError(f"corridor: signal {sid!r} is not in the network")
    specs = [layout.specs[layout.index[s]] for s in ids]
    dists = tuple(math.dist(a.position, b.position) for a, b in zip(specs, specs[1:],
                                                                    strict=False))
    return CorridorRoute(tuple(ids), ("",) * len(ids), dists)


def coordinate_corridor(plans: Sequence[TimingPlan], layout: DistrictLayout,
                        corridor: str | Sequence[str] | CorridorRoute, speed_kmh: float = 40.0,
                        *, net_file: Path | str | None = None, heading: str | None = None,
                        ) -> list[TimingPlan]:
    """A green wave along ``corridor`` as a plan transform.

    ``corridor`` is signal ids in travel order, or a road name such as ``"Yan'an Rd"``
    (matched against the edges' ``name`` in ``net_file``, signals ordered along the road,
    direction chosen by ``heading``; see :func:`corridor_by_name`).  All corridor signals
    get the longest of their cycles (greens rescaled in proportion), and offsets so that the
    stage serving the corridor direction starts when a vehicle at ``speed_kmh`` arrives from
    the previous signal (straight-line distance between signal ids; distance along the road
    for a road name).  Other plans are returned unchanged.

    Raises:
        WulinError: unknown signal or road, no plan for a signal, or no stage serving the
            corridor.
    """
    if speed_kmh <= 0:
        raise WulinError(f"corridor speed must be > 0 km/h, got {speed_kmh}")
    route = corridor if isinstance(corridor, CorridorRoute) else resolve_corridor(
        corridor, layout, net_file, heading)
    sigs = list(route.signals)
    by_id = {p.signal_id: p for p in plans}
    for sid in sigs:
        if sid not in layout.index:
            raise WulinError(f"corridor: signal {sid!r} is not in the network")
        if sid not in by_id:
            raise WulinError(f"corridor: no plan given for signal {sid!r}")
    if len(sigs) < 2:
        return list(plans)
    cycle = max(by_id[s].cycle for s in sigs)
    v = speed_kmh / 3.6
    t_arrive = 0.0
    prev = None
    for j, sid in enumerate(sigs):
        spec = layout.specs[layout.index[sid]]
        plan = by_id[sid]
        clearance = plan.yellow + plan.all_red
        if plan.cycle != cycle:
            greens = [s.green for s in plan.stages]
            plan = plan.with_splits(_scale_greens(greens, greens, cycle, clearance,
                                                  min(s.min_green for s in plan.stages)))
        if j > 0:
            t_arrive += route.distances[j - 1] / v
        if route.approach_edges[j]:
            moves = [mv for mv in spec.movements if mv.from_edge == route.approach_edges[j]]
        elif prev is not None:
            moves = [mv for mv in spec.movements
                     if any(m2.to_edge == mv.from_edge for m2 in prev.movements)]
        else:
            nxt = layout.specs[layout.index[sigs[1]]]
            moves = [mv for mv in spec.movements
                     if any(m2.from_edge == mv.to_edge for m2 in nxt.movements)]
        k = _corridor_stage(plan, moves)
        if k < 0:
            raise WulinError(f"corridor: no stage of {sid!r} serves the corridor direction; are "
                             f"{', '.join(sigs)} adjacent and in travel order?")
        # offset = time in the cycle when stage 0 starts; stage k must start at t_arrive
        by_id[sid] = plan.with_offset((t_arrive - plan.stage_starts[k]) % cycle)
        prev = spec
    return [by_id[p.signal_id] for p in plans]


def _corridor_stage(plan: TimingPlan, moves: Sequence[Any]) -> int:
    """The stage serving the most through movements of ``moves`` (then any of them); -1 if none."""
    best, best_score = -1, (0, 0)
    for j, st in enumerate(plan.stages):
        through = sum(st.state[m.index] in "Gg" and m.direction == "s" for m in moves)
        anyg = sum(st.state[m.index] in "Gg" for m in moves)
        if (through, anyg) > best_score:
            best, best_score = j, (through, anyg)
    return best


class WebsterController(NativeController):
    """Offline Webster plans for a time window, run as SUMO static programs.

    Args:
        window: ``(begin, end)`` seconds or ``"07:00-09:00"``; default: the scenario's window.
        common_cycle: One cycle for all signals (the largest Webster cycle).
        corridor: A green wave along signal ids in travel order, or along a road named in
            the network (``"Yan'an Rd"``); the transform equalises cycles along it.
        heading: Travel direction (N, S, E, W) of a corridor given by road name.
        speed_kmh: Progression speed of the green wave.
        **plan_params: ``yellow``, ``all_red`` (default: the network program's intergreen),
            ``min_green``, ``min_cycle``, ``max_cycle``,
            ``sat_flow``.
    """

    name = "webster"

    def __init__(self, window: str | tuple[float, float] | None = None,
                 common_cycle: bool = False, corridor: str | Sequence[str] = (),
                 heading: str | None = None, speed_kmh: float = 40.0,
                 decision_interval: float = 60.0, **plan_params: float) -> None:
        self.window = parse_window(window) if window is not None else None
        self.common_cycle = common_cycle
        self.corridor = corridor if isinstance(corridor, str) else tuple(corridor)
        self.heading = heading
        self.speed_kmh = speed_kmh
        self.plan_params = plan_params
        self.decision_interval = float(decision_interval)
        self.plans: list[TimingPlan] = []

    def make_plans(self, scenario: Scenario) -> list[TimingPlan]:
        plans = webster_plans(scenario, self.layout, self.window, common_cycle=self.common_cycle,
                              **self.plan_params)
        if self.corridor:
            plans = coordinate_corridor(plans, self.layout, self.corridor, self.speed_kmh,
                                        net_file=scenario.net_file, heading=self.heading)
        return plans

    def sumo_additional_files(self, scenario: Scenario, workdir: Path) -> list[Path]:
        from controllers.plan import plans_to_additional

        self.plans = self.make_plans(scenario)
        path = Path(workdir) / "wulin_webster.add.xml"
        path.write_text(plans_to_additional(self.plans, "wulin-webster"))
        return [path]


def parse_window(window: str | tuple[float, float]) -> tuple[float, float]:
    """``"07:00-09:00"`` or ``(25200, 32400)`` -> seconds since midnight."""
    from sim.scenario import parse_clock

    if isinstance(window, str):
        parts = window.split("-")
        if len(parts) != 2:
            raise WulinError(f"--window: expected HH:MM-HH:MM such as 07:00-09:00, got {window!r}")
        w = (parse_clock(parts[0], "--window start"), parse_clock(parts[1], "--window end"))
    else:
        w = (float(window[0]), float(window[1]))
    if not w[1] > w[0]:
        raise WulinError(f"--window: end must be after start, got {window!r}")
    return w


# ------------------------------------------------------------------ online
class OnlineWebsterController(ControllerBase):
    """Webster splits recomputed every cycle from flows measured at the stop lines.

    Each signal runs its own cycle clock through the actuator.  At every cycle boundary the
    vehicles counted per in-lane over the cycle (E1 loops at the stop line, added by the
    episode loop) are turned into flow ratios, smoothed, and Webster's formula gives the next
    cycle and greens.  Stage order is the program's.

    Two ways to drive it, the same plan: the episode loop hands each signal's whole next cycle
    to SUMO (``whole_cycles``: :meth:`plan_cycles` at the boundary ->
    :meth:`~sim.actuator.SignalActuator.run_cycle` -> :meth:`cycle_booked` with the cycle's
    end), so Python stops once per cycle per signal; any other driver calls :meth:`act`,
    which asks for each stage at the end of the previous green (one stop per stage).

    Args:
        yellow: Yellow seconds; default: each signal's own (its network program's).
        all_red: All-red seconds; default: each signal's own.
        min_green: Smallest green.
        min_cycle: Smallest cycle.
        max_cycle: Largest cycle.
        sat_flow: Saturation flow, veh/h of green per lane.
        smoothing: Weight of the newest cycle's flows (1 = no memory).
    """

    name = "webster-online"
    capabilities = Capabilities(needs_state=False, lane_counts=True, whole_cycles=True,
                                own_schedule=True)

    def __init__(self, yellow: float | None = None, all_red: float | None = None,
                 min_green: float = 7.0, min_cycle: float = 40.0, max_cycle: float = 150.0,
                 sat_flow: float = SAT_FLOW, smoothing: float = 0.5) -> None:
        if not 0 < smoothing <= 1:
            raise WulinError(f"webster-online: smoothing must be in (0, 1], got {smoothing}")
        if (yellow is not None and not yellow > 0) or (all_red is not None and not all_red >= 0):
            raise WulinError(f"webster-online: need yellow > 0 and all_red >= 0, got "
                             f"{yellow}, {all_red}")
        self.decision_interval = 1.0
        self.yellow_arg, self.all_red_arg = yellow, all_red
        self.min_green = float(min_green)
        self.min_cycle, self.max_cycle = float(min_cycle), float(max_cycle)
        self.sat_flow = float(sat_flow)
        self.smoothing = float(smoothing)
        self.actuator_params: dict[str, Any] = {}

    def reset(self, layout: DistrictLayout, seed: int) -> None:
        from controllers import kernels

        super().reset(layout, seed)
        n = layout.n_signals
        inter = [network_intergreen(spec) for spec in layout.specs]
        self.yellow = np.array([y if self.yellow_arg is None else float(self.yellow_arg)
                                for y, _ in inter])
        self.all_red = np.array([r if self.all_red_arg is None else float(self.all_red_arg)
                                 for _, r in inter])
        self.clearance = self.yellow + self.all_red
        # per signal: which of its in-lanes each stage serves, and by how many stages each
        # lane is served (stage_ratios' rule, precomputed: it runs every cycle)
        self._stage_lanes: list[list[np.ndarray]] = []
        self._n_serving: list[np.ndarray] = []
        for s_, spec in enumerate(layout.specs):
            local = {lane: i for i, lane in enumerate(layout.in_lanes[layout.signal_slice(s_)])}
            idx = [np.array([local[x] for x in spec.lanes_of_stage(k)], dtype=np.int64)
                   for k in range(spec.n_stages)]
            serving = np.zeros(len(local))
            for ix in idx:
                serving[ix] += 1
            self._stage_lanes.append(idx)
            self._n_serving.append(np.maximum(serving, 1))
        # greens never shorter than the actuator's minimum, never capped below the plan
        self.actuator_params = {"yellow": self.yellow, "all_red": self.all_red,
                                "min_green": self.min_green, "max_green": self.max_cycle}
        # per-signal work runs at every stage end: plain Python lists (a numpy scalar read or
        # write costs ~100 ns, a list element ~10 ns)
        self._lanes = [(int(layout.in_ptr[s_]), int(layout.in_ptr[s_ + 1])) for s_ in range(n)]
        self._clearance_l = self.clearance.tolist()
        # a cycle boundary (flows -> Webster's greens) is one compiled call on flat arrays
        # (``kernels.webster_online_loop``): the plain-Python version cost ~20 µs per cycle
        # on the caches SUMO's steps leave cold, most of webster-online's own time
        rows = [ix for idx in self._stage_lanes for ix in idx]
        lo_of = [lo for lo, _ in self._lanes]
        self._stage_ptr = np.cumsum([0] + [len(idx) for idx in self._stage_lanes], dtype=np.int64)
        self._lane_ptr = np.cumsum([0] + [len(ix) for ix in rows], dtype=np.int64)
        self._stage_lane_idx = np.concatenate(
            [ix + lo_of[s_] for s_, idx in enumerate(self._stage_lanes) for ix in idx]
            + [np.zeros(0, np.int64)]).astype(np.int64)
        self._n_serving_all = np.concatenate(self._n_serving + [np.zeros(0)]).astype(np.float64)
        self._in_ptr = np.ascontiguousarray(layout.in_ptr)
        self.counts = np.zeros(layout.n_in)
        self.counts_at = np.zeros(layout.n_in)
        self.flow = np.full(layout.n_in, math.nan)
        self._counts_checked: np.ndarray | None = None
        self._greens_buf = np.zeros(max(spec.n_stages for spec in layout.specs) if n else 1)
        self._kernel = kernels.entry_point(kernels.jitted("webster_online"), self._kernel_args(
            0, 1.0, self.counts, 0.0))
        self.cycle_start = [math.nan] * n
        self.greens: list[list[float]] = []
        for spec in layout.specs:
            g = [max(self.min_green, float(spec.phases[i].duration)) for i in spec.stage_phases]
            self.greens.append(g)
        self.cycles: list[tuple[float, float]] = []  # (time, cycle) of every recomputation
        self.k = [0] * n
        self.boundary = [-math.inf] * n
        self.started = [False] * n
        self._keep = np.full(n, -1, dtype=np.int32)
        self._next = -math.inf

    def _read_counts(self, s: int) -> np.ndarray:
        """Cumulative stop-line counts of all in-lanes, signal ``s``'s read from the loops now."""
        lo, hi = self._lanes[s]
        counter = getattr(self, "lane_counter", None)
        if counter is None:  # without loops (check_controller) flows stay unmeasured
            return self.counts
        return counter.read(slice(lo, hi))  # type: ignore[no-any-return]

    def _kernel_args(self, s: int, elapsed: float, counts: np.ndarray, clearance: float
                     ) -> tuple[Any, ...]:
        return (s, elapsed, counts, self.counts_at, self.flow, self._n_serving_all,
                self._in_ptr, self._stage_ptr, self._lane_ptr, self._stage_lane_idx, clearance,
                self.min_green, self.min_cycle, self.max_cycle, self.sat_flow, self.smoothing,
                self._greens_buf)

    def _recompute(self, s: int, elapsed: float) -> None:
        counts = self._read_counts(s)
        if counts is not self._counts_checked:  # the compiled call takes float64 exactly
            fixed = np.ascontiguousarray(counts, dtype=np.float64)
            if fixed is counts:
                self._counts_checked = counts
            counts = fixed
        c = self._kernel(*self._kernel_args(s, float(elapsed), counts, self._clearance_l[s]))
        self.greens[s] = self._greens_buf[:len(self.greens[s])].tolist()
        self.cycles.append((elapsed, c))

    def next_decision_time(self, time: float) -> float:
        """The next stage end (cycle end when run by cycles) of any signal."""
        return self._next

    def plan_cycles(self, time: float) -> list[tuple[int, list[float]]]:
        """The signals whose cycle ends at ``time``, with their next cycle's greens.

        At a signal's first call its cycle starts with the program's greens; at every later
        boundary the greens come from the flows counted over the cycle just ended.  Hand each
        to the actuator (``run_cycle``) and report its end with :meth:`cycle_booked`.
        """
        lim = time + 1e-9
        out = []
        for s, b in enumerate(self.boundary):  # (a plain loop: no comprehension frame)
            if b > lim:
                continue
            if math.isnan(self.cycle_start[s]):  # first call: start counting
                lo, hi = self._lanes[s]
                self.counts_at[lo:hi] = self._read_counts(s)[lo:hi]
            else:
                self._recompute(s, time - self.cycle_start[s])
            self.cycle_start[s] = time
            self.boundary[s] = math.inf  # until cycle_booked says when the cycle ends
            out.append((s, self.greens[s]))
        return out

    def cycle_booked(self, s: int, end: float) -> None:
        """Signal ``s``'s cycle, handed to SUMO, ends at ``end`` (its next boundary)."""
        self.boundary[s] = end
        self._next = min(self.boundary)

    def act(self, state: DistrictState) -> Decision:
        t = float(state.time)
        if t + 1e-9 < self._next:  # no stage ends before the next step: nothing to ask
            return self._keep.copy()
        out = self._keep.copy()
        clearance, greens, bnd, k_of = self._clearance_l, self.greens, self.boundary, self.k
        lim = t + 1e-9
        for s in [s for s, b in enumerate(bnd) if b <= lim]:
            if math.isnan(self.cycle_start[s]):  # first call: start the cycle in stage 0
                lo, hi = self._lanes[s]
                self.counts_at[lo:hi] = self._read_counts(s)[lo:hi]
                self.cycle_start[s] = t
                k_of[s] = 0
            else:
                k_of[s] += 1
                if k_of[s] >= len(greens[s]):  # cycle boundary: new splits
                    self._recompute(s, t - self.cycle_start[s])
                    self.cycle_start[s] = t
                    k_of[s] = 0
            k = k_of[s]
            # stage k is asked for at the end of the previous green; it gets the clearance
            # plus its green before the next stage is asked for
            bnd[s] = t + greens[s][k] + (clearance[s] if k or self.started[s] else 0.0)
            self.started[s] = True
            out[s] = k
        self._next = min(bnd)
        return out
