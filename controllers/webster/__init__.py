"""Webster's method: offline plans from demand in a time window, and online per-cycle splits.

* :mod:`~controllers.webster.formula`: Webster's cycle and greens from critical flow ratios.
* :mod:`~controllers.webster.plans`: one :class:`~controllers.plan.TimingPlan` per signal
  from the demand in the scenario's route files (read by :mod:`sim.demand`), keeping each
  signal's stage structure and intergreen.
* :mod:`~controllers.webster.offline`: ``webster`` runs those plans as SUMO programs (native,
  like ``fixed-time``).
* :mod:`~controllers.webster.online`: ``webster-online`` drives the actuator with a plan clock
  per signal and recomputes the splits at every cycle boundary from stop-line counts.

The corridor green wave, a transform of any plans, is :mod:`controllers.corridor`.

Names are loaded on first use (PEP 562): :mod:`controllers.corridor` imports the formula
module, and the ``webster`` controller imports the corridor, so importing the package must not
import its controllers eagerly.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from controllers.webster.formula import SAT_FLOW, scale_greens, stage_ratios, webster_timing
    from controllers.webster.offline import WebsterController
    from controllers.webster.online import OnlineWebsterController
    from controllers.webster.plans import (
        network_intergreen,
        parse_window,
        webster_plan,
        webster_plans,
    )

_HOME = {
    "SAT_FLOW": "formula", "scale_greens": "formula", "stage_ratios": "formula",
    "webster_timing": "formula", "network_intergreen": "plans", "parse_window": "plans",
    "webster_plan": "plans", "webster_plans": "plans", "WebsterController": "offline",
    "OnlineWebsterController": "online",
}
__all__ = [
    "SAT_FLOW", "OnlineWebsterController", "WebsterController", "network_intergreen",
    "parse_window", "scale_greens", "stage_ratios", "webster_plan", "webster_plans",
    "webster_timing",
]


def __getattr__(name: str) -> Any:
    """Import a public name from its submodule on first use."""
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    globals()[name] = value
    return value
