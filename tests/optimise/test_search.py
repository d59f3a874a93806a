"""Decision space, CMA-ES search, checkpoints and resume, on the tiny grid's screen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from controllers.plan import DEFAULT_LIMITS, PlanLimits, validate_plan
from optimise.search import SearchConfig, run_search
from optimise.space import PlanSpace
from sim.errors import WulinError


def test_decoded_plans_pass_the_plan_checks(tiny_problem) -> None:
    space = tiny_problem.space
    rng = np.random.default_rng(0)
    b = space.bounds()
    for _ in range(20):
        for plan, spec in zip(space.decode(rng.uniform(b[:, 0], b[:, 1])), tiny_problem.specs, strict=True):
            limits = PlanLimits(min_cycle=30, max_cycle=120, min_all_red=plan.all_red, min_yellow=plan.yellow)
            assert validate_plan(plan, spec.conflicts, limits, spec.unused_links) == []
            assert 30 <= plan.cycle <= 120 + 1
            assert all(st.green >= m for st, m in zip(plan.stages, space.min_greens[0], strict=True))


def test_encode_then_decode_keeps_webster(tiny_problem) -> None:
    web = tiny_problem.webster
    again = tiny_problem.space.decode(tiny_problem.space.encode(web))
    for a, b in zip(web, again, strict=True):
        assert a.cycle == b.cycle
        assert [s.green for s in a.stages] == [s.green for s in b.stages]


def test_common_cycle_gives_every_signal_one_cycle(tiny_problem) -> None:
    space = PlanSpace.build(list(tiny_problem.webster), PlanLimits(min_cycle=30, max_cycle=120),
                            common_cycle=True)
    plans = space.decode(np.full(space.dim, 0.5))
    assert len({p.cycle for p in plans}) == 1


def test_infeasible_minimum_greens_are_one_error(tiny_problem) -> None:
    with pytest.raises(WulinError, match="above the maximum cycle 60 s"):
        PlanSpace.build(list(tiny_problem.webster), PlanLimits(min_cycle=30, max_cycle=60), min_green=40)


def _evaluate(problem):
    return lambda xs: problem.objective.batch([problem.assemble(x) for x in xs])


def test_search_improves_on_a_bad_start(tiny_problem, tmp_path: Path) -> None:
    space = tiny_problem.space
    bad = np.full(space.dim, 0.02)  # shortest cycles, equal tiny shares: far from good
    for s in range(space.n_signals):  # starve the first stage of every signal
        bad[space._shares(s).start] = 0.01
        bad[space._shares(s).start + 1] = 1.0
    cfg = SearchConfig(generations=8, popsize=8, sigma=0.3)
    state = run_search(_evaluate(tiny_problem), space.bounds(), {"bad": bad}, cfg, tmp_path / "c.ckpt", "k",
                       resume=False)
    assert state.generation == 8
    assert state.best_f < 0.9 * state.warm["bad"]
    assert [h["generation"] for h in state.history] == list(range(9))
    assert all(a["best"] >= b["best"] for a, b in zip(state.history, state.history[1:], strict=False))


class _Killed(Exception):
    pass


def test_a_killed_search_resumes_to_the_same_result(tiny_problem, tmp_path: Path) -> None:
    """Stopped after generation 3 and resumed, the search ends exactly where an unbroken one does."""
    space = tiny_problem.space
    warm = {"webster": space.encode(list(tiny_problem.webster))}
    cfg = SearchConfig(generations=6, popsize=6)
    whole = run_search(_evaluate(tiny_problem), space.bounds(), warm, cfg, tmp_path / "a.ckpt", "k",
                       resume=False)

    def kill(state) -> None:
        if state.generation == 3:
            raise _Killed

    ckpt = tmp_path / "b.ckpt"
    with pytest.raises(_Killed):
        run_search(_evaluate(tiny_problem), space.bounds(), warm, cfg, ckpt, "k", resume=False,
                   on_generation=kill)
    with pytest.raises(WulinError, match="--resume"):  # never overwritten silently
        run_search(_evaluate(tiny_problem), space.bounds(), warm, cfg, ckpt, "k", resume=False)
    with pytest.raises(WulinError, match="another problem"):
        run_search(_evaluate(tiny_problem), space.bounds(), warm, cfg, ckpt, "other", resume=True)
    resumed = run_search(_evaluate(tiny_problem), space.bounds(), warm, cfg, ckpt, "k", resume=True)
    assert resumed.generation == 6
    assert resumed.history == whole.history
    np.testing.assert_array_equal(resumed.best_x, whole.best_x)


def test_a_damaged_checkpoint_is_one_error(tiny_problem, tmp_path: Path) -> None:
    ckpt = tmp_path / "c.ckpt"
    ckpt.write_bytes(b"not a pickle")
    space = tiny_problem.space
    with pytest.raises(WulinError, match="cannot read the checkpoint"):
        run_search(_evaluate(tiny_problem), space.bounds(), {"w": space.encode(list(tiny_problem.webster))},
                   SearchConfig(generations=1), ckpt, "k", resume=True)


def test_default_limits_are_the_plan_modules() -> None:
    assert DEFAULT_LIMITS.max_cycle == 180.0  # the CLI narrows it to 150 s, like Webster's plans
