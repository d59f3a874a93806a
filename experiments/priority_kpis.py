"""KPIs of emergency preemption and bus priority for one run, from its priority layer and trips.

Per run (summary columns, registered in ``sim.kpi_registry``):

* ``ev_travel_time``, ``ev_stops``: the emergency vehicles' mean trip time and stops
  (SUMO tripinfo: duration and ``waitingCount``);
* ``clearance_violations``: conflicting protected greens, greens ended without yellow and
  greens begun without an all-red, seen in SUMO's own signal states at the signals of the
  emergency routes at every step while anything was active (:attr:`PriorityLayer.audit`);
* ``general_time_loss``: general traffic's mean time loss (every vehicle due but emergency
  vehicles and buses, counted as the headline means are);
* ``cross_queue_peak``: the peak queue of each approach of a signal on an emergency route
  that the route does not use (the cross streets), averaged over those approaches;
* ``bus_signal_delay``: seconds per bus halted within 80 m of a signal (not at a stop);
  ``bus_lateness``: mean lateness against the line's schedule at the last step seen;
  ``bus_on_time``: share of buses between 1 min early and 5 min late (TCQSM's usual band).

Tables: ``priority`` (one row per emergency vehicle and bus), ``ev_trace`` (time, distance
along its route, speed) and ``ev_signals`` (each signal ahead: its stop line's distance along
the route and the state of the vehicle's link, every step): the time-space diagram's data.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

ON_TIME = (-60.0, 300.0)


def priority_outputs(layer: Any, trips: pd.DataFrame, queues: pd.DataFrame,
                     measure_begin: float) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
    """(summary KPIs, tables) of a run that ran ``layer`` (a :class:`sim.priority.PriorityLayer`)."""
    from sim.priority import emergency_trips, general_traffic

    out: dict[str, float] = {"general_time_loss": float(general_traffic(trips).time_loss.mean())}
    rows: list[dict[str, Any]] = []
    if layer.runs:
        ev = emergency_trips(trips)
        out["ev_travel_time"] = float(ev.duration.mean()) if len(ev) else math.nan
        out["ev_stops"] = float(ev.waiting_count.mean()) if len(ev) else math.nan
        audit = layer.audit
        out["clearance_violations"] = float(audit["conflicting_greens"] + audit["green_to_red"]
                                            + audit["no_all_red"])
        out["cross_queue_peak"] = _cross_queue_peak(layer, queues, measure_begin)
        for r in layer.emergency_rows():
            trip = ev[ev.id == r["vehicle"]]
            rows.append({"kind": "emergency", "vehicle": r["vehicle"], "line": "",
                         "travel_time": float(trip.duration.iloc[0]) if len(trip) else math.nan,
                         "stops": float(trip.waiting_count.iloc[0]) if len(trip) else math.nan,
                         "lateness": math.nan, "signal_delay": math.nan,
                         "priorities": r["signals"]})
    if layer.transit is not None:
        buses = layer.bus_rows()
        late = np.array([b["lateness"] for b in buses], dtype=float)
        out["bus_signal_delay"] = float(np.mean([b["signal_delay"] for b in buses])) if buses else math.nan
        out["bus_lateness"] = float(late.mean()) if buses else math.nan
        out["bus_on_time"] = float(100 * np.mean((late >= ON_TIME[0]) & (late <= ON_TIME[1]))) \
            if buses else math.nan
        out["bus_priorities"] = float(len(layer.grants))
        rows += [{"kind": "bus", "vehicle": b["vehicle"], "line": b["line"], "travel_time": math.nan,
                  "stops": math.nan, "lateness": b["lateness"], "signal_delay": b["signal_delay"],
                  "priorities": b["priorities"]} for b in buses]
    return out, {"priority": pd.DataFrame(rows), **_trajectories(layer)}


def _cross_queue_peak(layer: Any, queues: pd.DataFrame, measure_begin: float) -> float:
    route_edges = {e for r in layer.runs for e in r.edges}
    signals = {s for ev in layer.evs.values() for s in ev.stoplines}
    if queues.empty or not signals:
        return math.nan
    q = queues[(queues.time >= measure_begin) & queues.signal.isin(signals)
               & ~queues.edge.isin(route_edges)]
    return float(q.groupby("edge").queue.max().mean()) if len(q) else math.nan


def _trajectories(layer: Any) -> dict[str, pd.DataFrame]:
    trace = [(vid, t, d, v) for vid, ev in layer.evs.items() for t, d, v in ev.trace]
    sig = [(vid, t, s, ev.stoplines.get(s, math.nan), c)
           for vid, ev in layer.evs.items() for t, s, c in ev.signal_states]
    return {"ev_trace": pd.DataFrame(trace, columns=["vehicle", "time", "distance", "speed"]),
            "ev_signals": pd.DataFrame(sig, columns=["vehicle", "time", "signal", "stopline",
                                                     "state"])}


def per_line(priority: pd.DataFrame) -> pd.DataFrame:
    """Bus delay at signals and schedule adherence per line (from a run's priority table)."""
    buses = priority[priority.kind == "bus"]
    if buses.empty:
        return pd.DataFrame(columns=["line", "buses", "signal_delay", "lateness", "on_time"])
    return buses.groupby("line").agg(
        buses=("vehicle", "size"), signal_delay=("signal_delay", "mean"),
        lateness=("lateness", "mean"),
        on_time=("lateness", lambda x: 100 * float(((x >= ON_TIME[0]) & (x <= ON_TIME[1])).mean())),
    ).reset_index()
