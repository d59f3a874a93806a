"""Self-organising traffic lights (Gershenson 2005, SOTL-platoon), one Numba kernel for all signals.

Vehicles waiting at red accumulate into a counter (vehicle-seconds); when it passes a
threshold and the current stage has had its minimum time, the signal moves on to the next
stage with demand, unless a short platoon is still crossing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from controllers.base import KernelController
from sim.errors import WulinError

if TYPE_CHECKING:
    from sim.state import DistrictLayout, DistrictState


class SOTLController(KernelController):
    """SOTL-platoon.

    Args:
        theta: Threshold of accumulated red demand, vehicle-seconds.
        phi_min: Minimum seconds of green before a switch is considered.
        mu: Platoon size (vehicles at green) that is not cut off.
        decision_interval: Seconds between decisions.
        max_green: Maximum green passed to the actuator.
        yellow: Yellow seconds.
        all_red: All-red seconds.
        use_numba: Use the compiled kernel.
    """

    name = "sotl"
    kernel = "sotl"
    state_fields = ("count", "stage", "stage_time", "in_transition")

    def __init__(self, theta: float = 60.0, phi_min: float = 10.0, mu: float = 3.0,
                 decision_interval: float = 2.0, max_green: float = 60.0, yellow: float = 3.0,
                 all_red: float = 2.0, use_numba: bool = True) -> None:
        for key, v in (("theta", theta), ("phi_min", phi_min), ("mu", mu)):
            if not v >= 0:
                raise WulinError(f"sotl: {key} must be >= 0, got {v}")
        if not decision_interval > 0:
            raise WulinError(f"sotl: decision_interval must be > 0, got {decision_interval}")
        self.theta, self.phi_min, self.mu = float(theta), float(phi_min), float(mu)
        self.decision_interval = float(decision_interval)
        self.actuator_params = {"min_green": min(phi_min, max_green), "max_green": max_green,
                                "yellow": yellow, "all_red": all_red}
        self.use_numba = use_numba

    def reset(self, layout: DistrictLayout, seed: int) -> None:
        from controllers import kernels

        super().reset(layout, seed)
        self.lane_stage = kernels.lane_stage_matrix(layout)
        self.kappa = np.zeros(layout.n_signals, dtype=np.float64)
        self.last_stage = np.zeros(layout.n_signals, dtype=np.int32)

    def kernel_args(self, state: DistrictState) -> tuple:
        lay = self.layout
        return (state.count, lay.in_ptr, self.lane_stage, lay.n_stages, state.stage,
                state.stage_time, state.in_transition, self.kappa, self.last_stage,
                self.decision_interval, self.theta, self.phi_min, self.mu, self.out)
