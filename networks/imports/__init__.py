"""``wulin network import``: a self-contained network folder from what a user brings.

One module per source, each filling a :class:`~networks.imports.draft.Draft`:

* :mod:`.sumocfg`  a SUMO configuration (net, routes, window, step, options);
* :mod:`.netxml`   a ``.net.xml`` plus route/trip/flow files or an OD matrix (:mod:`.od`);
* :mod:`.osm`      an OpenStreetMap extract (netconvert, then random trips or an OD matrix);
* :mod:`.cityflow` a CityFlow roadnet and flow JSON (converted to SUMO plain XML).

:func:`import_network` picks the source by the file, and :mod:`.draft` checks the result and
moves it into place only when everything loads.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from networks.imports import cityflow, netxml, osm, sumocfg
from networks.imports.draft import Imported, drafting, finish
from sim.clock import parse_clock
from sim.errors import WulinError

_NAME = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
KINDS = ("sumocfg", "net", "osm", "cityflow")


def _clock(text: str | None, where: str) -> float | None:
    """A time from the command line: seconds (``600``) or a clock time (``07:00``)."""
    if text is None:
        return None
    try:
        return parse_clock(float(text), where)
    except ValueError:
        return parse_clock(text, where)


def source_kind(source: Path) -> str:
    """Which importer reads ``source``, from its name."""
    name = source.name.lower()
    if name.endswith(".sumocfg"):
        return "sumocfg"
    if name.endswith(".net.xml"):
        return "net"
    if name.endswith((".osm", ".osm.xml")):
        return "osm"
    if name.endswith(".json"):
        return "cityflow"
    raise WulinError(f"{source}: cannot tell what it is from its name; import a .sumocfg, a .net.xml, "
                     "an OSM extract (.osm, .osm.xml) or a CityFlow roadnet (.json)")


def import_network(source: Path, out: Path, name: str, *, demand: Sequence[Path] = (),
                   od: Path | None = None, begin: str | None = None, end: str | None = None,
                   warmup: float = 0.0, period: float = 2.0, seed: int = 1) -> Imported:
    """Import ``source`` into ``out/name`` (see the module docstring).

    Args:
        source: The file to import.
        out: The folder of networks to write into (put it on the search path).
        name: The network's name; its scenario is ``<name>-v1``.
        demand: Route/trip/flow files (with a .net.xml) or the flow JSON (with CityFlow).
        od: An OD matrix CSV (with a .net.xml or OSM).
        begin, end: The scenario's window (a .sumocfg's own by default).
        warmup: Seconds excluded from KPIs.
        period: Seconds between random trips (OSM without an OD matrix).
        seed: randomTrips' seed.

    Raises:
        WulinError: one line naming the file and the field; nothing is left in ``out``.
    """
    if not _NAME.match(name) or len(name) > 90:
        raise WulinError(f"--name {name!r}: lower case letters, digits and dashes (like 'my-town')")
    if not source.is_file():
        raise WulinError(f"{source}: no such file")
    kind = source_kind(source)
    if kind not in ("net", "cityflow") and demand:
        raise WulinError(f"--demand: a {kind} source brings its own demand ({source})")
    if kind in ("sumocfg", "cityflow") and od is not None:
        raise WulinError(f"--od: a {kind} source brings its own demand ({source})")
    out = out.resolve()
    with drafting(name, out) as draft:
        draft.begin = _clock(begin, "--begin") or 0.0
        draft.end = _clock(end, "--end")
        draft.warmup = warmup
        if kind == "sumocfg":
            given = (draft.begin, draft.end)
            sumocfg.build(source, draft)
            draft.begin = given[0] if begin is not None else draft.begin
            draft.end = given[1] if end is not None else draft.end
        elif kind == "net":
            netxml.build(source, draft, demand, od)
        elif kind == "osm":
            if draft.end is None:
                raise WulinError(f"{source}: give --end: an OSM extract has no time window")
            osm.build(source, draft, od=od, period=period, seed=seed)
        else:
            cityflow.build(source, draft, demand[0] if demand else None)
        return finish(draft, out, source)
