"""The screen kernel against its plain-Python reference, on the tiny grid."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from optimise import kernels as K
from optimise.model import BIN, NetworkModel
from optimise.screen import demand_draws, run_screen, time_loss
from optimise.space import timing_arrays


def _reference(model: NetworkModel, plans: list, demand: np.ndarray) -> list[float]:
    """The model's arrays turned into the reference's dicts and lists, then simulated."""
    cycle, offset, starts, greens, n_st = timing_arrays(plans)
    signals = [{"cycle": cycle[s], "offset": offset[s], "starts": list(starts[s, : n_st[s]]),
                "greens": list(greens[s, : n_st[s]])} for s in range(len(plans))]
    edge = model.edge_ids
    movements = [{"signal": int(model.mv_sig[m]), "gf": list(model.mv_gf[m]), "cap": model.mv_cap[m],
                  "from": edge[model.mv_from[m]],
                  "down": edge[model.mv_down[m]] if model.mv_down[m] >= 0 else None}
                 for m in range(len(model.mv_sig))]
    routes = []
    for r in range(model.n_routes):
        hops, p = [], int(model.route_first[r])
        while p >= 0:
            hops.append({"mv": int(model.pos_mv[p]), "tt": int(model.pos_tt[p]),
                         "adjacent": bool(model.pos_adjacent[p])})
            p = int(model.pos_next[p])
        routes.append({"demand": list(demand[:, r]), "tt0": int(model.route_tt0[r]), "hops": hops,
                       "entry": edge[model.route_entry[r]] if model.route_entry[r] >= 0 else None})
    storage = dict(zip(edge, model.edge_storage, strict=True))
    return K.screen_reference(model.begin, model.measure_from, model.end, 1.0, BIN, signals, movements,
                              routes, storage)


def _random_plans(problem, seed: int) -> list:
    b = problem.space.bounds()
    return problem.assemble(np.random.default_rng(seed).uniform(b[:, 0], b[:, 1]))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kernel_matches_reference(tiny_problem, seed: int) -> None:
    model = tiny_problem.objective.model
    plans = _random_plans(tiny_problem, seed)
    demand = demand_draws(model, [1.5], [seed])[0]
    got = run_screen(model, plans, demand)
    want = _reference(model, plans, demand)
    assert got[K.DUE] > 100  # the tiny grid carries real demand
    assert got[K.DELAY] > 0 and got[K.STOPS] > 0
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-6)


def test_kernel_matches_reference_when_queues_spill_back(tiny_problem) -> None:
    """Tiny storage makes queues block upstream discharge and entries: the blocked branch runs."""
    model = tiny_problem.objective.model
    small = replace(model, edge_storage=np.full_like(model.edge_storage, 3.0))
    plans = _random_plans(tiny_problem, 4)
    demand = demand_draws(small, [2.0], [0])[0]
    got = run_screen(small, plans, demand)
    want = _reference(small, plans, demand)
    assert got[K.BLOCKED] > 0
    assert time_loss(small, got) > time_loss(model, run_screen(model, plans, demand))
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-6)


def test_batch_equals_single_runs(tiny_problem) -> None:
    obj = tiny_problem.objective
    cands = [_random_plans(tiny_problem, s) for s in (5, 6)]
    raw = obj.raw(cands)
    for c, plans in enumerate(cands):
        for d, demand in enumerate(obj.draws):
            np.testing.assert_allclose(raw[c, d], run_screen(obj.model, plans, demand), rtol=1e-12)

