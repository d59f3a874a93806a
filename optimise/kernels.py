"""The macroscopic screen: a store-and-forward point-queue model of the network, compiled with Numba.

One call simulates the whole period for one candidate (a cycle, offset and greens per
signal) on the arrays of :class:`~optimise.model.NetworkModel`, a step of ``dt`` seconds:

1. **Signals**: each signal's running stage from ``(t - offset) mod cycle`` (stage ``k`` is
   green from its start for its green; yellow and all-red serve nobody).
2. **Entries**: each route's departures join its backlog; they enter while the first
   edge has room (else they wait outside, as SUMO's never-inserted vehicles do), and reach
   their first stop line after the free-flow time (a ring buffer of future arrivals).
3. **Arrivals** join their movement's queue; a vehicle arriving at red or behind a queue stops.
4. **Discharge**: a movement with green sends ``min(queue, saturation flow x dt)``, no more
   than the room left on its out-edge (spill-back: what is held back is counted as blocked),
   shared over its route positions in proportion (first come, first served on average).
5. Queued and waiting vehicles accumulate delay after the warm-up.

:func:`screen_reference` is the same model in plain Python, written for clarity with its own
data layout (dicts and lists); the tests hold the kernel to it.
"""

from __future__ import annotations

import math

import numba
import numpy as np

# indices of the result vector
DELAY, STOPS, BLOCKED, LEFT, DUE, FINISHED = range(6)
N_OUT = 6


@numba.njit(cache=True)
def _stages(t: float, cycle: np.ndarray, offset: np.ndarray, starts: np.ndarray,
            greens: np.ndarray, n_stages: np.ndarray, out: np.ndarray) -> None:
    for s in range(cycle.shape[0]):
        pos = (t - offset[s]) % cycle[s]
        out[s] = -1
        for k in range(n_stages[s]):
            if starts[s, k] <= pos < starts[s, k] + greens[s, k]:
                out[s] = k
                break


@numba.njit(cache=True)
def screen_kernel(begin: float, measure_from: float, end: float, dt: float, bin_len: float,
                  cycle: np.ndarray, offset: np.ndarray, starts: np.ndarray, greens: np.ndarray,
                  n_stages: np.ndarray, mv_sig: np.ndarray, mv_gf: np.ndarray, mv_cap: np.ndarray,
                  mv_from: np.ndarray, mv_down: np.ndarray, mv_ptr: np.ndarray, mv_pos: np.ndarray,
                  pos_mv: np.ndarray, pos_next: np.ndarray, pos_tt: np.ndarray,
                  pos_adjacent: np.ndarray, pos_counted: np.ndarray, route_first: np.ndarray,
                  route_tt0: np.ndarray,
                  route_entry: np.ndarray, demand: np.ndarray, storage: np.ndarray,
                  ring_len: int) -> np.ndarray:
    """Simulate one candidate; returns ``[delay veh-s, stops, blocked veh-s, left in queues at
    the end, vehicles due, vehicles through their last signal]`` (KPI window for the first
    three and the due count)."""
    n_m, n_p, n_r = mv_sig.shape[0], pos_mv.shape[0], route_first.shape[0]
    q = np.zeros(n_p)
    qm = np.zeros(n_m)
    occ = np.zeros(storage.shape[0])
    backlog = np.zeros(n_r)
    ring = np.zeros((ring_len, n_p))
    stage = np.zeros(cycle.shape[0], np.int64)
    res = np.zeros(N_OUT)
    n_steps = int(round((end - begin) / dt))
    n_bins = demand.shape[0]
    for step in range(n_steps):
        t = begin + step * dt
        meas = t >= measure_from
        _stages(t, cycle, offset, starts, greens, n_stages, stage)
        b = min(int((t - begin) // bin_len), n_bins - 1)
        slot = step % ring_len
        for r in range(n_r):  # entries
            d = demand[b, r] * dt
            backlog[r] += d
            if meas:
                res[DUE] += d
            ins = backlog[r]
            e = route_entry[r]
            if e >= 0:
                ins = min(ins, max(storage[e] - occ[e], 0.0))
                occ[e] += ins
            if ins > 0.0:
                backlog[r] -= ins
                ring[(step + route_tt0[r]) % ring_len, route_first[r]] += ins
        for p in range(n_p):  # arrivals
            a = ring[slot, p]
            if a > 0.0:
                ring[slot, p] = 0.0
                m = pos_mv[p]
                k = stage[mv_sig[m]]
                if meas and (k < 0 or mv_gf[m, k] == 0.0 or qm[m] > 1.0):
                    res[STOPS] += a
                q[p] += a
                qm[m] += a
                if not pos_counted[p]:  # came over unsignalised edges: takes room on arrival
                    occ[mv_from[m]] += a
        for m in range(n_m):  # discharge
            if qm[m] <= 1e-9:
                continue
            k = stage[mv_sig[m]]
            if k < 0 or mv_gf[m, k] == 0.0:
                continue
            out = min(qm[m], mv_gf[m, k] * mv_cap[m] * dt)
            e = mv_down[m]
            if e >= 0:
                room = max(storage[e] - occ[e], 0.0)
                if out > room:
                    if meas:
                        res[BLOCKED] += (out - room) * dt
                    out = room
            if out <= 0.0:
                continue
            frac = out / qm[m]
            for j in range(mv_ptr[m], mv_ptr[m + 1]):
                p = mv_pos[j]
                o = q[p] * frac
                q[p] -= o
                nx = pos_next[p]
                if nx >= 0:
                    ring[(step + pos_tt[p]) % ring_len, nx] += o
                    if pos_adjacent[p]:
                        occ[mv_down[m]] += o
                else:
                    res[FINISHED] += o
            qm[m] -= out
            occ[mv_from[m]] -= out
        if meas:
            waiting = 0.0
            for m in range(n_m):
                waiting += qm[m]
            for r in range(n_r):
                waiting += backlog[r]
            res[DELAY] += waiting * dt
    left = 0.0
    for m in range(n_m):
        left += qm[m]
    for r in range(n_r):
        left += backlog[r]
    res[LEFT] = left
    return res


def screen_reference(begin: float, measure_from: float, end: float, dt: float, bin_len: float,
                     signals: list[dict], movements: list[dict], routes: list[dict],
                     storage: dict[str, float]) -> list[float]:
    """The screen in plain Python (the kernel's reference).

    Args:
        signals: ``{"cycle", "offset", "greens": [..], "starts": [..]}`` per signal.
        movements: ``{"signal", "gf": [per stage], "cap", "from", "down" (edge or None)}``.
        routes: ``{"demand": [veh/s per bin], "tt0", "entry" (edge or None), "hops":
            [{"mv", "tt", "adjacent"}]}`` (``tt``: steps to the next hop).
        storage: Vehicles each edge holds.
    """
    res = [0.0] * N_OUT
    occ = dict.fromkeys(storage, 0.0)
    queue = [[0.0] * len(r["hops"]) for r in routes]  # per route, per hop
    backlog = [0.0] * len(routes)
    future: dict[int, list[tuple[int, int, float]]] = {}  # step -> (route, hop, vehicles)
    n_steps = int(round((end - begin) / dt))
    for step in range(n_steps):
        t = begin + step * dt
        meas = t >= measure_from
        stage = []
        for sg in signals:
            pos = math.fmod(t - sg["offset"], sg["cycle"])
            pos = pos + sg["cycle"] if pos < 0 else pos
            stage.append(next((k for k, (a, g) in enumerate(zip(sg["starts"], sg["greens"], strict=True))
                               if a <= pos < a + g), -1))

        def gf(m: int, stage: list[int] = stage) -> float:
            k = stage[movements[m]["signal"]]
            return 0.0 if k < 0 else movements[m]["gf"][k]

        def total(m: int) -> float:
            return sum(queue[r][h] for r, rt in enumerate(routes) for h, hop in enumerate(rt["hops"])
                       if hop["mv"] == m)

        b = min(int((t - begin) // bin_len), len(routes[0]["demand"]) - 1)
        for r, rt in enumerate(routes):
            d = rt["demand"][b] * dt
            backlog[r] += d
            res[DUE] += d if meas else 0.0
            ins = backlog[r]
            if rt["entry"] is not None:
                ins = min(ins, max(storage[rt["entry"]] - occ[rt["entry"]], 0.0))
                occ[rt["entry"]] += ins
            if ins > 0:
                backlog[r] -= ins
                future.setdefault(step + rt["tt0"], []).append((r, 0, ins))
        arrivals: dict[tuple[int, int], float] = {}
        for r, h, a in future.pop(step, []):
            arrivals[(r, h)] = arrivals.get((r, h), 0.0) + a
        for (r, h), a in sorted(arrivals.items(), key=lambda kv: (_pos_order(routes, *kv[0]))):
            m = routes[r]["hops"][h]["mv"]
            if meas and (gf(m) == 0.0 or total(m) > 1.0):
                res[STOPS] += a
            queue[r][h] += a
            counted = routes[r]["entry"] is not None if h == 0 else routes[r]["hops"][h - 1]["adjacent"]
            if not counted:
                occ[movements[m]["from"]] += a
        for m, mv in enumerate(movements):
            qm = total(m)
            if qm <= 1e-9 or gf(m) == 0.0:
                continue
            out = min(qm, gf(m) * mv["cap"] * dt)
            if mv["down"] is not None:
                room = max(storage[mv["down"]] - occ[mv["down"]], 0.0)
                if out > room:
                    res[BLOCKED] += (out - room) * dt if meas else 0.0
                    out = room
            if out <= 0:
                continue
            for r, rt in enumerate(routes):
                for h, hop in enumerate(rt["hops"]):
                    if hop["mv"] != m:
                        continue
                    o = queue[r][h] * out / qm
                    queue[r][h] -= o
                    if h + 1 < len(rt["hops"]):
                        future.setdefault(step + hop["tt"], []).append((r, h + 1, o))
                        if hop["adjacent"]:
                            occ[mv["down"]] += o
                    else:
                        res[FINISHED] += o
            occ[mv["from"]] -= out
        if meas:
            res[DELAY] += (sum(sum(x) for x in queue) + sum(backlog)) * dt
    res[LEFT] = sum(sum(x) for x in queue) + sum(backlog)
    return res


def _pos_order(routes: list[dict], r: int, h: int) -> int:
    """Arrivals are applied in route-position order, as the kernel does."""
    return sum(len(rt["hops"]) for rt in routes[:r]) + h


@numba.njit(cache=True, parallel=True)
def screen_batch(begin: float, measure_from: float, end: float, dt: float, bin_len: float,
                 cycle: np.ndarray, offset: np.ndarray, starts: np.ndarray, greens: np.ndarray,
                 n_stages: np.ndarray, mv_sig: np.ndarray, mv_gf: np.ndarray, mv_cap: np.ndarray,
                 mv_from: np.ndarray, mv_down: np.ndarray, mv_ptr: np.ndarray, mv_pos: np.ndarray,
                 pos_mv: np.ndarray, pos_next: np.ndarray, pos_tt: np.ndarray,
                 pos_adjacent: np.ndarray, pos_counted: np.ndarray, route_first: np.ndarray,
                 route_tt0: np.ndarray, route_entry: np.ndarray, demands: np.ndarray,
                 storage: np.ndarray, ring_len: int) -> np.ndarray:
    """:func:`screen_kernel` for ``C`` candidates (``cycle[C, S]``...) x ``D`` demand draws
    (``demands[D, B, R]``), in parallel threads; returns ``[C, D, N_OUT]``."""
    n_c, n_d = cycle.shape[0], demands.shape[0]
    out = np.zeros((n_c, n_d, N_OUT))
    for job in numba.prange(n_c * n_d):
        c, d = job // n_d, job % n_d
        out[c, d] = screen_kernel(begin, measure_from, end, dt, bin_len, cycle[c], offset[c], starts[c],
                                  greens[c], n_stages, mv_sig, mv_gf, mv_cap, mv_from, mv_down, mv_ptr,
                                  mv_pos, pos_mv, pos_next, pos_tt, pos_adjacent, pos_counted,
                                  route_first, route_tt0, route_entry, demands[d], storage, ring_len)
    return out
