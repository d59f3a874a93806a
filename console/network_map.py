"""The district drawn as SVG from its ``.net.xml`` with a light XML read (no SUMO, no tiles).

Edges are drawn from their lanes' shapes (internal edges left out); every traffic-light
junction becomes a circle with ``id="sig-<id>"`` that the cockpit's script colours from the
live status.  Ids and names are escaped: a network file is input, never markup.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from sim.errors import WulinError

WIDTH = 900.0
MAX_BYTES = 200_000_000


@dataclass(frozen=True)
class NetworkDrawing:
    """The map: SVG text and the signals it shows."""

    svg: str
    signals: tuple[str, ...]


def _points(shape: str) -> list[tuple[float, float]]:
    out = []
    for pair in shape.split():
        x, _, y = pair.partition(",")
        out.append((float(x), float(y.split(",")[0])))
    return out


def _read(net: Path) -> tuple[list[list[tuple[float, float]]], dict[str, tuple[float, float]]]:
    if net.stat().st_size > MAX_BYTES:
        raise WulinError(f"{net}: larger than {MAX_BYTES // 1_000_000} MB; not drawn")
    lines: list[list[tuple[float, float]]] = []
    signals: dict[str, tuple[float, float]] = {}
    try:
        for _, el in ET.iterparse(net, events=("end",)):
            if el.tag == "edge" and el.get("function") != "internal":
                lane = el.find("lane")
                if lane is not None and lane.get("shape"):
                    lines.append(_points(lane.get("shape", "")))
                el.clear()
            elif el.tag == "junction" and el.get("type") == "traffic_light":
                signals[el.get("id", "")] = (float(el.get("x", 0)), float(el.get("y", 0)))
    except (ET.ParseError, ValueError, OSError) as exc:
        raise WulinError(f"{net}: cannot read it as a SUMO network ({exc})") from None
    return lines, signals


def draw_network(net: Path) -> NetworkDrawing:
    """The SVG of ``net``'s roads and signals, scaled to :data:`WIDTH` pixels, north up."""
    lines, signals = _read(net)
    pts = [p for line in lines for p in line] + list(signals.values())
    if not pts:
        raise WulinError(f"{net}: no edges or signals to draw")
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
    s = (WIDTH - 40) / max(x1 - x0, y1 - y0, 1.0)
    height = (y1 - y0) * s + 40

    def xy(p: tuple[float, float]) -> str:
        return f"{(p[0] - x0) * s + 20:.1f},{(y1 - p[1]) * s + 20:.1f}"  # SUMO's y grows north

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" id="district" width="{WIDTH:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {WIDTH:.0f} {height:.0f}" role="img">',
           '<g stroke="#8a8f98" stroke-width="2" fill="none">']
    out += [f'<polyline points="{" ".join(xy(p) for p in line)}"/>' for line in lines if len(line) > 1]
    out.append("</g>")
    for sid, p in sorted(signals.items()):
        cx, cy = xy(p).split(",")
        out.append(f'<g class="signal" id={quoteattr("sig-" + sid)}><circle cx="{cx}" cy="{cy}" r="9" '
                   f'fill="#999" stroke="#222"/><text x="{float(cx) + 11:.1f}" y="{float(cy) - 9:.1f}" '
                   f'font-size="11">{escape(sid)}</text><title>{escape(sid)}</title></g>')
    out.append("</svg>")
    return NetworkDrawing("".join(out), tuple(sorted(signals)))
