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
* A signal's state is written (``setRedYellowGreenState``) only when it changes.

Every emitted state is a green stage of the network, or one derived from it by turning links
to ``y``/``r``, so no two protected links that SUMO marks as foes are ever green together
(provided the network's stages are safe, which ``tests/test_actuator.py`` checks).

Speed: the actuator is event-driven.  Each signal has the time of its next event (end of
yellow, of all-red, of minimum or maximum green); :attr:`next_event` is the earliest of them,
so a loop can advance SUMO straight to it in one ``step_until`` call (nothing changes in
between), and :meth:`tick` returns after one comparison when no event is due.  Per-signal
bookkeeping lives in plain Python lists (a numpy scalar read or write costs ~100 ns, a list
element ~10 ns, and events touch one signal at a time); the numpy views that controllers
and observers read (:attr:`stage`, :attr:`stage_time`, :attr:`in_transition`, :attr:`due`)
are built on demand, once per decision.  With ``sumo_clearance`` a stage change is ONE event:
when a green ends, the times at which SUMO will end its yellow and all-red are known, so the
change is booked whole and the views derive mode, stage and stage time from those times; the
ends of clearances cost no Python at all.  The per-decision path calls no numpy function
(each costs several µs there: the loop's Python runs between SUMO steps that evict caches).

Armed changes (``sumo_clearance`` mode): a request that must wait for minimum green does not
make Python stop when the minimum is served.  The base program holds, per stage pair (i, j),
a copy of green i whose ``next`` is the change to j; the request switches the green shown to
that copy (same state, so vehicles see nothing) with the rest of the minimum as its duration,
and books the change at the step where the loop would have stopped.  SUMO then begins it on
its own; a later request re-arms it (another target) or disarms it (the current stage asked
again: the plain green goes on).  ``tests/test_actuator.py`` replays every SUMO call as a
static program and checks the states shown against the reference mode's, step by step.

Whole cycles (``sumo_clearance`` mode): :meth:`run_cycle` hands SUMO a signal's next cycle
(every stage in order with its green, the clearances between them) as a program holding only
that cycle's phases (the base program's clearance pairs for every stage pair are not re-sent;
a stage change outside a cycle re-sends the base program first), so a controller that plans
a cycle at a time (webster-online) costs Python one stop per cycle per signal instead of one
per stage.  The same rules hold: greens are clipped to minimum and maximum green, every
change runs the same yellow and all-red phases; the cycle's changes are booked at once and
the views follow them on the clock.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.errors import WulinError
from sim.topology import GREEN

if TYPE_CHECKING:
    from sim.state import DistrictLayout

GREEN_MODE, YELLOW_MODE, ALL_RED_MODE = 0, 1, 2
_EPS = 1e-6


def _per_signal(value: Any, n: int, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise WulinError(f"SignalActuator: {name} must be a number or one value per signal ({n}), "
                         f"got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or (arr < 0).any():
        raise WulinError(f"SignalActuator: {name} must be finite and >= 0 seconds")
    return arr


class SignalActuator:
    """Drives every signal of a layout from stage requests.

    Args:
        sim: A started :class:`~sim.simulation.Simulation` (anything with ``.conn`` and
            ``.time`` works, which the property tests use).
        layout: The signals.
        yellow: Yellow seconds (a scalar or one value per signal).
        all_red: All-red seconds.
        min_green: Minimum green seconds.
        max_green: Maximum green seconds (``inf`` for none).
        record: Keep every emitted state in :attr:`history` as ``(time, signal, state)``.
        sumo_clearance: Let SUMO run each clearance itself: at :meth:`reset` every signal
            gets one program holding its green stages and, per stage change, a yellow and an
            all-red phase whose ``next`` leads to the new green, and per stage pair a copy of
            the green leading to that change; a change is then one ``setPhase`` call (two,
            with ``setPhaseDuration``, when it is armed to begin at the end of minimum
            green), and the end of a yellow, an all-red or an armed minimum green needs no
            stop and no Python (the whole change is booked; :attr:`history` receives its
            entries once :meth:`tick` has reached their times).  Vehicles see exactly the
            states of the default mode, which writes every state with
            ``setRedYellowGreenState``.  Needs ``trafficlight.setProgramLogic``.
        step_length: SUMO's step, seconds (``sim.scenario.step_length`` by default): SUMO
            ends a phase at the first step at or after its end, and so does the booking.

    Attributes:
        history: Every emitted state as ``(time, signal index, state)`` when ``record``.
        writes: Number of SUMO signal calls made (state writes or phase switches).
        next_event: Earliest time the actuator must act (``inf`` when none): advance SUMO to
            here.  Every event by default; with ``sumo_clearance`` only the ends of greens
            that Python must begin (maximum green, a change queued during a transition or a
            cycle), since SUMO ends clearances and armed greens itself.  A plain attribute,
            kept up to date by :meth:`request` and :meth:`tick`: loops read it every step.
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
        sumo_clearance: bool = False,
        step_length: float | None = None,
    ) -> None:
        n = layout.n_signals
        self.sim = sim
        self.layout = layout
        self.yellow = _per_signal(yellow, n, "yellow")
        self.all_red = _per_signal(all_red, n, "all_red")
        self.min_green = _per_signal(min_green, n, "min_green")
        self.max_green = _per_signal(max_green, n, "max_green")
        if (self.yellow <= 0).any():  # green -> red with no yellow is never allowed
            raise WulinError("SignalActuator: yellow must be > 0 seconds for every signal")
        bad = np.flatnonzero(self.max_green < self.min_green)
        if bad.size:
            raise WulinError(
                f"SignalActuator: max_green < min_green for signal {layout.signal_ids[bad[0]]!r}"
            )
        self.record = record
        self.sumo_clearance = bool(sumo_clearance)
        if step_length is None:
            step_length = float(getattr(getattr(sim, "scenario", None), "step_length", 1.0))
        if not step_length > 0:
            raise WulinError(f"SignalActuator: step_length must be > 0, got {step_length}")
        self.step_length = float(step_length)
        self.history: list[tuple[float, int, str]] = []
        self.writes = 0
        self._n = n
        self._shape = (n,)
        self._ids = list(layout.signal_ids)
        self._stages = [list(spec.stages) for spec in layout.specs]
        # green links of each stage as an int bitmask: "links losing green" is one AND-NOT
        self._green = [[sum(1 << i for i, c in enumerate(st) if c in GREEN) for st in spec.stages]
                       for spec in layout.specs]
        self.n_stages = np.array([len(s) for s in self._stages], dtype=np.int32)
        self._nst = self.n_stages.tolist()
        self._yel = self.yellow.tolist()
        self._ar = self.all_red.tolist()
        self._ming = self.min_green.tolist()
        self._maxg = self.max_green.tolist()
        self._stage = [0] * n
        self._target = [-1] * n
        self._pending = [-1] * n
        self._mode = [GREEN_MODE] * n
        self._since = [0.0] * n  # start of the current green or transition
        self._due = [math.inf] * n
        self._need = [math.inf] * n  # next time Python must act (a SUMO call is due)
        self.next_event = math.inf
        self._origin = 0.0
        self._phase_of: list[dict[tuple[int, int], int]] = []
        self._shown: list[str] = [""] * n
        self._now = 0.0
        self._set_state: Any = None
        self._set_phase: Any = None
        self._clear_cache: dict[tuple[int, int, int, str], str] = {}
        # sumo_clearance mode: the current (or last) change of each signal, see _change()
        self._old = [0] * n
        self._ty = [0.0] * n
        self._tr = [0.0] * n
        self._tg = [0.0] * n
        self._ys = [""] * n
        self._rs = [""] * n
        # per signal, [old stage][new stage] -> (phase of the change, yellow state, all-red
        # state); the states are "" for a change that only adds green links
        self._plan: list[list[list[tuple[int, str, str]]]] = []
        self._future: list[tuple[float, int, str]] = []  # booked, not yet shown (record mode)
        # run_cycle: per signal, the program's own phases and the booked changes SUMO has not
        # reached yet, as (ty, tr, tg, old, new, ys, rs); ``_booked`` lists signals with any
        # per signal, [stage i][stage j] -> a copy of green i whose ``next`` is the change to
        # j: a request that must wait for minimum green is handed to SUMO ("armed") as this
        # phase with the remaining green as its duration, so Python need not stop at its end
        self._arm_phase: list[list[int]] = []
        self._armed: list[bool] = [False] * n
        self._set_duration: Any = None
        # the base program's Logic per signal, re-sent when a change follows a cycle program
        self._base_logic: list[Any] = []
        self._cyc: list[bool] = [False] * n  # a cycle-only program is installed (run_cycle)
        # per signal, (template key, variable durations) of the cycle program SUMO holds now
        self._sent: list[Any] = [None] * n
        self._timeline: list[list[tuple[float, float, float, int, int, str, str]]] = []
        self._booked: set[int] = set()
        # per signal, (stage shown, prefix) -> the cycle program's Logic and variable phases
        self._cycle_tpl: list[dict[tuple[int, bool], Any]] = [{} for _ in range(n)]

    # ------------------------------------------------------------------ public views
    @property
    def stage(self) -> np.ndarray:
        """Current green stage per signal (the stage being left during a transition), int32."""
        if self.sumo_clearance:
            lim = self._synced()
            return np.array([o if lim < g else c for o, c, g in
                             zip(self._old, self._stage, self._tg, strict=True)], dtype=np.int32)
        return np.array(self._stage, dtype=np.int32)

    @property
    def target(self) -> np.ndarray:
        """Stage a running transition leads to (``-1`` when in green), int32."""
        if self.sumo_clearance:
            lim = self._synced()
            return np.array([c if lim < g else -1 for c, g in zip(self._stage, self._tg, strict=True)],
                            dtype=np.int32)
        return np.array(self._target, dtype=np.int32)

    @property
    def pending(self) -> np.ndarray:
        """Queued request per signal (``-1`` when none), int32."""
        return np.array(self._pending, dtype=np.int32)

    @property
    def mode(self) -> np.ndarray:
        """0 green, 1 yellow, 2 all-red per signal, int8."""
        if self.sumo_clearance:
            lim = self._synced()
            return np.array([GREEN_MODE if g <= lim else ALL_RED_MODE if r <= lim else YELLOW_MODE
                             for r, g in zip(self._tr, self._tg, strict=True)], dtype=np.int8)
        return np.array(self._mode, dtype=np.int8)

    @property
    def in_transition(self) -> np.ndarray:
        """True while a signal shows yellow or all-red."""
        if self.sumo_clearance:
            lim = self._synced()
            return np.array([lim < g for g in self._tg], dtype=np.bool_)
        return np.array([m != GREEN_MODE for m in self._mode], dtype=np.bool_)

    @property
    def stage_time(self) -> np.ndarray:
        """Seconds since the current green (or transition) began, as float32."""
        now = self._now
        if self.sumo_clearance:
            lim = self._synced()
            return np.array([now - (g if g <= lim else r if r <= lim else y)
                             for y, r, g in zip(self._ty, self._tr, self._tg, strict=True)],
                            dtype=np.float32)
        return np.array([now - t for t in self._since], dtype=np.float32)

    @property
    def due(self) -> np.ndarray:
        """Time of each signal's next event (``inf`` when none)."""
        if self.sumo_clearance:
            lim = self._synced()
            need = [tl[0][0] if armed else n  # an armed change begins at its booked time
                    for tl, armed, n in zip(self._timeline, self._armed, self._need, strict=True)]
            return np.array([n if g <= lim else r + a if r <= lim else y + w for y, r, g, n, w, a
                             in zip(self._ty, self._tr, self._tg, need, self._yel, self._ar,
                                    strict=True)], dtype=np.float64)
        return np.array(self._due, dtype=np.float64)

    @property
    def states(self) -> list[str]:
        """The state string currently shown by each signal."""
        if self.sumo_clearance:
            lim = self._synced()
            return [st[c] if g <= lim else rs if r <= lim else ys for st, c, r, g, ys, rs in
                    zip(self._stages, self._stage, self._tr, self._tg, self._ys, self._rs,
                        strict=True)]
        return list(self._shown)

    def _synced(self) -> float:
        """``sumo_clearance`` views: apply the booked changes SUMO has begun by now; returns
        the time limit (now + epsilon) the views compare the booked times with."""
        lim = self._now + _EPS
        if self._booked:
            self._sync(lim)
        return lim

    def views(self) -> tuple[list[int], list[float], list[bool]]:
        """``(stage, stage_time, in_transition)`` as plain lists, in one pass (the same values
        as the properties): what the episode loop writes into the state at every decision."""
        if not self.sumo_clearance:
            return self.stage.tolist(), self.stage_time.tolist(), self.in_transition.tolist()
        now = self._now
        lim = now + _EPS  # (inline, not _synced(): this runs at every decision)
        if self._booked:
            self._sync(lim)
        stage = [o if lim < g else c for o, c, g in zip(self._old, self._stage, self._tg,
                                                         strict=True)]
        stage_time = [now - (g if g <= lim else r if r <= lim else y)
                      for y, r, g in zip(self._ty, self._tr, self._tg, strict=True)]
        return stage, stage_time, [lim < g for g in self._tg]

    def reset(self) -> None:
        """Take control of every signal and start each one in its stage 0."""
        self._set_state = self.sim.conn.trafficlight.setRedYellowGreenState
        self._now = float(self.sim.time)
        self.history.clear()
        self._future = []
        self.writes = 0
        n = self._n
        self._stage = [0] * n
        self._target = [-1] * n
        self._pending = [-1] * n
        self._mode = [GREEN_MODE] * n
        self._since = [self._now] * n
        self._shown = [""] * n
        self._origin = self._now
        for s in range(n):
            if self._nst[s] == 0:
                raise WulinError(f"signal {self._ids[s]!r} has no green stage in its program")
        if self.sumo_clearance:
            self._reset_lazy()
            return
        for s in range(n):
            self._show(s, self._stages[s][0], self._now)
            self._schedule(s)
        self.next_event = min(self._due, default=math.inf)

    def request(self, decision: np.ndarray) -> None:
        """Ask each signal to serve a stage (``-1`` = no new request).

        Raises:
            WulinError: wrong shape or a stage a signal does not have.
        """
        # the common case (an int array of the right shape, all keep) touches little: this
        # runs at every decision on caches cold from SUMO's step
        d = decision if type(decision) is np.ndarray else np.asarray(decision)
        n = self._n
        if d.shape != self._shape:
            raise WulinError(f"decision must have one entry per signal ({n}), got shape {d.shape}")
        if self.sumo_clearance:
            ks = d.tolist()
            if ks.count(-1) != n:  # all keep (most decisions of most controllers): nothing to do
                self._request_lazy(ks)
            return
        nst, mode, target, stage, pending = (self._nst, self._mode, self._target, self._stage,
                                             self._pending)
        changed = False
        for s, k in enumerate(d.tolist()):
            if k < 0:
                if k < -1:
                    self._bad(s, k)
                continue
            if k >= nst[s]:
                self._bad(s, k)
            green = mode[s] == GREEN_MODE
            new = -1 if k == (stage[s] if green else target[s]) else k
            if new != pending[s]:
                pending[s] = new
                self._schedule(s)  # in a transition: only the time Python must act changes
                changed = True
        if changed:
            self.next_event = min(self._due)
        if self.next_event <= self._now + _EPS:  # e.g. minimum green already served: act now
            self._advance(self._now)

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
        if self.sumo_clearance:
            self._advance_lazy(now)
        else:
            self._advance(now)

    # ------------------------------------------------------------------ internals
    def _bad(self, s: int, k: int) -> None:
        raise WulinError(
            f"decision for signal {self._ids[s]!r}: stage {k} does not exist "
            f"(valid: -1..{self._nst[s] - 1})"
        )

    # ------------------------------------------------------------------ default mode
    # Every state is written with setRedYellowGreenState, so every yellow, all-red and green
    # is an event of its own.
    def _advance(self, now: float) -> None:
        lim = now + _EPS
        due = self._due
        for s in [s for s in range(self._n) if due[s] <= lim]:
            for _ in range(8):  # green -> yellow -> all-red -> green (-> yellow ...)
                if due[s] > lim:
                    break
                self._event(s, now)
        self.next_event = min(due, default=math.inf)

    def _show(self, s: int, state: str, now: float) -> None:
        """Write ``state`` to SUMO when it differs from the one shown."""
        if state != self._shown[s]:
            self._set_state(self._ids[s], state)
            self.writes += 1
            self._shown[s] = state
            if self.record:
                self.history.append((now, s, state))

    def _schedule(self, s: int) -> None:
        m = self._mode[s]
        if m == YELLOW_MODE:
            due = self._since[s] + self._yel[s]
        elif m == ALL_RED_MODE:
            due = self._since[s] + self._ar[s]
        elif self._pending[s] >= 0:
            due = self._since[s] + self._ming[s]
        elif self._nst[s] > 1:
            due = self._since[s] + self._maxg[s]
        else:
            due = math.inf
        self._due[s] = due

    def _clearance_state(self, s: int, char: str) -> str:
        key = (s, self._stage[s], self._target[s], char)
        cached = self._clear_cache.get(key)
        if cached is None:
            cached = self._clear_cache[key] = self._make_clearance(s, char)
        return cached

    def _make_clearance(self, s: int, char: str, i: int = -1, j: int = -1) -> str:
        old = self._stages[s][self._stage[s] if i < 0 else i]
        new_green = self._green[s][self._target[s] if j < 0 else j]
        return "".join(
            c if (c in GREEN and new_green >> i & 1) else (char if c in GREEN else "r")
            for i, c in enumerate(old)
        )

    def _event(self, s: int, now: float) -> None:
        # one function for the common paths: this runs for every yellow, all-red and green
        m = self._mode[s]
        if m == GREEN_MODE:
            cur = self._stage[s]
            nxt = self._pending[s]
            if nxt < 0:  # maximum green reached: next stage in cycle order
                nxt = (cur + 1) % self._nst[s]
            self._target[s] = nxt
            self._pending[s] = -1
            green = self._green[s]
            if green[cur] & ~green[nxt]:  # some links lose green: yellow first
                self._mode[s] = YELLOW_MODE
                self._since[s] = now
                self._show(s, self._clearance_state(s, "y"), now)
                self._schedule(s)
                return
        elif m == YELLOW_MODE and self._ar[s] > 0:
            self._mode[s] = ALL_RED_MODE
            self._since[s] = now
            self._show(s, self._clearance_state(s, "r"), now)
            self._schedule(s)
            return
        # enter the target's green (after all-red, after a yellow with no all-red, or at once
        # when the change only adds green links)
        k = self._stage[s] = self._target[s]
        self._target[s] = -1
        if self._pending[s] == k:
            self._pending[s] = -1
        self._mode[s] = GREEN_MODE
        self._since[s] = now
        self._show(s, self._stages[s][k], now)
        self._schedule(s)

    # ------------------------------------------------------------------ sumo_clearance mode
    # SUMO runs every clearance itself, and it ends a phase at the first step at or after its
    # end, so when a green ends the whole stage change is known: it is booked in ONE event
    # (:meth:`_change`) as the times its yellow, all-red and new green begin (``_ty``, ``_tr``,
    # ``_tg``), the stage left (``_old``) and the stage entered (``_stage``).  The views derive
    # mode, stage and stage time from those times and the clock, so the end of a yellow or an
    # all-red costs no Python at all.  Per signal, Python acts only when a green ends (minimum
    # green with a request queued, or maximum green): ``_need``.
    def _install_programs(self) -> None:
        """One program per signal: greens 0..K-1, then a yellow and an all-red per change."""
        tl = self.sim.conn.trafficlight
        phase, logic = tl.Phase, tl.Logic
        hold = 1e7  # a green lasts until the actuator switches it
        self._phase_of = []
        self._plan = []
        self._arm_phase = []
        self._base_logic = []
        for s in range(self._n):
            stages = self._stages[s]
            k_n = len(stages)
            phases = [phase(hold, st, hold, hold) for st in stages]
            index = {(k, k): k for k in range(k_n)}
            strings: dict[tuple[int, int], tuple[str, str]] = {}
            for i in range(k_n):
                for j in range(k_n):
                    if i == j or not self._green[s][i] & ~self._green[s][j]:
                        index[(i, j)] = j  # nothing loses green: straight to the new green
                        continue
                    y = len(phases)
                    index[(i, j)] = y
                    ystate, rstate = self._make_clearance(s, "y", i, j), \
                        self._make_clearance(s, "r", i, j)
                    # with no all-red the yellow leads straight to the green
                    strings[(i, j)] = (ystate, rstate if self._ar[s] > 0 else ystate)
                    if self._ar[s] > 0:
                        phases.append(phase(self._yel[s], ystate, self._yel[s], self._yel[s],
                                            (y + 1,)))
                        phases.append(phase(self._ar[s], rstate, self._ar[s], self._ar[s], (j,)))
                    else:
                        phases.append(phase(self._yel[s], ystate, self._yel[s], self._yel[s],
                                            (j,)))
            arm = [[-1] * k_n for _ in range(k_n)]
            for i in range(k_n):
                for j in range(k_n):
                    if i != j:
                        arm[i][j] = len(phases)
                        phases.append(phase(hold, stages[i], hold, hold, (index[(i, j)],)))
            self._arm_phase.append(arm)
            self._base_logic.append(logic("wulin-actuator", 0, 0, phases))
            tl.setProgramLogic(self._ids[s], self._base_logic[s])
            tl.setProgram(self._ids[s], "wulin-actuator")
            self._phase_of.append(index)
            self._plan.append([[(index[(i, j)], *strings.get((i, j), ("", "")))
                                for j in range(k_n)] for i in range(k_n)])

    def _reset_lazy(self) -> None:
        n, now = self._n, self._now
        self._set_phase = self.sim.conn.trafficlight.setPhase
        self._set_duration = self.sim.conn.trafficlight.setPhaseDuration
        self._install_programs()
        self._armed = [False] * n
        self._old = [0] * n
        self._ty = [now] * n
        self._tr = [now] * n
        self._tg = [now] * n
        self._ys = [""] * n  # the current (or last) change's yellow and all-red states
        self._rs = [""] * n
        self._need = [now + self._maxg[s] if self._nst[s] > 1 else math.inf for s in range(n)]
        self._timeline = [[] for _ in range(n)]
        self._booked = set()
        self._cycle_tpl = [{} for _ in range(n)]
        self._cyc = [False] * n
        self._sent = [None] * n
        for s in range(n):
            self._set_phase(self._ids[s], self._phase_of[s][(0, 0)])
            self.writes += 1
            if self.record:
                self.history.append((now, s, self._stages[s][0]))
        self.next_event = min(self._need, default=math.inf)

    def _flush(self, now: float) -> None:
        lim = now + _EPS
        due = [h for h in self._future if h[0] <= lim]
        if due:
            due.sort(key=lambda h: h[0])  # armed changes are booked ahead of their time
            self.history.extend(due)
            self._future = [h for h in self._future if h[0] > lim]

    def _request_lazy(self, ks: list[int]) -> None:
        nst, stage, pending, need = self._nst, self._stage, self._pending, self._need
        lim = self._now + _EPS
        if self._booked:
            self._sync(lim)
        changed = False
        now_due: list[int] = []
        # signals with a change booked are exactly those in ``_booked`` (their timeline is
        # non-empty): a running cycle (run_cycle) or an armed change; without any, the loop
        # reads no timeline
        booked = self._booked
        armed = self._armed
        for s, k in enumerate(ks):
            if k == -1:
                continue
            if k < 0 or k >= nst[s]:
                self._bad(s, k)
            # ``stage`` is the green shown, or the one a running change leads to; with a cycle
            # booked (run_cycle), the cycle's last green, and changes wait for its minimum green
            in_cycle = bool(booked) and s in booked and not armed[s]
            if in_cycle:
                last = self._timeline[s][-1]
                new = -1 if k == last[4] else k
                last_tg = last[2]
            else:  # an armed change has not begun: the green shown is still ``stage``
                new = -1 if k == stage[s] else k
                last_tg = self._tg[s]
            if new != pending[s]:
                was_armed = armed[s]
                if was_armed:
                    self._disarm(s)
                pending[s] = new
                if new >= 0:
                    due = last_tg + self._ming[s]
                    if due <= lim:  # e.g. minimum green already served: act now
                        need[s] = due
                        now_due.append(s)
                    elif in_cycle or self._tg[s] > lim:
                        # a cycle runs, or a change has not reached its green: Python changes
                        # it once the (last) green may end
                        need[s] = due
                    else:  # SUMO ends the green when its minimum is served
                        self._arm(s, new, due)
                else:
                    need[s] = last_tg + self._maxg[s] if nst[s] > 1 else math.inf
                    if was_armed:  # the green goes on, as the base program holds it
                        self._set_phase(self._ids[s], self._phase_of[s][(stage[s], stage[s])])
                        self.writes += 1
                changed = True
        if changed:
            now = self._now
            for s in now_due:  # (the requests are all valid: changes begin only now)
                for _ in range(8):
                    self._change(s, now)
                    if need[s] > lim:
                        break
            self.next_event = min(need)
            if self.next_event <= lim:
                self._advance_lazy(now)

    def _arm(self, s: int, nxt: int, due: float) -> None:
        """Hand SUMO the change of signal ``s`` to stage ``nxt`` at ``due`` (its minimum green).

        The green shown switches to its copy that leads to the change, with the rest of the
        green as its duration: SUMO begins the change at the first step at or after ``due``
        (where the loop would have stopped), and the change is booked now as one entry of
        the timeline, so Python does not stop for it.  A later request re-arms or disarms it.
        """
        now, dt = self._now, self.step_length
        # the loop's next stop: SUMO's clock counts whole milliseconds (``experiments.episode``)
        ty = (round(now * 1000) + math.ceil((due - now) / dt - 1e-6) * round(dt * 1000)) / 1000
        cur = self._stage[s]
        _, ys, rs = self._plan[s][cur][nxt]
        if ys:
            origin = self._origin
            tr = origin + math.ceil((ty + self._yel[s] - origin) / dt - 1e-6) * dt
            ar = self._ar[s]
            tg = origin + math.ceil((tr + ar - origin) / dt - 1e-6) * dt if ar > 0 else tr
        else:
            tr = tg = ty
        self._timeline[s].append((ty, tr, tg, cur, nxt, ys, rs))
        self._booked.add(s)
        self._armed[s] = True
        self._need[s] = tg + self._maxg[s] if self._nst[s] > 1 else math.inf
        if self._cyc[s]:
            self._restore_base(s)
        ident = self._ids[s]
        self._set_phase(ident, self._arm_phase[s][cur][nxt])
        self._set_duration(ident, ty - now)
        self.writes += 2
        if self.record:
            self._book_history(s, self._timeline[s])

    def _disarm(self, s: int) -> None:
        """Drop signal ``s``'s armed change (not begun) and its request; the caller tells SUMO
        what follows."""
        ty = self._timeline[s][0][0]
        self._timeline[s].clear()
        self._booked.discard(s)
        self._armed[s] = False
        self._pending[s] = -1
        if self.record:
            self._future = [h for h in self._future if h[1] != s or h[0] < ty]

    def _book_history(self, s: int, changes: list[tuple[float, float, float, int, int, str, str]]
                      ) -> None:
        """Record mode: the states SUMO will show for signal ``s``'s booked ``changes`` (yellow,
        all-red, new green, each when it differs from the one before), entering
        :attr:`history` once :meth:`tick` reaches their times."""
        stages = self._stages[s]
        for ty, tr, tg, old, new, ys, rs in changes:
            stg = stages[new]
            if ys:
                self._future.append((ty, s, ys))
                if rs != ys:
                    self._future.append((tr, s, rs))
            if stg != (rs if ys else stages[old]):
                self._future.append((tg, s, stg))

    def _advance_lazy(self, now: float) -> None:
        lim = now + _EPS
        if self._booked:
            self._sync(lim)
        need = self._need
        for s in [s for s in range(self._n) if need[s] <= lim]:
            for _ in range(8):  # a change that only adds green links may end at once (max 0)
                self._change(s, now)
                if need[s] > lim:
                    break
        self.next_event = min(need, default=math.inf)

    def _change(self, s: int, now: float) -> None:
        """A green ends at ``now``: book the whole change (one SUMO call, no later events)."""
        cur = self._stage[s]
        nxt = self._pending[s]
        if nxt < 0:  # maximum green reached: next stage in cycle order
            nxt = (cur + 1) % self._nst[s]
        self._pending[s] = -1
        self._old[s] = cur
        self._stage[s] = nxt
        self._ty[s] = now
        phase, ys, rs = self._plan[s][cur][nxt]
        if ys:  # some links lose green: SUMO runs the yellow (and the all-red)
            self._ys[s] = ys
            self._rs[s] = rs
            # SUMO ends each phase at the first step at or after its end
            origin, dt = self._origin, self.step_length
            tr = origin + math.ceil((now + self._yel[s] - origin) / dt - 1e-6) * dt
            ar = self._ar[s]
            tg = origin + math.ceil((tr + ar - origin) / dt - 1e-6) * dt if ar > 0 else tr
            self._tr[s] = tr
            self._tg[s] = tg
            if self._cyc[s]:
                self._restore_base(s)
            self._set_phase(self._ids[s], phase)
            self.writes += 1
            if self.record:
                self.history.append((now, s, ys))
                if rs != ys:
                    self._future.append((tr, s, rs))
                if self._stages[s][nxt] != rs:
                    self._future.append((tg, s, self._stages[s][nxt]))
        else:  # the change only adds green links: the new green at once
            self._tr[s] = self._tg[s] = tg = now
            stages = self._stages[s]
            if stages[nxt] != stages[cur]:
                if self._cyc[s]:
                    self._restore_base(s)
                self._set_phase(self._ids[s], phase)
                self.writes += 1
                if self.record:
                    self.history.append((now, s, stages[nxt]))
        self._need[s] = tg + self._maxg[s] if self._nst[s] > 1 else math.inf

    def _restore_base(self, s: int) -> None:
        """Re-send signal ``s``'s base program (a cycle-only one is installed): a stage change
        outside a cycle (a request, maximum green) switches to one of the base's phases."""
        self.sim.conn.trafficlight.setProgramLogic(self._ids[s], self._base_logic[s])
        self._cyc[s] = False
        self._sent[s] = None
        self.writes += 1

    # ------------------------------------------------------------------ whole cycles
    def _sync(self, lim: float) -> None:
        """Apply the booked cycle changes SUMO has begun by ``lim`` to the current-change fields."""
        for s in [s for s in self._booked if self._timeline[s][0][0] <= lim]:
            self._sync_one(s, lim)

    def _sync_one(self, s: int, lim: float) -> None:
        tl = self._timeline[s]
        while tl and tl[0][0] <= lim:
            ty, tr, tg, old, new, ys, rs = tl.pop(0)
            self._ty[s], self._tr[s], self._tg[s] = ty, tr, tg
            self._old[s], self._stage[s], self._ys[s], self._rs[s] = old, new, ys, rs
        if not tl:
            self._booked.discard(s)
            if self._armed[s]:  # the armed change has begun: the request is served
                self._armed[s] = False
                self._pending[s] = -1

    def run_cycle(self, s: int, greens: list[float]) -> float:
        """Hand SUMO signal ``s``'s next cycle: stages ``0..K-1`` in order, ``greens[k]`` each.

        Needs ``sumo_clearance``.  The cycle starts now with the change to stage 0 (at once
        when stage 0 is shown; after the current green's minimum green otherwise) and runs in
        SUMO without Python: each green is clipped to ``[min_green, max_green]``, each change
        runs the signal's yellow and all-red.  The last stage's green then holds until the
        next call (or a request; maximum green still applies), so call again at the returned
        time for a seamless next cycle.  A pending request is dropped: the cycle replaces it.

        Args:
            s: Signal index.
            greens: Green seconds per stage, in stage order (``n_stages[s]`` values).

        Returns:
            The time the last stage's green has lasted ``greens[-1]`` (step-rounded, as SUMO
            runs it): when the next cycle should start.

        Raises:
            WulinError: not in ``sumo_clearance`` mode, or the wrong number of greens.
        """
        if not self.sumo_clearance:
            raise WulinError("SignalActuator.run_cycle needs sumo_clearance=True")
        k_n = self._nst[s]
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
        ming, maxg, yel, ar = self._ming[s], self._maxg[s], self._yel[s], self._ar[s]
        cur = self._stage[s]
        t = self._tg[s] + (ming if cur != 0 else 0.0)
        if t < now:
            t = now
        prefix = t > lim  # the current green first runs out its minimum
        key = (cur, prefix)
        # the variable durations (prefix, then every green but the held last one) and the
        # changes to book, in cycle order; SUMO ends each phase at the first step at or after
        # its end, and so do the booked times
        durs: list[float] = [t - now] if prefix else []
        booked: list[tuple[float, float, float, int, int, str, str]] = []
        end = t
        origin, dt, ceil = self._origin, self.step_length, math.ceil
        plan = self._plan[s]
        last = k_n - 1
        for k in range(k_n):
            gk = float(greens[k])
            gk = ming if gk < ming else maxg if gk > maxg else gk
            _, ys, rs = plan[cur][k]
            if k == cur:  # stage 0 is shown (first cycle): its green just goes on
                tg = end
            else:
                ty = end
                if ys:  # some links lose green: yellow (and all-red) first
                    tr = origin + ceil((ty + yel - origin) / dt - 1e-6) * dt
                    tg = origin + ceil((tr + ar - origin) / dt - 1e-6) * dt if ar > 0 else tr
                else:  # only adds green links: the new green at once
                    tr = tg = ty
                booked.append((ty, tr, tg, cur, k, ys, rs))
            end = origin + ceil((tg + gk - origin) / dt - 1e-6) * dt
            if k < last:
                durs.append(gk)
            cur = k
        self._pending[s] = -1
        tpl = self._cycle_tpl[s].get(key)
        if tpl is None:
            logic, var = self._cycle_template(s, key, durs)
            if var is not None:  # (test fakes' Logic objects keep no phases to reuse)
                self._cycle_tpl[s][key] = (logic, var)
        elif self._cyc[s] and self._sent[s] == (key, durs):
            # SUMO holds this very program (same shape, same greens: Webster's whole-second
            # greens often repeat): restarting it at its first phase is all it takes
            logic = None
            self._set_phase(self._ids[s], 0)
            self.writes += 1
        else:  # the Logic's phases are SUMO's own objects: set the durations in place
            logic, var = tpl
            for ph, d in zip(var, durs, strict=True):
                ph.duration = d
        if logic is not None:
            self.sim.conn.trafficlight.setProgramLogic(self._ids[s], logic)
            self._set_phase(self._ids[s], 0)  # restarts the phase timer now
            self._cyc[s] = True
            self._sent[s] = (key, durs)
            self.writes += 2
        # book: changes that begin now apply at once, later ones when SUMO reaches them
        if self.record:
            self._book_history(s, booked)
        if booked:
            tl.extend(booked)
            self._booked.add(s)
            self._sync_one(s, lim)
            last_tg = booked[-1][2]
        else:
            last_tg = self._tg[s]
        if self.record:
            self._flush(now)
        self._need[s] = last_tg + maxg if k_n > 1 else math.inf
        self.next_event = min(self._need)
        return end

    def _cycle_template(self, s: int, key: tuple[int, bool], durs: list[float]
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
        k_n = self._nst[s]
        stages, plan = self._stages[s], self._plan[s]
        yel, ar = self._yel[s], self._ar[s]
        hold_last = -1  # marks the phases that lead to the held last green (index known later)
        spec: list[tuple[float | None, str, int]] = []  # (duration or None: variable, state, next)
        if prefix:
            spec.append((None, stages[cur], 1))
        for k in range(k_n):
            ys, rs = plan[cur][k][1:]
            if k != cur and ys:  # the clearance, then the new green (or the held last)
                n_clear = 2 if ar > 0 else 1
                g_idx = hold_last if k == k_n - 1 else len(spec) + n_clear
                if ar > 0:
                    spec.append((yel, ys, len(spec) + 1))
                    spec.append((ar, rs, g_idx))
                else:
                    spec.append((yel, ys, g_idx))
            if k < k_n - 1:
                # after this green: the next change's first clearance phase (appended right
                # after it), or the held last green when that change needs none
                after = len(spec) + 1
                if not plan[k][k + 1][1] and k + 1 == k_n - 1:
                    after = hold_last
                spec.append((None, stages[k], after))
            cur = k
        if not spec:
            return None, []
        tlc = self.sim.conn.trafficlight
        it = iter(durs)
        phases = []
        i_hold = len(spec)
        for d, state, nxt in spec:
            # the variable phases leave minDur and maxDur unset (-1): a static program runs
            # on ``duration`` alone, so later cycles set that one field per phase
            d_min = -1.0 if d is None else d
            d = next(it) if d is None else d
            phases.append(tlc.Phase(d, state, d_min, d_min, (i_hold if nxt == hold_last else nxt,)))
        hold = 1e7  # as in the base program: the last green lasts until the next call
        phases.append(tlc.Phase(hold, stages[k_n - 1], hold, hold))
        logic = tlc.Logic("wulin-actuator", 0, 0, phases)
        proxies = getattr(logic, "phases", None)
        if proxies is None:
            return logic, None
        return logic, [proxies[i] for i, (d, _, _) in enumerate(spec) if d is None]
