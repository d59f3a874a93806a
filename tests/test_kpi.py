"""KPI parsing on files with known answers."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sim.errors import SimulationError
from sim.kpi import network_kpis, read_tripinfo, summarise

TRIPS = """<tripinfos>
  <tripinfo id="a" depart="10.00" arrival="70.00" duration="60.00" timeLoss="20.00" waitingTime="10.00"
            waitingCount="1" departDelay="0.50" routeLength="600.00" vType="car">
    <emissions CO2_abs="1000000" fuel_abs="300000"/>
  </tripinfo>
  <tripinfo id="b" depart="100.00" arrival="200.00" duration="100.00" timeLoss="40.00" waitingTime="30.00"
            waitingCount="3" departDelay="1.50" routeLength="800.00" vType="car">
    <emissions CO2_abs="3000000" fuel_abs="900000"/>
  </tripinfo>
  <tripinfo id="c" depart="150.00" arrival="-1" duration="50.00" timeLoss="45.00" waitingTime="40.00"
            waitingCount="2" departDelay="0" routeLength="100.00" vType="car"/>
  <tripinfo id="w" depart="5.00" arrival="50.00" duration="45.00" timeLoss="1.00" waitingTime="0"
            waitingCount="0" departDelay="0" routeLength="500.00" vType="car"/>
</tripinfos>"""

STATS = """<statistics>
  <vehicles loaded="10" inserted="9" running="2" waiting="1"/>
  <teleports total="3" jam="2" yield="1" wrongLane="0"/>
  <safety collisions="0" emergencyStops="0"/>
  <vehicleTripStatistics routeLength="700" speed="7.5" duration="80"/>
</statistics>"""


def test_tripinfo_known_answers(tmp_path: Path) -> None:
    p = tmp_path / "t.xml"
    p.write_text(TRIPS)
    trips = read_tripinfo(p, measure_begin=10)
    assert list(trips["id"]) == ["a", "b", "c"]  # 'w' departed in the warm-up
    assert list(trips["finished"]) == [True, True, False]
    s = summarise(trips)
    assert s["trips"] == 3 and s["finished"] == 2
    assert s["mean_travel_time"] == 80 and s["mean_time_loss"] == 30
    assert s["mean_waiting_time"] == 20 and s["mean_depart_delay"] == 1 and s["mean_stops"] == 2
    assert s["total_co2_kg"] == 4 and s["total_fuel_kg"] == pytest.approx(1.2)


def test_network_kpis_known_answers(tmp_path: Path) -> None:
    p = tmp_path / "s.xml"
    p.write_text(STATS)
    k = network_kpis(p)
    assert (k["loaded"], k["inserted"], k["arrived"], k["teleports"]) == (10, 9, 7, 3)
    assert k["mean_speed"] == 7.5 and k["collisions"] == 0


def test_truncated_or_missing_outputs(tmp_path: Path) -> None:
    p = tmp_path / "t.xml"
    p.write_text(TRIPS[:300])
    with pytest.raises(SimulationError, match="incomplete"):
        read_tripinfo(p)
    with pytest.raises(SimulationError, match="not found"):
        read_tripinfo(tmp_path / "none.xml")
    with pytest.raises(SimulationError, match="not found"):
        network_kpis(tmp_path / "none.xml")


def test_no_emissions_gives_nan_not_zero(tmp_path: Path) -> None:
    p = tmp_path / "t.xml"
    p.write_text(
        TRIPS.replace('<emissions CO2_abs="1000000" fuel_abs="300000"/>', "").replace(
            '<emissions CO2_abs="3000000" fuel_abs="900000"/>', ""
        )
    )
    assert math.isnan(summarise(read_tripinfo(p))["total_co2_kg"])
