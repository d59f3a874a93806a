"""Experiment declarations: scenarios x variations x controllers x seeds, in TOML.

An experiment is data (DESIGN principle 5).  Example (``experiments/demo.toml``)::

    name = "demo"
    description = "Grid AM peak: field programs vs max-pressure, +20 % demand"
    scenarios = ["grid-am-v1"]
    controllers = ["field", "max-pressure"]
    baseline = "field"              # paired differences are taken against it
    seeds = [1, 2, 3]               # or seeds = 3 for 1, 2, 3

    [[variations]]
    name = "base"                   # the scenario as declared

    [[variations]]
    name = "plus20"
    scale = 1.2                     # demand factor (SUMO --scale)
    window = ["07:00", "07:30"]     # optional: run only this part of the scenario
    warmup = 120                    # optional warm-up for the window (seconds)

    [[variations.closures]]         # lanes or whole edges closed to traffic
    edges = ["B1C1"]                # or lanes = ["B1C1_0"]
    at = "07:10"                    # clock time or seconds since midnight; default: start
    duration = 900                  # seconds; default: until the end

    [[variations.incidents]]        # a stopped vehicle blocking a lane
    lane = "A1B1_0"
    at = "07:05"
    duration = 600
    position = 80                   # metres along the lane (optional)

    [[variations.signal_failures]]  # a signal flashing yellow
    signal = "B1"
    at = "07:10"
    duration = 600

Other variation keys: ``plan = "plans/am.json"`` (a timing-plan file: JSON plans from
``controllers.plan`` or a SUMO ``tlLogic`` additional file, path relative to the TOML) and
``pedestrian_street = true`` (closes the edges listed in the top-level
``pedestrian_street_edges`` for the whole run).  Emergency vehicles and bus priority:
``[[variations.emergency]]`` tables (``route``, ``depart``, ``vehicle``, ``repeats``, ``every``),
``[variations.preemption]`` (:class:`Preemption`) and ``[variations.bus_priority]``
(:class:`BusPriority`); see ``sim.priority`` and README section ``priority``.  Optional top-level keys: ``test``
(``"t-test"`` or ``"wilcoxon"``), ``[controller_params.<name>]`` tables passed to
``make_controller``, ``tuned = false`` (run every controller with its defaults instead of its
scenario's tuned parameters, :mod:`experiments.tuned`).  The tuned parameters in effect are
looked up once, when the declaration is loaded, and recorded in ``resolved.json``
(``tuned_params``), so a resumed experiment never mixes two tunings.

:func:`load_spec` validates the whole declaration before anything runs; every problem is a
:class:`~sim.errors.WulinError` naming the file, the line, the field and the fix.  The file
is the pydantic model :class:`SpecFile` (``sim.config``: unknown keys refused, no nan/inf);
the value types it holds (:class:`Variation`, :class:`Closure`, :class:`Incident`,
:class:`SignalFailure`) are validated frozen dataclasses, checked the same way when built in
code.  :func:`read_resolved` reads a results folder's ``resolved.json`` back into the model.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass as config_dataclass

from sim.config import (
    DATACLASS_CONFIG,
    Bool,
    Clock,
    ConfigIssue,
    ConfigModel,
    Name,
    Names,
    Number,
    Text,
    validate,
)
from sim.errors import WulinError
from sim.files import parse_json, parse_toml, read_text

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
TESTS = ("t-test", "wilcoxon")


# ------------------------------------------------------------------ field types
def _slug(value: str) -> str:
    if not _NAME_RE.match(value):
        raise ConfigIssue(f"expected a short name (lower case, digits, - or _), got {value!r}")
    return value


def _unique(values: tuple[str, ...]) -> tuple[str, ...]:
    dup = sorted({x for x in values if values.count(x) > 1})
    if dup:
        raise ConfigIssue(f"{dup[0]!r} is listed twice; list each once")
    return values


def _tables(value: Any) -> Any:
    return [value] if isinstance(value, dict) else value


def _context(info: ValidationInfo) -> dict[str, Any]:
    return info.context if isinstance(info.context, dict) else {}


Slug = Annotated[Name, AfterValidator(_slug)]
UniqueNames = Annotated[Names, AfterValidator(_unique)]
Seconds = Annotated[Number, Field(gt=0)]
Distance = Annotated[Number, Field(ge=0)]


# ------------------------------------------------------------------ value types
@config_dataclass(frozen=True, config=DATACLASS_CONFIG)
class Closure:
    """Lanes closed to traffic from ``at`` for ``duration`` seconds (None: start / end)."""

    lanes: UniqueNames = ()
    edges: UniqueNames = ()
    at: Clock | None = None
    duration: Seconds | None = None

    @model_validator(mode="after")
    def _something_closed(self) -> Closure:
        if not self.lanes and not self.edges:
            raise ConfigIssue('a closure needs lanes = ["edge_0"] or edges = ["edge"]')
        return self


@config_dataclass(frozen=True, config=DATACLASS_CONFIG)
class Incident:
    """A vehicle stopped on ``lane`` at ``at`` for ``duration`` seconds."""

    lane: Name
    at: Clock
    duration: Seconds
    position: Distance | None = None


@config_dataclass(frozen=True, config=DATACLASS_CONFIG)
class SignalFailure:
    """A signal flashing yellow from ``at`` for ``duration`` seconds (None: until the end)."""

    signal: Name
    at: Clock
    duration: Seconds | None = None


EMERGENCY_VEHICLES = ("ambulance", "fire-engine", "police")
PREEMPT_MODES = ("detection", "green-wave")
RECOVERIES = ("best-way", "short-way", "long-way", "immediate")
PRIORITY_BUSES = ("late", "all")
MinGreen = Annotated[Number, Field(ge=4, le=60)]  # the plan checks' 4 s floor


def _one_of(value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        close = difflib.get_close_matches(value, choices, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigIssue(f"expected one of {', '.join(choices)}, got {value!r}{hint}")
    return value


@config_dataclass(frozen=True, config=DATACLASS_CONFIG)
class Emergency:
    """An emergency vehicle driving ``route`` from ``depart``, ``repeats`` times ``every`` s."""

    route: Annotated[Names, Field(min_length=2)]
    depart: Clock
    vehicle: Annotated[str, AfterValidator(lambda v: _one_of(v, EMERGENCY_VEHICLES))] = "ambulance"
    repeats: Annotated[int, Field(strict=True, ge=1, le=20)] = 1
    every: Seconds = 900.0


@config_dataclass(frozen=True, config=DATACLASS_CONFIG)
class Preemption:
    """How the signals on an emergency route are preempted (``enabled = false``: not at all)."""

    enabled: Bool = True
    mode: Annotated[str, AfterValidator(lambda v: _one_of(v, PREEMPT_MODES))] = "detection"
    detect_distance: Annotated[Number, Field(gt=0, le=2000)] = 250.0
    recovery: Annotated[str, AfterValidator(lambda v: _one_of(v, RECOVERIES))] = "best-way"
    min_green: MinGreen = 5.0
    max_hold: Seconds = 180.0
    margin: Annotated[Number, Field(ge=0, le=120)] = 10.0
    wave_speed: Annotated[Number, Field(gt=0, le=40)] = 11.0


@config_dataclass(frozen=True, config=DATACLASS_CONFIG)
class BusPriority:
    """Transit signal priority for late buses, or every bus (``enabled = false``: measured,
    none given); ``max_queue``: only while no in-lane it delays holds more halted vehicles."""

    enabled: Bool = True
    lines: UniqueNames = ()
    schedule_speed: Annotated[Number, Field(gt=0, le=30)] = 5.0
    late_after: Number = 30.0
    detect_distance: Annotated[Number, Field(gt=0, le=1000)] = 150.0
    max_extension: Annotated[Number, Field(ge=0, le=60)] = 15.0
    min_interval: Seconds | None = None  # None: the signal's cycle
    min_green: MinGreen = 5.0
    buses: Annotated[str, AfterValidator(lambda v: _one_of(v, PRIORITY_BUSES))] = "late"
    max_queue: Annotated[Number, Field(ge=0, le=200)] | None = None


def _check_plan_file(plan: Path, context: dict[str, Any]) -> Path:
    plan = (Path(context.get("base", Path.cwd())) / plan).resolve()
    if not context.get("check_refs", True):
        return plan  # read back from resolved.json: the file may since have moved
    if not plan.is_file():
        raise ConfigIssue(f"file {str(plan.name)!r} not found (looked for {plan}); fix the path "
                          "(relative to the experiment file)")
    if plan.suffix not in (".json", ".xml"):
        raise ConfigIssue("expected a .json timing-plan file (controllers.plan) or a SUMO .xml "
                          "tlLogic additional file")
    if plan.suffix == ".json":
        from controllers.plan import load_plans

        load_plans(plan)  # a WulinError here names the plan file and its field
    else:
        from sim.files import read_text

        if "<tlLogic" not in read_text(plan, "tlLogic additional file"):
            raise ConfigIssue(f"{plan.name!r} holds no <tlLogic> element; name a SUMO tlLogic additional "
                              "file or a .json timing-plan file")
    return plan


@config_dataclass(frozen=True, config=DATACLASS_CONFIG)
class Variation:
    """One what-if applied to every scenario, controller and seed of an experiment."""

    name: Slug
    description: Text = ""
    scale: Annotated[Number, Field(gt=0, le=10)] | None = None
    window: tuple[Clock, Clock] | None = None
    warmup: Distance | None = None
    closures: Annotated[tuple[Closure, ...], BeforeValidator(_tables)] = ()
    incidents: Annotated[tuple[Incident, ...], BeforeValidator(_tables)] = ()
    signal_failures: Annotated[tuple[SignalFailure, ...], BeforeValidator(_tables)] = ()
    plan: Path | None = None
    pedestrian_street: Bool = False
    emergency: Annotated[tuple[Emergency, ...], BeforeValidator(_tables)] = ()
    preemption: Preemption | None = None
    bus_priority: BusPriority | None = None

    @field_validator("plan")
    @classmethod
    def _plan_exists(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        try:
            return _check_plan_file(value, _context(info))
        except WulinError as exc:
            raise ConfigIssue(str(exc)) from None

    @model_validator(mode="after")
    def _window_fits(self) -> Variation:
        if self.window is not None:
            a, b = self.window
            if b <= a:
                from sim.clock import format_clock

                raise ConfigIssue(f"end ({format_clock(b)}) must be after begin ({format_clock(a)})", "window")
            if self.warmup is not None and self.warmup >= b - a:
                raise ConfigIssue(f"warm-up {self.warmup:g} s must be shorter than the window", "warmup")
        return self

    @model_validator(mode="after")
    def _preemption_needs_vehicle(self) -> Variation:
        if self.preemption is not None and not self.emergency:
            raise ConfigIssue("preemption settings but no emergency vehicle; add a "
                              "[[variations.emergency]] table (route, depart)", "preemption")
        return self

    @property
    def has_priority(self) -> bool:
        """True when the variation runs emergency vehicles or bus priority."""
        return bool(self.emergency) or self.bus_priority is not None

    @property
    def has_events(self) -> bool:
        """True when the variation acts on the running simulation (needs hooks)."""
        return bool(self.closures or self.incidents or self.signal_failures)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the resolved spec written next to the results)."""
        d = asdict(self)
        d["plan"] = str(self.plan) if self.plan else None
        return d


def scenario_label(scenario: str) -> str:
    """The scenario id of a scenario given by id or by the path of its TOML or .sumocfg file."""
    if scenario.endswith(".sumocfg"):
        from sim.sumocfg import slug_id

        return slug_id(Path(scenario).name.removesuffix(".sumocfg"))
    return Path(scenario).stem if scenario.endswith(".toml") else scenario


@dataclass(frozen=True)
class RunKey:
    """One run of an experiment."""

    scenario: str
    variation: str
    controller: str
    seed: int

    @property
    def run_id(self) -> str:
        """Folder name of the run (unique within an experiment)."""
        # policy:NAME or policy:PATH: no sub-folder, and no ':' (SUMO reads "a:b" as host:port)
        controller = re.sub(r"[/\\:]", "_", self.controller)
        return f"{scenario_label(self.scenario)}--{self.variation}--{controller}--s{self.seed}"


@dataclass(frozen=True)
class ExperimentSpec:
    """A validated experiment declaration.

    Attributes:
        name: Experiment name (the results folder's name).
        scenarios: Scenario ids.
        controllers: Registered controller names.
        seeds: SUMO seeds; every combination runs once per seed.
        baseline: Controller the paired differences are taken against.
        variations: What-ifs (at least one; ``base`` when none is declared).
        controller_params: Keyword arguments per controller name.
        test: Significance test for the paired differences.
        pedestrian_street_edges: Edges closed by ``pedestrian_street = true``.
        tuned: Make each controller with its scenario's tuned parameters (where tuned).
        tuned_params: The tuned parameters in effect: scenario -> controller -> params
            (explicit ``controller_params`` override them).
        source: The TOML file (None when built in code).
        text: The TOML text as written.
    """

    name: str
    scenarios: tuple[str, ...]
    controllers: tuple[str, ...]
    seeds: tuple[int, ...]
    baseline: str
    variations: tuple[Variation, ...]
    description: str = ""
    controller_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    test: str = "t-test"
    pedestrian_street_edges: tuple[str, ...] = ()
    tuned: bool = True
    tuned_params: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    source: Path | None = None
    text: str = ""

    def params_for(self, key: RunKey) -> dict[str, Any] | None:
        """The keyword arguments ``key``'s controller is made with (tuned, then explicit)."""
        merged = {**self.tuned_params.get(key.scenario, {}).get(key.controller, {}),
                  **self.controller_params.get(key.controller, {})}
        return merged or None

    def runs(self) -> list[RunKey]:
        """Every run, in a stable order (scenario, variation, controller, seed)."""
        return [
            RunKey(s, v.name, c, seed)
            for s in self.scenarios
            for v in self.variations
            for c in self.controllers
            for seed in self.seeds
        ]

    def variation(self, name: str) -> Variation:
        """The variation called ``name``."""
        for v in self.variations:
            if v.name == name:
                return v
        raise WulinError(f"experiment {self.name!r} has no variation {name!r}")

    def to_dict(self) -> dict[str, Any]:
        """The resolved declaration as plain data (``resolved.json``; :func:`read_resolved`)."""
        return {
            "name": self.name,
            "description": self.description,
            "scenarios": list(self.scenarios),
            "controllers": list(self.controllers),
            "seeds": list(self.seeds),
            "baseline": self.baseline,
            "test": self.test,
            "controller_params": self.controller_params,
            "pedestrian_street_edges": list(self.pedestrian_street_edges),
            "variations": [v.to_dict() for v in self.variations],
            "source": str(self.source) if self.source else None,
            # only when they say something, so folders written before tuning resume unchanged
            **({} if self.tuned else {"tuned": False}),
            **({"tuned_params": self.tuned_params} if self.tuned_params else {}),
        }


# ------------------------------------------------------------------ the declaration file
def _seeds(value: Any) -> tuple[int, ...]:
    """``3`` -> ``(1, 2, 3)``; a list of distinct seeds as given."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= 1000:
            raise ConfigIssue(f"a count of seeds must be 1..1000, got {value}")
        return tuple(range(1, value + 1))
    if isinstance(value, list | tuple) and value and all(
        isinstance(s, int) and not isinstance(s, bool) for s in value
    ):
        from sim.simulation import MAX_SEED

        bad = [s for s in value if not 0 <= s <= MAX_SEED]
        if bad:
            raise ConfigIssue(f"seed {bad[0]} out of range; use 0..{MAX_SEED}")
        if len(set(value)) != len(value):
            raise ConfigIssue("a seed is listed twice; list each once")
        return tuple(value)
    raise ConfigIssue(f"expected a list of integer seeds such as [1, 2, 3] or a count such as 5, got {value!r}")


class SpecFile(ConfigModel):
    """The experiment TOML as written (see the module docstring).

    Validation context: ``base`` (folder for relative paths), ``check_refs`` (load scenarios,
    look up controllers and plan files; off when reading ``resolved.json`` back),
    ``check_network`` (ids and times against each scenario's network).
    """

    name: Slug
    description: Text = ""
    scenarios: Annotated[UniqueNames, Field(min_length=1)]
    controllers: Annotated[UniqueNames, Field(min_length=1)]
    baseline: Name | None = None
    seeds: Annotated[tuple[int, ...], BeforeValidator(_seeds)] = (1,)
    controller_params: dict[Name, dict[str, Any]] = Field(default_factory=dict)
    test: str = "t-test"
    pedestrian_street_edges: UniqueNames = ()
    variations: Annotated[tuple[Variation, ...], BeforeValidator(_tables)] = ()
    tuned: Bool = True
    tuned_params: dict[str, dict[Name, dict[str, Any]]] = Field(default_factory=dict)

    @field_validator("tuned_params")
    @classmethod
    def _recorded_only(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if value and _context(info).get("check_refs", True):
            raise ConfigIssue("is recorded by the runner from the scenarios' tuned files; set "
                              "parameters in [controller_params.NAME] instead")
        return value

    @field_validator("scenarios")
    @classmethod
    def _scenarios_exist(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        ctx = _context(info)
        if ctx.get("check_refs", True):
            from sim.scenario import load_scenario

            loaded = ctx.setdefault("loaded", {})
            for sid in value:
                try:
                    loaded[sid] = load_scenario(sid)
                except WulinError as exc:
                    raise ConfigIssue(str(exc)) from None
        return value

    @field_validator("controllers")
    @classmethod
    def _controllers_exist(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if _context(info).get("check_refs", True):
            from controllers.base import available_controllers, check_controller_name

            known = available_controllers()
            for c in value:
                if ":" in c and c.partition(":")[0] in known:
                    try:
                        check_controller_name(c)
                    except WulinError as exc:
                        raise ConfigIssue(str(exc)) from None
                elif c not in known:
                    close = difflib.get_close_matches(c, known, n=1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    raise ConfigIssue(f"unknown controller {c!r}{hint}; known: {', '.join(known)}")
        return value

    @field_validator("test")
    @classmethod
    def _known_test(cls, value: str) -> str:
        if value not in TESTS:
            raise ConfigIssue(f"expected one of {', '.join(TESTS)}, got {value!r}")
        return value

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> SpecFile:
        baseline = self.baseline or self.controllers[0]
        if baseline not in self.controllers:
            raise ConfigIssue(f"{baseline!r} is not one of the experiment's controllers "
                              f"({', '.join(self.controllers)}); name one of them", "baseline")
        for cname in self.controller_params:
            if cname not in self.controllers:
                raise ConfigIssue(f"parameters for {cname!r}, which is not in 'controllers'; add it "
                                  "there or remove this table", "controller_params", cname)
        names = [v.name for v in self.variations]
        for i, v in enumerate(self.variations):
            if names.index(v.name) != i:
                raise ConfigIssue(f"variation name {v.name!r} is used twice; give each variation "
                                  "its own name", "variations", i, "name")
            if v.pedestrian_street and not self.pedestrian_street_edges:
                raise ConfigIssue('no pedestrian street declared; add pedestrian_street_edges = '
                                  '["edge", ...] at the top of the file', "variations", i, "pedestrian_street")
        ctx = _context(info)
        if ctx.get("check_refs", True):
            _check_controller_params(self.controller_params)
        if ctx.get("check_network", False):
            spec = self.to_spec()
            for sc in ctx.get("loaded", {}).values():
                _check_against_scenario(spec, sc)
        return self

    def to_spec(self, source: Path | None = None, text: str = "") -> ExperimentSpec:
        """The validated declaration as the value the runner uses."""
        return ExperimentSpec(
            name=self.name, description=self.description, scenarios=self.scenarios,
            controllers=self.controllers, seeds=self.seeds,
            baseline=self.baseline or self.controllers[0],
            variations=self.variations or (Variation("base"),),
            controller_params={k: dict(v) for k, v in self.controller_params.items()},
            test=self.test, pedestrian_street_edges=self.pedestrian_street_edges,
            tuned=self.tuned, tuned_params=self.tuned_params, source=source, text=text,
        )


def _tuned_params(spec: ExperimentSpec) -> dict[str, dict[str, dict[str, Any]]]:
    """Scenario -> controller -> tuned parameters, for the spec's controllers that are tuned."""
    from experiments.tuned import load_tuned
    from sim.scenario import load_scenario

    out: dict[str, dict[str, dict[str, Any]]] = {}
    for sid in spec.scenarios:
        tuned = load_tuned(load_scenario(sid))
        found = {c: dict(tuned.controllers[c].params) for c in spec.controllers
                 if tuned is not None and c in tuned.controllers and tuned.controllers[c].params}
        if found:
            out[sid] = found
    return out


def _check_controller_params(params: dict[str, dict[str, Any]]) -> None:
    from controllers.base import make_controller

    for cname, kw in params.items():
        try:
            make_controller(cname, **kw)
        except WulinError as exc:
            raise ConfigIssue(f"{exc}; fix the parameter names", "controller_params", cname) from None
        except TypeError as exc:  # a parameter of the wrong type for the controller
            raise ConfigIssue(f"{exc}; fix the parameter values", "controller_params", cname) from None


# ------------------------------------------------------------------ loading
def load_spec(path: Path | str, *, check_network: bool = True) -> ExperimentSpec:
    """Load and validate an experiment TOML file.

    Args:
        path: The TOML file.
        check_network: Also check that lanes, edges and signals exist in each scenario's
            network and that event times fall inside each scenario's window.

    Raises:
        WulinError: the first problem found, naming file, line, field and fix.
    """
    path = Path(path)
    return parse_spec(read_text(path, "experiment file"), source=path, check_network=check_network)


def parse_spec(text: str, *, source: Path | None = None, check_network: bool = True) -> ExperimentSpec:
    """Validate an experiment declaration given as TOML text (see :func:`load_spec`)."""
    where = str(source) if source else "<experiment>"
    data = parse_toml(text, where)
    if source is not None:
        data.setdefault("name", source.stem)
    context = {"base": source.parent if source else Path.cwd(), "check_network": check_network}
    doc = validate(SpecFile, data, where, text=text, context=context)
    spec = doc.to_spec(source.resolve() if source else None, text)
    return replace(spec, tuned_params=_tuned_params(spec)) if spec.tuned else spec


def read_resolved(path: Path | str) -> ExperimentSpec:
    """Read an experiment folder's ``resolved.json`` back into the typed declaration.

    Scenarios, controllers and plan files are not looked up again (they may have changed
    since the run); types, ranges and names are checked as when the TOML was loaded.

    Raises:
        WulinError: unreadable, not JSON, or a field that does not fit the model.
    """
    path = Path(path)
    data = parse_json(read_text(path, "resolved.json"), path)
    if not isinstance(data, dict):
        raise WulinError(f"{path}: expected the JSON object written by `wulin experiment run`")
    source = data.pop("source", None)
    doc = validate(SpecFile, data, path, context={"check_refs": False})
    return doc.to_spec(Path(source) if isinstance(source, str) else None)


def effective_scenario(scenario: Any, variation: Variation) -> Any:
    """The scenario with a variation's window, warm-up and demand scale applied."""
    sc = scenario
    if variation.window is not None:
        begin, end = variation.window
        warmup = variation.warmup if variation.warmup is not None else min(sc.warmup, (end - begin) / 2)
        sc = replace(sc, begin=begin, end=end, warmup=warmup)
    elif variation.warmup is not None:
        sc = replace(sc, warmup=variation.warmup)
    if variation.scale is not None:
        sc = replace(sc, scale=sc.scale * variation.scale)
    return sc


def _issue(path: tuple[str | int, ...], problem: str) -> ConfigIssue:
    return ConfigIssue(problem, *path)


def _check_against_scenario(spec: ExperimentSpec, scenario: Any) -> None:
    """Element ids exist in the scenario's network; windows and events fit the scenario."""
    from sim.scenario import format_clock
    from sim.variations import network_index

    net = network_index(scenario.net_file)
    span = f"{format_clock(scenario.begin)}-{format_clock(scenario.end)}"
    for e in spec.pedestrian_street_edges:
        if e not in net.edges:
            raise _issue(("pedestrian_street_edges",), f"edge {e!r} is not in {scenario.id}'s "
                                                          f"network ({scenario.net_file.name}); fix the id")
    for i, v in enumerate(spec.variations):
        p: tuple[str | int, ...] = ("variations", i)
        if v.window is not None and not (scenario.begin <= v.window[0] and v.window[1] <= scenario.end):
            raise _issue((*p, "window"), f"window {format_clock(v.window[0])}-"
                                            f"{format_clock(v.window[1])} is outside scenario "
                                            f"{scenario.id} ({span}); choose times inside it")
        sc = effective_scenario(scenario, v)
        if v.warmup is not None and v.warmup >= sc.duration:
            raise _issue((*p, "warmup"), f"warm-up {v.warmup:g} s is not shorter than "
                                            f"{scenario.id}'s {sc.duration:g} s")
        inside = f"inside {format_clock(sc.begin)}-{format_clock(sc.end)} ({scenario.id})"

        def check_at(path: tuple[str | int, ...], at: float | None, sc: Any = sc,
                     inside: str = inside) -> None:
            if at is not None and not sc.begin <= at < sc.end:
                raise _issue(path, f"time {format_clock(at)} is not {inside}; choose a time {inside}")

        for j, c in enumerate(v.closures):
            for lane in c.lanes:
                if lane not in net.lanes:
                    raise _issue((*p, "closures", j, "lanes"),
                                    f"lane {lane!r} is not in {scenario.id}'s network; fix the id "
                                    "(lane ids are <edge>_<index>)")
            for e in c.edges:
                if e not in net.edges:
                    raise _issue((*p, "closures", j, "edges"),
                                    f"edge {e!r} is not in {scenario.id}'s network; fix the id")
            check_at((*p, "closures", j, "at"), c.at)
        for j, inc in enumerate(v.incidents):
            if inc.lane not in net.lanes:
                raise _issue((*p, "incidents", j, "lane"),
                                f"lane {inc.lane!r} is not in {scenario.id}'s network; fix the id")
            length = net.lane_lengths.get(inc.lane)
            if inc.position is not None and length is not None and inc.position > length:
                raise _issue((*p, "incidents", j, "position"),
                                f"position {inc.position:g} m is past the end of lane {inc.lane!r} "
                                f"({length:g} m); choose a position from 0 to {length:g}")
            check_at((*p, "incidents", j, "at"), inc.at)
        for j, f in enumerate(v.signal_failures):
            if f.signal not in net.signals:
                known = ", ".join(sorted(net.signals)[:12])
                raise _issue((*p, "signal_failures", j, "signal"),
                                f"signal {f.signal!r} is not in {scenario.id}'s network; known: {known}")
            check_at((*p, "signal_failures", j, "at"), f.at)
        for j, em in enumerate(v.emergency):
            _check_emergency(scenario, net, em, (*p, "emergency", j), check_at)


def _check_emergency(scenario: Any, net: Any, em: Emergency, path: tuple[str | int, ...],
                     check_at: Any) -> None:
    """An emergency route's edges exist and connect; its departures fall inside the run."""
    from sim.priority import route_gap

    for e in em.route:
        if e not in net.edges:
            raise _issue((*path, "route"), f"edge {e!r} is not in {scenario.id}'s network; fix the id")
    gap = route_gap(scenario.net_file, em.route)
    if gap is not None:
        raise _issue((*path, "route"), f"edge {gap[1]!r} does not lead on to {gap[2]!r} "
                                       f"(route position {gap[0] + 1}); list connected edges")
    for k in range(em.repeats):
        check_at((*path, "depart"), em.depart + k * em.every)
