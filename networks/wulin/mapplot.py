"""Map picture of a built network: edges, road names and signal ids (matplotlib, no display).

Road names are written along their road (rotated to it, beside the line) and placed
greedily, longest roads first, at the first candidate where the label overlaps no label
already placed and no signal id: the road's edges longest first, each at its middle, then at
a third and two thirds of its length, on either side.  A name that fits nowhere goes to the
first candidate anyway.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

Candidate = tuple[float, float, float, int]  # x, y, angle in degrees, side (+1 above, -1 below)


def place_labels(ax: Any, items: list[tuple[str, list[Candidate]]], avoid: list[Any],
                 **style: Any) -> list[Any]:
    """Write each ``(text, candidates)`` at its first candidate whose box overlaps nothing in
    ``avoid`` (matplotlib Bboxes, display units) nor a label placed before; returns the texts.

    ``avoid`` is extended with the boxes of the labels placed.
    """
    renderer = ax.figure.canvas.get_renderer()

    def write(text: str, c: Candidate) -> Any:
        x, y, angle, side = c
        a = math.radians(angle)  # 3 points off the line, to the text's top or bottom side
        off = (-3 * side * math.sin(a), 3 * side * math.cos(a))
        return ax.annotate(text, (x, y), xytext=off, textcoords="offset points", rotation=angle,
                           rotation_mode="anchor", ha="center",
                           va="bottom" if side > 0 else "top", **style)

    placed = []
    for text, candidates in items:
        chosen = None
        for c in candidates:
            artist = write(text, c)
            box = artist.get_window_extent(renderer).expanded(1.05, 1.15)
            if not any(box.overlaps(other) for other in avoid):
                chosen = artist
                break
            artist.remove()
        if chosen is None:  # nowhere free: the first candidate
            chosen = write(text, candidates[0])
        avoid.append(chosen.get_window_extent(renderer))
        placed.append(chosen)
    return placed


def _upright(dx: float, dy: float) -> float:
    """The angle of a direction, in degrees, turned to read left to right (-90..90)."""
    angle = math.degrees(math.atan2(dy, dx))
    if angle > 90:
        angle -= 180
    elif angle <= -90:
        angle += 180
    return angle


def draw_map(net_file: Path, out: Path, title: str = "") -> Path:
    """Draw ``net_file`` to ``out`` (PNG): roads with their names, signals with their ids."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import sumolib

    net = sumolib.net.readNet(str(net_file), withPrograms=True)
    fig, ax = plt.subplots(figsize=(11, 10), dpi=110)
    segments: dict[str, list[tuple[float, Candidate]]] = {}
    for edge in net.getEdges():
        xs, ys = zip(*edge.getShape(), strict=True)
        bus = not edge.allows("passenger")
        ax.plot(xs, ys, color="tab:orange" if bus else "0.35", lw=0.6 + 0.5 * edge.getLaneNumber(),
                ls="--" if bus else "-", zorder=1)
        name = edge.getName()
        if name:
            angle = _upright(xs[-1] - xs[0], ys[-1] - ys[0])
            for rank, (f, side) in enumerate(((0.5, 1), (0.5, -1), (1 / 3, 1), (2 / 3, 1),
                                              (1 / 3, -1), (2 / 3, -1))):
                at = (xs[0] + f * (xs[-1] - xs[0]), ys[0] + f * (ys[-1] - ys[0]))
                segments.setdefault(name, []).append(
                    ((-edge.getLength(), rank), (*at, angle, side)))
    ax.set_aspect("equal")
    ax.autoscale_view()
    avoid = []
    renderer = fig.canvas.get_renderer()
    for tls in net.getTrafficLights():
        node = net.getNode(tls.getID()) if net.hasNode(tls.getID()) else None
        if node is None:
            continue
        x, y = node.getCoord()
        ax.plot(x, y, "o", color="crimson", ms=6, zorder=4)
        label = ax.annotate(tls.getID(), (x, y), fontsize=7, color="crimson", xytext=(4, -9),
                            textcoords="offset points", zorder=5)
        avoid.append(label.get_window_extent(renderer))
    # longest roads first; each road's candidates by edge (longest first), then position
    items = [(name, [c for _, c in sorted(segs, key=lambda s: s[0])])
             for name, segs in sorted(segments.items(), key=lambda kv: sum(s[0][0] for s in kv[1]))]
    place_labels(ax, items, avoid, fontsize=7, color="navy", zorder=3)
    ax.set_xlabel("x (m, UTM zone 51N minus net offset)")
    ax.set_ylabel("y (m)")
    ax.set_title(title or Path(net_file).name)
    ax.grid(alpha=0.2)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, metadata={"Software": None})
    plt.close(fig)
    return out
