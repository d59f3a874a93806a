"""KPI parsing on files with known answers."""

from __future__ import annotations

import math
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sim.errors import SimulationError
from sim.kpi import network_kpis, read_tripinfo, summarise
from sim.kpi_registry import KPI_BY_COLUMN, KPIS, run_flag

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
  <tripinfo id="u" depart="-1" departDelay="30.00" arrival="-1.00" duration="0.00" timeLoss="0.00"
            waitingTime="0.00" waitingCount="0" routeLength="0.00" vType="car"/>
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
    # 'w' departed in the warm-up; 'u' was never inserted and counts whenever it was due
    assert list(trips["id"]) == ["a", "b", "c", "u"]
    assert list(trips["finished"]) == [True, True, False, False]
    assert list(trips["inserted"]) == [True, True, True, False]
    assert math.isnan(trips["depart"].iloc[3])
    s = summarise(trips)
    assert (s["trips"], s["finished"], s["unfinished"]) == (4, 2, 2)
    assert (s["running_at_end"], s["never_inserted"], s["unfinished_share"]) == (1, 1, 50)
    # headline, all four vehicles: a 60 + b 100 + c 50 so far + u 30 waiting to enter
    assert s["mean_travel_time"] == (60 + 100 + 50 + 30) / 4
    assert s["mean_time_loss"] == (20 + 40 + 45 + 30) / 4
    assert s["mean_waiting_time"] == (10 + 30 + 40 + 30) / 4
    assert s["mean_depart_delay"] == (0.5 + 1.5 + 0 + 30) / 4
    # RESCO: time loss + depart delay per vehicle
    assert s["resco_delay"] == ((20 + 0.5) + (40 + 1.5) + (45 + 0) + (0 + 30)) / 4
    # secondary, finished trips a and b only
    assert s["mean_travel_time_finished"] == 80 and s["mean_time_loss_finished"] == 30
    assert s["mean_waiting_time_finished"] == 20 and s["mean_stops"] == 2
    assert s["total_co2_kg"] == 4 and s["total_fuel_kg"] == pytest.approx(1.2)


def test_every_summary_value_is_a_registered_kpi(tmp_path: Path) -> None:
    p = tmp_path / "t.xml"
    p.write_text(TRIPS)
    s = summarise(read_tripinfo(p))
    assert set(s) <= set(KPI_BY_COLUMN)
    produced_here = {k.column for k in KPIS if k.source == "sim.kpi.summarise"}
    assert produced_here == set(s)


def test_run_flag_thresholds() -> None:
    clean = {"trips": 1000, "teleports": 0, "never_inserted": 10, "unfinished_share": 15.0}
    assert run_flag(clean) == ""
    assert run_flag({**clean, "teleports": 1}) == "1 teleports"
    assert run_flag({**clean, "never_inserted": 11}) == "1.1 % never inserted"
    assert run_flag({**clean, "unfinished_share": 15.5}) == "15.5 % unfinished"
    assert run_flag({}) == ""  # nothing known, nothing flagged


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


def _one_road(folder: Path) -> Path:
    """A 60 m one-lane road at 10 m/s; returns the .net.xml."""
    from sim.tools import sumo_binary

    (folder / "n.nod.xml").write_text('<nodes><node id="a" x="0" y="0"/><node id="b" x="60" y="0"/></nodes>')
    (folder / "n.edg.xml").write_text('<edges><edge id="ab" from="a" to="b" numLanes="1" speed="10"/></edges>')
    net = folder / "road.net.xml"
    subprocess.run([sumo_binary("netconvert"), "-n", str(folder / "n.nod.xml"), "-e",
                    str(folder / "n.edg.xml"), "-o", str(net)], check=True, capture_output=True)
    return net


def test_never_inserted_and_running_vehicles_counted_in_sumo(tmp_path: Path) -> None:
    """Demand far above what one lane can insert in 20 s: known waits for the vehicles left out.

    Fourteen vehicles are due at 0 s and one at 15 s on a 60 m road; one at 25 s and one
    at 100 s are not due before the end (20 s).  SUMO inserts one vehicle about every 2 s, so
    some are never inserted: each waits end - scheduled departure (20 s, or 5 s for the one
    due at 15 s), and that wait is its travel time, time loss and waiting time.
    """
    from sim.scenario import scenario_from_toml
    from sim.simulation import Simulation

    net = _one_road(tmp_path)
    departs = [0] * 14 + [15, 25, 100]
    (tmp_path / "r.rou.xml").write_text(
        '<routes><vType id="car" sigma="0"/>'
        + "".join(f'<vehicle id="v{i}" type="car" depart="{d}"><route edges="ab"/></vehicle>'
                  for i, d in enumerate(departs))
        + "</routes>")
    (tmp_path / "scenarios").mkdir()
    toml = tmp_path / "scenarios" / "road-test-v1.toml"
    toml.write_text(f'description = "t"\nnet = "{net.name}"\nroutes = ["r.rou.xml"]\n'
                    "begin = 0\nend = 20\nwarmup = 0\n")
    sc = scenario_from_toml(toml)
    sim = Simulation(sc, seed=1, tripinfo=True)
    with sim:
        sim.step_until(sc.end)
    trips = read_tripinfo(sim.tripinfo_file, sc.measure_begin)
    stats = ET.parse(sim.statistics_file).getroot().find("vehicleTripStatistics")
    sim.cleanup()
    assert len(trips) == 15  # v15 (25 s) and v16 (100 s) were not due
    never = trips[~trips["inserted"]].set_index("id")
    assert len(never) >= 2 and "v14" in never.index  # due at 15 s, behind v0-v13
    assert never.loc["v14", "depart_delay"] == 5.0
    assert (never.drop(index="v14")["depart_delay"] == 20.0).all()
    s = summarise(trips)
    assert s["never_inserted"] == len(never) and s["finished"] >= 1 and s["running_at_end"] >= 1
    assert s["trips"] == s["finished"] + s["running_at_end"] + s["never_inserted"]
    # SUMO's own total depart delay counts the waiting vehicles too: ours matches it
    assert s["mean_depart_delay"] * 15 == pytest.approx(float(stats.get("totalDepartDelay")), abs=0.01)
    # the never-inserted waits pull the headline above the finished-only mean
    waits = never["depart_delay"].sum()
    inserted = trips[trips["inserted"]]
    assert s["mean_time_loss"] == pytest.approx((inserted["time_loss"].sum() + waits) / 15)
    assert s["mean_travel_time"] > s["mean_travel_time_finished"]
