"""Plain-Python reference of the schedule-driven controller, per signal, from the signal specs.

It computes what :mod:`controllers.schedule_kernels` computes (jobs, clusters, the forward DP,
the stored schedules and the decisions) with dictionaries and tuples instead of flat arrays,
deriving every table (stage lanes, lane shares, feeds) from the
:class:`~sim.topology.SignalSpec` objects directly.  Tests check that both give the same
decisions and schedules on random states; ``benchmarks/bench_controllers.py`` reports the
kernel's speed-up over it.  Arithmetic follows the kernel's order; compiled code still
rounds a few sums differently (about 1e-9 s), so schedules agree within a relative 1e-6.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sim.state import DistrictLayout, DistrictState

INF = math.inf
EPS = 1e-9
SPACE = 7.5


@dataclass
class ReferenceMemory:
    """What the reference carries from one call to the next (the kernel's updated arrays)."""

    waited: dict[tuple[int, int], float] = field(default_factory=dict)
    clock: float = -INF
    blocks: dict[tuple[int, int], tuple[float, float]] = field(default_factory=dict)


def reference_params(controller: Any) -> dict[str, Any]:
    """A reset :class:`~controllers.schedule_driven.ScheduleDrivenController`'s parameters by
    name, as :func:`schedule_reference` takes them (``caps``: clusters per stage per signal)."""
    from controllers import schedule_kernels as sk

    names = {
        "horizon": sk.HORIZON,
        "headway": sk.HEADWAY,
        "startup": sk.STARTUP,
        "gap": sk.GAP,
        "span": sk.SPAN,
        "gain": sk.GAIN,
        "max_red": sk.MAX_RED,
        "min_green": sk.MIN_GREEN,
        "max_green": sk.MAX_GREEN,
        "slow": sk.SLOW,
    }
    p: dict[str, Any] = {name: float(controller.params[i]) for name, i in names.items()}
    p["caps"] = controller.caps
    return p


def _spread(row: list[float], t0: float, t1: float, n: float) -> None:
    if t1 - t0 < EPS:
        if 0 <= int(t0) < len(row):
            row[int(t0)] += n
        return
    rate = n / (t1 - t0)
    b = int(t0)
    while b < len(row) and b < t1:
        lo, hi = max(t0, float(b)), min(t1, float(b + 1))
        if hi > lo:
            row[b] += rate * (hi - lo)
        b += 1


def _lane_tables(layout: DistrictLayout) -> tuple[dict, dict]:
    """Per in-lane: ``{stage: share of its vehicles}`` (each movement's share split over the
    stages it is green in, none when green in all) and ``(length, speed limit)``."""
    shares: dict[str, dict[int, float]] = {}
    geometry = {}
    for spec in layout.specs:
        for mv in spec.movements:
            stages = [k for k in range(spec.n_stages) if spec.stages[k][mv.index] in "Gg"]
            fan = sum(1 for other in spec.movements if other.in_lane == mv.in_lane)
            lane = shares.setdefault(mv.in_lane, {})
            if 0 < len(stages) < spec.n_stages:  # green everywhere: served whatever happens
                for k in stages:
                    lane[k] = lane.get(k, 0.0) + 1.0 / fan / len(stages)
        for lane in spec.in_lanes:
            shares.setdefault(lane, {})
            geometry[lane] = (
                float(np.float32(spec.lane_lengths[lane])),
                float(spec.lane_speeds[lane]),
            )
    return shares, geometry


def _feeds(layout: DistrictLayout, geometry: dict) -> dict[str, list[tuple]]:
    """Per fed signal id: ``(upstream signal, upstream lane, link, fed lane, share, travel)``."""
    edge = {lane: lane.rsplit("_", 1)[0] for lane in layout.in_lanes}
    owner = {lane: spec.id for spec in layout.specs for lane in spec.in_lanes}
    out: dict[str, list[tuple]] = {spec.id: [] for spec in layout.specs}
    for spec in layout.specs:
        for mv in spec.movements:
            fed = [ln for ln in layout.in_lanes if edge[ln] == mv.out_lane.rsplit("_", 1)[0]]
            fan = sum(1 for m in spec.movements if m.in_lane == mv.in_lane)
            for ln in fed:
                if owner[ln] != spec.id:
                    length, vmax = geometry[ln]
                    out[owner[ln]].append(
                        (spec.id, mv.in_lane, mv.index, ln, 1.0 / fan / len(fed), length / vmax)
                    )
    return out


def _jobs(layout, state, s, spec, shares, geometry, feeds, memory, p, nb):  # type: ignore[no-untyped-def]
    """Queued vehicles, arrival bins and the lane loads per stage of signal ``s``."""
    pos = {lane: i for i, lane in enumerate(layout.in_lanes)}
    queued = [0.0] * spec.n_stages
    bins = [[0.0] * nb for _ in range(spec.n_stages)]
    load = [0.0] * spec.n_stages
    load2 = [0.0] * spec.n_stages
    for lane in spec.in_lanes:
        n = float(state.count[pos[lane]])
        if n <= 0:
            continue
        q = min(float(state.queue[pos[lane]]), n)
        length, vmax = geometry[lane]
        reach = 0.0
        if n - q > 0:
            vmax = max(vmax, 1.0)
            v_movers = float(state.speed[pos[lane]]) * n / (n - q)
            v = min(max(v_movers, p["slow"] * vmax), vmax)
            reach = max(length - q * SPACE, 0.0) / v
            if int(state.stage[s]) in shares[lane] and v_movers < p["slow"] * vmax:
                q = n  # discharging: still a queue
        for k, w in shares[lane].items():
            queued[k] += w * q
            load[k] += w * n
            load2[k] += (w * n) * (w * n)
            if n - q > 0:
                _spread(bins[k], 0.0, reach, w * (n - q))
    now = float(state.time)
    by_id = {sp.id: i for i, sp in enumerate(layout.specs)}
    for up, lane, link, fed, share, travel in feeds[spec.id]:
        n = float(state.count[pos[lane]]) * share
        a = by_id[up]
        planned = [
            memory.blocks.get((a, k), (INF, INF))
            for k in range(layout.specs[a].n_stages)
            if layout.specs[a].stages[k][link] in "Gg"
        ]
        if n <= 0 or not planned:
            continue
        bs, be = min(planned, key=lambda blk: blk[0]) if planned else (INF, INF)
        if bs == INF or be < now:
            continue
        for k, w in shares[fed].items():
            _spread(bins[k], max(bs - now, 0.0) + travel, max(be - now, 0.0) + travel, w * n)
    return queued, bins, load, load2


def _clusters(queued, bins, load, load2, n_lanes, cap, p):  # type: ignore[no-untyped-def]
    """Per stage: the list of clusters ``[a0, a1, n]`` and the headway per vehicle."""
    out, headway = [], []
    for k in range(len(queued)):
        eff = load[k] * load[k] / load2[k] if load2[k] > 0 else max(n_lanes[k], 1)
        headway.append(p["headway"] / min(max(eff, 1.0), max(n_lanes[k], 1)))
        cl = [[0.0, 0.0, queued[k]]] if queued[k] > 1e-6 else []
        last_b = -1
        for b, x in enumerate(bins[k]):
            if x <= 1e-6:
                continue
            if last_b < 0 or (
                len(cl) < cap and (b - last_b - 1 >= p["gap"] or b + 1 - cl[-1][0] > p["span"])
            ):
                if len(cl) < cap:
                    cl.append([float(b), 0.0, 0.0])
            cl[-1][2] += x
            cl[-1][1] = float(b + 1)
            last_b = b
        out.append(cl)
    return out, headway


def _serve(avail: float, a0: float, a1: float, n: float, h: float) -> tuple[float, float, float]:
    start = max(avail, a0)
    frac = (
        min(max((avail - a0) / (a1 - a0), 0.0), 1.0) if a1 > a0 else (1.0 if avail >= a0 else 0.0)
    )
    m = n * frac
    delay = m * (avail - 0.5 * (a0 + min(avail, a1))) + 0.5 * m * m * h if m > 0 else 0.0
    rest, late = n - m, (n - m) * h - (a1 - start)
    if rest > 0 and late > 0:
        delay += 0.5 * rest * late
    return start, max(start + n * h, a1), delay


def reference_dp(clusters, headway, cur, elapsed, switch, force, p):  # type: ignore[no-untyped-def]
    """The forward DP over tuples: ``{(served per stage, last stage): (delay, finish, green
    start, service start, first stage, parent key)}`` and the best complete key (or None)."""
    ns = len(clusters)
    sizes = [len(c) for c in clusters]
    table = {((0,) * ns, cur): (0.0, 0.0, -elapsed, 0.0, -1, None)}
    for rev in itertools.product(*[range(n + 1) for n in reversed(sizes)]):
        x = rev[::-1]
        for last in range(ns):
            rec = table.get((x, last))
            if rec is None:
                continue
            d0, f0, g0 = rec[0], rec[1], rec[2]
            for j in range(ns):
                if x[j] >= sizes[j] or (sum(x) == 0 and force >= 0 and j != force):
                    continue
                g = g0 if j == last else max(f0, g0 + p["min_green"]) + switch
                avail = f0 if j == last else g + p["startup"]
                a0, a1, n = clusters[j][x[j]]
                start, fin, delay = _serve(avail, a0, a1, n, headway[j])
                if j == last and start - g >= p["max_green"]:
                    continue
                key = (x[:j] + (x[j] + 1,) + x[j + 1 :], j)
                old = table.get(key)
                total = d0 + delay
                if (
                    old is None
                    or total < old[0] - EPS
                    or (abs(total - old[0]) <= EPS and fin < old[1] - EPS)
                ):
                    table[key] = (total, fin, g, start, j if sum(x) == 0 else rec[4], (x, last))
    full = tuple(sizes)
    ends = [(full, k) for k in range(ns) if (full, k) in table and sum(full) > 0]
    best = None
    for key in ends:
        if best is None or table[key][0] < table[best][0] - EPS:
            best = key
    return table, best


def _store(memory, s, ns, now, table, best) -> None:  # type: ignore[no-untyped-def]
    path = []
    key = best
    while key is not None and sum(key[0]) > 0:
        path.append(key)
        key = table[key][5]
    for k in range(ns):
        memory.blocks[(s, k)] = (INF, INF)
    prev, open_stage = -1, -1
    for key in reversed(path):
        k = key[1]
        if k != prev:
            open_stage = k if memory.blocks[(s, k)][0] == INF else -1
            if open_stage >= 0:
                memory.blocks[(s, k)] = (now + table[key][3], INF)
            prev = k
        if open_stage == k:
            memory.blocks[(s, k)] = (memory.blocks[(s, k)][0], now + table[key][1])


def schedule_reference(
    layout: DistrictLayout,
    state: DistrictState,
    p: dict[str, float],
    clearance: np.ndarray,
    memory: ReferenceMemory,
    neighbours: bool = True,
) -> np.ndarray:
    """The schedule-driven decisions for ``state`` (``p``: the controller's parameters by
    name, ``clusters`` as per-signal caps under ``caps``); updates ``memory``."""
    shares, geometry = _lane_tables(layout)
    feeds = _feeds(layout, geometry) if neighbours else {sp.id: [] for sp in layout.specs}
    now = float(state.time)
    dt = now - memory.clock if memory.clock > -INF else 0.0
    memory.clock = now
    out = np.full(layout.n_signals, -1, dtype=np.int32)
    for s, spec in enumerate(layout.specs):
        cur, elapsed = int(state.stage[s]), float(state.stage_time[s])
        for k in range(spec.n_stages):
            green = k == cur and not state.in_transition[s]
            memory.waited[(s, k)] = 0.0 if green else memory.waited.get((s, k), 0.0) + dt
        if state.in_transition[s] or spec.n_stages < 2 or elapsed < p["min_green"]:
            continue
        queued, bins, load, load2 = _jobs(
            layout, state, s, spec, shares, geometry, feeds, memory, p, int(p["horizon"])
        )
        n_lanes = [len(spec.lanes_of_stage(k)) for k in range(spec.n_stages)]
        clusters, headway = _clusters(queued, bins, load, load2, n_lanes, int(p["caps"][s]), p)
        table, best = reference_dp(clusters, headway, cur, elapsed, float(clearance[s]), -1, p)
        _store(memory, s, spec.n_stages, now, table, best)
        first, best_delay, keep_delay = -1, 0.0, INF
        if best is not None:
            first, best_delay = table[best][4], table[best][0]
        if (
            first >= 0
            and first != cur
            and clusters[cur]
            and p["gain"] > 0
            and elapsed >= p["min_green"]
        ):
            kept_table, kept = reference_dp(
                clusters, headway, cur, elapsed, float(clearance[s]), cur, p
            )
            if kept is not None:
                keep_delay = kept_table[kept][0]
                if keep_delay - best_delay < p["gain"]:
                    _store(memory, s, spec.n_stages, now, kept_table, kept)
        starved = [
            k
            for k in range(spec.n_stages)
            if k != cur
            and (queued[k] > 0.5 or clusters[k])
            and memory.waited[(s, k)] >= p["max_red"]
        ]
        if first >= 0 and first != cur and keep_delay - best_delay >= p["gain"]:
            out[s] = max(starved, key=lambda k: (memory.waited[(s, k)], -k)) if starved else first
    return out
