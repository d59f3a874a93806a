"""Webster's method: offline plans from demand in a time window, and online per-cycle splits.

Webster (1958): with critical flow ratios ``y_k`` (flow / saturation flow of the most loaded
lane served by stage ``k``), ``Y = sum(y_k)`` and lost time ``L`` per cycle,

    C0 = (1.5 L + 5) / (1 - Y),      g_k = (C0 - L) * y_k / Y.

* :func:`lane_flows_from_demand` turns the scenario's route files (vehicles, trips, flows,
  routes, route distributions) into vehicles per hour on each controlled in-lane for a chosen
  window: each route's consecutive edge pairs are the turning movements it makes, and a
  turn's flow is shared evenly among the lanes that carry it.  Trips and flows given by
  ``from``/``to`` are routed on the fastest path of the empty network, as SUMO does.
* :func:`webster_plans` makes one :class:`~controllers.plan.TimingPlan` per signal, keeping the
  signal's stage structure (its program's green states) and replacing the greens.
* ``webster`` runs those plans as SUMO programs (native, like ``fixed-time``).
* ``webster-online`` drives the actuator with a plan clock per signal and recomputes the splits
  at every cycle boundary from stop-line counts measured over the last cycle (SUMO has no
  such program type).
* :func:`coordinate_corridor` is a plan transform: a common cycle along a corridor and offsets
  that give a green wave at a chosen progression speed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from controllers.base import ControllerBase, Decision
from controllers.native import NativeController
from sim.errors import WulinError

if TYPE_CHECKING:
    from controllers.plan import TimingPlan
    from sim.scenario import Scenario
    from sim.state import DistrictLayout, DistrictState
    from sim.topology import SignalSpec

SAT_FLOW = 1800.0  # veh/h of green per lane (HCM base; urban China often 1550-1650)


# ------------------------------------------------------------------ the formula
def webster_timing(
    y: Sequence[float], clearance: float, *, min_green: float = 5.0, min_cycle: float = 40.0,
    max_cycle: float = 180.0, y_cap: float = 0.9, startup_lost: float = 2.0,
) -> tuple[float, list[float]]:
    """Webster's cycle and greens for critical flow ratios ``y`` (one per stage).

    Args:
        y: Critical flow ratio of each stage.
        clearance: Yellow plus all-red after each stage, seconds.
        min_green: Smallest green, seconds.
        min_cycle: Smallest cycle, seconds.
        max_cycle: Largest cycle (also used when the intersection is oversaturated).
        y_cap: ``Y`` above this is treated as oversaturated (cycle = ``max_cycle``).
        startup_lost: Start-up lost time per stage, seconds (lost time = clearance - 1 s of
            yellow used + start-up, about 4 s per stage with 3+2 s clearance).

    Returns:
        ``(cycle, greens)`` with whole-second greens; ``cycle = sum(greens) + n * clearance``.
    """
    n = len(y)
    ys = np.maximum(np.asarray(y, dtype=np.float64), 0.0)
    lost = n * (clearance - 1.0 + startup_lost)
    big_y = float(ys.sum())
    if big_y <= 1e-9:  # no demand: the shortest cycle, equal greens
        ys, big_y = np.ones(n), float(n)
        c0 = min_cycle
    elif big_y >= y_cap:
        c0 = max_cycle
    else:
        c0 = (1.5 * lost + 5.0) / (1.0 - big_y)
    c0 = min(max(c0, min_cycle, n * (min_green + clearance)), max_cycle)
    effective = c0 - n * clearance
    greens = [max(min_green, float(round(effective * yk / big_y))) for yk in ys]
    return sum(greens) + n * clearance, greens


def stage_ratios(spec: SignalSpec, lane_flow: dict[str, float], sat_flow: float = SAT_FLOW
                 ) -> list[float]:
    """Critical flow ratio of each stage: the most loaded lane it serves.

    A lane served in several stages (a shared right turn, say) counts its flow divided among
    them, so a lane green all the time does not dictate every stage.
    """
    served = [set(spec.lanes_of_stage(k)) for k in range(spec.n_stages)]
    n_serving = {lane: sum(lane in s for s in served) for lane in spec.in_lanes}
    return [
        max((lane_flow.get(lane, 0.0) / n_serving[lane] / sat_flow for lane in served[k]),
            default=0.0)
        for k in range(spec.n_stages)
    ]


# ------------------------------------------------------------------ demand
def _window_share(begin: float, end: float, w0: float, w1: float) -> float:
    if end <= begin:
        return 1.0 if w0 <= begin < w1 else 0.0
    return max(0.0, min(end, w1) - max(begin, w0)) / (end - begin)


def _flow_count(el: Any, begin: float, end: float, where: str) -> float:
    """Expected number of vehicles a ``<flow>`` inserts between begin and end."""
    a = el.attrib
    dur = max(end - begin, 0.0)
    try:
        if "vehsPerHour" in a:
            return float(a["vehsPerHour"]) * dur / 3600.0
        if "period" in a:
            p = a["period"]
            if p.startswith("exp("):
                return float(p[4:-1]) * dur
            return dur / float(p) if float(p) > 0 else 0.0
        if "probability" in a:
            return float(a["probability"]) * dur
        if "number" in a:
            return float(a["number"])
    except ValueError:
        raise WulinError(f"{where}: flow {a.get('id')!r} has a rate that is not a number") from None
    raise WulinError(f"{where}: flow {a.get('id')!r} has no rate (vehsPerHour, period, "
                     "probability or number)")


def _route_edges(el: Any) -> list[str] | None:
    r = el.find("route")
    if r is not None and r.get("edges"):
        return r.get("edges").split()
    return None


def demand_routes(route_files: Iterable[Path], net: Any, window: tuple[float, float],
                  ) -> dict[tuple[str, ...], float]:
    """Vehicles per route (edge tuple) departing within ``window`` (seconds since midnight)."""
    import xml.etree.ElementTree as ET

    w0, w1 = window
    routes: dict[str, list[tuple[list[str], float]]] = {}
    out: dict[tuple[str, ...], float] = {}
    fastest: dict[tuple[str, str], list[str]] = {}

    def route_of(el: Any, where: str) -> list[tuple[list[str], float]]:
        edges = _route_edges(el)
        if edges:
            return [(edges, 1.0)]
        rid = el.get("route")
        if rid:
            if rid not in routes:
                raise WulinError(f"{where}: {el.tag} {el.get('id')!r} uses unknown route {rid!r}")
            return routes[rid]
        src, dst = el.get("from"), el.get("to")
        if src and dst:
            key = (src, dst)
            if key not in fastest:
                try:
                    path, _ = net.getFastestPath(net.getEdge(src), net.getEdge(dst))
                except KeyError as exc:
                    raise WulinError(f"{where}: {el.tag} {el.get('id')!r}: edge {exc} not in the network") from None
                fastest[key] = [e.getID() for e in path] if path else []
            return [(fastest[key], 1.0)] if fastest[key] else []
        return []

    def add(choices: list[tuple[list[str], float]], n: float) -> None:
        total = sum(p for _, p in choices) or 1.0
        for edges, p in choices:
            key = tuple(edges)
            out[key] = out.get(key, 0.0) + n * p / total

    for path in route_files:
        where = str(path)
        try:
            root = ET.parse(path).getroot()
        except (ET.ParseError, OSError) as exc:
            raise WulinError(f"{where}: cannot read route file ({exc})") from None
        for el in root:
            tag = el.tag
            if tag == "route" and el.get("id"):
                routes[el.get("id")] = [(el.get("edges", "").split(), 1.0)]
            elif tag == "routeDistribution" and el.get("id"):
                routes[el.get("id")] = [
                    ((r.get("edges") or "").split() or routes.get(r.get("refId", ""), [([], 0)])[0][0],
                     float(r.get("probability", 1.0)))
                    for r in el.findall("route")
                ]
            elif tag in ("vehicle", "trip"):
                dep = el.get("depart", "0")
                try:
                    t = float(dep)
                except ValueError:
                    continue  # "triggered" and friends: no fixed time
                if w0 <= t < w1:
                    add(route_of(el, where), 1.0)
            elif tag == "flow":
                b, e = float(el.get("begin", 0)), float(el.get("end", 86400))
                share = _window_share(b, e, w0, w1)
                if share > 0:
                    n = _flow_count(el, b, e, where) * share
                    add(route_of(el, where), n)
    return out


def lane_flows_from_demand(scenario: Scenario, layout: DistrictLayout,
                           window: tuple[float, float] | None = None, scale: float | None = None,
                           *, peak_minutes: float | None = None, left_pce: float = 1.0,
                           ) -> dict[str, float]:
    """Design flow (veh/h, in through-car equivalents) on every controlled in-lane.

    Args:
        scenario: Its network and route files.
        layout: The signals.
        window: ``(begin, end)`` seconds since midnight; default: the scenario's window.
        scale: Demand factor; default: the scenario's ``scale``.
        peak_minutes: Design on the busiest sub-window of this length inside the window (the
            peak-hour-factor practice: a plan sized on the window's average fails in its
            peak); ``None`` uses the window's average.
        left_pce: Through-car equivalents of a left turn that is never protected (a permitted
            left yields to opposing traffic).  2.0 is an engineering assumption in the range
            HCM's permitted-left equivalents span for moderate opposing flow.
    """
    import sumolib

    w = window or (scenario.begin, scenario.end)
    if not w[1] > w[0]:
        raise WulinError(f"window {w}: end must be after begin")
    net = sumolib.net.readNet(str(scenario.net_file))
    sc_scale = scenario.scale if scale is None else scale
    turn_lanes: dict[tuple[str, str], list[tuple[str, float]]] = {}
    for spec in layout.specs:
        never_protected = [all(st[mv.index] != "G" for st in spec.stages) for mv in spec.movements]
        for mv, perm in zip(spec.movements, never_protected, strict=True):
            lanes = turn_lanes.setdefault((mv.from_edge, mv.to_edge), [])
            if all(lane != mv.in_lane for lane, _ in lanes):
                lanes.append((mv.in_lane, left_pce if (mv.is_left and perm) else 1.0))
    if peak_minutes is None or peak_minutes * 60.0 >= w[1] - w[0]:
        subs = [w]
    else:
        step = peak_minutes * 60.0
        n = int((w[1] - w[0]) // step)
        subs = [(w[0] + i * step, w[0] + (i + 1) * step) for i in range(n)]
    best = {lane: 0.0 for lane in layout.in_lanes}
    for sub in subs:
        routes = demand_routes(scenario.route_files, net, sub)
        factor = sc_scale * 3600.0 / (sub[1] - sub[0])
        flows = {lane: 0.0 for lane in layout.in_lanes}
        for edges, n_veh in routes.items():
            for e1, e2 in zip(edges, edges[1:], strict=False):
                lanes = turn_lanes.get((e1, e2))
                if lanes:
                    for lane, pce in lanes:
                        flows[lane] += n_veh * factor * pce / len(lanes)
        for lane, f in flows.items():
            best[lane] = max(best[lane], f)
    return best


# ------------------------------------------------------------------ plans
def network_intergreen(spec: SignalSpec) -> tuple[float, float]:
    """``(yellow, all_red)`` of the signal's own program (mean per stage, as in its plan)."""
    from controllers.fixed_time import plan_from_spec

    base = plan_from_spec(spec)
    return float(base.yellow), float(base.all_red)


def webster_plan(spec: SignalSpec, lane_flow: dict[str, float], *, yellow: float | None = None,
                 all_red: float | None = None, min_green: float = 7.0, min_cycle: float = 40.0,
                 max_cycle: float = 150.0, sat_flow: float = SAT_FLOW, name: str = "webster",
                 cycle: float | None = None) -> TimingPlan:
    """A Webster plan for one signal (its program's stages, new cycle and greens).

    Webster retimes the cycle and the splits only: by default the intergreen (yellow and
    all-red) is the one the signal already has in the network's program, i.e. the field
    plan's, because clearance times come from approach speeds and intersection geometry,
    not from demand.  ``yellow`` / ``all_red`` override it.

    Args:
        yellow: Yellow seconds; default: the network program's.
        all_red: All-red seconds; default: the network program's.
        cycle: Force this cycle (a common cycle for coordination); greens keep Webster's ratios.
    """
    from controllers.fixed_time import plan_from_spec

    base = plan_from_spec(spec, min_green=min_green)
    yellow = float(base.yellow) if yellow is None else float(yellow)
    all_red = float(base.all_red) if all_red is None else float(all_red)
    if yellow <= 0 or all_red < 0:
        raise WulinError(f"webster plan for {spec.id!r}: need yellow > 0 and all_red >= 0 "
                         f"seconds, got yellow={yellow:g}, all_red={all_red:g}")
    y = stage_ratios(spec, lane_flow, sat_flow)
    # the plan's stages come from the program; map each to the spec's stage of the same state
    stage_y = []
    for st in base.stages:
        k = spec.stages.index(st.state) if st.state in spec.stages else -1
        stage_y.append(y[k] if k >= 0 else 0.0)
    clearance = yellow + all_red
    c, greens = webster_timing(stage_y, clearance, min_green=min_green, min_cycle=min_cycle,
                               max_cycle=max_cycle)
    if cycle is not None:
        greens = _scale_greens(stage_y, greens, cycle, clearance, min_green)
    from dataclasses import replace

    stages = tuple(replace(st, min_green=min(min_green, g), green=g)
                   for st, g in zip(base.stages, greens, strict=True))
    total = sum(greens) + len(greens) * clearance
    return replace(base, stages=stages, cycle=total, offset=0.0, yellow=yellow, all_red=all_red,
                   name=name, source="webster")


def _scale_greens(y: Sequence[float], greens: Sequence[float], cycle: float, clearance: float,
                  min_green: float) -> list[float]:
    n = len(greens)
    effective = cycle - n * clearance
    if effective < n * min_green:
        raise WulinError(f"cycle {cycle:g} s is too short for {n} stages of {min_green:g} s green")
    weights = np.asarray(y, dtype=float) if sum(y) > 0 else np.ones(n)
    raw = np.maximum(min_green, effective * weights / weights.sum())
    out = [float(math.floor(g)) for g in raw]
    # hand out the rounding remainder one second at a time to the largest fractions
    rest = int(round(effective - sum(out)))
    order = np.argsort(-(raw - np.floor(raw)))
    for i in range(abs(rest)):
        j = int(order[i % n])
        out[j] += 1.0 if rest > 0 else (-1.0 if out[j] > min_green else 0.0)
    return out


def webster_plans(scenario: Scenario, layout: DistrictLayout,
                  window: tuple[float, float] | None = None, *, common_cycle: bool = False,
                  progress: bool = False, **kwargs: Any) -> list[TimingPlan]:
    """One Webster plan per signal from the scenario's demand in ``window``."""
    from sim.scenario import format_clock

    w = window or (scenario.begin, scenario.end)
    flows = lane_flows_from_demand(scenario, layout, w)
    name = f"webster {format_clock(w[0])}-{format_clock(w[1])}"
    specs = layout.specs
    it: Iterable[Any] = specs
    if progress:
        from rich.progress import track

        it = track(specs, description="Webster plans", transient=True)
    plans = [webster_plan(spec, flows, name=name, **kwargs) for spec in it]
    if common_cycle and plans:
        c = max(p.cycle for p in plans)
        plans = [webster_plan(spec, flows, name=name, cycle=c, **kwargs) for spec in specs]
    return plans


def coordinate_corridor(plans: Sequence[TimingPlan], layout: DistrictLayout,
                        corridor: Sequence[str], speed_kmh: float = 40.0) -> list[TimingPlan]:
    """A green wave along ``corridor`` (signal ids in travel order) as a plan transform.

    All corridor signals get the longest of their cycles (greens rescaled in proportion), and
    offsets so that the stage serving the corridor direction starts when a vehicle at
    ``speed_kmh`` arrives from the previous signal.  Other plans are returned unchanged.

    Raises:
        WulinError: unknown signal, no plan for it, or no stage serving the corridor.
    """
    if speed_kmh <= 0:
        raise WulinError(f"corridor speed must be > 0 km/h, got {speed_kmh}")
    by_id = {p.signal_id: p for p in plans}
    for sid in corridor:
        if sid not in layout.index:
            raise WulinError(f"corridor: signal {sid!r} is not in the network")
        if sid not in by_id:
            raise WulinError(f"corridor: no plan given for signal {sid!r}")
    if len(corridor) < 2:
        return list(plans)
    cycle = max(by_id[s].cycle for s in corridor)
    v = speed_kmh / 3.6
    t_arrive = 0.0
    prev = None
    for sid in corridor:
        spec = layout.specs[layout.index[sid]]
        plan = by_id[sid]
        clearance = plan.yellow + plan.all_red
        if plan.cycle != cycle:
            greens = [s.green for s in plan.stages]
            plan = plan.with_splits(_scale_greens(greens, greens, cycle, clearance,
                                                  min(s.min_green for s in plan.stages)))
        if prev is not None:
            t_arrive += math.dist(prev.position, spec.position) / v
            moves = [mv for mv in spec.movements
                     if any(m2.to_edge == mv.from_edge for m2 in prev.movements)]
        else:
            nxt = layout.specs[layout.index[corridor[1]]]
            moves = [mv for mv in spec.movements
                     if any(m2.from_edge == mv.to_edge for m2 in nxt.movements)]
        k = _corridor_stage(plan, moves)
        if k < 0:
            raise WulinError(f"corridor: no stage of {sid!r} serves the corridor direction; are "
                             f"{', '.join(corridor)} adjacent and in travel order?")
        # offset = time in the cycle when stage 0 starts; stage k must start at t_arrive
        by_id[sid] = plan.with_offset((t_arrive - plan.stage_starts[k]) % cycle)
        prev = spec
    return [by_id[p.signal_id] for p in plans]


def _corridor_stage(plan: TimingPlan, moves: Sequence[Any]) -> int:
    """The stage serving the most through movements of ``moves`` (then any of them); -1 if none."""
    best, best_score = -1, (0, 0)
    for j, st in enumerate(plan.stages):
        through = sum(st.state[m.index] in "Gg" and m.direction == "s" for m in moves)
        anyg = sum(st.state[m.index] in "Gg" for m in moves)
        if (through, anyg) > best_score:
            best, best_score = j, (through, anyg)
    return best


class WebsterController(NativeController):
    """Offline Webster plans for a time window, run as SUMO static programs.

    Args:
        window: ``(begin, end)`` seconds or ``"07:00-09:00"``; default: the scenario's window.
        common_cycle: One cycle for all signals (the largest Webster cycle).
        corridor: Signal ids in travel order for a green wave (needs ``common_cycle``-like
            cycles; the transform equalises them along the corridor).
        speed_kmh: Progression speed of the green wave.
        **plan_params: ``yellow``, ``all_red`` (default: the network program's intergreen),
            ``min_green``, ``min_cycle``, ``max_cycle``,
            ``sat_flow``.
    """

    name = "webster"

    def __init__(self, window: str | tuple[float, float] | None = None,
                 common_cycle: bool = False, corridor: Sequence[str] = (),
                 speed_kmh: float = 40.0, decision_interval: float = 60.0,
                 **plan_params: float) -> None:
        self.window = parse_window(window) if window is not None else None
        self.common_cycle = common_cycle
        self.corridor = tuple(corridor)
        self.speed_kmh = speed_kmh
        self.plan_params = plan_params
        self.decision_interval = float(decision_interval)
        self.plans: list[TimingPlan] = []

    def make_plans(self, scenario: Scenario) -> list[TimingPlan]:
        plans = webster_plans(scenario, self.layout, self.window, common_cycle=self.common_cycle,
                              **self.plan_params)
        if self.corridor:
            plans = coordinate_corridor(plans, self.layout, self.corridor, self.speed_kmh)
        return plans

    def sumo_additional_files(self, scenario: Scenario, workdir: Path) -> list[Path]:
        from controllers.plan import plans_to_additional

        self.plans = self.make_plans(scenario)
        path = Path(workdir) / "wulin_webster.add.xml"
        path.write_text(plans_to_additional(self.plans, "wulin-webster"))
        return [path]


def parse_window(window: str | tuple[float, float]) -> tuple[float, float]:
    """``"07:00-09:00"`` or ``(25200, 32400)`` -> seconds since midnight."""
    from sim.scenario import parse_clock

    if isinstance(window, str):
        parts = window.split("-")
        if len(parts) != 2:
            raise WulinError(f"--window: expected HH:MM-HH:MM such as 07:00-09:00, got {window!r}")
        w = (parse_clock(parts[0], "--window start"), parse_clock(parts[1], "--window end"))
    else:
        w = (float(window[0]), float(window[1]))
    if not w[1] > w[0]:
        raise WulinError(f"--window: end must be after start, got {window!r}")
    return w


# ------------------------------------------------------------------ online
class OnlineWebsterController(ControllerBase):
    """Webster splits recomputed every cycle from flows measured at the stop lines.

    Each signal runs its own cycle clock through the actuator.  At every cycle boundary the
    vehicles counted per in-lane over the cycle (E1 loops at the stop line, added by the
    episode loop) are turned into flow ratios, smoothed, and Webster's formula gives the next
    cycle and greens.  Stage order is the program's.

    Args:
        yellow: Yellow seconds; default: each signal's own (its network program's).
        all_red: All-red seconds; default: each signal's own.
        min_green: Smallest green.
        min_cycle: Smallest cycle.
        max_cycle: Largest cycle.
        sat_flow: Saturation flow, veh/h of green per lane.
        smoothing: Weight of the newest cycle's flows (1 = no memory).
    """

    name = "webster-online"
    wants_lane_counts = True
    needs_state = False

    def __init__(self, yellow: float | None = None, all_red: float | None = None,
                 min_green: float = 7.0, min_cycle: float = 40.0, max_cycle: float = 150.0,
                 sat_flow: float = SAT_FLOW, smoothing: float = 0.5) -> None:
        if not 0 < smoothing <= 1:
            raise WulinError(f"webster-online: smoothing must be in (0, 1], got {smoothing}")
        if (yellow is not None and not yellow > 0) or (all_red is not None and not all_red >= 0):
            raise WulinError(f"webster-online: need yellow > 0 and all_red >= 0, got "
                             f"{yellow}, {all_red}")
        self.decision_interval = 1.0
        self.yellow_arg, self.all_red_arg = yellow, all_red
        self.min_green = float(min_green)
        self.min_cycle, self.max_cycle, self.sat_flow = float(min_cycle), float(max_cycle), sat_flow
        self.smoothing = smoothing
        self.actuator_params: dict[str, Any] = {}

    def reset(self, layout: DistrictLayout, seed: int) -> None:
        super().reset(layout, seed)
        n = layout.n_signals
        inter = [network_intergreen(spec) for spec in layout.specs]
        self.yellow = np.array([y if self.yellow_arg is None else float(self.yellow_arg)
                                for y, _ in inter])
        self.all_red = np.array([r if self.all_red_arg is None else float(self.all_red_arg)
                                 for _, r in inter])
        self.clearance = self.yellow + self.all_red
        # greens never shorter than the actuator's minimum, never capped below the plan
        self.actuator_params = {"yellow": self.yellow, "all_red": self.all_red,
                                "min_green": self.min_green, "max_green": self.max_cycle}
        self.counts = np.zeros(layout.n_in)
        self.counts_at = np.zeros(layout.n_in)
        self.flow = np.full(layout.n_in, np.nan)
        self.cycle_start = np.full(n, np.nan)
        self.greens: list[list[float]] = []
        for spec in layout.specs:
            g = [max(self.min_green, float(spec.phases[i].duration)) for i in spec.stage_phases]
            self.greens.append(g)
        self.cycles: list[tuple[float, float]] = []  # (time, cycle) of every recomputation
        self.k = np.zeros(n, dtype=np.int64)
        self.boundary = np.full(n, -np.inf)
        self.started = np.zeros(n, dtype=bool)
        self._keep = np.full(n, -1, dtype=np.int32)
        self._next = -np.inf

    def _read_counts(self, sl: slice) -> None:
        counter = getattr(self, "lane_counter", None)
        if counter is not None:  # without loops (check_controller) flows stay unmeasured
            self.counts[sl] = counter.read(sl)[sl]

    def _recompute(self, s: int, elapsed: float) -> None:
        lay = self.layout
        sl = lay.signal_slice(s)
        self._read_counts(sl)
        measured = (self.counts[sl] - self.counts_at[sl]) * 3600.0 / max(elapsed, 1.0)
        self.counts_at[sl] = self.counts[sl]
        old = self.flow[sl]
        a = self.smoothing
        self.flow[sl] = np.where(np.isnan(old), measured, a * measured + (1 - a) * old)
        spec = lay.specs[s]
        lane_flow = dict(zip(lay.in_lanes[sl], self.flow[sl].tolist(), strict=True))
        y = stage_ratios(spec, lane_flow, self.sat_flow)
        c, g = webster_timing(y, float(self.clearance[s]), min_green=self.min_green,
                              min_cycle=self.min_cycle, max_cycle=self.max_cycle)
        self.greens[s] = g
        self.cycles.append((elapsed, c))

    def act(self, state: DistrictState) -> Decision:
        t = float(state.time)
        out = self._keep
        if t + 1e-9 < self._next:  # no stage ends before the next step: nothing to ask
            return out.copy()
        out = out.copy()
        clearance = self.clearance
        for s in np.flatnonzero(self.boundary <= t + 1e-9):
            if np.isnan(self.cycle_start[s]):  # first call: start the cycle in stage 0
                sl = self.layout.signal_slice(s)
                self._read_counts(sl)
                self.counts_at[sl] = self.counts[sl]
                self.cycle_start[s] = t
                self.k[s] = 0
            else:
                self.k[s] += 1
                if self.k[s] >= len(self.greens[s]):  # cycle boundary: new splits
                    self._recompute(s, t - self.cycle_start[s])
                    self.cycle_start[s] = t
                    self.k[s] = 0
            k = int(self.k[s])
            # stage k is asked for at the end of the previous green; it gets the clearance
            # plus its green before the next stage is asked for
            self.boundary[s] = t + self.greens[s][k] + (clearance[s] if k or self.started[s] else 0.0)
            self.started[s] = True
            out[s] = k
        self._next = float(self.boundary.min())
        return out
