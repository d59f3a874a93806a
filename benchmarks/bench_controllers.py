"""Controller benchmarks: batched Numba kernels against Python, and controllers' share of an episode.

Prints, for max-pressure and SOTL on a network's signals:

* decision time for all signals: the Numba kernel, the same loop run as plain Python, and the
  independent per-signal reference (``kernels.*_reference``); the ratios are the result
  (target: kernel at least 20x faster than the Python reference);
* the controllers' share of an episode's wall time (``controller_time / wall_time`` from
  ``run_episode``: time inside ``act()`` and the actuator, i.e. requests, events, SUMO
  signal calls and the loop's next-event arithmetic; target under 2 %), with the time in
  SUMO's steps and in state reading (lanes, loop counts) reported beside it.

Usage::

    .venv/bin/python benchmarks/bench_controllers.py [--scenario grid-am-v1] [--tile 1]
        [--episodes max-pressure,sotl,webster-online]
        [--episode-scenarios grid-am-v1,wulin-am-peak-v1]

``--tile N`` repeats the network's signals N times in the layout (decision timing only) to
show how the kernels scale to a district with many signals.
"""

from __future__ import annotations

import argparse
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
               w_out, lay.stage_green, lay.n_stages, st.stage, st.in_transition, out)
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
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="grid-am-v1")
    ap.add_argument("--tile", type=int, default=1, help="repeat the signals N times (decisions only)")
    ap.add_argument("--repeat", type=int, default=2000)
    ap.add_argument("--episodes", default="max-pressure,sotl,webster-online",
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
    for name, t_jit, t_loop, t_ref in bench_decisions(layout, args.repeat):
        print(f"{name:14} {t_jit * 1e6:10.2f} {t_loop * 1e6:11.1f} {t_ref * 1e6:13.1f} "
              f"{t_loop / t_jit:10.1f}x {t_ref / t_jit:9.1f}x")

    names = [n for n in args.episodes.split(",") if n]
    if names:
        from controllers import kernels
        from experiments.episode import run_episode

        for sc_id in (args.episode_scenarios or sc.id).split(","):
            esc = load_scenario(sc_id)
            elay = DistrictLayout.from_specs(load_signal_specs(esc.net_file))
            kernels.warm_up(elay)
            print(f"\nepisode share ({esc.id}, {elay.n_signals} signals, seed {args.seed}, libsumo, "
                  "kernels warmed); controller = act() + actuator (requests, events, SUMO signal "
                  "calls, next-event arithmetic); state = lane reads and loop counts:")
            print(f"{'controller':16} {'wall s':>8} {'SUMO s':>8} {'state s':>8} {'ctl s':>8} "
                  f"{'other s':>8} {'state %':>8} {'ctl %':>7} {'decisions':>10}")
            for name in names:
                r = run_episode(esc, name, seed=args.seed)
                other = r.wall_time - r.step_time - r.state_time - r.controller_time
                print(f"{name:16} {r.wall_time:8.2f} {r.step_time:8.2f} {r.state_time:8.3f} "
                      f"{r.controller_time:8.3f} {other:8.2f} "
                      f"{100 * r.state_time / r.wall_time:7.2f}% "
                      f"{100 * r.controller_time / r.wall_time:6.2f}% {r.decisions:10d}")


if __name__ == "__main__":
    main()
