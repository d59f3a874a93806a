"""Controller benchmarks: batched Numba kernels against Python, and controllers' share of an episode.

Prints, for max-pressure, SOTL and schedule-driven on a network's signals:

* decision time for all signals: the Numba kernel, the same loop run as plain Python, and the
  independent per-signal reference (``kernels.*_reference``); the ratios are the result
  (target: kernel at least 20x faster than the Python reference);
* the controllers' share of an episode (target under 2 %): time inside ``act()`` and the
  actuator (requests, stage changes, SUMO signal calls, the loop's next-event arithmetic)
  over the episode's time, with the time in SUMO's steps and in state reading (lanes, loop
  counts) beside it.  Measured twice in every episode (``run_episode`` does both):

  - **wall**: ``time.perf_counter``, ``controller_time / wall_time``; inflated when other
    processes compete for the cores (the controller's Python runs in short bursts between
    long SUMO calls, on cold caches);
  - **CPU**: ``time.thread_time`` of the episode's thread (SUMO runs in it with libsumo),
    ``controller_cpu / cpu_time``; far less sensitive to other processes' load.

  Each episode runs ``--repeat`` times; the table gives the median of each column, and the
  load average (1 min) before and after each scenario, because the machine may be shared.

Usage::

    .venv/bin/python benchmarks/bench_controllers.py [--scenario grid-am-v1] [--tile 1]
        [--episodes max-pressure,sotl,webster-online,schedule-driven]
        [--episode-scenarios grid-am-v1,wulin-am-peak-v1] [--repeat 3]

``--tile N`` repeats the network's signals N times in the layout (decision timing only) to
show how the kernels scale to a district with many signals.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np


def _time(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    fn()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - t0) / repeat)
    return best


def bench_decisions(layout, repeat: int) -> list[tuple[str, float, float, float]]:  # type: ignore[no-untyped-def]
    from controllers import kernels
    from controllers.base import random_states

    st = random_states(layout, 1, seed=0)[0]
    w_in, w_out = kernels.movement_weights(layout)
    out = np.empty(layout.n_signals, np.int32)
    lay = layout
    mp_args = (st.count, st.out_count, lay.mov_ptr, lay.mov_in, lay.mov_out, lay.mov_link, w_in,
               w_out, lay.stage_green, lay.n_stages, st.stage, st.in_transition,
               np.zeros(lay.stage_green.shape[:2]), 5.0, float("inf"), out)
    mp_jit = kernels.jitted("max_pressure")
    rows = [("max-pressure",
             _time(lambda: mp_jit(*mp_args), repeat),
             _time(lambda: kernels.max_pressure_loop(*mp_args), max(repeat // 50, 3)),
             _time(lambda: kernels.max_pressure_reference(lay, st), max(repeat // 50, 3)))]
    lane_stage = kernels.lane_stage_matrix(lay)
    kappa = np.zeros(lay.n_signals)
    last = np.zeros(lay.n_signals, np.int32)
    so_args = (st.count, lay.in_ptr, lane_stage, lay.n_stages, st.stage, st.stage_time,
               st.in_transition, kappa, last, 5.0, 60.0, 10.0, 3.0, out)
    so_jit = kernels.jitted("sotl")
    rows.append(("sotl",
                 _time(lambda: so_jit(*so_args), repeat),
                 _time(lambda: kernels.sotl_loop(*so_args), max(repeat // 50, 3)),
                 _time(lambda: kernels.sotl_reference(lay, st, kappa.copy(), last.copy(), 5.0, 60.0,
                                                      10.0, 3.0), max(repeat // 50, 3))))
    rows.append(_schedule_driven_row(lay, st, repeat))
    return rows


def _schedule_driven_row(lay, st, repeat: int) -> tuple[str, float, float, float]:  # type: ignore[no-untyped-def]
    """Schedule-driven: the kernel (bound entry point, as in episodes), its outer loop run as
    Python (the per-signal helpers stay compiled) and the plain-Python reference."""
    from controllers.base import make_controller
    from controllers.schedule_reference import (
        ReferenceMemory,
        reference_params,
        schedule_reference,
    )

    st.stage_time[:] = 30.0  # every signal past its minimum green: all of them plan and decide
    st.in_transition[:] = False
    jit = make_controller("schedule-driven")
    loop = make_controller("schedule-driven", use_numba=False)
    jit.reset(lay, 0)
    loop.reset(lay, 0)
    p = reference_params(jit)
    memory = ReferenceMemory()
    return ("schedule-driven",
            _time(lambda: jit.act(st), max(repeat // 10, 3)),
            _time(lambda: loop.act(st), max(repeat // 50, 3)),
            _time(lambda: schedule_reference(lay, st, p, jit.clearance, memory),
                  max(repeat // 200, 2)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="grid-am-v1")
    ap.add_argument("--tile", type=int, default=1, help="repeat the signals N times (decisions only)")
    ap.add_argument("--calls", type=int, default=2000, help="kernel calls per timing")
    ap.add_argument("--repeat", type=int, default=3,
                    help="episodes per controller and scenario (the median is printed)")
    ap.add_argument("--episodes", default="max-pressure,sotl,webster-online,schedule-driven",
                    help="controllers whose share of an episode to measure ('' for none)")
    ap.add_argument("--episode-scenarios", default="",
                    help="comma-separated scenarios for the episode share (default: --scenario)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    from sim.scenario import load_scenario
    from sim.state import DistrictLayout
    from sim.topology import load_signal_specs

    sc = load_scenario(args.scenario)
    specs = list(load_signal_specs(sc.net_file).values())
    layout = DistrictLayout.from_specs(specs)
    if args.tile > 1:
        from dataclasses import replace

        tiled = []
        for k in range(args.tile):
            ren = {ln: f"{ln}#{k}" for sp in specs for ln in (*sp.in_lanes, *sp.out_lanes)}
            for sp in specs:
                tiled.append(replace(
                    sp, id=f"{sp.id}#{k}",
                    movements=tuple(replace(m, in_lane=ren[m.in_lane], out_lane=ren[m.out_lane])
                                    for m in sp.movements),
                    in_lanes=tuple(ren[x] for x in sp.in_lanes),
                    out_lanes=tuple(ren[x] for x in sp.out_lanes),
                    lane_lengths={ren[x]: v for x, v in sp.lane_lengths.items()},
                ))
        layout = DistrictLayout.from_specs(tiled)

    print(f"scenario {sc.id}: {layout.n_signals} signals, {layout.n_in} in-lanes, "
          f"{layout.n_movements} movements (tile x{args.tile})")
    print(f"{'kernel':14} {'numba µs':>10} {'py-loop µs':>11} {'reference µs':>13} "
          f"{'loop/numba':>11} {'ref/numba':>10}")
    for name, t_jit, t_loop, t_ref in bench_decisions(layout, args.calls):
        print(f"{name:14} {t_jit * 1e6:10.2f} {t_loop * 1e6:11.1f} {t_ref * 1e6:13.1f} "
              f"{t_loop / t_jit:10.1f}x {t_ref / t_jit:9.1f}x")

    names = [n for n in args.episodes.split(",") if n]
    if names:
        episode_shares(names, (args.episode_scenarios or sc.id).split(","), args.seed,
                       max(1, args.repeat))


def _load() -> float:
    return os.getloadavg()[0]


def episode_shares(names: list[str], scenarios: list[str], seed: int, repeat: int) -> None:
    """Print the controllers' share of an episode (median of ``repeat`` runs) per scenario."""
    from rich.progress import track

    from controllers.base import warm_up_kernels
    from experiments.episode import run_episode
    from sim.scenario import load_scenario
    from sim.state import DistrictLayout
    from sim.topology import load_signal_specs

    for sc_id in scenarios:
        esc = load_scenario(sc_id)
        elay = DistrictLayout.from_specs(load_signal_specs(esc.net_file))
        warm_up_kernels(elay)
        load0 = _load()
        rows = []
        runs = [(name, k) for k in range(repeat) for name in names]  # interleaved: load drifts
        results: dict[str, list] = {name: [] for name in names}
        # no refresh thread: it would take the GIL while an episode is being timed
        for name, _ in track(runs, description=f"{esc.id} episodes", transient=True,
                             auto_refresh=False):
            results[name].append(run_episode(esc, name, seed=seed))
        for name in names:
            rs = results[name]

            def med(f, rs=rs):  # type: ignore[no-untyped-def]
                return statistics.median(f(r) for r in rs)

            rows.append((
                name, med(lambda r: r.wall_time), med(lambda r: r.step_time),
                med(lambda r: r.state_time / r.wall_time), med(lambda r: r.controller_time),
                med(lambda r: r.controller_time / r.wall_time),
                med(lambda r: r.cpu_time), med(lambda r: r.controller_cpu),
                med(lambda r: r.state_cpu / r.cpu_time), med(lambda r: r.controller_cpu / r.cpu_time),
                rs[0].decisions,
            ))
        load1 = _load()
        print(f"\nepisode share ({esc.id}, {elay.n_signals} signals, seed {seed}, libsumo, kernels "
              f"warmed, median of {repeat}; load average {load0:.2f} before, {load1:.2f} after, "
              f"{os.cpu_count()} cores)")
        print("controller = act() + actuator (requests, stage changes, SUMO signal calls, "
              "next-event arithmetic); state = lane reads and loop counts")
        print(f"{'':16} {'--------------- wall clock ----------------':>44} "
              f"{'------------ thread CPU time ------------':>42}")
        print(f"{'controller':16} {'wall s':>7} {'SUMO s':>7} {'state %':>8} {'ctl s':>7} "
              f"{'ctl %':>7}   {'cpu s':>7} {'ctl s':>7} {'state %':>8} {'ctl %':>7} "
              f"{'decisions':>10}")
        for (name, wall, step, st_w, ctl, sh_w, cpu, ctl_c, st_c, sh_c, dec) in rows:
            print(f"{name:16} {wall:7.2f} {step:7.2f} {100 * st_w:7.2f}% {ctl:7.3f} "
                  f"{100 * sh_w:6.2f}%   {cpu:7.2f} {ctl_c:7.3f} {100 * st_c:7.2f}% "
                  f"{100 * sh_c:6.2f}% {dec:10d}")


if __name__ == "__main__":
    main()
