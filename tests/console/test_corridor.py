"""The corridor through a signal and its time-space diagram, on the grid network."""

from __future__ import annotations

from console.corridor import corridor, read_roads, serves, time_space_svg
from tests.deploy.conftest import GRID_NET, make_plan


def test_corridor_through_the_middle_signal_holds_three_signals_in_order() -> None:
    roads = read_roads(GRID_NET)
    line = corridor(roads, "B1")
    names = [s for s, _ in line.signals]
    assert len(names) == 3 and names[1] == "B1" and set(names) in ({"A1", "B1", "C1"}, {"B0", "B1", "B2"})
    dists = [d for _, d in line.signals]
    assert dists[0] == 0 and dists[0] < dists[1] < dists[2]


def test_exactly_one_of_the_two_stages_serves_the_corridor() -> None:
    roads = read_roads(GRID_NET)
    line = corridor(roads, "B1")
    plan = make_plan()
    assert sorted(serves(roads, "B1", line.heading, st.state) for st in plan.stages) == [False, True]


def test_diagram_shows_the_plan_and_marks_signals_without_one() -> None:
    roads = read_roads(GRID_NET)
    line = corridor(roads, "B1")
    svg = time_space_svg(roads, line, {"B1": make_plan(offset=20)})
    assert svg.count("no plan on record") == 2 and 'fill="#2e9e44"' in svg and 'fill="#c8342b"' in svg
