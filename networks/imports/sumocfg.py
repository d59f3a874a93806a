"""Import from a SUMO configuration (``.sumocfg``): its net, routes, additional files, window,
step length and options (read by :mod:`sim.sumocfg`, which ``wulin simulate FILE.sumocfg``
uses too).  Options the engine owns and SUMO's output options are left out, and said so."""

from __future__ import annotations

from pathlib import Path

from networks.imports.draft import Draft
from sim.clock import parse_clock
from sim.sumocfg import read_sumocfg


def build(source: Path, draft: Draft) -> None:
    """Fill ``draft`` from the configuration file ``source`` (an ``--end`` already given wins)."""
    cfg = read_sumocfg(source, need_end=draft.end is None)
    base = cfg.source.parent
    data = cfg.data
    net = (base / data["net"]).resolve()
    draft.take_net(net)
    draft.routes = [draft.copy_in((base / r).resolve(), "demand") for r in data["routes"]]
    draft.additional = [draft.copy_in((base / a).resolve(), "additional") for a in data.get("additional", [])]
    draft.begin = parse_clock(data["begin"], f"{source}: <begin>")
    if "end" in data:
        draft.end = parse_clock(data["end"], f"{source}: <end>")
    draft.step_length = float(data.get("step_length", 1.0))
    draft.sumo_options = dict(data["sumo_options"])
    draft.description = f"imported from {source.name}"
    if cfg.dropped:
        draft.notes.append(f"left out of {source.name} (the engine sets these or writes its own "
                           f"outputs): {', '.join(cfg.dropped)}")
