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
``pedestrian_street_edges`` for the whole run).  Optional top-level keys: ``test``
(``"t-test"`` or ``"wilcoxon"``), ``[controller_params.<name>]`` tables passed to
``make_controller``.

:func:`load_spec` validates the whole declaration before anything runs; every problem is a
:class:`~sim.errors.WulinError` naming the file, the line, the field and the fix.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sim.errors import WulinError

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_TOP_KEYS = {
    "name", "description", "scenarios", "controllers", "baseline", "seeds", "variations",
    "controller_params", "test", "pedestrian_street_edges",
}
_VAR_KEYS = {
    "name", "description", "scale", "window", "warmup", "closures", "incidents",
    "signal_failures", "plan", "pedestrian_street",
}
_CLOSURE_KEYS = {"lanes", "edges", "at", "duration"}
_INCIDENT_KEYS = {"lane", "at", "duration", "position"}
_FAILURE_KEYS = {"signal", "at", "duration"}
TESTS = ("t-test", "wilcoxon")


# ------------------------------------------------------------------ value types
@dataclass(frozen=True)
class Closure:
    """Lanes closed to traffic from ``at`` for ``duration`` seconds (None: start / end)."""

    lanes: tuple[str, ...] = ()
    edges: tuple[str, ...] = ()
    at: float | None = None
    duration: float | None = None


@dataclass(frozen=True)
class Incident:
    """A vehicle stopped on ``lane`` at ``at`` for ``duration`` seconds."""

    lane: str
    at: float
    duration: float
    position: float | None = None


@dataclass(frozen=True)
class SignalFailure:
    """A signal flashing yellow from ``at`` for ``duration`` seconds (None: until the end)."""

    signal: str
    at: float
    duration: float | None = None


@dataclass(frozen=True)
class Variation:
    """One what-if applied to every scenario, controller and seed of an experiment."""

    name: str
    description: str = ""
    scale: float | None = None
    window: tuple[float, float] | None = None
    warmup: float | None = None
    closures: tuple[Closure, ...] = ()
    incidents: tuple[Incident, ...] = ()
    signal_failures: tuple[SignalFailure, ...] = ()
    plan: Path | None = None
    pedestrian_street: bool = False

    @property
    def has_events(self) -> bool:
        """True when the variation acts on the running simulation (needs hooks)."""
        return bool(self.closures or self.incidents or self.signal_failures)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the resolved spec written next to the results)."""
        from dataclasses import asdict

        d = asdict(self)
        d["plan"] = str(self.plan) if self.plan else None
        return d


def scenario_label(scenario: str) -> str:
    """The scenario id of a scenario given by id or by the path of its TOML file."""
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
        return f"{scenario_label(self.scenario)}--{self.variation}--{self.controller}--s{self.seed}"


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
    source: Path | None = None
    text: str = ""

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
        """The resolved declaration as plain data."""
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
        }


# ------------------------------------------------------------------ locating errors
class _Locator:
    """Finds the line of a field in the TOML text, so errors can name it."""

    def __init__(self, path: Path | None, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def _find(self, pattern: str, start: int = 0, stop: int | None = None) -> int | None:
        rx = re.compile(pattern)
        for i in range(start, len(self.lines) if stop is None else stop):
            if rx.search(self.lines[i]):
                return i
        return None

    def _table_span(self, header: str, n: int, start: int = 0, stop: int | None = None
                    ) -> tuple[int, int] | None:
        """Lines of the n-th ``[[header]]`` block (from its header to the next same-level one)."""
        pat = rf"^\s*\[\[\s*{re.escape(header)}\s*\]\]"
        pos, found = start, -1
        while True:
            i = self._find(pat, pos, stop)
            if i is None:
                return None
            found += 1
            if found == n:
                nxt = self._find(pat, i + 1, stop)
                if header == "variations":
                    nxt = self._find(r"^\s*\[\[\s*variations\s*\]\]|^\s*\[(?!\[)(?!variations)", i + 1, stop)
                return i, (nxt if nxt is not None else (stop if stop is not None else len(self.lines)))
            pos = i + 1

    def line(self, *path: str | int) -> int | None:
        """1-based line of a field path such as ``("variations", 2, "closures", 0, "at")``."""
        if not path:
            return None
        key = path[0]
        if key == "variations" and len(path) >= 2 and isinstance(path[1], int):
            span = self._table_span("variations", path[1])
            if span is None:
                return self.line("variations")
            a, b = span
            if len(path) == 2:
                return a + 1
            sub = path[2]
            if len(path) >= 4 and isinstance(path[3], int):
                inner = self._table_span(f"variations.{sub}", path[3], a, b)
                if inner is not None:
                    ia, ib = inner
                    if len(path) >= 5:
                        j = self._find(rf"^\s*{re.escape(str(path[4]))}\s*=", ia, ib)
                        if j is not None:
                            return j + 1
                    return ia + 1
            j = self._find(rf"^\s*{re.escape(str(sub))}\s*=", a, b)
            return (j + 1) if j is not None else a + 1
        if key == "controller_params" and len(path) >= 2:
            j = self._find(rf"^\s*\[\s*controller_params\.\"?{re.escape(str(path[1]))}\"?\s*\]")
            if j is not None:
                return j + 1
        j = self._find(rf"^\s*{re.escape(str(key))}\s*=")
        if j is None:
            j = self._find(rf"^\s*\[\[?\s*{re.escape(str(key))}\b")
        return (j + 1) if j is not None else None

    def error(self, path: tuple[str | int, ...], problem: str) -> WulinError:
        line = self.line(*path)
        where = str(self.path) if self.path else "<experiment>"
        if line is not None:
            where += f", line {line}"
        field_name = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path).replace(".[", "[")
        return WulinError(f"{where}: field '{field_name}': {problem}")


# ------------------------------------------------------------------ parsing helpers
def _clock(loc: _Locator, path: tuple[str | int, ...], value: Any) -> float:
    from sim.scenario import parse_clock

    try:
        return parse_clock(value, "x")
    except WulinError:
        raise loc.error(path, f"expected a clock time such as \"07:15\" or seconds since "
                              f"midnight, got {value!r}") from None


def _seconds(loc: _Locator, path: tuple[str | int, ...], value: Any, *, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or (
        positive and value == 0
    ):
        raise loc.error(path, f"expected a number of seconds {'> 0' if positive else '>= 0'}, "
                              f"got {value!r}")
    return float(value)


def _str_list(loc: _Locator, path: tuple[str | int, ...], value: Any, *, allow_empty: bool = False
              ) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(x, str) and x for x in value):
        raise loc.error(path, f"expected a list of names such as [\"a\", \"b\"], got {value!r}")
    if not value and not allow_empty:
        raise loc.error(path, "the list is empty; name at least one")
    dup = sorted({x for x in value if value.count(x) > 1})
    if dup:
        raise loc.error(path, f"{dup[0]!r} is listed twice; list each once")
    return tuple(value)


def _table_list(loc: _Locator, path: tuple[str | int, ...], value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(x, dict) for x in value):
        raise loc.error(path, f"expected tables ([[{'.'.join(map(str, path[::2]))}]]), got {value!r}")
    return value


def _unknown(loc: _Locator, path: tuple[str | int, ...], data: dict[str, Any], allowed: set[str]) -> None:
    for key in data:
        if key not in allowed:
            import difflib

            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise loc.error((*path, key), f"unknown field; {hint}allowed: {', '.join(sorted(allowed))}")


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
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise WulinError(f"{path}: experiment file not found; check the path") from None
    return parse_spec(text, source=path, check_network=check_network)


def parse_spec(text: str, *, source: Path | None = None, check_network: bool = True) -> ExperimentSpec:
    """Validate an experiment declaration given as TOML text (see :func:`load_spec`)."""
    where = str(source) if source else "<experiment>"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise WulinError(f"{where}: invalid TOML ({exc}); fix the syntax at that line") from None
    loc = _Locator(source, text)
    base_dir = source.parent if source else Path.cwd()
    _unknown(loc, (), data, _TOP_KEYS)

    name = data.get("name", source.stem if source else None)
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise loc.error(("name",), f"expected a short name (lower case, digits, - or _), got {name!r}")
    desc = data.get("description", "")
    if not isinstance(desc, str):
        raise loc.error(("description",), "expected a string")

    # scenarios
    if "scenarios" not in data:
        raise WulinError(f"{where}: field 'scenarios' is missing; add scenarios = [\"grid-am-v1\"]")
    scenarios = _str_list(loc, ("scenarios",), data["scenarios"])
    from sim.scenario import load_scenario

    loaded = {}
    for sid in scenarios:
        try:
            loaded[sid] = load_scenario(sid)
        except WulinError as exc:
            raise loc.error(("scenarios",), str(exc)) from None

    # controllers
    if "controllers" not in data:
        raise WulinError(f"{where}: field 'controllers' is missing; add controllers = [\"field\"]")
    controllers = _str_list(loc, ("controllers",), data["controllers"])
    from controllers.base import available_controllers

    known = available_controllers()
    for c in controllers:
        if c not in known:
            import difflib

            close = difflib.get_close_matches(c, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise loc.error(("controllers",), f"unknown controller {c!r}{hint}; known: {', '.join(known)}")
    baseline = data.get("baseline", controllers[0])
    if baseline not in controllers:
        raise loc.error(("baseline",), f"{baseline!r} is not one of the experiment's controllers "
                                       f"({', '.join(controllers)}); name one of them")

    params_raw = data.get("controller_params", {})
    if not isinstance(params_raw, dict) or not all(isinstance(v, dict) for v in params_raw.values()):
        raise loc.error(("controller_params",), "expected tables such as [controller_params.sotl]")
    for cname in params_raw:
        if cname not in controllers:
            raise loc.error(("controller_params", cname),
                            f"parameters for {cname!r}, which is not in 'controllers'; add it there "
                            "or remove this table")

    # seeds
    seeds_raw = data.get("seeds", [1])
    if isinstance(seeds_raw, int) and not isinstance(seeds_raw, bool):
        if not 1 <= seeds_raw <= 1000:
            raise loc.error(("seeds",), f"a count of seeds must be 1..1000, got {seeds_raw}")
        seeds = tuple(range(1, seeds_raw + 1))
    elif isinstance(seeds_raw, list) and seeds_raw and all(
        isinstance(s, int) and not isinstance(s, bool) for s in seeds_raw
    ):
        from sim.simulation import MAX_SEED

        bad = [s for s in seeds_raw if not 0 <= s <= MAX_SEED]
        if bad:
            raise loc.error(("seeds",), f"seed {bad[0]} out of range; use 0..{MAX_SEED}")
        if len(set(seeds_raw)) != len(seeds_raw):
            raise loc.error(("seeds",), "a seed is listed twice; list each once")
        seeds = tuple(seeds_raw)
    else:
        raise loc.error(("seeds",), f"expected a list of integer seeds such as [1, 2, 3] or a count "
                                    f"such as 5, got {seeds_raw!r}")

    test = data.get("test", "t-test")
    if test not in TESTS:
        raise loc.error(("test",), f"expected one of {', '.join(TESTS)}, got {test!r}")
    ped_edges = _str_list(loc, ("pedestrian_street_edges",), data.get("pedestrian_street_edges", []),
                          allow_empty=True)

    # variations
    raw_vars = _table_list(loc, ("variations",), data.get("variations", [{"name": "base"}]))
    if not raw_vars:
        raw_vars = [{"name": "base"}]
    variations = []
    for i, rv in enumerate(raw_vars):
        variations.append(_parse_variation(loc, i, rv, base_dir, ped_edges))
    names = [v.name for v in variations]
    for i, n in enumerate(names):
        if names.index(n) != i:
            raise loc.error(("variations", i, "name"), f"variation name {n!r} is used twice; "
                                                        "give each variation its own name")

    spec = ExperimentSpec(
        name=name, description=desc, scenarios=scenarios, controllers=controllers, seeds=seeds,
        baseline=baseline, variations=tuple(variations),
        controller_params={k: dict(v) for k, v in params_raw.items()}, test=test,
        pedestrian_street_edges=ped_edges, source=source.resolve() if source else None, text=text,
    )
    _check_controller_params(loc, spec)
    if check_network:
        for sc in loaded.values():
            _check_against_scenario(loc, spec, sc)
    return spec


def _parse_variation(loc: _Locator, i: int, rv: dict[str, Any], base_dir: Path,
                     ped_edges: tuple[str, ...]) -> Variation:
    p: tuple[str | int, ...] = ("variations", i)
    _unknown(loc, p, rv, _VAR_KEYS)
    name = rv.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise loc.error((*p, "name"), f"each variation needs a name (lower case, digits, - or _), "
                                      f"got {name!r}; add name = \"plus20\"")
    desc = rv.get("description", "")
    if not isinstance(desc, str):
        raise loc.error((*p, "description"), "expected a string")
    scale = rv.get("scale")
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, int | float)
                              or not 0 < scale <= 10):
        raise loc.error((*p, "scale"), f"expected a demand factor in (0, 10] such as 1.2, got {scale!r}")
    window = None
    if "window" in rv:
        w = rv["window"]
        if not isinstance(w, list) or len(w) != 2:
            raise loc.error((*p, "window"), f"expected [begin, end] such as [\"07:00\", \"07:30\"], got {w!r}")
        a, b = _clock(loc, (*p, "window"), w[0]), _clock(loc, (*p, "window"), w[1])
        if b <= a:
            raise loc.error((*p, "window"), f"end ({w[1]}) must be after begin ({w[0]})")
        window = (a, b)
    warmup = None
    if "warmup" in rv:
        warmup = _seconds(loc, (*p, "warmup"), rv["warmup"], positive=False)
        if window is not None and warmup >= window[1] - window[0]:
            raise loc.error((*p, "warmup"), f"warm-up {warmup:g} s must be shorter than the window")

    closures = []
    for j, c in enumerate(_table_list(loc, (*p, "closures"), rv.get("closures", []))):
        cp = (*p, "closures", j)
        _unknown(loc, cp, c, _CLOSURE_KEYS)
        lanes = _str_list(loc, (*cp, "lanes"), c.get("lanes", []), allow_empty=True)
        edges = _str_list(loc, (*cp, "edges"), c.get("edges", []), allow_empty=True)
        if not lanes and not edges:
            raise loc.error(cp, "a closure needs lanes = [\"edge_0\"] or edges = [\"edge\"]")
        at = _clock(loc, (*cp, "at"), c["at"]) if "at" in c else None
        dur = _seconds(loc, (*cp, "duration"), c["duration"]) if "duration" in c else None
        closures.append(Closure(lanes=lanes, edges=edges, at=at, duration=dur))

    incidents = []
    for j, c in enumerate(_table_list(loc, (*p, "incidents"), rv.get("incidents", []))):
        cp = (*p, "incidents", j)
        _unknown(loc, cp, c, _INCIDENT_KEYS)
        for req in ("lane", "at", "duration"):
            if req not in c:
                raise loc.error((*cp, req), f"missing; an incident needs lane, at and duration "
                                            f"(add {req} = ...)")
        if not isinstance(c["lane"], str) or not c["lane"]:
            raise loc.error((*cp, "lane"), f"expected a lane id such as \"A0B0_0\", got {c['lane']!r}")
        pos = None
        if "position" in c:
            pos = _seconds(loc, (*cp, "position"), c["position"], positive=False)
        incidents.append(Incident(lane=c["lane"], at=_clock(loc, (*cp, "at"), c["at"]),
                                  duration=_seconds(loc, (*cp, "duration"), c["duration"]),
                                  position=pos))

    failures = []
    for j, c in enumerate(_table_list(loc, (*p, "signal_failures"), rv.get("signal_failures", []))):
        cp = (*p, "signal_failures", j)
        _unknown(loc, cp, c, _FAILURE_KEYS)
        for req in ("signal", "at"):
            if req not in c:
                raise loc.error((*cp, req), f"missing; a signal failure needs signal and at "
                                            f"(add {req} = ...)")
        if not isinstance(c["signal"], str) or not c["signal"]:
            raise loc.error((*cp, "signal"), f"expected a traffic light id, got {c['signal']!r}")
        dur = _seconds(loc, (*cp, "duration"), c["duration"]) if "duration" in c else None
        failures.append(SignalFailure(signal=c["signal"], at=_clock(loc, (*cp, "at"), c["at"]),
                                      duration=dur))

    plan = None
    if "plan" in rv:
        if not isinstance(rv["plan"], str) or not rv["plan"]:
            raise loc.error((*p, "plan"), f"expected a file name, got {rv['plan']!r}")
        plan = (base_dir / rv["plan"]).resolve()
        if not plan.is_file():
            raise loc.error((*p, "plan"), f"file {rv['plan']!r} not found (looked for {plan}); "
                                          "fix the path (relative to the experiment file)")
        if plan.suffix not in (".json", ".xml"):
            raise loc.error((*p, "plan"), "expected a .json timing-plan file (controllers.plan) or "
                                          "a SUMO .xml tlLogic additional file")
        if plan.suffix == ".json":
            from controllers.plan import load_plans

            try:
                load_plans(plan)
            except WulinError as exc:
                raise loc.error((*p, "plan"), str(exc)) from None
    ped = rv.get("pedestrian_street", False)
    if not isinstance(ped, bool):
        raise loc.error((*p, "pedestrian_street"), f"expected true or false, got {ped!r}")
    if ped and not ped_edges:
        raise loc.error((*p, "pedestrian_street"),
                        "no pedestrian street declared; add pedestrian_street_edges = [\"edge\", ...] "
                        "at the top of the file")
    return Variation(
        name=name, description=desc, scale=float(scale) if scale is not None else None,
        window=window, warmup=warmup, closures=tuple(closures), incidents=tuple(incidents),
        signal_failures=tuple(failures), plan=plan, pedestrian_street=ped,
    )


def _check_controller_params(loc: _Locator, spec: ExperimentSpec) -> None:
    from controllers.base import make_controller

    for cname, params in spec.controller_params.items():
        try:
            make_controller(cname, **params)
        except WulinError as exc:
            raise loc.error(("controller_params", cname), f"{exc}; fix the parameter names") from None


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


def _check_against_scenario(loc: _Locator, spec: ExperimentSpec, scenario: Any) -> None:
    """Element ids exist in the scenario's network; windows and events fit the scenario."""
    from sim.scenario import format_clock
    from sim.variations import network_index

    net = network_index(scenario.net_file)
    span = f"{format_clock(scenario.begin)}-{format_clock(scenario.end)}"
    for e in spec.pedestrian_street_edges:
        if e not in net.edges:
            raise loc.error(("pedestrian_street_edges",), f"edge {e!r} is not in {scenario.id}'s "
                                                          f"network ({scenario.net_file.name}); fix the id")
    for i, v in enumerate(spec.variations):
        p: tuple[str | int, ...] = ("variations", i)
        if v.window is not None and not (scenario.begin <= v.window[0] and v.window[1] <= scenario.end):
            raise loc.error((*p, "window"), f"window {format_clock(v.window[0])}-"
                                            f"{format_clock(v.window[1])} is outside scenario "
                                            f"{scenario.id} ({span}); choose times inside it")
        sc = effective_scenario(scenario, v)
        if v.warmup is not None and v.warmup >= sc.duration:
            raise loc.error((*p, "warmup"), f"warm-up {v.warmup:g} s is not shorter than "
                                            f"{scenario.id}'s {sc.duration:g} s")
        inside = f"inside {format_clock(sc.begin)}-{format_clock(sc.end)} ({scenario.id})"

        def check_at(path: tuple[str | int, ...], at: float | None, sc: Any = sc,
                     inside: str = inside) -> None:
            if at is not None and not sc.begin <= at < sc.end:
                raise loc.error(path, f"time {format_clock(at)} is not {inside}; choose a time {inside}")

        for j, c in enumerate(v.closures):
            for lane in c.lanes:
                if lane not in net.lanes:
                    raise loc.error((*p, "closures", j, "lanes"),
                                    f"lane {lane!r} is not in {scenario.id}'s network; fix the id "
                                    "(lane ids are <edge>_<index>)")
            for e in c.edges:
                if e not in net.edges:
                    raise loc.error((*p, "closures", j, "edges"),
                                    f"edge {e!r} is not in {scenario.id}'s network; fix the id")
            check_at((*p, "closures", j, "at"), c.at)
        for j, inc in enumerate(v.incidents):
            if inc.lane not in net.lanes:
                raise loc.error((*p, "incidents", j, "lane"),
                                f"lane {inc.lane!r} is not in {scenario.id}'s network; fix the id")
            check_at((*p, "incidents", j, "at"), inc.at)
        for j, f in enumerate(v.signal_failures):
            if f.signal not in net.signals:
                known = ", ".join(sorted(net.signals)[:12])
                raise loc.error((*p, "signal_failures", j, "signal"),
                                f"signal {f.signal!r} is not in {scenario.id}'s network; known: {known}")
            check_at((*p, "signal_failures", j, "at"), f.at)
