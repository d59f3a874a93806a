"""Green wave along a named road: the corridor is found by name, and in SUMO the offsets give
the intended differences between the green starts along it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from controllers.corridor import coordinate_corridor, corridor_by_name, resolve_corridor
from controllers.fixed_time import FixedTimeController, plan_from_spec
from controllers.plan import validate_plan
from sim.errors import WulinError
from sim.state import DistrictLayout
from sim.tools import sumo_binary
from sim.topology import load_signal_specs
from tests.conftest import REPO, write_scenario

ROAD = "Test Rd"
XS = (0, 200, 450, 650, 850)  # W, J1, J2, J3, E: blocks of 250 and 200 m


def _build_named_network(out: Path) -> Path:
    """A west-east road named ``Test Rd`` through three signals, unnamed cross streets."""
    out.mkdir(parents=True, exist_ok=True)
    nodes = ['<nodes>', '  <node id="W" x="0" y="0"/>', f'  <node id="E" x="{XS[-1]}" y="0"/>']
    edges = ['<edges>']
    main = ["W", "J1", "J2", "J3", "E"]
    for i, j in enumerate(main[1:-1], start=1):
        nodes.append(f'  <node id="{j}" x="{XS[i]}" y="0" type="traffic_light"/>')
        nodes.append(f'  <node id="{j}n" x="{XS[i]}" y="150"/>')
        nodes.append(f'  <node id="{j}s" x="{XS[i]}" y="-150"/>')
        for a, b in ((f"{j}n", j), (j, f"{j}s"), (f"{j}s", j), (j, f"{j}n")):
            edges.append(f'  <edge id="{a}_{b}" from="{a}" to="{b}" numLanes="1" speed="13.9"/>')
    for a, b in zip(main, main[1:], strict=False):
        for u, v in ((a, b), (b, a)):
            edges.append(f'  <edge id="{u}_{v}" from="{u}" to="{v}" numLanes="2" speed="13.9" '
                         f'name="{ROAD}"/>')
    nodes.append('</nodes>')
    edges.append('</edges>')
    (out / "n.nod.xml").write_text("\n".join(nodes))
    (out / "n.edg.xml").write_text("\n".join(edges))
    net = out / "named.net.xml"
    subprocess.run([sumo_binary("netconvert"), "-n", str(out / "n.nod.xml"), "-e",
                    str(out / "n.edg.xml"), "--no-turnarounds", "true", "--tls.default-type",
                    "static", "--no-warnings", "true", "-o", str(net)],
                   check=True, capture_output=True)
    return net


@pytest.fixture(scope="module")
def named(tmp_path_factory):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("named")
    net = _build_named_network(folder)
    flows = [("W_J1", "J3_E", 400.0), ("E_J3", "J1_W", 300.0), ("J2n_J2", "J2_J2s", 150.0)]
    sc = write_scenario(folder, net, flows, sid="named-test-v1", end=420, warmup=0)
    return sc, DistrictLayout.from_specs(load_signal_specs(net))


def test_corridor_found_by_road_name(named) -> None:
    sc, lay = named
    east = corridor_by_name(sc.net_file, lay, "test  rd", heading="E")  # case, spaces
    assert east.signals == ("J1", "J2", "J3")
    assert east.approach_edges == ("W_J1", "J1_J2", "J2_J3")
    assert east.distances[0] == pytest.approx(250.0, abs=25.0)
    assert east.distances[1] == pytest.approx(200.0, abs=25.0)
    west = corridor_by_name(sc.net_file, lay, ROAD, heading="W")
    assert west.signals == ("J3", "J2", "J1")
    assert resolve_corridor("J1,J2", lay).signals == ("J1", "J2")
    assert resolve_corridor(ROAD, lay, sc.net_file, "E") == east
    with pytest.raises(WulinError, match="no edge .* is named 'Nowhere St'.*'Test Rd'"):
        corridor_by_name(sc.net_file, lay, "Nowhere St")
    with pytest.raises(WulinError, match="heading must be N, S, E or W"):
        corridor_by_name(sc.net_file, lay, ROAD, heading="up")
    with pytest.raises(WulinError, match="give the network file"):
        resolve_corridor(ROAD, lay)
    with pytest.raises(WulinError, match="'J9' is not in the network"):
        resolve_corridor("J1,J9", lay)


def test_offsets_give_the_green_wave_in_sumo(named) -> None:
    """Read the corridor's through signals every second: each green starts the planned travel
    time (distance along the road / progression speed) after the previous signal's."""
    from experiments.episode import run_episode

    sc, lay = named
    speed = 36.0  # km/h = 10 m/s
    route = corridor_by_name(sc.net_file, lay, ROAD, heading="E")
    plans = coordinate_corridor([plan_from_spec(s) for s in lay.specs], lay, ROAD, speed,
                                net_file=sc.net_file, heading="E")
    cycle = plans[0].cycle
    assert {p.cycle for p in plans} == {cycle}
    assert len({p.offset for p in plans}) > 1  # the transform did shift them
    for p, spec in zip(plans, lay.specs, strict=True):
        assert not [v for v in validate_plan(p, spec.conflicts) if "offset" in v or "cycle" in v]
    # the through link from the corridor approach at each signal
    links = {}
    for sid, edge in zip(route.signals, route.approach_edges, strict=True):
        spec = lay.specs[lay.index[sid]]
        links[sid] = next(m.index for m in spec.movements
                          if m.from_edge == edge and m.direction == "s")
    seen: dict[str, list[tuple[float, str]]] = {sid: [] for sid in route.signals}

    def record(sim, t):  # type: ignore[no-untyped-def]
        get = sim.conn.trafficlight.getRedYellowGreenState
        for sid in route.signals:
            seen[sid].append((t, get(sid)[links[sid]]))

    run_episode(sc, FixedTimeController(plans=plans, decision_interval=1.0), seed=1,
                hooks=[record])
    starts = {}
    for sid, seq in seen.items():
        onsets = [t for (t0, a), (t, b) in zip(seq, seq[1:], strict=False)
                  if a not in "Gg" and b in "Gg"]
        assert len(onsets) >= 2, f"{sid}: the through green never started"
        assert onsets[1] - onsets[0] == pytest.approx(cycle)
        starts[sid] = onsets[0]
    v = speed / 3.6
    for (a, b), dist in zip(zip(route.signals, route.signals[1:], strict=False),
                            route.distances, strict=True):
        assert (starts[b] - starts[a]) % cycle == pytest.approx(dist / v % cycle, abs=1.0)


@pytest.mark.slow
def test_yanan_road_in_wulin() -> None:
    """Yan'an Rd in the Wulin model: its signals in travel order, and plans that shift."""
    net = REPO / "networks" / "wulin" / "wulin.net.xml"
    if not net.is_file():
        pytest.skip("Wulin network not built")
    lay = DistrictLayout.from_specs(load_signal_specs(net))
    north = corridor_by_name(net, lay, "Yan'an Rd", heading="N")
    south = corridor_by_name(net, lay, "Yan’an Rd", heading="S")  # typographic apostrophe
    assert len(north.signals) >= 3 and len(south.signals) >= 3
    # the two directions visit the shared signals in opposite orders
    shared = [s for s in north.signals if s in south.signals]
    assert [s for s in south.signals if s in shared] == shared[::-1]
    plans = coordinate_corridor([plan_from_spec(s) for s in lay.specs], lay, "Yan'an Rd", 40.0,
                                net_file=net, heading="N")
    by = {p.signal_id: p for p in plans}
    assert len({by[s].cycle for s in north.signals}) == 1
