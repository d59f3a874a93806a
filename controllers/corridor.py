"""The corridor green wave: a plan transform giving a common cycle and progression offsets.

A corridor is signal ids in travel order, or a road named in the network (its edges'
``name``), resolved to a :class:`CorridorRoute`.  :func:`coordinate_corridor` gives the
corridor's signals their longest cycle (greens rescaled in proportion) and offsets so that the
stage serving the corridor direction starts when a vehicle at the progression speed arrives
from the previous signal.  It transforms any plans (Webster's, the field's, a stored set).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controllers.splits import scale_greens
from sim.errors import WulinError

if TYPE_CHECKING:
    from controllers.plan import TimingPlan
    from sim.state import DistrictLayout


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
            f = max(cands, key=partial(straightness, e))
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


def straightness(e: Any, f: Any) -> float:
    """Cosine of the turn from sumolib edge ``e``'s last shape segment onto ``f``'s first (1: straight on)."""
    (x0, y0), (x1, y1) = e.getShape()[-2], e.getShape()[-1]
    (u0, v0), (u1, v1) = f.getShape()[0], f.getShape()[1]
    a, b = (x1 - x0, y1 - y0), (u1 - u0, v1 - v0)
    na, nb = math.hypot(*a) or 1.0, math.hypot(*b) or 1.0
    return (a[0] * b[0] + a[1] * b[1]) / (na * nb)


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
            plan = plan.with_splits(scale_greens(greens, greens, cycle, clearance,
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
