"""The KPI registry: every KPI the product reports, defined once.

Each :class:`Kpi` names the column of the per-run table, its label and unit, whether lower or
higher is better, whether it is a headline KPI (the ones that rank controllers), its display
format and where its value comes from.  Every table, report, statistic and CLI output reads its
KPIs from here (``experiments.stats``, ``experiments.report``, ``wulin compare``, ``wulin
evaluate``, ``wulin experiment run``); adding a KPI is one entry here plus its computation in
the producer named by ``source``.

It lives in ``sim`` (pure data, no SUMO import) so both the simulation layer, which computes
the trip KPIs (:func:`sim.kpi.summarise`), and the experiments layer can read it.

**Which vehicles count.**  Headline trip means count every vehicle that was due to travel
after the warm-up: finished trips, trips still running when the simulation ended (their time
loss and travel time so far) and vehicles SUMO never managed to insert (their wait since the
scheduled departure counts as travel time, time loss and waiting time).  A controller that
leaves vehicles queued outside the network or stuck in it can therefore not look better by
leaving them out.  The finished-only means are kept as secondary columns (``..._finished``).

**Flags.**  A run whose figures should not be trusted for ranking is flagged (:func:`run_flag`):

* *any teleport* (``MAX_TELEPORTS = 0``): SUMO teleports a vehicle that has not moved for 300 s,
  so its trip stops measuring the controller (it jumps ahead of its queue), and RESCO's delay
  metric is only defined without teleports.
* *vehicles never inserted above 1 % of the vehicles due* (``MAX_NEVER_INSERTED_SHARE``): a
  backlog at the network's entries means the network was full; the waiting vehicles are
  counted, but the run is a gridlock, not a ranking.
* *unfinished trips above 15 % of the vehicles due* (``MAX_UNFINISHED_SHARE``).  Trips still
  running at the end are normal: in a measured window of length W with mean travel time T,
  about T / W of the trips are still on the road (Wulin AM peak: 390 s / 7,200 s, about 5 %);
  15 % is three times that, which only a network filling up reaches.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

# Thresholds of the run flag (see the module docstring for why these values).
MAX_TELEPORTS = 0.0
MAX_NEVER_INSERTED_SHARE = 0.01
MAX_UNFINISHED_SHARE = 0.15


@dataclass(frozen=True)
class Kpi:
    """One KPI column of the per-run table.

    Attributes:
        column: Column name in the per-run table (Parquet, CSV, summary.json).
        label: Human label for tables and reports.
        unit: Unit ("" for counts).
        lower_is_better: Direction: True when a smaller value is better.
        headline: True for the KPIs that rank controllers (shown first, in every table).
        fmt: Python format for one value.
        source: Where the value is computed (a function name).
        short: Short column header for narrow console tables.
        declared_only: Present only in runs that declare what it measures (emergency
            vehicles, bus priority); every other KPI is in every run.
    """

    column: str
    label: str
    unit: str
    lower_is_better: bool = True
    headline: bool = False
    fmt: str = "{:.1f}"
    source: str = "sim.kpi.summarise"
    short: str = ""
    declared_only: bool = False

    @property
    def header(self) -> str:
        """``label (unit)``, or the label alone for counts."""
        return f"{self.label} ({self.unit})" if self.unit else self.label

    def format(self, value: float) -> str:
        """The value in this KPI's format, ``-`` when missing."""
        return self.fmt.format(value) if value is not None and math.isfinite(value) else "-"


_NET = "sim.kpi.network_kpis"
_RUN = "experiments.runner.execute_run"
_INT = "experiments.kpis.network_intersection_kpis"
_PRI = "experiments.priority_kpis.priority_outputs"

KPIS: tuple[Kpi, ...] = (
    # headline: every vehicle due to travel after the warm-up
    Kpi("mean_travel_time", "Mean travel time, all vehicles", "s", headline=True, short="travel s"),
    Kpi("mean_time_loss", "Mean time loss, all vehicles", "s", headline=True, short="loss s"),
    Kpi("resco_delay", "Delay (RESCO: time loss + depart delay), all vehicles", "s", headline=True,
        short="RESCO s"),
    Kpi("mean_waiting_time", "Mean waiting time, all vehicles", "s", short="wait s"),
    Kpi("mean_depart_delay", "Mean depart delay, all vehicles", "s", short="dep. s"),
    # finished trips only (secondary)
    Kpi("mean_travel_time_finished", "Mean travel time, finished trips", "s", short="travel fin. s"),
    Kpi("mean_time_loss_finished", "Mean time loss, finished trips", "s", short="loss fin. s"),
    Kpi("mean_waiting_time_finished", "Mean waiting time, finished trips", "s", short="wait fin. s"),
    Kpi("mean_stops", "Stops per finished trip", "", fmt="{:.2f}", short="stops"),
    # intersections
    Kpi("control_delay", "Control delay (HCM)", "s/veh", source=_INT, short="delay s/veh"),
    Kpi("queue_mean", "Queue, mean", "veh", source=_INT, short="q mean"),
    Kpi("queue_p95", "Queue, 95th pct", "veh", source=_INT, short="q95 veh"),
    Kpi("queue_max", "Queue, max", "veh", fmt="{:.0f}", source=_INT, short="q max"),
    Kpi("throughput_vph", "Throughput", "veh/h", lower_is_better=False, fmt="{:.0f}", source=_RUN,
        short="veh/h"),
    # counts: who was due, who got through
    Kpi("trips", "Vehicles due", "", lower_is_better=False, fmt="{:,.0f}", short="due"),
    Kpi("finished", "Trips finished", "", lower_is_better=False, fmt="{:,.0f}", short="finished"),
    Kpi("unfinished", "Trips not finished", "", fmt="{:,.0f}", short="unfin."),
    Kpi("running_at_end", "Still running at the end", "", fmt="{:,.0f}", short="running"),
    Kpi("never_inserted", "Never inserted", "", fmt="{:,.0f}", short="not in."),
    Kpi("unfinished_share", "Share not finished", "%", short="unfin. %"),
    Kpi("teleports", "Teleports", "", fmt="{:.0f}", source=_NET, short="telep."),
    # emissions: every vehicle inserted, finished or not
    Kpi("total_co2_kg", "CO2", "kg", short="CO2 kg"),
    # emergency preemption and bus priority (runs that declare them: experiments.priority_kpis)
    Kpi("ev_travel_time", "Emergency vehicle travel time", "s", source=_PRI, declared_only=True, short="EV s"),
    Kpi("ev_stops", "Emergency vehicle stops", "", fmt="{:.1f}", source=_PRI, declared_only=True, short="EV stops"),
    Kpi("clearance_violations", "Clearance violations (conflicts, no yellow, no all-red)", "",
        fmt="{:.0f}", source=_PRI, declared_only=True, short="viol."),
    Kpi("general_time_loss", "Mean time loss, general traffic", "s", source=_PRI, declared_only=True, short="gen. loss s"),
    Kpi("cross_queue_peak", "Cross-street queue peak (mean of approaches)", "veh", source=_PRI, declared_only=True,
        short="cross q"),
    Kpi("bus_signal_delay", "Bus delay halted at signals", "s/bus", source=_PRI, declared_only=True, short="bus sig s"),
    Kpi("bus_lateness", "Bus lateness against schedule", "s", source=_PRI, declared_only=True, short="bus late s"),
    Kpi("bus_on_time", "Buses on time (-1..+5 min)", "%", lower_is_better=False, source=_PRI, declared_only=True,
        short="on time %"),
    Kpi("total_fuel_kg", "Fuel", "kg", short="fuel kg"),
)
KPI_BY_COLUMN: dict[str, Kpi] = {k.column: k for k in KPIS}
HEADLINE: tuple[str, ...] = tuple(k.column for k in KPIS if k.headline)
# the report's bar charts: headline delay plus the intersection and network view
CHART_KPIS: tuple[str, ...] = ("mean_time_loss", "resco_delay", "control_delay", "queue_p95",
                               "throughput_vph", "total_co2_kg")
FLAG_COLUMN = "flag"
# the two rules in one sentence each, for table captions and reports
COUNTING_RULE = ("Means count every vehicle due after the warm-up: finished trips, trips still "
                 "running at the end (their figures so far) and vehicles never inserted (their "
                 "wait since the scheduled departure); 'finished trips' columns count finished "
                 "trips only.")
_TELEPORT_RULE = "a teleport" if MAX_TELEPORTS == 0 else f"more than {MAX_TELEPORTS:g} teleports"
FLAG_RULE = (f"Flagged (red): runs with {_TELEPORT_RULE}, more than "
             f"{100 * MAX_NEVER_INSERTED_SHARE:g} % of the vehicles never inserted or more than "
             f"{100 * MAX_UNFINISHED_SHARE:g} % not finished; their figures should not rank "
             "controllers.")


def kpi(column: str) -> Kpi:
    """The registered KPI called ``column``.

    Raises:
        KeyError: no such KPI (a programming error: every KPI is registered here).
    """
    return KPI_BY_COLUMN[column]


def run_flag(row: Mapping[str, float]) -> str:
    """Why a run's figures should not rank controllers, or ``""`` when they can.

    Args:
        row: One run's KPIs (needs ``teleports``, ``never_inserted``, ``unfinished_share``
            and ``trips``; missing ones are not checked).

    Returns:
        A short reason such as ``"12 teleports; 18.0 % unfinished"``, empty when clean.
    """
    reasons = []
    teleports = float(row.get("teleports", 0.0) or 0.0)
    if teleports > MAX_TELEPORTS:
        reasons.append(f"{teleports:.0f} teleports")
    due = float(row.get("trips", 0.0) or 0.0)
    never = float(row.get("never_inserted", 0.0) or 0.0)
    if due > 0 and never / due > MAX_NEVER_INSERTED_SHARE:
        reasons.append(f"{100 * never / due:.1f} % never inserted")
    share = float(row.get("unfinished_share", 0.0) or 0.0)
    if share > 100 * MAX_UNFINISHED_SHARE:
        reasons.append(f"{share:.1f} % unfinished")
    return "; ".join(reasons)
