"""The emulated controllers and a SUMO simulation, in two ways: loaded plans, and the closed loop.

This is the one ``deploy`` module that imports the simulator (it is exempt from the layering
rule, and nothing else in ``deploy`` imports it).

**Closed loop** (``wulin cosim``, :func:`run_cosim`): the devices' phase engines run SUMO's
signals second by second (:class:`SignalBridge` gives SUMO each device's heads, checked for
safety first, and feeds SUMO's stop-line loops to the devices' detectors), while a controller
runs centrally over SNMP through :class:`deploy.central.NtcipActuator`.  The controller is
passed in (``deploy`` does not import ``controllers``); it is used as the episode loop uses it
(``reset``, ``act``, ``actuator_params``, ``decision_interval``).

**Loaded plans** (:class:`SumoBridge`): what a controller runs is read from the
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

import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from controllers.plan import TimingPlan
from deploy.central import CentralStats, DeviceLink, NtcipActuator, check_stage_chooser
from deploy.central import central_round as _central_round  # (a name tests patch)
from deploy.detector_state import DetectorStateReader, check_fields
from deploy.detectors import DetectorReading, detector_calls
from deploy.device_model import DeviceModel
from deploy.emulator import ControllerEmulator
from deploy.ntcip import snmp_session
from deploy.preempt_cosim import EmergencyOptions, EmergencyPreemptor, PreemptStats
from deploy.priority_cosim import BusOptions, BusRequester, BusStats, NextSignal
from deploy.profile import single_ring_profile
from sim.errors import WulinError
from sim.scenario import load_scenario
from sim.simulation import Simulation

if TYPE_CHECKING:
    import pandas as pd

    from deploy.cosim_faults import FaultRun
    from sim.scenario import Scenario
    from sim.state import DistrictLayout, StateReader
    from sim.topology import SignalSpec

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


# ---------------------------------------------------------------------------------------------
# Closed loop: the devices run SUMO's signals second by second, SUMO's loops feed their detectors.


class SignalBridge:
    """Each step, every device's signal heads go to SUMO and SUMO's stop-line loops go to its
    detector inputs; every state SUMO is given is checked for safety first.

    Args:
        sim: A started simulation (its additional files include the stop-line loops).
        devices: Signal id -> the emulated controller running it.
        specs: Signal id -> its :class:`sim.topology.SignalSpec` (links and foes).
        loops: Signal id -> ``(detector number, loop id)`` of each of its detectors.
    """

    def __init__(self, sim: Simulation, devices: Mapping[str, DeviceModel], specs: Mapping[str, SignalSpec],
                 loops: Mapping[str, Sequence[tuple[int, str]]]) -> None:
        self.sim, self.devices, self.specs, self.loops = sim, dict(devices), dict(specs), dict(loops)
        self.shown: dict[str, str] = {}
        self.unsafe: list[str] = []  # every unsafe state given to SUMO (should stay empty)
        self.unsafe_count = 0
        self.flash_entries = 0  # greens ended by a device going to flash (its fail-safe), not by a yellow
        tl = sim.conn.trafficlight
        self._set_state = tl.setRedYellowGreenState
        self._occupancy = sim.conn.inductionloop.getLastStepOccupancy
        self._passed = sim.conn.inductionloop.getIntervalVehicleNumber  # cumulative: one interval per run
        self._passed_before: dict[str, int] = {}

    def show(self) -> None:
        """Give SUMO what each device's heads show now (only the signals that changed)."""
        for sid, dev in self.devices.items():
            state = dev.unit.heads()
            before = self.shown.get(sid)
            if state == before:
                continue
            self._check(sid, before, state, dev.unit.engine.flash)
            self._set_state(sid, state)
            self.shown[sid] = state

    def _check(self, sid: str, before: str | None, state: str, flash: bool = False) -> None:
        """Conflicting protected greens, or a link going from green to red with no yellow.

        A device that goes to flash (its monitor tripped, or it restarted) shows red on every
        link at once: that is the cabinet's fail-safe, the one way a green may end without
        yellow; it is counted in :attr:`flash_entries`, apart from the unsafe states."""
        bad = [f"links {i} and {j} green together" for i, j in self.specs[sid].conflicting_greens(state)]
        if flash and before is not None and "G" in before.upper() and set(state) <= {"r"}:
            self.flash_entries += 1
        elif before is not None:
            bad += [f"link {i} green to red without yellow" for i, (a, b) in enumerate(zip(before, state, strict=False))
                    if a in "Gg" and b == "r"]
        if bad:
            self.unsafe_count += 1
            if len(self.unsafe) < 100:
                self.unsafe.append(f"{self.sim.time:.0f} s {sid}: {'; '.join(bad)} ({before} -> {state})")

    def feed(self) -> None:
        """What each detector saw during the step just run: a vehicle on it, and the vehicles
        that passed it (the difference of its cumulative count; a car standing on a loop is on
        it at every step, but passes it once)."""
        occ, before = self._occupancy, self._passed_before
        for sid, dets in self.loops.items():
            readings = {}
            for d, lid in dets:
                n = int(self._passed(lid))
                readings[d] = DetectorReading(occ(lid) > 0, n - before.get(lid, 0))
                before[lid] = n
            self.devices[sid].unit.feed(readings)


@dataclass
class CosimResult:
    """What one closed-loop run produced (KPIs as ``wulin simulate`` has them, and the link's figures)."""

    scenario_id: str
    controller: str
    seed: int
    trips: pd.DataFrame
    network: dict[str, float]
    wall_time: float
    sim_time: float
    unsafe: list[str]
    unsafe_count: int
    alarms: int
    fallbacks: int
    central: CentralStats
    snmp: str
    preempt: PreemptStats | None = None  # with emergency vehicles (``emergency`` given)
    cpu_time: float = 0.0  # the process's CPU seconds over the run (SUMO, devices and central share it)
    flash_entries: int = 0  # greens ended by a device's fail-safe flash (a restart, a monitor trip)
    state: str = "sumo"  # where the controller's state came from: SUMO's lanes or the devices' detectors
    buses: BusStats | None = None  # with bus priority requests (``buses`` given)


EMERGENCY_TYPE = "wulin-emergency"


class SumoTraffic:
    """What :class:`deploy.preempt_cosim.EmergencyPreemptor` reads of the simulation, and the
    emergency vehicles it adds (class ``emergency``, no bluelight device: it obeys the signals)."""

    def __init__(self, sim: Simulation) -> None:
        self.sim, c = sim, sim.conn
        sim._call(lambda: c.vehicletype.copy("DEFAULT_VEHTYPE", EMERGENCY_TYPE))
        sim._call(lambda: c.vehicletype.setVehicleClass(EMERGENCY_TYPE, "emergency"))
        sim._call(lambda: c.vehicletype.setColor(EMERGENCY_TYPE, (255, 0, 0, 255)))

    def add_emergency(self, vid: str, origin: str, destination: str) -> None:
        c = self.sim.conn
        route = self.sim._call(lambda: c.simulation.findRoute(origin, destination, EMERGENCY_TYPE))
        if not route.edges:
            raise WulinError(f"emergency vehicle: no route from edge {origin!r} to edge {destination!r}")
        self.sim._call(lambda: c.route.add(f"{vid}.route", list(route.edges)))
        self.sim._call(lambda: c.vehicle.add(vid, f"{vid}.route", typeID=EMERGENCY_TYPE, depart="now"))

    def departed_emergency(self) -> list[str]:
        c = self.sim.conn
        ids = self.sim._call(c.simulation.getDepartedIDList)
        return [v for v in ids if self.sim._call(lambda v=v: c.vehicle.getVehicleClass(v)) == "emergency"]

    def arrived(self) -> list[str]:
        return list(self.sim._call(self.sim.conn.simulation.getArrivedIDList))

    def ahead(self, vid: str) -> list[tuple[str, int, float]]:
        got = self.sim._call(lambda: self.sim.conn.vehicle.getNextTLS(vid))
        return [(str(sid), int(link), float(dist)) for sid, link, dist, _state in got]

    def halted(self, vid: str) -> bool:
        return bool(self.sim._call(lambda: self.sim.conn.vehicle.getSpeed(vid)) < 0.1)


class SumoBuses:
    """What :class:`deploy.priority_cosim.BusRequester` reads of the simulation: the buses
    (vClass ``bus``), their next signal, and their lateness against their line's schedule as
    :mod:`sim.transit` computes it (``schedule_speed`` m/s plus the dwell times)."""

    def __init__(self, sim: Simulation, schedule_speed: float = 5.0) -> None:
        self.sim, self.speed = sim, schedule_speed
        self.schedules: dict[str, float] = {}  # line -> scheduled seconds per metre
        self.depart: dict[str, float] = {}

    def departed_buses(self) -> list[str]:
        from sim.transit import bus_line, schedule_per_metre

        c = self.sim.conn
        ids = self.sim._call(c.simulation.getDepartedIDList)
        out = [v for v in ids if self.sim._call(lambda v=v: c.vehicle.getVehicleClass(v)) == "bus"]
        for v in out:
            self.depart[v] = self.sim.time
            line = bus_line(v)
            if line not in self.schedules:
                self.schedules[line] = self.sim._call(lambda v=v: schedule_per_metre(c, v, self.speed))
        return out

    def arrived(self) -> list[str]:
        return list(self.sim._call(self.sim.conn.simulation.getArrivedIDList))

    def next_signal(self, vid: str) -> NextSignal | None:
        got = self.sim._call(lambda: self.sim.conn.vehicle.getNextTLS(vid))
        return NextSignal(str(got[0][0]), int(got[0][1]), float(got[0][2])) if got else None

    def lateness(self, vid: str, now: float) -> float:
        from sim.transit import bus_line, lateness

        dist = self.sim._call(lambda: self.sim.conn.vehicle.getDistance(vid))
        return lateness(now - self.depart[vid], dist, self.schedules[bus_line(vid)])

    def waiting_at_signal(self, vid: str) -> bool:
        from sim.transit import waiting_at_signal

        veh, nxt = self.sim.conn.vehicle, self.next_signal(vid)
        speed = self.sim._call(lambda: veh.getSpeed(vid))
        return nxt is not None and waiting_at_signal(speed, nxt.metres, self.sim._call(lambda: veh.isStopped(vid)))


def device_plan(spec: SignalSpec, min_green: float, max_green: float, yellow: float, all_red: float) -> TimingPlan:
    """The time-of-day plan a co-simulated device falls back to: the network's program, with the
    controller's clearances and minimum green (which the device enforces under central control,
    so they must be the actuator's to compare the two)."""
    base = TimingPlan.from_sumo_phases(spec.id, [(p.duration, p.state) for p in spec.phases], spec.offset,
                                       name="local (network program)")
    if tuple(s.state for s in base.stages) != tuple(spec.stages):
        raise WulinError(f"signal {spec.id!r}: its program repeats a stage; the co-simulation needs each stage once")
    stages = tuple(replace(s, green=max(round(s.green), round(min_green)), min_green=round(min_green),
                           max_green=round(max_green)) for s in base.stages)
    cycle = sum(s.green for s in stages) + len(stages) * (yellow + all_red)
    return replace(base, stages=stages, yellow=yellow, all_red=all_red, cycle=cycle, offset=round(base.offset) % cycle)


def _per_signal(value: Any, s: int) -> float:
    return float(value[s]) if hasattr(value, "__len__") else float(value)


def _detectors(spec: SignalSpec, lanes: Sequence[str], prefix: str) -> tuple[dict[int, int], list[tuple[int, str]]]:
    """Detector ``d`` (1-based) on in-lane ``d`` (:func:`deploy.detectors.detector_calls`); and
    the loop each detector reads (ids ``prefix + lane``)."""
    from sim.detectors import loop_id

    return detector_calls(spec, lanes), [(d, loop_id(lane, prefix)) for d, lane in enumerate(lanes, 1)]


def _loop_prefix(stopbar: bool) -> str:
    """Which loops feed the devices' detectors.  With the state from the devices they must see a
    car standing at the stop line, so they are stop-bar presence loops
    (:data:`sim.detectors.STOPBAR_SETBACK_M`); otherwise the stop-line loops the parity runs were
    measured with (a standing car's front is exactly on them: they count, never hold presence)."""
    from sim.detectors import PREFIX, STOPBAR_PREFIX

    return STOPBAR_PREFIX if stopbar else PREFIX


AGENT_IDLE_S = 0.5  # the loop advances the devices on the simulation clock; the agents need not wake for it
LINK_TIMEOUT = 0.3  # seconds; loopback answers in milliseconds, a silent device must not stall the loop


class _Clock:
    """The simulation clock the devices run on (set by the loop, read by the devices)."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@dataclass
class _Field:
    """The emulated field: devices, their SNMP agents and the central link to them."""

    emulators: list[ControllerEmulator]
    central: NtcipActuator
    loops: dict[str, list[tuple[int, str]]]
    snmp: str = "3"
    read_detectors: bool = False

    def stop(self) -> None:
        self._close_links()
        for e in self.emulators:
            e.stop()

    def _close_links(self) -> None:
        for lk in self.central.links:
            lk.reader.close()
            lk.writer.close()

    def restart_central(self) -> NtcipActuator:
        """A new central process: new SNMP sessions, nothing remembered but the counts kept for the report."""
        old = self.central
        self._close_links()
        self.central = NtcipActuator(_links(self.emulators, self.snmp, self.loops), old.max_green,
                                     heartbeat_s=old.heartbeat_s, backup_s=old.backup_s,
                                     read_detectors=self.read_detectors)
        self.central.stats = old.stats
        return self.central


def _links(emus: Sequence[ControllerEmulator], snmp: str, loops: Mapping[str, Sequence[object]]) -> list[DeviceLink]:
    """The central system's two SNMP sessions (read, write) to each device, and its detector count."""
    out = []
    for emu in emus:
        sid = emu.profile.signal_id
        creds = emu.credentials if snmp == "3" else replace(emu.credentials, snmp="2c")
        out.append(DeviceLink(sid, emu.profile,
                              snmp_session(emu.host, emu.port, creds, False, LINK_TIMEOUT, 0),
                              snmp_session(emu.host, emu.port, creds, True, LINK_TIMEOUT, 0), len(loops[sid])))
    return out


def _start_field(layout: DistrictLayout, params: Mapping[str, Any], clock: _Clock, snmp: str,
                 backup_s: int, heartbeat_s: float, read_detectors: bool = False) -> _Field:
    """One emulator per signal on loopback, and the central link to each."""
    emus: list[ControllerEmulator] = []
    loops, max_greens = {}, []
    try:
        for s, spec in enumerate(layout.specs):
            g = {k: _per_signal(params.get(k, d), s) for k, d in
                 (("min_green", 5.0), ("max_green", 90.0), ("yellow", 3.0), ("all_red", 2.0))}
            plan = device_plan(spec, g["min_green"], g["max_green"], g["yellow"], g["all_red"])
            calls, loops[spec.id] = _detectors(spec, layout.in_lanes[layout.signal_slice(s)], _loop_prefix(read_detectors))
            emu = ControllerEmulator(single_ring_profile(spec.id, spec.n_stages), plan, clock=clock,
                                     tod_start=clock.t, conflicts=spec.conflicts, detectors=calls,
                                     snmp_v2c=snmp == "2c", idle_s=AGENT_IDLE_S).start()
            emus.append(emu)
            max_greens.append(g["max_green"])
    except BaseException:
        for e in emus:
            e.stop()
        raise
    central = NtcipActuator(_links(emus, snmp, loops), max_greens, heartbeat_s=heartbeat_s, backup_s=backup_s,
                            read_detectors=read_detectors)
    return _Field(emus, central, loops, snmp, read_detectors)


def run_cosim(scenario: Scenario, controller: Any | None, seed: int, *, snmp: str = "3", backup_s: int = 10,
              heartbeat_s: float = 2.0, end: float | None = None,
              faults: Callable[[float, Sequence[ControllerEmulator]], None] | None = None,
              emergency: EmergencyOptions | None = None,
              fault: FaultRun | None = None, state: str = "sumo", buses: BusOptions | None = None) -> CosimResult:
    """SUMO, one emulated controller per signal and ``controller`` centrally, in lockstep.

    Each second: the devices tick to the simulation time; central polls them over SNMP
    (their phase status gives the controller its stages), at each ``decision_interval`` reads
    the lanes from SUMO (``state="sumo"``, the parity set-up: the same state as in simulation)
    or estimates them from the devices' detector objects read in the same poll
    (``state="devices"``, :mod:`deploy.detector_state`) and asks the controller, then
    commands the devices; the devices' heads set SUMO's signals (checked for
    safety), SUMO steps, its stop-line loops feed the devices' detectors.

    Args:
        scenario: The scenario to run.
        controller: A controller that decides stages (``act``); reset here on the network.
            ``None``: no central control; each device runs its own time-of-day plan (the
            network's program, :func:`device_plan`) and the run is named ``field``.
        seed: SUMO's seed.
        snmp: ``"3"`` (SNMPv3 authPriv) or ``"2c"``.
        backup_s: The devices' ``unitBackupTime``.
        heartbeat_s: How often central re-sends unchanged commands.
        end: Stop here instead of the scenario's end (seconds since midnight).
        faults: Called each second with the time and the emulators, before they tick: arms
            the devices' faults (dropped or late answers, reboots) to see what the loop does.
        emergency: Emergency vehicles and their preemption over SNMP
            (:mod:`deploy.preempt_cosim`); ``None``: none.
        fault: One of the named faults of :mod:`deploy.cosim_faults` (it also takes central
            down for ``central-crash``); its outcome is read from it after the run.
        state: Where the controller's state comes from: ``"sumo"`` or ``"devices"``.
        buses: SUMO's buses raise the devices' transit priority requests over SNMP
            (:mod:`deploy.priority_cosim`); ``None``: none.

    Raises:
        WulinError: a controller that does not decide stages, an unknown ``state`` or a
            controller that reads what the detectors cannot give, or a network the devices
            cannot run.
    """
    from sim.detectors import STOPBAR_PREFIX, STOPBAR_SETBACK_M, LaneCounter, write_stopline_loops
    from sim.kpi import network_kpis, read_tripinfo
    from sim.state import LANE_VARIABLES, DistrictLayout, DistrictState, StateReader, lane_variables
    from sim.topology import load_signal_specs

    if state not in STATE_SOURCES:
        raise WulinError(f"state source {state!r}: expected one of {', '.join(STATE_SOURCES)}")
    if controller is not None:
        check_controller(controller, state)
    layout = DistrictLayout.from_specs(load_signal_specs(scenario.net_file))
    if controller is not None:
        controller.reset(layout, seed)
    stop = min(end if end is not None else scenario.end, scenario.end)
    scenario = replace(scenario, end=stop)
    t_start, c_start = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory(prefix="wulin-cosim-") as work:
        loops_files = [write_stopline_loops(layout, Path(work) / "stopline.add.xml")]
        if state == "devices":  # the devices' stop-bar presence loops (see _loop_prefix)
            loops_files.append(write_stopline_loops(layout, Path(work) / "stopbar.add.xml", STOPBAR_SETBACK_M,
                                                    STOPBAR_PREFIX))
        sim = Simulation(scenario, seed=seed, tripinfo=True, additional_files=loops_files)
        sim.start()
        clock = _Clock(sim.time)
        params = controller.actuator_params if controller is not None else {}
        fld = _start_field(layout, params, clock, snmp, backup_s, heartbeat_s, state == "devices")
        try:
            if controller is not None and controller.capabilities.lane_counts:
                controller.attach_lane_counter(LaneCounter(sim, layout))
            bridge = SignalBridge(sim, dict(zip(layout.signal_ids, fld.emulators, strict=True)),
                                  {s.id: s for s in layout.specs}, fld.loops)
            if state == "devices":
                reader: Any = detector_reader(layout)
            else:
                wanted = fields_read(controller) if controller is not None else LANE_VARIABLES
                reader = SumoLaneReader(StateReader(sim, layout, lane_variables(wanted)))
                if controller is not None:
                    reader.lanes.subscribe()
            snapshot = DistrictState.empty(layout, sim.time)
            ev = _emergency(sim, fld, layout, emergency) if emergency is not None else None
            bus = _buses(sim, fld, layout, buses) if buses is not None else None
            _lockstep(sim, fld, bridge, controller, reader, snapshot, clock, stop, faults, ev, fault, bus)
            if ev is not None:
                ev[0].release()
            bus_stats = _bus_figures(bus[0], fld.emulators) if bus is not None else None
            alarms = sum(e.unit.monitor.tripped for e in fld.emulators)
            fallbacks = sum(e.backup_fallbacks for e in fld.emulators)
        finally:
            fld.stop()
            sim.close()
        trips = read_tripinfo(sim.tripinfo_file, scenario.measure_begin)
        network = network_kpis(sim.statistics_file, trips)
        sim.cleanup()
    name = str(controller.name) if controller is not None else "field"
    return CosimResult(scenario.id, name, seed, trips, network, time.perf_counter() - t_start,
                       stop - scenario.begin, bridge.unsafe, bridge.unsafe_count, alarms, fallbacks,
                       fld.central.stats, snmp, ev[0].stats if ev is not None else None,
                       time.process_time() - c_start, bridge.flash_entries, state, bus_stats)


def check_controller(controller: Any, state: str) -> None:
    """A controller central control can drive, reading only what ``state`` gives (the
    co-simulation's, and ``wulin adaptive run``'s with ``"devices"``)."""
    check_stage_chooser(controller)
    if state == "devices":
        check_fields(str(controller.name), fields_read(controller))


STATE_SOURCES = ("sumo", "devices")


def fields_read(controller: Any) -> tuple[str, ...]:
    """The state fields a controller reads: its ``state_fields`` (a trained policy's are what its
    observation reads); otherwise every lane variable."""
    from sim.state import LANE_VARIABLES

    fields = tuple(getattr(controller, "state_fields", ()) or ())
    return fields or LANE_VARIABLES


class SumoLaneReader:
    """``--state sumo``: the controller reads SUMO's lanes (the upper bound of what detectors can
    give), through the two calls :func:`deploy.central.central_round` makes of a reader."""

    def __init__(self, lanes: StateReader) -> None:
        self.lanes = lanes

    def update(self, samples: Sequence[Any]) -> None:
        """SUMO's lanes need no device periods."""

    def read(self, into: Any, stage: Sequence[int], stage_time: Sequence[float],
             in_transition: Sequence[bool], time: float) -> Any:
        return self.lanes.read(into=into, stage=stage, stage_time=stage_time, in_transition=in_transition)


def detector_reader(layout: DistrictLayout) -> DetectorStateReader:
    """The state estimated from the devices' detectors: detector ``d`` of signal ``s`` is on the
    signal's ``d``-th in-lane (as :func:`_detectors` wires them)."""
    lanes = [list(range(int(layout.in_ptr[s]), int(layout.in_ptr[s + 1]))) for s in range(layout.n_signals)]
    return DetectorStateReader(layout.in_lanes, [float(x) for x in layout.in_lane_length], layout.out_lanes, lanes)


def _emergency(sim: Simulation, fld: _Field, layout: DistrictLayout,
               options: EmergencyOptions) -> tuple[EmergencyPreemptor, SumoTraffic]:
    """The preemptor, with every device's preempt table installed, and its view of SUMO."""
    pre = EmergencyPreemptor(options, {lk.signal_id: lk for lk in fld.central.links},
                             {s.id: tuple(s.stages) for s in layout.specs})
    edges = set(sim._call(sim.conn.edge.getIDList))
    for trip in options.trips:
        for edge in (trip.origin, trip.destination):
            if edge not in edges:
                raise WulinError(f"emergency vehicle at {trip.depart:.0f} s: edge {edge!r} is not in the network")
    pre.install()
    return pre, SumoTraffic(sim)


def _buses(sim: Simulation, fld: _Field, layout: DistrictLayout, options: BusOptions) -> tuple[BusRequester, SumoBuses]:
    """The bus requester over every device, and its view of SUMO's buses."""
    req = BusRequester(options, {lk.signal_id: lk for lk in fld.central.links},
                       {s.id: tuple(s.stages) for s in layout.specs}, sim.scenario.step_length)
    return req, SumoBuses(sim)


def _bus_figures(req: BusRequester, emus: Sequence[ControllerEmulator]) -> BusStats:
    """The requester's counts, every request cancelled, and what each device's engine gave."""
    req.release()
    for e in emus:
        with e.lock:
            req.stats.add_device(e.unit.priority.served, e.unit.priority.given)
    return req.stats


def _lockstep(sim: Simulation, fld: _Field, bridge: SignalBridge, controller: Any, reader: Any, state: Any,
              clock: _Clock, stop: float, faults: Callable[[float, Sequence[ControllerEmulator]], None] | None,
              emergency: tuple[EmergencyPreemptor, SumoTraffic] | None = None,
              fault: FaultRun | None = None, buses: tuple[BusRequester, SumoBuses] | None = None) -> None:
    """The loop of :func:`run_cosim`, one simulation step at a time (``controller`` None: no
    central control, the devices run their own plans)."""
    emus = fld.emulators
    di, t = float(controller.decision_interval) if controller is not None else 0.0, sim.time
    next_decision, was_down = t, False
    if controller is not None:
        fld.central.take_control(t)
    while t < stop - 1e-9:
        clock.t = t
        if faults is not None:
            faults(t, emus)
        if fault is not None:
            fault(t, emus, fld.central)
        for e in emus:
            with e.lock:
                e.advance()
        down = fault is not None and fault.central_down(t)
        if was_down and not down and controller is not None:  # a new central process starts and takes the devices again
            fld.restart_central().take_control(t)
            next_decision = t
        was_down = down
        if not down and controller is not None:
            next_decision = _central_round(fld.central, controller, reader, state, t, next_decision, di)
        bridge.show()
        sim.step()
        bridge.feed()
        t = sim.time
        if emergency is not None:  # the vehicles as this step left them set the preempt inputs
            emergency[0].step(t, emergency[1])
        if buses is not None:
            buses[0].step(t, buses[1])
        if int(t) % 600 == 0:  # bounded logs over a long run
            _clear_logs(fld)


def _clear_logs(fld: _Field) -> None:
    for e in fld.emulators:
        with e.lock:
            e.pdu_log.clear()
    for lk in fld.central.links:
        lk.reader.wire.clear()
        lk.writer.wire.clear()
