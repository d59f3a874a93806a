"""The report's section on emergency preemption and bus priority.

For each variation that ran emergency vehicles: the time-space diagram of the first seed's
first emergency vehicle per controller (its distance along the route against time, with the
state of its link at each signal drawn as a band at the signal's stop line: green, yellow,
red; drawn by :mod:`experiments.time_space`), and, for variations with bus priority, the
per-line table (delay halted at signals, lateness, share on time; mean over seeds).  The KPIs themselves (travel time, stops,
clearance violations, general traffic's time loss, cross-street queue peaks, bus delay) are
in the report's summary and paired-difference tables, from the KPI registry.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pandas as pd

from experiments.priority_kpis import per_line
from experiments.results import read_run_table
from experiments.time_space import StopLine, Trajectory, draw_time_space, intervals_from_states


def priority_section(exp_dir: Path, spec: Any, runs: pd.DataFrame, png: Any) -> str:
    """HTML for the section ("" when no run declared emergency vehicles or bus priority)."""
    parts: list[str] = []
    for v in spec.variations:
        if not v.has_priority:
            continue
        sub = runs[runs["variation"] == v.name]
        if sub.empty:
            continue
        parts.append(f"<h3>{html.escape(v.name)}</h3>")
        for controller, g in sub.groupby("controller", sort=False):
            first = g.sort_values("seed").iloc[0]
            if v.emergency:
                parts.append(png(_time_space(exp_dir, first["run_id"],
                                             f"{v.name} · {controller} · seed {first['seed']}")))
            if v.bus_priority is not None:
                frames = [read_run_table(exp_dir, r, "priority") for r in g["run_id"]]
                table = per_line(pd.concat(frames, ignore_index=True))
                parts.append(f"<p>Bus lines under {html.escape(str(controller))}, all seeds:</p>"
                             + table.to_html(index=False, float_format=lambda x: f"{x:.1f}"))
    if not parts:
        return ""
    return ("<h2>Emergency vehicles and bus priority</h2><p>Time-space diagrams: the emergency "
            "vehicle's distance along its route against time; at each signal's stop line the "
            "state of its link (green, yellow, red) while it was approaching.</p>" + "".join(parts))


def _time_space(exp_dir: Path, run_id: str, title: str) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trace = read_run_table(exp_dir, run_id, "ev_trace")
    sig = read_run_table(exp_dir, run_id, "ev_signals")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if trace.empty:
        ax.text(0.5, 0.5, "the emergency vehicle never entered the network", ha="center")
        return fig
    vid = trace.vehicle.iloc[0]
    trace, sig = trace[trace.vehicle == vid], sig[sig.vehicle == vid]
    t0 = float(trace.time.min())
    stop_lines = [StopLine(str(name), float(stopline), intervals_from_states(g.time - t0, g.state))
                  for (name, stopline), g in sig.groupby(["signal", "stopline"])]
    path = Trajectory(tuple(trace.time - t0), tuple(trace.distance), label=str(vid))
    draw_time_space(ax, stop_lines, [path])
    ax.set_xlabel(f"seconds after departure ({vid})")
    ax.set_ylabel("distance along the route (m)")
    ax.set_title(title)
    return fig
