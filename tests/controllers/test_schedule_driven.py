"""Schedule-driven control: kernels equal the plain-Python reference, minimum green is respected,
and the controller runs through the episode loop on a tiny generated network."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controllers.base import check_controller, make_controller, random_states
from controllers.schedule_reference import (
    ReferenceMemory,
    reference_dp,
    reference_params,
    schedule_reference,
)
from sim.errors import WulinError
from sim.state import DistrictLayout
from sim.topology import load_signal_specs
from tests.conftest import REPO


@pytest.fixture(scope="module", params=["grid/grid.net.xml", "wulin/wulin.net.xml"])
def layout(request) -> DistrictLayout:
    net = REPO / "networks" / request.param
    if not net.is_file():
        pytest.skip(f"{net} not built")
    return DistrictLayout.from_specs(load_signal_specs(net))


def _states(layout: DistrictLayout, seed: int, n: int, min_green: float):  # type: ignore[no-untyped-def]
    states = random_states(layout, n, seed=seed, interval=2.0)
    rng = np.random.default_rng(seed)
    for s_ in states:  # fewer vehicles on some lanes, signals past and within minimum green
        s_.count[rng.random(layout.n_in) < 0.4] = 0
        s_.queue[:] = np.minimum(s_.queue, s_.count)
        s_.stage_time[:] = rng.random(layout.n_signals) * 3 * min_green
    return states


def _same_as_reference(
    layout, seed: int, neighbours: bool, blocks_exact: bool = True, **params
) -> None:  # type: ignore[no-untyped-def]
    """Same decisions at every call; the same kept schedules (all of them, or with
    ``blocks_exact=False`` at least 98 % of them)."""
    ctl = make_controller("schedule-driven", neighbours=neighbours, **params)
    ctl.reset(layout, 0)
    memory = ReferenceMemory()
    p = reference_params(ctl)
    differ = total = 0
    for st_ in _states(layout, seed, 10, p["min_green"]):
        got = ctl.act(st_)
        want = schedule_reference(layout, st_, p, ctl.clearance, memory, neighbours)
        assert got.tolist() == want.tolist()
        for s in range(layout.n_signals):  # the schedules each signal keeps for its neighbours
            for k in range(int(layout.n_stages[s])):
                ref = memory.blocks.get((s, k), (np.inf, np.inf))
                got_blk = (ctl.blk_start[s, k], ctl.blk_end[s, k])
                total += 1
                differ += got_blk != pytest.approx(ref, rel=1e-6)
    assert differ == 0 if blocks_exact else differ <= 0.02 * total, (differ, total)


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    gain=st.sampled_from([0.0, 15.0]),
    clusters=st.sampled_from([1, 2, 3]),
    gap=st.sampled_from([1.0, 3.0]),
    span=st.sampled_from([8.0, 20.0]),
    max_red=st.sampled_from([20.0, 120.0]),
)
def test_kernel_equals_reference(layout, seed, gain, clusters, gap, span, max_red) -> None:
    """Local jobs: the same decisions at every call and the same kept schedules (on Wulin a
    rare schedule differs: its arrival bins differ by ~1e-9 vehicles between compiled and
    Python arithmetic, enough to resolve a near-tie between two schedules differently)."""
    exact = layout.n_signals < 10  # the grid
    _same_as_reference(
        layout,
        seed,
        False,
        exact,
        gain=gain,
        clusters=clusters,
        gap=gap,
        span=span,
        max_red=max_red,
    )


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_kernel_equals_reference_with_neighbours(seed) -> None:
    """Non-local jobs too, on the grid, at fixed seeds: arrivals are binned by the second, so a
    schedule kept upstream that differs by 1e-9 s (compiled code rounds a few sums differently)
    can move a cluster boundary downstream; random seeds on Wulin found such a case."""
    layout = DistrictLayout.from_specs(load_signal_specs(REPO / "networks/grid/grid.net.xml"))
    _same_as_reference(layout, seed, True)


def test_dp_matches_brute_force_on_small_problems() -> None:
    """With one cluster per stage and no maximum green binding, the DP's best schedule is the
    best order of the clusters (every order enumerated)."""
    import itertools

    from controllers.schedule_reference import _serve

    rng = np.random.default_rng(3)
    p = {"min_green": 5.0, "startup": 2.0, "max_green": 1e9}
    for _ in range(40):
        ns = int(rng.integers(2, 5))
        clusters = [
            [[float(a), float(a + rng.integers(0, 10)), float(rng.integers(1, 12))]]
            for a in rng.integers(0, 30, ns)
        ]
        headway = [float(h) for h in rng.uniform(0.7, 2.0, ns)]
        cur, elapsed = int(rng.integers(0, ns)), float(rng.uniform(0, 20))
        table, best = reference_dp(clusters, headway, cur, elapsed, 4.0, -1, p)
        brute = np.inf
        for order in itertools.permutations(range(ns)):
            f, g, last, total = 0.0, -elapsed, cur, 0.0
            for j in order:
                if j != last:
                    g = max(f, g + 5.0) + 4.0
                avail = f if j == last else g + 2.0
                _, f, d = _serve(avail, *clusters[j][0], headway[j])
                total, last = total + d, j
            brute = min(brute, total)
        assert table[best][0] == pytest.approx(brute)


def test_planner_never_asks_for_a_change_before_minimum_green(layout) -> None:
    ctl = make_controller("schedule-driven", min_green=8.0, max_red=10.0)
    ctl.reset(layout, 0)
    asked = 0
    for st_ in _states(layout, 5, 60, 8.0):
        d = ctl.act(st_)
        early = (d >= 0) & ((st_.stage_time < 8.0) | st_.in_transition)
        assert not early.any(), np.flatnonzero(early)
        asked += int((d >= 0).sum())
    assert asked > 0  # it does switch once minimum green is served


def test_kernel_decides_like_its_python_loop(layout) -> None:
    a = make_controller("schedule-driven")
    b = make_controller("schedule-driven", use_numba=False)
    a.reset(layout, 0)
    b.reset(layout, 0)
    for st_ in _states(layout, 11, 6, 5.0):
        assert a.act(st_).tolist() == b.act(st_).tolist()


def test_conforms_to_the_controller_interface(layout) -> None:
    check_controller(make_controller("schedule-driven"), layout)


@pytest.mark.parametrize(
    "bad", [{"horizon": 0}, {"clusters": 0}, {"gain": -1}, {"clusters": 2.5}, {"min_green": -1}]
)
def test_bad_parameters_are_one_clear_error(bad) -> None:
    with pytest.raises(WulinError, match="schedule-driven"):
        make_controller("schedule-driven", **bad)


def test_runs_on_a_tiny_network_and_respects_minimum_green(tiny_scenario) -> None:
    from controllers.schedule_driven import ScheduleDrivenController
    from experiments.episode import run_episode

    class Watched(ScheduleDrivenController):
        def reset(self, layout, seed):  # type: ignore[no-untyped-def]
            super().reset(layout, seed)
            self.requests: list[tuple[float, bool]] = []

        def act(self, state):  # type: ignore[no-untyped-def]
            d = super().act(state)
            for s in np.flatnonzero(d >= 0):
                self.requests.append((float(state.stage_time[s]), bool(state.in_transition[s])))
            return d

    ctl = Watched(min_green=6.0)
    res = run_episode(tiny_scenario, ctl, seed=1)
    assert len(res.trips) > 100
    assert res.network["teleports"] == 0
    assert ctl.requests, "no stage change in ten minutes of crossing traffic"
    assert all(t >= 6.0 and not tr for t, tr in ctl.requests)
