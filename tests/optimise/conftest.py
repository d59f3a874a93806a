"""Fixtures of the optimiser's tests: the tiny generated grid as a screen problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from optimise.periods import Period
from optimise.run import OptimiseOptions, Problem, build_problem
from sim.scenario import Scenario


@pytest.fixture(scope="session")
def tiny_period() -> Period:
    return Period("P", 60.0, 600.0, 0.0)


@pytest.fixture(scope="session")
def tiny_problem(tiny_scenario: Scenario, tiny_period: Period) -> Problem:
    opts = OptimiseOptions(periods="P=00:01-00:10", out=Path("/nonexistent"), seeds=1,
                           demand_factors=(1.0,), min_cycle=30.0, max_cycle=120.0)
    return build_problem(tiny_scenario, tiny_period, opts)
