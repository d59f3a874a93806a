"""What reading the district state costs, as ratios measured in one run.

On the grid scenario (grid-am-v1, one hour, 9 signals, 72 in-lanes, 72 out-lanes):

1. raw SUMO (libsumo, one ``simulationStep`` per second, no reads);
2. the same with the full :class:`~sim.state.DistrictState` read every 5 simulated seconds
   (the usual decision interval) and every step; their ratios to raw SUMO;
3. the cost of one full read with libsumo getters, traci getters and traci subscriptions
   (each minus the stepping cost of its own backend), over a loaded 5-minute window.

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_sim.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from sim.scenario import Scenario, load_scenario
from sim.simulation import Simulation
from sim.state import _LANE_VARS, DistrictLayout, StateReader
from sim.topology import load_signal_specs


def _timed(fn: Callable[[], None], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run_loop(sc: Scenario, layout: DistrictLayout, backend: str, every: int | None, t0: float, t1: float,
             getters: bool = False) -> Callable[[], None]:
    """A closure that runs ``t0..t1`` stepping each second, reading every ``every`` steps."""

    def go() -> None:
        with Simulation(sc, seed=1, backend=backend) as sim:  # type: ignore[arg-type]
            if t0 > sc.begin:
                sim.step_until(t0)
            reader = StateReader(sim, layout)
            state = None
            lanes = reader._lanes
            step = sim.conn.simulationStep
            lane = sim.conn.lane
            n = int(t1 - t0)
            for k in range(1, n + 1):
                step()
                if every and k % every == 0:
                    if getters:  # traci plain getters: 4 round trips per lane
                        for lid in lanes:
                            lane.getLastStepHaltingNumber(lid)
                            lane.getLastStepVehicleNumber(lid)
                            lane.getLastStepMeanSpeed(lid)
                            lane.getWaitingTime(lid)
                    else:
                        state = reader.read(into=state)

    return go


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=2, help="best of N runs per variant")
    args = ap.parse_args()
    sc = load_scenario("grid-am-v1")
    layout = DistrictLayout.from_specs(load_signal_specs(sc.net_file))
    lanes = len(set(layout.in_lanes) | set(layout.out_lanes))
    print(f"scenario {sc.id}: {sc.duration:.0f} steps, {layout.n_signals} signals, {lanes} lanes read "
          f"({len(_LANE_VARS)} variables each)")

    steps = sc.duration
    raw = _timed(run_loop(sc, layout, "libsumo", None, sc.begin, sc.end), args.repeat)
    every5 = _timed(run_loop(sc, layout, "libsumo", 5, sc.begin, sc.end), args.repeat)
    every1 = _timed(run_loop(sc, layout, "libsumo", 1, sc.begin, sc.end), args.repeat)
    print("\n== whole scenario, libsumo ==")
    print(f"raw SUMO                    {steps / raw:8.0f} steps/s   1.00x")
    print(f"DistrictState every 5 s     {steps / every5:8.0f} steps/s   {every5 / raw:.3f}x raw "
          f"(+{(every5 / raw - 1) * 100:.1f} %; target <= +10 %)")
    print(f"DistrictState every step    {steps / every1:8.0f} steps/s   {every1 / raw:.3f}x raw "
          f"(+{(every1 / raw - 1) * 100:.1f} %; target <= +40 %)")

    # Cost of one full read per backend and method, over a loaded 5-minute window.
    w0, w1 = sc.begin + 1200, sc.begin + 1500
    n = w1 - w0
    base = {b: _timed(run_loop(sc, layout, b, None, w0, w1), args.repeat) for b in ("libsumo", "traci")}
    lib = (_timed(run_loop(sc, layout, "libsumo", 1, w0, w1), args.repeat) - base["libsumo"]) / n
    tsub = (_timed(run_loop(sc, layout, "traci", 1, w0, w1), args.repeat) - base["traci"]) / n
    tget = (_timed(run_loop(sc, layout, "traci", 1, w0, w1, getters=True), 1) - base["traci"]) / n
    print("\n== one full read (all lanes, 4 variables), 07:20-07:25 ==")
    print(f"libsumo getters        {lib * 1e6:9.0f} µs/read   1.0x")
    print(f"traci subscriptions    {tsub * 1e6:9.0f} µs/read   {tsub / lib:5.1f}x libsumo")
    print(f"traci getters          {tget * 1e6:9.0f} µs/read   {tget / lib:5.1f}x libsumo "
          f"(target: libsumo >= 10x faster)")
    print(f"traci: subscriptions are {tget / tsub:.1f}x faster than getters")


if __name__ == "__main__":
    main()
