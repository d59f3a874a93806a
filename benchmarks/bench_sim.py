"""What reading the district state costs, measured around each read in one run.

On the grid scenario (grid-am-v1, one hour, 9 signals, 72 in-lanes, 72 out-lanes):

1. raw SUMO (libsumo, one ``simulationStep`` per second, no reads);
2. the same with the full :class:`~sim.state.DistrictState` read every 5 simulated seconds
   (the usual decision interval) and every step: steps per second, and the reads' own time
   as a share of the stepping time;
3. the cost of one full read with libsumo getters, traci getters and traci subscriptions,
   over a loaded 5-minute window.

Every read is timed by itself (``perf_counter`` around the read), and a figure is the median
of those timings: nothing is obtained by subtracting one run's time from another's, so no
figure can come out negative because SUMO's stepping time varied between two runs (an earlier
version subtracted a separate baseline run and once printed -584 µs/read).

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_sim.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sim.scenario import Scenario, load_scenario
from sim.simulation import Simulation
from sim.state import _LANE_VARS, DistrictLayout, StateReader
from sim.topology import load_signal_specs


@dataclass
class LoopTiming:
    """Wall time of a stepping loop and of each read in it.

    Attributes:
        loop_s: Seconds of the loop (steps and reads; SUMO's start-up excluded).
        reads_s: Seconds of each read, in order.
    """

    loop_s: float = 0.0
    reads_s: list[float] = field(default_factory=list)

    @property
    def step_s(self) -> float:
        """Seconds spent outside the reads (stepping SUMO)."""
        return self.loop_s - sum(self.reads_s)


def run_loop(sc: Scenario, layout: DistrictLayout, backend: str, every: int | None, t0: float,
             t1: float, getters: bool = False) -> LoopTiming:
    """Run ``t0..t1`` stepping each second, reading every ``every`` steps; time each read."""
    out = LoopTiming()
    clock = time.perf_counter
    with Simulation(sc, seed=1, backend=backend) as sim:  # type: ignore[arg-type]
        if t0 > sc.begin:
            sim.step_until(t0)
        reader = StateReader(sim, layout)
        state = None
        lanes = reader._lanes
        step = sim.conn.simulationStep
        lane = sim.conn.lane
        n = int(t1 - t0)
        start = clock()
        for k in range(1, n + 1):
            step()
            if every and k % every == 0:
                r0 = clock()
                if getters:  # plain getters: 4 calls per lane
                    for lid in lanes:
                        lane.getLastStepHaltingNumber(lid)
                        lane.getLastStepVehicleNumber(lid)
                        lane.getLastStepMeanSpeed(lid)
                        lane.getWaitingTime(lid)
                else:
                    state = reader.read(into=state)
                out.reads_s.append(clock() - r0)
        out.loop_s = clock() - start
    return out


def repeated(run: Callable[[], LoopTiming], repeat: int) -> LoopTiming:
    """``repeat`` runs: the fastest loop, and every read of every run."""
    runs = [run() for _ in range(max(repeat, 1))]
    return LoopTiming(min(r.loop_s for r in runs), [x for r in runs for x in r.reads_s])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=2, help="runs per variant (fastest loop, all reads)")
    args = ap.parse_args()
    sc = load_scenario("grid-am-v1")
    layout = DistrictLayout.from_specs(load_signal_specs(sc.net_file))
    lanes = len(set(layout.in_lanes) | set(layout.out_lanes))
    print(f"scenario {sc.id}: {sc.duration:.0f} steps, {layout.n_signals} signals, {lanes} lanes read "
          f"({len(_LANE_VARS)} variables each)")

    steps = sc.duration
    whole = {every: repeated(lambda e=every: run_loop(sc, layout, "libsumo", e, sc.begin, sc.end),
                             args.repeat) for every in (None, 5, 1)}
    raw = whole[None].loop_s
    print("\n== whole scenario, libsumo ==")
    print(f"raw SUMO                    {steps / raw:8.0f} steps/s")
    for every, target in ((5, 10), (1, 40)):
        t = whole[every]
        share = sum(t.reads_s) / t.step_s * 100
        label = "every 5 s " if every == 5 else "every step"
        print(f"DistrictState {label}    {steps / t.loop_s:8.0f} steps/s   reads add {share:.1f} % "
              f"to the stepping time (target <= +{target} %)")

    # Cost of one full read per backend and method, over a loaded 5-minute window.
    w0, w1 = sc.begin + 1200, sc.begin + 1500
    per_read = {
        name: statistics.median(repeated(
            lambda b=backend, g=getters: run_loop(sc, layout, b, 1, w0, w1, getters=g),
            args.repeat).reads_s)
        for name, backend, getters in (("lib", "libsumo", False), ("tsub", "traci", False),
                                       ("tget", "traci", True))
    }
    lib, tsub, tget = per_read["lib"], per_read["tsub"], per_read["tget"]
    print("\n== one full read (all lanes, 4 variables), 07:20-07:25, median of every read ==")
    print(f"libsumo getters        {lib * 1e6:9.1f} µs/read   1.0x")
    print(f"traci subscriptions    {tsub * 1e6:9.1f} µs/read   {tsub / lib:5.1f}x libsumo")
    print(f"traci getters          {tget * 1e6:9.1f} µs/read   {tget / lib:5.1f}x libsumo "
          f"(target: libsumo >= 10x faster)")
    print(f"traci: subscriptions are {tget / tsub:.1f}x faster than getters")


if __name__ == "__main__":
    main()
