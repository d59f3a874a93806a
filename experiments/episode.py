"""THE episode loop: one scenario, one controller, one seed -> trip and network KPIs.

Every controller goes through :func:`run_episode`: fixed-time, Webster, max-pressure, SOTL,
SUMO's own actuated programs and RL policies (through a ``PolicyController``).  It reads in
named parts: :class:`EpisodeOptions`, preparation (:func:`_resolve`, :func:`_start`), the
native run (:func:`_run_native`), the actuated run (:class:`_ActuatedRun`), collection
(:func:`_collect`), all timed by one :class:`~sim.loop.Stopwatch`.

Where the loop lives: the layering lets ``sim`` import neither controllers nor experiments,
so the loop's core, the event-to-event advance of SUMO and the actuator on one millisecond
clock (:func:`sim.loop.advance_events`, :class:`sim.loop.StepClock`), lives in ``sim``
and is used by the environments (``sim.env``) and by this module alike; the
controller-aware driving (capabilities, decisions, cycles, hooks, the stopwatch) lives here.

* Native controllers (``capabilities.native``) hand SUMO their programs as additional files;
  the loop then advances SUMO in chunks (``step_until``) and never calls ``act``.
* Other controllers are driven event to event: every ``decision_interval`` seconds
  ``reader.read()`` -> ``controller.act()`` -> ``actuator.request()``, and between decisions
  SUMO advances in one ``step_until`` call straight to the next step at which anything is due
  (the next decision or the actuator's :attr:`~sim.actuator.SignalActuator.next_event`), then
  ``actuator.tick()``.  Nothing changes in between, so the trajectory is the one that ticking
  every step would give (``tests/test_episode.py`` checks this), at a fraction of the Python
  cost.  A controller that knows when it next has something to say (``own_schedule``,
  e.g. webster-online's next cycle end) is not called before then, unless hooks or observers
  want every interval.  A controller that plans whole cycles (``whole_cycles``: webster-online)
  is asked ``plan_cycles(t)`` instead of ``act``, and each signal's cycle goes to SUMO in one
  :meth:`~sim.actuator.SignalActuator.run_cycle` call.

Controller time (inside ``act``, the actuator and the loop's next-event arithmetic), the time
reading the state and the time inside SUMO's steps are measured separately from the wall time,
on the wall clock and on the thread's CPU clock (``time.thread_time``, which other processes'
load hardly affects), so benchmarks can report the controllers' share of an episode honestly.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from sim.loop import CONTROLLER, OTHER, STATE, STEP, Stopwatch

_perf = time.perf_counter
_cpu = time.thread_time

if TYPE_CHECKING:
    import pandas as pd

    from controllers.base import Capabilities, Controller, Scheduled
    from sim.actuator import SignalActuator
    from sim.scenario import Scenario
    from sim.simulation import Simulation
    from sim.state import DistrictLayout, DistrictState, StateReader


@dataclass
class EpisodeResult:
    """What one episode produced.

    Attributes:
        scenario_id: The scenario run.
        controller: The controller's name.
        seed: SUMO's seed.
        trips: Per-trip KPIs of trips departing after the warm-up (``sim.kpi.read_tripinfo``).
        network: Network KPIs (``sim.kpi.network_kpis``).
        wall_time: Seconds for the whole episode (start, run, close, reading outputs).
        controller_time: Seconds inside ``act()`` and the actuator (requests, events, state
            writes to SUMO, the loop's next-event arithmetic): the controllers' share of the
            episode is ``controller_time / wall_time``.
        decisions: Number of ``act()`` calls.
        sim_time: Simulated seconds.
        state_time: Seconds reading the :class:`DistrictState` from SUMO for ``act()``
            (reported apart from the controller's time).
        step_time: Seconds inside SUMO's ``simulationStep`` calls.
        cpu_time: CPU seconds of the episode's thread (``time.thread_time``; SUMO runs in
            it with libsumo), far less sensitive than wall time to other processes' load.
        controller_cpu: ``controller_time`` as thread CPU seconds: the controllers' CPU share
            is ``controller_cpu / cpu_time``.
        state_cpu: ``state_time`` as thread CPU seconds.
        step_cpu: ``step_time`` as thread CPU seconds.
    """

    scenario_id: str
    controller: str
    seed: int
    trips: pd.DataFrame
    network: dict[str, float]
    wall_time: float
    controller_time: float
    decisions: int
    sim_time: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    state_time: float = 0.0
    step_time: float = 0.0
    cpu_time: float = 0.0
    controller_cpu: float = 0.0
    state_cpu: float = 0.0
    step_cpu: float = 0.0

    def summary(self) -> dict[str, float]:
        """``sim.kpi.summarise(trips)`` plus the network KPIs and timings."""
        from sim.kpi import summarise

        out = dict(summarise(self.trips))
        out.update({f"net_{k}": v for k, v in self.network.items()})
        out.update(wall_time=self.wall_time, controller_time=self.controller_time,
                   state_time=self.state_time, step_time=self.step_time,
                   cpu_time=self.cpu_time, controller_cpu=self.controller_cpu,
                   state_cpu=self.state_cpu, step_cpu=self.step_cpu,
                   decisions=float(self.decisions))
        return out


class _TimedCounter:
    """Wraps a :class:`sim.detectors.LaneCounter`, timing its reads on both clocks.

    Loop counts read inside ``act()`` are state reading, not controller work: the loop
    moves ``read_time`` / ``read_cpu`` from the controller's account to the state's.
    """

    def __init__(self, counter: Any) -> None:
        self.counter = counter
        self.read_time = 0.0
        self.read_cpu = 0.0

    def read(self, lanes: slice | None = None) -> Any:
        """``LaneCounter.read``, timed."""
        k0 = time.thread_time()
        w0 = time.perf_counter()
        out = self.counter.read(lanes)
        self.read_time += time.perf_counter() - w0
        self.read_cpu += time.thread_time() - k0
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.counter, name)


def _progress(enabled: bool, total: float, label: str):  # type: ignore[no-untyped-def]
    if not enabled:
        return None
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    prog = Progress(TextColumn("{task.description}"), BarColumn(),
                    TextColumn("{task.completed:,.0f}/{task.total:,.0f} s"), TimeRemainingColumn(),
                    transient=True)
    prog.start()
    prog.add_task(label, total=total)
    return prog


@dataclass(frozen=True)
class EpisodeOptions:
    """How an episode runs, beside its scenario, controller and seed.

    Attributes:
        backend: ``"libsumo"`` or ``"traci"``.
        gui: Show sumo-gui.
        output_dir: Keep SUMO's outputs and the generated additional files here.
        additional_files: More SUMO additional files (closures, detectors).
        extra_args: More SUMO options.
        hooks: Called as ``hook(sim, time)`` at every decision interval (incidents, closures).
        observers: Called with the :class:`DistrictState` at every decision interval.
        progress: Show a progress bar over simulated time.
        priority: A :class:`sim.priority.PriorityLayer` (emergency preemption, bus priority)
            run beside the controller, native or not; ``None`` runs the controller alone.
    """

    backend: Literal["libsumo", "traci"] = "libsumo"
    gui: bool = False
    output_dir: Path | None = None
    additional_files: Sequence[Path] = ()
    extra_args: Sequence[str] = ()
    hooks: Sequence[Callable[[Simulation, float], None]] = ()
    observers: Sequence[Callable[[DistrictState], None]] = ()
    progress: bool = False
    priority: Any = None


@dataclass
class _Episode:
    """What preparation made: the resolved inputs and the running SUMO."""

    scenario: Scenario
    controller: Controller
    capabilities: Capabilities
    layout: DistrictLayout
    seed: int
    workdir: Path
    own_work: bool
    sim: Simulation | None = None
    reader: StateReader | None = None
    state: DistrictState | None = None


def run_episode(
    scenario: Scenario | str,
    controller: Controller | str,
    *,
    seed: int,
    options: EpisodeOptions | None = None,
    controller_params: dict | None = None,
    **option_fields: Any,
) -> EpisodeResult:
    """Run one episode and return its KPIs.

    Args:
        scenario: A :class:`Scenario` or a scenario id.
        controller: A controller or a registered name (made with ``controller_params``).
        seed: SUMO's seed.
        options: How to run it (:class:`EpisodeOptions`).
        controller_params: Keyword arguments when ``controller`` is a name.
        **option_fields: :class:`EpisodeOptions` fields given one by one instead
            (``backend=``, ``gui=``, ``output_dir=``, ``additional_files=``, ``extra_args=``,
            ``hooks=``, ``observers=``, ``progress=``).

    Raises:
        WulinError: unknown scenario or controller, bad parameters, SUMO failure.
    """
    from sim.kpi import network_kpis, read_tripinfo

    if option_fields:
        from dataclasses import replace

        options = replace(options or EpisodeOptions(), **option_fields)
    opts = options or EpisodeOptions()
    t_start = time.perf_counter()
    cpu_start = time.thread_time()
    watch = Stopwatch()
    ep = _resolve(scenario, controller, seed, opts, controller_params)
    decisions = 0
    try:
        _start(ep, opts)
        bar = _progress(opts.progress, ep.scenario.duration,
                        f"{ep.scenario.id} · {ep.controller.name}")
        try:
            if ep.capabilities.native:
                _run_native(ep, opts, watch, bar)
            else:
                decisions = _ActuatedRun(ep, opts, watch, bar).run()
        finally:
            if bar is not None:
                bar.stop()
        assert ep.sim is not None
        ep.sim.close()
        trips = read_tripinfo(ep.sim.tripinfo_file, ep.scenario.measure_begin)
        network = network_kpis(ep.sim.statistics_file, trips)
    finally:
        _clean_up(ep)
    return _collect(ep, trips, network, decisions, watch, t_start, cpu_start)


def _resolve(scenario: Scenario | str, controller: Controller | str, seed: int,
             opts: EpisodeOptions, controller_params: dict | None) -> _Episode:
    """Load the scenario, make and reset the controller, make the work folder."""
    from controllers.base import make_controller
    from sim.scenario import load_scenario
    from sim.state import DistrictLayout
    from sim.topology import load_signal_specs

    sc = load_scenario(scenario) if isinstance(scenario, str) else scenario
    ctl = make_controller(controller, **(controller_params or {})) \
        if isinstance(controller, str) else controller
    layout = DistrictLayout.from_specs(load_signal_specs(sc.net_file))
    ctl.reset(layout, seed)
    own_work = opts.output_dir is None
    workdir = Path(tempfile.mkdtemp(prefix="wulin-episode-")) if own_work \
        else Path(opts.output_dir)  # type: ignore[arg-type]
    workdir.mkdir(parents=True, exist_ok=True)
    return _Episode(sc, ctl, ctl.capabilities, layout, seed, workdir, own_work)


def _start(ep: _Episode, opts: EpisodeOptions) -> None:
    """Write the controller's additional files, start SUMO, subscribe the state reader."""
    from sim.simulation import Simulation
    from sim.state import DistrictState, StateReader, lane_variables

    extra_files = list(opts.additional_files)
    extra_files += list(ep.controller.sumo_additional_files(ep.scenario, ep.workdir))
    if ep.capabilities.lane_counts:
        from sim.detectors import write_stopline_loops

        extra_files.append(write_stopline_loops(ep.layout, ep.workdir / "wulin_stopline.add.xml"))
    ep.sim = Simulation(ep.scenario, seed=ep.seed, backend=opts.backend, gui=opts.gui,
                        output_dir=opts.output_dir, tripinfo=True, additional_files=extra_files,
                        extra_args=opts.extra_args)
    ep.sim.start()
    # read only the lanes' variables the controller's kernel uses (its ``state_fields``;
    # every variable for other controllers and when observers look at the state)
    fields = None if opts.observers else (getattr(ep.controller, "state_fields", None) or None)
    ep.reader = StateReader(ep.sim, ep.layout, lane_variables(fields))
    ep.reader.subscribe()
    ep.state = DistrictState.empty(ep.layout, ep.scenario.begin)


def _clean_up(ep: _Episode) -> None:
    if ep.sim is not None:
        if ep.own_work:
            ep.sim.cleanup()
        else:
            ep.sim.close()
    if ep.own_work:
        shutil.rmtree(ep.workdir, ignore_errors=True)


def _collect(ep: _Episode, trips: pd.DataFrame, network: dict[str, float], decisions: int,
             watch: Stopwatch, t_start: float, cpu_start: float) -> EpisodeResult:
    """The result: KPIs and the stopwatch's accounts."""
    return EpisodeResult(
        scenario_id=ep.scenario.id, controller=str(ep.controller.name), seed=ep.seed,
        trips=trips, network=network, wall_time=time.perf_counter() - t_start,
        controller_time=watch.wall[CONTROLLER], decisions=decisions,
        sim_time=ep.scenario.duration, state_time=watch.wall[STATE],
        step_time=watch.wall[STEP], cpu_time=time.thread_time() - cpu_start,
        controller_cpu=watch.cpu[CONTROLLER], state_cpu=watch.cpu[STATE],
        step_cpu=watch.cpu[STEP],
    )


def _run_native(ep: _Episode, opts: EpisodeOptions, watch: Stopwatch, bar: Any) -> None:
    """SUMO runs the signals: advance in chunks, calling hooks and observers between them.

    Hooks that say when their next event is due (``EventHook.next_time``) are also called
    then, so closures and incidents start on time, not at the next chunk (observers keep the
    regular chunks).
    """
    sim, reader, state, sc = ep.sim, ep.reader, ep.state, ep.scenario
    assert sim is not None and reader is not None and state is not None
    hooks, observers = opts.hooks, opts.observers
    di = float(ep.controller.decision_interval)
    chunk = di if (hooks or observers) else max(di, 60.0)
    hook_times = [h.next_time for h in hooks if hasattr(h, "next_time")]
    layer = opts.priority
    if layer is not None:  # polled at its own times (every step while anything is active)
        layer.start(sim, ep.layout.specs)
    end = sc.end
    t = sim.time
    layer_due = layer.next_time(t) if layer is not None else math.inf
    regular = t + chunk
    while t < end - 1e-9:
        target = min(regular, end)
        for next_time in hook_times:
            due = next_time(t)
            if due < target:
                target = due
        if layer_due < target:
            target = layer_due
        watch.switch(STEP)
        sim.step_until(target)
        watch.switch(OTHER)
        t = sim.time
        if t + 1e-9 >= layer_due:
            layer.poll(t)
            layer_due = layer.next_time(t)
        for hook in hooks:
            hook(sim, t)
        if t < regular - 1e-9 and t < end - 1e-9:
            continue  # an event's stop: the hooks only
        regular = t + chunk
        if observers:
            reader.read(into=state)
            for obs in observers:
                obs(state)
        if bar is not None:
            bar.update(bar.task_ids[0], completed=t - sc.begin)


class _ActuatedRun:
    """The controller decides, the actuator acts: decision to decision, event to event.

    At every decision: the actuator's clock and events (``tick``), the state (lanes read from
    SUMO unless the controller declared ``needs_state=False``), the observers, the decision
    (``act`` -> ``request``, or whole cycles -> ``run_cycle``), the hooks; then SUMO advances
    event to event to the next decision (:func:`sim.loop.advance_events`).
    """

    def __init__(self, ep: _Episode, opts: EpisodeOptions, watch: Stopwatch, bar: Any) -> None:
        from sim.actuator import SignalActuator
        from sim.loop import StepClock

        watch.switch(CONTROLLER)  # the set-up (actuator, counters) is controller work
        self.ep, self.watch, self.bar = ep, watch, bar
        self.hooks, self.observers = opts.hooks, opts.observers
        sim, ctl, caps = ep.sim, ep.controller, ep.capabilities
        assert sim is not None
        self.actuator: SignalActuator = SignalActuator(sim, ep.layout, **dict(ctl.actuator_params))
        self.actuator.reset()
        if opts.priority is not None:  # preemption and bus priority over the actuator
            from sim.priority import PriorityActuator

            opts.priority.start(sim, ep.layout.specs, self.actuator)
            self.actuator = PriorityActuator(self.actuator, opts.priority)  # type: ignore[assignment]
        self.counter: _TimedCounter | None = None
        if caps.lane_counts:
            from sim.detectors import LaneCounter

            self.counter = _TimedCounter(LaneCounter(sim, ep.layout))
            ctl.attach_lane_counter(self.counter)  # type: ignore[attr-defined]
        self.needs_state = caps.needs_state or bool(self.observers)
        # a controller may say when act() next has something to say (webster-online: its
        # next cycle end); hooks and observers want every interval; without either, a
        # controller with no schedule of its own is asked every interval from now
        every_interval = bool(self.hooks or self.observers)
        self.from_now = not every_interval and not caps.own_schedule
        self.next_act: Callable[[float], float] | None = None
        if caps.own_schedule and not every_interval:
            self.next_act = cast("Scheduled", ctl).next_decision_time
        # a controller that plans whole cycles hands them to the actuator, which has SUMO run
        # them: Python stops once per cycle per signal, not once per stage
        self.whole_cycles = caps.whole_cycles
        self.di = float(ctl.decision_interval)
        sc = ep.scenario
        self.clock = StepClock(sim.time, sc.step_length, sc.end)

    def run(self) -> int:
        """Run to the scenario's end; returns the number of decisions.

        The hot path, written out: per decision only local names and the calls that do the
        work (this Python runs on caches cold from SUMO's step, where every extra call costs
        µs).  Each account boundary reads the wall clock and the thread's CPU clock once.
        """
        from sim.loop import advance_events

        ep, watch, clock, actuator = self.ep, self.watch, self.clock, self.actuator
        sim, state, reader, ctl = ep.sim, ep.state, ep.reader, ep.controller
        assert sim is not None and state is not None and reader is not None
        hooks, observers, needs_state = self.hooks, self.observers, self.needs_state
        from_now, di = self.from_now, self.di
        tick, views, read, request = actuator.tick, actuator.views, reader.read, actuator.request
        act = ctl.act
        plan_cycles = ctl.plan_cycles if self.whole_cycles else None  # type: ignore[attr-defined]
        if plan_cycles is not None:
            run_cycle, cycle_booked = actuator.run_cycle, ctl.cycle_booked  # type: ignore[attr-defined]
        wall, cpu = watch.wall, watch.cpu
        end = clock.end
        t = clock.time
        next_decision = t
        decisions = 0
        last_bar = t
        watch.switch(CONTROLLER)  # book the set-up: the first state window opens here
        while t < end - 1e-9:
            if t + 1e-6 >= actuator.next_event:  # events due now: the actuator's work
                tick(t)
                w = _perf()
                k = _cpu()
                wall[CONTROLLER] += w - watch._w0
                cpu[CONTROLLER] += k - watch._k0
            else:
                # nothing due: the state's window opens where SUMO's step closed (two clock
                # reads fewer per decision, as before the loop moved to sim.loop); only the
                # end of advance_events and the loop's two tests are booked to the state
                w = watch._w0
                k = watch._k0
            stage, stage_time, in_transition = views(t)  # (sets the clock when not ticked)
            if needs_state:
                read(into=state, stage=stage, stage_time=stage_time, in_transition=in_transition)
            else:  # the controller reads only the clock and the stages
                state.time = t
                state.stage[:], state.stage_time[:], state.in_transition[:] = \
                    stage, stage_time, in_transition
            if observers:  # observers are neither state reading nor controller
                watch._w0, watch._k0, watch.account = w, k, STATE
                watch.switch(OTHER)
                for obs in observers:
                    obs(state)
                watch.switch(STATE)
                w, k = watch._w0, watch._k0  # the state's window, reopened
            watch._k0 = k_open = _cpu()
            watch._w0 = w_open = _perf()
            wall[STATE] += w_open - w
            cpu[STATE] += k_open - k
            watch.account = CONTROLLER
            if plan_cycles is not None:
                for s, greens in plan_cycles(t):
                    cycle_booked(s, run_cycle(s, greens))
            else:
                request(act(state))
            decisions += 1
            next_decision = t + di if from_now else self._next_decision(t, next_decision)
            if hooks:
                watch.switch(OTHER)
                for hook in hooks:
                    hook(sim, t)
                watch.switch(CONTROLLER)
            t = advance_events(sim, actuator, clock,
                               next_decision if next_decision < end else end, watch)
            if self.bar is not None and t - last_bar >= 60:
                self.bar.update(self.bar.task_ids[0], completed=t - ep.scenario.begin)
                last_bar = t
        tick(t)
        watch.switch(OTHER)
        if self.counter is not None:  # loop counts read inside act() are state reading
            watch.move(self.counter.read_time, self.counter.read_cpu, CONTROLLER, STATE)
        return decisions

    def _next_decision(self, t: float, previous: float) -> float:
        """When the controller is next asked (on the ``decision_interval`` grid)."""
        di = self.di
        if self.from_now:
            return t + di
        if self.next_act is None:  # hooks or observers: every interval
            return previous + di
        nd = float(self.next_act(t))  # skip act() calls that would only keep
        end = self.clock.end
        return t + (di * max(1, math.ceil((nd - t) / di - 1e-9)) if math.isfinite(nd)
                    else max(end - t, di))
