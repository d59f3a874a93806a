"""The time-space diagram along the corridor a plan affects, read from the ``.net.xml``.

The corridor is the straightest road through the plan's signal: from the signal, each way,
the next edge is the one that turns least (under :data:`MAX_TURN_DEG`), as far as the network
goes; of the signal's axes the one with the most signals is drawn.  For each signal on it the
diagram shows, over two cycles, when the straight movements along the corridor (the
``dir="s"`` connections of that signal whose approach is parallel to it) have green, yellow or
red (:meth:`TimingPlan.timeline`, the plan timeline the optimiser's diagrams draw too): the
proposal for its own signal, the live plan elsewhere, grey where no plan is on record.
Light XML read (no SUMO); ids are escaped in the SVG.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

from console.diagrams import COLOURS as STAGE_COLOURS
from controllers.plan import TimingPlan
from sim.errors import WulinError

MAX_TURN_DEG = 35.0
MAX_HOPS = 40
PARALLEL_COS = 0.9
COLOURS = {"G": STAGE_COLOURS["green"], "y": STAGE_COLOURS["yellow"], "r": STAGE_COLOURS["red"]}


@dataclass(frozen=True)
class Edge:
    """A road edge between two junctions."""

    id: str
    start: str
    end: str
    length: float
    heading: tuple[float, float]  # unit vector from start to end


@dataclass
class Roads:
    """What the corridor and the diagram need from a network."""

    edges: dict[str, Edge] = field(default_factory=dict)
    out: dict[str, list[Edge]] = field(default_factory=dict)
    signals: set[str] = field(default_factory=set)
    straight: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # tl -> (link index, from edge)


def read_roads(net: Path) -> Roads:
    """Edges, signals and each signal's straight links from ``net``."""
    roads, pos = Roads(), {}
    try:
        for _, el in ET.iterparse(net, events=("end",)):
            if el.tag == "junction" and el.get("type") != "internal":
                pos[el.get("id", "")] = (float(el.get("x", 0)), float(el.get("y", 0)))
                if el.get("type") == "traffic_light":
                    roads.signals.add(el.get("id", ""))
            elif el.tag == "edge" and el.get("function") != "internal" and el.get("from"):
                lane = el.find("lane")
                roads.edges[el.get("id", "")] = Edge(el.get("id", ""), el.get("from", ""), el.get("to", ""),
                                                     float(lane.get("length", 0)) if lane is not None else 0.0, (0, 0))
                el.clear()
            elif el.tag == "connection" and el.get("tl") and el.get("dir") == "s":
                roads.straight.setdefault(el.get("tl", ""), []).append((int(el.get("linkIndex", -1)), el.get("from", "")))
    except (ET.ParseError, ValueError, OSError) as exc:
        raise WulinError(f"{net}: cannot read it as a SUMO network ({exc})") from None
    for e in list(roads.edges.values()):
        (x0, y0), (x1, y1) = pos.get(e.start, (0, 0)), pos.get(e.end, (0, 0))
        norm = math.hypot(x1 - x0, y1 - y0) or 1.0
        roads.edges[e.id] = edge = Edge(e.id, e.start, e.end, e.length, ((x1 - x0) / norm, (y1 - y0) / norm))
        roads.out.setdefault(edge.start, []).append(edge)
    return roads


def _walk(roads: Roads, first: Edge) -> list[tuple[str, float]]:
    """Signals met going straight on from ``first`` (with the distance travelled)."""
    found, dist, edge, seen = [], 0.0, first, {first.start}
    for _ in range(MAX_HOPS):
        dist += edge.length
        if edge.end in seen:
            break
        seen.add(edge.end)
        if edge.end in roads.signals:
            found.append((edge.end, dist))
        options = [(e.heading[0] * edge.heading[0] + e.heading[1] * edge.heading[1], e)
                   for e in roads.out.get(edge.end, []) if e.end != edge.start]
        best = max(options, default=None, key=lambda o: o[0])
        if best is None or best[0] < math.cos(math.radians(MAX_TURN_DEG)):
            break
        edge = best[1]
    return found


@dataclass(frozen=True)
class Corridor:
    """Signals along the corridor with their distance (m) from its first one, and its heading."""

    signals: tuple[tuple[str, float], ...]
    heading: tuple[float, float]


def corridor(roads: Roads, signal_id: str) -> Corridor:
    """The straight corridor through ``signal_id`` holding the most signals."""
    best = Corridor(((signal_id, 0.0),), (1.0, 0.0))
    for ahead in roads.out.get(signal_id, []):
        back = min(roads.out.get(signal_id, []), key=lambda e: e.heading[0] * ahead.heading[0]
                   + e.heading[1] * ahead.heading[1])
        behind = _walk(roads, back) if back is not ahead else []
        line = [(s, -d) for s, d in reversed(behind)] + [(signal_id, 0.0)] + _walk(roads, ahead)
        if len(line) > len(best.signals):
            start = line[0][1]
            best = Corridor(tuple((s, d - start) for s, d in line), ahead.heading)
    return best


def through_links(roads: Roads, signal_id: str, heading: tuple[float, float]) -> list[int]:
    """The signal's straight links whose approach is parallel to ``heading`` (either way)."""
    out = []
    for index, src in roads.straight.get(signal_id, []):
        e = roads.edges.get(src)
        if e and abs(e.heading[0] * heading[0] + e.heading[1] * heading[1]) >= PARALLEL_COS:
            out.append(index)
    return out


def serves(roads: Roads, signal_id: str, heading: tuple[float, float], state: str) -> bool:
    """Whether a stage (its green state string) gives green to a straight movement along ``heading``."""
    return any(0 <= i < len(state) and state[i] in "Gg" for i in through_links(roads, signal_id, heading))


def time_space_svg(roads: Roads, line: Corridor, plans: dict[str, TimingPlan]) -> str:
    """The diagram: distance up, two cycles of time across; the corridor's green, yellow and red."""
    span = 2 * max((p.cycle for p in plans.values()), default=90.0)
    top = max((d for _, d in line.signals), default=0.0) or 1.0
    w, h, left = 720.0, 60.0 + 40.0 * len(line.signals), 70.0
    sx, sy = (w - left - 10) / span, (h - 50) / top
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="tsd" width="{w:.0f}" height="{h:.0f}" role="img">']
    for sid, dist in line.signals:
        y = h - 30 - dist * sy
        parts.append(f'<text x="2" y="{y + 4:.1f}" font-size="11">{escape(sid)} {dist:.0f} m</text>')
        plan = plans.get(sid)
        if plan is None:
            parts.append(f'<rect x="{left}" y="{y - 4:.1f}" width="{span * sx:.1f}" height="8" fill="#bbb">'
                         '<title>no plan on record</title></rect>')
            continue
        for iv in plan.timeline(through_links(roads, sid, line.heading), 0.0, span):
            parts.append(f'<rect x="{left + iv.start * sx:.1f}" y="{y - 4:.1f}" width="{(iv.end - iv.start) * sx:.1f}" '
                         f'height="8" fill="{COLOURS[iv.colour]}"/>')
    parts.append(f'<text x="{left}" y="{h - 8:.0f}" font-size="11">0 s</text>'
                 f'<text x="{left + span * sx - 40:.1f}" y="{h - 8:.0f}" font-size="11">{span:g} s</text></svg>')
    return "".join(parts)
