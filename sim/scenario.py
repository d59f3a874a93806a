"""Scenarios: a SUMO network, its demand and a time window, declared in TOML.

A scenario lives at ``networks/<network>/scenarios/<id>.toml`` and its id is versioned
(``grid-am-v1``, ``wulin-am-peak-v1``): a changed behaviour gets a new id, so results that
name a scenario id stay reproducible.  Paths inside the TOML are relative to the network
folder.  Example::

    description = "Rush-hour demand on a 3x3 signalised grid"
    net = "grid.net.xml"
    routes = ["demand/am.rou.xml"]
    additional = []          # optional
    begin = "07:00"          # "HH:MM", "HH:MM:SS" or seconds since midnight
    end = "08:00"
    warmup = 300             # seconds excluded from KPIs
    step_length = 1.0        # optional, seconds
    scale = 1.0              # optional demand factor (SUMO --scale): 1.2 is +20 %

Everything a user can get wrong is checked when loading, and reported as a
:class:`~sim.errors.WulinError` naming the file, the field and the fix.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.errors import WulinError

NETWORKS_DIR = Path(__file__).resolve().parent.parent / "networks"
_ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*-v\d+$")
_KNOWN_FIELDS = {
    "description",
    "net",
    "routes",
    "additional",
    "begin",
    "end",
    "warmup",
    "step_length",
    "tags",
    "scale",
}


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
    """

    id: str
    network: str
    net_file: Path
    route_files: tuple[Path, ...]
    additional_files: tuple[Path, ...]
    begin: float
    end: float
    warmup: float
    step_length: float
    description: str
    source: Path
    tags: tuple[str, ...] = field(default=())
    scale: float = 1.0

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


def parse_clock(value: Any, where: str) -> float:
    """Seconds since midnight from ``"07:30"``, ``"07:30:15"`` or a number of seconds."""
    if isinstance(value, bool):
        raise WulinError(f'{where}: expected a time such as "07:00" or seconds, got {value!r}')
    if isinstance(value, int | float):
        if value < 0:
            raise WulinError(f"{where}: time must not be negative, got {value}")
        return float(value)
    if isinstance(value, str):
        m = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", value.strip())
        if m:
            h, mi, s = int(m[1]), int(m[2]), int(m[3] or 0)
            if h <= 48 and mi < 60 and s < 60:
                return float(h * 3600 + mi * 60 + s)
    raise WulinError(f'{where}: expected a time such as "07:00" or seconds, got {value!r}')


def format_clock(seconds: float) -> str:
    """``25200.0`` -> ``"07:00"`` (seconds shown only when non-zero)."""
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h:02d}:{m:02d}" + (f":{sec:02d}" if sec else "")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise WulinError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise WulinError(f"{path}: invalid TOML ({exc}); fix the syntax at that line") from None


def _file_list(
    data: dict[str, Any], key: str, base: Path, src: Path, required: bool
) -> tuple[Path, ...]:
    raw = data.get(key, [] if not required else None)
    if raw is None:
        raise WulinError(f"{src}: field '{key}' is missing; add {key} = [\"file.xml\"]")
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise WulinError(f"{src}: field '{key}' must be a list of file names, got {raw!r}")
    if required and not raw:
        raise WulinError(f"{src}: field '{key}' is empty; name at least one file")
    paths = []
    for name in raw:
        p = (base / name).resolve()
        if not p.is_file():
            raise WulinError(
                f"{src}: field '{key}': file {name!r} not found (looked for {p}); "
                "fix the name or build it (for example `wulin network build`)"
            )
        paths.append(p)
    return tuple(paths)


def scenario_from_toml(path: Path, network: str | None = None) -> Scenario:
    """Load and check one scenario TOML.

    Args:
        path: The TOML file; its stem is the scenario id.
        network: Network name; defaults to the folder above ``scenarios/``.

    Raises:
        WulinError: naming the file, the field and the fix.
    """
    path = Path(path).resolve()
    sid = path.stem
    if not _ID_RE.match(sid):
        raise WulinError(
            f"{path}: scenario id {sid!r} is not a versioned id; name the file like "
            "'grid-am-v1.toml' (lower case, dashes, ending in -v<N>)"
        )
    data = _read_toml(path)
    unknown = sorted(set(data) - _KNOWN_FIELDS)
    if unknown:
        raise WulinError(
            f"{path}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_KNOWN_FIELDS))}"
        )
    base = path.parent.parent
    net_name = data.get("net")
    if not isinstance(net_name, str):
        raise WulinError(f"{path}: field 'net' is missing; add net = \"<name>.net.xml\"")
    net_file = (base / net_name).resolve()
    if not net_file.is_file():
        raise WulinError(
            f"{path}: field 'net': {net_name!r} not found (looked for {net_file}); "
            "fix the name or build the network with `wulin network build`"
        )
    routes = _file_list(data, "routes", base, path, required=True)
    additional = _file_list(data, "additional", base, path, required=False)
    for key in ("begin", "end"):
        if key not in data:
            raise WulinError(f"{path}: field '{key}' is missing; add {key} = \"07:00\"")
    begin = parse_clock(data["begin"], f"{path}: field 'begin'")
    end = parse_clock(data["end"], f"{path}: field 'end'")
    if end <= begin:
        raise WulinError(
            f"{path}: field 'end' ({data['end']}) must be after 'begin' ({data['begin']})"
        )
    warmup = data.get("warmup", 0)
    if isinstance(warmup, bool) or not isinstance(warmup, int | float) or warmup < 0:
        raise WulinError(f"{path}: field 'warmup' must be a number of seconds >= 0, got {warmup!r}")
    if warmup >= end - begin:
        raise WulinError(f"{path}: field 'warmup' ({warmup} s) must be shorter than end - begin")
    step = data.get("step_length", 1.0)
    if isinstance(step, bool) or not isinstance(step, int | float) or not 0 < step <= 10:
        raise WulinError(f"{path}: field 'step_length' must be in (0, 10] seconds, got {step!r}")
    if abs(step * 1000 - round(step * 1000)) > 1e-6:  # SUMO's clock counts milliseconds
        raise WulinError(f"{path}: field 'step_length' must be whole milliseconds, got {step!r}")
    desc = data.get("description", "")
    if not isinstance(desc, str):
        raise WulinError(f"{path}: field 'description' must be a string")
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise WulinError(f"{path}: field 'tags' must be a list of strings")
    scale = data.get("scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not 0 < scale <= 10:
        raise WulinError(f"{path}: field 'scale' must be a demand factor in (0, 10], got {scale!r}")
    return Scenario(
        id=sid,
        network=network or base.name,
        net_file=net_file,
        route_files=routes,
        additional_files=additional,
        begin=begin,
        end=end,
        warmup=float(warmup),
        step_length=float(step),
        description=desc,
        source=path,
        tags=tuple(tags),
        scale=float(scale),
    )


def scenario_files(networks_dir: Path = NETWORKS_DIR) -> dict[str, Path]:
    """Map every scenario id to its TOML file."""
    found: dict[str, Path] = {}
    for path in sorted(networks_dir.glob("*/scenarios/*.toml")):
        if path.stem in found:
            raise WulinError(
                f"{path}: scenario id {path.stem!r} is also defined in {found[path.stem]}; ids must be unique"
            )
        found[path.stem] = path
    return found


def load_scenario(scenario_id: str, networks_dir: Path = NETWORKS_DIR) -> Scenario:
    """Load a scenario by its versioned id, or from a path to a TOML file.

    Raises:
        WulinError: unknown id (listing the known ones) or a bad file.
    """
    if scenario_id.endswith(".toml"):
        return scenario_from_toml(Path(scenario_id))
    files = scenario_files(networks_dir)
    if scenario_id not in files:
        known = ", ".join(sorted(files)) or "none"
        hint = ""
        close = [k for k in files if k.rsplit("-v", 1)[0] == scenario_id.rsplit("-v", 1)[0]]
        if close:
            hint = f" (did you mean {close[0]}?)"
        raise WulinError(
            f"unknown scenario {scenario_id!r}{hint}; known scenarios: {known}. "
            "Run `wulin scenarios` to list them."
        )
    return scenario_from_toml(files[scenario_id])


def list_scenarios(networks_dir: Path = NETWORKS_DIR) -> list[Scenario]:
    """All scenarios under ``networks/``, sorted by id."""
    return [scenario_from_toml(p) for p in scenario_files(networks_dir).values()]


def check_scenario(scenario: Scenario) -> list[str]:
    """Problems that would stop SUMO from running the scenario (empty list if none)."""
    problems = []
    for p in (scenario.net_file, *scenario.route_files, *scenario.additional_files):
        if not p.is_file():
            problems.append(f"{scenario.source}: {p} is missing")
    return problems
