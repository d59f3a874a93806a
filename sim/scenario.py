"""Scenarios: a SUMO network, its demand and a time window, declared in TOML.

A scenario is a TOML file anywhere on disk, usually ``<network>/scenarios/<id>.toml``; its
id is the file's stem and is versioned (``grid-am-v1``, ``wulin-am-peak-v1``): a changed
behaviour gets a new id, so results that name a scenario id stay reproducible.  Paths inside
the TOML are relative to the TOML file itself, so a network folder works wherever it is
copied.  (A TOML inside a ``scenarios/`` folder may still name files relative to the folder
above it, as scenario files did before; the TOML's own folder is tried first.)  Example::

    description = "Rush-hour demand on a 3x3 signalised grid"
    net = "../grid.net.xml"
    routes = ["../demand/am.rou.xml"]
    additional = []          # optional
    begin = "07:00"          # "HH:MM", "HH:MM:SS" or seconds since midnight (up to 48:00)
    end = "08:00"
    warmup = 300             # seconds excluded from KPIs
    step_length = 1.0        # optional, seconds
    scale = 1.0              # optional demand factor (SUMO --scale): 1.2 is +20 %

    [sumo_options]           # optional: SUMO options passed through (sim.sumo_options)
    time-to-teleport = -1

The file is validated by the pydantic model :class:`ScenarioFile` (``sim.config``); the
result is the frozen :class:`Scenario` value that travels through the engine.  Everything a
user can get wrong is reported as one :class:`~sim.errors.WulinError` naming the file, the
line, the field and the fix.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationInfo, field_validator, model_validator

from sim import network_path
from sim.clock import format_clock as format_clock  # re-exported: callers import it from here
from sim.clock import parse_clock as parse_clock
from sim.config import (
    Clock,
    ConfigIssue,
    ConfigModel,
    Names,
    Number,
    Text,
    load_toml_model,
    validate,
)
from sim.errors import WulinError
from sim.sumo_options import check_sumo_options
from sim.sumocfg import read_sumocfg

NETWORKS_DIR = network_path.PACKAGE_NETWORKS  # the package's own networks (the search path has more)
_ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*-v\d+$")
# the root element each kind of SUMO file starts with (a routes file given as net, say)
_XML_ROOTS = {"net": ("net",), "routes": ("routes",), "additional": ("additional", "routes")}


@dataclass(frozen=True)
class Scenario:
    """One runnable SUMO scenario.

    Attributes:
        id: Versioned id, equal to the TOML file's stem (``grid-am-v1``).
        network: Name of the network folder under ``networks/``.
        net_file: The ``.net.xml``.
        route_files: Demand files (routes, flows, trips), in load order.
        additional_files: Other SUMO additional files (detectors, bus stops, programs).
        begin: Simulation start, seconds since midnight.
        end: Simulation end, seconds since midnight.
        warmup: Seconds after ``begin`` excluded from KPIs.
        step_length: SUMO step length in seconds.
        description: One line for ``wulin scenarios``.
        source: The TOML file it was loaded from.
        tags: Free-form labels (``peak``, ``incident``...).
        scale: Demand factor applied by SUMO (``--scale``); 1.0 is the demand as written.
        sumo_options: SUMO options passed through, ``(long name, value)`` pairs.
    """

    id: str
    network: str
    net_file: Path
    route_files: tuple[Path, ...]
    additional_files: tuple[Path, ...]
    begin: Clock
    end: Clock
    warmup: float
    step_length: float
    description: str
    source: Path
    tags: tuple[str, ...] = field(default=())
    scale: float = 1.0
    sumo_options: tuple[tuple[str, str], ...] = ()

    @property
    def network_dir(self) -> Path:
        return self.net_file.parent

    @property
    def duration(self) -> float:
        return self.end - self.begin

    @property
    def measure_begin(self) -> float:
        """First simulated second counted in KPIs (after the warm-up)."""
        return self.begin + self.warmup


def _xml_root(path: Path) -> str | None:
    """Tag of the file's root element (None when it is not readable XML)."""
    try:
        for _, elem in ET.iterparse(path, events=("start",)):
            return elem.tag
    except (ET.ParseError, OSError, UnicodeDecodeError):
        return None
    return None


def _resolve(name: str, bases: tuple[Path, ...]) -> Path:
    """``name`` under the first of ``bases`` where it exists (else under the first)."""
    try:
        for base in bases:
            if (base / name).is_file():
                return (base / name).resolve()
        return (bases[0] / name).resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python 3.11)
        raise ConfigIssue(f"{name!r}: cannot resolve the path ({exc}); name the right file") from None


def _sumo_file(name: str, key: str, bases: tuple[Path, ...]) -> Path:
    """``name`` resolved, checked to exist and to be the right kind of SUMO file."""
    p = _resolve(name, bases)
    hint = "fix the name (relative to the scenario file) or build it (`wulin network build`)"
    if not p.is_file():
        what = f"{name!r}" if key == "net" else f"file {name!r}"
        raise ConfigIssue(f"{what} not found (looked for {p}); {hint}")
    if p.suffix == ".xml":
        root = _xml_root(p)
        if root not in _XML_ROOTS[key]:
            raise ConfigIssue(f"{name!r} is not a SUMO {key} file (its root element is <{root}>, "
                              f"expected <{_XML_ROOTS[key][0]}>); name the right file")
    return p


class ScenarioFile(ConfigModel):
    """The scenario TOML as written (see the module docstring); paths relative to the file."""

    description: Text = ""
    net: Annotated[str, Field(strict=True, min_length=1)]
    routes: Names
    additional: Names = ()
    begin: Clock
    end: Clock
    warmup: Annotated[Number, Field(ge=0)] = 0.0
    step_length: Annotated[Number, Field(gt=0, le=10)] = 1.0
    tags: Names = ()
    scale: Annotated[Number, Field(gt=0, le=10)] = 1.0
    sumo_options: dict[str, object] = Field(default_factory=dict)

    @field_validator("net")
    @classmethod
    def _net_exists(cls, v: str, info: ValidationInfo) -> str:
        _sumo_file(v, "net", (info.context or {})["bases"])
        return v

    @field_validator("routes", "additional")
    @classmethod
    def _files_exist(cls, v: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if info.field_name == "routes" and not v:
            raise ConfigIssue("is empty; name at least one file")
        for name in v:
            _sumo_file(name, str(info.field_name), (info.context or {})["bases"])
        return v

    @field_validator("sumo_options")
    @classmethod
    def _known_options(cls, v: dict[str, object]) -> dict[str, object]:
        check_sumo_options(v)
        return v

    @field_validator("step_length")
    @classmethod
    def _whole_ms(cls, v: float) -> float:
        if abs(v * 1000 - round(v * 1000)) > 1e-6:  # SUMO's clock counts milliseconds
            raise ConfigIssue(f"must be whole milliseconds, got {v!r}")
        return v

    @model_validator(mode="after")
    def _window(self) -> ScenarioFile:
        if self.end <= self.begin:
            raise ConfigIssue(f"must be after 'begin' ({format_clock(self.begin)}), "
                              f"got {format_clock(self.end)}", "end")
        if self.warmup >= self.end - self.begin:
            raise ConfigIssue(f"must be shorter than end - begin ({self.end - self.begin:g} s), "
                              f"got {self.warmup:g} s", "warmup")
        return self


def scenario_from_toml(path: Path, network: str | None = None) -> Scenario:
    """Load and check one scenario TOML.

    Args:
        path: The TOML file; its stem is the scenario id.
        network: Network name; defaults to the name of the network file's folder.

    Raises:
        WulinError: naming the file, the line, the field and the fix.
    """
    try:
        path = Path(path).resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python 3.11)
        raise WulinError(f"{path}: cannot read the scenario file ({exc}); check the path") from None
    sid = path.stem
    if not _ID_RE.match(sid) or len(sid) > 100:
        raise WulinError(
            f"{path}: scenario id {sid!r} is not a versioned id; name the file like "
            "'grid-am-v1.toml' (lower case, dashes, ending in -v<N>, at most 100 characters)"
        )
    bases = (path.parent, path.parent.parent) if path.parent.name == "scenarios" else (path.parent,)
    doc = load_toml_model(ScenarioFile, path, "scenario file", context={"bases": bases})
    return scenario_from_doc(doc, sid, path, bases, network)


def scenario_from_doc(doc: ScenarioFile, sid: str, source: Path, bases: tuple[Path, ...],
                      network: str | None = None) -> Scenario:
    """The :class:`Scenario` of a validated document whose paths are relative to ``bases``."""
    net_file = _resolve(doc.net, bases)
    return Scenario(
        id=sid,
        network=network or net_file.parent.name,
        net_file=net_file,
        route_files=tuple(_resolve(r, bases) for r in doc.routes),
        additional_files=tuple(_resolve(a, bases) for a in doc.additional),
        begin=doc.begin,
        end=doc.end,
        warmup=float(doc.warmup),
        step_length=float(doc.step_length),
        description=doc.description,
        source=source,
        tags=doc.tags,
        scale=float(doc.scale),
        sumo_options=check_sumo_options(doc.sumo_options),
    )


def scenario_from_sumocfg(path: Path) -> Scenario:
    """The scenario a SUMO configuration describes (:mod:`sim.sumocfg`; id from its name).

    Raises:
        WulinError: naming the file and the field.
    """
    cfg = read_sumocfg(path)
    doc = validate(ScenarioFile, cfg.data, cfg.source, context={"bases": (cfg.source.parent,)})
    return scenario_from_doc(doc, cfg.scenario_id, cfg.source, (cfg.source.parent,))


def scenario_files() -> dict[str, Path]:
    """Map every scenario id on the network search path (:mod:`sim.network_path`) to its TOML."""
    return network_path.scenario_files()


def load_scenario(scenario_id: str | Path) -> Scenario:
    """Load a scenario by its versioned id (on the search path), from a TOML file or a .sumocfg.

    Raises:
        WulinError: unknown id (listing the known ones) or a bad file.
    """
    scenario_id = str(scenario_id)
    if scenario_id.endswith(".sumocfg"):
        return scenario_from_sumocfg(Path(scenario_id))
    if scenario_id.endswith(".toml") or Path(scenario_id).is_file():
        return scenario_from_toml(Path(scenario_id))
    files = scenario_files()
    if scenario_id not in files:
        known = ", ".join(sorted(files)) or "none"
        hint = ""
        close = [k for k in files if k.rsplit("-v", 1)[0] == scenario_id.rsplit("-v", 1)[0]]
        if close:
            hint = f" (did you mean {close[0]}?)"
        raise WulinError(
            f"unknown scenario {scenario_id!r}{hint}; known scenarios: {known}. "
            "Run `wulin scenarios` to list them; add network folders with --networks DIR "
            f"or {network_path.ENV_VAR}, or give the .toml path."
        )
    return scenario_from_toml(files[scenario_id])


def list_scenarios() -> list[Scenario]:
    """All scenarios on the network search path, sorted by id."""
    return [scenario_from_toml(p) for _, p in sorted(scenario_files().items())]


def check_scenario(scenario: Scenario) -> list[str]:
    """Problems that would stop SUMO from running the scenario (empty list if none)."""
    problems = []
    for p in (scenario.net_file, *scenario.route_files, *scenario.additional_files):
        if not p.is_file():
            problems.append(f"{scenario.source}: {p} is missing")
    return problems
