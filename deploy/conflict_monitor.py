"""The cabinet's conflict monitor (MMU): checks every output of the controller, independently.

A conflict monitor does not trust the controller's software: it watches the load-switch
outputs and, on any output the intersection must never show, puts the intersection into
flash and latches an alarm until someone resets it.  :class:`ConflictMonitor` does that to
the emulator's phase outputs (:class:`~deploy.phase_engine.PhaseOutputs`), each tick:

* **conflict**: two phases on (green or yellow) together that the compatibility (permissive)
  matrix does not allow;
* **clearance**: a phase going from green to red without yellow, or ending its yellow sooner
  than the monitor's minimum yellow.

The compatibility matrix is derived, as an engineer programs the monitor's card, from the
signal's link conflicts (the network's foe relation, :mod:`sim.topology`) and the stages the
phases serve (:func:`compatibility`): phases that serve the same stage are compatible; phases
of two stages are compatible only when no link green in one is a foe of a link green in the
other.  It knows nothing of the controller's timing: it is given the matrix and the outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from deploy.phase_engine import PhaseOutputs, bit
from deploy.profile import DeviceProfile


def compatibility(profile: DeviceProfile, stage_states: Sequence[str],
                  conflicts: Sequence[Sequence[bool]] | None) -> dict[int, int]:
    """Phase -> bitmap of the phases it may be on with (itself included).

    Args:
        profile: Which phases serve which stage.
        stage_states: Each stage's green state over the links (``G``/``g``/``r``).
        conflicts: ``conflicts[i][j]`` True when links ``i`` and ``j`` are foes; ``None``: every
            pair of different stages conflicts (the safe default when the network is not at hand).
    """
    greens = [[i for i, c in enumerate(s) if c in "Gg"] for s in stage_states]

    def stages_compatible(a: int, b: int) -> bool:
        if a == b:
            return True
        if conflicts is None:
            return False
        return not any(conflicts[i][j] for i in greens[a] for j in greens[b])

    stage_of = {p: k for k, ps in enumerate(profile.stage_phases) for p in ps}
    out: dict[int, int] = {}
    for p, a in stage_of.items():
        out[p] = 0
        for q, b in stage_of.items():
            if stages_compatible(a, b):
                out[p] |= bit(q)
    return out


@dataclass(frozen=True)
class MonitorFault:
    """Why the monitor tripped: ``kind`` conflict or clearance, the phases, when (deciseconds)."""

    kind: str
    phases: tuple[int, ...]
    at: int

    def describe(self) -> str:
        names = " and ".join(f"{p:02d}" for p in self.phases)
        what = "CONFLICT PHASES" if self.kind == "conflict" else "CLEARANCE FAULT PHASE"
        return f"MMU {what} {names}"


class ConflictMonitor:
    """Checks outputs against the compatibility matrix; latches the first fault.

    Args:
        compatible: Phase -> bitmap of phases it may be on with (:func:`compatibility`).
        min_yellow: Shortest yellow the monitor accepts, deciseconds (0: any yellow).
    """

    def __init__(self, compatible: dict[int, int], min_yellow: int = 0) -> None:
        self.compatible, self.min_yellow = dict(compatible), int(min_yellow)
        self.fault: MonitorFault | None = None
        self.checks = 0
        self._greens = 0
        self._yellow_since: dict[int, int] = {}

    @property
    def tripped(self) -> bool:
        return self.fault is not None

    def check(self, out: PhaseOutputs, now: int) -> MonitorFault | None:
        """Check one set of outputs shown at ``now``; returns (and latches) a new fault."""
        if self.fault is not None or out.flash:
            self._greens, self._yellow_since = 0, {}  # flashing red: every phase has stopped traffic
            return None
        self.checks += 1
        fault = self._conflict(out, now) or self._clearance(out, now)
        self._greens = out.greens
        if fault is not None:
            self.fault = fault
        return fault

    def _conflict(self, out: PhaseOutputs, now: int) -> MonitorFault | None:
        on = out.greens | out.yellows
        for p in sorted(self.compatible):
            if on & bit(p):
                bad = on & ~self.compatible[p]
                if bad:
                    q = (bad & -bad).bit_length()
                    return MonitorFault("conflict", (p, q), now)
        unknown = on & ~sum(bit(p) for p in self.compatible)
        if unknown:  # an output the monitor was never programmed for
            return MonitorFault("conflict", ((unknown & -unknown).bit_length(),), now)
        return None

    def _clearance(self, out: PhaseOutputs, now: int) -> MonitorFault | None:
        for p in self.compatible:
            b = bit(p)
            if out.yellows & b:
                self._yellow_since.setdefault(p, now)
            elif p in self._yellow_since:
                since = self._yellow_since.pop(p)
                if now - since < self.min_yellow:
                    return MonitorFault("clearance", (p,), now)
            if self._greens & b and out.reds & b:
                return MonitorFault("clearance", (p,), now)
        return None

    def reset(self) -> None:
        """The technician's reset: clears the latched fault."""
        self.fault, self._greens, self._yellow_since = None, 0, {}
