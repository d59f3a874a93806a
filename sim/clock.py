"""The one clock parser: ``"07:30"``, ``"07:30:15"`` or seconds since midnight.

Every layer reads clock times through :func:`parse_clock` (scenario files, experiment
windows and events, time-of-day schedules, command-line options), so a time means the same
everywhere.  Semantics:

* A number is seconds since midnight; it must be finite and ``>= 0`` (``-5``, ``nan`` and
  ``inf`` are refused) and a bool is not a number.
* A string is ``H:MM`` or ``HH:MM`` with optional ``:SS``; minutes and seconds below 60.
* Simulation times may run past midnight into the next day (a night scenario from
  ``"23:00"`` to ``"25:00"``; SUMO's clock simply keeps counting), up to ``latest``, by
  default :data:`SIM_LATEST` (48 h).  A time *of day* (a schedule entry) passes
  ``latest=TIME_OF_DAY_LATEST`` and so must be before ``24:00``.

Standard library only: ``controllers.plan`` (a plan is data) imports it.
"""

from __future__ import annotations

import math
import re
from typing import Any

from sim.errors import WulinError

DAY = 86400.0
SIM_LATEST = 2 * DAY
"""Latest simulation time accepted by default: the end of the next day (``"48:00"``)."""
TIME_OF_DAY_LATEST = DAY - 1
"""Latest time of day (``"23:59:59"``): schedules wrap at midnight."""

_CLOCK_RE = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")


def _range_text(latest: float) -> str:
    return f"00:00-{format_clock(latest)}"


def parse_clock(value: Any, where: str = "time", *, latest: float = SIM_LATEST) -> float:
    """Seconds since midnight from ``"07:30"``, ``"07:30:15"`` or a number of seconds.

    Args:
        value: The time as written by the user.
        where: What to name in the error (``"scenario.toml: field 'begin'"``).
        latest: Largest accepted time in seconds (see the module docstring).

    Raises:
        WulinError: not a time, negative, not finite, or after ``latest``.
    """
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if math.isfinite(value) and value >= 0:
            seconds = float(value)
    elif isinstance(value, str) and len(value) <= 16:
        m = _CLOCK_RE.fullmatch(value.strip())
        if m and int(m[2]) < 60 and int(m[3] or 0) < 60:
            seconds = float(int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3] or 0))
    if seconds is None or seconds > latest:
        raise WulinError(
            f'{where}: expected a time such as "07:00" ({_range_text(latest)}) or seconds since '
            f"midnight (>= 0), got {value!r}"
        )
    return seconds


def format_clock(seconds: float) -> str:
    """``25200.0`` -> ``"07:00"`` (seconds shown only when non-zero)."""
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h:02d}:{m:02d}" + (f":{sec:02d}" if sec else "")
