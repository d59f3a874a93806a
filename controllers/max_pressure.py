"""Max-pressure control (Varaiya 2013), decisions for all signals in one Numba kernel.

Every ``decision_interval`` seconds each signal is asked to serve the stage whose green
movements have the largest total pressure (vehicles upstream minus vehicles downstream).  The
actuator enforces minimum green, yellow and all-red.  Pure pressure can hold a lightly used
stage (a protected left turn, say) at red until SUMO teleports its vehicles; ``max_red``
serves such a stage, when it has vehicles waiting, once it has been red that long.
``pressure="queue"`` counts only the halting vehicles upstream (the queue-count variant of the
max-pressure literature) instead of every vehicle on the in-lane.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from controllers.base import KernelController
from sim.errors import WulinError

if TYPE_CHECKING:
    from sim.state import DistrictLayout, DistrictState


class MaxPressureController(KernelController):
    """Varaiya's max-pressure.

    Args:
        decision_interval: Seconds between decisions.
        min_green: Minimum green passed to the actuator, seconds.
        max_green: Maximum green passed to the actuator, seconds.
        yellow: Yellow seconds.
        all_red: All-red seconds.
        max_red: A stage with vehicles on its movements that has not been green for this many
            seconds is served first (the longest-waiting one); ``None``: pure max-pressure.
        pressure: ``"count"``: upstream vehicles on the in-lane (Varaiya); ``"queue"``:
            upstream halting vehicles only.
        use_numba: Use the compiled kernel (False runs the same loop as plain Python).
    """

    name = "max-pressure"
    kernel = "max_pressure"
    state_fields = ("count", "out_count", "stage", "in_transition")

    def __init__(self, decision_interval: float = 5.0, min_green: float = 10.0,
                 max_green: float = 60.0, yellow: float = 3.0, all_red: float = 2.0,
                 max_red: float | None = None, pressure: str = "count",
                 use_numba: bool = True) -> None:
        if not decision_interval > 0:
            raise WulinError(f"max-pressure: decision_interval must be > 0, got {decision_interval}")
        if max_red is not None and not max_red > 0:
            raise WulinError(f"max-pressure: max_red must be > 0 seconds (or None), got {max_red}")
        if pressure not in ("count", "queue"):
            raise WulinError(f"max-pressure: pressure must be 'count' or 'queue', got {pressure!r}")
        if pressure == "queue":  # the kernel reads the halting counts in place of all vehicles
            self.state_fields = ("queue", "out_count", "stage", "in_transition")
        self.pressure = pressure
        self.decision_interval = float(decision_interval)
        self.max_red = math.inf if max_red is None else float(max_red)
        self.actuator_params = {"min_green": min_green, "max_green": max_green,
                                "yellow": yellow, "all_red": all_red}
        self.use_numba = use_numba

    def reset(self, layout: DistrictLayout, seed: int) -> None:
        from controllers import kernels

        super().reset(layout, seed)
        self._w_in, self._w_out = kernels.movement_weights(layout)
        # seconds since each stage was green, counted at decisions (for ``max_red``)
        self._waited = np.zeros(layout.stage_green.shape[:2], dtype=np.float64)

    def kernel_args(self, state: DistrictState) -> tuple:
        lay = self.layout
        upstream = state.queue if self.pressure == "queue" else state.count
        return (upstream, state.out_count, lay.mov_ptr, lay.mov_in, lay.mov_out,
                lay.mov_link, self._w_in, self._w_out, lay.stage_green, lay.n_stages,
                state.stage, state.in_transition, self._waited, self.decision_interval,
                self.max_red, self.out)
