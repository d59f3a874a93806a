"""The plain reference actuator: the test oracle for :class:`sim.actuator.SignalActuator`.

It applies the same rules in the most direct way: every yellow, all-red and green is an event
of its own, and every state is written with ``setRedYellowGreenState`` when it changes.  The
property tests drive both with the same decisions and check that SUMO, running the programs
and phases the real actuator hands it, shows exactly the states this one writes, at the same
times; and that those states follow the rules.  It is not used outside the tests.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sim.actuator import (
    ALL_RED_MODE,
    GREEN_MODE,
    YELLOW_MODE,
    HistoryEntry,
    clearance_state,
    green_mask,
    per_signal,
)
from sim.errors import WulinError
from sim.state import DistrictLayout

_EPS = 1e-6


class ReferenceActuator:
    """Same constructor, :meth:`request`, :meth:`tick` and views as ``SignalActuator``."""

    def __init__(self, sim: Any, layout: DistrictLayout, *, yellow: Any = 3.0,
                 all_red: Any = 2.0, min_green: Any = 5.0, max_green: Any = 90.0,
                 record: bool = False) -> None:
        n = layout.n_signals
        self.sim = sim
        self.record = record
        self.yellow = per_signal(yellow, n, "yellow").tolist()
        self.all_red = per_signal(all_red, n, "all_red").tolist()
        self.min_green = per_signal(min_green, n, "min_green").tolist()
        self.max_green = per_signal(max_green, n, "max_green").tolist()
        self.ids = list(layout.signal_ids)
        self.stages = [list(spec.stages) for spec in layout.specs]
        self.masks = [[green_mask(st) for st in stages] for stages in self.stages]
        self.n = n
        self.history: list[HistoryEntry] = []
        self.writes = 0

    # the views
    @property
    def stage(self) -> np.ndarray:
        return np.array(self._stage, dtype=np.int32)

    @property
    def target(self) -> np.ndarray:
        return np.array(self._target, dtype=np.int32)

    @property
    def pending(self) -> np.ndarray:
        return np.array(self._pending, dtype=np.int32)

    @property
    def mode(self) -> np.ndarray:
        return np.array(self._mode, dtype=np.int8)

    @property
    def in_transition(self) -> np.ndarray:
        return np.array([m != GREEN_MODE for m in self._mode], dtype=np.bool_)

    @property
    def stage_time(self) -> np.ndarray:
        return np.array([self._now - t for t in self._since], dtype=np.float32)

    @property
    def states(self) -> list[str]:
        return list(self._shown)

    def views(self) -> tuple[list[int], list[float], list[bool]]:
        return self.stage.tolist(), self.stage_time.tolist(), self.in_transition.tolist()

    # driving
    def reset(self) -> None:
        n = self.n
        self._set_state = self.sim.conn.trafficlight.setRedYellowGreenState
        self._now = float(self.sim.time)
        self._stage = [0] * n
        self._target = [-1] * n
        self._pending = [-1] * n
        self._mode = [GREEN_MODE] * n
        self._since = [self._now] * n
        self._due = [math.inf] * n
        self._shown = [""] * n
        for s in range(n):
            self._show(s, self.stages[s][0])
            self._schedule(s)

    def request(self, decision: np.ndarray) -> None:
        d = np.asarray(decision)
        if d.shape != (self.n,):
            raise WulinError(f"decision must have one entry per signal ({self.n}), "
                             f"got shape {d.shape}")
        for s, k in enumerate(d.tolist()):
            if k == -1:
                continue
            if k < -1 or k >= len(self.stages[s]):
                raise WulinError(f"decision for signal {self.ids[s]!r}: stage {k} does not exist")
            green = self._mode[s] == GREEN_MODE
            new = -1 if k == (self._stage[s] if green else self._target[s]) else k
            if new != self._pending[s]:
                self._pending[s] = new
                self._schedule(s)
        self._advance()

    def tick(self, time: float | None = None) -> None:
        self._now = float(self.sim.time) if time is None else float(time)
        self._advance()

    # the rules, one event at a time
    def _advance(self) -> None:
        lim = self._now + _EPS
        for s in range(self.n):
            for _ in range(8):  # green -> yellow -> all-red -> green (-> yellow ...)
                if self._due[s] > lim:
                    break
                self._event(s)

    def _show(self, s: int, state: str) -> None:
        if state != self._shown[s]:
            self._set_state(self.ids[s], state)
            self.writes += 1
            self._shown[s] = state
            if self.record:
                self.history.append(HistoryEntry(self._now, s, state))

    def _schedule(self, s: int) -> None:
        m, since = self._mode[s], self._since[s]
        if m == YELLOW_MODE:
            self._due[s] = since + self.yellow[s]
        elif m == ALL_RED_MODE:
            self._due[s] = since + self.all_red[s]
        elif self._pending[s] >= 0:
            self._due[s] = since + self.min_green[s]
        elif len(self.stages[s]) > 1:
            self._due[s] = since + self.max_green[s]
        else:
            self._due[s] = math.inf

    def _clearance(self, s: int, char: str) -> str:
        return clearance_state(self.stages[s][self._stage[s]],
                               self.masks[s][self._target[s]], char)

    def _event(self, s: int) -> None:
        m = self._mode[s]
        if m == GREEN_MODE:
            cur, nxt = self._stage[s], self._pending[s]
            if nxt < 0:  # maximum green reached: next stage in cycle order
                nxt = (cur + 1) % len(self.stages[s])
            self._target[s] = nxt
            self._pending[s] = -1
            if self.masks[s][cur] & ~self.masks[s][nxt]:  # some links lose green: yellow
                self._enter(s, YELLOW_MODE, self._clearance(s, "y"))
                return
        elif m == YELLOW_MODE and self.all_red[s] > 0:
            self._enter(s, ALL_RED_MODE, self._clearance(s, "r"))
            return
        k = self._stage[s] = self._target[s]
        self._target[s] = -1
        if self._pending[s] == k:
            self._pending[s] = -1
        self._enter(s, GREEN_MODE, self.stages[s][k])

    def _enter(self, s: int, mode: int, state: str) -> None:
        self._mode[s] = mode
        self._since[s] = self._now
        self._show(s, state)
        self._schedule(s)
