"""Webster's method: offline plans from demand in a time window, and online per-cycle splits.

* :mod:`~controllers.webster.formula`: Webster's cycle and greens from critical flow ratios.
* :mod:`~controllers.webster.plans`: one :class:`~controllers.plan.TimingPlan` per signal
  from the demand in the scenario's route files (read by :mod:`sim.demand`), keeping each
  signal's stage structure and intergreen.
* :mod:`~controllers.webster.offline`: ``webster`` runs those plans as SUMO programs (native,
  like ``fixed-time``).
* :mod:`~controllers.webster.online`: ``webster-online`` drives the actuator with a plan clock
  per signal and recomputes the splits at every cycle boundary from stop-line counts.

The corridor green wave, a transform of any plans, is :mod:`controllers.corridor`; greens
rescaled to a given cycle are :mod:`controllers.splits`.
"""

from controllers.webster.formula import SAT_FLOW, stage_ratios, webster_timing
from controllers.webster.offline import WebsterController
from controllers.webster.online import OnlineWebsterController
from controllers.webster.plans import (
    network_intergreen,
    parse_window,
    webster_plan,
    webster_plans,
)

__all__ = [
    "SAT_FLOW",
    "OnlineWebsterController",
    "WebsterController",
    "network_intergreen",
    "parse_window",
    "stage_ratios",
    "webster_plan",
    "webster_plans",
    "webster_timing",
]
