"""What is deployed to the emulator is what SUMO runs."""

from __future__ import annotations

import time

import pytest

from controllers.plan import TimingPlan
from deploy.emulator import ControllerEmulator
from deploy.ntcip import NtcipAdapter
from deploy.profile import single_ring_profile

from .conftest import CAPS, make_plan

GRID_NET = "networks/grid/grid.net.xml"


def test_deployed_plan_drives_the_sumo_signal() -> None:
    libsumo = pytest.importorskip("libsumo")
    from deploy.sumo_bridge import SumoBridge
    from sim.scenario import load_scenario
    from sim.simulation import Simulation
    from sim.topology import load_signal_specs

    spec = load_signal_specs(GRID_NET)["B1"]
    base = TimingPlan.from_sumo_phases("B1", [(p.duration, p.state) for p in spec.phases], spec.offset)
    emu = ControllerEmulator(single_ring_profile("B1", 2), base, CAPS, time_scale=300, verify_s=3).start()
    try:
        with Simulation(load_scenario("grid-am-v1"), seed=1) as sim:
            bridge = SumoBridge(sim, [emu])
            assert bridge.loaded["B1"] == emu.active_plan().plan_hash()  # type: ignore[union-attr]
            new = make_plan(greens=(50, 30), offset=7)
            rep = NtcipAdapter(emu.host, emu.port, emu.profile, emu.credentials, timeout=0.3, activation_timeout_s=5).deploy(new)
            assert rep.ok, rep.message
            deadline = time.monotonic() + 2
            while not bridge._pending and time.monotonic() < deadline:
                time.sleep(0.01)
            assert bridge.sync() == ["B1"]
            running = emu.active_plan()
            assert running is not None and running.splits == new.splits
            program = libsumo.trafficlight.getProgram("B1")
            assert program == f"ntcip-{running.short_hash}"
            logic = next(lg for lg in libsumo.trafficlight.getAllProgramLogics("B1") if lg.programID == program)
            assert [(p.duration, p.state) for p in logic.phases] == [(d, s) for d, s, _ in new.sumo_phases()]
            # SUMO serves the deployed greens: time the first stage over one cycle.
            sim.step_until(sim.time + 1)
            greens, t0 = [], sim.time
            while sim.time < t0 + 2 * new.cycle:
                greens.append(libsumo.trafficlight.getRedYellowGreenState("B1") == new.stages[0].state)
                sim.step()
            assert abs(sum(greens) - 2 * new.stages[0].green) <= 2
    finally:
        emu.stop()


@pytest.mark.parametrize("offset", [0.0, 7.0, 61.0])
def test_loaded_plan_keeps_its_offset(tmp_path, offset) -> None:
    """A plan loaded mid-run shows, step by step, what SUMO shows when the same plan is its
    tlLogic from the start (SUMO applying the offset itself)."""
    pytest.importorskip("libsumo")
    from types import SimpleNamespace

    from deploy.sumo_bridge import SumoBridge
    from sim.scenario import load_scenario
    from sim.simulation import Simulation

    plan = make_plan(greens=(45, 28), offset=offset)
    add = tmp_path / "plan.add.xml"
    add.write_text("<additional>\n" + plan.to_tllogic("ref") + "\n</additional>\n")
    sc = load_scenario("grid-am-v1")
    t_load = sc.begin + 113.0  # mid-cycle, not a multiple of anything in the plan

    def states(sim, bridge_at=None):  # noqa: ANN001, ANN202
        out = []
        while sim.time < t_load + 2 * plan.cycle:
            if bridge_at is not None and sim.time >= bridge_at:
                stub = SimpleNamespace(profile=SimpleNamespace(signal_id="B1"),
                                       active_plan=lambda: plan, on_pattern_change=None)
                SumoBridge(sim, [stub])  # type: ignore[list-item]
                bridge_at = None
            if sim.time >= t_load:
                out.append(sim.conn.trafficlight.getRedYellowGreenState("B1"))
            sim.step()
        return out

    with Simulation(sc, seed=1, additional_files=[add]) as sim:
        want = states(sim)
    with Simulation(sc, seed=1) as sim:
        sim.step_until(t_load)
        got = states(sim, bridge_at=t_load)
    assert got == want
