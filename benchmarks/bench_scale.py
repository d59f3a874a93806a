"""State reading at scale: a generated 256-signal grid against raw SUMO, in one run.

Generates (into a temporary folder, removed at the end; never committed) a 16 x 16
signalised grid with ``netgenerate`` from the eclipse-sumo wheel (150 m blocks, 3 lanes per
direction, fixed-time programs: 256 signals, 3,072 controlled in-lanes) and realistic demand
from ``randomTrips.py`` (trips between fringe edges, routed by ``duarouter``, one departure
every ``--period`` seconds), then measures, each in a fresh Python process (libsumo allows one
simulation per process), the same demand and seed:

1. **raw SUMO**: SUMO's own programs, one ``simulationStep(end)`` call, tripinfo written as
   in an episode;
2. **max-pressure**: ``experiments.episode.run_episode`` (kernels warmed first); its time is
   the episode loop's (SUMO steps + state reading + controller), start-up and output
   parsing excluded as they are for raw SUMO;
3. **PettingZoo env**: ``sim.env.WulinParallelEnv`` (delta-t 5 s, default observation and
   reward, random actions); a run of its own before the timed ones (same seed and actions)
   records every signal state the actuator writes, since recording costs time of its own, and
   every timed run must end in the recorded run's state;
4. **raw replay**: raw SUMO setting exactly those states at those times
   (``setRedYellowGreenState``, advancing straight from one switching time to the next), no
   state read: the same traffic as the env, without the env.

Each run is timed on the thread's CPU clock (``time.thread_time``: with libsumo SUMO runs in
that thread; other processes' load barely moves it) and on the wall clock; the four runs are
repeated ``--repeat`` times, interleaved, and the fastest of each is kept.  Printed: simulated
seconds per CPU second and per wall second of each, the ratios (targets, on CPU time:
max-pressure >= 0.85 of raw SUMO, env >= 0.80 of the replay), the parts of the max-pressure
episode, and memory per signal: the process's peak RSS minus its RSS before SUMO started,
divided by the number of signals.

Usage::

    .venv/bin/python benchmarks/bench_scale.py [--grid 16] [--seconds 1800] [--period 0.6]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for path in (REPO, HERE):  # run as a script from anywhere; bench_env beside it
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

SCENARIO_ID = "scale-grid-v1"


# ------------------------------------------------------------------ the network
def generate(folder: Path, grid: int, lanes: int, seconds: float, period: float, seed: int) -> Path:
    """Write the grid, its demand and a scenario TOML under ``folder``; return the TOML."""
    import sumo

    from sim.tools import sumo_binary, sumo_tools_dir

    net, trips, routes = folder / "grid.net.xml", folder / "grid.trips.xml", folder / "grid.rou.xml"
    subprocess.run([
        sumo_binary("netgenerate"), "--grid", "--grid.number", str(grid), "--grid.length", "150",
        "--grid.attach-length", "150", "--default.lanenumber", str(lanes),
        "--default-junction-type", "traffic_light", "--tls.default-type", "static",
        "--no-turnarounds", "true", "--no-warnings", "true", "--seed", str(seed),
        "--output-file", str(net),
    ], check=True, capture_output=True)
    env = {**os.environ, "SUMO_HOME": sumo.SUMO_HOME}  # randomTrips finds duarouter through it
    subprocess.run([
        sys.executable, str(sumo_tools_dir() / "randomTrips.py"), "-n", str(net), "-o", str(trips),
        "-r", str(routes), "--fringe-factor", "20", "--min-distance", "600", "-b", "0",
        "-e", f"{seconds:g}", "--period", f"{period:g}", "--seed", str(seed),
        "--trip-attributes", 'departLane="best" departSpeed="max"',
    ], check=True, capture_output=True, env=env)
    (folder / "scenarios").mkdir()
    toml = folder / "scenarios" / f"{SCENARIO_ID}.toml"
    toml.write_text(f'description = "generated {grid}x{grid} grid"\nnet = "{net.name}"\n'
                    f'routes = ["{routes.name}"]\nbegin = 0\nend = {seconds:g}\n')
    return toml


# ------------------------------------------------------------------ measurements (children)
def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_raw(sc) -> dict:  # type: ignore[no-untyped-def]
    from sim.simulation import Simulation

    sim = Simulation(sc, seed=1, tripinfo=True)
    sim.start()
    c0, t0 = time.thread_time(), time.perf_counter()
    sim.step_until(sc.end)
    wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
    sim.cleanup()
    return {"sim_s": sc.duration, "wall_s": wall, "cpu_s": cpu}


def measure_max_pressure(sc) -> dict:  # type: ignore[no-untyped-def]
    from experiments.episode import run_episode

    r = run_episode(sc, "max-pressure", seed=1)
    loop = r.step_time + r.state_time + r.controller_time
    cpu = r.step_cpu + r.state_cpu + r.controller_cpu
    return {"sim_s": sc.duration, "wall_s": loop, "cpu_s": cpu, "sumo_cpu_s": r.step_cpu,
            "state_cpu_s": r.state_cpu, "controller_cpu_s": r.controller_cpu,
            "decisions": r.decisions}


def _child(kind: str, toml: Path, record: Path) -> None:
    import bench_env

    from controllers.base import warm_up_kernels
    from sim.scenario import scenario_from_toml
    from sim.state import DistrictLayout
    from sim.topology import load_signal_specs

    sc = scenario_from_toml(toml)
    layout = DistrictLayout.from_specs(load_signal_specs(sc.net_file))
    if kind == "max-pressure":
        warm_up_kernels(layout)
    base = _rss_mib()
    if kind == "raw":
        out = measure_raw(sc)
    elif kind == "max-pressure":
        out = measure_max_pressure(sc)
    elif kind == "record":
        out = bench_env.measure_env(sc, sc.duration, "libsumo", record)
    elif kind == "env":
        out = bench_env.measure_env(sc, sc.duration, "libsumo")
    else:
        out = bench_env.measure_replay(sc, sc.duration, "libsumo", record)
    out["mib"] = _peak_mib() - base
    out["signals"], out["in_lanes"] = layout.n_signals, layout.n_in
    print("RESULT " + json.dumps(out))


def run_child(kind: str, toml: Path, record: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--toml", str(toml), "--record", str(record)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])  # type: ignore[no-any-return]
    raise SystemExit(f"{kind}: failed\n{proc.stderr[-3000:]}")


# ------------------------------------------------------------------ report
def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def best(runs: list[dict]) -> dict:
    """The fastest of repeated runs, by thread CPU time (wall: the fastest wall time)."""
    out = dict(min(runs, key=lambda r: r["cpu_s"]))
    out["wall_s"] = min(r["wall_s"] for r in runs)
    out["mib"] = max(r["mib"] for r in runs)
    return out


def report(res: dict[str, dict]) -> None:
    cpu = {k: v["sim_s"] / v["cpu_s"] for k, v in res.items()}
    wall = {k: v["sim_s"] / v["wall_s"] for k, v in res.items()}
    sig = res["raw"]["signals"]
    print(f"{'run':14} {'sim-s/CPU-s':>12} {'sim-s/wall-s':>13} {'peak RSS - start':>17} "
          f"{'per signal':>11}")
    for k, v in res.items():
        print(f"{k:14} {cpu[k]:12.1f} {wall[k]:13.1f} {v['mib']:13.1f} MiB "
              f"{v['mib'] * 1024 / sig:8.1f} KiB")
    mp = res["max-pressure"]
    print(f"max-pressure episode (CPU s): SUMO {mp['sumo_cpu_s']:.2f}, state reading "
          f"{mp['state_cpu_s']:.2f}, controller {mp['controller_cpu_s']:.2f}; {mp['decisions']} "
          f"decisions; env: {res['replay']['switches']} signal states replayed")

    def ratio(a: str, b: str, label: str, target: float | None) -> None:
        x, y = cpu[a] / cpu[b], wall[a] / wall[b]
        verdict = "" if target is None else f"  ({'meets' if x >= target else 'misses'} target {target:g})"
        print(f"  {label:<44} CPU {x:5.2f}   wall {y:5.2f}{verdict}")

    print("ratios (speed of the first over the second; target judged on CPU time)")
    ratio("max-pressure", "raw", "max-pressure / raw SUMO (own programs)", 0.85)
    ratio("env", "replay", "PettingZoo env / raw replay (same switching)", 0.80)
    ratio("env", "raw", "PettingZoo env / raw SUMO (own programs)", None)
    extra = (res["max-pressure"]["mib"] - res["raw"]["mib"]) * 1024 / sig
    print(f"  memory: max-pressure episode {extra:+.1f} KiB per signal over raw SUMO")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grid", type=int, default=16, help="signals per side (16: 256 signals)")
    ap.add_argument("--lanes", type=int, default=3, help="lanes per direction")
    ap.add_argument("--seconds", type=float, default=1800.0, help="simulated seconds per run")
    ap.add_argument("--period", type=float, default=0.6, help="seconds between departures")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=2, help="rounds of the four runs (best of N)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--toml", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--record", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child, args.toml, args.record)
        return
    folder = Path(tempfile.mkdtemp(prefix="wulin-bench-scale-"))
    try:
        toml = generate(folder, args.grid, args.lanes, args.seconds, args.period, args.seed)
        vehicles = (folder / "grid.rou.xml").read_text().count("<vehicle ")
        print(f"{args.grid}x{args.grid} grid, {args.lanes} lanes, {vehicles} vehicles over "
              f"{args.seconds:g} s (randomTrips --period {args.period:g}, seed {args.seed}); "
              f"{os.cpu_count()} CPUs, load average {_load()}")
        record = folder / "switching.json"
        recorded = run_child("record", toml, record)  # the switching the replay repeats
        kinds = ("raw", "max-pressure", "env", "replay")
        runs: dict[str, list[dict]] = {k: [] for k in kinds}
        for _ in range(max(args.repeat, 1)):  # interleaved: the machine's load drifts
            for k in kinds:
                runs[k].append(run_child(k, toml, record))
        if any(r["digest"] != recorded["digest"] for r in runs["env"]):
            raise SystemExit("the timed env runs did not end in the recorded run's state: "
                             "the replay would not be the env's traffic")
        res = {k: best(v) for k, v in runs.items()}
        print(f"{res['raw']['signals']} signals, {res['raw']['in_lanes']} controlled in-lanes; "
              f"load average at the end {_load()}")
        report(res)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
