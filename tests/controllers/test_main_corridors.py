"""Main corridors found on the grid and on the Wulin district."""

from __future__ import annotations

import pytest
import sumolib

from controllers.corridor import corridor_by_name
from controllers.main_corridors import main_corridors, turn_flows
from sim.scenario import Scenario, load_scenario
from sim.state import DistrictLayout
from sim.topology import load_signal_specs


def _corridors(scenario: Scenario, limit: int = 3, demand: bool = True) -> tuple[list, DistrictLayout]:
    layout = DistrictLayout.from_specs(load_signal_specs(scenario.net_file))
    net = sumolib.net.readNet(str(scenario.net_file))
    flows = turn_flows(scenario.route_files, net, (scenario.begin, scenario.end), scenario.scale) if demand else None
    return main_corridors(net, list(layout.specs), flows, limit), layout


def test_grid_corridors_are_straight_rows_and_columns(grid_scenario: Scenario) -> None:
    found, layout = _corridors(grid_scenario)
    assert len(found) == 3
    for c in found:
        sigs = c.forward.signals
        assert len(sigs) == 3 and c.backward is not None and c.backward.signals == sigs[::-1]
        # a column (same letter, y grows: north) or a row (same digit, x grows: east)
        assert len({s[0] for s in sigs}) == 1 or len({s[1] for s in sigs}) == 1
        xy = [layout.specs[layout.index[s]].position for s in sigs]
        assert len({round(x) for x, _ in xy}) == 1 or len({round(y) for _, y in xy}) == 1
        assert c.forward.heading in ("N", "E") and c.backward.heading in ("S", "W")
        for d in c.directions:
            # stop line to stop line at the 50 km/h limit, straight-on links only
            for metres, seconds in zip(d.route.distances, d.travel_times, strict=True):
                assert seconds == pytest.approx(metres / 13.89, rel=0.01)
            for sid, approach, links in zip(d.signals, d.route.approach_edges, d.links, strict=True):
                mvs = {m.index: m for m in layout.specs[layout.index[sid]].movements}
                assert links and all(mvs[i].direction == "s" and mvs[i].from_edge == approach for i in links)
    assert [c.weight for c in found] == sorted((c.weight for c in found), reverse=True)


def test_grid_without_demand_ranks_by_lanes_and_finds_all_six(grid_scenario: Scenario) -> None:
    found, _ = _corridors(grid_scenario, limit=10, demand=False)
    assert len(found) == 6 and len({frozenset(c.forward.signals) for c in found}) == 6


def test_wulin_corridors_are_its_arterials_by_name() -> None:
    scenario = load_scenario("wulin-am-peak-v1")
    found, layout = _corridors(scenario)
    assert len(found) == 3
    net = sumolib.net.readNet(str(scenario.net_file))
    for c in found:
        assert len(c.forward.signals) >= 5 and c.backward is not None
        # named after the road its approaches carry; the signals the green wave finds for that
        # road name going the same way are all on it, in order (the corridor may go on where the
        # road changes its name: Huancheng N Rd continues west as Tianmushan Rd to Wulinmen)
        names = [net.getEdge(e).getName() for e in c.forward.route.approach_edges[1:]]
        assert names.count(c.name) == len(names)
        road = corridor_by_name(scenario.net_file, layout, c.name, c.forward.heading).signals
        k = c.forward.signals.index(road[0])
        assert len(road) >= 5 and c.forward.signals[k:k + len(road)] == road
