"""Server-side SVG of timing plans: one bar per plan across its cycle (the stage/ring diagram).

Every stage is drawn as its green, then the plan's yellow and all-red, from the offset, so a
proposal and the live plan, drawn one above the other on the same scale, show what moves.
Text is escaped here: a plan or stage name is data, never markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

from controllers.plan import TimingPlan

WIDTH = 720
BAR_H = 28
ROW_H = 56
LEFT = 90
COLOURS = {"green": "#2e9e44", "yellow": "#e5b400", "red": "#c8342b"}


@dataclass(frozen=True)
class Segment:
    """One coloured interval of a plan's cycle (seconds from the cycle's start)."""

    start: float
    length: float
    colour: str
    label: str


def segments(plan: TimingPlan) -> list[Segment]:
    """Green, yellow and all-red of every stage, in cycle order from stage 0's green."""
    out, t = [], 0.0
    for stage in plan.stages:
        out.append(Segment(t, stage.green, "green", stage.name))
        out.append(Segment(t + stage.green, plan.yellow, "yellow", ""))
        out.append(Segment(t + stage.green + plan.yellow, plan.all_red, "red", ""))
        t += stage.green + plan.yellow + plan.all_red
    return [s for s in out if s.length > 0]


def ring_diagram(rows: list[tuple[str, TimingPlan]]) -> str:
    """An SVG with one bar per ``(label, plan)`` on a common time scale (the longest cycle)."""
    span = max((p.cycle for _, p in rows), default=1.0) or 1.0
    scale = (WIDTH - LEFT - 10) / span
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="ring" width="{WIDTH}" '
             f'height="{ROW_H * len(rows) + 24}" role="img">']
    for k, (label, plan) in enumerate(rows):
        y = 10 + k * ROW_H
        parts.append(f'<text x="4" y="{y + BAR_H * 0.7:.0f}" font-size="13">{escape(label)}</text>')
        for seg in segments(plan):
            x = LEFT + seg.start * scale
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="{seg.length * scale:.1f}" height="{BAR_H}" '
                         f'fill="{COLOURS[seg.colour]}"><title>{escape(seg.label or seg.colour)} '
                         f'{seg.start:g}-{seg.start + seg.length:g} s</title></rect>')
            if seg.label and seg.length * scale > 40:
                parts.append(f'<text x="{x + 3:.1f}" y="{y + BAR_H * 0.7:.0f}" font-size="11" fill="#fff">'
                             f'{escape(seg.label[:18])}</text>')
        off_x = LEFT + (plan.offset % plan.cycle) * scale
        parts.append(f'<line x1="{off_x:.1f}" x2="{off_x:.1f}" y1="{y - 4}" y2="{y + BAR_H + 4}" '
                     f'stroke="#000" stroke-dasharray="3,2"><title>offset {plan.offset:g} s</title></line>')
        parts.append(f'<text x="{LEFT}" y="{y + BAR_H + 14}" font-size="11">0 s</text>'
                     f'<text x="{LEFT + plan.cycle * scale - 30:.1f}" y="{y + BAR_H + 14}" font-size="11">'
                     f'{plan.cycle:g} s</text>')
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class CompareRow:
    """One line of the proposal-against-live table.

    ``item`` is a message id (translated by the page) with ``{n}`` standing for ``stage``.
    """

    item: str
    stage: int | None
    live: str
    proposed: str
    changed: bool


def _text(value: object) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if isinstance(value, float | int) else str(value)


def compare(plan: TimingPlan, live: TimingPlan | None) -> list[CompareRow]:
    """Cycle, offset, clearances and each stage's split and green state, live against proposed."""
    def row(item: str, stage: int | None, old: object, new: object) -> CompareRow:
        o, n = _text(old), _text(new)
        return CompareRow(item, stage, o, n, live is not None and o != n)

    rows = [row("cycle (s)", None, live.cycle if live else None, plan.cycle),
            row("offset (s)", None, live.offset if live else None, plan.offset),
            row("yellow / all-red (s)", None, f"{live.yellow:g} / {live.all_red:g}" if live else None,
                f"{plan.yellow:g} / {plan.all_red:g}")]
    for k, stage in enumerate(plan.stages):
        old = live.stages[k] if live is not None and k < len(live.stages) else None
        rows.append(row("stage {n} split (s)", k + 1, live.split(k) if live is not None and old else None,
                        plan.split(k)))
        rows.append(row("stage {n} sequence", k + 1, f"{old.name}: {old.state}" if old else None,
                        f"{stage.name}: {stage.state}"))
    if live is not None:
        for k in range(len(plan.stages), len(live.stages)):
            rows.append(CompareRow("stage {n} sequence", k + 1, f"{live.stages[k].name}: {live.stages[k].state}",
                                   "-", True))
    return rows
