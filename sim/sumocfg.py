"""A SUMO configuration file (``.sumocfg``) read as a scenario.

``wulin simulate FILE.sumocfg`` and ``wulin network import FILE.sumocfg`` both start here.
The file's net, route and additional files (relative to the file, as SUMO reads them), its
``begin``, ``end`` and ``step-length`` become the scenario's fields; every other option SUMO
knows becomes a ``sumo_options`` entry, except what the engine owns (see
:mod:`sim.sumo_options`), SUMO's output, report and GUI options and its seed, which are
dropped and listed (:attr:`SumoConfig.dropped`) so the caller can say so.  The result goes
through the same model as a scenario TOML (``sim.scenario.scenario_from_sumocfg``), so
errors name the ``.sumocfg`` and the field.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.errors import WulinError
from sim.files import read_text
from sim.sumo_options import OWNED, SumoOption, known_options

_FIELDS = {"net-file": "net", "route-files": "routes", "additional-files": "additional",
           "begin": "begin", "end": "end", "step-length": "step_length"}
_DROPPED_SECTIONS = ("output", "report", "gui_only", "random_number")


@dataclass(frozen=True)
class SumoConfig:
    """A ``.sumocfg`` as a scenario document (paths relative to the file) and what was left out."""

    source: Path
    data: dict[str, Any]
    dropped: tuple[str, ...]

    @property
    def scenario_id(self) -> str:
        """A versioned id from the file name (``Cologne 8.sumocfg`` -> ``cologne-8-v1``)."""
        return slug_id(self.source.name.removesuffix(".sumocfg"))


def slug_id(name: str) -> str:
    """``name`` as a versioned id: lower case, dashes, ``-v1`` unless it ends in ``-v<N>``."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:90] or "network"
    return slug if re.search(r"-v\d+$", slug) else f"{slug}-v1"


def _typed(option: SumoOption, text: str) -> Any:
    """A value as SUMO writes it in a configuration, in the type the option has."""
    try:
        if option.type == "BOOL":
            return text.strip().lower() in ("true", "1", "yes", "on", "x")
        if option.type == "INT":
            return int(text)
        if option.type in ("FLOAT", "TIME"):
            return float(text)
    except ValueError:
        pass  # left as text: the scenario model then names the option and the type wanted
    return text


def _split(text: str) -> list[str]:
    return [p for p in re.split(r"[,\s]+", text.strip()) if p]


def read_sumocfg(path: Path, *, need_end: bool = True) -> SumoConfig:
    """Read ``path`` into a scenario document (``need_end``: refuse a file without ``<end>``).

    Raises:
        WulinError: unreadable XML, an option SUMO does not know, no net or route files.
    """
    path = Path(path).resolve()
    try:
        root = ET.fromstring(read_text(path, "SUMO configuration"))
    except ET.ParseError as exc:
        raise WulinError(f"{path}: not a readable SUMO configuration ({exc})") from None
    known = known_options()
    data: dict[str, Any] = {"description": f"from {path.name}", "sumo_options": {}}
    dropped: list[str] = []
    for elem in root.iter():
        if elem.get("value") is None:
            continue
        option = known.get(elem.tag)
        if option is None:
            raise WulinError(f"{path}: <{elem.tag}> is not an option of this SUMO; remove it")
        value = elem.get("value", "")
        if option.name in _FIELDS:
            key = _FIELDS[option.name]
            data[key] = _split(value) if key in ("routes", "additional") else _typed(option, value)
        elif option.name in OWNED or option.section in _DROPPED_SECTIONS:
            dropped.append(option.name)
        else:
            data["sumo_options"][option.name] = _typed(option, value)
    for key, tag in (("net", "net-file"), ("routes", "route-files"), ("end", "end")):
        if not data.get(key) and (key != "end" or need_end):
            raise WulinError(f"{path}: no <{tag} value=...>; the engine needs it"
                             + (" (a scenario runs a fixed window; on import, --end)" if key == "end" else ""))
    if isinstance(data["net"], str) and "," in data["net"]:
        raise WulinError(f"{path}: <net-file> names several files; the engine needs one network")
    data.setdefault("begin", 0.0)
    return SumoConfig(path, data, tuple(dropped))
