"""Import from a CityFlow benchmark: a roadnet JSON and a flow JSON.

The roadnet becomes SUMO plain XML and netconvert builds the network: each intersection a
node (``virtual`` ones, at the border, are plain priority nodes; the others traffic lights),
each road an edge with its lanes, width, speed and shape, each lane link a connection.
CityFlow numbers lanes from the centre line outwards, SUMO from the kerb, so lane ``i`` of
``n`` is SUMO lane ``n - 1 - i``.  The signal programs are netconvert's own (amber and a 2 s all-red, as
for OSM in :mod:`.osm`):
CityFlow's light phases, which have no amber, are not carried over.  Each flow entry becomes
a SUMO ``<flow>`` on its route with a vehicle type from its ``vehicle`` table (acceleration,
deceleration, length, gap, speed, headway).  Both files are read through pydantic models, so
a wrong schema is one line naming the file and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from xml.sax.saxutils import quoteattr as q

from pydantic import BaseModel, ConfigDict, Field

from networks.imports.draft import Draft
from sim.config import validate
from sim.errors import WulinError
from sim.files import load_json
from sim.tools import run_tool, sumo_binary

Num = Annotated[float, Field(strict=False, allow_inf_nan=False)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)  # CityFlow files carry more fields


class Point(_Model):
    x: Num
    y: Num


class Lane(_Model):
    width: Annotated[float, Field(gt=0)] = 3.2
    maxSpeed: Annotated[float, Field(gt=0)]  # noqa: N815 (CityFlow's name)


class Road(_Model):
    id: str
    points: Annotated[list[Point], Field(min_length=2)]
    lanes: Annotated[list[Lane], Field(min_length=1)]
    startIntersection: str  # noqa: N815
    endIntersection: str  # noqa: N815


class LaneLink(_Model):
    startLaneIndex: Annotated[int, Field(ge=0)]  # noqa: N815
    endLaneIndex: Annotated[int, Field(ge=0)]  # noqa: N815


class RoadLink(_Model):
    startRoad: str  # noqa: N815
    endRoad: str  # noqa: N815
    laneLinks: list[LaneLink]  # noqa: N815


class Intersection(_Model):
    id: str
    point: Point
    virtual: bool = False
    roadLinks: list[RoadLink] = []  # noqa: N815


class Roadnet(_Model):
    intersections: Annotated[list[Intersection], Field(min_length=1)]
    roads: Annotated[list[Road], Field(min_length=1)]


class Vehicle(_Model):
    length: Annotated[float, Field(gt=0)] = 5.0
    minGap: Annotated[float, Field(ge=0)] = 2.5  # noqa: N815
    maxSpeed: Annotated[float, Field(gt=0)] = 16.67  # noqa: N815
    usualPosAcc: Annotated[float, Field(gt=0)] = 2.0  # noqa: N815
    usualNegAcc: Annotated[float, Field(gt=0)] = 4.5  # noqa: N815
    headwayTime: Annotated[float, Field(gt=0)] = 1.5  # noqa: N815


class Flow(_Model):
    vehicle: Vehicle = Vehicle()
    route: Annotated[list[str], Field(min_length=1)]
    interval: Annotated[float, Field(gt=0)]
    startTime: Annotated[float, Field(ge=0)] = 0  # noqa: N815
    endTime: float = -1  # noqa: N815  (-1: until the end)


class Flows(_Model):
    flows: list[Flow]


def _read(path: Path, model: type[_Model], wrap: str | None = None) -> _Model:
    data = load_json(path, "CityFlow file")
    return validate(model, {wrap: data} if wrap else data, path)


def _plain_xml(net: Roadnet, root: Path, source: Path) -> list[str]:
    """Write nodes, edges and connections; return netconvert's input options."""
    roads = {r.id: r for r in net.roads}
    known = {i.id for i in net.intersections}
    nodes = ["<nodes>"] + [
        f'  <node id={q(i.id)} x="{i.point.x:g}" y="{i.point.y:g}" '
        f'type="{"priority" if i.virtual or not i.roadLinks else "traffic_light"}"/>' for i in net.intersections]
    edges = ["<edges>"]
    for k, r in enumerate(net.roads):
        for end in (r.startIntersection, r.endIntersection):
            if end not in known:
                raise WulinError(f"{source}: field 'roads[{k}]' ({r.id}) names intersection {end!r}, "
                                 "which is not in 'intersections'")
        shape = " ".join(f"{p.x:g},{p.y:g}" for p in r.points)
        edges.append(f'  <edge id={q(r.id)} from={q(r.startIntersection)} to={q(r.endIntersection)} '
                     f'numLanes="{len(r.lanes)}" speed="{r.lanes[0].maxSpeed:g}" '
                     f'width="{r.lanes[0].width:g}" shape="{shape}"/>')
    cons = ["<connections>"]
    for k, i in enumerate(net.intersections):
        for j, link in enumerate(i.roadLinks):
            where = f"intersections[{k}].roadLinks[{j}]"
            for field, rid in (("startRoad", link.startRoad), ("endRoad", link.endRoad)):
                if rid not in roads:
                    raise WulinError(f"{source}: field '{where}.{field}' names road {rid!r}, which is not in 'roads'")
            n_in, n_out = len(roads[link.startRoad].lanes), len(roads[link.endRoad].lanes)
            for ll in link.laneLinks:
                if ll.startLaneIndex >= n_in or ll.endLaneIndex >= n_out:
                    raise WulinError(f"{source}: field '{where}.laneLinks' names a lane the road does not have")
                cons.append(f'  <connection from={q(link.startRoad)} to={q(link.endRoad)} '
                            f'fromLane="{n_in - 1 - ll.startLaneIndex}" toLane="{n_out - 1 - ll.endLaneIndex}"/>')
    files = {"nodes.nod.xml": nodes + ["</nodes>"], "edges.edg.xml": edges + ["</edges>"],
             "connections.con.xml": cons + ["</connections>"]}
    plain = root / "plain"
    plain.mkdir()
    for name, lines in files.items():
        (plain / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return ["--node-files", str(plain / "nodes.nod.xml"), "--edge-files", str(plain / "edges.edg.xml"),
            "--connection-files", str(plain / "connections.con.xml")]


def _flows_xml(flows: Flows, roads: set[str], draft: Draft, path: Path) -> Path:
    """SUMO flows, one vehicle type per distinct CityFlow vehicle table."""
    assert draft.end is not None
    types: dict[Vehicle, str] = {}
    body = []
    for k, f in enumerate(flows.flows):
        for road in f.route:
            if road not in roads:
                raise WulinError(f"{path}: field '[{k}].route' names road {road!r}, which is not in the roadnet")
        tid = types.setdefault(f.vehicle, f"cf{len(types)}")
        end = draft.end if f.endTime < 0 else min(f.endTime, draft.end)
        if end <= f.startTime:
            continue
        body.append(f'  <flow id="f{k}" type="{tid}" begin="{f.startTime:g}" end="{end:g}" period="{f.interval:g}" '
                    f'departLane="best" departSpeed="max"><route edges={q(" ".join(f.route))}/></flow>')
    vtypes = [f'  <vType id="{t}" accel="{v.usualPosAcc:g}" decel="{v.usualNegAcc:g}" length="{v.length:g}" '
              f'minGap="{v.minGap:g}" maxSpeed="{v.maxSpeed:g}" tau="{v.headwayTime:g}"/>' for v, t in types.items()]
    if not body:
        raise WulinError(f"{path}: no flow starts before the scenario's end ({draft.end:g} s)")
    body.sort(key=lambda line: float(line.split('begin="')[1].split('"')[0]))  # SUMO wants departures sorted
    out = draft.root / "demand" / "flows.rou.xml"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(["<routes>", *vtypes, *body, "</routes>"]) + "\n", encoding="utf-8")
    return out


def build(source: Path, draft: Draft, flow_file: Path | None) -> None:
    """Fill ``draft`` from the roadnet ``source`` and the flow file."""
    if flow_file is None:
        raise WulinError(f"{source}: a CityFlow roadnet needs its flow file: give --demand flow.json")
    roadnet = _read(source, Roadnet)
    flows = _read(flow_file, Flows, wrap="flows")
    assert isinstance(roadnet, Roadnet) and isinstance(flows, Flows)
    if draft.end is None:
        ends = [f.endTime for f in flows.flows]
        draft.end = max(ends) if ends and min(ends) >= 0 else 3600.0
        draft.notes.append(f"window 0-{draft.end:g} s (give --end to change it)")
    inputs = _plain_xml(roadnet, draft.root, source)
    run_tool([sumo_binary("netconvert"), *inputs, "--tls.default-type", "static", "--tls.allred.time", "2",
              "--no-warnings", "true",
              "--output-file", str(draft.net_path)], source, "netconvert")
    draft.net = draft.net_path
    draft.routes.append(_flows_xml(flows, {r.id for r in roadnet.roads}, draft, flow_file))
    draft.notes.append("signal programs are netconvert's (amber, 2 s all-red); CityFlow's light phases are not carried over")
    draft.description = f"imported from CityFlow {source.name} + {flow_file.name}"
