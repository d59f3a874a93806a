"""Calibration of the Wulin demand to real hourly counts, and the GEH report.

Counts (``data/counts.csv``, facts copied from the MetaLight / TSCC2019 Hangzhou dataset,
Monday 16 April 2018):

* ``qingchun_yanan``: Qingchun Rd x Yan'an Rd is a modelled junction (``ya_qc``).  The
  dataset's approach labels are read as compass arms of the *arriving* traffic with
  Yan'an Rd as the N-S road (label N = vehicles arriving from the north, on Yan'an Rd
  southbound).  Each (hour, approach, through/left) count is one calibrated movement.
* ``baochu_tiyuchang``: Baochu Rd x Tiyuchang Rd lies about 1.5 km west of the model, on
  Tiyuchang Rd.  Its counts define the western boundary flows of Tiyuchang Rd (Tiyuchang Rd
  taken as E-W): eastbound inflow = W through + N left + S right, westbound outflow =
  E through + E left + E right.  Right turns were not counted: they are assumed to be
  ``right_share`` (estimates.csv) of the same approach's through count, so these two
  targets per hour are *derived* figures, reported separately.

The calibration is an equivalent of SUMO's routeSampler written for this model: OD flows
on fixed routes are scaled by iterative proportional fitting so that, hour by hour, the
flows through each counted movement match the count (hours without counts use targets
interpolated between counted hours).  Because routes are fixed, the simulated hourly
movement flows differ from the demand only through queueing; :func:`geh_report` measures
them from a simulation (``--vehroute-output`` with exit times) and computes
GEH = sqrt(2 (M - C)^2 / (M + C)).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from networks.wulin.tables import HOURS, Tables, edge_id, heading, turn_angle, turn_class
from sim.errors import WulinError

HERE = Path(__file__).resolve().parent
COUNTS = HERE / "data" / "counts.csv"
COUNTED_NODE = "ya_qc"
BAOCHU_EDGE_IN = "f_ty_w-hw_ty"  # Tiyuchang Rd eastbound entry (from Baochu Rd)
BAOCHU_EDGE_OUT = "hw_ty-f_ty_w"  # Tiyuchang Rd westbound exit (towards Baochu Rd)
_COMPASS = {"E": 0.0, "N": 90.0, "W": 180.0, "S": -90.0}


@dataclass(frozen=True)
class Target:
    """One calibration target for one hour.

    Attributes:
        name: ``ya_qc N through`` or ``Tiyuchang W inflow``.
        hour: Start hour (7 is 07:00-08:00).
        count: Vehicles in the hour (count, derived or interpolated).
        kind: ``count`` (a real movement count), ``derived`` (from counts plus the
            right-turn assumption) or ``interpolated`` (no count that hour; used only to
            shape demand, never reported).
        edges: For a movement, (approach edge, exit edge); for a boundary flow, the one edge.
    """

    name: str
    hour: int
    count: float
    kind: str
    edges: tuple[str, ...]


def load_counts(path: Path = COUNTS) -> dict[tuple[str, int, str, str], int]:
    """(intersection, hour, approach label, movement) -> vehicles."""
    out: dict[tuple[str, int, str, str], int] = {}
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            for i, row in enumerate(csv.DictReader(fh), start=2):
                try:
                    hour = int(row["hour_start"].split(":")[0])
                    out[(row["intersection"], hour, row["approach_label"], row["movement"])] = int(
                        row["vehicles"]
                    )
                except (KeyError, ValueError):
                    raise WulinError(
                        f"{path}: line {i}: needs intersection, hour_start (HH:MM), "
                        "approach_label, movement and an integer vehicles"
                    ) from None
    except FileNotFoundError:
        raise WulinError(f"{path}: counts file not found; restore it from git") from None
    return out


def movement_edges(tables: Tables) -> dict[tuple[str, str], tuple[str, str]]:
    """(approach label, through|left) at ya_qc -> (approach edge, exit edge)."""
    nodes = tables.nodes
    node = nodes[COUNTED_NODE]
    neighbours = sorted(
        {a for r in tables.roads.values() for a, b in zip(r.nodes, r.nodes[1:], strict=False) if b == COUNTED_NODE}
        | {b for r in tables.roads.values() for a, b in zip(r.nodes, r.nodes[1:], strict=False) if a == COUNTED_NODE}
    )
    arm = {}
    for label, ang in _COMPASS.items():
        arm[label] = min(neighbours, key=lambda n: abs(turn_angle(ang, heading(node, nodes[n]))))
    out = {}
    for label, nb in arm.items():
        h_in = heading(nodes[nb], node)
        for other in neighbours:
            if other == nb:
                continue
            cls = turn_class(turn_angle(h_in, heading(node, nodes[other])))
            if cls == "s":
                out[(label, "through")] = (edge_id(nb, COUNTED_NODE), edge_id(COUNTED_NODE, other))
            elif cls == "l":
                out[(label, "left")] = (edge_id(nb, COUNTED_NODE), edge_id(COUNTED_NODE, other))
    return out


def _fill(series: dict[int, float], profile: dict[int, float]) -> dict[int, tuple[float, str]]:
    """Every demand hour: the count where there is one, else interpolated (or profile-scaled)."""
    known = sorted(series)
    out: dict[int, tuple[float, str]] = {}
    for h in HOURS:
        if h in series:
            out[h] = (float(series[h]), "count")
            continue
        lo = [k for k in known if k < h]
        hi = [k for k in known if k > h]
        if lo and hi:
            a, b = lo[-1], hi[0]
            v = series[a] + (series[b] - series[a]) * (h - a) / (b - a)
        else:
            k = lo[-1] if lo else hi[0]
            v = series[k] * profile[h] / profile[k]
        out[h] = (v, "interpolated")
    return out


def targets(tables: Tables, counts: dict[tuple[str, int, str, str], int] | None = None) -> list[Target]:
    """All calibration targets, every demand hour."""
    counts = load_counts() if counts is None else counts
    prof = tables.profile("boundary")
    right = tables.num("demand", "counts", "right_share")
    out: list[Target] = []
    for (label, mv), edges in sorted(movement_edges(tables).items()):
        series = {h: float(v) for (i, h, a, m), v in counts.items()
                  if i == "qingchun_yanan" and a == label and m == mv}
        for h, (v, kind) in _fill(series, prof).items():
            out.append(Target(f"{COUNTED_NODE} {label} {mv}", h, v, kind, edges))
    hours = sorted({h for (i, h, _a, _m) in counts if i == "baochu_tiyuchang"})

    def c(h: int, a: str, m: str) -> float:
        return float(counts[("baochu_tiyuchang", h, a, m)])

    inflow = {h: c(h, "W", "through") + c(h, "N", "left") + right * c(h, "S", "through") for h in hours}
    outflow = {h: c(h, "E", "through") + c(h, "E", "left") + right * c(h, "E", "through") for h in hours}
    for name, series, edge in (
        ("Tiyuchang Rd W inflow", inflow, BAOCHU_EDGE_IN),
        ("Tiyuchang Rd W outflow", outflow, BAOCHU_EDGE_OUT),
    ):
        for h, (v, kind) in _fill(series, prof).items():
            out.append(Target(name, h, v, "derived" if kind == "count" else kind, (edge,)))
    return out


def target_matches(t: Target) -> Callable[[tuple[str, ...]], bool]:
    """Predicate: does a route (edge tuple) pass this target's movement or boundary edge?"""
    if len(t.edges) == 2:
        a, b = t.edges

        def through(route: tuple[str, ...]) -> bool:
            return any(x == a and y == b for x, y in zip(route, route[1:], strict=False))

        return through
    e = t.edges[0]
    return lambda route: e in route


def ipf(
    flows: dict[tuple[str, str], float],
    routes: dict[tuple[str, str], tuple[str, ...]],
    hour_targets: list[Target],
    iterations: int = 40,
) -> dict[tuple[str, str], float]:
    """Scale OD flows so that flows through each target match it (iterative proportional fitting)."""
    flows = dict(flows)
    members = [(t, [od for od in flows if target_matches(t)(routes[od])]) for t in hour_targets]
    for _ in range(iterations):
        for t, ods in members:
            m = sum(flows[od] for od in ods)
            if m <= 0:
                continue
            f = min(5.0, max(0.2, t.count / m))
            for od in ods:
                flows[od] *= f
    return flows


def geh(m: float, c: float) -> float:
    """GEH statistic of a modelled hourly flow ``m`` against a count ``c``."""
    return 0.0 if m + c == 0 else math.sqrt(2.0 * (m - c) ** 2 / (m + c))


def simulated_counts(vehroutes: Path, tgts: list[Target]) -> dict[tuple[str, int], int]:
    """Hourly vehicles through each target's movement (or boundary edge) in a vehroute output.

    A movement is timed when the vehicle leaves the approach edge; an inflow when it leaves
    the entry edge; an outflow when it leaves the exit edge (arrives).
    """
    import xml.etree.ElementTree as ET

    moves = {t.edges for t in tgts}
    names = {t.edges: t.name for t in tgts}
    out: dict[tuple[str, int], int] = {}
    for _ev, el in ET.iterparse(str(vehroutes)):
        if el.tag != "vehicle":
            continue
        route = el.find("route")
        if route is None or route.get("exitTimes") is None:
            el.clear()
            continue
        edges = route.get("edges", "").split()
        times = [float(x) for x in route.get("exitTimes", "").split()]
        for i, e in enumerate(edges):
            for mv in moves:
                hit = (len(mv) == 1 and mv[0] == e) or (
                    len(mv) == 2 and mv[0] == e and i + 1 < len(edges) and edges[i + 1] == mv[1]
                )
                if hit and i < len(times):
                    key = (names[mv], int(times[i] // 3600))
                    out[key] = out.get(key, 0) + 1
        el.clear()
    return out


@dataclass(frozen=True)
class GehRow:
    """One line of the calibration report."""

    name: str
    hour: int
    kind: str
    count: float
    modelled: float
    geh: float


def geh_report(
    tables: Tables, begin: float = 7 * 3600, end: float = 19 * 3600, seed: int = 1,
    progress: bool = True,
) -> list[GehRow]:
    """Simulate ``begin``..``end`` under the field-like plans and compare with the counts.

    Returns one row per counted (or derived) target whose hour lies in the window.
    """
    import tempfile

    from sim.scenario import load_scenario
    from sim.simulation import Simulation

    sc = load_scenario("wulin-am-peak-v1")
    tgts = [t for t in targets(tables) if t.kind != "interpolated" and begin <= t.hour * 3600 < end]
    with tempfile.TemporaryDirectory(prefix="wulin-calib-") as d:
        vr = Path(d) / "vehroutes.xml"
        from dataclasses import replace

        window = replace(sc, begin=float(begin) - 900, end=float(end), warmup=900.0)
        sim = Simulation(
            window, seed=seed, output_dir=Path(d),
            extra_args=["--vehroute-output", str(vr), "--vehroute-output.exit-times", "true",
                        "--vehroute-output.write-unfinished", "false"],
        )
        with sim:
            _step(sim, window.begin, window.end, progress)
        sim_counts = simulated_counts(vr, tgts)
    return [
        GehRow(t.name, t.hour, t.kind, t.count, float(sim_counts.get((t.name, t.hour), 0)),
               geh(sim_counts.get((t.name, t.hour), 0), t.count))
        for t in tgts
    ]


def _step(sim, begin: float, end: float, progress: bool) -> None:  # type: ignore[no-untyped-def]
    """Advance in 5-minute chunks with a progress bar."""
    from rich.progress import Progress

    chunks = [min(end, begin + 300 * k) for k in range(1, int((end - begin) // 300) + 2)]
    chunks = sorted(set(chunks))
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("simulating", total=len(chunks))
        for t in chunks:
            sim.step_until(t)
            bar.advance(task)


def report_markdown(rows: list[GehRow]) -> str:
    """The calibration table as Markdown, with the share of GEH < 5."""
    lines = ["| movement | hour | kind | count | modelled | GEH |", "| --- | --- | --- | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r.name} | {r.hour:02d}:00 | {r.kind} | {r.count:.0f} | {r.modelled:.0f} | {r.geh:.2f} |")
    for kind in ("count", "derived"):
        sel = [r for r in rows if r.kind == kind]
        if sel:
            ok = sum(r.geh < 5 for r in sel)
            lines.append(f"\n{kind}: GEH < 5 for {ok}/{len(sel)} ({100 * ok / len(sel):.0f} %)")
    if rows:
        ok = sum(r.geh < 5 for r in rows)
        lines.append(f"all: GEH < 5 for {ok}/{len(rows)} ({100 * ok / len(rows):.0f} %)")
    return "\n".join(lines) + "\n"
