"""The emulators' running plans drive the matching signals of a SUMO simulation.

This is the one ``deploy`` module that imports the simulator (it is exempt from the layering
rule, and nothing else in ``deploy`` imports it).  What a controller runs is read from the
controller's own objects (:meth:`ControllerEmulator.active_plan`), turned into a SUMO program
with :meth:`TimingPlan.sumo_phases` and loaded into the running simulation, so the simulation
shows what was deployed, not what was meant to be.  A loaded program starts where its offset
puts it at that time of day (an instant jump; a field controller transitions over a cycle or
two), so SUMO shows the signal as it would run had the plan been its tlLogic from the start.

Usage::

    with Simulation(load_scenario("grid-am-v1"), seed=1) as sim:
        bridge = SumoBridge(sim, emulators)       # loads every emulator's running plan
        while not sim.finished:
            sim.step_until(sim.time + 5)
            bridge.sync()                          # picks up pattern changes since the last call
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from controllers.plan import TimingPlan
from deploy.emulator import ControllerEmulator
from sim.simulation import Simulation

PROGRAM_ID = "ntcip"


class SumoBridge:
    """Keeps each signal's SUMO program equal to its emulated controller's running plan.

    Args:
        sim: A started simulation.
        emulators: Controllers whose ``profile.signal_id`` names a signal of the network.
    """

    def __init__(self, sim: Simulation, emulators: Iterable[ControllerEmulator]) -> None:
        self.sim = sim
        self.emulators = {e.profile.signal_id: e for e in emulators}
        self.loaded: dict[str, str] = {}  # signal -> plan hash loaded into SUMO
        self._pending: dict[str, TimingPlan] = {}
        self._lock = threading.Lock()
        for sid, emu in self.emulators.items():
            emu.on_pattern_change = self._changed(sid)
            plan = emu.active_plan()
            if plan is not None:
                self._pending[sid] = plan
        self.sync()

    def _changed(self, sid: str):  # type: ignore[no-untyped-def]
        def note(_pattern: int, plan: TimingPlan | None) -> None:
            if plan is not None:
                with self._lock:
                    self._pending[sid] = plan
        return note

    def sync(self) -> list[str]:
        """Load the plans that changed since the last call; returns the signals updated."""
        with self._lock:
            pending, self._pending = self._pending, {}
        for sid, plan in pending.items():
            self._load(sid, plan)
        return sorted(pending)

    def _load(self, sid: str, plan: TimingPlan) -> None:
        tl = self.sim.conn.trafficlight
        logic_cls = getattr(tl, "Logic", None)
        phase_cls = getattr(tl, "Phase", None)
        if logic_cls is None or phase_cls is None:  # traci exposes them on its module
            import traci

            logic_cls, phase_cls = traci.trafficlight.Logic, traci.trafficlight.Phase
        spec = plan.sumo_phases()
        phases = [phase_cls(dur, state, dur, dur, (), name) for dur, state, name in spec]
        program = f"{PROGRAM_ID}-{plan.short_hash}"
        self.sim._call(lambda: tl.setProgramLogic(sid, logic_cls(program, 0, 0, phases)))
        self.sim._call(lambda: tl.setProgram(sid, program))
        # run it where its offset puts it now: stage 0's green starts at time-of-day offset
        # (mod the cycle), as when SUMO runs the plan's tlLogic from the start.  Between steps
        # SUMO shows the phase of the step just done (switches happen as a step begins), so
        # the phase set is the one of ``time - step`` and it ends one step early
        dt = self.sim.scenario.step_length
        k, left = phase_at(spec, self.sim.time - dt - plan.offset)
        self.sim._call(lambda: tl.setPhase(sid, k))
        self.sim._call(lambda: tl.setPhaseDuration(sid, left - dt))
        self.loaded[sid] = plan.plan_hash()


def phase_at(phases: list[tuple[float, str, str]], t: float) -> tuple[int, float]:
    """``(index, seconds left)`` of the phase running ``t`` seconds into the cycle (mod it)."""
    cycle = sum(d for d, _, _ in phases)
    pos = t % cycle if cycle > 0 else 0.0
    for k, (d, _, _) in enumerate(phases):
        if pos < d:
            return k, d - pos
        pos -= d
    return 0, phases[0][0]  # (float rounding at the cycle's end)
