"""Numba kernels of the schedule-driven controller: jobs -> clusters -> a forward DP per signal.

The schedule-driven controller (Xie, Smith, Barlow et al., "Schedule-driven intersection
control", 2012; Surtrac) plans each signal's next stages from the vehicles approaching it:

1. **Jobs** (:func:`stage_profiles`, :func:`add_nonlocal`): per signal and stage, the vehicles
   already queued (arrival now) and an arrival profile over the horizon in 1-second bins.
   From lane state: a lane's halting vehicles queue at the stop line; its moving vehicles are
   spread evenly over the lane's free length ahead of the queue and arrive at the queue's
   back at their mean speed, at least ``slow`` x the speed limit (a queue that has just begun
   to discharge is slow but near the stop line: at its own speed it would seem to vanish and
   the signal would switch away at once); on a lane green now whose movers are slower than
   that (a discharging queue) they all count as queued.  Lane aggregates: no per-vehicle calls.  Non-local jobs: the
   vehicles an upstream signal plans to discharge towards this one, in its last planned
   schedule's green, arrive one link travel time later.
2. **Clusters** (:func:`stage_clusters`): the queue is one cluster; arrivals are cut into
   clusters at gaps of at least ``gap`` seconds or when a cluster spans ``span`` seconds, at
   most ``clusters`` per stage (the last absorbs the rest).
3. **Forward DP** (:func:`plan_signal`): states are (clusters served per stage, stage of the
   last one); a step serves the next cluster of some stage, with yellow + all-red + start-up
   lost time when the stage changes, the minimum green of the stage left, the current stage's
   elapsed green and the maximum green (a green is not extended by a cluster that could only
   start after it: a cluster that starts before and needs longer is served whole, since a
   queue longer than one maximum green must not make the signal leave it at once).  Each state keeps the schedule of
   least cumulative delay (ties: the earlier finish).
4. **Decision** (:func:`schedule_driven_loop`): rolling horizon; when the best schedule starts
   with another stage and the signal has served its minimum green, switch to it, unless
   extending the current stage costs less than ``gain`` vehicle-seconds more; when it
   switches, a stage with queued vehicles red for ``max_red`` seconds goes first.  Every planned signal stores the
   first green block of each stage of its schedule (absolute times): the outflows its
   neighbours read at the next re-plan, as Surtrac's signals exchange schedules.

All functions are ``numba.njit(cache=True)``; the controller imports this module only when it
is reset, so importing ``controllers.base`` still never imports numba.  The plain-Python
reference that computes the same schedules from the signal specs is
:mod:`controllers.schedule_reference`.
"""

from __future__ import annotations

import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True)

# indices into the parameter array
HORIZON, HEADWAY, STARTUP, GAP, SPAN, CLUSTERS, GAIN, MAX_RED = 0, 1, 2, 3, 4, 5, 6, 7
MIN_GREEN, MAX_GREEN, SLOW = 8, 9, 10
N_PARAMS = 11
VEHICLE_SPACE = 7.5  # metres a queued car takes
_EPS = 1e-9
_INF = np.inf


@_jit
def spread(row: np.ndarray, t0: float, t1: float, n: float) -> None:
    """Add ``n`` arrivals spread evenly over ``[t0, t1]`` to 1-second bins (beyond: dropped)."""
    nb = row.shape[0]
    if t1 - t0 < _EPS:
        b = int(t0)
        if 0 <= b < nb:
            row[b] += n
        return
    rate = n / (t1 - t0)
    b = int(t0)
    while b < nb and b < t1:
        lo = t0 if t0 > b else float(b)
        hi = t1 if t1 < b + 1 else float(b + 1)
        if hi > lo:
            row[b] += rate * (hi - lo)
        b += 1


@_jit
def stage_profiles(
    s: int,
    cur: int,
    slow: float,
    count: np.ndarray,
    queue: np.ndarray,
    speed: np.ndarray,
    in_ptr: np.ndarray,
    lane_w: np.ndarray,
    lane_len: np.ndarray,
    lane_vmax: np.ndarray,
    qk: np.ndarray,
    prof: np.ndarray,
    load: np.ndarray,
    load2: np.ndarray,
) -> None:
    """Signal ``s``'s local jobs per stage: queued vehicles ``qk``, arrivals ``prof[k, bin]``,
    and the stage's vehicles per lane summed (``load``) and squared (``load2``)."""
    qk[:] = 0.0
    prof[:, :] = 0.0
    load[:] = 0.0
    load2[:] = 0.0
    for i in range(in_ptr[s], in_ptr[s + 1]):
        n = float(count[i])
        if n <= 0.0:
            continue
        q = min(float(queue[i]), n)
        moving = n - q
        reach = 0.0
        if moving > 0.0:
            # the movers' mean speed (halting ones ~0), at least ``slow`` x the speed limit
            vmax = max(lane_vmax[i], 1.0)
            v_movers = float(speed[i]) * n / moving
            v = min(max(v_movers, slow * vmax), vmax)
            reach = max(lane_len[i] - q * VEHICLE_SPACE, 0.0) / v
            if lane_w[i, cur] > 0.0 and v_movers < slow * vmax:
                q = n  # green now and slow: a discharging queue, still a queue
                moving = 0.0
        for k in range(lane_w.shape[1]):
            w = lane_w[i, k]
            if w <= 0.0:
                continue
            qk[k] += w * q
            load[k] += w * n
            load2[k] += (w * n) * (w * n)
            if moving > 0.0:
                spread(prof[k], 0.0, reach, w * moving)


@_jit
def add_nonlocal(
    s: int,
    now: float,
    count: np.ndarray,
    feed_ptr: np.ndarray,
    feed_sig: np.ndarray,
    feed_lane: np.ndarray,
    feed_link: np.ndarray,
    feed_dst: np.ndarray,
    feed_share: np.ndarray,
    feed_travel: np.ndarray,
    stage_green: np.ndarray,
    n_stages: np.ndarray,
    lane_w: np.ndarray,
    blk_start: np.ndarray,
    blk_end: np.ndarray,
    prof: np.ndarray,
) -> None:
    """Add to ``prof`` the vehicles upstream signals plan to send towards ``s``: each feed's
    share of its upstream lane, leaving in the first planned green of its link (the upstream
    signal's last schedule), arriving a link travel time later."""
    for f in range(feed_ptr[s], feed_ptr[s + 1]):
        a = feed_sig[f]
        n = float(count[feed_lane[f]]) * feed_share[f]
        if n <= 0.0:
            continue
        bs = _INF
        be = _INF
        for k in range(n_stages[a]):
            if stage_green[a, k, feed_link[f]] and blk_start[a, k] < bs:
                bs = blk_start[a, k]
                be = blk_end[a, k]
        if bs == _INF or be < now:
            continue  # no green planned for the link, or a stale schedule
        t0 = max(bs - now, 0.0) + feed_travel[f]
        t1 = max(be - now, 0.0) + feed_travel[f]
        d = feed_dst[f]
        for k in range(lane_w.shape[1]):
            if lane_w[d, k] > 0.0:
                spread(prof[k], t0, t1, lane_w[d, k] * n)


@_jit
def stage_clusters(
    ns: int,
    c_max: int,
    qk: np.ndarray,
    prof: np.ndarray,
    load: np.ndarray,
    load2: np.ndarray,
    n_lanes: np.ndarray,
    p: np.ndarray,
    ca0: np.ndarray,
    ca1: np.ndarray,
    cn: np.ndarray,
    nc: np.ndarray,
    hk: np.ndarray,
) -> None:
    """Cut each stage's jobs into clusters (``ca0``/``ca1``: arrival interval, ``cn``:
    vehicles, ``nc``: clusters per stage) and give each stage its headway per vehicle ``hk``
    (the saturation headway over the lanes the vehicles effectively use)."""
    gap, span = p[GAP], p[SPAN]
    for k in range(ns):
        lanes = max(n_lanes[k], 1.0)
        eff = load[k] * load[k] / load2[k] if load2[k] > 0.0 else lanes
        hk[k] = p[HEADWAY] / min(max(eff, 1.0), lanes)
        c = 0
        if qk[k] > 1e-6:
            ca0[k, 0] = 0.0
            ca1[k, 0] = 0.0
            cn[k, 0] = qk[k]
            c = 1
        last_b = -1
        for b in range(prof.shape[1]):
            x = prof[k, b]
            if x <= 1e-6:
                continue
            new = last_b < 0 or (
                c < c_max and (b - last_b - 1 >= gap or b + 1 - ca0[k, c - 1] > span)
            )
            if new and c < c_max:
                ca0[k, c] = float(b)
                cn[k, c] = 0.0
                c += 1
            cn[k, c - 1] += x
            ca1[k, c - 1] = float(b + 1)
            last_b = b
        nc[k] = c


@_jit
def serve(avail: float, a0: float, a1: float, n: float, h: float) -> tuple[float, float, float]:
    """A cluster served from ``avail``: ``(start, finish, delay)``.

    Vehicles arriving before ``avail`` wait for it and then discharge one headway apart;
    arrivals faster than saturation queue too; the green lasts until the last one is through.
    """
    start = max(avail, a0)
    if a1 > a0:
        frac = min(max((avail - a0) / (a1 - a0), 0.0), 1.0)
    else:
        frac = 1.0 if avail >= a0 else 0.0
    m = n * frac
    delay = 0.0
    if m > 0.0:
        delay = m * (avail - 0.5 * (a0 + min(avail, a1))) + 0.5 * m * m * h
    rest = n - m
    late = rest * h - (a1 - start)
    if rest > 0.0 and late > 0.0:
        delay += 0.5 * rest * late
    finish = max(start + n * h, a1)
    return start, finish, delay


@_jit
def plan_signal(
    ns: int,
    cur: int,
    elapsed: float,
    switch: float,
    force: int,
    cl: tuple,
    p: np.ndarray,
    dpw: tuple,
) -> int:
    """The forward DP over one signal's clusters (``cl``: ``nc, ca0, ca1, cn, hk`` of
    :func:`stage_clusters`; ``dpw``: the DP's work arrays ``d, f, g, t, first, par, mult,
    digit``); returns the entry (``code * K + last``) of the best complete schedule, or -1 when
    there is nothing to serve.  ``force >= 0``: the first cluster served must be of that stage;
    ``switch``: the signal's yellow + all-red."""
    nc, ca0, ca1, cn, hk = cl
    dp_d, dp_f, dp_g, dp_t, dp_first, dp_par, mult, digit = dpw
    kk = dp_par.shape[1]
    mult[0] = 1
    for k in range(ns):
        mult[k + 1] = mult[k] * (nc[k] + 1)
        digit[k] = 0
    n_codes = mult[ns]
    if n_codes == 1:
        return -1
    dp_d[:n_codes, :] = _INF
    dp_d[0, cur] = 0.0
    dp_f[0, cur] = 0.0
    dp_g[0, cur] = -elapsed
    dp_first[0, cur] = -1
    for code in range(n_codes):
        for last in range(ns):
            d0 = dp_d[code, last]
            if d0 == _INF:
                continue
            for j in range(ns):
                x = digit[j]
                if x >= nc[j] or (code == 0 and force >= 0 and j != force):
                    continue
                if j == last:
                    g = dp_g[code, last]
                    avail = dp_f[code, last]
                else:
                    g = max(dp_f[code, last], dp_g[code, last] + p[MIN_GREEN]) + switch
                    avail = g + p[STARTUP]
                start, fin, delay = serve(avail, ca0[j, x], ca1[j, x], cn[j, x], hk[j])
                if j == last and start - g >= p[MAX_GREEN]:
                    continue  # a green cannot be extended past its maximum
                nxt = code + mult[j]
                total = d0 + delay
                old = dp_d[nxt, j]
                if total < old - _EPS or (abs(total - old) <= _EPS and fin < dp_f[nxt, j] - _EPS):
                    dp_d[nxt, j] = total
                    dp_f[nxt, j] = fin
                    dp_g[nxt, j] = g
                    dp_t[nxt, j] = start
                    dp_first[nxt, j] = j if code == 0 else dp_first[code, last]
                    dp_par[nxt, j] = code * kk + last
        for k in range(ns):  # the odometer: digits of code + 1
            digit[k] += 1
            if digit[k] <= nc[k]:
                break
            digit[k] = 0
    best = -1
    for last in range(ns):
        if dp_d[n_codes - 1, last] < _INF and (
            best < 0 or dp_d[n_codes - 1, last] < dp_d[n_codes - 1, best] - _EPS
        ):
            best = last
    return -1 if best < 0 else (n_codes - 1) * kk + best


@_jit
def store_blocks(
    s: int,
    now: float,
    entry: int,
    dp_t: np.ndarray,
    dp_f: np.ndarray,
    dp_par: np.ndarray,
    path: np.ndarray,
    blk_start: np.ndarray,
    blk_end: np.ndarray,
) -> None:
    """Trace the schedule ending at ``entry`` and store, per stage, its first green block
    (start of its first cluster, finish of the last cluster of that run) in absolute time."""
    kk = dp_par.shape[1]
    blk_start[s, :] = _INF
    blk_end[s, :] = _INF
    n = 0
    e = entry
    while e >= 0 and e // kk > 0:
        path[n] = e
        n += 1
        e = dp_par[e // kk, e % kk]
    prev = -1
    open_stage = -1
    for i in range(n - 1, -1, -1):
        code, k = path[i] // kk, path[i] % kk
        if k != prev:
            open_stage = k if blk_start[s, k] == _INF else -1
            if open_stage >= 0:
                blk_start[s, k] = now + dp_t[code, k]
            prev = k
        if open_stage == k:
            blk_end[s, k] = now + dp_f[code, k]


@_jit
def decide(
    s: int,
    ns: int,
    cur: int,
    elapsed: float,
    qk: np.ndarray,
    nc: np.ndarray,
    waited: np.ndarray,
    p: np.ndarray,
    first: int,
    best_delay: float,
    keep_delay: float,
) -> int:
    """The request for signal ``s``: -1 (keep) or the stage to switch to.  ``first``: the
    best schedule's first stage (-1: nothing to serve); ``keep_delay``: the best schedule's
    delay when it must begin with the current stage (inf: none)."""
    if elapsed < p[MIN_GREEN]:
        return -1  # never ask for a change before the minimum green is served
    starved = -1
    for k in range(ns):
        if (
            k != cur
            and (qk[k] > 0.5 or nc[k] > 0)
            and waited[s, k] >= p[MAX_RED]
            and (starved < 0 or waited[s, k] > waited[s, starved])
        ):
            starved = k
    if first < 0 or first == cur:
        return -1
    if keep_delay - best_delay < p[GAIN]:
        return -1
    # a starved stage goes next, but only when the schedule ends the current green: forcing
    # the change at once cuts every green to its minimum once cycles pass max_red (congestion)
    return starved if starved >= 0 else first


@_jit
def schedule_driven_loop(
    now: np.ndarray,  # float64 [1] simulation time of this call
    count: np.ndarray,  # float32 [n_in] vehicles per in-lane
    queue: np.ndarray,  # float32 [n_in] halting vehicles per in-lane
    speed: np.ndarray,  # float32 [n_in] mean speed per in-lane
    stage: np.ndarray,  # int32 [n_sig] current stage
    stage_time: np.ndarray,  # float32 [n_sig] seconds of green of the current stage
    in_transition: np.ndarray,  # bool [n_sig]
    in_ptr: np.ndarray,  # int32 [n_sig+1]
    n_stages: np.ndarray,  # int32 [n_sig]
    stage_green: np.ndarray,  # bool [n_sig, K, links]
    lane_w: np.ndarray,  # float64 [n_in, K] share of the lane's vehicles per stage
    lane_len: np.ndarray,  # float64 [n_in] metres
    lane_vmax: np.ndarray,  # float64 [n_in] speed limit, m/s
    n_lanes: np.ndarray,  # float64 [n_sig, K] lanes green in each stage
    c_cap: np.ndarray,  # int64 [n_sig] clusters per stage (keeps the DP's states bounded)
    clearance: np.ndarray,  # float64 [n_sig] yellow + all-red
    feeds: tuple,  # (ptr, sig, lane, link, dst, share, travel): see add_nonlocal
    p: np.ndarray,  # float64 [N_PARAMS]
    waited: np.ndarray,  # float64 [n_sig, K] seconds since each stage was green (updated)
    clock: np.ndarray,  # float64 [1] time of the previous call (updated)
    blk_start: np.ndarray,  # float64 [n_sig, K] planned first green block per stage (updated)
    blk_end: np.ndarray,  # float64 [n_sig, K]
    sizes: np.ndarray,  # int64 [4] work array sizes (``work_sizes``)
    out: np.ndarray,  # int32 [n_sig] decision (written)
) -> None:
    """Schedule-driven decisions for all signals (see the module docstring)."""
    work = work_arrays(sizes)
    qk, prof, load, load2, ca0, ca1, cn, nc, hk, dp, dp_first, dp_par, mult, digit, path = work
    dp_d, dp_f, dp_g, dp_t = dp[0], dp[1], dp[2], dp[3]
    t = now[0]
    dt = t - clock[0] if clock[0] > -_INF else 0.0
    clock[0] = t
    for s in range(n_stages.shape[0]):
        ns, cur = n_stages[s], stage[s]
        for k in range(ns):
            waited[s, k] = 0.0 if k == cur and not in_transition[s] else waited[s, k] + dt
        out[s] = -1
        if in_transition[s] or ns < 2 or stage_time[s] < p[MIN_GREEN]:
            continue  # nothing to decide: its last schedule stands for its neighbours
        stage_profiles(
            s,
            cur,
            p[SLOW],
            count,
            queue,
            speed,
            in_ptr,
            lane_w,
            lane_len,
            lane_vmax,
            qk,
            prof,
            load,
            load2,
        )
        add_nonlocal(
            s,
            t,
            count,
            feeds[0],
            feeds[1],
            feeds[2],
            feeds[3],
            feeds[4],
            feeds[5],
            feeds[6],
            stage_green,
            n_stages,
            lane_w,
            blk_start,
            blk_end,
            prof,
        )
        stage_clusters(ns, c_cap[s], qk, prof, load, load2, n_lanes[s], p, ca0, ca1, cn, nc, hk)
        elapsed = float(stage_time[s])
        cl = (nc, ca0, ca1, cn, hk)
        dpw = (dp_d, dp_f, dp_g, dp_t, dp_first, dp_par, mult, digit)
        best = plan_signal(ns, cur, elapsed, clearance[s], -1, cl, p, dpw)
        store_blocks(s, t, best, dp_t, dp_f, dp_par, path, blk_start, blk_end)
        kk = dp_par.shape[1]
        first, best_delay, keep_delay = -1, 0.0, _INF
        if best >= 0:
            first, best_delay = dp_first[best // kk, best % kk], dp_d[best // kk, best % kk]
        if (
            first >= 0
            and first != cur
            and nc[cur] > 0
            and p[GAIN] > 0.0
            and elapsed >= p[MIN_GREEN]
        ):
            kept = plan_signal(ns, cur, elapsed, clearance[s], cur, cl, p, dpw)
            if kept >= 0:
                keep_delay = dp_d[kept // kk, kept % kk]
                if keep_delay - best_delay < p[GAIN]:
                    store_blocks(s, t, kept, dp_t, dp_f, dp_par, path, blk_start, blk_end)
        out[s] = decide(s, ns, cur, elapsed, qk, nc, waited, p, first, best_delay, keep_delay)


MAX_CODES = 4096  # DP states (cluster counts) per stage sequence end, at most


def cluster_caps(n_stages: np.ndarray, clusters: int) -> np.ndarray:
    """Clusters per stage for each signal: ``clusters``, fewer where ``(c + 1) ** stages``
    would pass :data:`MAX_CODES` (at least 1)."""
    caps = np.empty(len(n_stages), dtype=np.int64)
    for s, ns in enumerate(n_stages):
        c = clusters
        while c > 1 and (c + 1) ** max(int(ns), 1) > MAX_CODES:
            c -= 1
        caps[s] = c
    return caps


def work_sizes(n_stages: np.ndarray, caps: np.ndarray, horizon: float) -> np.ndarray:
    """``[stages, clusters, DP codes, horizon bins]`` of the largest signal (int64), from
    which the kernel allocates its work arrays (one array argument instead of fifteen: each
    array argument costs its unboxing on every call)."""
    k = max(int(n_stages.max(initial=1)), 1)
    c = int(caps.max(initial=1))
    codes = max([(int(cap) + 1) ** int(ns) for cap, ns in zip(caps, n_stages, strict=True)] + [1])
    return np.array([k, c, codes, max(int(horizon), 1)], dtype=np.int64)


@_jit
def work_arrays(sizes: np.ndarray) -> tuple:
    """The kernel's work arrays for :func:`work_sizes`' ``sizes``."""
    k, c, codes, nb = sizes[0], sizes[1], sizes[2], sizes[3]
    f8, i8 = np.float64, np.int64
    return (
        np.zeros(k, f8),
        np.zeros((k, nb), f8),
        np.zeros(k, f8),
        np.zeros(k, f8),
        np.zeros((k, c), f8),
        np.zeros((k, c), f8),
        np.zeros((k, c), f8),
        np.zeros(k, i8),
        np.zeros(k, f8),
        np.zeros((4, codes, k), f8),
        np.zeros((codes, k), i8),
        np.zeros((codes, k), i8),
        np.zeros(k + 1, i8),
        np.zeros(k, i8),
        np.zeros(k * c + 1, i8),
    )
