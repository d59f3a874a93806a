"""Emergency preemption and bus priority on the Wulin AM peak: the issue-17 targets, measured.

Paired runs per seed (the same demand and the same emergency vehicle in every arm, so the
difference is the signal strategy's alone):

* ``ev-none``: the emergency vehicle drives with its bluelight, no preemption;
* ``ev-<mode>-<recovery>``: preemption (detection distance or green wave) with each recovery;
* ``bus-none`` / ``bus-tsp`` / ``bus-tsp-all`` / ``bus-tsp-cond``: no emergency vehicle, bus
  priority off / on for late buses / on for every bus (20 s) / on for every bus (15 s) while
  no lane it delays holds more than one halted vehicle (``max_queue = 1``).

Prints per arm: emergency travel time and stops, general traffic's mean time loss (every
vehicle due but emergency vehicles and buses), bus halted delay at signals, the clearance
audit, with 95 % intervals over seeds and paired t-tests against the arm's baseline.

    python benchmarks/bench_priority.py --seeds 3 --controller field --arms ev
    python benchmarks/bench_priority.py --seeds 3 --controller field --arms ev --route huancheng
    python benchmarks/bench_priority.py --seeds 3 --controller field --arms bus
    python benchmarks/bench_priority.py --seeds 3 --controller max-pressure --arms bus

Runs end at 08:00 by default (``--end 09:00`` for the whole peak): the emergency vehicle leaves
at 07:30 and every recovery has ended long before; the measured hour is 07:00-08:00, so one
vehicle's cost is a larger share of a shorter window (conservative).
"""

from __future__ import annotations

import argparse
import math
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from experiments.episode import run_episode
from experiments.stats import mean_ci, paired_test
from sim.priority import (
    EV_TYPE,
    EmergencyRun,
    PreemptSettings,
    PriorityLayer,
    TransitPriority,
    write_emergency_vehicles,
)

SCENARIO = "wulin-am-peak-v1"
# west to east across the district, 6 signals each (Huancheng W Rd or Wulinmen .. Jianguo N Rd)
ROUTES = {
    "tiyuchang": ("f_ty_w-hw_ty hw_ty-wl_ty wl_ty-sq_sw sq_sw-ya_ty ya_ty-zs_ty zs_ty-zh_ty "
                  "zh_ty-jg_ty jg_ty-f_ty_e").split(),
    "fengqi": ("f_fq_w-hw_fq hw_fq-fq_hx fq_hx-wl_fq wl_fq-ya_fq ya_fq-zs_fq zs_fq-zh_fq "
               "zh_fq-jg_fq jg_fq-f_fq_e").split(),
    "qingchun": ("f_hw_s-hw_qc hw_qc-wl_qc wl_qc-ya_qc ya_qc-zs_qc zs_qc-zh_qc zh_qc-jg_qc "
                 "jg_qc-f_qc_e").split(),
    "huancheng": ("f_tianmushan-wulinmen wulinmen-wl_hn wl_hn-sq_nw sq_nw-ya_hn ya_hn-zs_hn "
                  "zs_hn-zh_hn zh_hn-jg_hn jg_hn-f_hn_e").split(),
}
DEPART = 27000.0  # 07:30


def _run(scenario: Any, controller: str, seed: int, layer: PriorityLayer | None,
         add: list[Path]) -> dict[str, float]:
    res = run_episode(scenario, controller, seed=seed, additional_files=add, priority=layer)
    trips = res.trips
    general = trips[~(trips.vtype.str.startswith(EV_TYPE) | (trips.vtype == "bus"))]
    row = {"general_time_loss": float(general.time_loss.mean())}
    ev = trips[trips.vtype.str.startswith(EV_TYPE)]
    if len(ev):
        row["ev_travel_time"] = float(ev.duration.iloc[0])
        row["ev_stops"] = float(ev.waiting_count.iloc[0])
    if layer is not None:
        row.update({f"audit_{k}": float(v) for k, v in layer.audit.items() if k != "steps"})
        if layer.transit is not None:
            buses = layer.bus_rows()
            row["bus_signal_delay"] = float(np.mean([b["signal_delay"] for b in buses]))
            row["bus_lateness"] = float(np.mean([b["lateness"] for b in buses]))
            row["priorities"] = float(len(layer.grants))
    return row


def _arms(modes: list[str], recoveries: list[str]) -> dict[str, tuple[PreemptSettings | None, TransitPriority | None, bool]]:
    arms: dict[str, tuple[PreemptSettings | None, TransitPriority | None, bool]] = {
        "ev-none": (PreemptSettings(enabled=False), None, True)}
    for mode in modes:
        for rec in recoveries:
            arms[f"ev-{mode}-{rec}"] = (PreemptSettings(mode=mode, recovery=rec), None, True)
    arms["bus-none"] = (PreemptSettings(enabled=False), TransitPriority(enabled=False), False)
    arms["bus-tsp"] = (PreemptSettings(enabled=False), TransitPriority(), False)
    # every bus, late or not, with a 20 s extension: what priority can do at most here
    arms["bus-tsp-all"] = (PreemptSettings(enabled=False),
                           TransitPriority(buses="all", max_extension=20.0), False)
    # every bus, 15 s, only while no lane it delays holds more than one halted vehicle
    arms["bus-tsp-cond"] = (PreemptSettings(enabled=False),
                            TransitPriority(buses="all", max_extension=15.0, max_queue=1), False)
    return arms


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--controller", default="field")
    ap.add_argument("--modes", default="detection,green-wave")
    ap.add_argument("--recoveries", default="best-way,immediate")
    ap.add_argument("--arms", default="ev,bus", help="ev, bus or both")
    ap.add_argument("--route", default="tiyuchang", choices=sorted(ROUTES))
    ap.add_argument("--end", default="08:00", help="end of the run (the AM peak ends 09:00)")
    args = ap.parse_args()
    from sim.clock import parse_clock
    from sim.scenario import load_scenario

    scenario = replace(load_scenario(SCENARIO), end=parse_clock(args.end))
    work = Path(tempfile.mkdtemp(prefix="wulin-bench-priority-"))
    runs = (EmergencyRun("ev1", tuple(ROUTES[args.route]), DEPART),)
    ev_file = write_emergency_vehicles(work / "ev.add.xml", runs)
    kinds = tuple(f"{k}-" for k in args.arms.split(","))
    arms = {k: v for k, v in _arms(args.modes.split(","), args.recoveries.split(",")).items()
            if k.startswith(kinds)}
    table: dict[str, list[dict[str, float]]] = {a: [] for a in arms}
    for seed in range(1, args.seeds + 1):
        for name, (pre, tsp, with_ev) in arms.items():
            layer = PriorityLayer(runs if with_ev else (), pre, tsp)
            table[name].append(_run(scenario, args.controller, seed, layer,
                                    [ev_file] if with_ev else []))
            print(f"seed {seed} {name}: {table[name][-1]}", flush=True)
    _print(table, args)


def _print(table: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> None:
    print(f"\n{SCENARIO} to {args.end}, route {args.route}, controller {args.controller}, "
          f"seeds 1..{args.seeds} "
          "(mean ± 95 % CI half-width; change vs the arm's baseline, paired t-test p)")
    for name, rows in table.items():
        base = table.get("ev-none" if name.startswith("ev-") else "bus-none", rows)
        parts = []
        for k in rows[0]:
            vals = [r[k] for r in rows]
            m, half = mean_ci(vals)
            text = f"{k} {m:.2f} ± {half:.2f}"
            ref = [r.get(k, math.nan) for r in base]
            if rows is not base and not math.isnan(ref[0]) and k.startswith(("ev_", "general", "bus_")):
                change = 100 * (np.mean(vals) - np.mean(ref)) / np.mean(ref)
                text += f" ({change:+.1f} %, p={paired_test(ref, vals):.3f})"
            parts.append(text)
        print(f"{name:28s} " + "; ".join(parts))


if __name__ == "__main__":
    main()
