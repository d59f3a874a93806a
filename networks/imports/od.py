"""Demand from an OD matrix: a CSV of ``origin,destination,vehicles_per_hour`` between edges.

Each row becomes one SUMO ``<flow>`` from the origin edge to the destination edge over the
scenario's window (SUMO routes it).  A header row is allowed; ``#`` starts a comment.  Edges
must be in the network; a row that is not three fields with a positive number is one error
naming the file and the line.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from networks.imports.draft import Draft, net_edges
from sim.errors import WulinError
from sim.files import read_text


def _rows(path: Path) -> list[tuple[int, str, str, float]]:
    rows = []
    for n, row in enumerate(csv.reader(io.StringIO(read_text(path, "OD matrix"))), start=1):
        if not row or row[0].strip().startswith("#"):
            continue
        if len(row) != 3:
            raise WulinError(f"{path}, line {n}: expected origin,destination,vehicles_per_hour, got {row!r}")
        try:
            vph = float(row[2])
        except ValueError:
            if n == 1:
                continue  # a header
            raise WulinError(f"{path}, line {n}: field 'vehicles_per_hour' must be a number, got {row[2]!r}") from None
        if not vph > 0:
            raise WulinError(f"{path}, line {n}: field 'vehicles_per_hour' must be > 0, got {row[2]!r}")
        rows.append((n, row[0].strip(), row[1].strip(), vph))
    if not rows:
        raise WulinError(f"{path}: no OD rows (origin,destination,vehicles_per_hour)")
    return rows


def od_flows(path: Path, draft: Draft, sub: str) -> Path:
    """Write the matrix as flows into ``draft`` (``sub/od.rou.xml``); its end must be known."""
    if draft.end is None:
        raise WulinError(f"{path}: an OD matrix needs the scenario's window; give --end")
    assert draft.net is not None
    edges = net_edges(draft.net)
    lines = ["<routes>", '    <vType id="car" vClass="passenger"/>']
    for n, origin, dest, vph in _rows(path):
        for field, edge in (("origin", origin), ("destination", dest)):
            if edge not in edges:
                raise WulinError(f"{path}, line {n}: field '{field}' names edge '{edge}', which is not "
                                 f"in the network {draft.net.name}")
        lines.append(f'    <flow id="od{n}" type="car" begin="{draft.begin:g}" end="{draft.end:g}" '
                     f'from="{origin}" to="{dest}" vehsPerHour="{vph:g}" departLane="best" departSpeed="max"/>')
    out = draft.root / sub / "od.rou.xml"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join([*lines, "</routes>"]) + "\n", encoding="utf-8")
    return out
