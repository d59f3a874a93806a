"""A yellow and an all-red for signal programs that turn green straight to red.

Converted networks (CityFlow benchmarks, some OSM imports) often hold programs whose
transitions are red (and ``s``) only: a link goes from ``G``/``g`` to ``r`` with no amber.
SUMO runs them, but no controller should show that, and a plan read from such a program has a
0 s yellow.  Where (and only where) a program does this for a vehicle link, :func:`with_amber`
puts an ITE-style clearance in, sized from the signal's approach speed and junction size:

* yellow = t_r + v / (2a + 2 g G), at least 3 s (t_r 1 s, a 3 m/s², level grade);
* all-red = (W + L) / v, at least 1 s (W the junction's size, L a 5 m car), rounded up so
  that yellow + all-red is whole seconds (NTCIP splits are whole seconds).

Where the green is followed by a phase with no vehicle green (the converted red
"transition"; a right turn green in every phase does not count), the yellow takes the first seconds of that phase and the rest stays as the
all-red (at least the all-red above), so the cycle grows only when the transition was too short;
where a green is followed directly by another green, a yellow and an all-red are inserted.
Pedestrian links (crossings) are left alone: they go from walk to red without amber in SUMO's
own programs too.

Deriving this once when the topology is read keeps the actuator and the loop unchanged: every
controller then sees a program with proper clearances (plans, Webster, native programs).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from sim.topology import ProgramPhase

REACTION_S = 1.0
DECEL = 3.0
CAR_LENGTH_M = 5.0
MIN_YELLOW_S = 3.0
MIN_ALL_RED_S = 1.0
_GREEN = "Gg"
_STOP = "rs"


class Clearance(NamedTuple):
    """The yellow and all-red put into a program, seconds."""

    yellow: float
    all_red: float


def _tenth_up(x: float) -> float:
    return math.ceil(x * 10 - 1e-9) / 10


def ite_clearance(speed_ms: float, junction_m: float) -> Clearance:
    """ITE yellow and all-red for an approach speed (m/s) and a junction size (m)."""
    v = max(speed_ms, 1.0)
    yellow = _tenth_up(max(MIN_YELLOW_S, REACTION_S + v / (2 * DECEL)))
    all_red = max(MIN_ALL_RED_S, (junction_m + CAR_LENGTH_M) / v)
    # NTCIP splits (green + yellow + all-red) are whole seconds: round the all-red up to that
    return Clearance(yellow, round(math.ceil(yellow + all_red - 1e-9) - yellow, 1))


def losing_links(cur: str, nxt: str, used: Collection[int]) -> list[int]:
    """Vehicle links green in ``cur`` and red (or ``s``) in ``nxt``: a change without amber."""
    return [i for i in used if i < len(cur) and cur[i] in _GREEN and nxt[i] in _STOP]


def lacks_amber(phases: Sequence[ProgramPhase], used: Collection[int]) -> bool:
    """True when some phase change turns a vehicle link from green straight to red."""
    n = len(phases)
    return n > 1 and any(losing_links(phases[k].state, phases[(k + 1) % n].state, used)
                         for k in range(n))


def always_green(states: Collection[str], links: Collection[int]) -> frozenset[int]:
    """Links of ``links`` green in every one of ``states`` (empty when that is all of them)."""
    found = frozenset(i for i in links if all(i < len(st) and st[i] in _GREEN for st in states))
    return found if len(found) < len(links) else frozenset()


def _mark(state: str, links: list[int], char: str) -> str:
    chars = list(state)
    for i in links:
        chars[i] = char
    return "".join(chars)


def with_amber(phases: Sequence[ProgramPhase], used: Collection[int],
               clearance: Clearance) -> tuple[ProgramPhase, ...]:
    """``phases`` with a yellow and all-red wherever a vehicle link goes green -> red directly.

    Programs that already clear every change come back unchanged (the same tuple of phases).
    """
    if not lacks_amber(phases, used):
        return tuple(phases)
    n = len(phases)
    always = always_green([ph.state for ph in phases], used)
    stage_links = [i for i in used if i not in always]
    out: list[ProgramPhase] = []
    shorten: dict[int, float] = {}  # phase index -> seconds its yellow took from it
    for k, ph in enumerate(phases):
        if k in shorten:
            ph = _shorter(ph, shorten[k], clearance.all_red)
        out.append(ph)
        nxt = phases[(k + 1) % n]
        lost = losing_links(ph.state, nxt.state, used)
        if not lost:
            continue
        out.append(_clear_phase(ph, clearance.yellow, _mark(ph.state, lost, "y")))
        if any(nxt.state[i] in _GREEN for i in stage_links if i < len(nxt.state)):
            out.append(_clear_phase(ph, clearance.all_red, _mark(ph.state, lost, "r")))
        elif (k + 1) % n != 0:
            shorten[k + 1] = clearance.yellow
        else:  # the red transition is phase 0, already written: shorten it in place
            out[0] = _shorter(out[0], clearance.yellow, clearance.all_red)
    return tuple(out)


def _shorter(ph: ProgramPhase, by: float, at_least: float) -> ProgramPhase:
    """A red transition that gave its first ``by`` seconds to the yellow (fixed length)."""
    d = round(max(ph.duration - by, at_least), 3)
    return replace(ph, duration=d, min_dur=None, max_dur=None)


def _clear_phase(like: ProgramPhase, duration: float, state: str) -> ProgramPhase:
    """A fixed clearance phase (made from ``like``: this module does not import the topology)."""
    return replace(like, duration=duration, state=state, min_dur=None, max_dur=None)
