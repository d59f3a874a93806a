"""Does the macroscopic screen rank plans like SUMO micro, and how much faster is it?  One run prints both.

Random plans for every signal (cycle, greens and offset drawn uniformly in the optimiser's
decision space) are scored by the screen (:mod:`optimise.screen`, expected demand, one
thread) and run in SUMO micro (the ``field`` controller running each plan set as a
variation, through the experiment runner, seed 1).  Printed:

* the Spearman rank correlation between the screen's mean time loss and SUMO's
  (``mean_time_loss``, every vehicle due) over the plans (target >= 0.8 on 50 plans);
* the speed ratio: the mean wall time of one SUMO run (as the runner measured it, inside its
  worker) over the mean wall time of one screen evaluation (target >= 50x).

Run: ``.venv/bin/python benchmarks/bench_optimise.py [--plans 50] [--workers 2]``
(``--plans 8`` while developing).  The SUMO runs' folder is kept under ``--out`` and resumed
when the same command runs again.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="wulin-am-peak-v1")
    ap.add_argument("--period", default="AM=07:00-09:00")
    ap.add_argument("--plans", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7, help="seed of the random plans")
    ap.add_argument("--out", type=Path, default=Path("/tmp/wulin-bench-optimise"))
    args = ap.parse_args()

    import numba
    from scipy.stats import spearmanr

    from optimise import output
    from optimise.periods import parse_periods
    from optimise.run import OptimiseOptions, build_problem
    from optimise.screen import demand_draws, run_screen, time_loss
    from optimise.verify import verify_candidates
    from sim.scenario import load_scenario

    numba.set_num_threads(1)
    sc = load_scenario(args.scenario)
    period = parse_periods(args.period, sc)[0]
    pb = build_problem(sc, period, OptimiseOptions(periods=args.period, out=args.out, seeds=1))
    model = pb.objective.model
    demand = demand_draws(model, [1.0], [0])[0]
    rng = np.random.default_rng(args.seed)
    b = pb.space.bounds()
    plan_sets = [pb.assemble(rng.uniform(b[:, 0], b[:, 1])) for _ in range(args.plans)]
    run_screen(model, plan_sets[0], demand)  # compile / load the kernel before timing
    t = time.perf_counter()
    screen = [time_loss(model, run_screen(model, p, demand)) for p in plan_sets]
    screen_s = (time.perf_counter() - t) / len(plan_sets)
    files = {}
    for i, plans in enumerate(plan_sets):
        files[f"p{i:03d}"] = args.out / "plans" / f"p{i:03d}.json"
        output.write_plan_list(files[f"p{i:03d}"], plans)
    runs = verify_candidates(sc, period, files, [1], [1.0], args.out / "sumo", workers=args.workers,
                             progress=True)
    from experiments.results import load_experiment

    _, raw = load_experiment(args.out / "sumo")
    sumo_s = float(raw["wall_time"].mean())
    sumo = runs.set_index("candidate")["mean_time_loss"].reindex(list(files)).to_numpy()
    rho = spearmanr(screen, sumo).statistic
    print(f"{args.scenario} {period.label}: {len(plan_sets)} random plan sets, {pb.space.dim} variables")
    print(f"screen mean time loss {min(screen):.1f}-{max(screen):.1f} s; SUMO {np.nanmin(sumo):.1f}-"
          f"{np.nanmax(sumo):.1f} s")
    print(f"Spearman rank correlation screen vs SUMO micro: {rho:.3f} (target >= 0.8)")
    print(f"one screen evaluation {screen_s * 1000:.0f} ms, one SUMO micro run {sumo_s:.1f} s: "
          f"{sumo_s / screen_s:.0f}x faster (target >= 50x)")


if __name__ == "__main__":
    main()
