"""The Wulin district model: tables, geometry, signal programs, connectivity, demand, runs."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from networks.wulin import calibration
from networks.wulin.build import NET, NET_EVENING
from networks.wulin.tables import load_tables, local_xy
from sim.errors import WulinError
from sim.scenario import load_scenario
from sim.topology import load_signal_specs

HERE = Path(__file__).resolve().parent.parent / "networks" / "wulin"
SCENARIOS = (
    "wulin-am-peak-v1", "wulin-midday-v1", "wulin-pm-peak-v1",
    "wulin-evening-pedestrian-v1", "wulin-am-incident-v1", "wulin-am-plus20-v1",
)


@pytest.fixture(scope="module")
def tables():  # type: ignore[no-untyped-def]
    return load_tables()


@pytest.fixture(scope="module", params=[NET, NET_EVENING])
def specs(request):  # type: ignore[no-untyped-def]
    return load_signal_specs(HERE / request.param)


def test_study_area_has_enough_signals(tables) -> None:  # type: ignore[no-untyped-def]
    signals = [n for n in tables.nodes.values() if n.kind == "signal"]
    assert len(signals) >= 24
    assert len(load_signal_specs(HERE / NET)) == len(signals)


def test_junction_positions_match_the_table(tables) -> None:  # type: ignore[no-untyped-def]
    for sid, spec in load_signal_specs(HERE / NET).items():
        node = tables.nodes[sid]
        assert spec.lonlat is not None
        x0, y0 = local_xy(node.lat, node.lon)
        x1, y1 = local_xy(spec.lonlat[1], spec.lonlat[0])
        assert math.hypot(x1 - x0, y1 - y0) <= node.tolerance_m, sid


def test_programs_are_safe_and_serve_every_movement(specs) -> None:  # type: ignore[no-untyped-def]
    for spec in specs.values():
        assert spec.n_stages >= 2, spec.id
        for stage in spec.stages:
            assert spec.conflicting_greens(stage) == [], (spec.id, stage)
        for i in range(spec.n_links):
            assert any(st[i] in "Gg" for st in spec.stages), (spec.id, i)


def test_programs_are_field_like(specs) -> None:  # type: ignore[no-untyped-def]
    for spec in specs.values():
        assert 60 <= spec.cycle <= 180, spec.id
        for p in spec.phases:
            if "y" in p.state:
                assert p.duration == 3, spec.id
            elif not any(c in "Gg" for c in p.state):
                assert 1 <= p.duration <= 3, spec.id
        # Arterial junctions (3+ lanes both ways) have a protected-left stage.
        lefts = [st for st in spec.stages
                 if all(spec.movements[i].is_left for i, c in enumerate(st) if c == "G")]
        if spec.n_stages >= 4:
            assert lefts, spec.id


@pytest.mark.parametrize("net", [NET, NET_EVENING])
def test_every_entry_reaches_every_exit(tables, net: str) -> None:  # type: ignore[no-untyped-def]
    import sumolib

    from networks.wulin.demand import routes_for, zones

    zs = zones(tables)
    routes = routes_for(sumolib.net.readNet(str(HERE / net)), zs)
    missing = [(o, d) for o in zs for d in zs if o != d and (o, d) not in routes]
    assert missing == []


def test_evening_variant_closes_the_pedestrian_street() -> None:
    import sumolib

    net = sumolib.net.readNet(str(HERE / NET_EVENING))
    assert not net.hasEdge("wl_fq-wl_cs") and not net.hasEdge("wl_cs-wl_fq")
    assert net.hasEdge("wl_cs-hx_cs") and not net.hasEdge("hx_cs-wl_cs")
    assert net.hasEdge("hw_hc-hx_cs") and not net.hasEdge("hx_cs-hw_hc")


def test_all_scenarios_load() -> None:
    for sid in SCENARIOS:
        sc = load_scenario(sid)
        assert sc.warmup >= 600 and sc.network == "wulin"
    assert load_scenario("wulin-am-plus20-v1").scale == pytest.approx(1.2)
    assert load_scenario("wulin-am-incident-v1").additional_files


def test_counts_are_the_shared_facts() -> None:
    shared = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "hangzhou_movement_counts.csv"
    if not shared.is_file():
        pytest.skip("../shared is not present")
    import csv

    with shared.open() as fh:
        ref = {(r["intersection"], int(r["hour_start"][:2]), r["approach_label"], r["movement"]): int(r["vehicles"])
               for r in csv.DictReader(fh)}
    assert calibration.load_counts() == ref


def test_calibrated_demand_matches_counts(tables) -> None:  # type: ignore[no-untyped-def]
    """The demand itself carries the counted flows (GEH well under 5 before simulation)."""
    import sumolib

    from networks.wulin.demand import calibrated_flows

    routes, flows = calibrated_flows(tables, sumolib.net.readNet(str(HERE / NET)))
    counted = [t for t in calibration.targets(tables) if t.kind != "interpolated"]
    assert len(counted) >= 80
    for t in counted:
        match = calibration.target_matches(t)
        m = sum(v for od, v in flows[t.hour].items() if match(routes[od]))
        assert calibration.geh(m, t.count) < 2.0, t


def test_geh_formula() -> None:
    assert calibration.geh(100, 100) == 0
    assert calibration.geh(150, 100) == pytest.approx(math.sqrt(2 * 2500 / 250))


def test_estimate_without_source_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "estimates.csv"
    text = (HERE / "estimates.csv").read_text().splitlines()
    cols = text[1].split(",")
    cols[-1] = ""
    bad.write_text("\n".join([text[0], ",".join(cols), *text[2:]]) + "\n")
    with pytest.raises(WulinError, match="no source"):
        load_tables(estimates=bad)


@pytest.mark.slow
def test_am_peak_runs_without_gridlock(tmp_path: Path) -> None:
    from sim.simulation import Simulation

    sc = load_scenario("wulin-am-peak-v1")
    sim = Simulation(sc, seed=1, tripinfo=True, output_dir=tmp_path)
    with sim:
        sim.step_until(sc.end)
    stats = ET.parse(sim.statistics_file).getroot()
    inserted = int(stats.find("vehicles").get("inserted"))  # type: ignore[union-attr]
    teleports = int(stats.find("teleports").get("total"))  # type: ignore[union-attr]
    assert teleports < 0.005 * inserted
    # Vehicles that departed at least 15 minutes before the end had time to arrive.
    done = total = 0
    for trip in ET.parse(sim.tripinfo_file).getroot():
        if float(trip.get("depart", "-1")) < 0 or float(trip.get("depart")) > sc.end - 900:  # type: ignore[arg-type]
            continue
        total += 1
        done += trip.get("arrival", "-1") not in ("-1", "-1.00")
    assert total > 5000 and done >= 0.95 * total


@pytest.mark.slow
def test_calibration_report_is_recomputed_from_simulation(tables) -> None:  # type: ignore[no-untyped-def]
    rows = calibration.geh_report(tables, begin=7 * 3600, end=8 * 3600, seed=1, progress=False)
    assert len(rows) == 8  # the eight counted movements at Qingchun x Yan'an, 07:00-08:00
    for r in rows:
        assert r.modelled > 0
        assert r.geh == pytest.approx(calibration.geh(r.modelled, r.count))
    text = calibration.report_markdown(rows)
    assert "GEH < 5" in text
