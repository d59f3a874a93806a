"""``SignalActuator``: turns "serve stage k" into safe SUMO signal states, for every controller.

Rules, enforced here in one place for fixed-time, max-pressure, SOTL and RL alike:

* A stage change goes green -> yellow (links losing green show ``y``) -> all-red (they show
  ``r``) -> the new green.  Links green in both the old and the new stage stay green
  throughout; a change that only adds green links needs no clearance and happens at once.
* Minimum green is honoured before a change; a request made earlier waits for it.
* Maximum green forces a change to the next stage in cycle order when nothing else is asked.
* No decision is skipped silently: a request made during a transition (or during minimum
  green) is queued and served as soon as the rules allow.  A later request replaces an earlier
  one that has not begun; asking for the current stage cancels a queued change.

Every emitted state is a green stage of the network, or one derived from it by turning links
to ``y``/``r``, so no two protected links that SUMO marks as foes are ever green together
(provided the network's stages are safe, which ``tests/test_actuator.py`` checks).

How: SUMO runs every clearance itself.  At :meth:`SignalActuator.reset` each signal gets one
program (:func:`actuator_program`) holding, per stage, its green and then, per stage it may
change to, the yellow and all-red of that change, whose ``next`` leads to the new green; and
per stage pair a copy of the green whose ``next`` is that change ("armed" greens).  SUMO ends
each phase at the first step at or after its end, so when a green ends the whole change is
known: it is booked as one :class:`BookedChange` (when its yellow, all-red and new green
begin), and the views derive mode, stage and stage time from those times and the clock.  The
ends of clearances cost no Python at all; Python acts only when a green must end (a request
after minimum green, maximum green): :attr:`SignalActuator.next_event`.

* A request that must wait for minimum green is armed: the green shown switches to its copy
  leading to the change (same state, vehicles see nothing) with the rest of the minimum as its
  duration, and the change is booked at the step where the loop would have stopped.  A later
  request re-arms or disarms it.
* :meth:`SignalActuator.run_cycle` hands SUMO a signal's whole next cycle (every stage in order
  with its green, the clearances between them) as a program of that cycle's phases only, so
  a controller that plans a cycle at a time (webster-online) costs Python one stop per cycle
  per signal.  A stage change outside a cycle re-sends the base program first.

Per-signal bookkeeping lives in plain Python lists (a numpy scalar read or write costs
~100 ns, a list element ~10 ns, and events touch one signal at a time); the numpy views are
built on demand.  The per-decision path calls no numpy function.

The plain reference that writes every state with ``setRedYellowGreenState`` and ticks every
step lives with the tests (``tests/actuator_reference.py``): the property tests replay every
SUMO call this actuator makes as a static program and check the states shown against it, step
by step.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from sim.errors import WulinError
from sim.loop import stop_after
from sim.topology import GREEN

if TYPE_CHECKING:
    from sim.state import DistrictLayout

GREEN_MODE, YELLOW_MODE, ALL_RED_MODE = 0, 1, 2
_EPS = 1e-6
_HOLD = 1e7  # a green lasts until the actuator (or its cycle program) ends it
PROGRAM_ID = "wulin-actuator"


class HistoryEntry(NamedTuple):
    """One state shown by one signal (record mode)."""

    time: float
    signal: int
    state: str


class Transition(NamedTuple):
    """How signal ``s`` changes from stage ``i`` to stage ``j`` in its base program.

    Attributes:
        phase: The program phase the change begins with (its yellow, or the new green when
            no link loses green).
        yellow_state: The yellow state string ("" when no link loses green).
        red_state: The all-red state ("" when no link loses green; the yellow when there is
            no all-red).
    """

    phase: int
    yellow_state: str
    red_state: str


class BookedChange(NamedTuple):
    """A stage change SUMO runs (or will run): when each part begins, from which stage to which.

    ``red_start == green_start`` when there is no all-red, and all three are equal when the
    change only adds green links.
    """

    yellow_start: float
    red_start: float
    green_start: float
    old: int
    new: int
    yellow_state: str
    red_state: str


# builds a NamedTuple from a tuple in C (the generated __new__ is a Python frame: µs on cold
# caches, and changes are booked on the per-decision path)
_new = tuple.__new__


def per_signal(value: Any, n: int, name: str) -> np.ndarray:
    """A scalar or one value per signal, as a float array of ``n``, finite and >= 0.

    Raises:
        WulinError: wrong shape, or a negative or non-finite value.
    """
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise WulinError(f"SignalActuator: {name} must be a number or one value per signal ({n}), "
                         f"got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or (arr < 0).any():
        raise WulinError(f"SignalActuator: {name} must be finite and >= 0 seconds")
    return arr


def green_mask(state: str) -> int:
    """The green links of a state string as an int bitmask."""
    return sum(1 << i for i, c in enumerate(state) if c in GREEN)


def clearance_state(old: str, new_green: int, char: str) -> str:
    """The clearance from state ``old`` towards a stage whose green links are ``new_green``:
    links green in both stay green, other green links show ``char`` (``y`` or ``r``)."""
    return "".join(
        c if (c in GREEN and new_green >> i & 1) else (char if c in GREEN else "r")
        for i, c in enumerate(old)
    )


class ActuatorTiming(NamedTuple):
    """One signal's actuator timing, seconds."""

    yellow: float
    all_red: float
    min_green: float
    max_green: float


def actuator_program(stages: list[str], timing: ActuatorTiming, tl: Any
                     ) -> tuple[Any, list[list[Transition]], list[list[int]]]:
    """The base program of one signal, laid out so that its listed order is itself valid.

    Per stage ``i``: its green, then for every stage ``j`` it may change to with links losing
    green, the yellow (and all-red) of that change; after all stages, per pair ``(i, j)`` an
    armed copy of green ``i`` whose ``next`` is the change to ``j``.  Each green's list
    successor is therefore its own yellow (or the next green when no link loses green), so
    SUMO's check of the listed order finds no green followed by red without yellow.  The
    actuator never lets SUMO step through the list: greens hold until switched, and every
    clearance's ``next`` names the green it leads to.

    Returns:
        The ``Logic``, the :class:`Transition` of every stage pair ``[i][j]`` (``[i][i]`` is
        green ``i`` itself) and the armed copy of every pair (``-1`` on the diagonal).
    """
    phase = tl.Phase
    k_n = len(stages)
    masks = [green_mask(st) for st in stages]
    # first pass: where each green and each clearance sits in the list
    green_at: list[int] = []
    clearing: dict[tuple[int, int], int] = {}
    n_clear = 2 if timing.all_red > 0 else 1
    pos = 0
    for i in range(k_n):
        green_at.append(pos)
        pos += 1
        for j in range(k_n):
            if j != i and masks[i] & ~masks[j]:
                clearing[(i, j)] = pos
                pos += n_clear
    phases: list[Any] = []
    plan = [[Transition(green_at[j], "", "") for j in range(k_n)] for _ in range(k_n)]
    for i in range(k_n):
        phases.append(phase(_HOLD, stages[i], _HOLD, _HOLD))
        for j in range(k_n):
            if (i, j) not in clearing:
                continue
            y = clearing[(i, j)]
            ystate = clearance_state(stages[i], masks[j], "y")
            rstate = clearance_state(stages[i], masks[j], "r")
            if timing.all_red > 0:
                phases.append(phase(timing.yellow, ystate, timing.yellow, timing.yellow, (y + 1,)))
                phases.append(phase(timing.all_red, rstate, timing.all_red, timing.all_red,
                                    (green_at[j],)))
                plan[i][j] = Transition(y, ystate, rstate)
            else:  # with no all-red the yellow leads straight to the green
                phases.append(phase(timing.yellow, ystate, timing.yellow, timing.yellow,
                                    (green_at[j],)))
                plan[i][j] = Transition(y, ystate, ystate)
    armed = [[-1] * k_n for _ in range(k_n)]
    for i in range(k_n):
        for j in range(k_n):
            if i != j:
                armed[i][j] = len(phases)
                phases.append(phase(_HOLD, stages[i], _HOLD, _HOLD, (plan[i][j].phase,)))
    return tl.Logic(PROGRAM_ID, 0, 0, phases), plan, armed


class SignalActuator:
    """Drives every signal of a layout from stage requests (SUMO runs the clearances).

    Args:
        sim: A started :class:`~sim.simulation.Simulation` (anything with ``.conn`` and
            ``.time`` works, which the property tests use).  Needs
            ``trafficlight.setProgramLogic``.
        layout: The signals.
        yellow: Yellow seconds (a scalar or one value per signal).
        all_red: All-red seconds.
        min_green: Minimum green seconds.
        max_green: Maximum green seconds (``inf`` for none).
        record: Keep every emitted state in :attr:`history` (entries of booked changes enter
            it once :meth:`tick` has reached their times).
        step_length: SUMO's step, seconds (``sim.scenario.step_length`` by default): SUMO
            ends a phase at the first step at or after its end, and so does the booking.

    Attributes:
        history: Every emitted state as a :class:`HistoryEntry` when ``record``.
        writes: Number of SUMO signal calls made (phase switches, durations, programs).
        next_event: Earliest time Python must act (``inf`` when none): advance SUMO to here.
            Only the ends of greens that Python must begin (maximum green, a change queued
            during a transition or a cycle), since SUMO ends clearances and armed greens
            itself.  A plain attribute, kept up to date by :meth:`request` and :meth:`tick`.
    """

    def __init__(
        self,
        sim: Any,
        layout: DistrictLayout,
        *,
        yellow: Any = 3.0,
        all_red: Any = 2.0,
        min_green: Any = 5.0,
        max_green: Any = 90.0,
        record: bool = False,
        step_length: float | None = None,
    ) -> None:
        n = layout.n_signals
        self.sim = sim
        self.layout = layout
        self.yellow = per_signal(yellow, n, "yellow")
        self.all_red = per_signal(all_red, n, "all_red")
        self.min_green = per_signal(min_green, n, "min_green")
        self.max_green = per_signal(max_green, n, "max_green")
        if (self.yellow <= 0).any():  # green -> red with no yellow is never allowed
            raise WulinError("SignalActuator: yellow must be > 0 seconds for every signal")
        bad = np.flatnonzero(self.max_green < self.min_green)
        if bad.size:
            raise WulinError(
                f"SignalActuator: max_green < min_green for signal {layout.signal_ids[bad[0]]!r}"
            )
        self.record = record
        if step_length is None:
            step_length = float(getattr(getattr(sim, "scenario", None), "step_length", 1.0))
        if not step_length > 0:
            raise WulinError(f"SignalActuator: step_length must be > 0, got {step_length}")
        self.step_length = float(step_length)
        self.history: list[HistoryEntry] = []
        self.writes = 0
        self.next_event = math.inf
        self._n = n
        self._shape = (n,)
        self._ids = list(layout.signal_ids)
        self._stages = [list(spec.stages) for spec in layout.specs]
        self.n_stages = np.array([len(s) for s in self._stages], dtype=np.int32)
        self._n_stages = self.n_stages.tolist()
        self._timing = [ActuatorTiming(*v) for v in zip(
            self.yellow.tolist(), self.all_red.tolist(), self.min_green.tolist(),
            self.max_green.tolist(), strict=True)]
        self._max_green_l = self.max_green.tolist()
        self._min_green_l = self.min_green.tolist()
        self._now = 0.0
        self._origin = 0.0  # the step grid's origin (the time of reset)
        self._reset_signals(0.0)

    def _reset_signals(self, now: float) -> None:
        """Every signal in stage 0's green since ``now``, nothing booked or requested."""
        n = self._n
        self._stage = [0] * n  # the green shown, or the one a running change leads to
        self._pending = [-1] * n  # the queued request
        # the current (or last) change of each signal: BookedChange's fields, as lists
        self._stage_left = [0] * n
        self._yellow_start = [now] * n
        self._red_start = [now] * n
        self._green_start = [now] * n
        self._yellow_state = [""] * n
        self._red_state = [""] * n
        self._python_due = [now + self._max_green_l[s] if self._n_stages[s] > 1 else math.inf
                            for s in range(n)]  # next time Python must end a green
        self._future: list[HistoryEntry] = []  # booked, not yet shown (record mode)
        # changes SUMO has not begun yet (a cycle's, or one armed change), per signal;
        # ``_booked`` lists the signals with any
        self._timeline: list[list[BookedChange]] = [[] for _ in range(n)]
        self._booked: set[int] = set()
        self._armed = [False] * n
        self._cycle_installed = [False] * n  # a cycle-only program is installed (run_cycle)
        self._cycle_sent: list[Any] = [None] * n  # (template key, durations) SUMO holds now
        # per signal, (stage shown, prefix) -> the cycle program's Logic and variable phases
        self._cycle_tpl: list[dict[tuple[int, bool], Any]] = [{} for _ in range(n)]

    # ------------------------------------------------------------------ public views
    def _synced(self) -> float:
        """Apply the booked changes SUMO has begun by now; returns the time limit (now +
        epsilon) the views compare the booked times with."""
        lim = self._now + _EPS
        if self._booked:
            self._sync(lim)
        return lim

    @property
    def stage(self) -> np.ndarray:
        """Current green stage per signal (the stage being left during a transition), int32."""
        lim = self._synced()
        return np.array([o if lim < g else c for o, c, g in
                         zip(self._stage_left, self._stage, self._green_start, strict=True)],
                        dtype=np.int32)

    @property
    def target(self) -> np.ndarray:
        """Stage a running transition leads to (``-1`` when in green), int32."""
        lim = self._synced()
        return np.array([c if lim < g else -1 for c, g in
                         zip(self._stage, self._green_start, strict=True)], dtype=np.int32)

    @property
    def pending(self) -> np.ndarray:
        """Queued request per signal (``-1`` when none), int32."""
        return np.array(self._pending, dtype=np.int32)

    @property
    def mode(self) -> np.ndarray:
        """0 green, 1 yellow, 2 all-red per signal, int8."""
        lim = self._synced()
        return np.array([GREEN_MODE if g <= lim else ALL_RED_MODE if r <= lim else YELLOW_MODE
                         for r, g in zip(self._red_start, self._green_start, strict=True)],
                        dtype=np.int8)

    @property
    def in_transition(self) -> np.ndarray:
        """True while a signal shows yellow or all-red."""
        lim = self._synced()
        return np.array([lim < g for g in self._green_start], dtype=np.bool_)

    @property
    def stage_time(self) -> np.ndarray:
        """Seconds since the current green (or transition) began, as float32."""
        lim = self._synced()
        return np.array(self._stage_times(lim), dtype=np.float32)

    def _stage_times(self, lim: float) -> list[float]:
        now = self._now
        return [now - (g if g <= lim else r if r <= lim else y) for y, r, g in
                zip(self._yellow_start, self._red_start, self._green_start, strict=True)]

    @property
    def due(self) -> np.ndarray:
        """Time of each signal's next event (``inf`` when none)."""
        lim = self._synced()
        need = [tl[0].yellow_start if armed else n  # an armed change begins at its booked time
                for tl, armed, n in zip(self._timeline, self._armed, self._python_due,
                                        strict=True)]
        return np.array([n if g <= lim else r + tm.all_red if r <= lim else y + tm.yellow
                         for y, r, g, n, tm in zip(self._yellow_start, self._red_start,
                                                   self._green_start, need, self._timing,
                                                   strict=True)], dtype=np.float64)

    @property
    def states(self) -> list[str]:
        """The state string currently shown by each signal."""
        lim = self._synced()
        return [st[c] if g <= lim else rs if r <= lim else ys for st, c, r, g, ys, rs in
                zip(self._stages, self._stage, self._red_start, self._green_start,
                    self._yellow_state, self._red_state, strict=True)]

    def views(self, time: float | None = None) -> tuple[list[int], list[float], list[bool]]:
        """``(stage, stage_time, in_transition)`` as plain lists, in one pass (the same values
        as the properties): what the episode loop writes into the state at every decision.

        Args:
            time: Advance to this simulation time first, exactly as :meth:`tick` does (one
                call instead of two where the loop decides).
        """
        if time is not None:
            if self._future or time + _EPS >= self.next_event:
                self.tick(time)
            else:  # nothing due: tick would only set the clock
                self._now = time
        # written out (not _synced() and _stage_times()): this runs at every decision, on
        # caches SUMO's step leaves cold, where each call costs µs
        now = self._now
        lim = now + _EPS
        if self._booked:
            self._sync(lim)
        green_start = self._green_start
        stage = [o if lim < g else c for o, c, g in zip(self._stage_left, self._stage,
                                                         green_start, strict=True)]
        stage_time = [now - (g if g <= lim else r if r <= lim else y) for y, r, g in
                      zip(self._yellow_start, self._red_start, green_start, strict=True)]
        return stage, stage_time, [lim < g for g in green_start]

    # ------------------------------------------------------------------ driving
    def reset(self) -> None:
        """Take control of every signal and start each one in its stage 0."""
        for s in range(self._n):
            if self._n_stages[s] == 0:
                raise WulinError(f"signal {self._ids[s]!r} has no green stage in its program")
        tl = self.sim.conn.trafficlight
        self._set_phase = tl.setPhase
        self._set_duration = tl.setPhaseDuration
        self._now = now = float(self.sim.time)
        self._origin = now
        self.history.clear()
        self.writes = 0
        self._reset_signals(now)
        self._install_programs()
        for s in range(self._n):
            self._set_phase(self._ids[s], self._plan[s][0][0].phase)
            self.writes += 1
            if self.record:
                self.history.append(HistoryEntry(now, s, self._stages[s][0]))
        self.next_event = min(self._python_due, default=math.inf)

    def _install_programs(self) -> None:
        """One base program per signal (:func:`actuator_program`), installed and selected."""
        tl = self.sim.conn.trafficlight
        self._plan: list[list[list[Transition]]] = []
        self._arm_phase: list[list[list[int]]] = []
        self._base_logic: list[Any] = []
        for s in range(self._n):
            logic, plan, armed = actuator_program(self._stages[s], self._timing[s], tl)
            tl.setProgramLogic(self._ids[s], logic)
            tl.setProgram(self._ids[s], PROGRAM_ID)
            self._base_logic.append(logic)
            self._plan.append(plan)
            self._arm_phase.append(armed)

    def request(self, decision: np.ndarray) -> None:
        """Ask each signal to serve a stage (``-1`` = no new request).

        Raises:
            WulinError: wrong shape or a stage a signal does not have.
        """
        # the common case (an int array of the right shape, all keep) touches little: this
        # runs at every decision on caches cold from SUMO's step
        d = decision if type(decision) is np.ndarray else np.asarray(decision)
        if d.shape != self._shape:
            raise WulinError(f"decision must have one entry per signal ({self._n}), "
                             f"got shape {d.shape}")
        ks = d.tolist()
        if ks.count(-1) != self._n:  # all keep (most decisions of most controllers): nothing
            self._request(ks)

    def tick(self, time: float | None = None) -> None:
        """Advance timers to the simulation time now; call after every SUMO advance.

        Between events nothing changes, so a loop may advance SUMO straight to
        :attr:`next_event` (rounded up to its step grid) and tick once.

        Args:
            time: The simulation time now (read from the simulation when omitted).
        """
        now = float(self.sim.time) if time is None else float(time)
        self._now = now
        if self._future:  # record mode: clearance ends SUMO has run by now enter the history
            self._flush(now)
        if now + _EPS < self.next_event:
            return
        self._advance(now)

    # ------------------------------------------------------------------ overrides
    def suspend(self, s: int) -> None:
        """Let go of signal ``s`` (``sim.preemption`` takes it): its request, booked changes
        and events are dropped and nothing is sent to SUMO for it until :meth:`resume`.
        Requests for it meanwhile are the caller's to hold back."""
        self._timeline[s].clear()
        self._booked.discard(s)
        self._armed[s] = False
        self._pending[s] = -1
        self._cycle_installed[s] = False
        self._cycle_sent[s] = None
        self._python_due[s] = math.inf
        self.next_event = min(self._python_due, default=math.inf)

    def resume(self, s: int, stage: int, green_start: float) -> None:
        """Take signal ``s`` back showing ``stage``'s green since ``green_start`` (its base
        program re-sent, the green held as usual; maximum green counts from ``green_start``)."""
        ident = self._ids[s]
        tl = self.sim.conn.trafficlight
        tl.setProgramLogic(ident, self._base_logic[s])
        tl.setProgram(ident, PROGRAM_ID)
        self._set_phase(ident, self._plan[s][stage][stage].phase)
        self.writes += 3
        now = self._now
        self._stage[s] = self._stage_left[s] = stage
        self._yellow_start[s] = self._red_start[s] = self._green_start[s] = green_start
        self._yellow_state[s] = self._red_state[s] = ""
        self._pending[s] = -1
        due = green_start + self._max_green_l[s] if self._n_stages[s] > 1 else math.inf
        self._python_due[s] = max(due, now + self._min_green_l[s])
        self.next_event = min(self._python_due, default=math.inf)
        if self.record:
            self.history.append(HistoryEntry(now, s, self._stages[s][stage]))

    # ------------------------------------------------------------------ internals
    def _bad(self, s: int, k: int) -> None:
        raise WulinError(
            f"decision for signal {self._ids[s]!r}: stage {k} does not exist "
            f"(valid: -1..{self._n_stages[s] - 1})"
        )

    def _clearance_ends(self, s: int, yellow_start: float) -> tuple[float, float]:
        """When signal ``s``'s all-red and new green begin after a yellow from ``yellow_start``.

        SUMO ends a phase at the first step at or after its end: ``t`` goes on the grid as
        ``origin + ceil((t - origin) / dt - 1e-6) * dt``, written out (this runs at every
        stage change, on caches SUMO's step leaves cold, where each Python call costs µs;
        :meth:`_cycle_changes` writes out the same rounding)."""
        timing = self._timing[s]
        origin, dt = self._origin, self.step_length
        red_start = origin + math.ceil((yellow_start + timing.yellow - origin) / dt - 1e-6) * dt
        all_red = timing.all_red
        if all_red > 0:
            return red_start, origin + math.ceil((red_start + all_red - origin) / dt - 1e-6) * dt
        return red_start, red_start

    def _flush(self, now: float) -> None:
        lim = now + _EPS
        due = [h for h in self._future if h.time <= lim]
        if due:
            due.sort(key=lambda h: h.time)  # armed changes are booked ahead of their time
            self.history.extend(due)
            self._future = [h for h in self._future if h.time > lim]

    def _request(self, ks: list[int]) -> None:
        n_stages, stage, pending, need = (self._n_stages, self._stage, self._pending,
                                          self._python_due)
        lim = self._now + _EPS  # (inline, not _synced(): this runs at every request)
        if self._booked:
            self._sync(lim)
        changed = False
        now_due: list[int] = []
        # signals with a change booked are exactly those in ``_booked``: a running cycle
        # (run_cycle) or an armed change; without any, the loop reads no timeline
        booked = self._booked
        armed = self._armed
        for s, k in enumerate(ks):
            if k == -1:
                continue
            if k < 0 or k >= n_stages[s]:
                self._bad(s, k)
            # ``stage`` is the green shown, or the one a running change leads to; with a cycle
            # booked (run_cycle), the cycle's last green, and changes wait for its minimum green
            in_cycle = bool(booked) and s in booked and not armed[s]
            if in_cycle:
                last = self._timeline[s][-1]
                new = -1 if k == last.new else k
                last_green = last.green_start
            else:  # an armed change has not begun: the green shown is still ``stage``
                new = -1 if k == stage[s] else k
                last_green = self._green_start[s]
            if new == pending[s]:
                continue
            was_armed = armed[s]
            if was_armed:
                self._disarm(s)
            pending[s] = new
            changed = True
            if new < 0:
                need[s] = last_green + self._max_green_l[s] if n_stages[s] > 1 else math.inf
                if was_armed:  # the green goes on, as the base program holds it
                    self._set_phase(self._ids[s], self._plan[s][stage[s]][stage[s]].phase)
                    self.writes += 1
                continue
            due = last_green + self._min_green_l[s]
            if due <= lim:  # e.g. minimum green already served: act now
                need[s] = due
                now_due.append(s)
            elif in_cycle or self._green_start[s] > lim:
                # a cycle runs, or a change has not reached its green: Python changes it once
                # the (last) green may end
                need[s] = due
            else:  # SUMO ends the green when its minimum is served
                self._arm(s, new, due)
        if changed:
            now = self._now
            for s in now_due:  # (the requests are all valid: changes begin only now)
                self._change(s, now)
                if need[s] <= lim:  # rare: the new green may end at once too
                    self._change_until_green(s, now, lim)
            self.next_event = min(need)
            if self.next_event <= lim:
                self._advance(now)

    def _arm(self, s: int, nxt: int, due: float) -> None:
        """Hand SUMO the change of signal ``s`` to stage ``nxt`` at ``due`` (its minimum green).

        The green shown switches to its copy that leads to the change, with the rest of the
        green as its duration: SUMO begins the change at the first step at or after ``due``
        (where the loop would have stopped), and the change is booked now as one entry of
        the timeline, so Python does not stop for it.  A later request re-arms or disarms it.
        """
        now = self._now
        yellow_start = stop_after(now, due, self.step_length)  # the loop's next stop
        cur = self._stage[s]
        tr = self._plan[s][cur][nxt]
        if tr.yellow_state:
            red_start, green_start = self._clearance_ends(s, yellow_start)
        else:
            red_start = green_start = yellow_start
        self._timeline[s].append(_new(BookedChange, (yellow_start, red_start, green_start, cur,
                                                     nxt, tr.yellow_state, tr.red_state)))
        self._booked.add(s)
        self._armed[s] = True
        self._python_due[s] = green_start + self._max_green_l[s] if self._n_stages[s] > 1 \
            else math.inf
        if self._cycle_installed[s]:
            self._restore_base(s)
        ident = self._ids[s]
        self._set_phase(ident, self._arm_phase[s][cur][nxt])
        self._set_duration(ident, yellow_start - now)
        self.writes += 2
        if self.record:
            self._book_history(s, self._timeline[s])

    def _disarm(self, s: int) -> None:
        """Drop signal ``s``'s armed change (not begun) and its request; the caller tells SUMO
        what follows."""
        yellow_start = self._timeline[s][0].yellow_start
        self._timeline[s].clear()
        self._booked.discard(s)
        self._armed[s] = False
        self._pending[s] = -1
        if self.record:
            self._future = [h for h in self._future if h.signal != s or h.time < yellow_start]

    def _book_history(self, s: int, changes: list[BookedChange]) -> None:
        """Record mode: the states SUMO will show for signal ``s``'s booked ``changes`` (yellow,
        all-red, new green, each when it differs from the one before), entering
        :attr:`history` once :meth:`tick` reaches their times."""
        stages = self._stages[s]
        future = self._future
        for ch in changes:
            green = stages[ch.new]
            if ch.yellow_state:
                future.append(HistoryEntry(ch.yellow_start, s, ch.yellow_state))
                if ch.red_state != ch.yellow_state:
                    future.append(HistoryEntry(ch.red_start, s, ch.red_state))
            if green != (ch.red_state if ch.yellow_state else stages[ch.old]):
                future.append(HistoryEntry(ch.green_start, s, green))

    def _advance(self, now: float) -> None:
        lim = now + _EPS
        if self._booked:
            self._sync(lim)
        need = self._python_due
        for s in [s for s in range(self._n) if need[s] <= lim]:
            self._change(s, now)
            if need[s] <= lim:  # rare: the new green may end at once too
                self._change_until_green(s, now, lim)
        self.next_event = min(need, default=math.inf)

    def _change_until_green(self, s: int, now: float, lim: float) -> None:
        """After a change of signal ``s`` whose new green may end at once (it only adds green
        links, maximum green 0): change on until the green may stand past ``lim``, at most 8
        changes in all (the caller made the first: the common case costs no call here)."""
        for _ in range(7):
            self._change(s, now)
            if self._python_due[s] > lim:
                break

    def _change(self, s: int, now: float) -> None:
        """A green ends at ``now``: book the whole change (one SUMO call, no later events)."""
        cur = self._stage[s]
        nxt = self._pending[s]
        if nxt < 0:  # maximum green reached: next stage in cycle order
            nxt = (cur + 1) % self._n_stages[s]
        self._pending[s] = -1
        self._stage_left[s] = cur
        self._stage[s] = nxt
        self._yellow_start[s] = now
        tr = self._plan[s][cur][nxt]
        stages = self._stages[s]
        yellow_state = tr.yellow_state
        if yellow_state:  # some links lose green: SUMO runs the yellow (and the all-red)
            self._yellow_state[s] = yellow_state
            self._red_state[s] = tr.red_state
            red_start, green_start = self._clearance_ends(s, now)
            self._red_start[s] = red_start
            self._green_start[s] = green_start
            switch = True
        else:  # the change only adds green links: the new green at once
            self._red_start[s] = self._green_start[s] = green_start = now
            switch = stages[nxt] != stages[cur]
        if switch:  # one of the base program's phases (re-sent first after a cycle)
            if self._cycle_installed[s]:
                self._restore_base(s)
            self._set_phase(self._ids[s], tr.phase)
            self.writes += 1
            if self.record:
                self._record_change(s, now, tr, stages[nxt])
        self._python_due[s] = green_start + self._max_green_l[s] if self._n_stages[s] > 1 \
            else math.inf

    def _record_change(self, s: int, now: float, tr: Transition, green: str) -> None:
        """Record mode: the states of the change of signal ``s`` that begins ``now``."""
        if not tr.yellow_state:
            self.history.append(HistoryEntry(now, s, green))
            return
        self.history.append(HistoryEntry(now, s, tr.yellow_state))
        if tr.red_state != tr.yellow_state:
            self._future.append(HistoryEntry(self._red_start[s], s, tr.red_state))
        if green != tr.red_state:
            self._future.append(HistoryEntry(self._green_start[s], s, green))

    def _restore_base(self, s: int) -> None:
        """Re-send signal ``s``'s base program (a cycle-only one is installed): a stage change
        outside a cycle (a request, maximum green) switches to one of the base's phases."""
        self.sim.conn.trafficlight.setProgramLogic(self._ids[s], self._base_logic[s])
        self._cycle_installed[s] = False
        self._cycle_sent[s] = None
        self.writes += 1

    # ------------------------------------------------------------------ whole cycles
    def _sync(self, lim: float) -> None:
        """Apply the booked changes SUMO has begun by ``lim`` to the current-change fields."""
        for s in [s for s in self._booked if self._timeline[s][0].yellow_start <= lim]:
            self._sync_one(s, lim)

    def _sync_one(self, s: int, lim: float) -> None:
        tl = self._timeline[s]
        while tl and tl[0].yellow_start <= lim:
            ch = tl.pop(0)
            self._yellow_start[s], self._red_start[s], self._green_start[s] = \
                ch.yellow_start, ch.red_start, ch.green_start
            self._stage_left[s], self._stage[s] = ch.old, ch.new
            self._yellow_state[s], self._red_state[s] = ch.yellow_state, ch.red_state
        if not tl:
            self._booked.discard(s)
            if self._armed[s]:  # the armed change has begun: the request is served
                self._armed[s] = False
                self._pending[s] = -1

    def run_cycle(self, s: int, greens: list[float]) -> float:
        """Hand SUMO signal ``s``'s next cycle: stages ``0..K-1`` in order, ``greens[k]`` each.

        The cycle starts now with the change to stage 0 (at once when stage 0 is shown; after
        the current green's minimum green otherwise) and runs in SUMO without Python: each
        green is clipped to ``[min_green, max_green]``, each change runs the signal's yellow
        and all-red.  The last stage's green then holds until the next call (or a request;
        maximum green still applies), so call again at the returned time for a seamless next
        cycle.  A pending request is dropped: the cycle replaces it.

        Args:
            s: Signal index.
            greens: Green seconds per stage, in stage order (``n_stages[s]`` values).

        Returns:
            The time the last stage's green has lasted ``greens[-1]`` (step-rounded, as SUMO
            runs it): when the next cycle should start.

        Raises:
            WulinError: the wrong number of greens, or the running cycle not finished.
        """
        k_n = self._n_stages[s]
        if len(greens) != k_n:
            raise WulinError(f"run_cycle: signal {self._ids[s]!r} has {k_n} stages, got "
                             f"{len(greens)} greens")
        now = self._now
        lim = now + _EPS
        tl = self._timeline[s]
        if tl:
            self._sync_one(s, lim)
            if self._armed[s]:  # a request armed and not begun: the cycle replaces it
                self._disarm(s)
            if tl:
                raise WulinError(f"run_cycle: signal {self._ids[s]!r} has not reached the last "
                                 f"green of its running cycle (call at the time run_cycle "
                                 f"returned)")
        timing = self._timing[s]
        cur = self._stage[s]
        start = self._green_start[s] + (timing.min_green if cur != 0 else 0.0)
        if start < now:
            start = now
        prefix = start > lim  # the current green first runs out its minimum
        booked, durations, end = self._cycle_changes(s, cur, start, greens)
        if prefix:
            durations.insert(0, start - now)
        self._pending[s] = -1
        self._send_cycle(s, (cur, prefix), durations)
        # book: changes that begin now apply at once, later ones when SUMO reaches them
        if self.record:
            self._book_history(s, booked)
        if booked:
            tl.extend(booked)
            self._booked.add(s)
            self._sync_one(s, lim)
            last_green = booked[-1].green_start
        else:
            last_green = self._green_start[s]
        if self.record:
            self._flush(now)
        self._python_due[s] = last_green + timing.max_green if k_n > 1 else math.inf
        self.next_event = min(self._python_due)
        return end

    def _cycle_changes(self, s: int, cur: int, start: float, greens: list[float]
                       ) -> tuple[list[BookedChange], list[float], float]:
        """The changes of signal ``s``'s cycle from ``start``, the variable durations of its
        program (every green but the held last one), and the time the last green ends.  SUMO
        ends each phase at the first step at or after its end, and so do the booked times."""
        yellow, all_red, lo, hi = self._timing[s]
        plan = self._plan[s]
        last = len(greens) - 1
        booked: list[BookedChange] = []
        durations: list[float] = []
        end = start
        # :meth:`_clearance_ends` and its grid rounding written out (per stage of every cycle)
        origin, dt, ceil = self._origin, self.step_length, math.ceil
        for k in range(len(greens)):
            green = float(greens[k])
            green = lo if green < lo else hi if green > hi else green
            tr = plan[cur][k]
            if k == cur:  # stage 0 is shown (first cycle): its green just goes on
                green_start = end
            else:
                if tr.yellow_state:  # some links lose green: yellow (and all-red) first
                    red_start = origin + ceil((end + yellow - origin) / dt - 1e-6) * dt
                    green_start = origin + ceil((red_start + all_red - origin) / dt - 1e-6) * dt \
                        if all_red > 0 else red_start
                else:  # only adds green links: the new green at once
                    red_start = green_start = end
                booked.append(_new(BookedChange, (end, red_start, green_start, cur, k,
                                                  tr.yellow_state, tr.red_state)))
            end = origin + ceil((green_start + green - origin) / dt - 1e-6) * dt
            if k < last:
                durations.append(green)
            cur = k
        return booked, durations, end

    def _send_cycle(self, s: int, key: tuple[int, bool], durations: list[float]) -> None:
        """Install signal ``s``'s cycle program for ``key`` with ``durations`` and start it."""
        tpl = self._cycle_tpl[s].get(key)
        if tpl is None:
            logic, variable = self._cycle_template(s, key, durations)
            if variable is not None:  # (test fakes' Logic objects keep no phases to reuse)
                self._cycle_tpl[s][key] = (logic, variable)
        elif self._cycle_installed[s] and self._cycle_sent[s] == (key, durations):
            # SUMO holds this very program (same shape, same greens: Webster's whole-second
            # greens often repeat): restarting it at its first phase is all it takes
            self._set_phase(self._ids[s], 0)
            self.writes += 1
            return
        else:  # the Logic's phases are SUMO's own objects: set the durations in place
            logic, variable = tpl
            for ph, d in zip(variable, durations, strict=True):
                ph.duration = d
        if logic is not None:
            self.sim.conn.trafficlight.setProgramLogic(self._ids[s], logic)
            self._set_phase(self._ids[s], 0)  # restarts the phase timer now
            self._cycle_installed[s] = True
            self._cycle_sent[s] = (key, durations)
            self.writes += 2

    def _cycle_template(self, s: int, key: tuple[int, bool], durations: list[float]
                        ) -> tuple[Any, list[Any] | None]:
        """Signal ``s``'s cycle program for ``key`` = (stage shown, prefix), built once.

        The program holds this cycle's phases only (a third of base + cycle on Wulin, so
        setProgramLogic converts a third as many): the prefix (the shown green running out its
        minimum), then each green and the clearance after it in cycle order, then the last
        stage's green held.  Returns the Logic (``None`` when there is nothing for SUMO to run:
        one stage, shown) and its variable phases (prefix and greens), whose durations later
        cycles of the same shape set in place (building a Logic costs ~0.3 ms, setting a
        duration ~0.1 µs); ``None`` for them when the Logic keeps no phase objects.
        """
        cur, prefix = key
        k_n = self._n_stages[s]
        stages, plan = self._stages[s], self._plan[s]
        timing = self._timing[s]
        yellow, all_red = timing.yellow, timing.all_red
        hold_last = -1  # marks the phases that lead to the held last green (index known later)
        spec: list[tuple[float | None, str, int]] = []  # (duration or None: variable, state, next)
        if prefix:
            spec.append((None, stages[cur], 1))
        for k in range(k_n):
            tr = plan[cur][k]
            if k != cur and tr.yellow_state:  # the clearance, then the new green (or held last)
                n_clear = 2 if all_red > 0 else 1
                g_idx = hold_last if k == k_n - 1 else len(spec) + n_clear
                if all_red > 0:
                    spec.append((yellow, tr.yellow_state, len(spec) + 1))
                    spec.append((all_red, tr.red_state, g_idx))
                else:
                    spec.append((yellow, tr.yellow_state, g_idx))
            if k < k_n - 1:
                # after this green: the next change's first clearance phase (appended right
                # after it), or the held last green when that change needs none
                after = len(spec) + 1
                if not plan[k][k + 1].yellow_state and k + 1 == k_n - 1:
                    after = hold_last
                spec.append((None, stages[k], after))
            cur = k
        if not spec:
            return None, []
        tlc = self.sim.conn.trafficlight
        it = iter(durations)
        phases = []
        i_hold = len(spec)
        for d, state, nxt in spec:
            # the variable phases leave minDur and maxDur unset (-1): a static program runs
            # on ``duration`` alone, so later cycles set that one field per phase
            d_min = -1.0 if d is None else d
            d = next(it) if d is None else d
            phases.append(tlc.Phase(d, state, d_min, d_min, (i_hold if nxt == hold_last else nxt,)))
        phases.append(tlc.Phase(_HOLD, stages[k_n - 1], _HOLD, _HOLD))
        logic = tlc.Logic(PROGRAM_ID, 0, 0, phases)
        proxies = getattr(logic, "phases", None)
        if proxies is None:
            return logic, None
        return logic, [proxies[i] for i, (d, _, _) in enumerate(spec) if d is None]
