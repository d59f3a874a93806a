"""Signal preemption: take a signal from its controller for a set of links, safely, and hand it back.

:class:`Preemptor` is the one place where a signal is overridden for an emergency vehicle
(``sim.priority`` decides when; the NTCIP emulator may mirror the same calls).  Its API is
three calls: :meth:`Preemptor.request` ("serve links L of signal X now"),
:meth:`Preemptor.clear` ("the vehicle has passed") and :meth:`Preemptor.poll` (advance the
per-signal state machines to the time now; the episode loop calls it every step while
anything is active, :attr:`Preemptor.next_time`).

Rules (the same for every controller, SUMO-native ones included):

* **Entry.** The hold state is the signal's green stage holding the requested links.  Links
  green now and in that stage stay green; every other link green (or already yellow) now shows
  yellow for the signal's yellow time, then every link not kept green shows red for its
  all-red time, then the hold stage turns green.  A change that only adds green links to a
  green stage needs no clearance; from an all-red of the signal's own program a full all-red
  is served again (its elapsed part is not trusted).  Never an instant switch.
* **Minimum green.** A green losing links is not ended before it has been shown
  ``min_green`` seconds (default 5 s: the plan checks' 4 s floor plus a margin; SUMO's
  ``getSpentDuration`` of the phase shown, which can only under-state how long the links have
  been green, so the wait is conservative).  Until then the controller keeps the signal.
* **Hold.** The hold stage stays green until :meth:`Preemptor.clear` (or ``max_hold``).
* **Exit and recovery.** Adaptive control (every actuator-driven controller, SUMO actuated
  programs) resumes in the hold stage: the actuator is handed the signal back
  (:meth:`~sim.actuator.SignalActuator.resume`), a native program goes back to its phase
  showing that stage.  A fixed-time program (SUMO ``static``) is returned to coordination
  with one of :data:`RECOVERY` strategies, measured against the plan's own clock (its cycle
  position when the signal was first taken, running on):

  - ``immediate``: after the exit clearance, jump to where the plan is now;
  - ``short-way``: resume in the hold stage, then shorten each following green (at most
    ``short_max`` of the cycle per cycle, never below ``min_green``) until the offset is back;
  - ``long-way``: the same, lengthening greens (at most ``long_max`` of the cycle per cycle);
  - ``best-way`` (default): the one of the two that needs fewer cycles.

Why not a controller: a preemption must also override SUMO's own programs, which no
controller drives; doing it with SUMO's ``setRedYellowGreenState`` here keeps the actuator's
event loop untouched (it is only told to let go of, then take back, one signal).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sim.errors import WulinError

GREEN = "Gg"
RECOVERY = ("best-way", "short-way", "long-way", "immediate")
IDLE, WAIT, YELLOW, ALL_RED, HOLD, EXIT_YELLOW, EXIT_ALL_RED, RECOVER = range(8)
MODE_NAMES = ("idle", "wait", "yellow", "all-red", "hold", "exit-yellow", "exit-all-red", "recover")
_EPS = 1e-6


@dataclass(frozen=True)
class PreemptTiming:
    """One signal's clearance and limits, seconds."""

    yellow: float = 3.0
    all_red: float = 2.0
    min_green: float = 5.0
    max_hold: float = 180.0


def program_clearance(phases: Any) -> tuple[float, float]:
    """(yellow, all-red) of a program: its longest yellow phase and longest all-red phase
    (3 s and 2 s where it has none, the plan checks' usual values)."""
    yellow = max((p.duration for p in phases if "y" in p.state), default=3.0)
    all_red = max((p.duration for p in phases
                   if not any(c in GREEN or c == "y" for c in p.state)), default=2.0)
    return max(yellow, 3.0), max(all_red, 1.0)


def clearance_states(shown: str, hold: str) -> tuple[str, str]:
    """The yellow and all-red from ``shown`` towards the stage ``hold``: links green in both
    stay green; other links green or yellow now show ``y``, then ``r``."""
    yellow = "".join(c if (c in GREEN and h in GREEN) else ("y" if c in GREEN or c == "y" else "r")
                     for c, h in zip(shown, hold, strict=True))
    red = "".join(c if (c in GREEN and h in GREEN) else "r" for c, h in zip(shown, hold, strict=True))
    return yellow, red


def needs_yellow(shown: str, hold: str) -> bool:
    """True when some link green (or yellow) in ``shown`` is not green in ``hold``."""
    return any((c in GREEN and h not in GREEN) or c == "y" for c, h in zip(shown, hold, strict=True))


@dataclass
class _Plan:
    """A static program's clock: durations per phase and the cycle position at ``t0``."""

    durations: list[float]
    states: list[str]
    pos0: float
    t0: float

    @property
    def cycle(self) -> float:
        return sum(self.durations)

    def position(self, t: float) -> float:
        return (self.pos0 + t - self.t0) % self.cycle

    def start(self, k: int) -> float:
        return sum(self.durations[:k])

    def phase_at(self, pos: float) -> tuple[int, float]:
        """(phase index, seconds into it) at cycle position ``pos``."""
        acc = 0.0
        for k, d in enumerate(self.durations):
            if pos < acc + d - _EPS:
                return k, pos - acc
            acc += d
        return 0, 0.0


@dataclass
class _Signal:
    """One signal's preemption state."""

    sid: str
    index: int
    stages: tuple[str, ...]
    timing: PreemptTiming
    mode: int = IDLE
    hold: str = ""
    stage: int = -1
    until: float = math.inf  # when the running clearance ends
    red_state: str = ""
    hold_start: float = math.nan
    program: str = ""  # the native program taken over ("" when the actuator had it)
    states: list[str] = field(default_factory=list)  # its phases' states
    static: bool = False
    plan: _Plan | None = None
    target_phase: int = -1  # immediate recovery: the program phase to hand back at
    correction: float = 0.0  # recovery: seconds still to shorten (> 0) or lengthen (< 0)
    last_phase: int = -1
    release: bool = False  # cleared during the entry clearance: hand back when it ends
    requested_at: float = math.nan
    log: list[tuple[float, str]] = field(default_factory=list)


class Preemptor:
    """Overrides signals for emergency vehicles; see the module docstring for the rules.

    Args:
        sim: A running :class:`~sim.simulation.Simulation` (``conn.trafficlight``).
        specs: ``SignalSpec`` per signal id (stages, phases), in the layout's order.
        actuator: The :class:`~sim.actuator.SignalActuator` when an actuator-driven controller
            runs the signals (``None`` for SUMO-native controllers).
        recovery: How a fixed-time program returns to coordination (:data:`RECOVERY`).
        min_green: Minimum green kept before a green may end, seconds.
        max_hold: Longest hold, seconds (a request never cleared ends then).
        short_max, long_max: Share of the cycle a recovery may take off / add per cycle.

    Attributes:
        events: ``(time, signal, what)`` for every mode change (the report's timeline).
    """

    def __init__(self, sim: Any, specs: Any, actuator: Any = None, *, recovery: str = "best-way",
                 min_green: float = 5.0, max_hold: float = 180.0, short_max: float = 0.2,
                 long_max: float = 0.3) -> None:
        if recovery not in RECOVERY:
            raise WulinError(f"preemption recovery {recovery!r}: use one of {', '.join(RECOVERY)}")
        self.sim = sim
        self.actuator = actuator
        self.recovery = recovery
        self.short_max, self.long_max = float(short_max), float(long_max)
        self.signals: dict[str, _Signal] = {}
        for i, spec in enumerate(specs):
            yellow, all_red = program_clearance(spec.phases)
            if actuator is not None:
                yellow, all_red = float(actuator.yellow[i]), max(float(actuator.all_red[i]), 1.0)
            self.signals[spec.id] = _Signal(spec.id, i, tuple(spec.stages),
                                            PreemptTiming(yellow, all_red, min_green, max_hold))
        self.events: list[tuple[float, str, str]] = []
        self._tl = sim.conn.trafficlight

    # ------------------------------------------------------------------ the API
    def request(self, signal: str, links: set[int] | list[int], now: float) -> bool:
        """Preempt ``signal`` for ``links`` (link indices of its state string) from ``now``.

        A signal already preempted keeps its running request; one recovering starts again.

        Returns:
            True when the request runs: accepted now, or the signal is already being
            preempted for a stage that serves the links (a second vehicle shares it).  False
            when the signal is preempted for conflicting links: ask again later.

        Raises:
            WulinError: unknown signal, or no green stage of the signal serves the links.
        """
        st = self._signal(signal)
        if st.mode not in (IDLE, RECOVER):
            shared = st.mode in (YELLOW, ALL_RED, HOLD) and not st.release
            return shared and all(i < len(st.hold) and st.hold[i] in GREEN for i in links)
        stage = self._stage_for(st, set(links))
        st.stage, st.hold = stage, st.stages[stage]
        st.requested_at = now
        st.release = False
        self._set(st, WAIT, now)
        self._step(st, now)
        return True

    def clear(self, signal: str, now: float) -> None:
        """The vehicle has passed ``signal``: end the hold (or drop a request not yet begun)."""
        st = self._signal(signal)
        if st.mode == WAIT:
            self._set(st, IDLE, now)
        elif st.mode in (YELLOW, ALL_RED):  # the clearance runs out first, never cut
            st.release = True
        elif st.mode == HOLD:
            self._exit(st, now, st.hold)

    def active(self, signal: str) -> bool:
        """True while ``signal`` is taken from its controller (clearance, hold or exit)."""
        return self._signal(signal).mode in (YELLOW, ALL_RED, HOLD, EXIT_YELLOW, EXIT_ALL_RED)

    def mode(self, signal: str) -> str:
        """``signal``'s mode: one of :data:`MODE_NAMES`."""
        return MODE_NAMES[self._signal(signal).mode]

    @property
    def busy(self) -> bool:
        """True while any signal is not idle (the loop then polls every step)."""
        return any(st.mode != IDLE for st in self.signals.values())

    def poll(self, now: float) -> None:
        """Advance every signal's state machine to ``now`` (call every step while busy)."""
        for st in self.signals.values():
            if st.mode != IDLE:
                self._step(st, now)

    # ------------------------------------------------------------------ internals
    def _signal(self, signal: str) -> _Signal:
        st = self.signals.get(signal)
        if st is None:
            raise WulinError(f"preemption: no signal {signal!r} in the network")
        return st

    @staticmethod
    def _stage_for(st: _Signal, links: set[int]) -> int:
        best, served = -1, 0
        for k, state in enumerate(st.stages):
            n = sum(1 for i in links if i < len(state) and state[i] in GREEN)
            if n > served:
                best, served = k, n
        if best < 0:
            raise WulinError(f"preemption: no green stage of signal {st.sid!r} serves links "
                             f"{sorted(links)}")
        return best

    def _set(self, st: _Signal, mode: int, now: float) -> None:
        st.mode = mode
        self.events.append((now, st.sid, MODE_NAMES[mode]))

    def _show(self, st: _Signal, state: str) -> None:
        self._tl.setRedYellowGreenState(st.sid, state)

    def _step(self, st: _Signal, now: float) -> None:
        mode = st.mode
        if mode == WAIT:
            self._try_enter(st, now)
        elif mode in (YELLOW, EXIT_YELLOW) and now + _EPS >= st.until:
            self._show(st, st.red_state)
            st.until = now + st.timing.all_red
            self._set(st, ALL_RED if mode == YELLOW else EXIT_ALL_RED, now)
        elif mode == ALL_RED and now + _EPS >= st.until:
            if st.release:  # the vehicle went by during the clearance: no hold green
                st.hold_start = now
                self._exit(st, now, st.red_state)
            else:
                self._begin_hold(st, now)
        elif mode == HOLD and now - st.hold_start >= st.timing.max_hold - _EPS:
            self._exit(st, now, st.hold)
        elif mode == EXIT_ALL_RED and now + _EPS >= st.until:
            self._hand_back(st, now)
        elif mode == RECOVER:
            self._recover(st, now)

    def _try_enter(self, st: _Signal, now: float) -> None:
        """Take the signal once the green it shows may end (minimum green)."""
        shown = self._tl.getRedYellowGreenState(st.sid)
        if shown == st.hold:
            self._take(st, now)
            self._begin_hold(st, now)
            return
        if needs_yellow(shown, st.hold):
            if shown in st.stages and self._tl.getSpentDuration(st.sid) < st.timing.min_green - _EPS:
                return  # the green has not run its minimum: the controller keeps it
            self._take(st, now)
            yellow, st.red_state = clearance_states(shown, st.hold)
            self._show(st, yellow)
            st.until = now + st.timing.yellow
            self._set(st, YELLOW, now)
            return
        self._take(st, now)
        if shown in st.stages:  # only adds green links: the hold stage at once
            self._begin_hold(st, now)
        else:  # the program's own all-red: served again in full
            st.red_state = clearance_states(shown, st.hold)[1]
            self._show(st, st.red_state)
            st.until = now + st.timing.all_red
            self._set(st, ALL_RED, now)

    def _take(self, st: _Signal, now: float) -> None:
        """Take the signal from its controller (the plan clock is read the first time)."""
        if self.actuator is not None:
            self.actuator.suspend(st.index)
            st.program = ""
            return
        tl = self._tl
        st.program = tl.getProgram(st.sid)
        logic = next((lg for lg in tl.getAllProgramLogics(st.sid) if lg.programID == st.program),
                     None)
        phases = list(logic.phases) if logic is not None else []
        st.states = [p.state for p in phases]
        st.static = logic is not None and int(logic.type) == 0
        if st.static and st.plan is None:
            k = tl.getPhase(st.sid)
            durations = [float(p.duration) for p in phases]
            pos = sum(durations[:k]) + float(tl.getSpentDuration(st.sid))
            st.plan = _Plan(durations, list(st.states), pos, now)

    def _begin_hold(self, st: _Signal, now: float) -> None:
        self._show(st, st.hold)
        st.hold_start = now
        st.until = math.inf
        self._set(st, HOLD, now)

    def _exit(self, st: _Signal, now: float, shown: str) -> None:
        """End the hold (``shown`` is on): hand back now, or after an exit clearance when the
        program resumes in a phase that does not hold the green shown."""
        target = self._return_phase(st, now) if self.actuator is None else -1
        st.target_phase = target
        if target >= 0 and needs_yellow(shown, st.states[target]):
            yellow, st.red_state = clearance_states(shown, st.states[target])
            self._show(st, yellow)
            st.until = now + st.timing.yellow
            self._set(st, EXIT_YELLOW, now)
            return
        self._hand_back(st, now)

    def _return_phase(self, st: _Signal, now: float) -> int:
        """The SUMO program's phase to resume in: ``-1`` for the one showing the hold stage;
        for ``immediate`` recovery, the green the plan shows once an exit clearance ends; a
        program with no phase showing the hold stage resumes at its first green."""
        plan = st.plan
        if plan is not None and st.static and self.recovery == "immediate":
            k, _ = plan.phase_at(plan.position(now + st.timing.yellow + st.timing.all_red))
        elif st.hold in st.states:
            return -1
        else:
            k = 0
        n = len(st.states)
        return next(((k + j) % n for j in range(n) if st.states[(k + j) % n] in st.stages), k)

    def _hand_back(self, st: _Signal, now: float) -> None:
        if self.actuator is not None:
            self.actuator.resume(st.index, st.stage, st.hold_start)
            self._set(st, IDLE, now)
            return
        tl = self._tl
        tl.setProgram(st.sid, st.program)
        plan = st.plan if st.static else None
        if st.target_phase >= 0:  # immediate, or no phase shows the hold stage
            k = st.target_phase
            tl.setPhase(st.sid, k)
            if plan is not None:  # where the plan is now (or its next green)
                cur, into = plan.phase_at(plan.position(now))
                into = into if cur == k else 0.0
                tl.setPhaseDuration(st.sid, max(plan.durations[k] - into, st.timing.min_green))
            self._set(st, IDLE, now)
            return
        if plan is None:  # adaptive (SUMO actuated): resume in the hold stage
            tl.setPhase(st.sid, st.states.index(st.hold))
            self._set(st, IDLE, now)
            return
        self._start_recovery(st, plan, now)

    def _start_recovery(self, st: _Signal, plan: _Plan, now: float) -> None:
        """Resume in the hold stage's phase and book the offset error to correct."""
        g = plan.states.index(st.hold)
        held = now - st.hold_start
        left = max(plan.durations[g] - held, 1.0)
        self._tl.setPhase(st.sid, g)
        self._tl.setPhaseDuration(st.sid, left)
        actual = plan.start(g) + plan.durations[g] - left
        lag = (plan.position(now) - actual) % plan.cycle  # the program is this far behind
        c = plan.cycle
        strategy = self.recovery
        if strategy == "best-way":
            short_cycles = lag / (self.short_max * c) if self.short_max > 0 else math.inf
            long_cycles = (c - lag) / (self.long_max * c) if self.long_max > 0 else math.inf
            strategy = "short-way" if short_cycles <= long_cycles else "long-way"
        st.correction = lag if strategy == "short-way" else -(c - lag)
        st.last_phase = g
        self._set(st, RECOVER if abs(st.correction) >= 0.5 else IDLE, now)

    def _recover(self, st: _Signal, now: float) -> None:
        """At each green the program begins, take off (or add) its share of the correction."""
        plan = st.plan
        assert plan is not None
        k = self._tl.getPhase(st.sid)
        if k == st.last_phase:
            return
        st.last_phase = k
        if plan.states[k] not in st.stages:
            return
        greens = sum(d for d, s in zip(plan.durations, plan.states, strict=True) if s in st.stages)
        dur = plan.durations[k]
        if st.correction > 0:
            share = self.short_max * plan.cycle * dur / greens
            delta = -min(st.correction, share, max(dur - st.timing.min_green, 0.0))
        else:
            share = self.long_max * plan.cycle * dur / greens
            delta = min(-st.correction, share)
        spent = float(self._tl.getSpentDuration(st.sid))
        self._tl.setPhaseDuration(st.sid, max(dur + delta - spent, 0.0))
        st.correction += delta
        if abs(st.correction) < 0.5:
            self._set(st, IDLE, now)
