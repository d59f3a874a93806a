"""SignalSpec derived from networks with sumolib, without SUMO."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.errors import WulinError
from sim.topology import load_signal_specs
from tests.conftest import make_grid_network


@pytest.mark.parametrize(("n", "lanes"), [(2, 1), (3, 2)])
def test_generated_grid_topology(tmp_path: Path, n: int, lanes: int) -> None:
    specs = load_signal_specs(make_grid_network(tmp_path, n=n, lanes=lanes))
    assert len(specs) == n * n
    for spec in specs.values():
        # four approaches, each lane feeding right / straight / left (no U-turns)
        assert len(spec.approaches) == 4
        assert len(spec.in_lanes) == 4 * lanes
        dirs = [m.direction for m in spec.movements]
        assert dirs.count("l") == 4 and dirs.count("r") == 4
        assert dirs.count("s") == 4 * lanes
        assert spec.n_links == len(spec.movements) == len(spec.stages[0])
        assert [m.index for m in spec.movements] == list(range(spec.n_links))
        c = spec.conflict_matrix()
        assert c.shape == (spec.n_links, spec.n_links)
        assert (c == c.T).all() and not c.diagonal().any()
        # crossing straight movements of the two axes conflict; opposing straights do not
        straight = [m for m in spec.movements if m.direction == "s"]
        by_edge: dict[str, list[int]] = {}
        for m in straight:
            by_edge.setdefault(m.from_edge, []).append(m.index)
        edges = list(by_edge)
        assert any(c[i, j] for i in by_edge[edges[0]] for j in by_edge[edges[1]])
        # every program stage is safe and every movement is served
        for k, state in enumerate(spec.stages):
            assert spec.conflicting_greens(state) == []
            assert spec.stage_links(k)
        served = set().union(*(spec.stage_links(k) for k in range(spec.n_stages)))
        assert served == set(range(spec.n_links))
        for lane in (*spec.in_lanes, *spec.out_lanes):
            assert spec.lane_lengths[lane] > 0 and spec.lane_speeds[lane] > 0


def test_grid_specs_are_picklable_and_hashable() -> None:
    import pickle

    specs = load_signal_specs(Path(__file__).resolve().parent.parent / "networks/grid/grid.net.xml")
    spec = specs["B1"]
    assert pickle.loads(pickle.dumps(spec)) == spec
    assert hash(spec) == hash(pickle.loads(pickle.dumps(spec)))
    assert spec.cycle == sum(p.duration for p in spec.phases) > 0
    assert spec.position == (400.0, 400.0)


def test_conflicting_greens_detects_unsafe_state(tmp_path: Path) -> None:
    spec = next(iter(load_signal_specs(make_grid_network(tmp_path)).values()))
    c = spec.conflict_matrix()
    i, j = map(int, np.argwhere(c)[0])
    state = ["r"] * spec.n_links
    state[i] = state[j] = "G"
    assert spec.conflicting_greens("".join(state)) == [(min(i, j), max(i, j))]
    state[j] = "g"  # a permitted movement yields: not a conflict
    assert spec.conflicting_greens("".join(state)) == []


def test_missing_and_bad_network(tmp_path: Path) -> None:
    with pytest.raises(WulinError, match="not found"):
        load_signal_specs(tmp_path / "nope.net.xml")
    bad = tmp_path / "bad.net.xml"
    bad.write_text("this is not xml")
    with pytest.raises(WulinError, match="not a readable SUMO network"):
        load_signal_specs(bad)
