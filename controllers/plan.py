"""Timing plans as data: :class:`TimingPlan`, :func:`validate_plan`, JSON and SUMO tlLogic.

A plan is a frozen value (DESIGN principle 1): it is simulated, validated, stored, approved and
pushed to a controller without change.  :meth:`TimingPlan.to_json` is its canonical JSON
(sorted keys, no whitespace, every field present, each number in one spelling) and
:meth:`TimingPlan.plan_hash` the SHA-256 of it: an approval binds that hash, and nothing whose
hash differs is deployed.

A plan is *stage based*.  Each :class:`PlanStage` is a SUMO green state string over the signal's
links, indexed like SUMO's TLS link indices (``SignalSpec.movements[i].index == i`` in
:mod:`sim.topology`): ``G`` protected green, ``g`` permitted green (yields by right of way),
``r`` red.  Every stage is followed by the plan's yellow and all-red, so::

    cycle == sum(stage.green for stage in stages) + len(stages) * (yellow + all_red)

and a stage's NTCIP ``splitTime`` is ``green + yellow + all_red``.  The offset is the time in
the cycle (time of day modulo the cycle) at which stage 0's green starts; SUMO's ``tlLogic``
offset means the same, so it is exported unchanged.  JSON example::

    {"all_red": 2, "cycle": 90, "format": "wulin.timing-plan/1", "name": "am", "offset": 0,
     "signal_id": "B1", "source": "webster", "yellow": 3,
     "stages": [{"green": 40, "max_green": null, "min_green": 5, "name": "NS",
                 "ped_clearance": 0, "state": "GGGgrrrrGGGgrrrr", "walk": 0}, ...]}

:func:`validate_plan` returns every violation of the engineering checks a plan must pass
before it is deployed (ITE yellow, all-red, pedestrian clearance, stage conflicts, cycle and
offset bounds) in plain words and never raises;
:func:`check_plan` is the shipped checker that raises.

Standard library only (``sim.errors`` is standard-library only too): ``deploy`` uses plans
without importing SUMO or numpy.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from sim.clock import DAY, TIME_OF_DAY_LATEST
from sim.clock import parse_clock as parse_clock  # re-exported: the one clock parser
from sim.errors import WulinError
from sim.files import check_tree, parse_json, read_text

PLAN_FORMAT = "wulin.timing-plan/1"
SCHEDULE_FORMAT = "wulin.tod-schedule/1"
_DECIMALS = 3  # times kept to the millisecond, so the canonical JSON is the same everywhere
_STATE_RE = re.compile(r"^[Ggr]+$")


def _num(x: float) -> float:
    """A time rounded to the millisecond, ``-0.0`` folded into ``0.0``."""
    return round(float(x), _DECIMALS) + 0.0


def _json_num(x: float | None) -> int | float | None:
    """One spelling per number in canonical JSON: ``42``, never ``42.0``."""
    if x is None:
        return None
    return int(x) if float(x).is_integer() else float(x)


def canonical_json(obj: Any) -> str:
    """Sorted keys, no whitespace, no NaN: the text that is hashed."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256_hex(text: str) -> str:
    """SHA-256 of UTF-8 ``text``, hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- values
@dataclass(frozen=True)
class Interval:
    """A stretch of time in which some links of a signal show one colour.

    Attributes:
        start: Seconds (of the day, or of whatever clock the caller uses).
        end: Seconds, after ``start``.
        colour: ``"G"`` green, ``"y"`` yellow, ``"r"`` red.
    """

    start: float
    end: float
    colour: str


@dataclass(frozen=True)
class PlanStage:
    """One stage: which links are green, and for how long.

    Attributes:
        name: Free text (``"NS through"``).
        state: SUMO green state over the signal's links (``G``, ``g`` or ``r``; no ``y``).
        green: Green time, seconds.
        min_green: Minimum green, seconds.
        max_green: Maximum green for actuated or adaptive use; ``None`` for no limit.
        walk: Pedestrian walk, seconds (0: no pedestrians cross during this stage).
        ped_clearance: Pedestrian clearance (flashing don't walk), seconds.
    """

    name: str
    state: str
    green: float
    min_green: float = 5.0
    max_green: float | None = None
    walk: float = 0.0
    ped_clearance: float = 0.0

    def __post_init__(self) -> None:
        for key in ("green", "min_green", "walk", "ped_clearance"):
            object.__setattr__(self, key, _num(getattr(self, key)))
        if self.max_green is not None:
            object.__setattr__(self, "max_green", _num(self.max_green))

    @property
    def links(self) -> tuple[int, ...]:
        """Indices of the links green (``G`` or ``g``) in this stage."""
        return tuple(i for i, c in enumerate(self.state) if c in "Gg")

    @property
    def protected(self) -> tuple[int, ...]:
        """Indices of the links with protected green (``G``)."""
        return tuple(i for i, c in enumerate(self.state) if c == "G")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "green": _json_num(self.green),
            "min_green": _json_num(self.min_green),
            "max_green": _json_num(self.max_green),
            "walk": _json_num(self.walk),
            "ped_clearance": _json_num(self.ped_clearance),
        }


@dataclass(frozen=True)
class TimingPlan:
    """A fixed-time, stage-based timing plan for one signal.

    Attributes:
        signal_id: Traffic light id in the network (and the controller it goes to).
        cycle: Cycle length, seconds; equals the greens plus a yellow and all-red per stage.
        offset: Time in the cycle at which stage 0's green starts, ``0 <= offset < cycle``.
        stages: Stages in service order.
        yellow: Yellow after every stage, seconds.
        all_red: All-red after every yellow, seconds.
        name: Short plan name (``"webster 07:00-09:00"``).
        source: Who or what made it (``"webster"``, ``"fixed-time from net"``, ``"user"``).
    """

    signal_id: str
    cycle: float
    offset: float
    stages: tuple[PlanStage, ...]
    yellow: float = 3.0
    all_red: float = 2.0
    name: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(self.stages))
        for key in ("cycle", "offset", "yellow", "all_red"):
            object.__setattr__(self, key, _num(getattr(self, key)))

    # ---------------------------------------------------------------- identity and JSON
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data with every field present (the canonical content)."""
        return {
            "format": PLAN_FORMAT,
            "signal_id": self.signal_id,
            "name": self.name,
            "source": self.source,
            "cycle": _json_num(self.cycle),
            "offset": _json_num(self.offset),
            "yellow": _json_num(self.yellow),
            "all_red": _json_num(self.all_red),
            "stages": [s.to_dict() for s in self.stages],
        }

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no whitespace, numbers normalised."""
        return canonical_json(self.to_dict())

    def plan_hash(self) -> str:
        """SHA-256 (hex) of :meth:`to_json`; stable across runs and machines."""
        return sha256_hex(self.to_json())

    @property
    def short_hash(self) -> str:
        """First 12 hex digits of :meth:`plan_hash`, for tables and messages."""
        return self.plan_hash()[:12]

    @classmethod
    def from_dict(cls, data: Any, source: str = "<json>") -> TimingPlan:
        """Build a plan from JSON data; a bad field raises a :class:`WulinError` naming it."""
        return _plan_from_dict(data, source)

    @classmethod
    def from_json(cls, text: str, source: str = "<json>") -> TimingPlan:
        """Parse one plan; bad JSON or a bad field raises a :class:`WulinError` naming ``source``."""
        return _plan_from_dict(_parse_json(text, source), source)

    @classmethod
    def load(cls, path: Path | str) -> TimingPlan:
        """Read one plan from a JSON file."""
        path = Path(path)
        return _plan_from_dict(_parse_json(_read_text(path), str(path)), str(path))

    def save(self, path: Path | str) -> None:
        """Write the plan as indented JSON (loading it gives the same plan and hash)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), sort_keys=True, indent=2, ensure_ascii=False) + "\n", "utf-8")

    # ---------------------------------------------------------------- derived values
    @property
    def n_links(self) -> int:
        """Number of links (length of the state strings)."""
        return len(self.stages[0].state) if self.stages else 0

    @property
    def clearance(self) -> float:
        """Yellow plus all-red after each stage."""
        return _num(self.yellow + self.all_red)

    def split(self, stage: int) -> float:
        """Stage time as an NTCIP split: green plus yellow plus all-red."""
        return _num(self.stages[stage].green + self.clearance)

    @property
    def splits(self) -> tuple[float, ...]:
        return tuple(self.split(k) for k in range(len(self.stages)))

    @property
    def stage_starts(self) -> tuple[float, ...]:
        """Start of each stage's green, seconds after the start of stage 0."""
        out, t = [], 0.0
        for k in range(len(self.stages)):
            out.append(_num(t))
            t += self.split(k)
        return tuple(out)

    def with_splits(self, greens: Sequence[float]) -> TimingPlan:
        """The same plan with new greens (one per stage); the cycle is recomputed."""
        if len(greens) != len(self.stages):
            raise WulinError(
                f"plan {self.name or self.signal_id!r}: {len(greens)} greens given for {len(self.stages)} stages"
            )
        stages = tuple(replace(s, green=float(g)) for s, g in zip(self.stages, greens, strict=True))
        cycle = sum(float(g) for g in greens) + len(stages) * (self.yellow + self.all_red)
        return replace(self, stages=stages, cycle=cycle, offset=self.offset % cycle if cycle > 0 else 0.0)

    def with_offset(self, offset: float) -> TimingPlan:
        """The same plan with a new offset (taken modulo the cycle)."""
        return replace(self, offset=float(offset) % self.cycle if self.cycle > 0 else float(offset))

    def timeline(self, links: Collection[int], start: float, end: float) -> list[Interval]:
        """What ``links`` show from ``start`` to ``end`` (seconds of the day), as SUMO runs it.

        Green (``"G"``) while any of them is green, else yellow (``"y"``) while any shows
        yellow, else red (``"r"``); from :meth:`sumo_phases`, with stage 0's green starting
        whenever the time of day modulo the cycle equals the offset.  Touching intervals of one
        colour are merged; the first and last are clipped to ``[start, end]``.
        """
        out: list[Interval] = []
        if self.cycle <= 0 or end <= start:
            return out
        phases = self.sumo_phases()
        if sum(dur for dur, _, _ in phases) <= 0:
            return out
        t = start - (start - self.offset) % self.cycle
        while t < end:
            for dur, state, _ in phases:
                chars = {state[i] for i in links if 0 <= i < len(state)}
                colour = "G" if chars & {"G", "g"} else "y" if "y" in chars else "r"
                a, b = max(t, start), min(t + dur, end)
                if b > a:
                    if out and out[-1].colour == colour and out[-1].end >= a:
                        out[-1] = Interval(out[-1].start, float(b), colour)
                    else:
                        out.append(Interval(float(a), float(b), colour))
                t += dur
        return out

    # ---------------------------------------------------------------- SUMO
    def sumo_phases(self) -> list[tuple[float, str, str]]:
        """``(duration, state, name)`` of every SUMO phase: green, yellow, all-red per stage.

        Links that stay green into the next stage keep their green through the clearance;
        links that lose it show yellow, then red.  Zero-length phases are left out.
        """
        out: list[tuple[float, str, str]] = []
        n = len(self.stages)
        for k, s in enumerate(self.stages):
            nxt = self.stages[(k + 1) % n].state
            yellow = "".join(
                "y" if c in "Gg" and nc not in "Gg" else c for c, nc in zip(s.state, nxt, strict=False)
            )
            red = yellow.replace("y", "r")
            for dur, state, suffix in ((s.green, s.state, ""), (self.yellow, yellow, " yellow"),
                                       (self.all_red, red, " all-red")):
                if dur > 0:
                    out.append((dur, state, f"{s.name}{suffix}"))
        return out

    def to_tllogic(self, program_id: str = "wulin") -> str:
        """One ``<tlLogic type="static">`` element running this plan in SUMO."""
        lines = [
            f"    <!-- plan {self.name or '-'} sha256:{self.short_hash} cycle {self.cycle:g} s -->",
            f"    <tlLogic id={quoteattr(self.signal_id)} type=\"static\" programID={quoteattr(program_id)} "
            f"offset=\"{self.offset:g}\">",
        ]
        for dur, state, name in self.sumo_phases():
            lines.append(f"        <phase duration=\"{dur:g}\" state=\"{state}\" name={quoteattr(name)}/>")
        lines.append("    </tlLogic>")
        return "\n".join(lines)

    @classmethod
    def from_sumo_phases(
        cls,
        signal_id: str,
        phases: Sequence[tuple[float, str]],
        offset: float = 0.0,
        *,
        name: str = "",
        source: str = "fixed-time from net",
        min_green: float = 5.0,
        unused: Iterable[int] = (),
    ) -> TimingPlan:
        """A plan from a SUMO program given as ``(duration, state)`` pairs.

        Green phases (some ``G``/``g``, no ``y``) become stages; the yellow and red phases
        between them become the plan's yellow and all-red (their mean per stage, since a plan
        has one clearance).  ``cycle`` is the program's length when the clearances are equal.
        Consecutive greens that differ only at ``unused`` links (pedestrian crossings ending
        their walk, unused indices) are one stage, shown as the first of them.

        Raises:
            WulinError: the program has no green phase.
        """
        cycle = sum(d for d, _ in phases)
        skip = set(unused)
        links = [i for i in range(max((len(st) for _, st in phases), default=0)) if i not in skip]
        always = {i for i in links if all(i < len(st) and st[i] in "Gg" for _, st in phases)}
        if len(always) == len(links):
            always = set()
        # a phase green only where every phase is (a right turn that never stops) is a clearance
        is_yellow = [any(c in "yY" for c in st) for _, st in phases]
        is_green = [not y and any(c in "Gg" for i, c in enumerate(st) if i not in always and i not in skip)
                    for (_, st), y in zip(phases, is_yellow, strict=True)]
        greens = [ph for ph, g in zip(phases, is_green, strict=True) if g]
        if not greens:
            raise WulinError(f"signal {signal_id!r}: its program has no green phase to turn into a stage")
        yellow = sum(d for (d, _), y in zip(phases, is_yellow, strict=True) if y)
        other = sum(d for (d, _), y, g in zip(phases, is_yellow, is_green, strict=True) if not (y or g))

        def vehicle(state: str) -> str:
            return "".join(c for i, c in enumerate(state) if i not in skip)

        stages: list[PlanStage] = []
        for d, st in greens:
            state = "".join(c if c in "Gg" else "r" for c in st)
            if stages and vehicle(stages[-1].state) == vehicle(state):  # one stage, several phases
                stages[-1] = replace(stages[-1], green=stages[-1].green + d)
            else:
                stages.append(PlanStage(name=f"stage {len(stages)}", state=state, green=d,
                                        min_green=min(min_green, d)))
        n = len(stages)
        return cls(signal_id=signal_id, cycle=cycle, offset=offset % cycle if cycle > 0 else 0.0,
                   stages=tuple(stages), yellow=yellow / n, all_red=other / n, name=name, source=source)


def plans_to_additional(plans: Iterable[TimingPlan], program_id: str = "wulin") -> str:
    """A whole SUMO additional file holding every plan's ``<tlLogic>``.

    SUMO switches each signal to the program loaded last, so loading this file runs the plans.
    """
    body = "\n".join(p.to_tllogic(program_id) for p in plans)
    return f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<additional>\n{body}\n</additional>\n"


# --------------------------------------------------------------------------- JSON loading
_PLAN_KEYS = {f.name for f in fields(TimingPlan)} | {"format"}
_STAGE_KEYS = {f.name for f in fields(PlanStage)}


def _read_text(path: Path) -> str:
    return read_text(path, "plan file")


def _parse_json(text: str, source: str) -> Any:
    return parse_json(text, source)


def _number(value: Any, where: str, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise WulinError(f"{where}: expected a number of seconds, got {value!r}")
    return float(value)


def _text(value: Any, where: str, max_len: int | None = None) -> str:
    if not isinstance(value, str):
        raise WulinError(f"{where}: expected a string, got {value!r}")
    bad = next((c for c in value if unicodedata.category(c) in ("Cc", "Cf")), None)
    if bad is not None:  # a terminal escape or an invisible character in a name shown to approvers
        raise WulinError(f"{where}: holds the control or invisible character {bad!r}; remove it")
    if max_len is not None and len(value) > max_len:
        raise WulinError(f"{where}: {len(value)} characters is longer than the {max_len} allowed; shorten it")
    return value


def _keys(data: Mapping[str, Any], allowed: set[str], required: Sequence[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise WulinError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    missing = [k for k in required if k not in data]
    if missing:
        raise WulinError(f"{where}: missing field(s) {', '.join(missing)}")


def _plan_from_dict(data: Any, source: str) -> TimingPlan:
    if not isinstance(data, dict):
        raise WulinError(f"{source}: a timing plan is a JSON object, got {type(data).__name__}")
    check_tree(data, source)  # from_dict is also called on data that did not come from parse_json
    _keys(data, _PLAN_KEYS, ("signal_id", "cycle", "offset", "stages"), source)
    fmt = data.get("format", PLAN_FORMAT)
    if fmt != PLAN_FORMAT:
        raise WulinError(f"{source}: field 'format' is {fmt!r}; this version reads {PLAN_FORMAT!r}")
    raw_stages = data["stages"]
    if not isinstance(raw_stages, list) or not raw_stages:
        raise WulinError(f"{source}: field 'stages' must be a non-empty list of stage objects")
    stages = []
    for k, raw in enumerate(raw_stages):
        where = f"{source}: field 'stages[{k}]'"
        if not isinstance(raw, dict):
            raise WulinError(f"{where}: expected an object with name, state and green")
        _keys(raw, _STAGE_KEYS, ("state", "green"), where)
        state = _text(raw["state"], f"{where}.state")
        if not _STATE_RE.match(state):
            raise WulinError(
                f"{where}.state: {state!r} is not a green state; use only G (protected), g (permitted) and r"
            )
        kw: dict[str, Any] = {"name": _text(raw.get("name", f"stage {k}"), f"{where}.name"), "state": state}
        for key in ("green", "min_green", "walk", "ped_clearance"):
            if key in raw:
                kw[key] = _number(raw[key], f"{where}.{key}")
        if "max_green" in raw:
            kw["max_green"] = _number(raw["max_green"], f"{where}.max_green", optional=True)
        stages.append(PlanStage(**kw))
    kw2: dict[str, Any] = {}
    for key in ("yellow", "all_red"):
        if key in data:
            kw2[key] = _number(data[key], f"{source}: field '{key}'")
    cycle = _number(data["cycle"], f"{source}: field 'cycle'")
    offset = _number(data["offset"], f"{source}: field 'offset'")
    assert cycle is not None and offset is not None
    return TimingPlan(
        signal_id=_text(data["signal_id"], f"{source}: field 'signal_id'", 128),
        cycle=cycle,
        offset=offset,
        stages=tuple(stages),
        name=_text(data.get("name", ""), f"{source}: field 'name'", 256),
        source=_text(data.get("source", ""), f"{source}: field 'source'"),
        **kw2,
    )


def load_plans(path: Path | str) -> list[TimingPlan]:
    """Plans from a JSON file holding one plan object or a list of them.

    Raises:
        WulinError: missing file, bad JSON, or a bad field (named with its list position).
    """
    path = Path(path)
    data = _parse_json(_read_text(path), str(path))
    if isinstance(data, list):
        if not data:
            raise WulinError(f"{path}: the list of plans is empty")
        return [_plan_from_dict(item, f"{path}[{k}]") for k, item in enumerate(data)]
    return [_plan_from_dict(data, str(path))]


# --------------------------------------------------------------------------- validation
@dataclass(frozen=True)
class PlanLimits:
    """Agency bounds and engineering constants for :func:`validate_plan`.

    Defaults follow common agency practice (cycle 40-180 s, yellow >= 3 s).  The ITE yellow
    ``t + v / (2a + 2Gg)`` is checked when ``approach_speed_kmh`` is known; the pedestrian
    clearance against the crossing when ``crossing_m`` is known.
    """

    min_cycle: float = 40.0
    max_cycle: float = 180.0
    min_yellow: float = 3.0
    min_all_red: float = 1.0
    max_all_red: float = 3.0
    approach_speed_kmh: float | None = None
    reaction_time: float = 1.0
    deceleration: float = 3.0
    grade: float = 0.0
    min_walk: float = 7.0
    walking_speed: float = 1.2
    crossing_m: float | None = None
    min_green_floor: float = 4.0


    def admitting_cycle(self, cycle: float) -> PlanLimits:
        """These limits with the cycle bounds widened to ``cycle`` (a network's own program)."""
        return replace(self, min_cycle=min(self.min_cycle, cycle), max_cycle=max(self.max_cycle, cycle))


DEFAULT_LIMITS = PlanLimits()


def ite_yellow(speed_kmh: float, limits: PlanLimits = DEFAULT_LIMITS) -> float:
    """ITE kinematic yellow in seconds for an approach speed in km/h, never below the minimum."""
    v = speed_kmh / 3.6
    y = limits.reaction_time + v / (2 * limits.deceleration + 2 * 9.81 * limits.grade)
    return max(limits.min_yellow, y)


def _ceil1(x: float) -> float:
    return math.ceil(x * 10 - 1e-9) / 10


def validate_plan(
    plan: TimingPlan,
    conflicts: Sequence[Sequence[bool]] | None = None,
    limits: PlanLimits = DEFAULT_LIMITS,
    unused: Iterable[int] = (),
) -> list[str]:
    """Every violation of the engineering checks, in plain words; an empty list means valid.

    Args:
        plan: The plan.
        conflicts: ``conflicts[i][j]`` True when SUMO marks links ``i`` and ``j`` as foes
            (``SignalSpec.conflicts``); adds the check that no two conflicting links have
            protected green in one stage.
        limits: Agency bounds and engineering constants.
        unused: Link indices with no vehicle connection (``SignalSpec.unused_links``: unused
            indices and pedestrian crossings), which need never be green.
    """
    v: list[str] = []
    skip = set(unused)
    if not plan.signal_id:
        v.append("signal_id is empty: name the traffic light the plan is for")
    if not limits.min_cycle <= plan.cycle <= limits.max_cycle:
        v.append(f"cycle {plan.cycle:g} s is outside the bounds {limits.min_cycle:g}-{limits.max_cycle:g} s")
    if not 0 <= plan.offset < plan.cycle:
        v.append(f"offset {plan.offset:g} s must be at least 0 and less than the cycle ({plan.cycle:g} s)")
    if plan.yellow < limits.min_yellow:
        v.append(f"yellow {plan.yellow:g} s is below the {limits.min_yellow:g} s minimum")
    if limits.approach_speed_kmh is not None:
        need = ite_yellow(limits.approach_speed_kmh, limits)
        if plan.yellow + 1e-9 < need:
            v.append(
                f"yellow {plan.yellow:g} s is below the ITE yellow {_ceil1(need):g} s for a "
                f"{limits.approach_speed_kmh:g} km/h approach"
            )
    if plan.all_red < limits.min_all_red:
        v.append(f"all-red {plan.all_red:g} s is below the {limits.min_all_red:g} s minimum red clearance")
    elif plan.all_red > limits.max_all_red:
        v.append(f"all-red {plan.all_red:g} s is above the {limits.max_all_red:g} s maximum")
    if len(plan.stages) < 2:
        v.append(f"a plan needs at least 2 stages, got {len(plan.stages)}")
    total = _num(sum(plan.splits))
    if plan.stages and abs(total - plan.cycle) > 1e-6:
        v.append(
            f"stage greens plus {len(plan.stages)} x (yellow + all-red) add up to {total:g} s but the cycle "
            f"is {plan.cycle:g} s; make them equal"
        )
    lengths = {len(s.state) for s in plan.stages}
    if len(lengths) > 1:
        v.append(f"stage state strings have different lengths {sorted(lengths)}; all must cover the same links")
    for k, s in enumerate(plan.stages):
        w = f"stage {k} ({s.name})"
        if not _STATE_RE.match(s.state):
            v.append(f"{w}: state {s.state!r} may contain only G, g and r")
        if "G" not in s.state:
            v.append(f"{w}: no link has protected green (G)")
        for key in ("green", "min_green", "walk", "ped_clearance"):
            if getattr(s, key) < 0:
                v.append(f"{w}: {key} {getattr(s, key):g} s is negative")
        if s.min_green < limits.min_green_floor:
            v.append(f"{w}: minimum green {s.min_green:g} s is below the {limits.min_green_floor:g} s floor")
        if s.green + 1e-9 < s.min_green:
            v.append(f"{w}: green {s.green:g} s is shorter than its minimum green {s.min_green:g} s")
        if s.max_green is not None and s.max_green < s.min_green:
            v.append(f"{w}: maximum green {s.max_green:g} s is below its minimum green {s.min_green:g} s")
        if s.walk > 0 or s.ped_clearance > 0:
            if s.walk < limits.min_walk:
                v.append(f"{w}: walk {s.walk:g} s is below the {limits.min_walk:g} s minimum")
            if s.ped_clearance <= 0:
                v.append(f"{w}: pedestrians walk in this stage but have no clearance time")
            elif limits.crossing_m is not None and s.ped_clearance + 1e-9 < limits.crossing_m / limits.walking_speed:
                need = limits.crossing_m / limits.walking_speed
                v.append(
                    f"{w}: pedestrian clearance {s.ped_clearance:g} s is too short for a {limits.crossing_m:g} m "
                    f"crossing at {limits.walking_speed:g} m/s (needs {_ceil1(need):g} s)"
                )
            ped = s.walk + s.ped_clearance
            if s.green + 1e-9 < ped:
                v.append(f"{w}: green {s.green:g} s is shorter than walk + pedestrian clearance ({ped:g} s)")
            if s.min_green + 1e-9 < ped:
                v.append(f"{w}: minimum green {s.min_green:g} s is shorter than walk + pedestrian clearance ({ped:g} s)")
    if len(lengths) == 1 and plan.stages:
        n = plan.n_links
        never = [i for i in range(n)
                 if i not in skip and all(s.state[i] not in "Gg" for s in plan.stages)]
        if never:
            v.append(f"link(s) {never} never get green in the cycle")
        if conflicts is not None:
            if len(conflicts) != n or any(len(row) != n for row in conflicts):
                v.append(f"the conflict matrix is {len(conflicts)} links wide but the plan has {n} links")
            else:
                for k, s in enumerate(plan.stages):
                    prot = s.protected
                    pairs = [(i, j) for a, i in enumerate(prot) for j in prot[a + 1:] if conflicts[i][j]]
                    if pairs:
                        shown = ", ".join(f"{i}-{j}" for i, j in pairs[:6]) + (" ..." if len(pairs) > 6 else "")
                        v.append(f"stage {k} ({s.name}): conflicting links have protected green together: {shown}")
    return v


def check_plan(plan: TimingPlan, conflicts: Sequence[Sequence[bool]] | None = None,
               limits: PlanLimits = DEFAULT_LIMITS, unused: Iterable[int] = ()) -> None:
    """The shipped checker: raise a :class:`WulinError` listing every violation."""
    found = validate_plan(plan, conflicts, limits, unused)
    if found:
        lines = "\n  - ".join(found)
        raise WulinError(
            f"plan {plan.name or plan.short_hash!r} for signal {plan.signal_id!r} is not valid:\n  - {lines}"
        )


# --------------------------------------------------------------------------- comparison
def diff_plans(old: TimingPlan, new: TimingPlan) -> list[str]:
    """Differences from ``old`` to ``new``, one line each (empty when the plans are equal)."""
    out = []
    a, b = old.to_dict(), new.to_dict()
    for key in ("signal_id", "name", "source", "cycle", "offset", "yellow", "all_red"):
        if a[key] != b[key]:
            out.append(f"{key}: {a[key]!r} -> {b[key]!r}")
    for k in range(max(len(a["stages"]), len(b["stages"]))):
        if k >= len(a["stages"]):
            out.append(f"stage {k}: added ({b['stages'][k]['name']})")
        elif k >= len(b["stages"]):
            out.append(f"stage {k}: removed ({a['stages'][k]['name']})")
        else:
            for key in sorted(a["stages"][k]):
                if a["stages"][k][key] != b["stages"][k][key]:
                    out.append(f"stage {k} {key}: {a['stages'][k][key]!r} -> {b['stages'][k][key]!r}")
    return out


def change_size(old: TimingPlan, new: TimingPlan) -> float:
    """Largest change of cycle, offset (the short way round) or any split, in seconds.

    ``inf`` when the stages themselves differ (other links, other order, other count).
    """
    if [s.state for s in old.stages] != [s.state for s in new.stages]:
        return math.inf
    shift = abs(new.offset - old.offset)
    if new.cycle > 0:
        shift = min(shift % new.cycle, new.cycle - shift % new.cycle)
    diffs = [abs(new.cycle - old.cycle), shift]
    diffs += [abs(a - b) for a, b in zip(old.splits, new.splits, strict=True)]
    return _num(max(diffs))


# --------------------------------------------------------------------------- time of day
@dataclass(frozen=True)
class TimeOfDaySchedule:
    """Which plan runs when, for one signal; a value separate from the plans.

    Attributes:
        signal_id: The signal.
        entries: ``("HH:MM", plan_hash)`` pairs sorted by time, the first at ``"00:00"``.
    """

    signal_id: str
    entries: tuple[tuple[str, str], ...]

    def __post_init__(self) -> None:
        entries = tuple((str(t), str(h)) for t, h in self.entries)
        object.__setattr__(self, "entries", entries)
        if not entries:
            raise WulinError(f"schedule for {self.signal_id!r}: no entries; add one at \"00:00\"")
        times = [parse_clock(t, f"schedule for {self.signal_id!r}: entry {t!r}", latest=TIME_OF_DAY_LATEST)
                 for t, _ in entries]
        if times[0] != 0:
            raise WulinError(f"schedule for {self.signal_id!r}: the first entry must be at \"00:00\", got {entries[0][0]!r}")
        for (t0, _), (t1, _), a, b in zip(entries, entries[1:], times, times[1:], strict=False):
            if b <= a:
                raise WulinError(f"schedule for {self.signal_id!r}: {t1!r} follows {t0!r}; sort the entries by time")

    def plan_at(self, clock: str | float) -> str:
        """The plan hash in force at ``clock`` (``"07:30"`` or seconds since midnight; wraps)."""
        t = parse_clock(clock, "plan_at", latest=math.inf) % DAY
        current = self.entries[0][1]
        for when, plan in self.entries:
            if parse_clock(when, latest=TIME_OF_DAY_LATEST) <= t:
                current = plan
        return current

    def to_dict(self) -> dict[str, Any]:
        return {"format": SCHEDULE_FORMAT, "signal_id": self.signal_id,
                "entries": [[t, h] for t, h in self.entries]}

    def to_json(self) -> str:
        return canonical_json(self.to_dict())

    def schedule_hash(self) -> str:
        return sha256_hex(self.to_json())

    @classmethod
    def from_json(cls, text: str, source: str = "<json>") -> TimeOfDaySchedule:
        data = _parse_json(text, source)
        if not isinstance(data, dict):
            raise WulinError(f"{source}: a schedule is a JSON object with signal_id and entries")
        _keys(data, {"format", "signal_id", "entries"}, ("signal_id", "entries"), source)
        if data.get("format", SCHEDULE_FORMAT) != SCHEDULE_FORMAT:
            raise WulinError(f"{source}: field 'format' must be {SCHEDULE_FORMAT!r}")
        raw = data["entries"]
        if not isinstance(raw, list) or not all(
            isinstance(e, list) and len(e) == 2 and all(isinstance(x, str) for x in e) for e in raw
        ):
            raise WulinError(f"{source}: field 'entries' must be a list of [\"HH:MM\", plan_hash] pairs")
        try:
            return cls(_text(data["signal_id"], f"{source}: field 'signal_id'"),
                       tuple((t, h) for t, h in raw))
        except WulinError as exc:
            raise WulinError(f"{source}: {exc}") from None


# --------------------------------------------------------------------------- plan sets
PLAN_SET_FORMAT = "wulin.tod-plan-set/1"


def plan_set_problems(schedule: TimeOfDaySchedule, plans: Sequence[TimingPlan]) -> list[str]:
    """Why ``plans`` and ``schedule`` are not one signal's plan set (empty: they are)."""
    sid = schedule.signal_id
    out: list[str] = []
    hashes = [p.plan_hash() for p in plans]
    have = set(hashes)
    if len(have) != len(hashes):
        out.append(f"plan set for {sid!r}: a plan is listed twice")
    for p in plans:
        if p.signal_id != sid:
            out.append(f"plan set for {sid!r}: plan {p.name or p.short_hash!r} is for signal {p.signal_id!r}")
    for when, h in schedule.entries:
        if h not in have:
            out.append(f"schedule for {sid!r}: entry {when!r} names plan {h[:12]}, which is not in the set "
                       f"(plans: {', '.join(x[:12] for x in hashes) or 'none'})")
    named = {h for _, h in schedule.entries}
    for p, h in zip(plans, hashes, strict=True):
        if h not in named:
            out.append(f"plan set for {sid!r}: plan {p.name or h[:12]!r} ({h[:12]}) is never run by the schedule")
    return out


@dataclass(frozen=True)
class PlanSet:
    """One signal's time-of-day plans with the schedule that runs them: the unit that is
    proposed, approved, simulated across a day and deployed as patterns plus a time base.

    Its hash is the schedule's hash: the schedule names every plan by its hash, and a set holds
    exactly the plans its schedule names, so that one hash binds the whole set.

    Attributes:
        schedule: Which plan when (:class:`TimeOfDaySchedule`, format unchanged).
        plans: The plans, in the order the schedule first runs them.
    """

    schedule: TimeOfDaySchedule
    plans: tuple[TimingPlan, ...]

    def __post_init__(self) -> None:
        by_hash = {p.plan_hash(): p for p in self.plans}
        found = plan_set_problems(self.schedule, tuple(self.plans))
        if found:
            raise WulinError("; ".join(found))
        order = list(dict.fromkeys(h for _, h in self.schedule.entries))
        object.__setattr__(self, "plans", tuple(by_hash[h] for h in order))

    @property
    def signal_id(self) -> str:
        return self.schedule.signal_id

    def set_hash(self) -> str:
        """The schedule's hash (it covers every plan's hash)."""
        return self.schedule.schedule_hash()

    def plan(self, plan_hash: str) -> TimingPlan:
        return next(p for p in self.plans if p.plan_hash() == plan_hash)

    def plan_at(self, clock: str | float) -> TimingPlan:
        """The plan in force at ``clock`` (``"07:30"`` or seconds since midnight; wraps)."""
        return self.plan(self.schedule.plan_at(clock))

    def switches(self) -> list[tuple[float, TimingPlan]]:
        """``(seconds since midnight, plan)`` of every schedule entry."""
        return [(parse_clock(t, latest=TIME_OF_DAY_LATEST), self.plan(h)) for t, h in self.schedule.entries]

    def to_dict(self) -> dict[str, Any]:
        return {"format": PLAN_SET_FORMAT, "schedule": self.schedule.to_dict(),
                "plans": [p.to_dict() for p in self.plans]}

    def to_json(self) -> str:
        return canonical_json(self.to_dict())

    @classmethod
    def from_json(cls, text: str, source: str = "<plan set>") -> PlanSet:
        data = _parse_json(text, source)
        if not isinstance(data, dict) or data.get("format") != PLAN_SET_FORMAT:
            raise WulinError(f"{source}: not a plan set (format {PLAN_SET_FORMAT!r})")
        _keys(data, {"format", "schedule", "plans"}, ("schedule", "plans"), source)
        if not isinstance(data["plans"], list):
            raise WulinError(f"{source}: field 'plans' must be a list of plans")
        schedule = TimeOfDaySchedule.from_json(canonical_json(data["schedule"]), f"{source}: field 'schedule'")
        plans = tuple(_plan_from_dict(p, f"{source}: field 'plans[{k}]'") for k, p in enumerate(data["plans"]))
        try:
            return cls(schedule, plans)
        except WulinError as exc:
            raise WulinError(f"{source}: {exc}") from None


def load_plan_sets(path: Path | str) -> dict[str, PlanSet]:
    """Plan sets from a folder (or one file) of JSON: schedules (``wulin.tod-schedule/1``), plans
    (one or a list) and whole sets (``wulin.tod-plan-set/1``), as the optimiser or
    ``wulin plan schedule make`` writes them; other JSON (reports, evidence) is skipped.

    Raises:
        WulinError: naming the file and entry: a schedule naming a plan that is in no file, two
            schedules for one signal, a bad plan or schedule, or no schedule at all.
    """
    path = Path(path)
    files = sorted(path.rglob("*.json")) if path.is_dir() else [path]
    schedules: dict[str, tuple[TimeOfDaySchedule, str]] = {}
    plans: dict[str, TimingPlan] = {}
    sets: list[tuple[PlanSet, str]] = []
    for f in files:
        data = _parse_json(_read_text(f), str(f))
        fmt = data.get("format") if isinstance(data, dict) else None
        if fmt == SCHEDULE_FORMAT:
            sched = TimeOfDaySchedule.from_json(canonical_json(data), str(f))
            if sched.signal_id in schedules:
                raise WulinError(f"{f}: a second schedule for signal {sched.signal_id!r} "
                                 f"(the first is {schedules[sched.signal_id][1]}); keep one")
            schedules[sched.signal_id] = (sched, str(f))
        elif fmt == PLAN_SET_FORMAT:
            sets.append((PlanSet.from_json(canonical_json(data), str(f)), str(f)))
        elif _plan_like(data):
            items = data if isinstance(data, list) else [data]
            for k, item in enumerate(items):
                p = _plan_from_dict(item, f"{f}[{k}]" if isinstance(data, list) else str(f))
                plans[p.plan_hash()] = p
    out = {s.signal_id: s for s, _ in sets}
    for sid, (sched, where) in schedules.items():
        if sid in out:
            raise WulinError(f"{where}: signal {sid!r} also has a whole plan set in {path}; keep one")
        wanted = list(dict.fromkeys(h for _, h in sched.entries))
        missing = [(t, h) for t, h in sched.entries if h not in plans]
        if missing:
            t, h = missing[0]
            raise WulinError(f"{where}: entry {t!r} names plan {h[:12]}, which is in no plan file under {path}")
        try:
            out[sid] = PlanSet(sched, tuple(plans[h] for h in wanted))
        except WulinError as exc:
            raise WulinError(f"{where}: {exc}") from None
    if not out:
        raise WulinError(f"{path}: no time-of-day schedule ({SCHEDULE_FORMAT}) found")
    return dict(sorted(out.items()))


def _plan_like(data: Any) -> bool:
    """Whether JSON read from a plan-set folder holds plans (one or a list), not a report."""
    def one(x: Any) -> bool:
        return isinstance(x, dict) and (x.get("format") == PLAN_FORMAT or ("format" not in x and "stages" in x))

    return one(data) or (isinstance(data, list) and bool(data) and all(one(x) for x in data))


def tod_program_id(plan: TimingPlan, prefix: str = "wulin-tod") -> str:
    """SUMO program id of one plan of a set: the prefix and the plan's short hash."""
    return f"{prefix}-{plan.short_hash}"


def plan_sets_to_additional(sets: Iterable[PlanSet], prefix: str = "wulin-tod", start: float = 0.0) -> str:
    """A SUMO additional file running each set across the day: one ``<tlLogic>`` per plan and a
    WAUT per signal switching programs at the schedule's times (every day: period 86400 s).

    The program in force at ``start`` (seconds since midnight) is written last, so SUMO starts
    with it; SUMO switches at the schedule time itself (a controller waits for its cycle
    boundary, at most one cycle later).
    """
    body: list[str] = []
    for ps in sets:
        first = ps.plan_at(start % DAY)
        for p in sorted(ps.plans, key=lambda p: p is first):
            body.append(p.to_tllogic(tod_program_id(p, prefix)))
    for ps in sets:
        wid = f"{prefix}-{ps.signal_id}"
        body.append(f"    <WAUT id={quoteattr(wid)} refTime=\"0\" period=\"{DAY:g}\" "
                    f"startProg={quoteattr(tod_program_id(ps.plan_at(0), prefix))}>")
        for t, p in ps.switches():
            body.append(f"        <wautSwitch time=\"{t:g}\" to={quoteattr(tod_program_id(p, prefix))}/>")
        body.append("    </WAUT>")
        body.append(f"    <wautJunction wautID={quoteattr(wid)} junctionID={quoteattr(ps.signal_id)}/>")
    return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<additional>\n" + "\n".join(body) + "\n</additional>\n"
