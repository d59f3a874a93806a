"""Array kernels batched over all signals, compiled with ``numba.njit(cache=True)`` on demand.

Each kernel is written once as a plain loop over the flat :class:`~sim.state.DistrictLayout`
arrays (``*_loop``); :func:`jitted` compiles it with Numba the first time a controller asks
for it, so importing this module (or ``controllers.base``) never imports numba.  With
``NUMBA_DISABLE_JIT=1`` the same loops run as Python.

Independent reference implementations (``*_reference``) compute the same decisions per
signal from the :class:`~sim.topology.SignalSpec` objects in straightforward Python; tests
check kernel == reference on random inputs, and ``benchmarks/bench_controllers.py`` reports
the kernel's speed-up over them.

This module imports no controller: warming the kernels up before workers start is driven by
the controller registry (:func:`controllers.base.warm_up_kernels`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sim.state import DistrictLayout, DistrictState

_JITTED: dict[str, Callable[..., Any]] = {}


# ------------------------------------------------------------------ max-pressure
def max_pressure_loop(
    count: np.ndarray,        # float32 [n_in]   vehicles per in-lane
    out_count: np.ndarray,    # float32 [n_out]  vehicles per out-lane
    mov_ptr: np.ndarray,      # int32 [n_sig+1]
    mov_in: np.ndarray,       # int32 [n_mov]
    mov_out: np.ndarray,      # int32 [n_mov]
    mov_link: np.ndarray,     # int32 [n_mov]
    w_in: np.ndarray,         # float64 [n_mov]  share of the in-lane's vehicles per movement
    w_out: np.ndarray,        # float64 [n_mov]  share of the out-lane's vehicles per movement
    stage_green: np.ndarray,  # bool [n_sig, max_stages, max_links]
    n_stages: np.ndarray,     # int32 [n_sig]
    stage: np.ndarray,        # int32 [n_sig] current stage
    in_transition: np.ndarray,  # bool [n_sig]
    waited: np.ndarray,       # float64 [n_sig, max_stages] s since each stage was green (updated)
    dt: float,                # seconds since the previous call
    max_red: float,           # a stage with vehicles red this long goes first (inf: never)
    out: np.ndarray,          # int32 [n_sig] decision (written)
) -> None:
    """Varaiya's max-pressure: serve the stage with the largest sum of movement pressures.

    Movement pressure = vehicles upstream (in-lane count shared among the lane's movements)
    minus vehicles downstream (out-lane count shared among the movements feeding it).
    Ties keep the current stage; signals in transition keep their request (-1).  With a finite
    ``max_red``, a stage whose movements have vehicles waiting and that has not been green
    for ``max_red`` seconds is served first (the longest-waiting such stage): pure pressure
    can hold a lightly used stage, a protected left turn say, at red indefinitely.
    """
    n_sig = n_stages.shape[0]
    pressure = np.zeros(stage_green.shape[1], dtype=np.float64)
    demand = np.zeros(stage_green.shape[1], dtype=np.float64)
    for s in range(n_sig):
        ns = n_stages[s]
        cur = stage[s]
        for k in range(ns):
            if k == cur and not in_transition[s]:
                waited[s, k] = 0.0
            else:
                waited[s, k] += dt
        if in_transition[s]:
            out[s] = -1
            continue
        for k in range(ns):
            pressure[k] = 0.0
            demand[k] = 0.0
        for m in range(mov_ptr[s], mov_ptr[s + 1]):
            up = count[mov_in[m]] * w_in[m]
            p = up - out_count[mov_out[m]] * w_out[m]
            link = mov_link[m]
            for k in range(ns):
                if stage_green[s, k, link]:
                    pressure[k] += p
                    demand[k] += up
        best = cur
        best_p = pressure[cur]
        for k in range(ns):
            if pressure[k] > best_p + 1e-9:
                best = k
                best_p = pressure[k]
        longest = -1.0
        for k in range(ns):
            if k != cur and demand[k] > 0.0 and waited[s, k] >= max_red \
                    and waited[s, k] > longest:
                best = k
                longest = waited[s, k]
        out[s] = -1 if best == cur else best


def movement_weights(layout: DistrictLayout) -> tuple[np.ndarray, np.ndarray]:
    """Per movement: 1 / (movements leaving its in-lane), 1 / (movements entering its out-lane)."""
    fan_out = np.bincount(layout.mov_in, minlength=layout.n_in).astype(np.float64)
    fan_in = np.bincount(layout.mov_out, minlength=layout.n_out).astype(np.float64)
    return 1.0 / fan_out[layout.mov_in], 1.0 / fan_in[layout.mov_out]


def max_pressure_reference(layout: DistrictLayout, state: DistrictState,
                           waited: np.ndarray | None = None, dt: float = 0.0,
                           max_red: float = float("inf")) -> np.ndarray:
    """Max-pressure decisions computed per signal from the specs (plain Python); ``waited``
    (seconds since each stage was green, updated in place) and ``max_red`` as in the kernel."""
    out = np.full(layout.n_signals, -1, dtype=np.int32)
    in_pos = {lane: i for i, lane in enumerate(layout.in_lanes)}
    for s, spec in enumerate(layout.specs):
        if waited is not None:
            for k in range(spec.n_stages):
                green_now = k == int(state.stage[s]) and not state.in_transition[s]
                waited[s, k] = 0.0 if green_now else waited[s, k] + dt
        if state.in_transition[s]:
            continue
        lo, hi = int(layout.out_ptr[s]), int(layout.out_ptr[s + 1])
        out_pos = {lane: lo + i for i, lane in enumerate(layout.out_lanes[lo:hi])}
        lane_i = in_pos  # in-lanes are unique across signals
        fan_out: dict[str, int] = {}
        fan_in: dict[str, int] = {}
        for mv in spec.movements:
            fan_out[mv.in_lane] = fan_out.get(mv.in_lane, 0) + 1
            fan_in[mv.out_lane] = fan_in.get(mv.out_lane, 0) + 1
        pressures, demands = [], []
        for k in range(spec.n_stages):
            total = upstream = 0.0
            for i in spec.stage_links(k):
                mv = spec.link_movement[i]
                upstream += float(state.count[lane_i[mv.in_lane]]) / fan_out[mv.in_lane]
                total += float(state.count[lane_i[mv.in_lane]]) / fan_out[mv.in_lane]
                total -= float(state.out_count[out_pos[mv.out_lane]]) / fan_in[mv.out_lane]
            pressures.append(total)
            demands.append(upstream)
        cur = int(state.stage[s])
        best = cur
        for k in range(spec.n_stages):
            if pressures[k] > pressures[best] + 1e-9:
                best = k
        if waited is not None:  # the longest-waiting stage with vehicles, red >= max_red
            starved = [k for k in range(spec.n_stages)
                       if k != cur and demands[k] > 0 and waited[s, k] >= max_red]
            if starved:
                best = max(starved, key=lambda k: (waited[s, k], -k))
        if best != cur:
            out[s] = best
    return out


# ------------------------------------------------------------------ SOTL
def sotl_loop(
    count: np.ndarray,        # float32 [n_in]
    in_ptr: np.ndarray,       # int32 [n_sig+1]
    lane_stage: np.ndarray,   # bool [n_in, max_stages] lane has a green link in the stage
    n_stages: np.ndarray,     # int32 [n_sig]
    stage: np.ndarray,        # int32 [n_sig]
    stage_time: np.ndarray,   # float32 [n_sig]
    in_transition: np.ndarray,  # bool [n_sig]
    kappa: np.ndarray,        # float64 [n_sig] accumulated red demand, vehicle-seconds (updated)
    last_stage: np.ndarray,   # int32 [n_sig] stage at the previous call (updated)
    dt: float,
    theta: float,
    phi_min: float,
    mu: float,
    out: np.ndarray,          # int32 [n_sig] decision (written)
) -> None:
    """Gershenson's self-organising traffic lights (SOTL-platoon), batched.

    Per signal, vehicles waiting at red accumulate into ``kappa`` (vehicle-seconds).  Once
    the stage has had ``phi_min`` seconds of green and ``kappa >= theta``, the signal moves to
    the next stage (cycle order) that has demand, unless a short platoon (``0 < n <= mu``
    vehicles) is still being served.  With no demand at green and some at red it moves at once.
    """
    n_sig = n_stages.shape[0]
    for s in range(n_sig):
        out[s] = -1
        cur = stage[s]
        if cur != last_stage[s]:
            kappa[s] = 0.0
            last_stage[s] = cur
        if in_transition[s] or n_stages[s] < 2:
            continue
        green_n = 0.0
        red_n = 0.0
        for i in range(in_ptr[s], in_ptr[s + 1]):
            if lane_stage[i, cur]:
                green_n += count[i]
            else:
                red_n += count[i]
        kappa[s] += red_n * dt
        if stage_time[s] < phi_min or red_n <= 0.0:
            continue
        if kappa[s] < theta and green_n > 0.0:
            continue
        if 0.0 < green_n <= mu and kappa[s] < 2.0 * theta:
            continue  # let a short platoon pass, unless the red side has waited twice as long
        ns = n_stages[s]
        nxt = (cur + 1) % ns
        for j in range(1, ns):
            k = (cur + j) % ns
            demand = 0.0
            for i in range(in_ptr[s], in_ptr[s + 1]):
                if lane_stage[i, k] and not lane_stage[i, cur]:
                    demand += count[i]
            if demand > 0.0:
                nxt = k
                break
        out[s] = nxt
        kappa[s] = 0.0


def lane_stage_matrix(layout: DistrictLayout) -> np.ndarray:
    """``[in_lane, stage]`` True when one of the lane's links is green in the stage."""
    m = np.zeros((layout.n_in, max(int(layout.n_stages.max(initial=1)), 1)), dtype=np.bool_)
    for mv in range(layout.n_movements):
        s = int(np.searchsorted(layout.mov_ptr, mv, side="right") - 1)
        m[layout.mov_in[mv], :] |= layout.stage_green[s, :, layout.mov_link[mv]][: m.shape[1]]
    return m


def sotl_reference(
    layout: DistrictLayout,
    state: DistrictState,
    kappa: np.ndarray,
    last_stage: np.ndarray,
    dt: float,
    theta: float,
    phi_min: float,
    mu: float,
) -> np.ndarray:
    """SOTL decisions per signal from the specs (plain Python); updates kappa/last_stage."""
    out = np.full(layout.n_signals, -1, dtype=np.int32)
    in_pos = {lane: i for i, lane in enumerate(layout.in_lanes)}
    for s, spec in enumerate(layout.specs):
        cur = int(state.stage[s])
        if cur != last_stage[s]:
            kappa[s] = 0.0
            last_stage[s] = cur
        if state.in_transition[s] or spec.n_stages < 2:
            continue
        served = [set(spec.lanes_of_stage(k)) for k in range(spec.n_stages)]
        counts = {lane: float(state.count[in_pos[lane]]) for lane in spec.in_lanes}
        green_n = sum(c for lane, c in counts.items() if lane in served[cur])
        red_n = sum(c for lane, c in counts.items() if lane not in served[cur])
        kappa[s] += red_n * dt
        if state.stage_time[s] < phi_min or red_n <= 0:
            continue
        if kappa[s] < theta and green_n > 0:
            continue
        if 0 < green_n <= mu and kappa[s] < 2 * theta:
            continue
        order = [(cur + j) % spec.n_stages for j in range(1, spec.n_stages)]
        with_demand = [k for k in order
                       if sum(counts[lane] for lane in served[k] - served[cur]) > 0]
        out[s] = with_demand[0] if with_demand else order[0]
        kappa[s] = 0.0
    return out


# ------------------------------------------------------------------ webster-online
def webster_online_loop(
    s: int,                   # the signal whose cycle ends
    elapsed: float,           # seconds since its cycle began
    counts: np.ndarray,       # float64 [n_in] cumulative stop-line counts (read just now)
    counts_at: np.ndarray,    # float64 [n_in] counts at the cycle's start (updated)
    flow: np.ndarray,         # float64 [n_in] smoothed flow, veh/h (NaN: unmeasured; updated)
    n_serving: np.ndarray,    # float64 [n_in] stages serving each lane (>= 1)
    in_ptr: np.ndarray,       # int [n_sig+1]
    stage_ptr: np.ndarray,    # int64 [n_sig+1] first row of each signal's stages
    lane_ptr: np.ndarray,     # int64 [n_rows+1] first entry of each stage's lanes
    lanes: np.ndarray,        # int64 in-lanes (global) each stage serves
    clearance: float,         # yellow + all-red of signal s
    min_green: float,
    min_cycle: float,
    max_cycle: float,
    sat_flow: float,          # veh/h of green per lane
    smoothing: float,         # weight of the newest cycle's flows
    greens: np.ndarray,       # float64 [>= n_stages] greens of the next cycle (written)
) -> float:
    """Webster-online's cycle boundary for one signal: measured flows -> next cycle's greens.

    Updates the smoothed lane flows from the counts over the cycle just ended, takes each
    stage's critical flow ratio, and applies Webster's formula with the same operations in
    the same order as ``controllers.webster.webster_timing`` (its sum too: sequential below 8
    stages, numpy's pairwise unrolling from 8), so the greens are bit-identical.  Returns
    the cycle length.
    """
    lo = in_ptr[s]
    hi = in_ptr[s + 1]
    scale = elapsed if elapsed >= 1.0 else 1.0
    b = 1 - smoothing
    for i in range(lo, hi):
        c = counts[i]
        measured = (c - counts_at[i]) * 3600.0 / scale
        old = flow[i]
        flow[i] = measured if np.isnan(old) else smoothing * measured + b * old
        counts_at[i] = c
    r0 = stage_ptr[s]
    n = stage_ptr[s + 1] - r0
    for k in range(n):  # critical flow ratio per stage, clipped at 0
        y = 0.0
        for j in range(lane_ptr[r0 + k], lane_ptr[r0 + k + 1]):
            ln = lanes[j]
            v = flow[ln] / n_serving[ln] / sat_flow
            if j == lane_ptr[r0 + k] or v > y:
                y = v
        greens[k] = 0.0 if 0.0 > y else y
    lost = n * (clearance - 1.0 + 2.0)  # startup lost time 2 s per stage
    big_y = 0.0
    if n < 8:
        for k in range(n):
            big_y += greens[k]
    else:  # numpy's pairwise sum for 8..128 values: eight partial sums, then the rest
        p = np.empty(8)
        for j in range(8):
            p[j] = greens[j]
        i = 8
        while i + 8 <= n:
            for j in range(8):
                p[j] += greens[i + j]
            i += 8
        big_y = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]))
        while i < n:
            big_y += greens[i]
            i += 1
    if big_y <= 1e-9:  # no demand: the shortest cycle, equal greens
        for k in range(n):
            greens[k] = 1.0
        big_y = float(n)
        c0 = min_cycle
    elif big_y >= 0.9:  # oversaturated
        c0 = max_cycle
    else:
        c0 = (1.5 * lost + 5.0) / (1.0 - big_y)
    floor = n * (min_green + clearance)
    if min_cycle > c0:
        c0 = min_cycle
    if floor > c0:
        c0 = floor
    if max_cycle < c0:
        c0 = max_cycle
    effective = c0 - n * clearance
    total = 0.0
    for k in range(n):
        g = float(round(effective * greens[k] / big_y))
        greens[k] = g if g > min_green else min_green
        total += greens[k]
    return total + n * clearance


# ------------------------------------------------------------------ compilation
_LOOPS: dict[str, Callable[..., Any]] = {
    "max_pressure": max_pressure_loop,
    "sotl": sotl_loop,
    "webster_online": webster_online_loop,
}


def loop(name: str) -> Callable[..., Any]:
    """The plain-Python loop of kernel ``name`` (what :func:`jitted` compiles)."""
    return _LOOPS[name]


def jitted(name: str) -> Callable[..., Any]:
    """The Numba-compiled kernel ``name`` (``"max_pressure"``, ``"sotl"`` or
    ``"webster_online"``), cached on disk."""
    fn = _JITTED.get(name)
    if fn is None:
        import numba

        fn = numba.njit(cache=True, nogil=True)(_LOOPS[name])
        _JITTED[name] = fn
    return fn


def entry_point(kernel: Callable[..., Any], args: tuple[Any, ...]) -> Callable[..., Any]:
    """The compiled function for exactly ``args``' types, called without Numba's dispatch.

    The dispatcher types every argument on every call (about 0.1 µs per argument warm, far
    more on the cold caches between SUMO steps); controllers whose arrays never change type
    bind this once and call it directly.  Falls back to ``kernel`` itself when it is not a
    Numba dispatcher (``NUMBA_DISABLE_JIT=1`` or a plain loop).  Call it only with arguments
    of the same types (controllers re-bind when a state's arrays change).
    """
    overloads = getattr(kernel, "overloads", None)
    if overloads is None:
        return kernel
    import numba

    sig = tuple(numba.typeof(a) for a in args)
    cres = overloads.get(sig)
    if cres is None:
        kernel.compile(sig)  # type: ignore[attr-defined]
        cres = overloads.get(sig)
    return kernel if cres is None else cres.entry_point  # type: ignore[no-any-return]
