"""Time-of-day periods to optimise (``AM=07:00-09:00,PM=17:00-19:00``), checked against a scenario.

A period is simulated from ``start - warmup`` (the scenario's warm-up, never before the
scenario's begin) to its end; its KPIs count from its start.  A period outside the scenario's
window, a bad clock or a repeated name is one :class:`~sim.errors.WulinError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sim.clock import format_clock, parse_clock
from sim.errors import WulinError

if TYPE_CHECKING:
    from sim.scenario import Scenario

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,15}$")


@dataclass(frozen=True)
class Period:
    """One time-of-day period.

    Attributes:
        name: Short name (``AM``), the folder of its plans.
        start: Start, seconds since midnight (KPIs count from here).
        end: End, seconds since midnight.
        sim_begin: Where its simulation starts (``start`` minus the warm-up).
    """

    name: str
    start: float
    end: float
    sim_begin: float

    @property
    def warmup(self) -> float:
        return self.start - self.sim_begin

    @property
    def label(self) -> str:
        return f"{self.name} {format_clock(self.start)}-{format_clock(self.end)}"

    @property
    def clock(self) -> str:
        """``HH:MM`` of the start, as a schedule entry names it."""
        return format_clock(self.start)[:5]


def parse_periods(text: str, scenario: Scenario) -> list[Period]:
    """``"AM=07:00-09:00,PM=17:00-19:00"`` -> periods inside ``scenario``'s window, sorted.

    Raises:
        WulinError: bad syntax, a repeated name, overlapping periods, or a period outside
            the scenario's window.
    """
    if not text.strip():
        raise WulinError("--periods: name at least one period, e.g. AM=07:00-09:00")
    out: list[Period] = []
    for part in text.split(","):
        name, sep, window = part.strip().partition("=")
        if not sep or not _NAME_RE.match(name):
            raise WulinError(f"--periods: {part.strip()!r} is not NAME=HH:MM-HH:MM (e.g. AM=07:00-09:00)")
        a, sep2, b = window.partition("-")
        if not sep2:
            raise WulinError(f"--periods {name}: {window!r} is not HH:MM-HH:MM")
        start = parse_clock(a.strip(), f"--periods {name} start")
        end = parse_clock(b.strip(), f"--periods {name} end")
        if end <= start:
            raise WulinError(f"--periods {name}: the end {b.strip()} must be after the start {a.strip()}")
        if start < scenario.begin or end > scenario.end:
            raise WulinError(
                f"--periods {name}={window}: outside scenario {scenario.id}'s window "
                f"{format_clock(scenario.begin)}-{format_clock(scenario.end)}; choose a period inside it "
                "or a scenario that covers it")
        if any(p.name == name for p in out):
            raise WulinError(f"--periods: the name {name!r} is used twice")
        out.append(Period(name, start, end, max(scenario.begin, start - scenario.warmup)))
    out.sort(key=lambda p: p.start)
    for p, q in zip(out, out[1:], strict=False):
        if q.start < p.end:
            raise WulinError(f"--periods: {p.label} and {q.label} overlap")
    return out
