"""Batched kernels equal the plain-Python references on random inputs (also with NUMBA_DISABLE_JIT=1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controllers import kernels
from controllers.base import random_states
from sim.state import DistrictLayout
from sim.topology import load_signal_specs
from tests.conftest import REPO


@pytest.fixture(scope="module")
def layout() -> DistrictLayout:
    return DistrictLayout.from_specs(load_signal_specs(REPO / "networks" / "grid" / "grid.net.xml"))


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), max_red=st.sampled_from([float("inf"), 10.0, 30.0]))
def test_max_pressure_kernel_equals_reference(layout, seed, max_red) -> None:
    w_in, w_out = kernels.movement_weights(layout)
    out = np.empty(layout.n_signals, np.int32)
    k_waited = np.zeros(layout.stage_green.shape[:2])
    r_waited = k_waited.copy()
    for st_ in random_states(layout, 8, seed=seed):  # waited builds up over the calls
        kernels.jitted("max_pressure")(
            st_.count, st_.out_count, layout.mov_ptr, layout.mov_in, layout.mov_out,
            layout.mov_link, w_in, w_out, layout.stage_green, layout.n_stages, st_.stage,
            st_.in_transition, k_waited, 5.0, max_red, out)
        ref = kernels.max_pressure_reference(layout, st_, r_waited, 5.0, max_red)
        assert out.tolist() == ref.tolist()
        assert k_waited.tolist() == r_waited.tolist()
    if max_red == float("inf"):  # no guard: the stateless reference says the same
        assert out.tolist() == kernels.max_pressure_reference(layout, st_).tolist()


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), theta=st.floats(0, 200), phi_min=st.floats(0, 30),
       mu=st.floats(0, 6))
def test_sotl_kernel_equals_reference(layout, seed, theta, phi_min, mu) -> None:
    states = random_states(layout, 8, seed=seed)
    lane_stage = kernels.lane_stage_matrix(layout)
    k_kappa, r_kappa = np.zeros(layout.n_signals), np.zeros(layout.n_signals)
    k_last = np.zeros(layout.n_signals, np.int32)
    r_last = k_last.copy()
    out = np.empty(layout.n_signals, np.int32)
    fn = kernels.jitted("sotl")
    for st_ in states:
        fn(st_.count, layout.in_ptr, lane_stage, layout.n_stages, st_.stage, st_.stage_time,
           st_.in_transition, k_kappa, k_last, 5.0, theta, phi_min, mu, out)
        ref = kernels.sotl_reference(layout, st_, r_kappa, r_last, 5.0, theta, phi_min, mu)
        assert out.tolist() == ref.tolist()
        np.testing.assert_allclose(k_kappa, r_kappa, rtol=1e-9)


def test_max_pressure_picks_the_loaded_stage(layout) -> None:
    """Hand-made case: vehicles only on stage 1's lanes -> every signal asks for stage 1."""
    st_ = random_states(layout, 1)[0]
    st_.count[:] = 0
    st_.out_count[:] = 0
    st_.stage[:] = 0
    st_.in_transition[:] = False
    lane_stage = kernels.lane_stage_matrix(layout)
    st_.count[lane_stage[:, 1] & ~lane_stage[:, 0]] = 5
    assert kernels.max_pressure_reference(layout, st_).tolist() == [1] * layout.n_signals
    st_.stage[:] = 1  # already serving it: keep
    assert kernels.max_pressure_reference(layout, st_).tolist() == [-1] * layout.n_signals
    # stage 0 (vehicles on it too) has been red for 120 s: with max_red 90 it goes first
    st_.count[lane_stage[:, 0] & ~lane_stage[:, 1]] = 1
    waited = np.zeros(layout.stage_green.shape[:2])
    waited[:, 0] = 120.0
    got = kernels.max_pressure_reference(layout, st_, waited.copy(), 5.0, 90.0)
    assert got.tolist() == [0] * layout.n_signals
    assert kernels.max_pressure_reference(layout, st_, waited, 5.0, 200.0).tolist() == \
        [-1] * layout.n_signals


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="already without JIT")
def test_kernel_tests_pass_without_jit() -> None:
    """The kernel tests again with ``NUMBA_DISABLE_JIT=1``: the same loops run as Python."""
    here = Path(__file__)
    tests = [str(here), f"{here.with_name('test_webster.py')}::test_online_kernel_equals_webster_timing",
             f"{here.with_name('test_webster.py')}::test_online_controller_recomputes_from_counted_flows"]
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
                         env={**os.environ, "NUMBA_DISABLE_JIT": "1"}, cwd=REPO,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "5 passed" in run.stdout, run.stdout[-500:]  # (this test skips itself there)
