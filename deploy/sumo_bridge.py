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

:func:`live_worker` is the console's live mode: in a process of its own it runs a scenario at a
chosen speed with the plans the store says are deployed (loaded as the bridge loads an
emulator's plan) and sends a :func:`frame` (queues and signal states) a few times a second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any, Protocol

from controllers.plan import TimingPlan
from deploy.emulator import ControllerEmulator
from sim.errors import WulinError
from sim.scenario import load_scenario
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

    def load(self, sid: str, plan: TimingPlan) -> None:
        """Run ``plan`` at signal ``sid`` from now on (a plan from the store, no emulator)."""
        self._load(sid, plan)

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


LIVE_FRAME_S = 0.5  # wall seconds between frames


class Outbox(Protocol):
    """Where a live run sends its frames (a multiprocessing queue)."""

    def put(self, item: Any, block: bool = ..., timeout: float | None = ...) -> None: ...


class StopFlag(Protocol):
    def is_set(self) -> bool: ...


def frame(sim: Simulation, lanes: dict[str, list[str]], end: float) -> dict[str, Any]:
    """What the cockpit shows of the running simulation: per signal, the halting vehicles on its
    incoming lanes and its signal state (SUMO's ``rRgGyY`` string, one letter per link)."""
    conn = sim.conn
    halting = sim._call(lambda: {ln: conn.lane.getLastStepHaltingNumber(ln) for ls in lanes.values() for ln in ls})
    signals = {sid: {"queue": int(sum(halting[ln] for ln in ls)),
                     "state": str(sim._call(lambda s=sid: conn.trafficlight.getRedYellowGreenState(s)))}
               for sid, ls in lanes.items()}
    return {"time": sim.time, "end": end, "signals": signals}


def live_worker(scenario_id: str, plans: dict[str, dict[str, Any]], speed: float, out: Outbox,
                stop: StopFlag, seed: int = 1) -> None:
    """Run ``scenario_id`` with ``plans`` (signal -> plan JSON) at ``speed`` x real time, sending a
    frame every :data:`LIVE_FRAME_S` until the scenario ends or ``stop`` is set; then ``{"done":
    reason}``.  An error is sent as ``{"error": message}``.  Runs in a process of its own."""
    try:
        scenario = load_scenario(scenario_id)
        with Simulation(scenario, seed=seed) as sim:
            ids = set(sim._call(sim.conn.trafficlight.getIDList))
            bridge = SumoBridge(sim, [])
            loaded = sorted(sid for sid in plans if sid in ids)
            for sid in loaded:
                bridge.load(sid, TimingPlan.from_dict(plans[sid], f"deployed plan of {sid}"))
            lanes = {sid: sorted(set(sim._call(lambda s=sid: sim.conn.trafficlight.getControlledLanes(s))))
                     for sid in sorted(ids)}
            out.put({"started": scenario.id, "speed": speed, "plans": loaded})
            wall = time.monotonic()
            while not stop.is_set() and not sim.finished:
                sim.step_until(min(sim.time + speed * LIVE_FRAME_S, scenario.end))
                out.put(frame(sim, lanes, scenario.end))
                wall += LIVE_FRAME_S
                time.sleep(max(0.0, wall - time.monotonic()))
            out.put({"done": "stopped" if stop.is_set() else "the scenario ended"})
    except WulinError as exc:
        out.put({"error": str(exc)})
