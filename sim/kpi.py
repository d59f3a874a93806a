"""KPIs from SUMO's outputs, as pandas objects.

* Trip KPIs come from ``--tripinfo-output`` (one row per vehicle): travel time, time loss,
  waiting time, departure delay, route length and, when the emission device is on, CO2 and
  fuel.  Trips that had not arrived when the simulation ended are kept with
  ``finished=False`` (SUMO's ``--tripinfo-output.write-unfinished``: their figures so far),
  and vehicles that were due but never inserted are kept with ``inserted=False`` (SUMO's
  ``--tripinfo-output.write-undeparted``: ``depart="-1"``, ``departDelay`` = end minus the
  scheduled departure), so a gridlocked controller cannot look good by leaving its worst
  trips out.  Which mean counts which vehicles is defined in :mod:`sim.kpi_registry`.
* Network KPIs come from ``--statistic-output``: vehicles loaded, inserted, arrived,
  teleports, collisions and the mean speed of arrived trips.

Only trips departing after the scenario's warm-up count; a vehicle never inserted counts
whenever it was scheduled (it had not entered the network during the warm-up either).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd

from sim.errors import SimulationError

TRIP_COLUMNS = (
    "id",
    "vtype",
    "depart",
    "arrival",
    "duration",
    "time_loss",
    "waiting_time",
    "waiting_count",
    "depart_delay",
    "route_length",
    "co2_mg",
    "fuel_mg",
    "finished",
    "inserted",
)


def _f(attrib: dict[str, str], key: str) -> float:
    v = attrib.get(key)
    return float(v) if v not in (None, "") else math.nan


def read_tripinfo(path: Path | str, measure_begin: float = 0.0) -> pd.DataFrame:
    """Trips from a tripinfo file that departed at or after ``measure_begin``, or never did.

    A vehicle never inserted has ``depart`` NaN, ``inserted`` False and its wait since the
    scheduled departure in ``depart_delay``.

    Raises:
        SimulationError: the file is missing or truncated (SUMO did not close properly).
    """
    path = Path(path)
    rows = []
    try:
        for _, el in ET.iterparse(path, events=("end",)):
            if el.tag != "tripinfo":
                continue
            a = el.attrib
            depart = _f(a, "depart")
            inserted = depart >= 0  # SUMO writes depart="-1" for a vehicle never inserted
            if depart >= measure_begin or not inserted:
                em = el.find("emissions")
                arrival = _f(a, "arrival")
                rows.append(
                    (
                        a.get("id", ""),
                        a.get("vType", ""),
                        depart if inserted else math.nan,
                        arrival,
                        _f(a, "duration"),
                        _f(a, "timeLoss"),
                        _f(a, "waitingTime"),
                        _f(a, "waitingCount"),
                        _f(a, "departDelay"),
                        _f(a, "routeLength"),
                        _f(em.attrib, "CO2_abs") if em is not None else math.nan,
                        _f(em.attrib, "fuel_abs") if em is not None else math.nan,
                        arrival >= 0,
                        inserted,
                    )
                )
            el.clear()
    except FileNotFoundError:
        raise SimulationError(
            f"{path}: tripinfo output not found; was tripinfo=True set?"
        ) from None
    except ET.ParseError as exc:
        raise SimulationError(
            f"{path}: tripinfo output is incomplete ({exc}); SUMO did not finish"
        ) from None
    df = pd.DataFrame.from_records(rows, columns=list(TRIP_COLUMNS))
    df["finished"] = df["finished"].astype(bool)
    df["inserted"] = df["inserted"].astype(bool)
    return df


def read_statistics(path: Path | str) -> dict[str, float]:
    """Flatten SUMO's statistic output into ``{"vehicles.inserted": 123.0, ...}``."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise SimulationError(
            f"{path}: statistic output not found; was tripinfo=True set?"
        ) from None
    except ET.ParseError as exc:
        raise SimulationError(f"{path}: statistic output is incomplete ({exc})") from None
    out: dict[str, float] = {}
    for child in root:
        for key, value in child.attrib.items():
            try:
                out[f"{child.tag}.{key}"] = float(value)
            except ValueError:
                pass
    return out


def network_kpis(stats_path: Path | str, trips: pd.DataFrame | None = None) -> dict[str, float]:
    """Network KPIs: loaded, inserted, arrived, teleports, collisions, mean speed (m/s)."""
    s = read_statistics(stats_path)
    inserted = s.get("vehicles.inserted", math.nan)
    loaded = s.get("vehicles.loaded", math.nan)
    running = s.get("vehicles.running", 0.0)
    arrived = inserted - running if not math.isnan(inserted) else math.nan
    kpis = {
        "loaded": loaded,
        "inserted": inserted,
        "arrived": arrived,
        "running_at_end": running,
        "waiting_to_insert": s.get("vehicles.waiting", 0.0),
        "teleports": s.get("teleports.total", 0.0),
        "teleports_jam": s.get("teleports.jam", 0.0),
        "collisions": s.get("safety.collisions", 0.0),
        "mean_speed": s.get("vehicleTripStatistics.speed", math.nan),
    }
    if trips is not None and len(trips):
        done = trips[trips["finished"]]
        kpis["mean_speed_measured"] = (
            float(done["route_length"].sum() / done["duration"].sum()) if len(done) else math.nan
        )
    return kpis


def _mean(values: pd.Series) -> float:
    return float(values.mean()) if len(values) else math.nan


def summarise(trips: pd.DataFrame) -> dict[str, float]:
    """Trip KPIs of one run (the row of a comparison table), as registered in sim.kpi_registry.

    Headline means count every vehicle due after the warm-up: a finished trip with its
    figures, a trip still running with its figures so far, and a vehicle never inserted with
    its wait since the scheduled departure as travel time, time loss and waiting time.  The
    ``..._finished`` means count finished trips only.  ``resco_delay`` is RESCO's delay:
    time loss + depart delay per vehicle, every vehicle.  Emissions are summed over every
    inserted vehicle (NaN, not 0, when the emission device was off).
    """
    if "inserted" not in trips.columns:  # tables written before never-inserted rows existed
        trips = trips.assign(inserted=True)
    done = trips[trips["finished"]]
    waiting = ~trips["inserted"]
    wait = trips["depart_delay"]
    n, n_done, n_never = len(trips), len(done), int(waiting.sum())
    return {
        "trips": float(n),
        "finished": float(n_done),
        "unfinished": float(n - n_done),
        "running_at_end": float(n - n_done - n_never),
        "never_inserted": float(n_never),
        "unfinished_share": 100.0 * (n - n_done) / n if n else math.nan,
        "mean_travel_time": _mean(trips["duration"].where(~waiting, wait)),
        "mean_time_loss": _mean(trips["time_loss"].where(~waiting, wait)),
        "mean_waiting_time": _mean(trips["waiting_time"].where(~waiting, wait)),
        "mean_depart_delay": _mean(wait),
        "resco_delay": _mean(trips["time_loss"].fillna(0.0) + wait),
        "mean_travel_time_finished": _mean(done["duration"]),
        "mean_time_loss_finished": _mean(done["time_loss"]),
        "mean_waiting_time_finished": _mean(done["waiting_time"]),
        "mean_stops": _mean(done["waiting_count"]),
        "total_co2_kg": float(trips["co2_mg"].sum(min_count=1) / 1e6),
        "total_fuel_kg": float(trips["fuel_mg"].sum(min_count=1) / 1e6),
    }
