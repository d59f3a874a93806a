"""The time-space diagram, drawn in one place for every report that shows one.

Distance along a route or corridor up, time across.  At each stop line a horizontal band is
coloured by what the signal shows the movement travelling along it (green, yellow, red, as
:class:`controllers.plan.Interval`: from a plan's :meth:`~controllers.plan.TimingPlan.timeline`
or from the states SUMO reported, :func:`intervals_from_states`); vehicle paths are lines (an
emergency vehicle's recorded trajectory, trajectories at the speed limit) and a through band
is the shaded region between two paths.  Users: the experiment report's emergency-vehicle
section (:mod:`experiments.priority_report`) and the plan optimiser's before/after corridor
diagrams (:mod:`optimise.time_space`).  The console draws the same plan timeline as inline
SVG (:mod:`console.corridor`), from the same :meth:`~controllers.plan.TimingPlan.timeline`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from controllers.plan import Interval

COLOURS = {"G": "#2a9d3c", "y": "#e9b500", "r": "#c0392b"}


@dataclass(frozen=True)
class StopLine:
    """One signal's stop line on the diagram.

    Attributes:
        label: Written at the left of the band ("" for none).
        distance: Metres along the route or corridor (the band's height on the diagram).
        intervals: What the signal shows the movement, in time order.
    """

    label: str
    distance: float
    intervals: tuple[Interval, ...]


@dataclass(frozen=True)
class Trajectory:
    """A vehicle's (or an ideal) trajectory: time and distance at each point."""

    times: tuple[float, ...]
    distances: tuple[float, ...]
    colour: str = "black"
    width: float = 1.5
    style: str = "-"
    label: str = ""


@dataclass(frozen=True)
class Band:
    """The region between two trajectories over the same distances (a through band)."""

    first: tuple[float, ...]
    last: tuple[float, ...]
    distances: tuple[float, ...]
    colour: str
    label: str = ""


def intervals_from_states(times: Iterable[float], states: Iterable[str], step: float = 1.0
                          ) -> tuple[Interval, ...]:
    """Intervals from sampled link states (SUMO's ``G g y Y r ...``), each held ``step`` seconds."""
    out: list[Interval] = []
    for t, state in zip(times, states, strict=True):
        colour = "G" if state in "Gg" else "y" if state in "yY" else "r"
        if out and out[-1].colour == colour and abs(out[-1].end - t) < 1e-9:
            out[-1] = Interval(out[-1].start, float(t) + step, colour)
        else:
            out.append(Interval(float(t), float(t) + step, colour))
    return tuple(out)


def draw_time_space(ax: Any, stop_lines: Sequence[StopLine], paths: Sequence[Trajectory] = (),
                    bands: Sequence[Band] = (), band_width: float = 5.0) -> None:
    """Draw stop-line bands, shaded through bands and paths on a matplotlib axes."""
    from matplotlib.collections import LineCollection

    segments, colours = [], []
    for line in stop_lines:
        for iv in line.intervals:
            segments.append([(iv.start, line.distance), (iv.end, line.distance)])
            colours.append(COLOURS.get(iv.colour, COLOURS["r"]))
        if line.label:
            x0 = line.intervals[0].start if line.intervals else 0.0
            ax.annotate(line.label, (x0, line.distance), fontsize=7, va="bottom",
                        xytext=(1, 2), textcoords="offset points")
    ax.add_collection(LineCollection(segments, colors=colours, linewidths=band_width, capstyle="butt"))
    for b in bands:
        ax.fill_betweenx(b.distances, b.first, b.last, color=b.colour, alpha=0.18, lw=0,
                         label=b.label or None)
    for p in paths:
        ax.plot(p.times, p.distances, color=p.colour, lw=p.width, ls=p.style, label=p.label or None)
    ax.autoscale_view()
