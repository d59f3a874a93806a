"""Small import sources written by the tests: a netgenerate grid with flows and a .sumocfg,
an OSM extract and a CityFlow roadnet + flows (no committed data)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from sim.tools import sumo_binary

FLOWS = [("left0A0", "B0right0", 300), ("right1B1", "A1left1", 300), ("bottom0A0", "A1top0", 250),
         ("top1B1", "B0bottom1", 250)]


def grid_sources(folder: Path) -> dict[str, Path]:
    """A 2x2 signalised grid with amber and all-red, its flows, an OD CSV and a .sumocfg."""
    folder.mkdir(parents=True, exist_ok=True)
    net = folder / "grid.net.xml"
    subprocess.run([sumo_binary("netgenerate"), "--grid", "--grid.number", "2", "--grid.length", "150",
                    "--grid.attach-length", "150", "--default-junction-type", "traffic_light",
                    "--tls.allred.time", "2", "--no-turnarounds", "true", "--seed", "1",
                    "--output-file", str(net)], check=True, capture_output=True)
    flows = "".join(f'  <flow id="f{i}" begin="0" end="600" from="{a}" to="{b}" vehsPerHour="{v}"/>\n'
                    for i, (a, b, v) in enumerate(FLOWS))
    (folder / "flows.rou.xml").write_text(f"<routes>\n{flows}</routes>\n")
    (folder / "od.csv").write_text("origin,destination,vehicles_per_hour\n"
                                   + "".join(f"{a},{b},{v}\n" for a, b, v in FLOWS))
    (folder / "city.sumocfg").write_text(
        '<configuration>\n  <input><net-file value="grid.net.xml"/><route-files value="flows.rou.xml"/></input>\n'
        '  <time><begin value="0"/><end value="600"/><step-length value="1"/></time>\n'
        '  <processing><time-to-teleport value="-1"/></processing>\n'
        '  <output><tripinfo-output value="mine.xml"/></output>\n</configuration>\n')
    return {"net": net, "flows": folder / "flows.rou.xml", "od": folder / "od.csv", "sumocfg": folder / "city.sumocfg"}


def write_osm(path: Path, roads: bool = True) -> Path:
    """Two streets each way crossing at four OSM traffic signals, 200 m apart."""
    lat0, lon0, d = 30.0, 120.0, 0.0018
    nodes = []
    for i in range(4):
        for j in range(4):
            sig = '<tag k="highway" v="traffic_signals"/>' if 1 <= i <= 2 and 1 <= j <= 2 else ""
            nodes.append(f'<node id="{1 + 4 * i + j}" lat="{lat0 + i * d:.6f}" lon="{lon0 + j * d:.6f}" '
                         f'version="1">{sig}</node>')
    ways, kind = [], "highway" if roads else "waterway"
    for w, k in enumerate((1, 2)):
        for n, refs in enumerate(([1 + 4 * k + j for j in range(4)], [1 + 4 * j + k for j in range(4)])):
            nds = "".join(f'<nd ref="{r}"/>' for r in refs)
            ways.append(f'<way id="{100 + 2 * w + n}" version="1">{nds}<tag k="{kind}" v="secondary"/>'
                        '<tag k="lanes" v="2"/></way>')
    path.write_text('<?xml version="1.0"?>\n<osm version="0.6">\n' + "\n".join(nodes + ways) + "\n</osm>\n")
    return path


def write_cityflow(folder: Path) -> tuple[Path, Path]:
    """One signalised intersection ``c`` with four virtual neighbours 300 m away, and flows."""
    pos = {"c": (0, 0), "n": (0, 300), "s": (0, -300), "e": (300, 0), "w": (-300, 0)}
    opp = {"n": "s", "s": "n", "e": "w", "w": "e"}
    left = {"n": "e", "e": "s", "s": "w", "w": "n"}
    right = {v: k for k, v in left.items()}
    lanes = [{"width": 3.2, "maxSpeed": 13.9}] * 2
    roads = [{"id": f"{a}_{b}", "points": [dict(zip("xy", pos[a], strict=True)), dict(zip("xy", pos[b], strict=True))],
              "lanes": lanes, "startIntersection": a, "endIntersection": b}
             for k in "nsew" for a, b in ((k, "c"), ("c", k))]
    links = []
    for k in "nsew":
        links += [{"type": "go_straight", "startRoad": f"{k}_c", "endRoad": f"c_{opp[k]}",
                   "laneLinks": [{"startLaneIndex": i, "endLaneIndex": i, "points": []} for i in (0, 1)]},
                  {"type": "turn_left", "startRoad": f"{k}_c", "endRoad": f"c_{left[k]}",
                   "laneLinks": [{"startLaneIndex": 0, "endLaneIndex": 0, "points": []}]},
                  {"type": "turn_right", "startRoad": f"{k}_c", "endRoad": f"c_{right[k]}",
                   "laneLinks": [{"startLaneIndex": 1, "endLaneIndex": 1, "points": []}]}]
    inter = [{"id": k, "point": dict(zip("xy", p, strict=True)), "virtual": k != "c", "width": 20,
              "roads": [], "roadLinks": links if k == "c" else [],
              "trafficLight": {"lightphases": [{"time": 30, "availableRoadLinks": [0, 3]}]}} for k, p in pos.items()]
    veh = {"length": 5.0, "width": 2.0, "maxPosAcc": 2.0, "maxNegAcc": 4.5, "usualPosAcc": 2.0,
           "usualNegAcc": 4.5, "minGap": 2.5, "maxSpeed": 11.11, "headwayTime": 2}
    flows = [{"vehicle": veh, "route": [f"{k}_c", f"c_{opp[k]}"], "interval": 8, "startTime": 0, "endTime": 600}
             for k in "nsew"]
    roadnet, flow = folder / "roadnet.json", folder / "flow.json"
    roadnet.write_text(json.dumps({"intersections": inter, "roads": roads}))
    flow.write_text(json.dumps(flows))
    return roadnet, flow
