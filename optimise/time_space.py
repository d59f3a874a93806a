"""The main corridors before and after, in the optimiser's output: time-space diagrams and bandwidths.

Per period, the network's main corridors (:func:`controllers.main_corridors.main_corridors`,
ranked by the period's demand) are drawn with the current plans ("before") and the optimised
ones ("after") in two panels on the same axes, ``OUT/<PERIOD>/time_space_<corridor>.png``:
distance along the corridor up, two cycles of the longest cycle across from the period's start;
at each stop line one stripe per direction (above the line: the ``forward`` direction, east or
north; below: the other) coloured by what the corridor's through movement sees (green, yellow,
red, as SUMO runs the plan); dashed lines are vehicles at the speed limit leaving the first
signal at each start of its green, and the shaded parallelograms are the through bands (the
departures that meet green at every signal).  No simulated trajectories: the verification runs
record no vehicle positions, and recording them would cost a SUMO run per plan set; the ideal
trajectories show the progression the plans allow.  The drawing is
:mod:`experiments.time_space` (the emergency-vehicle report's too).

The through bandwidth per corridor and direction (:mod:`controllers.progression`), before and
after, is a table in ``changes.md`` above links to the diagrams; it is the mean over the
first signal's green windows in the period's first hour (exact when the direction's signals
share one cycle; otherwise the band changes from cycle to cycle and the minimum is given too).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controllers.main_corridors import MainCorridor
from controllers.plan import Interval, TimingPlan
from controllers.progression import progression
from experiments.time_space import Band, StopLine, Trajectory, draw_time_space

HORIZON = 3600.0  # seconds of departures the bandwidth is averaged over (at most the period)
DIAGRAM_CYCLES = 2
DIRECTION_COLOURS = ("#1f5fbf", "#8e44ad")  # forward, backward


@dataclass(frozen=True)
class BandwidthRow:
    """One corridor direction's through band, before and after (seconds)."""

    corridor: str
    heading: str
    signals: tuple[str, ...]
    cycles_before: tuple[float, ...]
    cycles_after: tuple[float, ...]
    before: float
    after: float
    min_before: float
    min_after: float

    def to_dict(self) -> dict[str, Any]:
        return {"corridor": self.corridor, "heading": self.heading, "signals": list(self.signals),
                "before_s": round(self.before, 1), "after_s": round(self.after, 1),
                "min_before_s": round(self.min_before, 1), "min_after_s": round(self.min_after, 1)}


@dataclass(frozen=True)
class Panel:
    """What one panel of a corridor diagram draws (times in seconds after the window's start)."""

    stop_lines: tuple[StopLine, ...]
    trajectories: tuple[Trajectory, ...]
    bands: tuple[Band, ...]


def slug(name: str) -> str:
    """``"Yan'an Rd"`` -> ``"yan-an-rd"``: the corridor's part of a file name."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "corridor"


def bandwidth_rows(corridor: MainCorridor, before: Mapping[str, TimingPlan], after: Mapping[str, TimingPlan],
                   start: float, horizon: float) -> list[BandwidthRow]:
    rows = []
    for d in corridor.directions:
        pb, pa = progression(before, d, start, horizon), progression(after, d, start, horizon)
        rows.append(BandwidthRow(corridor.name, d.heading, d.signals,
                                 tuple(before[s].cycle for s in d.signals), tuple(after[s].cycle for s in d.signals),
                                 pb.bandwidth, pa.bandwidth, pb.min_bandwidth, pa.min_bandwidth))
    return rows


def panel(corridor: MainCorridor, plans: Mapping[str, TimingPlan], start: float, span: float) -> Panel:
    """Stop-line stripes, speed-limit trajectories and through bands over ``[start, start + span)``."""
    pos = corridor.positions
    lift = max(pos.values(), default=0.0) * 0.012 + 2.0
    lines: list[StopLine] = []
    paths: list[Trajectory] = []
    bands: list[Band] = []
    for k, d in enumerate(corridor.directions):
        # departures from a cycle and a travel time before the window: lines enter it from the left
        early = max(plans[s].cycle for s in d.signals) + sum(d.travel_times)
        prog = progression(plans, d, start - early, span + early)
        ys = tuple(pos[s] for s in d.signals)
        side = lift if k == 0 else -lift
        for sid, y, tl in zip(d.signals, ys, prog.timelines, strict=True):
            lines.append(StopLine(sid if k == 0 else "", y + side, _shift(tl, start, span)))
        colour = DIRECTION_COLOURS[k]
        for i, b in enumerate(prog.bands):
            times = tuple(b.window - start + t for t in prog.arrivals)
            paths.append(Trajectory(times, ys, colour, 0.8, "--", f"{d.heading}-bound at the speed limit"
                                    if i == 0 else ""))
            if b.width > 0:
                bands.append(Band(tuple(b.start - start + t for t in prog.arrivals),
                                  tuple(b.end - start + t for t in prog.arrivals), ys, colour,
                                  f"{d.heading}-bound through band" if not any(x.colour == colour for x in bands)
                                  else ""))
    return Panel(tuple(lines), tuple(paths), tuple(bands))


def _shift(timeline: Sequence[Interval], start: float, span: float) -> tuple[Interval, ...]:
    return tuple(Interval(max(iv.start, start) - start, min(iv.end, start + span) - start, iv.colour)
                 for iv in timeline if iv.end > start and iv.start < start + span)


def draw(path: Path, corridor: MainCorridor, before: Panel, after: Panel, span: float, title: str) -> None:
    """The two panels side by side on the same axes, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from optimise.output import save_png

    height = 3.2 + 0.25 * len(corridor.forward.signals)
    fig, axes = plt.subplots(1, 2, figsize=(12, height), dpi=100, sharex=True, sharey=True)
    top = max(corridor.positions.values(), default=0.0)
    for ax, p, name in zip(axes, (before, after), ("before: current plans", "after: optimised plans"),
                           strict=True):
        draw_time_space(ax, p.stop_lines, p.trajectories, p.bands)
        ax.set_xlim(0, span)
        ax.set_ylim(-0.06 * top - 10, 1.08 * top + 10)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("seconds after the period's start")
    back = corridor.backward.heading if corridor.backward else ""
    axes[0].set_ylabel(f"metres along {corridor.name} ({corridor.forward.heading}-bound)"
                       + (f"; stripes: {corridor.forward.heading} above, {back} below" if back else ""), fontsize=8)
    handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=4, frameon=False)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    save_png(fig, path, layout=False)


@dataclass(frozen=True)
class CorridorReport:
    """What the period's folder gets: bandwidth rows, the diagrams' file names, the markdown."""

    rows: tuple[BandwidthRow, ...]
    files: tuple[str, ...]
    markdown: str


def corridor_report(folder: Path, corridors: Sequence[MainCorridor], before: Sequence[TimingPlan],
                    after: Sequence[TimingPlan], period: Any, title: str) -> CorridorReport:
    """Draw every corridor's diagram into ``folder`` and return the bandwidth table and links."""
    old, new = {p.signal_id: p for p in before}, {p.signal_id: p for p in after}
    horizon = min(HORIZON, period.end - period.start)
    rows: list[BandwidthRow] = []
    files: list[str] = []
    for c in corridors:
        rows += bandwidth_rows(c, old, new, period.start, horizon)
        span = DIAGRAM_CYCLES * max(p[s].cycle for p in (old, new) for s in c.forward.signals)
        name = f"time_space_{slug(c.name)}.png"
        if name in files:  # two corridors on one road (a one-way stretch splits it)
            name = f"time_space_{slug(c.name)}-{len(files) + 1}.png"
        draw(folder / name, c, panel(c, old, period.start, span), panel(c, new, period.start, span), span,
             f"{c.name}, {title}: time-space diagram")
        files.append(name)
    return CorridorReport(tuple(rows), tuple(files), markdown(rows, corridors, files, horizon))


def _cycles(cycles: Sequence[float]) -> str:
    lo, hi = min(cycles), max(cycles)
    return f"{lo:g}" if lo == hi else f"{lo:g}-{hi:g}"


def _band(mean: float, least: float, cycles: Sequence[float]) -> str:
    return f"{mean:.1f}" if len(set(cycles)) == 1 else f"{mean:.1f} (min {least:.1f})"


def markdown(rows: Sequence[BandwidthRow], corridors: Sequence[MainCorridor], files: Sequence[str],
             horizon: float) -> str:
    """The bandwidth table and the diagrams, for ``changes.md``."""
    if not corridors:
        return "\n## Main corridors\n\nNo chain of two or more signals joined by straight-on movements.\n"
    out = ["", "## Main corridors: through bandwidth at the speed limit", "",
           "Departures from a direction's first stop line that meet green at every signal travelling at "
           f"the speed limit: the widest such interval per green window, mean over the first {horizon / 60:g} "
           "minutes of the period (exact when the direction's signals share one cycle; with several "
           "cycles the band changes each cycle, and its minimum is in brackets).", "",
           "| corridor | direction | signals | cycle s (before -> after) | band s (before -> after) |",
           "|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r.corridor} | {r.heading} | {r.signals[0]} ... {r.signals[-1]} ({len(r.signals)}) | "
                   f"{_cycles(r.cycles_before)} -> {_cycles(r.cycles_after)} | "
                   f"{_band(r.before, r.min_before, r.cycles_before)} -> {_band(r.after, r.min_after, r.cycles_after)} |")
    out += ["", "Time-space diagrams (left: current plans, right: optimised; stripes at each stop line are "
            "the through movement's green, yellow and red, dashed lines vehicles at the speed limit from "
            "each green start of the first signal, shaded the through bands):", ""]
    out += [f"![{c.name}]({f})" for c, f in zip(corridors, files, strict=True)]
    return "\n".join(out) + "\n"


def corridors_for(scenario: Any, period: Any, specs: Sequence[Any]) -> list[MainCorridor]:
    """The main corridors, ranked by the period's demand."""
    import sumolib

    from controllers.main_corridors import main_corridors, turn_flows

    net = sumolib.net.readNet(str(scenario.net_file))
    flows = turn_flows(scenario.route_files, net, (period.start, period.end), scenario.scale)
    return main_corridors(net, specs, flows)

