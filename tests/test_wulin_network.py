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
    "wulin-evening-pedestrian-v1", "wulin-am-incident-v1", "wulin-am-plus20-v1", "wulin-day-v1",
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


def test_readme_estimates_table_is_the_file() -> None:
    from networks.wulin.tables import estimates_markdown

    text = (HERE / "README.md").read_text()
    block = text.split("<!-- estimates-table -->\n")[1].split("<!-- /estimates-table -->")[0]
    assert block == estimates_markdown(), "regenerate the README table from estimates.csv"


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


def test_split_greens_share_time_by_critical_flow() -> None:
    from networks.wulin.signals import split_greens

    g = split_greens(100.0, [600.0, 300.0, 0.0, 100.0], 12.0)
    assert sum(g) == 100.0 and min(g) >= 12.0
    assert g[2] == 12.0  # a stage without design flow gets the minimum
    assert g[0] > g[1] > g[3]
    assert g[0] / g[1] == pytest.approx(2.0, abs=0.1)
    assert split_greens(60.0, [0.0, 0.0, 0.0], 12.0) == [20.0, 20.0, 20.0]


def test_field_plans_are_split_by_am_design_flows(tables) -> None:  # type: ignore[no-untyped-def]
    """Each built program's greens are the design-hour split of its stages (one per signal)."""
    import sumolib

    from networks.wulin.demand import AM_DESIGN_HOURS, calibrated_flows, movement_flows
    from networks.wulin.signals import critical_flows, split_greens

    net = sumolib.net.readNet(str(HERE / NET), withPrograms=True)
    routes, flows = calibrated_flows(tables, net)
    design = movement_flows(tables, routes, flows, AM_DESIGN_HOURS)
    min_green = tables.num("signal", "all", "min_green")
    for tls in net.getTrafficLights():
        phases = next(iter(tls.getPrograms().values())).getPhases()
        stages = [p for p in phases if "G" in p.state and "y" not in p.state]
        available = sum(p.duration for p in stages)
        crit = critical_flows(tls, [p.state for p in stages], design)
        assert [p.duration for p in stages] == split_greens(available, crit, min_green), tls.getID()
        busiest = max(range(len(stages)), key=lambda k: crit[k])
        assert stages[busiest].duration == max(p.duration for p in stages), tls.getID()


def test_buses_serve_stops_on_their_routes(tables) -> None:  # type: ignore[no-untyped-def]
    from networks.wulin.demand import BUS_LINES, bus_stops

    stops = ET.parse(HERE / "demand" / "busstops.add.xml").getroot()
    lane_of = {s.get("id"): s.get("lane") for s in stops.iter("busStop")}
    assert set(lane_of) == set(bus_stops(tables)) and len(lane_of) >= 9
    for rou in ("day.rou.xml", "evening.rou.xml"):
        root = ET.parse(HERE / "demand" / rou).getroot()
        route_edges = {r.get("id"): (r.get("edges") or "").split() for r in root.iter("route")}
        for name in BUS_LINES:
            flow = next(f for f in root.iter("flow") if f.get("id") == name)
            served = [s.get("busStop") for s in flow.iter("stop")]
            assert served, (rou, name)
            edges = route_edges[name]
            positions = [edges.index(str(lane_of[s]).rsplit("_", 1)[0]) for s in served]
            assert positions == sorted(positions), (rou, name)  # stops in route order
    assert any(v == "sq_sw-sq_nw" for v in bus_stops(tables).values())  # the Wulin Square loop


def test_bus_stop_on_unknown_edge_is_a_clear_error(tables) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    import sumolib

    from networks.wulin.demand import busstops_xml

    values = dict(tables.values)
    values[("bus_stop", "nowhere", "edge")] = "no-such-edge"
    bad = dataclasses.replace(tables, values=values)
    with pytest.raises(WulinError, match="bus_stop nowhere"):
        busstops_xml(bad, sumolib.net.readNet(str(HERE / NET)))


def test_incident_blocks_one_lane_of_yanan_for_30_minutes() -> None:
    root = ET.parse(HERE / "demand" / "incident.add.xml").getroot()
    veh = root.find("vehicle")
    assert veh is not None
    stop = veh.find("stop")
    assert stop is not None and stop.get("lane") == "ya_fq-ya_ty_0"
    assert float(stop.get("until", 0)) - float(veh.get("depart", 0)) == 1800
    assert float(veh.get("depart", 0)) == 7.75 * 3600


def _run(scenario_id: str, seed: int, out: Path) -> tuple[dict[str, float], object]:
    from sim.kpi import network_kpis, read_tripinfo
    from sim.simulation import Simulation

    sc = load_scenario(scenario_id)
    sim = Simulation(sc, seed=seed, tripinfo=True, output_dir=out)
    with sim:
        sim.step_until(sc.end)
    trips = read_tripinfo(sim.tripinfo_file, measure_begin=0.0)
    return network_kpis(sim.statistics_file, trips), trips


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_am_peak_runs_without_gridlock(tmp_path: Path, seed: int) -> None:
    """Teleports < 0.5 % of inserted; of the vehicles inserted at least 15 minutes before
    the end, at least 95 % arrived (unfinished trips come from write-unfinished)."""
    sc = load_scenario("wulin-am-peak-v1")
    kpis, trips = _run(sc.id, seed, tmp_path)
    assert kpis["inserted"] > 8000
    assert kpis["teleports"] < 0.005 * kpis["inserted"], kpis
    early = trips[trips["depart"] <= sc.end - 900]  # type: ignore[index]
    assert len(early) > 7000
    assert early["finished"].mean() >= 0.95, early["finished"].mean()


def _readme_table() -> list[tuple[str, int, float]]:
    """(movement, hour, modelled) rows of the calibration table in networks/wulin/README.md."""
    text = (HERE / "README.md").read_text()
    block = text.split("<!-- calibration-table -->")[1].split("<!-- /calibration-table -->")[0]
    rows = []
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[1][:2].isdigit():
            rows.append((cells[0], int(cells[1][:2]), float(cells[4])))
    return rows


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_calibration_report_is_recomputed_from_simulation(tables) -> None:  # type: ignore[no-untyped-def]
    """The full 07:00-19:00 report: recomputed from a simulation, equal to the README table."""
    rows = calibration.geh_report(tables, begin=7 * 3600, end=19 * 3600, seed=1, progress=False)
    counted = [r for r in rows if r.kind == "count"]
    assert len(counted) == 72  # 8 counted movements x 9 counted hours at Qingchun x Yan'an
    for r in rows:
        assert r.modelled > 0
        assert r.geh == pytest.approx(calibration.geh(r.modelled, r.count))
    assert sum(r.geh < 5 for r in counted) >= 0.85 * len(counted)
    assert sorted(_readme_table()) == sorted((r.name, r.hour, r.modelled) for r in rows)
