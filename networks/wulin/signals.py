"""Field-like fixed-time signal programs for the Wulin model, derived from the built network.

The "field-like" baseline every controller is compared with mimics the stage-based plans
typical of Hangzhou arterials (WULIN_FACTS.md, "Signals and traffic"):

* Approaches are paired into *axes* (two opposite approaches) by their bearings.
* An axis whose approaches have 3 or more lanes gets two stages: protected through (with
  right turns) and protected left.  A minor axis (fewer lanes) gets one stage: through
  with permitted (yielding, ``g``) lefts.  An approach with no opposite is served alone
  (split phase: all its movements protected).
* Right turns are ``g`` (permitted) in every green stage, as is common in China.
* Every stage ends with 3 s yellow and 1-2 s all-red (all links red, so the all-red phase
  is never mistaken for a stage).  Cycle length by junction size (``estimates.csv``).
* Splits are what a traffic engineer sets from a design-hour count: the green time left
  after the intergreens is shared among the stages in proportion to each stage's critical
  lane flow (the heaviest loaded lane among the movements it protects), with a minimum
  green.  The design-hour flows are the calibrated demand of the AM peak hours (the
  evening variant: the evening hours), movement by movement, each movement's flow spread
  evenly over the approach lanes that carry it.  Stages with no design flow get the
  minimum green.  All numbers come from ``estimates.csv`` (category ``signal``).

Safety is checked against SUMO's own foe relation: a protected ``G`` link that is a foe of
another ``G`` link in the same stage is dropped from that stage, and any link left without
green gets a stage where it is compatible (a new one if needed).  So every stage satisfies
``SignalSpec.conflicting_greens(state) == []`` and every movement is green once per cycle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from networks.wulin.tables import Tables, turn_angle


@dataclass
class Stage:
    """A green stage under construction."""

    kind: str  # through | left | permissive | single | extra
    state: list[str]
    lanes: int

    def text(self) -> str:
        return "".join(self.state)


def _bearing_in(edge: Any) -> float:
    """Heading (degrees ccw from east) of an edge's last shape segment, towards its junction."""
    shape = edge.getShape()
    (x0, y0), (x1, y1) = shape[-2], shape[-1]
    return math.degrees(math.atan2(y1 - y0, x1 - x0))


def _axes(approaches: list[Any]) -> list[list[Any]]:
    """Pair opposite approaches (bearings about 180 degrees apart) into axes."""
    left = sorted(approaches, key=lambda e: (-e.getLaneNumber(), e.getID()))
    axes: list[list[Any]] = []
    while left:
        a = left.pop(0)
        best, best_dev = None, 40.0
        for b in left:
            dev = abs(abs(turn_angle(_bearing_in(a), _bearing_in(b))) - 180.0)
            if dev < best_dev:
                best, best_dev = b, dev
        if best is not None:
            left.remove(best)
            axes.append([a, best])
        else:
            axes.append([a])
    return axes


def _stages_for(tls: Any) -> list[Stage]:
    links = sorted(tls.getConnections(), key=lambda c: c[2])
    n = links[-1][2] + 1
    info: dict[int, tuple[Any, str]] = {}
    for in_lane, out_lane, idx in links:
        conn = next(c for c in in_lane.getOutgoing() if c.getToLane() == out_lane)
        d = conn.getDirection()
        kind = "l" if d in ("l", "L", "t") else "r" if d in ("r", "R") else "s"
        info[idx] = (in_lane.getEdge(), kind)
    approaches = list(dict.fromkeys(info[i][0] for i in range(n)))
    stages: list[Stage] = []
    for axis in _axes(approaches):
        ids = {e.getID() for e in axis}
        lanes = max(e.getLaneNumber() for e in axis)

        def links_of(kinds: str, ids: set[str] = ids) -> list[int]:
            return [i for i in range(n) if info[i][0].getID() in ids and info[i][1] in kinds]

        def make(kind: str, protected: list[int], permitted: list[int], lanes: int = lanes) -> Stage:
            st = ["r"] * n
            for i in range(n):
                if info[i][1] == "r":
                    st[i] = "g"
            for i in permitted:
                st[i] = "g"
            for i in protected:
                st[i] = "G"
            return Stage(kind, st, lanes)

        if len(axis) == 1:
            stages.append(make("single", links_of("slr"), []))
        elif lanes >= 3:
            stages.append(make("through", links_of("s"), []))
            if links_of("l"):
                stages.append(make("left", links_of("l"), []))
        else:
            stages.append(make("permissive", links_of("s"), links_of("l")))
    return stages


def _make_safe(stages: list[Stage], foes: list[list[bool]], approach: list[str]) -> list[Stage]:
    """Make every stage safe and give every link green somewhere.

    A ``G`` link that conflicts with an earlier ``G`` link of the stage is dropped.  A
    permitted (``g``) right turn of an approach that is not served in the stage is dropped
    when it conflicts with a permitted link of a served approach: two permitted links that
    are foes may each have to yield to the other (SUMO's "mutual conflict"), a deadlock.
    """
    n = len(foes)
    for st in stages:
        kept: list[int] = []
        for i in range(n):
            if st.state[i] != "G":
                continue
            if any(foes[i][j] for j in kept):
                st.state[i] = "r"
            else:
                kept.append(i)
        served = {approach[i] for i in range(n) if st.state[i] == "G"}
        for i in range(n):
            for j in range(n):
                if (i != j and foes[i][j] and st.state[i] == "g" and st.state[j] == "g"
                        and approach[i] not in served and approach[j] in served):
                    st.state[i] = "r"
    stages = [st for st in stages if "G" in st.state or "g" in st.state]
    for i in range(n):
        if any(st.state[i] in "Gg" for st in stages):
            continue
        home = next(
            (st for st in stages
             if not any(foes[i][j] for j in range(n) if st.state[j] == "G")),
            None,
        )
        if home is None:
            home = Stage("extra", ["r"] * n, 1)
            stages.append(home)
        home.state[i] = "G"
    return stages


def _foes(tls: Any) -> list[list[bool]]:
    """SUMO's foe relation between link indices (symmetric)."""
    links = sorted(tls.getConnections(), key=lambda c: c[2])
    n = links[-1][2] + 1
    jidx: list[tuple[Any, int]] = [(None, -1)] * n
    for in_lane, out_lane, idx in links:
        conn = next(c for c in in_lane.getOutgoing() if c.getToLane() == out_lane)
        jidx[idx] = (conn.getJunction(), conn.getJunctionIndex())
    foes = [[False] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            (ni, a), (nj, b) = jidx[i], jidx[j]
            if ni is not None and ni is nj and a >= 0 and b >= 0:
                if ni.areFoes(a, b) or ni.areFoes(b, a):
                    foes[i][j] = foes[j][i] = True
    return foes


def _cycle(tables: Tables, tls_id: str, stages: list[Stage]) -> float:
    if tls_id == "wulinmen":
        return tables.num("signal", "cycle", "wulinmen")
    size = "large" if len(stages) >= 4 else "medium" if len(stages) == 3 else "small"
    return tables.num("signal", "cycle", size)


MovementFlows = dict[tuple[str, str], float]


def _link_movements(tls: Any) -> list[tuple[str, str, str]]:
    """Per link index: (incoming lane id, from edge id, to edge id)."""
    links = sorted(tls.getConnections(), key=lambda c: c[2])
    out: list[tuple[str, str, str]] = [("", "", "")] * (links[-1][2] + 1)
    for in_lane, out_lane, idx in links:
        out[idx] = (in_lane.getID(), in_lane.getEdge().getID(), out_lane.getEdge().getID())
    return out


def critical_flows(tls: Any, stages: list[str], flows: MovementFlows) -> list[float]:
    """Critical lane flow (veh/h) of each stage (a green state string) at one signal.

    A movement's design flow is spread evenly over the approach lanes that carry it; a
    lane's load in a stage is the flow of its links that are green (``G`` or ``g``) then;
    the stage's critical flow is the largest load among lanes with a protected (``G``) link.
    """
    links = _link_movements(tls)
    lanes_of: dict[tuple[str, str], set[str]] = {}
    for lane, a, b in links:
        lanes_of.setdefault((a, b), set()).add(lane)
    out = []
    for state in stages:
        load: dict[str, float] = {}
        for i, (lane, a, b) in enumerate(links):
            if state[i] in "Gg":
                load[lane] = load.get(lane, 0.0) + flows.get((a, b), 0.0) / len(lanes_of[(a, b)])
        out.append(max((load[links[i][0]] for i, c in enumerate(state) if c == "G"), default=0.0))
    return out


def split_greens(available: float, crit: list[float], min_green: float) -> list[float]:
    """Whole-second greens summing to ``available``, proportional to ``crit``, each >= ``min_green``.

    Stages without design flow get the minimum; if every stage is empty the time is shared
    equally.
    """
    n = len(crit)
    fixed: dict[int, float] = {}
    while True:
        free = [k for k in range(n) if k not in fixed]
        rest = available - sum(fixed.values())
        total = sum(crit[k] for k in free)
        raw = {k: (rest * crit[k] / total if total > 0 else rest / len(free)) for k in free}
        low = [k for k in free if raw[k] < min_green]
        if not low or len(low) == len(free):
            break
        for k in low:
            fixed[k] = min_green
    greens = [float(fixed.get(k, raw.get(k, min_green))) for k in range(n)]
    greens = [max(min_green, float(round(g))) for g in greens]
    # The longest stage absorbs rounding so the cycle is exact.
    k_max = max(range(n), key=lambda k: greens[k])
    greens[k_max] = max(min_green, greens[k_max] + available - sum(greens))
    return greens


def program_xml(tables: Tables, tls: Any, flows: MovementFlows | None = None) -> str:
    """One ``<tlLogic>`` (type static, program "0") for a sumolib traffic light.

    Args:
        tables: The source tables (signal timings).
        tls: A sumolib traffic light of the first-pass network.
        flows: Design-hour flow (veh/h) per movement (from edge, to edge); ``None`` or an
            empty mapping shares the green equally.
    """
    foes = _foes(tls)
    approach = [a for _lane, a, _b in _link_movements(tls)]
    stages = _make_safe(_stages_for(tls), foes, approach)
    yellow = tables.num("signal", "all", "yellow")
    big = sum(len(e.getLanes()) for e in {c[0].getEdge() for c in tls.getConnections()}) >= 10
    allred = tables.num("signal", "all", "allred_large" if big else "allred_small")
    min_green = tables.num("signal", "all", "min_green")
    cycle = _cycle(tables, tls.getID(), stages)
    crit = critical_flows(tls, [st.text() for st in stages], flows or {})
    greens = split_greens(cycle - len(stages) * (yellow + allred), crit, min_green)
    lines = [f'    <tlLogic id={quoteattr(tls.getID())} type="static" programID="0" offset="0">']
    n = len(foes)
    for k, st in enumerate(stages):
        green = st.text()
        # Every green link turns yellow: the all-red that follows holds every link red, so a
        # right turn kept green here would jump from green to red (SUMO warns of that).
        yel = "".join("r" if c == "r" else "y" for c in green)
        lines.append(f'        <phase duration="{greens[k]:g}" state="{green}" name="{st.kind}"/>')
        lines.append(f'        <phase duration="{yellow:g}" state="{yel}"/>')
        lines.append(f'        <phase duration="{allred:g}" state="{"r" * n}"/>')
    lines.append("    </tlLogic>")
    return "\n".join(lines)


def write_programs(tables: Tables, net_file: Path, out: Path, flows: MovementFlows | None = None) -> int:
    """Write field-like programs for every traffic light of ``net_file`` to ``out``.

    Args:
        tables: The source tables.
        net_file: First-pass network (without programs).
        out: The tlLogic additional file to write.
        flows: Design-hour flow per movement (from edge, to edge), veh/h.

    Returns:
        Number of traffic lights.
    """
    import sumolib

    net = sumolib.net.readNet(str(net_file), withPrograms=False)
    body = [
        program_xml(tables, tls, flows)
        for tls in sorted(net.getTrafficLights(), key=lambda t: t.getID())
    ]
    out.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<!-- field-like fixed-time plans, generated by networks/wulin/signals.py -->\n"
        "<additional>\n" + "\n".join(body) + "\n</additional>\n",
        encoding="utf-8",
    )
    return len(body)
