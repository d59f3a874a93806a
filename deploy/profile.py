"""Per-intersection device profiles: how a stage plan maps onto NTCIP 1202 phases.

A :class:`TimingPlan` is stage based; an NTCIP 1202 controller runs phases in rings.  The
profile says which phase serves each stage in each ring (one phase per ring per stage, so every
ring's splits add up to the cycle and the barriers line up), which ring each phase is in,
which load-switch channel each phase drives, and which pattern numbers the central system may
write (two slots used in turn, so the pattern that is running is never the one being written).

With :func:`plan_values` a plan becomes the exact ``{OID: value}`` set the adapter writes and
reads back; :func:`check_capabilities` says, before approval, whether the device can hold it
(phase, ring, pattern and channel counts, NTCIP units: whole seconds up to 255, yellow and red
clearance in tenths).  The profile file is a validated frozen value (a pydantic dataclass,
``extra="forbid"``, see :mod:`sim.config`); no numpy, no SUMO.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field
from pydantic.dataclasses import dataclass as config_dataclass

from controllers.plan import DEFAULT_LIMITS, PlanLimits, TimingPlan
from deploy import oids as O
from sim.config import DATACLASS_CONFIG, Name, validate
from sim.errors import WulinError
from sim.files import parse_json, read_text

NTCIP_MAX_CYCLE = 255  # patternCycleTime 0..255 (ntcip_oids.tsv, NTCIP 1202 v02)
Phase = Annotated[int, Field(strict=True, ge=1, le=255)]
"""An NTCIP phase, ring, channel or pattern number (1-255)."""
PhaseKey = Annotated[int, Field(ge=1, le=255)]
"""A phase number as an object key (JSON keys are strings: ``"2"``)."""
CycleTime = Annotated[int, Field(strict=True, ge=0, le=NTCIP_MAX_CYCLE)]
"""A cycle length the device can hold: NTCIP 1202 ``patternCycleTime`` is 0-255 s."""

Values = dict[O.OID, Any]


@dataclass(frozen=True)
class Capabilities:
    """What a controller reports about itself (read by ``probe``)."""

    max_phases: int = 16
    max_patterns: int = 32
    max_splits: int = 32
    max_rings: int = 4
    max_sequences: int = 16
    max_channels: int = 16

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Capabilities:
        try:
            return cls(**{k: int(v) for k, v in data.items() if k in cls.__dataclass_fields__})
        except (TypeError, ValueError, OverflowError, AttributeError) as exc:
            raise WulinError(f"device capabilities: malformed ({exc}); probe the device again") from None


@config_dataclass(frozen=True, config=DATACLASS_CONFIG)
class DeviceProfile:
    """How one intersection's controller is wired.

    Attributes:
        signal_id: The network signal (and plan ``signal_id``) this controller runs.
        stage_phases: Per stage, the NTCIP phase serving it in each ring, ring order.
        phase_rings: Ring of every phase used.
        channels: Load-switch channel driven by every phase used.
        pattern_slots: Pattern numbers the central system writes, used in turn.
        verify_scheme: ``"table"`` (dbVerifyStatus 0/1/2) or ``"1201"`` (1/2/3).
        cycle_bounds: ``(min, max)`` cycle, seconds, this controller is set up to run, within
            what NTCIP 1202 ``patternCycleTime`` holds (0-255 s); plans for it are checked
            against these instead of the agency's default bounds.  ``None``: the defaults.
    """

    signal_id: Name
    stage_phases: Annotated[tuple[Annotated[tuple[Phase, ...], Field(min_length=1)], ...], Field(min_length=1)]
    phase_rings: dict[PhaseKey, Phase]
    channels: dict[PhaseKey, Phase]
    pattern_slots: tuple[Phase, Phase] = (2, 3)
    verify_scheme: str = "table"
    cycle_bounds: tuple[CycleTime, CycleTime] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def phases(self) -> tuple[int, ...]:
        return tuple(sorted({p for ps in self.stage_phases for p in ps}))

    @property
    def rings(self) -> tuple[int, ...]:
        return tuple(sorted(set(self.phase_rings.values())))

    def ring_sequence(self, ring: int) -> tuple[int, ...]:
        """Phases of ``ring`` in service order."""
        return tuple(p for ps in self.stage_phases for p in ps if self.phase_rings[p] == ring)

    def problems(self) -> list[str]:
        """What is inconsistent in the profile itself (empty when fine)."""
        out = []
        seen: dict[int, int] = {}
        for k, ps in enumerate(self.stage_phases):
            rings = [self.phase_rings.get(p) for p in ps]
            if None in rings:
                out.append(f"stage {k}: phase(s) {[p for p in ps if p not in self.phase_rings]} have no ring")
            elif sorted(rings) != list(self.rings):  # type: ignore[type-var]
                out.append(f"stage {k}: needs exactly one phase in each ring {list(self.rings)}, got rings {rings}")
            for p in ps:
                if p in seen:
                    out.append(f"phase {p} serves stages {seen[p]} and {k}; a phase may serve one stage")
                seen[p] = k
        for p in self.phases:
            if p not in self.channels:
                out.append(f"phase {p} drives no channel")
        if len(set(self.pattern_slots)) != 2:
            out.append(f"pattern_slots {self.pattern_slots} must be two different pattern numbers")
        if self.cycle_bounds is not None and self.cycle_bounds[0] > self.cycle_bounds[1]:
            out.append(f"cycle_bounds {list(self.cycle_bounds)}: the minimum is above the maximum")
        if self.verify_scheme not in O.VERIFY_SCHEMES:
            out.append(f"verify_scheme {self.verify_scheme!r} must be one of {sorted(O.VERIFY_SCHEMES)}")
        return out

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "signal_id": self.signal_id,
            "stage_phases": [list(ps) for ps in self.stage_phases],
            "phase_rings": {str(p): r for p, r in sorted(self.phase_rings.items())},
            "channels": {str(p): c for p, c in sorted(self.channels.items())},
            "pattern_slots": list(self.pattern_slots),
            "verify_scheme": self.verify_scheme,
        }
        if self.cycle_bounds is not None:  # absent when unset: stored profiles read back alike
            out["cycle_bounds"] = list(self.cycle_bounds)
        return out

    def plan_limits(self, limits: PlanLimits = DEFAULT_LIMITS) -> PlanLimits:
        """``limits`` with this controller's cycle bounds (unchanged when it sets none)."""
        if self.cycle_bounds is None:
            return limits
        return replace(limits, min_cycle=float(self.cycle_bounds[0]),
                       max_cycle=float(self.cycle_bounds[1]))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any, source: str = "<profile>") -> DeviceProfile:
        """Read a profile; mistakes raise a :class:`WulinError` naming ``source`` and the field."""
        prof = validate(cls, data, source)
        bad = prof.problems()
        if bad:
            raise WulinError(f"{source}: device profile for {prof.signal_id!r}: " + "; ".join(bad))
        return prof

    @classmethod
    def from_json(cls, text: str, source: str = "<profile>") -> DeviceProfile:
        """Parse a profile's JSON (through :func:`sim.files.parse_json`: depth, size, nan)."""
        return cls.from_dict(parse_json(text, source), source)

    @classmethod
    def load(cls, path: Path | str) -> DeviceProfile:
        """Read a profile JSON file (kind, size and UTF-8 checked by :func:`sim.files.read_text`)."""
        return cls.from_json(read_text(path, "device profile"), str(path))


def single_ring_profile(signal_id: str, n_stages: int, pattern_slots: tuple[int, int] = (2, 3),
                        cycle_bounds: tuple[int, int] | None = None) -> DeviceProfile:
    """Stage ``k`` -> phase ``k + 1`` in ring 1, channel = phase: the simplest wiring."""
    phases = tuple((k + 1,) for k in range(n_stages))
    return DeviceProfile(
        signal_id=signal_id,
        stage_phases=phases,
        phase_rings={k + 1: 1 for k in range(n_stages)},
        channels={k + 1: k + 1 for k in range(n_stages)},
        pattern_slots=pattern_slots,
        cycle_bounds=cycle_bounds,
    )


def bounds_admitting(plan: TimingPlan, limits: PlanLimits = DEFAULT_LIMITS) -> tuple[int, int] | None:
    """Cycle bounds for a controller that runs ``plan`` (the field's own program): the agency
    bounds widened to its cycle; ``None`` when they already admit it.

    Raises:
        WulinError: naming the signal, when no NTCIP 1202 device can hold the cycle.
    """
    c = plan.cycle
    if not 0 <= c <= NTCIP_MAX_CYCLE or abs(c - round(c)) > 1e-9:
        raise WulinError(f"signal {plan.signal_id!r}: its program's cycle {c:g} s cannot be held by an "
                         f"NTCIP 1202 controller (patternCycleTime: whole seconds, 0-{NTCIP_MAX_CYCLE} s)")
    if limits.min_cycle <= c <= limits.max_cycle:
        return None
    return (min(int(limits.min_cycle), round(c)), max(int(limits.max_cycle), round(c)))


def _seconds(x: float, what: str, out: list[str]) -> int:
    if abs(x - round(x)) > 1e-9:
        out.append(f"{what} {x:g} s is not a whole number of seconds (NTCIP unit)")
    if not 0 <= round(x) <= 255:
        out.append(f"{what} {x:g} s is outside 0-255 s")
    return int(round(x))


def _tenths(x: float, what: str, out: list[str]) -> int:
    t = x * 10
    if abs(t - round(t)) > 1e-6:
        out.append(f"{what} {x:g} s is not a whole number of tenths (NTCIP unit)")
    if not 0 <= round(t) <= 255:
        out.append(f"{what} {x:g} s is outside 0-25.5 s")
    return int(round(t))


def check_capabilities(plan: TimingPlan, profile: DeviceProfile, caps: Capabilities) -> list[str]:
    """Why the device cannot hold ``plan`` through ``profile`` (empty list: it can)."""
    out = list(profile.problems())
    if plan.signal_id != profile.signal_id:
        out.append(f"plan is for signal {plan.signal_id!r}, the device profile for {profile.signal_id!r}")
    if len(plan.stages) != len(profile.stage_phases):
        out.append(f"plan has {len(plan.stages)} stages, the device profile maps {len(profile.stage_phases)}")
    if profile.phases and max(profile.phases) > caps.max_phases:
        out.append(f"phase {max(profile.phases)} exceeds the device's {caps.max_phases} phases")
    if profile.rings and max(profile.rings) > caps.max_rings:
        out.append(f"ring {max(profile.rings)} exceeds the device's {caps.max_rings} rings")
    for slot in profile.pattern_slots:
        if not 1 <= slot <= min(caps.max_patterns, caps.max_splits, caps.max_sequences):
            out.append(
                f"pattern slot {slot} is outside the device's patterns/splits/sequences "
                f"(1-{min(caps.max_patterns, caps.max_splits, caps.max_sequences)})"
            )
    for p, ch in profile.channels.items():
        if not 1 <= ch <= caps.max_channels:
            out.append(f"phase {p} drives channel {ch}, the device has {caps.max_channels}")
    _seconds(plan.cycle, "cycle", out)
    if profile.cycle_bounds is not None and 0 <= round(plan.cycle) <= NTCIP_MAX_CYCLE:
        lo, hi = profile.cycle_bounds
        if not lo <= plan.cycle <= hi:
            out.append(f"cycle {plan.cycle:g} s is outside the {lo}-{hi} s this controller runs "
                       "(its profile's cycle_bounds)")
    _seconds(plan.offset, "offset", out)
    _tenths(plan.yellow, "yellow", out)
    _tenths(plan.all_red, "all-red", out)
    for k, s in enumerate(plan.stages):
        _seconds(plan.split(k), f"stage {k} split", out)
        _seconds(s.min_green, f"stage {k} minimum green", out)
        _seconds(s.walk, f"stage {k} walk", out)
        _seconds(s.ped_clearance, f"stage {k} pedestrian clearance", out)
        if s.max_green is not None:
            _seconds(s.max_green, f"stage {k} maximum green", out)
    return out


def plan_values(plan: TimingPlan, profile: DeviceProfile, caps: Capabilities, slot: int) -> Values:
    """Every object the deploy writes for ``plan`` into pattern ``slot`` (split and sequence
    numbers equal the pattern number), with its NTCIP value.

    Raises:
        WulinError: the device cannot hold the plan (see :func:`check_capabilities`).
    """
    bad = check_capabilities(plan, profile, caps)
    if bad:
        raise WulinError(f"plan {plan.short_hash} cannot go to {profile.signal_id!r}: " + "; ".join(bad))
    v: Values = {}
    stage_of = {p: k for k, ps in enumerate(profile.stage_phases) for p in ps}
    for p in profile.phases:
        s = plan.stages[stage_of[p]]
        v[O.PHASE_WALK + (p,)] = round(s.walk)
        v[O.PHASE_PED_CLEAR + (p,)] = round(s.ped_clearance)
        v[O.PHASE_MIN_GREEN + (p,)] = round(s.min_green)
        v[O.PHASE_MAX1 + (p,)] = round(s.max_green if s.max_green is not None else s.green)
        v[O.PHASE_YELLOW + (p,)] = round(plan.yellow * 10)
        v[O.PHASE_RED_CLEAR + (p,)] = round(plan.all_red * 10)
        v[O.PHASE_RING + (p,)] = profile.phase_rings[p]
    v[O.PATTERN_CYCLE + (slot,)] = round(plan.cycle)
    v[O.PATTERN_OFFSET + (slot,)] = round(plan.offset)
    v[O.PATTERN_SPLIT + (slot,)] = slot
    v[O.PATTERN_SEQUENCE + (slot,)] = slot
    for p in range(1, caps.max_phases + 1):
        if p in stage_of:
            v[O.SPLIT_TIME + (slot, p)] = round(plan.split(stage_of[p]))
            v[O.SPLIT_MODE + (slot, p)] = O.SPLIT_MODE_MAX_RECALL
            v[O.SPLIT_COORD_PHASE + (slot, p)] = 1 if stage_of[p] == 0 else 0
        else:
            v[O.SPLIT_TIME + (slot, p)] = 0
            v[O.SPLIT_MODE + (slot, p)] = O.SPLIT_MODE_OMITTED
            v[O.SPLIT_COORD_PHASE + (slot, p)] = 0
    for ring in range(1, caps.max_rings + 1):
        v[O.SEQUENCE_DATA + (slot, ring)] = bytes(profile.ring_sequence(ring))
    return v


def plan_from_values(base: TimingPlan, profile: DeviceProfile, values: Mapping[O.OID, Any], slot: int) -> TimingPlan:
    """The plan a controller runs in pattern ``slot``, read back from its objects.

    The stages' links come from ``base`` (a controller knows phases, not SUMO links); times,
    cycle and offset come from the device.  Used to drive SUMO from the emulator.
    """
    stages = []
    for k, s in enumerate(base.stages):
        p = profile.stage_phases[k][0]
        split = int(values[O.SPLIT_TIME + (slot, p)])
        yellow = int(values[O.PHASE_YELLOW + (p,)]) / 10
        red = int(values[O.PHASE_RED_CLEAR + (p,)]) / 10
        stages.append(
            type(s)(
                name=s.name, state=s.state, green=split - yellow - red,
                min_green=int(values[O.PHASE_MIN_GREEN + (p,)]), max_green=s.max_green,
                walk=int(values[O.PHASE_WALK + (p,)]), ped_clearance=int(values[O.PHASE_PED_CLEAR + (p,)]),
            )
        )
    p0 = profile.stage_phases[0][0]
    return TimingPlan(
        signal_id=base.signal_id,
        cycle=int(values[O.PATTERN_CYCLE + (slot,)]),
        offset=int(values[O.PATTERN_OFFSET + (slot,)]),
        stages=tuple(stages),
        yellow=int(values[O.PHASE_YELLOW + (p0,)]) / 10,
        all_red=int(values[O.PHASE_RED_CLEAR + (p0,)]) / 10,
        name=base.name,
        source=f"read from the controller (pattern {slot})",
    )
