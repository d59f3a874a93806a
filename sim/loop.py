"""The one time arithmetic of every loop that drives SUMO: whole milliseconds on the step grid.

SUMO's clock counts whole milliseconds.  A loop that advances SUMO "to the next step at or
after ``due``" keeps the time as an integer count of milliseconds and adds whole steps to it,
so the target it hands ``step_until`` is the double nearest the exact time (what
``round(t + n * step, 6)`` gives, without ``float.__round__``'s decimal conversion) and no
error accumulates over an episode.  The episode loop (``experiments.episode``), both
environments (``sim.env``) and the actuator's booking of armed changes (``sim.actuator``) use
this module and nothing else for that arithmetic, so they stop at the same instants.
"""

from __future__ import annotations

import math
import time
from typing import Any


def steps_until(now: float, due: float, step: float) -> int:
    """Whole steps from ``now`` to the first step at or after ``due``; at least one."""
    n = math.ceil((due - now) / step - 1e-6)
    return n if n > 1 else 1


def stop_after(now: float, due: float, step: float) -> float:
    """The first step at or after ``due`` (at least one step after ``now``), in seconds.

    (:func:`steps_until` written out: the actuator calls this at every armed change.)"""
    n = math.ceil((due - now) / step - 1e-6)
    return (round(now * 1000) + (n if n > 1 else 1) * round(step * 1000)) / 1000


class StepClock:
    """A loop's clock on SUMO's step grid, in whole milliseconds.

    Args:
        now: The simulation time now, seconds.
        step: SUMO's step length, seconds.
        end: The time the loop ends, seconds (no stop is ever later).

    Attributes:
        time: The time now, seconds (``ms / 1000``).
        end: The end, seconds.
    """

    __slots__ = ("ms", "step", "step_ms", "end", "end_ms", "time")

    def __init__(self, now: float, step: float, end: float) -> None:
        self.ms = round(now * 1000)
        self.step = step
        self.step_ms = round(step * 1000)
        self.end = end
        self.end_ms = round(end * 1000)
        self.time = now

    def stop_for(self, due: float) -> float:
        """Move to the first step at or after ``due`` (a finite time; at least one step on, at
        most the end) and return that time: what to hand ``step_until``."""
        ms = self.ms + steps_until(self.time, due, self.step) * self.step_ms
        if ms > self.end_ms:
            ms = self.end_ms
        self.ms = ms
        self.time = t = ms / 1000
        return t

    @property
    def done(self) -> bool:
        """True once the clock has reached its end."""
        return self.time >= self.end - 1e-9

    def later(self, seconds: float) -> float:
        """The time ``seconds`` from now as whole steps (at least one), at most the end; the
        clock does not move."""
        n = round(seconds / self.step)
        ms = self.ms + (n if n > 1 else 1) * self.step_ms
        return (ms if ms < self.end_ms else self.end_ms) / 1000


CONTROLLER, STATE, STEP, OTHER = 0, 1, 2, 3
_perf = time.perf_counter
_cpu = time.thread_time


class Stopwatch:
    """The episode's one stopwatch: wall and thread-CPU seconds per account.

    The loop alternates controller work, state reading and SUMO steps; :meth:`switch` closes
    the running account and opens the next.  The CPU clock is read after the wall clock
    closes an account and before it opens the next, so its cost (µs on the caches SUMO's
    steps leave cold) is booked to no account's wall time.
    """

    __slots__ = ("wall", "cpu", "account", "_w0", "_k0")

    def __init__(self) -> None:
        self.wall = [0.0, 0.0, 0.0, 0.0]
        self.cpu = [0.0, 0.0, 0.0, 0.0]
        self.account = OTHER
        self._w0 = _perf()
        self._k0 = _cpu()

    def switch(self, account: int) -> None:
        """Close the running account and open ``account``."""
        w = _perf()
        k = _cpu()
        self.wall[self.account] += w - self._w0
        self.cpu[self.account] += k - self._k0
        self.account = account
        self._k0 = k
        self._w0 = _perf()

    def move(self, wall: float, cpu: float, source: int, dest: int) -> None:
        """Re-book seconds measured inside one account as another's (loop counts)."""
        self.wall[source] -= wall
        self.wall[dest] += wall
        self.cpu[source] -= cpu
        self.cpu[dest] += cpu



def advance_events(sim: Any, actuator: Any, clock: StepClock, until: float,
                   watch: Stopwatch | None = None) -> float:
    """THE event-to-event loop: advance SUMO to ``until``, stopping only at actuator events.

    Between the actuator's events nothing changes, so SUMO advances in one ``step_until``
    call straight to the next step at which anything is due (``actuator.next_event`` or
    ``until``), and the actuator is ticked there.  The trajectory is the one that ticking
    every step would give, at a fraction of the Python cost.  The episode loop calls this
    between decisions, the environments between steps.

    This runs at every stop on caches SUMO's step leaves cold, where each Python call costs
    µs: the clock's arithmetic (:meth:`StepClock.stop_for`) and the stopwatch's two switches
    around the SUMO call are written out here.

    Args:
        sim: The running simulation (``step_until``).
        actuator: The :class:`~sim.actuator.SignalActuator` (``next_event``, ``tick``).
        clock: The loop's clock, at the time now; it moves with SUMO.
        until: Where to stop: a step of the clock's grid, or its end.
        watch: The episode's stopwatch, in its ``CONTROLLER`` account: SUMO's calls are booked
            to ``STEP``, the rest stays the controller's.

    Returns:
        The time reached; the actuator is NOT ticked there (the caller ticks before it reads
        or decides anything).
    """
    step_until = sim.step_until
    ms, step, step_ms, end_ms = clock.ms, clock.step, clock.step_ms, clock.end_ms
    t = clock.time
    ceil = math.ceil
    # the stopwatch's two accounts, kept in locals and added once on return
    ctl_wall = ctl_cpu = step_wall = step_cpu = 0.0
    w0, k0 = (watch._w0, watch._k0) if watch is not None else (0.0, 0.0)
    while True:
        ne = actuator.next_event
        due = until if until < ne else ne
        n = ceil((due - t) / step - 1e-6)
        ms += (n if n > 1 else 1) * step_ms
        if ms > end_ms:
            ms = end_ms
        t = ms / 1000
        if watch is None:
            step_until(t)
        else:
            w = _perf()
            k = _cpu()
            ctl_wall += w - w0
            ctl_cpu += k - k0
            step_until(t)
            k0 = _cpu()
            w0 = _perf()
            step_wall += w0 - w
            step_cpu += k0 - k
        if t >= until - 1e-9 or ms >= end_ms:
            clock.ms = ms
            clock.time = t
            if watch is not None:
                watch.wall[CONTROLLER] += ctl_wall
                watch.cpu[CONTROLLER] += ctl_cpu
                watch.wall[STEP] += step_wall
                watch.cpu[STEP] += step_cpu
                watch._w0 = w0
                watch._k0 = k0
            return t
        if t + 1e-6 >= actuator.next_event:  # an actuator event is due (tick's own test)
            actuator.tick(t)
