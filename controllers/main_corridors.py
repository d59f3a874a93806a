"""A network's main corridors, found from its signals and (when given) its demand.

The rule, for any network (Wulin, the grid, an imported one): a *link* of a corridor joins a
signal's straight-on movement (SUMO ``dir="s"``) from one approach to the next signal the road
reaches going straight on (through unsignalised junctions, turning less than
:data:`MAX_TURN_DEG`), provided that signal has a straight-on movement from the edge it is
reached by.  Following links from a signal approach no link leads to gives a *chain*: one
travel direction of a corridor.  A chain and the chain through the same signals the other way
form one corridor (a one-way road has one direction).  Corridors are ranked by the traffic on
their through movements (veh/h over both directions, from the demand) or, without demand, by
the approach lanes; a corridor whose signals all lie on a better-ranked one is dropped; the
first :data:`DEFAULT_LIMIT` are the main corridors.  The name is the road name most of the
corridor's length carries (the edges' ``name``), else ``first-last`` signal ids.

On the Wulin AM peak this gives Huancheng N Rd (from the Wulinmen junction, which Tianmushan Rd
enters straight on), Qingchun Rd and Fengqi Rd; on the grid, straight rows and columns.  The green wave
(:mod:`controllers.corridor`) takes a road by name, and this module returns the same
:class:`~controllers.corridor.CorridorRoute` per direction, with the through links and the
travel times at the speed limit that the progression (:mod:`controllers.progression`) needs.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from controllers.corridor import CorridorRoute, straightness

MAX_TURN_DEG = 35.0
MAX_HOPS = 40
DEFAULT_LIMIT = 3


@dataclass(frozen=True)
class CorridorDirection:
    """One travel direction of a corridor.

    Attributes:
        route: Signals in travel order, their approach edges, stop line to stop line metres.
        links: Per signal, its straight-on links along the corridor (SUMO link indices).
        travel_times: Seconds from each stop line to the next at the edges' speed limits.
        weight: Veh/h on its through movements (summed over its signals), or approach lanes.
        heading: ``"E"``, ``"W"``, ``"N"`` or ``"S"``: the compass point nearest its course.
    """

    route: CorridorRoute
    links: tuple[tuple[int, ...], ...]
    travel_times: tuple[float, ...]
    weight: float
    heading: str = ""

    @property
    def signals(self) -> tuple[str, ...]:
        return self.route.signals


@dataclass(frozen=True)
class MainCorridor:
    """A corridor: its name, its two directions (``backward`` is ``None`` on a one-way road).

    ``forward`` is the direction heading east (or north, for a mostly north-south corridor);
    distances on diagrams are measured from its first signal.
    """

    name: str
    forward: CorridorDirection
    backward: CorridorDirection | None

    @property
    def weight(self) -> float:
        return self.forward.weight + (self.backward.weight if self.backward else 0.0)

    @property
    def positions(self) -> dict[str, float]:
        """Metres from the forward direction's first stop line to each signal's."""
        out, run = {self.forward.signals[0]: 0.0}, 0.0
        for sid, d in zip(self.forward.signals[1:], self.forward.route.distances, strict=True):
            run += d
            out[sid] = run
        return out

    @property
    def directions(self) -> tuple[CorridorDirection, ...]:
        return (self.forward,) if self.backward is None else (self.forward, self.backward)


@dataclass(frozen=True)
class _Hop:
    """From one corridor node (signal, approach edge) to the next."""

    to: tuple[str, str]
    metres: float
    seconds: float
    edges: tuple[Any, ...]


def turn_flows(route_files: Iterable[Path], net: Any, window: tuple[float, float], scale: float = 1.0
               ) -> dict[tuple[str, str], float]:
    """Veh/h turning from one edge onto the next, over all routes departing in ``window``."""
    from sim.demand import demand_routes

    per_hour = scale * 3600.0 / max(window[1] - window[0], 1.0)
    out: dict[tuple[str, str], float] = {}
    for edges, n in demand_routes(route_files, net, window).items():
        for pair in zip(edges, edges[1:], strict=False):
            out[pair] = out.get(pair, 0.0) + n * per_hour
    return out


def main_corridors(net: Any, specs: Sequence[Any],
                   flows: Mapping[tuple[str, str], float] | None = None,
                   limit: int = DEFAULT_LIMIT) -> list[MainCorridor]:
    """The network's main corridors, best first (the rule is the module's docstring).

    Args:
        net: The network as ``sumolib.net.readNet`` reads it (the caller has it for the flows too).
        specs: The signals (:class:`sim.topology.SignalSpec`).
        flows: Veh/h per (from edge, to edge) (:func:`turn_flows`); ``None`` ranks by lanes.
        limit: How many corridors at most.
    """
    through = _through_movements(specs)
    entering = {approach: sid for sid, approach in through}
    hops = {node: hop for node in through if (hop := _next_node(net, through[node][0], entering)) is not None}
    chains = _chains(list(through), hops)
    directions = {tuple(sid for sid, _ in c): _direction(net, c, hops, through, flows) for c in chains}
    pos = {sp.id: sp.position for sp in specs}
    corridors: list[MainCorridor] = []
    used: set[tuple[str, ...]] = set()
    for sigs, d in directions.items():
        if sigs in used:
            continue
        back = directions.get(sigs[::-1])
        used.update({sigs, sigs[::-1]})
        d = replace(d, heading=_heading(pos[sigs[0]], pos[sigs[-1]]))
        back = back and replace(back, heading=_heading(pos[sigs[-1]], pos[sigs[0]]))
        fwd, bwd = (d, back) if d.heading in "EN" or back is None else (back, d)
        corridors.append(MainCorridor(_name(net, fwd, bwd), fwd, bwd))
    corridors.sort(key=lambda c: (-c.weight, -len(c.forward.signals), c.name))
    kept: list[MainCorridor] = []
    for c in corridors:
        if not any(set(c.forward.signals) <= set(k.forward.signals) for k in kept):
            kept.append(c)
    return kept[:limit]


def _through_movements(specs: Sequence[Any]) -> dict[tuple[str, str], tuple[str, tuple[int, ...]]]:
    """(signal, approach edge) -> (out edge, straight-on links) for every straight-on movement."""
    out: dict[tuple[str, str], tuple[str, tuple[int, ...]]] = {}
    for spec in specs:
        by_approach: dict[str, Counter[str]] = {}
        for mv in spec.movements:
            if mv.direction == "s":
                by_approach.setdefault(mv.from_edge, Counter())[mv.to_edge] += 1
        for approach, outs in by_approach.items():
            to_edge = outs.most_common(1)[0][0]
            links = tuple(sorted({mv.index for mv in spec.movements
                                  if mv.from_edge == approach and mv.to_edge == to_edge}))
            out[(spec.id, approach)] = (to_edge, links)
    return out


def _next_node(net: Any, out_edge: str, entering: Mapping[str, str]) -> _Hop | None:
    """Straight on from ``out_edge`` to the next signal approach with a straight-on movement
    (``entering``: approach edge -> its signal)."""
    edge, metres, seconds, edges = net.getEdge(out_edge), 0.0, 0.0, []
    for _ in range(MAX_HOPS):
        metres += edge.getLength()
        seconds += edge.getLength() / max(edge.getSpeed(), 0.1)
        edges.append(edge)
        if edge.getID() in entering:
            return _Hop((entering[edge.getID()], edge.getID()), metres, seconds, tuple(edges))
        if edge.getToNode().getType() == "traffic_light":
            return None  # a signal without a straight-on movement from here ends the road
        options = [f for f in edge.getOutgoing() if f.getToNode() != edge.getFromNode()
                   and f.getFunction() != "internal"]
        best = max(options, key=lambda f: straightness(edge, f), default=None)
        if best is None or straightness(edge, best) < math.cos(math.radians(MAX_TURN_DEG)) or best in edges:
            return None
        edge = best
    return None


def _chains(nodes: list[tuple[str, str]], hops: Mapping[tuple[str, str], _Hop]) -> list[list[tuple[str, str]]]:
    """Maximal chains of nodes joined by hops, from every node no hop leads to (two or more signals)."""
    reached = {h.to for h in hops.values()}
    out = []
    for node in nodes:
        if node in reached or node not in hops:
            continue
        chain, seen = [node], {node}
        while chain[-1] in hops and hops[chain[-1]].to not in seen:
            chain.append(hops[chain[-1]].to)
            seen.add(chain[-1])
        out.append(chain)
    return out


def _direction(net: Any, chain: list[tuple[str, str]], hops: Mapping[tuple[str, str], _Hop],
               through: Mapping[tuple[str, str], tuple[str, tuple[int, ...]]],
               flows: Mapping[tuple[str, str], float] | None) -> CorridorDirection:
    if flows is not None:
        weight = sum(flows.get((approach, through[(sid, approach)][0]), 0.0) for sid, approach in chain)
    else:
        weight = float(sum(net.getEdge(approach).getLaneNumber() for _, approach in chain))
    route = CorridorRoute(tuple(s for s, _ in chain), tuple(a for _, a in chain),
                          tuple(hops[n].metres for n in chain[:-1]))
    return CorridorDirection(route, tuple(through[n][1] for n in chain),
                             tuple(hops[n].seconds for n in chain[:-1]), weight)


def _heading(a: tuple[float, float], b: tuple[float, float]) -> str:
    dx, dy = b[0] - a[0], b[1] - a[1]
    return ("E" if dx > 0 else "W") if abs(dx) >= abs(dy) else ("N" if dy > 0 else "S")


def _name(net: Any, fwd: CorridorDirection, bwd: CorridorDirection | None) -> str:
    """The road name most of the corridor's length carries, else ``first-last`` signal ids."""
    metres: Counter[str] = Counter()
    for d in (fwd, bwd) if bwd else (fwd,):
        for approach in d.route.approach_edges[1:]:
            e = net.getEdge(approach)
            metres[e.getName() or ""] += e.getLength()
    name = max((n for n in metres if n), key=lambda n: metres[n], default="")
    return name or f"{fwd.signals[0]}-{fwd.signals[-1]}"
