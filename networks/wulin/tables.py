"""The Wulin model's source tables: structure (nodes, roads) and the one table of estimates.

* ``source/nodes.csv``: junction ids, names and kinds (``signal``, ``priority``, ``fringe``).
* ``source/roads.csv``: each road as a chain of nodes, with one-way and vehicle-class flags.
* ``estimates.csv``: every estimated number (coordinates, lanes, speeds, signal timings,
  zone sizes, time-of-day profiles, calibration assumptions), one row each, with its unit,
  tolerance and source ("estimate" when no public source gives it).  The build reads every
  number from here, so a correction is one edit.

Geometry helpers use a local equirectangular approximation (metres east/north of a
reference point): at 3 km it differs from UTM by well under a metre in distances and angles,
which is all the turn classification needs; the network itself is projected by netconvert.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

from sim.errors import WulinError

HERE = Path(__file__).resolve().parent
ESTIMATES = HERE / "estimates.csv"
NODES = HERE / "source" / "nodes.csv"
ROADS = HERE / "source" / "roads.csv"
HOURS = tuple(range(7, 20))  # demand hours 07:00 .. 19:00 (the last ends at 20:00)
_KINDS = {"signal", "priority", "fringe"}


@dataclass(frozen=True)
class Node:
    """A junction or boundary point."""

    id: str
    name: str
    kind: str
    lat: float
    lon: float
    tolerance_m: float


@dataclass(frozen=True)
class Road:
    """A named road as a chain of nodes."""

    key: str
    name: str
    nodes: tuple[str, ...]
    oneway: bool
    allow: str
    lanes: int
    speed_kmh: float


@dataclass
class Tables:
    """All source tables, checked."""

    nodes: dict[str, Node]
    roads: dict[str, Road]
    values: dict[tuple[str, str, str], str] = field(default_factory=dict)
    sources: dict[tuple[str, str, str], str] = field(default_factory=dict)

    def num(self, category: str, key: str, field_: str) -> float:
        """A numeric estimate; raises a WulinError naming the missing row."""
        raw = self.get(category, key, field_)
        try:
            return float(raw)
        except ValueError:
            raise WulinError(
                f"{ESTIMATES}: row {category},{key},{field_}: value {raw!r} is not a number; fix it"
            ) from None

    def get(self, category: str, key: str, field_: str) -> str:
        """A raw estimate value."""
        try:
            return self.values[(category, key, field_)]
        except KeyError:
            raise WulinError(
                f"{ESTIMATES}: missing row category={category}, key={key}, field={field_}; add it"
            ) from None

    def rows(self, category: str) -> list[tuple[str, str, str]]:
        """(key, field, value) of every row in ``category``, in file order."""
        return [(k, f, v) for (c, k, f), v in self.values.items() if c == category]

    def profile(self, key: str) -> dict[int, float]:
        """Hour -> factor of a time-of-day profile."""
        raw = self.get("profile", key, "h07..h19").split()
        if len(raw) != len(HOURS):
            raise WulinError(
                f"{ESTIMATES}: profile {key}: expected {len(HOURS)} hourly factors (07..19), "
                f"got {len(raw)}; fix the value"
            )
        try:
            return {h: float(x) for h, x in zip(HOURS, raw, strict=True)}
        except ValueError:
            raise WulinError(f"{ESTIMATES}: profile {key}: factors must be numbers") from None


def _read_csv(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in columns if c not in (reader.fieldnames or [])]
            if missing:
                raise WulinError(f"{path}: missing column(s) {', '.join(missing)}; add them")
            return list(reader)
    except FileNotFoundError:
        raise WulinError(f"{path}: file not found; restore it from git") from None


def load_tables(
    estimates: Path = ESTIMATES, nodes_csv: Path = NODES, roads_csv: Path = ROADS
) -> Tables:
    """Read and check the source tables.

    Raises:
        WulinError: a missing file, column, duplicate row or unknown reference, naming the
            file, the row and the fix.
    """
    values: dict[tuple[str, str, str], str] = {}
    sources: dict[tuple[str, str, str], str] = {}
    tolerances: dict[str, str] = {}
    cols = ("category", "key", "field", "value", "unit", "tolerance", "source")
    for i, row in enumerate(_read_csv(estimates, cols), start=2):
        k = (row["category"].strip(), row["key"].strip(), row["field"].strip())
        if k in values:
            raise WulinError(f"{estimates}: line {i}: duplicate row {','.join(k)}; keep one")
        if not row["source"].strip():
            raise WulinError(
                f"{estimates}: line {i}: row {','.join(k)} has no source; "
                "name one or write 'estimate'"
            )
        values[k] = row["value"].strip()
        sources[k] = row["source"].strip()
        if k[0] == "node" and k[2] == "lat":
            tolerances[k[1]] = row["tolerance"].strip()
    tables = Tables(nodes={}, roads={}, values=values, sources=sources)
    for i, row in enumerate(_read_csv(nodes_csv, ("id", "name", "kind")), start=2):
        nid, kind = row["id"].strip(), row["kind"].strip()
        if kind not in _KINDS:
            raise WulinError(f"{nodes_csv}: line {i}: kind {kind!r} must be one of {sorted(_KINDS)}")
        if nid not in tolerances:
            raise WulinError(f"{estimates}: node {nid!r} has no lat/lon rows; add node,{nid},lat/lon")
        tol_raw = tolerances[nid] or "150 m"
        tables.nodes[nid] = Node(
            id=nid,
            name=row["name"].strip(),
            kind=kind,
            lat=tables.num("node", nid, "lat"),
            lon=tables.num("node", nid, "lon"),
            tolerance_m=float(tol_raw.split()[0]),
        )
    for i, row in enumerate(_read_csv(roads_csv, ("road", "name", "nodes", "oneway", "allow")), start=2):
        key = row["road"].strip()
        chain = tuple(row["nodes"].split())
        unknown = [n for n in chain if n not in tables.nodes]
        if unknown or len(chain) < 2:
            raise WulinError(
                f"{roads_csv}: line {i}: road {key!r} names unknown node(s) {unknown} or fewer than "
                f"two nodes; add them to {nodes_csv.name} or fix the chain"
            )
        tables.roads[key] = Road(
            key=key,
            name=row["name"].strip(),
            nodes=chain,
            oneway=row["oneway"].strip().lower() in ("yes", "true", "1"),
            allow=row["allow"].strip(),
            lanes=int(tables.num("road", key, "lanes")),
            speed_kmh=tables.num("road", key, "speed"),
        )
    return tables


def estimates_markdown(estimates: Path = ESTIMATES) -> str:
    """The estimates table as Markdown (for ``networks/wulin/README.md``), in file order."""
    rows = _read_csv(estimates, ("category", "key", "field", "value", "unit", "tolerance", "source"))
    cols = ("category", "key", "field", "value", "unit", "tolerance", "source")
    lines = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    for row in rows:
        lines.append("| " + " | ".join(row[c].strip().replace("|", "/") for c in cols) + " |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- geometry
_R = 6_378_137.0


def edge_id(a: str, b: str) -> str:
    """Edge id of the directed road section from node ``a`` to node ``b``."""
    return f"{a}-{b}"


def local_xy(lat: float, lon: float, lat0: float = 30.27, lon0: float = 120.165) -> tuple[float, float]:
    """Metres east and north of (lat0, lon0) (equirectangular; fine at district scale)."""
    x = math.radians(lon - lon0) * _R * math.cos(math.radians(lat0))
    y = math.radians(lat - lat0) * _R
    return x, y


def heading(a: Node, b: Node) -> float:
    """Direction of travel from ``a`` to ``b`` in degrees counter-clockwise from east."""
    ax, ay = local_xy(a.lat, a.lon)
    bx, by = local_xy(b.lat, b.lon)
    return math.degrees(math.atan2(by - ay, bx - ax))


def turn_angle(h_in: float, h_out: float) -> float:
    """Signed turn from heading ``h_in`` to ``h_out``: positive is a left turn, in (-180, 180]."""
    d = (h_out - h_in + 180.0) % 360.0 - 180.0
    return 180.0 if d == -180.0 else d


def turn_class(angle: float) -> str:
    """``s`` through, ``l`` left, ``r`` right, ``t`` turnaround, for a signed turn angle."""
    if abs(angle) <= 35.0:
        return "s"
    if 35.0 < angle < 155.0:
        return "l"
    if -155.0 < angle < -35.0:
        return "r"
    return "t"
