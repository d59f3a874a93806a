"""What-if variations as SUMO calls on a running :class:`~sim.simulation.Simulation`.

``experiments.variations`` schedules these at simulation times (as episode-loop hooks) so that
``experiments/`` never touches TraCI's camelCase API; everything SUMO-specific is here:

* lane / edge closures: a closed lane allows only the ``authority`` class, so ordinary traffic
  stops entering it and lane-changes off it; reopening restores the lane's own permissions
  (``lane.setAllowed([])`` would *close* a lane to everything, so the saved tuple is restored);
* incidents: a vehicle on a lane gets a stop (``vehicle.setStop``) at the incident position for
  the incident's duration, with lane changing off, so it blocks that lane like a breakdown
  (a stop is not teleported as a jam, a vehicle held by ``setSpeed(0)`` would be);
* signal failures: every link of a signal shows ``o`` (flashing yellow, SUMO's "off-blinking":
  vehicles yield by right of way), then the signal goes back to its program;
* network data that does not need a SUMO process (element ids for validating a declaration,
  edge outlines for maps) and the ``edgeData`` additional file used for approach delays.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from xml.sax.saxutils import quoteattr

from sim.errors import WulinError
from sim.simulation import Simulation

CLOSED_TO = ("authority",)  # the only class still allowed on a closed lane


# ------------------------------------------------------------------ closures
def close_lanes(sim: Simulation, lanes: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Close lanes to traffic; returns their previous permissions for :func:`reopen_lanes`."""
    lane = sim.conn.lane
    saved: dict[str, tuple[str, ...]] = {}
    for lid in lanes:
        saved[lid] = tuple(sim._call(lambda lid=lid: lane.getAllowed(lid)))
        sim._call(lambda lid=lid: lane.setAllowed(lid, list(CLOSED_TO)))
    return saved


def reopen_lanes(sim: Simulation, saved: dict[str, tuple[str, ...]]) -> None:
    """Give closed lanes back the permissions :func:`close_lanes` saved."""
    lane = sim.conn.lane
    for lid, allowed in saved.items():
        sim._call(lambda lid=lid, allowed=allowed: lane.setAllowed(lid, list(allowed)))


def reroute_around(sim: Simulation, edges: Iterable[str], seen: set[str]) -> int:
    """Re-route vehicles whose remaining route uses a closed edge (skipping ids in ``seen``).

    SUMO's router respects lane permissions, so a new route avoids edges with every lane
    closed; vehicles that cannot avoid them keep their route (and wait or teleport).

    Returns:
        The number of vehicles re-routed.
    """
    veh = sim.conn.vehicle
    closed = set(edges)
    n = 0
    for vid in sim._call(veh.getIDList):
        if vid in seen:
            continue
        seen.add(vid)
        route = veh.getRoute(vid)
        if closed.intersection(route[veh.getRouteIndex(vid):]):
            try:
                veh.rerouteTraveltime(vid)
                n += 1
            except Exception:  # no alternative route: it keeps its route
                pass
    return n


def edge_lanes(sim: Simulation, edge: str) -> list[str]:
    """Lane ids of an edge in a running simulation."""
    n = int(sim._call(lambda: sim.conn.edge.getLaneNumber(edge)))
    return [f"{edge}_{i}" for i in range(n)]


def lane_vehicle_counts(sim: Simulation, lanes: Sequence[str]) -> list[int]:
    """Vehicles on each lane in the last step."""
    number = sim.conn.lane.getLastStepVehicleNumber
    return [int(sim._call(lambda lid=lid: number(lid))) for lid in lanes]


# ------------------------------------------------------------------ incidents
def stop_vehicle(sim: Simulation, lane: str, position: float | None, duration: float) -> str | None:
    """Stop a vehicle on ``lane`` for ``duration`` seconds, blocking the lane (an incident).

    Picks the vehicle nearest the incident position that can still brake to a stop there;
    with ``position=None`` the vehicle stops where it can (just ahead of itself).

    Returns:
        The stopped vehicle's id, or None when no vehicle on the lane can stop (try later).
    """
    conn = sim.conn
    lane_len = float(sim._call(lambda: conn.lane.getLength(lane)))
    edge = str(sim._call(lambda: conn.lane.getEdgeID(lane)))
    index = int(lane.rsplit("_", 1)[1]) if "_" in lane else 0
    vehs = list(sim._call(lambda: conn.lane.getLastStepVehicleIDs(lane)))
    # upstream vehicles first: they have room to brake before the incident position
    vehs.sort(key=lambda v: float(conn.vehicle.getLanePosition(v)))
    for vid in vehs:
        pos = float(conn.vehicle.getLanePosition(vid))
        speed = float(conn.vehicle.getSpeed(vid))
        decel = max(float(conn.vehicle.getDecel(vid)), 1.0)
        need = speed * speed / (2 * decel) + 1.0
        target = pos + need if position is None else float(position)
        target = min(max(target, pos + need), lane_len - 0.5)
        if target <= pos + need - 1e-6:
            continue
        try:
            conn.vehicle.setStop(vid, edge, pos=target, laneIndex=index, duration=float(duration))
        except Exception:  # too close to brake, or route leaves the edge: try another vehicle
            continue
        conn.vehicle.setLaneChangeMode(vid, 0)  # a broken-down vehicle stays in its lane
        return str(vid)
    return None


# ------------------------------------------------------------------ signal failures
def flash_signal(sim: Simulation, tls: str) -> str:
    """Put every link of a signal to flashing yellow (``o``); returns the program to restore."""
    tl = sim.conn.trafficlight
    program = str(sim._call(lambda: tl.getProgram(tls)))
    n = len(sim._call(lambda: tl.getRedYellowGreenState(tls)))
    sim._call(lambda: tl.setRedYellowGreenState(tls, "o" * n))
    return program


def keep_flashing(sim: Simulation, tls: str) -> None:
    """Show flashing yellow again (an actuator writing states would otherwise override it)."""
    tl = sim.conn.trafficlight
    state = str(sim._call(lambda: tl.getRedYellowGreenState(tls)))
    if set(state) != {"o"}:
        sim._call(lambda: tl.setRedYellowGreenState(tls, "o" * len(state)))


def restore_signal(sim: Simulation, tls: str, program: str) -> None:
    """End a failure: back to the program the signal ran before (``online`` for an actuator)."""
    tl = sim.conn.trafficlight
    try:
        sim._call(lambda: tl.setProgram(tls, program))
    except WulinError:  # the actuator's 'online' program may not be selectable: it rewrites soon
        pass


def signal_state(sim: Simulation, tls: str) -> str:
    """The state string a signal shows now."""
    return str(sim._call(lambda: sim.conn.trafficlight.getRedYellowGreenState(tls)))


# ------------------------------------------------------------------ network data (no SUMO process)
@dataclass(frozen=True)
class NetworkIndex:
    """Ids and outlines of a network, for validating declarations and drawing maps.

    Attributes:
        edges: Ids of normal (non-internal) edges.
        lanes: Ids of their lanes.
        signals: Traffic light ids.
        outlines: Edge centre lines as ``(edge id, ((x, y), ...))``.
        geo: True when the network is geo-referenced.
    """

    edges: frozenset[str]
    lanes: frozenset[str]
    signals: frozenset[str]
    outlines: tuple[tuple[str, tuple[tuple[float, float], ...]], ...] = field(repr=False)
    geo: bool = False
    lane_lengths: dict[str, float] = field(default_factory=dict, repr=False, compare=False, hash=False)


@lru_cache(maxsize=8)
def network_index(net_file: Path | str) -> NetworkIndex:
    """Read a ``.net.xml`` once (cached) into a :class:`NetworkIndex`.

    Raises:
        WulinError: the file is missing or not a SUMO network.
    """
    import sumolib

    path = Path(net_file)
    if not path.is_file():
        raise WulinError(f"{path}: network file not found; build it or fix the path")
    try:
        net = sumolib.net.readNet(str(path))
        geo = bool(net.hasGeoProj())  # every SUMO network has <location>; another XML file fails here
    except Exception as exc:
        raise WulinError(f"{path}: not a readable SUMO network ({exc})") from None
    edges: set[str] = set()
    lanes: set[str] = set()
    lane_lengths: dict[str, float] = {}
    outlines: list[tuple[str, tuple[tuple[float, float], ...]]] = []
    for e in net.getEdges(withInternal=False):
        edges.add(e.getID())
        lanes.update(ln.getID() for ln in e.getLanes())
        lane_lengths.update((ln.getID(), float(ln.getLength())) for ln in e.getLanes())
        outlines.append((e.getID(), tuple((float(x), float(y)) for x, y in e.getShape())))
    return NetworkIndex(
        edges=frozenset(edges),
        lanes=frozenset(lanes),
        signals=frozenset(t.getID() for t in net.getTrafficLights()),
        outlines=tuple(outlines),
        geo=geo,
        lane_lengths=lane_lengths,
    )


def write_edgedata_additional(path: Path, output: Path, edges: Iterable[str], period: float) -> Path:
    """Write an additional file asking SUMO for ``edgeData`` (time loss, entered, left) per period.

    Args:
        path: The additional file to write.
        output: Where SUMO writes the measurements.
        edges: Edges to measure (intersection approaches).
        period: Aggregation interval in seconds.
    """
    ids = " ".join(sorted(set(edges)))
    path.write_text(
        "<additional>\n"
        f'  <edgeData id="wulin_approaches" period="{period:g}" file={quoteattr(str(output))} '
        f'edges={quoteattr(ids)} excludeEmpty="false"/>\n'
        "</additional>\n"
    )
    return path


def read_edgedata(path: Path) -> list[dict[str, float | str]]:
    """Rows ``{begin, end, edge, time_loss, waiting_time, entered, left, sampled_seconds}``.

    Raises:
        WulinError: the file is missing or truncated.
    """
    import xml.etree.ElementTree as ET

    rows: list[dict[str, float | str]] = []
    try:
        for _, el in ET.iterparse(path, events=("end",)):
            if el.tag != "interval":
                continue
            b, e = float(el.get("begin", 0)), float(el.get("end", 0))
            for ed in el.iter("edge"):
                a = ed.attrib
                rows.append({
                    "begin": b, "end": e, "edge": a["id"],
                    "time_loss": float(a.get("timeLoss", 0.0)),
                    "waiting_time": float(a.get("waitingTime", 0.0)),
                    "entered": float(a.get("entered", 0.0)),
                    "left": float(a.get("left", 0.0)),
                    "sampled_seconds": float(a.get("sampledSeconds", 0.0)),
                })
            el.clear()
    except FileNotFoundError:
        raise WulinError(f"{path}: edgeData output not found; SUMO did not write it") from None
    except ET.ParseError as exc:
        raise WulinError(f"{path}: edgeData output is incomplete ({exc})") from None
    return rows
