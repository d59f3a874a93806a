"""Faults injected into the closed loop, and what each did: fallback, safety, recovery.

A central system is only deployable if every way it can fail leaves the street safe.  Each
fault here is injected into a running co-simulation (:func:`deploy.sumo_bridge.run_cosim`,
``wulin cosim --fault NAME``) over a window ``[start, start + duration)`` of simulated time:

==================  =============================================================================
``loss-all``        every device's link cut (nothing reaches the agents)
``loss-one``        one device's link cut
``intermittent``    one device's link drops each message with probability 1/2
``late``            one device answers every request late (twice the link timeout): central
                    gives up on each answer and drops it when it comes
``reboot``          one device restarts: silent for the window, start-up flash, its SNMP engine
                    restarts (boots + 1), then its time-of-day plan
``central-crash``   the central process stops: no poll, no command for the window; then a new
                    central process (new SNMP sessions) takes the devices again
``refused``         commands the device must refuse or defer: a hold naming two conflicting phases
                    (refused whole, ``inconsistentValue``), and a force-off of a green the moment
                    it starts (deferred to its minimum green)
==================  =============================================================================

:class:`FaultRun` is called each simulated second (before the devices tick) and watches the
devices it hurt: when each fell back (``unitControlStatus`` backupMode, or a restart), from when
its heads showed its time-of-day plan exactly as the plan's tlLogic would, step for step for a
whole cycle (a fault must last that long for it to be seen: central takes the device back as
soon as the link returns), and, after the window, when central had it again (``systemControl``).  SUMO's safety is the bridge's: every
state given to SUMO is checked against the conflict matrix each step.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from deploy import oids as O
from deploy.emulator import ControllerEmulator
from deploy.phase_engine import GREEN
from sim.errors import WulinError

FAULTS = ("loss-all", "loss-one", "intermittent", "late", "reboot", "central-crash", "refused")


@dataclass(frozen=True)
class FaultSpec:
    """Which fault, when (seconds after the scenario's begin), for how long, on which device."""

    kind: str
    start: float = 120.0
    duration: float = 30.0
    device: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULTS:
            raise WulinError(f"--fault: unknown fault {self.kind!r}; known: {', '.join(FAULTS)}")
        if self.start < 0 or self.duration <= 0:
            raise WulinError(f"--fault-at / --fault-for: {self.start:g} s / {self.duration:g} s: the start must "
                             "be 0 or more and the duration above 0")


@dataclass
class DeviceOutcome:
    """What one hurt device did (seconds; ``None``: it did not happen in the run)."""

    signal_id: str
    backup_time: int
    cycle: float
    fell_back: float | None = None  # from the fault's start to backup mode (a reboot: answering again)
    in_plan: float | None = None  # from the fault's start to heads exactly the plan's, for a whole cycle from then
    match_since: float | None = None  # start of the current run of steps showing exactly the plan
    resumed: float | None = None  # from the window's end to systemControl again
    min_green_kept: bool | None = None  # refused: the forced-off green lasted its minimum green

    @property
    def within_target(self) -> bool | None:
        """Back on its plan within ``unitBackupTime`` + one cycle (``None``: it never fell back)."""
        return None if self.in_plan is None else self.in_plan <= self.backup_time + self.cycle


@dataclass
class FaultRun:
    """Injects one :class:`FaultSpec` into a co-simulation and records the outcome (module docstring).

    Args:
        spec: The fault.
        begin: The scenario's begin, seconds since midnight.
        link_timeout: The central link's answer timeout (``late`` answers after twice it).
    """

    spec: FaultSpec
    begin: float
    link_timeout: float = 0.3
    outcomes: dict[int, DeviceOutcome] = field(default_factory=dict)
    refusals: list[str] = field(default_factory=list)
    _rng: random.Random = field(default_factory=lambda: random.Random(14))
    _green_since: float | None = None
    _forced: bool = False

    @property
    def t0(self) -> float:
        return self.begin + self.spec.start

    @property
    def t1(self) -> float:
        return self.t0 + self.spec.duration

    def central_down(self, t: float) -> bool:
        """Whether the central process is down at ``t`` (``central-crash`` only)."""
        return self.spec.kind == "central-crash" and self.t0 <= t < self.t1

    def hurt(self, emus: Sequence[ControllerEmulator]) -> list[int]:
        if self.spec.device >= len(emus):
            raise WulinError(f"--fault-device {self.spec.device}: the network has {len(emus)} signals")
        return list(range(len(emus))) if self.spec.kind in ("loss-all", "central-crash") else [self.spec.device]

    def __call__(self, t: float, emus: Sequence[ControllerEmulator], central: Any = None) -> None:
        """One simulated second: arm or clear the fault, then watch the hurt devices."""
        idx = self.hurt(emus)
        if not self.outcomes:
            self.outcomes = {i: DeviceOutcome(emus[i].profile.signal_id, int(emus[i].db[O.UNIT_BACKUP_TIME]) or 0,
                                              float(emus[i].base_plan.cycle)) for i in idx}
        inside = self.t0 <= t < self.t1
        for i in idx:
            self._inject(t, emus[i], inside, central, i)
        if t >= self.t0:
            for i in idx:
                self._watch(t, emus[i], self.outcomes[i])

    def _inject(self, t: float, emu: ControllerEmulator, inside: bool, central: Any, i: int) -> None:
        kind, f = self.spec.kind, emu.faults
        if kind in ("loss-all", "loss-one"):
            emu.agent.link_up = not inside
        elif kind == "intermittent":
            emu.agent.link_up = not inside or self._rng.random() < 0.5
        elif kind == "late":
            f.delay_responses, f.delay_s = (10**9, 2 * self.link_timeout) if inside else (0, 0.0)
        elif kind == "reboot" and t == self.t0:
            f.reboot_s = self.spec.duration
            emu.reboot()
        elif kind == "refused" and inside and central is not None:
            self._refused(t, emu, central.links[i])

    def _refused(self, t: float, emu: ControllerEmulator, link: Any) -> None:
        """A conflicting hold at the start; a force-off the instant a green starts."""
        from deploy.snmp import SnmpError

        if t == self.t0:
            prof = emu.profile
            pair = [prof.stage_phases[0][0], prof.stage_phases[1][0]]
            try:
                link.writer.set([(O.PHASE_CONTROL_HOLD + (1,), (1 << (pair[0] - 1)) | (1 << (pair[1] - 1)))])
                self.refusals.append("conflicting hold: accepted (should have been refused)")
            except SnmpError as exc:
                self.refusals.append(f"conflicting hold of phases {pair[0]} and {pair[1]}: {exc}")
        st = emu.unit.engine.state
        if st.interval == GREEN and st.elapsed == 0 and not self._forced:
            self._forced, self._green_since = True, t
            mask = sum(1 << (p - 1) for p in emu.profile.stage_phases[st.stage])
            link.writer.set([(O.PHASE_CONTROL_FORCE_OFF + (1,), mask)])
            self.refusals.append(f"force-off of stage {st.stage} at the start of its green: accepted, deferred")

    def _watch(self, t: float, emu: ControllerEmulator, out: DeviceOutcome) -> None:
        status = int(emu.value(O.UNIT_CONTROL_STATUS))
        restarted = self.spec.kind == "reboot" and t > self.t0 and not emu.silent()
        if out.fell_back is None and (status == O.CONTROL_BACKUP or restarted):
            out.fell_back = t - self.t0
        if out.fell_back is not None and out.in_plan is None and t > self.t0:
            # the heads now are what the device showed over the step just run, t - 1 -> t
            if emu.unit.heads() != plan_heads(emu, t - 1):
                out.match_since = None
            elif out.match_since is None:
                out.match_since = t - 1
            elif t - out.match_since >= out.cycle:  # a whole cycle in step: it runs its plan
                out.in_plan = max(out.match_since - self.t0, out.fell_back)
        if t >= self.t1 and out.resumed is None and status == O.CONTROL_SYSTEM and (
                out.fell_back is not None or self.spec.kind == "intermittent"):
            out.resumed = t - self.t1
        if self._green_since is not None and out.min_green_kept is None:
            st = emu.unit.engine.state
            if st.interval != GREEN:
                held = t - self._green_since
                out.min_green_kept = held >= emu.base_plan.stages[0].min_green - 1e-9
                self.refusals.append(f"the forced-off green lasted {held:.0f} s (minimum green "
                                     f"{emu.base_plan.stages[0].min_green:g} s)")

    def summary(self) -> dict[str, Any]:
        """The figures of the README's fault table: worst case over the hurt devices."""
        outs = list(self.outcomes.values())

        def worst(name: str) -> float | None:
            xs = [getattr(o, name) for o in outs]
            return None if any(x is None for x in xs) or not xs else max(xs)

        return {"fault": self.spec.kind, "devices": len(outs), "fell_back_s": worst("fell_back"),
                "in_plan_s": worst("in_plan"), "resumed_s": worst("resumed"),
                "in_plan_within_target": sum(bool(o.within_target) for o in outs),
                "target_s": max((o.backup_time + o.cycle for o in outs), default=0.0),
                "min_green_kept": all(o.min_green_kept for o in outs) if self.spec.kind == "refused" else None,
                "notes": list(self.refusals)}


def plan_heads(emu: ControllerEmulator, t: float) -> str:
    """What the device's time-of-day plan shows at ``t`` when SUMO runs it as a tlLogic."""
    from deploy.sumo_bridge import phase_at

    plan = emu.base_plan
    spec = plan.sumo_phases()
    k, _ = phase_at(spec, t - plan.offset)
    return spec[k][1]
