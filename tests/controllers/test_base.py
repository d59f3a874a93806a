"""Registry, make_controller errors and the check_controller conformance helper."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from controllers.base import (
    ControllerBase,
    available_controllers,
    check_controller,
    make_controller,
)
from sim.errors import WulinError
from sim.state import DistrictLayout
from sim.topology import load_signal_specs
from tests.conftest import REPO

REQUIRED = {"field", "fixed-time", "webster", "webster-online", "max-pressure", "sotl",
            "actuated", "delay-based"}


@pytest.fixture(scope="module")
def layout() -> DistrictLayout:
    return DistrictLayout.from_specs(load_signal_specs(REPO / "networks" / "grid" / "grid.net.xml"))


def test_registry_names() -> None:
    assert REQUIRED <= set(available_controllers())


def test_importing_base_does_not_import_numba() -> None:
    code = "import sys, controllers.base; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_unknown_controller_lists_known_names() -> None:
    with pytest.raises(WulinError, match="known controllers: .*max-pressure"):
        make_controller("max-presure")
    with pytest.raises(WulinError, match="bad parameters"):
        make_controller("max-pressure", no_such_param=1)


@pytest.mark.parametrize("name", ["max-pressure", "sotl", "webster-online"])
def test_check_controller_passes(name, layout) -> None:
    check_controller(make_controller(name), layout, seed=1, steps=30)


@pytest.mark.parametrize("name", ["field", "actuated", "delay-based", "fixed-time", "webster"])
def test_check_native_controllers(name, grid_scenario) -> None:
    check_controller(make_controller(name), grid_scenario)


class _Bad(ControllerBase):
    name = "bad"

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def reset(self, layout, seed):  # type: ignore[no-untyped-def]
        super().reset(layout, seed)
        self.rng = np.random.default_rng()  # not seeded: nondeterministic

    def act(self, state):  # type: ignore[no-untyped-def]
        n = self.layout.n_signals
        if self.kind == "dtype":
            return np.zeros(n, dtype=np.int64)
        if self.kind == "range":
            return np.full(n, 7, dtype=np.int32)
        if self.kind == "mutate":
            state.queue[:] = 0
            return self.keep()
        return self.rng.integers(0, 2, n).astype(np.int32)


@pytest.mark.parametrize(("kind", "message"), [
    ("dtype", "expected int32"), ("range", "valid: -1..1"), ("mutate", "changed state.queue"),
    ("random", "not deterministic"),
])
def test_check_controller_catches(kind, message, layout) -> None:
    with pytest.raises(WulinError, match=message):
        check_controller(_Bad(kind), layout, steps=20)
