"""Import from a ``.net.xml`` plus demand: SUMO route, trip or flow files, or an OD matrix.

Trips and flows given by ``from``/``to`` edges are routed by SUMO when it runs, as it does
for any route file.  An OD matrix (:mod:`.od`) becomes flows between edges.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from networks.imports.draft import Draft, check_demand_edges
from networks.imports.od import od_flows
from sim.errors import WulinError


def build(source: Path, draft: Draft, demand: Sequence[Path], od: Path | None) -> None:
    """Fill ``draft`` from the network ``source`` and its demand files."""
    if not demand and od is None:
        raise WulinError(f"{source}: a network needs demand: give --demand FILE (routes, trips or "
                         "flows; repeatable) or --od FILE.csv")
    draft.take_net(source)
    for d in demand:
        copy = draft.copy_in(d, "demand")
        check_demand_edges(draft.net_path, copy, d, source.name)
        draft.routes.append(copy)
    if od is not None:
        draft.routes.append(od_flows(od, draft, "demand"))
    draft.description = f"imported from {source.name}"
