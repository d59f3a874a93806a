"""Registry, make_controller errors and the check_controller conformance helper."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from controllers.base import (
    Capabilities,
    ControllerBase,
    KernelController,
    available_controllers,
    check_controller,
    make_controller,
    random_states,
    register,
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


class _ClaimsCycles(ControllerBase):
    """Declares whole cycles without the CyclePlanner members."""

    name = "claims-cycles"
    capabilities = Capabilities(whole_cycles=True)

    def act(self, state):  # type: ignore[no-untyped-def]
        return self.keep()


class _ClaimsLaneBlind(ControllerBase):
    """Declares needs_state=False but decides from the lane counts."""

    name = "claims-lane-blind"
    capabilities = Capabilities(needs_state=False)

    def act(self, state):  # type: ignore[no-untyped-def]
        return np.where(state.count[: self.layout.n_signals] > 100, 0, -1).astype(np.int32)


def test_check_controller_checks_declared_capabilities(layout) -> None:
    with pytest.raises(WulinError, match="declares whole_cycles but does not implement"):
        check_controller(_ClaimsCycles(), layout, steps=5)
    with pytest.raises(WulinError, match="needs_state=False but its decisions change"):
        check_controller(_ClaimsLaneBlind(), layout, steps=5)


def test_check_controller_rejects_undeclared_capabilities(layout) -> None:
    bad = _Bad("dtype")
    bad.capabilities = {"native": False}  # type: ignore[assignment]
    with pytest.raises(WulinError, match="capabilities must be a controllers.base.Capabilities"):
        check_controller(bad, layout, steps=5)


class _Mine(KernelController):
    """The README's worked example: a kernel controller is one class over a kernel name."""

    name = "mine"
    kernel = "sotl"
    state_fields = ("count", "stage", "stage_time", "in_transition")

    def reset(self, layout, seed):  # type: ignore[no-untyped-def]
        super().reset(layout, seed)
        from controllers.kernels import lane_stage_matrix

        self.lane_stage = lane_stage_matrix(layout)
        self.kappa = np.zeros(layout.n_signals)
        self.last = np.zeros(layout.n_signals, dtype=np.int32)

    def kernel_args(self, state):  # type: ignore[no-untyped-def]
        lay = self.layout
        return (state.count, lay.in_ptr, self.lane_stage, lay.n_stages, state.stage,
                state.stage_time, state.in_transition, self.kappa, self.last,
                self.decision_interval, 60.0, 10.0, 3.0, self.out)


def test_kernel_controller_base_binds_and_rebinds(layout, monkeypatch) -> None:
    from controllers import base

    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))  # the test's own entry
    register("mine-test", description="test only")(_Mine)
    ctl = make_controller("mine-test")
    check_controller(ctl, layout, steps=10)
    states = random_states(layout, 2, seed=3)
    ctl.reset(layout, 0)
    ctl.act(states[0])
    first = ctl._args
    ctl.act(states[0])
    assert ctl._args is first  # same arrays: bound once
    ctl.act(states[1])
    assert ctl._args is not first and ctl._args[0] is states[1].count  # new arrays: rebound


def test_warm_up_is_driven_by_the_registry(layout) -> None:
    from controllers import base, kernels

    warmed = [n for n in available_controllers() if base._REGISTRY[n].kernels]
    assert set(warmed) == {"max-pressure", "sotl", "webster-online", "schedule-driven"}
    base.warm_up_kernels(layout)
    assert {"max_pressure", "sotl", "webster_online"} <= set(kernels._JITTED)


def test_kernels_module_imports_no_controller() -> None:
    import ast

    tree = ast.parse((REPO / "controllers" / "kernels.py").read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any(m.startswith("controllers") for m in imported), imported


class LongestQueueController(ControllerBase):
    """The README's worked example, verbatim: serve the stage whose lanes queue the most."""

    name = "longest-queue"
    decision_interval = 5.0
    actuator_params = {"min_green": 10.0, "max_green": 60.0, "yellow": 3.0, "all_red": 2.0}

    def reset(self, layout, seed):  # type: ignore[no-untyped-def]
        from controllers.kernels import lane_stage_matrix

        super().reset(layout, seed)
        self.lane_stage = lane_stage_matrix(layout)  # [in-lane, stage]: a green link there

    def act(self, state):  # type: ignore[no-untyped-def]
        out = self.keep()
        for s in range(self.layout.n_signals):
            if state.in_transition[s]:
                continue
            lanes = self.layout.signal_slice(s)
            queued = state.queue[lanes] @ self.lane_stage[lanes, : self.layout.n_stages[s]]
            best = int(np.argmax(queued))
            if queued[best] > 0 and best != state.stage[s]:
                out[s] = best
        return out


def test_readme_example_is_one_class_and_one_registration(tiny_scenario, monkeypatch) -> None:
    from controllers import base
    from controllers.base import Registration
    from experiments.episode import run_episode

    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))
    base._REGISTRY["longest-queue"] = Registration(LongestQueueController,
                                                   "serve the stage with the longest queue")
    check_controller(make_controller("longest-queue"), tiny_scenario)
    res = run_episode(tiny_scenario, "longest-queue", seed=1)
    assert res.controller == "longest-queue" and res.decisions > 50
    assert len(res.trips) > 50
