"""Fixtures for experiment tests: declarations over the tiny generated 2x2 grid."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.scenario import Scenario


def spec_text(scenario: Scenario, body: str = "", *, controllers: str = '["field", "max-pressure"]',
              seeds: str = "[1, 2]", name: str = "tiny") -> str:
    """An experiment declaration on ``scenario`` with extra TOML ``body`` (variations...)."""
    return (
        f'name = "{name}"\n'
        f'scenarios = ["{scenario.source}"]\n'
        f"controllers = {controllers}\n"
        f"seeds = {seeds}\n"
        f"{body}"
    )


def write_spec(folder: Path, text: str, name: str = "exp.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


# a five-minute window of the tiny scenario keeps each run well under a second
SHORT = """
[[variations]]
name = "base"
window = [0, 300]
warmup = 60

[[variations]]
name = "closed"
window = [0, 300]
warmup = 60
[[variations.closures]]
lanes = ["A0B0_0"]
at = 100
duration = 120
"""


@pytest.fixture(scope="session")
def tiny_results(tmp_path_factory: pytest.TempPathFactory, tiny_scenario: Scenario) -> Path:
    """A finished experiment folder: 2 variations x 2 controllers x 2 seeds on the tiny grid."""
    from experiments.runner import run_experiment
    from experiments.spec import load_spec

    folder = tmp_path_factory.mktemp("tiny-exp")
    spec = load_spec(write_spec(folder, spec_text(tiny_scenario, SHORT)))
    return run_experiment(spec, folder / "out", workers=1, progress=False)


@pytest.fixture(scope="session")
def long_scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    """The tiny grid over an hour: a run lasts a few seconds, long enough to be killed midway."""
    from tests.conftest import make_grid_network, write_scenario

    folder = tmp_path_factory.mktemp("tiny-long")
    flows = [("left0A0", "B0right0", 300), ("right1B1", "A1left1", 300), ("bottom0A0", "A1top0", 250),
             ("top1B1", "B0bottom1", 250), ("left1A1", "B1right1", 200), ("bottom1B0", "B1top1", 200)]
    return write_scenario(folder, make_grid_network(folder), flows, sid="tiny-long-v1", end=3600)
