"""The network as flat arrays for the macroscopic screen (:mod:`optimise.kernels`).

Built from the ``.net.xml`` (sumolib: edge lengths, lanes, speeds), the signals' topology
(:mod:`sim.topology`: which links each movement uses) and the scenario's routes
(:func:`sim.demand.demand_routes`, in 15-minute bins over the period's simulation).

* A **movement** is one turn (in-edge -> out-edge) at a signal: a point queue discharging at
  the saturation flow of the lanes it uses (a lane shared by several turns counted shared),
  when one of its links is green in the running stage (permitted green, ``g``, at a reduced
  rate).  Its queue sits on its in-edge, whose storage (lane metres / jam spacing) limits
  what upstream movements and entering vehicles may send onto it: queues spill back.
* A **route position** is a route's visit to a movement: vehicles keep their route, so turning
  shares come from the demand itself, not from fixed ratios.  Between two signals vehicles
  travel at free-flow speed (a delay line).

Time loss is the queued vehicle-seconds (and the wait of vehicles not yet let in) plus a fixed
acceleration loss per stop; it is computed for vehicles due after the warm-up, like the KPI
registry's (:mod:`sim.kpi_registry`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sim.errors import WulinError

if TYPE_CHECKING:
    from controllers.plan import TimingPlan
    from optimise.periods import Period
    from sim.scenario import Scenario
    from sim.topology import SignalSpec

SAT_FLOW = 1800.0  # veh/h of green per lane (controllers.webster's value)
PERMITTED = 0.5  # share of saturation flow a permitted (g) turn gets
JAM_SPACING = 7.5  # metres of lane per queued vehicle
BIN = 900.0  # seconds per demand bin


@dataclass(frozen=True)
class NetworkModel:
    """Arrays of the screen.  ``S`` signals, ``K`` most stages, ``M`` movements, ``P`` route
    positions, ``R`` routes, ``E`` edges, ``B`` demand bins.

    Attributes:
        signal_ids: Signal ids, in plan order.
        mv_sig: Signal of each movement (M).
        mv_gf: Discharge factor per plan stage (M, K): 1 protected, PERMITTED, 0 red.
        mv_cap: Saturation flow, veh/s (M).
        mv_from: In-edge index (M).
        mv_down: Out-edge index when it is another movement's in-edge, else -1 (M).
        mv_ptr: Route positions of movement m are ``mv_pos[mv_ptr[m]:mv_ptr[m+1]]`` (M+1).
        mv_pos: Route-position indices grouped by movement.
        pos_mv: Movement of each route position (P).
        pos_next: Next route position of the same route, -1 after the last (P).
        pos_tt: Free-flow steps to the next route position (P).
        pos_adjacent: True when the next position's queue is on this movement's out-edge (P).
        pos_counted: True when vehicles take room on this position's edge before they arrive
            (they enter it from the previous signal or depart on it), else on arrival (P).
        route_first: First route position of each route (R).
        route_tt0: Free-flow steps from departure to the first stop line (R).
        route_entry: Edge whose storage limits insertion (the first queue's edge when the
            route starts on it), else -1 (R).
        demand: Vehicles departing per second per route in each bin (B, R).
        edge_storage: Vehicles an edge holds (E).
        edge_ids: Edge ids (E).
        begin: Simulation start (seconds since midnight).
        measure_from: Start of the KPI window.
        end: Simulation end.
        n_other: Vehicles per second (mean) on routes that cross no signal (counted as due).
    """

    signal_ids: tuple[str, ...]
    mv_sig: np.ndarray
    mv_gf: np.ndarray
    mv_cap: np.ndarray
    mv_from: np.ndarray
    mv_down: np.ndarray
    mv_ptr: np.ndarray
    mv_pos: np.ndarray
    pos_mv: np.ndarray
    pos_next: np.ndarray
    pos_tt: np.ndarray
    pos_adjacent: np.ndarray
    pos_counted: np.ndarray
    route_first: np.ndarray
    route_tt0: np.ndarray
    route_entry: np.ndarray
    demand: np.ndarray
    edge_storage: np.ndarray
    edge_ids: tuple[str, ...]
    begin: float
    measure_from: float
    end: float
    n_other: float

    @property
    def n_routes(self) -> int:
        return len(self.route_first)

    @property
    def ring(self) -> int:
        """Length of the delay-line ring: the longest free-flow hop plus one step."""
        return int(max(self.pos_tt.max(initial=1), self.route_tt0.max(initial=1))) + 1


@dataclass(frozen=True)
class _Turn:
    signal: int
    from_edge: str
    to_edge: str
    links: tuple[int, ...]
    lanes: tuple[str, ...]


def _turns(specs: list[SignalSpec]) -> list[_Turn]:
    turns: list[_Turn] = []
    for s, spec in enumerate(specs):
        groups: dict[tuple[str, str], tuple[list[int], list[str]]] = {}
        for mv in spec.movements:
            links, lanes = groups.setdefault((mv.from_edge, mv.to_edge), ([], []))
            links.append(mv.index)
            if mv.in_lane not in lanes:
                lanes.append(mv.in_lane)
        turns += [_Turn(s, a, b, tuple(li), tuple(la)) for (a, b), (li, la) in groups.items()]
    return turns


def _capacity(turns: list[_Turn], flow: np.ndarray, sat_flow: float) -> np.ndarray:
    """Saturation flow of each turn: a lane shared by several turns gives each the share of its
    flow that turn brings (its flow spread evenly over its lanes); evenly when none flows."""
    on_lane: dict[str, float] = {}
    users: dict[str, int] = {}
    for t, f in zip(turns, flow, strict=True):
        for lane in t.lanes:
            on_lane[lane] = on_lane.get(lane, 0.0) + f / len(t.lanes)
            users[lane] = users.get(lane, 0) + 1
    cap = sat_flow / 3600.0
    return np.array([sum(cap * (f / len(t.lanes) / on_lane[la] if on_lane[la] > 0 else 1.0 / users[la])
                         for la in t.lanes) for t, f in zip(turns, flow, strict=True)])


def _green_factors(turns: list[_Turn], plans: list[TimingPlan], k_max: int) -> np.ndarray:
    gf = np.zeros((len(turns), k_max))
    for m, t in enumerate(turns):
        for k, st in enumerate(plans[t.signal].stages):
            chars = {st.state[i] for i in t.links if i < len(st.state)}
            gf[m, k] = 1.0 if "G" in chars else (PERMITTED if "g" in chars else 0.0)
    return gf


def build_model(scenario: Scenario, period: Period, specs: list[SignalSpec],
                plans: list[TimingPlan], *, sat_flow: float = SAT_FLOW, dt: float = 1.0) -> NetworkModel:
    """The screen's arrays for ``period`` of ``scenario``.

    Args:
        scenario: Network and routes.
        period: The period (simulated from its ``sim_begin``).
        specs: The signals, in the order of ``plans``.
        plans: One plan per signal, giving each its stages (their green states).
        sat_flow: Saturation flow per lane, veh/h.
        dt: Step of the screen, seconds.
    """
    import sumolib

    from sim.demand import demand_routes

    net = sumolib.net.readNet(str(scenario.net_file))
    turns = _turns(specs)
    k_max = max(len(p.stages) for p in plans)
    edge_ids = sorted({e.getID() for e in net.getEdges()})
    eidx = {e: i for i, e in enumerate(edge_ids)}
    storage = np.array([max(1.0, sum(la.getLength() for la in net.getEdge(e).getLanes()) / JAM_SPACING)
                        for e in edge_ids])
    fftime = {e: net.getEdge(e).getLength() / max(net.getEdge(e).getSpeed(), 1.0) for e in edge_ids}
    by_turn = {(t.from_edge, t.to_edge): m for m, t in enumerate(turns)}
    approach = {t.from_edge for t in turns}
    # demand per route and bin
    bins = np.arange(period.sim_begin, period.end, BIN)
    per_bin = [demand_routes(scenario.route_files, net, (b, min(b + BIN, period.end))) for b in bins]
    routes = sorted({r for d in per_bin for r in d})
    pos_mv: list[int] = []
    pos_next: list[int] = []
    pos_tt: list[int] = []
    pos_adj: list[bool] = []
    pos_counted: list[bool] = []
    pos_route: list[int] = []
    r_first, r_tt0, r_entry, kept = [], [], [], []
    other = 0.0
    for ri, edges in enumerate(routes):
        hops = [(i, by_turn[(a, b)]) for i, (a, b) in enumerate(zip(edges, edges[1:], strict=False))
                if (a, b) in by_turn]
        if not hops or any(e not in eidx for e in edges):
            other += sum(d.get(edges, 0.0) for d in per_bin)
            continue
        kept.append(ri)
        first = len(pos_mv)
        r_first.append(first)
        r_tt0.append(max(1, round(sum(fftime[e] for e in edges[: hops[0][0] + 1]) / dt)))
        r_entry.append(eidx[edges[0]] if hops[0][0] == 0 else -1)
        for j, (i, m) in enumerate(hops):
            pos_counted.append(i == 0 if j == 0 else pos_adj[-1])
            pos_route.append(len(kept) - 1)
            pos_mv.append(m)
            if j + 1 < len(hops):
                i2 = hops[j + 1][0]
                pos_next.append(len(pos_mv))
                pos_tt.append(max(1, round(sum(fftime[e] for e in edges[i + 1: i2 + 1]) / dt)))
                pos_adj.append(i2 == i + 1)
            else:
                pos_next.append(-1)
                pos_tt.append(1)
                pos_adj.append(False)
    if not kept:
        raise WulinError(f"scenario {scenario.id}: no route in {period.label} crosses a signal; "
                         "there is nothing to optimise")
    scale = scenario.scale
    demand = np.array([[d.get(routes[ri], 0.0) * scale / (min(b + BIN, period.end) - b) for ri in kept]
                       for d, b in zip(per_bin, bins, strict=True)])
    mv_pos_lists: list[list[int]] = [[] for _ in turns]
    for p, m in enumerate(pos_mv):
        mv_pos_lists[m].append(p)
    mv_ptr = np.cumsum([0] + [len(x) for x in mv_pos_lists]).astype(np.int64)
    return NetworkModel(
        signal_ids=tuple(sp.id for sp in specs),
        mv_sig=np.array([t.signal for t in turns], np.int64),
        mv_gf=_green_factors(turns, plans, k_max),
        mv_cap=_capacity(turns, np.bincount(pos_mv, weights=demand.mean(axis=0)[pos_route],
                                            minlength=len(turns)), sat_flow),
        mv_from=np.array([eidx[t.from_edge] for t in turns], np.int64),
        mv_down=np.array([eidx[t.to_edge] if t.to_edge in approach else -1 for t in turns], np.int64),
        mv_ptr=mv_ptr,
        mv_pos=np.array([p for x in mv_pos_lists for p in x], np.int64),
        pos_mv=np.array(pos_mv, np.int64), pos_next=np.array(pos_next, np.int64),
        pos_tt=np.array(pos_tt, np.int64), pos_adjacent=np.array(pos_adj, np.bool_),
        pos_counted=np.array(pos_counted, np.bool_),
        route_first=np.array(r_first, np.int64), route_tt0=np.array(r_tt0, np.int64),
        route_entry=np.array(r_entry, np.int64), demand=demand, edge_storage=storage,
        edge_ids=tuple(edge_ids), begin=period.sim_begin, measure_from=period.start,
        end=period.end, n_other=other * scale / max(period.end - period.sim_begin, 1.0),
    )
