"""A limit on red time under a learned policy: a stage whose vehicles have waited ``max_red``
seconds gets the green next.

A policy trained on a delay reward may hold a lightly used approach at red for minutes when
serving it costs the busy ones more: in SUMO such vehicles teleport after 300 s, in the field
they would run the red.  Max-pressure and the schedule-driven controller bound red time the
same way (their ``max_red``); here the bound wraps any stage decision, so the policy decides
everything else.  Used by the environments (``max_red`` in the ``[env]`` table, so a policy
learns with the bound it will run under) and by :class:`agents.policy_controller.PolicyController`
(the trained ``max_red``, or one given at run time: ``policy:RUN`` with ``-p max_red=120``).

Per signal and stage the guard counts the seconds since the stage last showed green (yellow
and all-red count as red for every stage); a stage *has demand* when any lane it serves holds a
halting vehicle.  When the signal is in green, has served its minimum green and some stage with
demand has waited ``max_red`` or more, the longest-waiting of those is requested instead of the
policy's choice.
"""

from __future__ import annotations

import numpy as np

from sim.observations import SignalPadding
from sim.state import DistrictState


class RedLimit:
    """Bounds red time (module docstring).

    Args:
        padding: The layout's padding (its ``stage_in`` weights say which lanes a stage serves).
        max_red: Seconds; 0 or less turns the guard off.
    """

    def __init__(self, padding: SignalPadding, max_red: float) -> None:
        self.padding = padding
        self.max_red = float(max_red)
        self.reset()

    def reset(self) -> None:
        """Forget the last episode (a new one starts with no stage waiting)."""
        self.waited = np.zeros(self.padding.stage_valid.shape, dtype=np.float64)
        self._time: float | None = None
        self.forced = 0

    def apply(self, decision: np.ndarray, state: DistrictState) -> np.ndarray:
        """``decision`` (``[S]`` requests, -1 = keep) with starved stages served first."""
        p = self.padding
        dt = 0.0 if self._time is None or state.time < self._time else state.time - self._time
        self._time = state.time
        S = len(decision)
        green = ~np.asarray(state.in_transition, dtype=bool)
        self.waited += dt
        self.waited[np.arange(S)[green], np.asarray(state.stage)[green]] = 0.0
        if self.max_red <= 0:
            return decision
        demand = (p.stage_in @ (state.queue > 0).astype(np.float32)).reshape(S, p.n_stages) > 0
        starved = np.where(demand & p.stage_valid & (self.waited >= self.max_red), self.waited, -1.0)
        ready = green & (np.asarray(state.stage_time) >= p.min_green - 1e-6)
        force = ready & (starved.max(axis=1) >= 0)
        out = np.asarray(decision, dtype=np.int32).copy()
        out[force] = starved[force].argmax(axis=1)
        self.forced += int(force.sum())
        return out
