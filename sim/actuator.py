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
yellow, of all-red, of minimum or maximum green); :meth:`tick` returns after one comparison
when no event is due, so the per-step cost does not grow with the number of signals.
"""

from __future__ import annotations

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

    Attributes:
        stage: Current green stage per signal (the stage being left during a transition).
        target: Stage a running transition leads to (``-1`` when in green).
        pending: Queued request per signal (``-1`` when none).
        in_transition: True while a signal shows yellow or all-red.
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
        self.history: list[tuple[float, int, str]] = []
        self._ids = layout.signal_ids
        self._stages = [spec.stages for spec in layout.specs]
        self._green = [[np.array([c in GREEN for c in st], bool) for st in spec.stages]
                       for spec in layout.specs]
        self.n_stages = np.array([len(s) for s in self._stages], dtype=np.int32)
        self.stage = np.zeros(n, dtype=np.int32)
        self.target = np.full(n, -1, dtype=np.int32)
        self.pending = np.full(n, -1, dtype=np.int32)
        self.mode = np.zeros(n, dtype=np.int8)
        self.since = np.zeros(n, dtype=np.float64)  # start of the current green or transition
        self.due = np.full(n, np.inf)
        self._next = np.inf
        self._shown: list[str] = [""] * n
        self._now = 0.0
        self._set_state = None
        self._clear_cache: dict[tuple[int, int, int, str], str] = {}

    # ------------------------------------------------------------------ public
    @property
    def in_transition(self) -> np.ndarray:
        return self.mode != GREEN_MODE

    @property
    def stage_time(self) -> np.ndarray:
        """Seconds since the current green (or transition) began, as float32."""
        return (self._now - self.since).astype(np.float32)

    @property
    def states(self) -> list[str]:
        """The state string currently shown by each signal."""
        return list(self._shown)

    def reset(self) -> None:
        """Take control of every signal and start each one in its stage 0."""
        self._set_state = self.sim.conn.trafficlight.setRedYellowGreenState
        self._now = float(self.sim.time)
        self.history.clear()
        self.stage[:] = 0
        self.target[:] = -1
        self.pending[:] = -1
        self.mode[:] = GREEN_MODE
        self.since[:] = self._now
        self._shown = [""] * self.layout.n_signals
        for s in range(self.layout.n_signals):
            if self.n_stages[s] == 0:
                raise WulinError(f"signal {self._ids[s]!r} has no green stage in its program")
            self._show(s, self._stages[s][0])
            self._schedule(s)
        self._next = float(self.due.min()) if self.due.size else np.inf

    def request(self, decision: np.ndarray) -> None:
        """Ask each signal to serve a stage (``-1`` = no new request).

        Raises:
            WulinError: wrong shape or a stage a signal does not have.
        """
        d = np.asarray(decision)
        n = self.layout.n_signals
        if d.shape != (n,):
            raise WulinError(f"decision must have one entry per signal ({n}), got shape {d.shape}")
        bad = (d < -1) | (d >= self.n_stages)
        if bad.any():
            s = int(np.flatnonzero(bad)[0])
            raise WulinError(
                f"decision for signal {self._ids[s]!r}: stage {int(d[s])} does not exist "
                f"(valid: -1..{int(self.n_stages[s]) - 1})"
            )
        for s in np.flatnonzero(d >= 0):
            k = int(d[s])
            current = self.target[s] if self.mode[s] != GREEN_MODE else self.stage[s]
            new = -1 if k == current else k
            if new != self.pending[s]:
                self.pending[s] = new
                if self.mode[s] == GREEN_MODE:
                    self._schedule(s)
        self._next = float(self.due.min()) if self.due.size else np.inf
        if self._next <= self._now + _EPS:  # e.g. minimum green already served: act now
            self._advance(self._now)

    def tick(self, time: float | None = None) -> None:
        """Advance timers; call once per simulation step, after ``sim.step()``.

        Args:
            time: The simulation time now (read from the simulation when omitted).
        """
        now = float(self.sim.time) if time is None else float(time)
        self._now = now
        if now + _EPS < self._next:
            return
        self._advance(now)

    # ------------------------------------------------------------------ internals
    def _advance(self, now: float) -> None:
        for s in np.flatnonzero(self.due <= now + _EPS):
            for _ in range(4):  # green -> yellow -> all-red -> green at most
                if self.due[s] > now + _EPS:
                    break
                self._event(int(s), now)
        self._next = float(self.due.min()) if self.due.size else np.inf

    def _show(self, s: int, state: str) -> None:
        if state != self._shown[s]:
            self._set_state(self._ids[s], state)  # type: ignore[misc]
            self._shown[s] = state
            if self.record:
                self.history.append((self._now, s, state))

    def _schedule(self, s: int) -> None:
        m = self.mode[s]
        if m == YELLOW_MODE:
            self.due[s] = self.since[s] + self.yellow[s]
        elif m == ALL_RED_MODE:
            self.due[s] = self.since[s] + self.all_red[s]
        elif self.pending[s] >= 0:
            self.due[s] = self.since[s] + self.min_green[s]
        elif self.n_stages[s] > 1:
            self.due[s] = self.since[s] + self.max_green[s]
        else:
            self.due[s] = np.inf

    def _clearance_state(self, s: int, char: str) -> str:
        key = (s, int(self.stage[s]), int(self.target[s]), char)
        cached = self._clear_cache.get(key)
        if cached is None:
            cached = self._clear_cache[key] = self._make_clearance(s, char)
        return cached

    def _make_clearance(self, s: int, char: str) -> str:
        old = self._stages[s][self.stage[s]]
        new_green = self._green[s][self.target[s]]
        return "".join(
            c if (c in GREEN and new_green[i]) else (char if c in GREEN else "r")
            for i, c in enumerate(old)
        )

    def _event(self, s: int, now: float) -> None:
        m = self.mode[s]
        if m == GREEN_MODE:
            if self.pending[s] < 0:  # maximum green reached: next stage in cycle order
                self.pending[s] = (self.stage[s] + 1) % self.n_stages[s]
            self.target[s] = self.pending[s]
            self.pending[s] = -1
            losing = self._green[s][self.stage[s]] & ~self._green[s][self.target[s]]
            if not losing.any():
                self._enter_green(s, now)
            else:
                self.mode[s] = YELLOW_MODE
                self.since[s] = now
                self._show(s, self._clearance_state(s, "y"))
                self._schedule(s)
        elif m == YELLOW_MODE:
            self._enter_all_red(s, now)
        else:
            self._enter_green(s, now)

    def _enter_all_red(self, s: int, now: float) -> None:
        if self.all_red[s] > 0:
            self.mode[s] = ALL_RED_MODE
            self.since[s] = now
            self._show(s, self._clearance_state(s, "r"))
            self._schedule(s)
        else:
            self._enter_green(s, now)

    def _enter_green(self, s: int, now: float) -> None:
        self.stage[s] = self.target[s]
        self.target[s] = -1
        if self.pending[s] == self.stage[s]:
            self.pending[s] = -1
        self.mode[s] = GREEN_MODE
        self.since[s] = now
        self._show(s, self._stages[s][self.stage[s]])
        self._schedule(s)
