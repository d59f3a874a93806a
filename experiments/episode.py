"""THE episode loop: one scenario, one controller, one seed -> trip and network KPIs.

Every controller goes through :func:`run_episode`: fixed-time, Webster, max-pressure, SOTL,
SUMO's own actuated programs and RL policies (through a ``PolicyController``).

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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from controllers.base import Controller
    from sim.scenario import Scenario
    from sim.simulation import Simulation
    from sim.state import DistrictState


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


def run_episode(
    scenario: Scenario | str,
    controller: Controller | str,
    *,
    seed: int,
    backend: str = "libsumo",
    gui: bool = False,
    output_dir: Path | None = None,
    additional_files: Sequence[Path] = (),
    extra_args: Sequence[str] = (),
    hooks: Sequence[Callable[[Simulation, float], None]] = (),
    observers: Sequence[Callable[[DistrictState], None]] = (),
    progress: bool = False,
    controller_params: dict | None = None,
) -> EpisodeResult:
    """Run one episode and return its KPIs.

    Args:
        scenario: A :class:`Scenario` or a scenario id.
        controller: A controller or a registered name (made with ``controller_params``).
        seed: SUMO's seed.
        backend: ``"libsumo"`` or ``"traci"``.
        gui: Show sumo-gui.
        output_dir: Keep SUMO's outputs and the generated additional files here.
        additional_files: More SUMO additional files (closures, detectors).
        extra_args: More SUMO options.
        hooks: Called as ``hook(sim, time)`` at every decision interval (incidents, closures).
        observers: Called with the :class:`DistrictState` at every decision interval.
        progress: Show a progress bar over simulated time.
        controller_params: Keyword arguments when ``controller`` is a name.

    Raises:
        WulinError: unknown scenario or controller, bad parameters, SUMO failure.
    """
    from controllers.base import make_controller
    from sim.actuator import SignalActuator
    from sim.kpi import network_kpis, read_tripinfo
    from sim.scenario import load_scenario
    from sim.simulation import Simulation
    from sim.state import DistrictLayout, DistrictState, StateReader
    from sim.topology import load_signal_specs

    t_start = time.perf_counter()
    cpu_start = time.thread_time()
    sc = load_scenario(scenario) if isinstance(scenario, str) else scenario
    ctl = make_controller(controller, **(controller_params or {})) if isinstance(controller, str) \
        else controller
    layout = DistrictLayout.from_specs(load_signal_specs(sc.net_file))
    ctl.reset(layout, seed)
    caps = ctl.capabilities
    native = caps.native
    di = float(ctl.decision_interval)

    own_work = output_dir is None
    workdir = Path(tempfile.mkdtemp(prefix="wulin-episode-")) if own_work else Path(output_dir)  # type: ignore[arg-type]
    workdir.mkdir(parents=True, exist_ok=True)
    sim: Simulation | None = None
    ctl_time, decisions, state_time, step_time = 0.0, 0, 0.0, 0.0
    ctl_cpu, state_cpu, step_cpu = 0.0, 0.0, 0.0
    perf = time.perf_counter
    try:
        extra_files = list(additional_files)
        extra_files += list(ctl.sumo_additional_files(sc, workdir))
        wants_counts = caps.lane_counts
        if wants_counts:
            from sim.detectors import write_stopline_loops

            extra_files.append(write_stopline_loops(layout, workdir / "wulin_stopline.add.xml"))
        sim = Simulation(sc, seed=seed, backend=backend, gui=gui, output_dir=output_dir,
                         tripinfo=True, additional_files=extra_files, extra_args=extra_args)
        sim.start()
        reader = StateReader(sim, layout)
        reader.subscribe()
        state = DistrictState.empty(layout, sc.begin)
        bar = _progress(progress, sc.duration, f"{sc.id} · {ctl.name}")
        end = sc.end
        t = sim.time
        try:
            if native:
                chunk = di if (hooks or observers) else max(di, 60.0)
                # hooks that say when their next event is due (EventHook.next_time) are also
                # called then, so closures and incidents start on time, not at the next chunk
                # (observers keep the regular chunks)
                hook_times = [h.next_time for h in hooks if hasattr(h, "next_time")]
                regular = t + chunk
                while t < end - 1e-9:
                    target = min(regular, end)
                    for next_time in hook_times:
                        due = next_time(t)
                        if due < target:
                            target = due
                    s0, k0 = perf(), time.thread_time()
                    sim.step_until(target)
                    step_cpu += time.thread_time() - k0
                    step_time += perf() - s0
                    t = sim.time
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
            else:
                # Timing: the loop alternates controller work, state reading and SUMO steps;
                # each boundary reads the wall clock and the thread's CPU clock once.  The
                # CPU clock is read outside the controller's wall window (before it opens,
                # after it closes), so its cost is booked to SUMO or the state, not to us.
                cpu = time.thread_time
                k_open = cpu()
                w_open = perf()
                act_params = dict(ctl.actuator_params)
                actuator = SignalActuator(sim, layout, **{"sumo_clearance": True, **act_params})
                actuator.reset()
                if wants_counts:
                    from sim.detectors import LaneCounter

                    counter = _TimedCounter(LaneCounter(sim, layout))
                    ctl.attach_lane_counter(counter)  # type: ignore[attr-defined]
                else:
                    counter = None
                needs_state = caps.needs_state or bool(observers)
                # a controller may say when act() next has something to say (webster-online:
                # its next stage or cycle end); hooks and observers want every interval;
                # without either, a controller with no schedule of its own is asked every
                # ``decision_interval`` from now
                every_interval = bool(hooks or observers)
                from_t = not every_interval and not caps.own_schedule
                next_act = ctl.next_decision_time if caps.own_schedule and not every_interval \
                    else None  # type: ignore[attr-defined]
                # a controller that plans whole cycles hands them to the actuator, which has
                # SUMO run them: Python stops once per cycle per signal, not once per stage
                plan_cycles = ctl.plan_cycles if caps.whole_cycles else None  # type: ignore[attr-defined]
                cycle_booked = ctl.cycle_booked if caps.whole_cycles else None  # type: ignore[attr-defined]
                run_cycle = actuator.run_cycle
                next_decision = t
                step = sc.step_length
                t_ms, step_ms, end_ms = round(t * 1000), round(step * 1000), round(end * 1000)
                last_bar = t
                act = ctl.act
                request = actuator.request
                tick = actuator.tick
                step_until = sim.step_until
                ceil = math.ceil
                isfinite = math.isfinite
                stage_now = state.stage
                stage_time_now = state.stage_time
                in_transition_now = state.in_transition
                read = reader.read
                views = actuator.views
                ne = actuator.next_event  # changes only in request / tick / run_cycle
                # with nothing due and no history to flush, tick(t) only sets the clock
                clock_only = not actuator.record
                # close the set-up (actuator, counters: controller work) so that every
                # decision below starts where SUMO's step ended
                w = perf()
                k = cpu()
                ctl_time += w - w_open
                ctl_cpu += k - k_open
                k_open = cpu()
                w_open = perf()
                # the hot path: per decision, only local names, no numpy calls, no min/max
                # builtins where a comparison does (this Python runs on caches cold from SUMO)
                while t < end - 1e-9:
                    if t >= next_decision - 1e-9:
                        if clock_only and t + 1e-6 < ne:
                            # nothing is due (tick's own test): tick would only set the
                            # clock, so set it and let the state's window open where SUMO's
                            # step closed (w_open, k_open): two clock reads fewer per decision
                            # (the first CPU-clock read after a step costs µs on cold caches)
                            # and only this store and test booked to the state
                            actuator._now = t
                            w = w_open
                            k = k_open
                        else:
                            tick(t)  # the clock and the events due now, before the state
                            w = perf()
                            k = cpu()
                            ctl_time += w - w_open
                            ctl_cpu += k - k_open
                        if needs_state:
                            stage_l, stage_time_l, in_transition_l = views()
                            read(into=state, stage=stage_l, stage_time=stage_time_l,
                                 in_transition=in_transition_l)
                        else:  # the controller reads only the clock and the stages
                            state.time = t
                            stage_now[:], stage_time_now[:], in_transition_now[:] = views()
                        if observers:  # observers are neither state reading nor controller
                            w_obs = perf()
                            k_obs = cpu()
                            for obs in observers:
                                obs(state)
                            w += perf() - w_obs
                            k += cpu() - k_obs
                        k_open = cpu()
                        w_open = perf()
                        state_time += w_open - w
                        state_cpu += k_open - k
                        if plan_cycles is not None:
                            for s_, greens in plan_cycles(t):
                                cycle_booked(s_, run_cycle(s_, greens))
                        else:
                            request(act(state))
                        ne = actuator.next_event
                        decisions += 1
                        if from_t:
                            next_decision = t + di
                        elif next_act is None:  # hooks or observers: every interval
                            next_decision += di
                        else:  # skip act() calls that would only keep
                            nd = float(next_act(t))
                            next_decision = t + (di * max(1, ceil((nd - t) / di - 1e-9))
                                                 if isfinite(nd) else max(end - t, di))
                        if hooks:
                            w = perf()
                            k = cpu()
                            ctl_time += w - w_open
                            ctl_cpu += k - k_open
                            for hook in hooks:
                                hook(sim, t)
                            k_open = cpu()
                            w_open = perf()
                    elif t + 1e-6 >= ne:  # an actuator event is due (tick's own test)
                        tick(t)
                        ne = actuator.next_event
                    # advance SUMO in one call to the next step at which anything is due: the
                    # next decision or the actuator's next event (nothing changes in between)
                    due = next_decision if next_decision < ne else ne
                    if end < due:
                        due = end
                    n_steps = ceil((due - t) / step - 1e-6)
                    if n_steps < 1:
                        n_steps = 1
                    # SUMO's clock counts milliseconds: whole ms in ints, one exact division
                    # (the double nearest the time, as round(t + n * step, 6) gives, without
                    # float.__round__'s decimal conversion)
                    t_ms += n_steps * step_ms
                    if t_ms > end_ms:
                        t_ms = end_ms
                    target = t_ms / 1000
                    w = perf()
                    k = cpu()
                    ctl_time += w - w_open
                    ctl_cpu += k - k_open
                    step_until(target)
                    k_open = cpu()
                    w_open = perf()
                    step_time += w_open - w
                    step_cpu += k_open - k
                    t = target
                    if bar is not None and t - last_bar >= 60:
                        bar.update(bar.task_ids[0], completed=t - sc.begin)
                        last_bar = t
                tick(t)
                ctl_time += perf() - w_open
                ctl_cpu += cpu() - k_open
                if counter is not None:  # loop counts read inside act() are state reading
                    ctl_time -= counter.read_time
                    state_time += counter.read_time
                    ctl_cpu -= counter.read_cpu
                    state_cpu += counter.read_cpu
        finally:
            if bar is not None:
                bar.stop()
        sim.close()
        trips = read_tripinfo(sim.tripinfo_file, sc.measure_begin)
        network = network_kpis(sim.statistics_file, trips)
    finally:
        if sim is not None:
            if own_work:
                sim.cleanup()
            else:
                sim.close()
        if own_work:
            shutil.rmtree(workdir, ignore_errors=True)
    return EpisodeResult(
        scenario_id=sc.id, controller=str(ctl.name), seed=seed,
        trips=trips, network=network, wall_time=time.perf_counter() - t_start,
        controller_time=ctl_time, decisions=decisions, sim_time=sc.duration,
        state_time=state_time, step_time=step_time, cpu_time=time.thread_time() - cpu_start,
        controller_cpu=ctl_cpu, state_cpu=state_cpu, step_cpu=step_cpu,
    )
