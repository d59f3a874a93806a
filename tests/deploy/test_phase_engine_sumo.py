"""The emulator's phase engine running a plan shows, step for step, what SUMO shows running the
same plan as a static tlLogic (as ``test_sumo_bridge`` checks for plans loaded into SUMO)."""

from __future__ import annotations

import pytest

from deploy.device_model import DeviceModel

from .conftest import CAPS, conflicts_for, make_plan, make_profile


@pytest.mark.parametrize("offset", [0.0, 7.0, 61.0])
def test_phase_engine_reproduces_the_tllogic_step_for_step(tmp_path, offset) -> None:
    pytest.importorskip("libsumo")
    from sim.scenario import load_scenario
    from sim.simulation import Simulation

    plan = make_plan(greens=(45, 28), offset=offset)
    add = tmp_path / "plan.add.xml"
    add.write_text("<additional>\n" + plan.to_tllogic("ref") + "\n</additional>\n")
    with Simulation(load_scenario("grid-am-v1"), seed=1, additional_files=[add]) as sim:
        now = [sim.time]
        dev = DeviceModel(make_profile(), plan, CAPS, clock=lambda: now[0], tod_start=sim.time,
                          conflicts=conflicts_for("B1"))
        shown, sumo = [], []
        for _ in range(int(3 * plan.cycle) + 17):
            now[0] = sim.time
            dev.advance()  # the device at t: what its heads show over the step t -> t + 1
            shown.append(dev.unit.heads())
            sim.step()
            sumo.append(sim.conn.trafficlight.getRedYellowGreenState("B1"))
    assert shown == sumo
    assert {s for s in shown} == {d[1] for d in plan.sumo_phases()}  # every phase was seen
    assert dev.unit.monitor.checks >= len(shown) - 1 and not dev.unit.monitor.tripped
