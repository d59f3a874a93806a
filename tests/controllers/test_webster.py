"""Webster: the formula, demand -> flows, plans that validate, export and run in SUMO."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controllers.corridor import coordinate_corridor
from controllers.plan import load_plans, plans_to_additional, validate_plan
from controllers.webster import parse_window, webster_plans, webster_timing
from sim.demand import demand_routes, lane_flows_from_demand
from sim.errors import WulinError
from sim.state import DistrictLayout
from sim.topology import load_signal_specs


def test_webster_formula_by_hand() -> None:
    # y = 0.3 + 0.2, two stages, clearance 5 s -> lost time per stage 5 - 1 + 2 = 6 s, L = 12 s
    # C0 = (1.5 * 12 + 5) / (1 - 0.5) = 46 s; effective green 46 - 10 = 36 s split 3:2
    cycle, greens = webster_timing([0.3, 0.2], 5.0, min_green=5.0, min_cycle=40.0, max_cycle=180.0)
    assert greens == [22.0, 14.0]
    assert cycle == 46.0


def _webster_timing_numpy(y, clearance, min_green, min_cycle, max_cycle, y_cap=0.9,
                          startup_lost=2.0):
    """The formula on numpy arrays, as first written: the reference for the plain-float one."""
    n = len(y)
    ys = np.maximum(np.asarray(y, dtype=np.float64), 0.0)
    lost = n * (clearance - 1.0 + startup_lost)
    big_y = float(ys.sum())
    if big_y <= 1e-9:
        ys, big_y = np.ones(n), float(n)
        c0 = min_cycle
    elif big_y >= y_cap:
        c0 = max_cycle
    else:
        c0 = (1.5 * lost + 5.0) / (1.0 - big_y)
    c0 = min(max(c0, min_cycle, n * (min_green + clearance)), max_cycle)
    effective = c0 - n * clearance
    greens = [max(min_green, float(round(effective * yk / big_y))) for yk in ys]
    return sum(greens) + n * clearance, greens


@settings(max_examples=300, deadline=None)
@given(y=st.lists(st.one_of(st.floats(0.0, 0.5), st.floats(-0.1, 1.2)), min_size=1, max_size=10),
       clearance=st.sampled_from([3.0, 4.0, 5.0, 6.5]), min_green=st.sampled_from([5.0, 7.0]))
def test_webster_timing_equals_numpy_reference(y, clearance, min_green) -> None:
    """webster-online runs the plain-float formula; it gives bit-identical plans."""
    assert webster_timing(y, clearance, min_green=min_green, min_cycle=40.0, max_cycle=150.0) \
        == _webster_timing_numpy(y, clearance, min_green, 40.0, 150.0)


@settings(max_examples=200, deadline=None)
@given(flows=st.lists(st.floats(0.0, 2500.0), min_size=1, max_size=12),
       elapsed=st.floats(0.0, 200.0), clearance=st.sampled_from([3.0, 5.0, 6.5]),
       min_green=st.sampled_from([5.0, 7.0]))
def test_online_kernel_equals_webster_timing(flows, elapsed, clearance, min_green) -> None:
    """One signal, one lane per stage: the compiled cycle boundary gives webster_timing's
    cycle and greens bit for bit (from 8 stages on, numpy's pairwise sum too)."""
    from controllers import kernels

    n = len(flows)
    scale = max(elapsed, 1.0)
    counts = np.array([f * scale / 3600.0 for f in flows])
    expected_flow = [(c - 0.0) * 3600.0 / scale for c in counts]
    y = [f / 1.0 / 1800.0 for f in expected_flow]
    want = webster_timing(y, clearance, min_green=min_green, min_cycle=40.0, max_cycle=150.0)
    ptr = np.arange(n + 1, dtype=np.int64)
    for fn in (kernels.webster_online_loop, kernels.jitted("webster_online")):
        counts_at, flow, greens = np.zeros(n), np.full(n, np.nan), np.zeros(n)
        cycle = fn(0, elapsed, counts, counts_at, flow, np.ones(n), np.array([0, n], np.int32),
                   np.array([0, n], np.int64), ptr, ptr[:-1].copy(), clearance, min_green, 40.0,
                   150.0, 1800.0, 0.5, greens)
        assert (cycle, greens.tolist()) == want
        assert flow.tolist() == expected_flow and counts_at.tolist() == counts.tolist()


def test_online_controller_recomputes_from_counted_flows(grid_scenario) -> None:
    """webster-online's cycle boundaries on the grid: smoothed flows per lane -> stage ratios
    (``stage_ratios``) -> ``webster_timing``, for two cycles of random counts."""
    from controllers.webster import OnlineWebsterController, stage_ratios

    lay = DistrictLayout.from_specs(load_signal_specs(grid_scenario.net_file))
    ctl = OnlineWebsterController(smoothing=0.3)
    ctl.reset(lay, 0)

    class Loops:  # cumulative stop-line counts (float32 here: the controller converts)
        counts = np.zeros(lay.n_in, np.float32)

        def read(self, lanes=None):  # noqa: ANN001, ANN202
            return self.counts

    loops = Loops()
    ctl.attach_lane_counter(loops)
    rng = np.random.default_rng(3)
    ctl.plan_cycles(0.0)  # first boundary: counting starts
    flow = [np.nan] * lay.n_in
    t = 0.0
    for length in (60.0, 87.0):
        before = loops.counts.copy()
        loops.counts += rng.integers(0, 40, lay.n_in)
        t += length
        for s in range(lay.n_signals):
            ctl.cycle_booked(s, t)
        planned = dict(ctl.plan_cycles(t))
        for i in range(lay.n_in):
            measured = (float(loops.counts[i]) - float(before[i])) * 3600.0 / length
            flow[i] = measured if np.isnan(flow[i]) else 0.3 * measured + (1 - 0.3) * flow[i]
        for s, spec in enumerate(lay.specs):
            sl = lay.signal_slice(s)
            y = stage_ratios(spec, dict(zip(lay.in_lanes[sl], flow[sl], strict=True)))
            _, greens = webster_timing(y, ctl._clearance_l[s], min_green=7.0, min_cycle=40.0,
                                       max_cycle=150.0)
            assert planned[s] == greens, spec.id


def test_webster_bounds() -> None:
    c, g = webster_timing([0.6, 0.5], 5.0, max_cycle=120.0)  # oversaturated -> max cycle
    assert c == pytest.approx(120.0, abs=1.0)
    c, g = webster_timing([0.0, 0.0], 5.0, min_cycle=40.0)   # no demand -> min cycle, equal
    assert g[0] == g[1] and c == 40.0
    c, g = webster_timing([0.01, 0.4], 5.0, min_green=7.0)
    assert min(g) >= 7.0


def test_windows() -> None:
    assert parse_window("07:00-09:00") == (25200.0, 32400.0)
    for bad in ("07:00", "09:00-07:00", "7h-9h"):
        with pytest.raises(WulinError):
            parse_window(bad)


def test_demand_counts_flows_in_window(tiny_scenario) -> None:
    import sumolib

    net = sumolib.net.readNet(str(tiny_scenario.net_file))
    routes = demand_routes(tiny_scenario.route_files, net, (0.0, 300.0))
    # six flows, 0-600 s: half of each in the first 300 s
    assert sum(routes.values()) == pytest.approx((300 + 300 + 250 + 250 + 200 + 200) / 12.0)
    lay = DistrictLayout.from_specs(load_signal_specs(tiny_scenario.net_file))
    flows = lane_flows_from_demand(tiny_scenario, lay)
    assert set(flows) == set(lay.in_lanes)
    # left0A0 -> B0right0 (300 veh/h) crosses A0 then B0 from the west: 300 veh/h on that lane
    assert flows["left0A0_0"] == pytest.approx(300.0)


def test_plans_validate_export_and_run(tiny_scenario, tmp_path) -> None:
    from controllers.fixed_time import FixedTimeController
    from experiments.episode import run_episode

    lay = DistrictLayout.from_specs(load_signal_specs(tiny_scenario.net_file))
    # netgenerate's programs have no all-red; a plan that validates needs one
    plans = webster_plans(tiny_scenario, lay, yellow=3.0, all_red=2.0)
    for plan, spec in zip(plans, lay.specs, strict=True):
        assert validate_plan(plan, spec.conflicts) == [], plan.signal_id
        assert (plan.yellow, plan.all_red) == (3.0, 2.0)
        assert plan.source == "webster"
    path = tmp_path / "plans.json"
    path.write_text("[" + ",".join(p.to_json() for p in plans) + "]")
    assert [p.plan_hash() for p in load_plans(path)] == [p.plan_hash() for p in plans]
    xml = plans_to_additional(plans)
    assert xml.count("<tlLogic") == lay.n_signals
    res = run_episode(tiny_scenario, FixedTimeController(plans=path), seed=1)
    assert res.network["inserted"] > 50 and res.network["teleports"] == 0


def test_default_intergreen_is_the_networks(grid_scenario) -> None:
    """Webster retimes cycle and splits only; yellow and all-red stay the field plan's."""
    from controllers.fixed_time import plan_from_spec
    from controllers.webster import network_intergreen

    lay = DistrictLayout.from_specs(load_signal_specs(grid_scenario.net_file))
    plans = webster_plans(grid_scenario, lay)
    for plan, spec in zip(plans, lay.specs, strict=True):
        field = plan_from_spec(spec)
        assert (plan.yellow, plan.all_red) == (field.yellow, field.all_red) == (3.0, 0.0)
        assert network_intergreen(spec) == (3.0, 0.0)
        assert plan.cycle == sum(s.green for s in plan.stages) + len(plan.stages) * 3.0
        # the grid's own programs have no all-red, so neither plan passes that check
        assert any("all-red 0 s" in v for v in validate_plan(plan, spec.conflicts))
        assert any("all-red 0 s" in v for v in validate_plan(field, spec.conflicts))
    over = webster_plans(grid_scenario, lay, all_red=1.0)
    assert {p.all_red for p in over} == {1.0} and {p.yellow for p in over} == {3.0}
    with pytest.raises(WulinError, match="yellow > 0"):
        webster_plans(grid_scenario, lay, yellow=0.0)


def test_fixed_time_rejects_plans_for_other_networks(tiny_scenario, grid_scenario) -> None:
    from controllers.fixed_time import FixedTimeController

    grid = DistrictLayout.from_specs(load_signal_specs(grid_scenario.net_file))
    tiny = DistrictLayout.from_specs(load_signal_specs(tiny_scenario.net_file))
    plans = webster_plans(grid_scenario, grid)
    bad = [p for p in plans if p.signal_id not in tiny.index][:1]
    with pytest.raises(WulinError, match="not in the network"):
        FixedTimeController(plans=bad).reset(tiny, 0)


def test_corridor_green_wave(grid_scenario) -> None:
    lay = DistrictLayout.from_specs(load_signal_specs(grid_scenario.net_file))
    plans = webster_plans(grid_scenario, lay, all_red=2.0)
    corridor = ["A1", "B1", "C1"]  # west -> east along the middle row, 200 m apart
    out = coordinate_corridor(plans, lay, corridor, speed_kmh=36.0)  # 10 m/s -> 20 s per block
    by = {p.signal_id: p for p in out}
    cycles = {by[s].cycle for s in corridor}
    assert len(cycles) == 1
    c = cycles.pop()
    # the eastbound stage of each signal starts 20 s after the previous one's
    starts = []
    eastbound = {"A1": "left1A1", "B1": "A1B1", "C1": "B1C1"}
    for sid in corridor:
        p = by[sid]
        spec = lay.specs[lay.index[sid]]
        k = next(j for j, st in enumerate(p.stages)
                 if any(st.state[m.index] in "Gg" for m in spec.movements
                        if m.from_edge == eastbound[sid] and m.direction == "s"))
        starts.append((p.offset + p.stage_starts[k]) % c)
    assert (starts[1] - starts[0]) % c == pytest.approx(20.0, abs=0.5)
    assert (starts[2] - starts[1]) % c == pytest.approx(20.0, abs=0.5)
    for p, spec in zip(out, lay.specs, strict=True):
        assert validate_plan(p, spec.conflicts) == []
    with pytest.raises(WulinError, match="not in the network"):
        coordinate_corridor(plans, lay, ["A1", "Z9"])
