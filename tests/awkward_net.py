"""A generated network with what converted real-world networks hold (for the topology tests).

A 2 x 2 two-lane grid (netgenerate) with sidewalks and pedestrian crossings, rebuilt through
netconvert's plain XML with its programs rewritten the way converted networks have them:

* every yellow becomes red: transitions of ``r`` (and ``s`` for right turns) only;
* ``A0``: link index 0 unused (every vehicle link shifted up by one);
* ``A1``: right turns green in every phase (``g``);
* ``B0``: an ``actuated`` program (minDur / maxDur on its greens), ``s`` right turns in its
  transitions;
* ``B1``: an 8-phase program, protected lefts after each through stage (with ``nema``: a
  dual-ring NEMA program of eight phases).
"""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from sim.tools import sumo_binary
from tests.conftest import make_grid_network

RIGHT = 0  # in netgenerate's grid the first link of every approach is the right turn


def _run(*args: str) -> None:
    subprocess.run([sumo_binary("netconvert"), *args, "--no-warnings", "true"], check=True,
                   capture_output=True)


def make_awkward_network(out: Path, nema: bool = False) -> Path:
    """Write ``awkward.net.xml`` in ``out`` and return it (see the module docstring);
    ``nema``: ``B1`` runs the same eight phases as a dual-ring NEMA program instead."""
    base = make_grid_network(out / "base", lanes=2)
    ped = out / "ped.net.xml"
    _run("-s", str(base), "--sidewalks.guess", "true", "--crossings.guess", "true", "-o", str(ped))
    prefix = out / "plain"
    _run("-s", str(ped), "--plain-output-prefix", str(prefix))
    tll = Path(f"{prefix}.tll.xml")
    root = ET.parse(tll).getroot()
    for tl in root.iter("tlLogic"):
        _rewrite(tl, nema)
    for conn in root.iter("connection"):
        if conn.get("tl") == "A0":
            conn.set("linkIndex", str(int(conn.get("linkIndex", "0")) + 1))
    ET.ElementTree(root).write(tll)
    net = out / "awkward.net.xml"
    _run("-n", f"{prefix}.nod.xml", "-e", f"{prefix}.edg.xml", "-x", f"{prefix}.con.xml",
         "-i", str(tll), "--crossings.guess", "false", "-o", str(net))
    return net


def _rewrite(tl: ET.Element, nema: bool) -> None:
    phases = list(tl.iter("phase"))
    tid = tl.get("id")
    for ph in phases:
        state = ph.get("state", "").replace("y", "r")
        vehicle, walk = state[:16], state[16:]
        if tid == "A1":  # right turns green in every phase
            vehicle = "".join("g" if i % 4 == RIGHT else c for i, c in enumerate(vehicle))
        if tid == "B0" and not re.search("[Gg]", vehicle):  # right turn on red: 's'
            vehicle = "".join("s" if i % 4 == RIGHT else c for i, c in enumerate(vehicle))
        state = vehicle + walk
        if tid == "A0":
            state = "r" + state
        ph.set("state", state)
    if tid == "B0":
        tl.set("type", "actuated")
        for ph in phases:
            if re.search("[Gg]", ph.get("state", "")):
                ph.set("minDur", "5")
                ph.set("maxDur", "50")
    if tid == "B1":
        (_nema_phases if nema else _eight_phases)(tl, phases)


_NEMA = (("1", "rrrGrrrrrrrrrrrr", 10), ("2", "GGGrrrrrrrrrrrrr", 30),
         ("3", "rrrrrrrGrrrrrrrr", 10), ("4", "rrrrGGGrrrrrrrrr", 30),
         ("5", "rrrrrrrrrrrGrrrr", 10), ("6", "rrrrrrrrGGGrrrrr", 30),
         ("7", "rrrrrrrrrrrrrrrG", 10), ("8", "rrrrrrrrrrrrGGGr", 30))


def _nema_phases(tl: ET.Element, phases: list[ET.Element]) -> None:
    """A dual-ring NEMA program: ring 1 phases 1-4, ring 2 phases 5-8, lefts leading."""
    for ph in phases:
        tl.remove(ph)
    tl.set("type", "NEMA")
    for key, value in (("detector-length", "20"), ("ring1", "1,2,3,4"), ("ring2", "5,6,7,8"),
                       ("barrierPhases", "4,8"), ("barrier2Phases", "2,6")):
        ET.SubElement(tl, "param", key=key, value=value)
    for name, state, dur in _NEMA:
        ET.SubElement(tl, "phase", duration=str(dur), minDur="5", maxDur=str(dur + 10),
                      vehext="2", yellow="3", red="2", name=name, state=state + "rrrr")


def _eight_phases(tl: ET.Element, phases: list[ET.Element]) -> None:
    """Through+right, then protected left, per direction pair, with red transitions."""
    for ph in phases:
        tl.remove(ph)
    walk = "rrrr"
    ns_thru = "GGGrrrrrGGGrrrrr"
    ns_left = "rrrGrrrrrrrGrrrr"
    ew_thru = "rrrrGGGrrrrrGGGr"
    ew_left = "rrrrrrrGrrrrrrrG"
    red = "r" * 16
    for state, dur in ((ns_thru, 30), (red, 3), (ns_left, 10), (red, 3),
                       (ew_thru, 30), (red, 3), (ew_left, 10), (red, 3)):
        ET.SubElement(tl, "phase", duration=str(dur), state=state + walk)


FLOWS = [("left0A0", "B0right0", 300), ("right1B1", "A1left1", 300), ("bottom0A0", "A1top0", 250),
         ("top1B1", "B0bottom1", 250), ("left1A1", "B1right1", 200), ("bottom1B0", "B1top1", 200)]
"""Ten minutes of crossing traffic on the awkward network (from, to, veh/h)."""


if __name__ == "__main__":  # python -m tests.awkward_net DIR: the network and awkward-v1.toml
    import sys

    from tests.conftest import write_scenario

    folder = Path(sys.argv[1])
    net = make_awkward_network(folder)
    sc = write_scenario(folder, net, FLOWS, sid="awkward-v1", end=600)
    toml = folder / "scenarios" / "awkward-v1.toml"
    toml.write_text(toml.read_text().replace("end = 600", "end = 900"))
    print(f"{net}\n{toml}")
