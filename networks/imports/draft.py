"""A network folder being imported: built in a temporary folder, moved into place at the end.

Every import source (:mod:`.sumocfg`, :mod:`.netxml`, :mod:`.osm`, :mod:`.cityflow`) fills a
:class:`Draft`: the network, demand and additional files, the window and SUMO options.
:func:`finish` then checks it as a whole (every edge the demand names is in the network,
SUMO loads the network and the demand, the scenario TOML loads) and only then renames the
temporary folder to ``OUT/NAME``, so a failed import leaves nothing half-written.  The folder
names its files relative to the scenario TOML, so it works wherever it is copied::

    NAME/NAME.net.xml  NAME/demand/...  NAME/additional/...  NAME/scenarios/NAME-v1.toml
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.errors import WulinError
from sim.tools import run_tool, sumo_binary

_EDGE_ATTRS = ("from", "to", "via", "edges")
_DEMAND_TAGS = ("vehicle", "trip", "flow", "route", "person", "personTrip")


@dataclass
class Draft:
    """What an import has gathered so far, inside the temporary folder ``root``."""

    name: str
    root: Path
    net: Path | None = None
    routes: list[Path] = field(default_factory=list)
    additional: list[Path] = field(default_factory=list)
    begin: float = 0.0
    end: float | None = None
    warmup: float = 0.0
    step_length: float = 1.0
    sumo_options: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    notes: list[str] = field(default_factory=list)
    origins: dict[Path, Path] = field(default_factory=dict)  # copy -> the user's file

    @property
    def net_path(self) -> Path:
        """Where the network goes: ``NAME.net.xml`` in the folder."""
        return self.root / f"{self.name}.net.xml"

    def take_net(self, src: Path) -> None:
        """Copy the user's ``.net.xml`` in as ``NAME.net.xml``."""
        if not src.is_file():
            raise WulinError(f"{src}: no such file")
        shutil.copyfile(src, self.net_path)
        self.net, self.origins[self.net_path] = self.net_path, src
        run_tool([sumo_binary("sumo"), "--net-file", str(self.net_path), "--end", "1", "--no-step-log", "true"],
                 src, "SUMO")  # the network alone first: its own error, not the demand's

    def copy_in(self, src: Path, sub: str) -> Path:
        """Copy a user's file into ``sub/`` (a clashing name gets a number)."""
        if not src.is_file():
            raise WulinError(f"{src}: no such file")
        folder = self.root / sub
        folder.mkdir(exist_ok=True)
        dest, n = folder / src.name, 1
        while dest.exists():
            dest, n = folder / f"{n}-{src.name}", n + 1
        shutil.copyfile(src, dest)
        self.origins[dest] = src
        return dest


@dataclass(frozen=True)
class Imported:
    """A finished import: the network folder, its scenario id and what the user should know."""

    folder: Path
    scenario_id: str
    notes: tuple[str, ...]


@contextmanager
def drafting(name: str, out: Path) -> Iterator[Draft]:
    """A :class:`Draft` in a temporary folder beside ``out/name``; removed unless finished."""
    dest = out / name
    if dest.exists():
        raise WulinError(f"{dest} already exists; choose another --name or remove it")
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-import-", dir=out))
    try:
        yield Draft(name=name, root=tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone after a failure; moved away after finish


def net_edges(net: Path) -> set[str]:
    """The ids of the network's normal (not internal) edges."""
    edges = set()
    for _, elem in ET.iterparse(net, events=("start",)):
        if elem.tag == "edge" and elem.get("function") != "internal":
            edges.add(elem.get("id", ""))
    return edges


def check_demand_edges(net: Path, demand: Path, shown_as: Path | None = None, net_name: str = "") -> None:
    """Every edge ``demand`` names is in ``net``, else one line naming file, element and field
    (``shown_as`` and ``net_name``: the user's names for the copies checked)."""
    edges = net_edges(net)
    try:
        for _, elem in ET.iterparse(demand, events=("start",)):
            if elem.tag not in _DEMAND_TAGS:
                continue
            for attr in _EDGE_ATTRS:
                for edge in (elem.get(attr) or "").split():
                    if edge not in edges:
                        raise WulinError(
                            f"{shown_as or demand}: <{elem.tag} id='{elem.get('id', '?')}'> field '{attr}' "
                            f"names edge '{edge}', which is not in the network {net_name or net.name}")
    except ET.ParseError as exc:
        raise WulinError(f"{shown_as or demand}: not readable XML ({exc})") from None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a TOML basic string is a JSON string


def scenario_toml(draft: Draft) -> str:
    """The scenario file's text: paths relative to ``scenarios/``."""
    assert draft.net is not None and draft.end is not None
    rel = [f"../{p.relative_to(draft.root).as_posix()}" for p in draft.routes]
    lines = ["# written by `wulin network import`; paths are relative to this file",
             f"description = {_toml_value(draft.description)}",
             f"net = {_toml_value('../' + draft.net.relative_to(draft.root).as_posix())}",
             f"routes = {_toml_value(rel)}"]
    if draft.additional:
        lines.append(f"additional = {_toml_value(['../' + p.relative_to(draft.root).as_posix() for p in draft.additional])}")
    lines += [f"begin = {_toml_value(float(draft.begin))}", f"end = {_toml_value(float(draft.end))}",
              f"warmup = {_toml_value(float(draft.warmup))}", f"step_length = {_toml_value(float(draft.step_length))}",
              'tags = ["imported"]']
    if draft.sumo_options:
        lines.append("\n[sumo_options]")
        lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in draft.sumo_options.items()]
    return "\n".join(lines) + "\n"


def _sumo_loads(draft: Draft, source: Path) -> None:
    """SUMO loads the network, demand and additional files (one simulated step)."""
    assert draft.net is not None
    cmd = [sumo_binary("sumo"), "--net-file", str(draft.net), "--route-files",
           ",".join(map(str, draft.routes)), "--begin", f"{draft.begin:g}",
           "--end", f"{draft.begin + draft.step_length:g}", "--no-step-log", "true",
           "--step-length", f"{draft.step_length:g}"]
    if draft.additional:
        cmd += ["--additional-files", ",".join(map(str, draft.additional))]
    run_tool(cmd, source, "SUMO")


def finish(draft: Draft, out: Path, source: Path) -> Imported:
    """Check the draft as a whole, write its scenario and move it to ``out/NAME``."""
    from sim.scenario import scenario_from_toml

    if draft.net is None or not draft.routes:
        raise WulinError(f"{source}: no network or no demand to import")
    if draft.end is None:
        raise WulinError(f"{source}: no end time for the scenario; give --end")
    for routes in draft.routes:
        check_demand_edges(draft.net, routes, draft.origins.get(routes), draft.origins.get(draft.net, draft.net).name)
    _sumo_loads(draft, source)
    sid = f"{draft.name}-v1"
    toml = draft.root / "scenarios" / f"{sid}.toml"
    toml.parent.mkdir(exist_ok=True)
    toml.write_text(scenario_toml(draft), encoding="utf-8")
    scenario_from_toml(toml)  # the file loads as every scenario does
    dest = out / draft.name
    umask = os.umask(0)
    os.umask(umask)
    draft.root.chmod(0o777 & ~umask)  # mkdtemp made it private; the folder is the user's
    os.rename(draft.root, dest)  # same folder: atomic, and nothing half-written is ever at dest
    return Imported(dest, sid, tuple(draft.notes))
