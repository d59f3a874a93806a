"""Speed of the PettingZoo env against raw SUMO and sumo-rl, and scaling over processes.

Prints simulated seconds per wall second and the ratios the issue asks for:

* ``env / raw``: :class:`sim.env.WulinParallelEnv` (delta-t 5 s, random actions, default
  observation: stage one-hot, mask, density and queue of every lane, queue reward) against
  raw SUMO *with the same signal switching*: the env run records every signal state the
  actuator writes (time, signal, state) in a run of its own (``record``: recording costs
  time, so the timed ``env`` run, same seed and actions, records nothing and must end in the
  same state), and the raw run replays exactly those states at
  those times with nothing else (SUMO advances straight from one switching time to the
  next; no state is read, no decision made).  Same seed and same signal states give the same
  traffic, so the ratio is the env's own overhead -- target >= 0.85.  (Random switching
  congests the network more than SUMO's own programs, so comparing with raw SUMO running its
  programs -- the ``raw`` row, one ``simulationStep(end)`` call -- compares different traffic;
  it is printed for reference.);
* ``env / sumo-rl`` with libsumo: sumo-rl 1.4.5 ``SumoEnvironment(single_agent=False)`` on the
  same network and demand, delta-t 5 s, its default observation (phase one-hot, min-green
  flag, density and queue per lane) -- target >= 1 while we also read speed, waiting time and
  out-lane counts;
* the same two with traci (target: 10x ahead of sumo-rl, thanks to subscriptions);
* ``env v2 / env``: the same env, seed and random actions (so the same traffic) with the
  observation and reward of ``agents/configs/wulin-am-peak-ppo-v2.toml`` (approach bins read
  per vehicle, neighbours, signal type; time-loss reward, which reads lane speeds): what the
  richer observation costs;
* 1, 2 and 4 environments in subprocesses (``agents.vec_env.SignalVecEnv``) -- target: 2
  processes >= 1.8x one.

Each measurement runs in a fresh Python process (libsumo allows one simulation per process).
sumo-rl is optional: ``pip install sumo-rl`` into the venv (not a project dependency); without
it those rows are skipped.  sumo-rl refuses to import without ``SUMO_HOME``: the benchmark
sets it, for the sumo-rl child process only, to the eclipse-sumo wheel's folder.

Note: the controlled runs do not see the same traffic as raw SUMO (random actions change the
queues), and on a shared 2-core machine other work skews single runs: compare ratios from
one run, and repeat (``--repeat``) when the machine is busy.

Usage::

    .venv/bin/python benchmarks/bench_env.py [--scenario wulin-am-peak-v1] [--seconds 1800]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.scenario import Scenario

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))


def _default_scenario() -> str:
    from sim.scenario import scenario_files

    return "wulin-am-peak-v1" if "wulin-am-peak-v1" in scenario_files() else "grid-am-v1"


# ------------------------------------------------------------------ single measurements
def measure_raw(scenario: str, seconds: float, backend: str) -> dict:
    from sim.scenario import load_scenario
    from sim.simulation import Simulation

    sc = load_scenario(scenario)
    sim = Simulation(sc, seed=1, backend=backend)  # type: ignore[arg-type]
    sim.start()
    t0 = time.perf_counter()
    sim.step_until(sc.begin + seconds)
    wall = time.perf_counter() - t0
    sim.cleanup()
    return {"sim_s": seconds, "wall_s": wall}


def measure_replay(scenario: str | Scenario, seconds: float, backend: str, record: Path) -> dict:
    """Raw SUMO replaying the signal states an env run wrote (see the module docstring)."""
    from sim.scenario import load_scenario
    from sim.simulation import Simulation

    events = json.loads(record.read_text())  # [[time, signal id, state], ...] in time order
    sc = load_scenario(scenario) if isinstance(scenario, str) else scenario
    sim = Simulation(sc, seed=1, backend=backend)  # type: ignore[arg-type]
    sim.start()
    set_state = sim.conn.trafficlight.setRedYellowGreenState
    end = sc.begin + seconds
    c0, t0 = time.thread_time(), time.perf_counter()
    i, n = 0, len(events)
    while i < n:
        t = events[i][0]
        if t > sim.time + 1e-9:
            sim.step_until(min(t, end))
        while i < n and events[i][0] <= t + 1e-9:
            set_state(events[i][1], events[i][2])
            i += 1
    if sim.time < end - 1e-9:
        sim.step_until(end)
    wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
    sim.cleanup()
    return {"sim_s": seconds, "wall_s": wall, "cpu_s": cpu, "switches": n}


V2_CONFIG = {"observation": ["stage", "green-ready", "mask", "signal-type", "stage-pressure",
                              "density", "queue", "approach", "upstream"], "reward": "time-loss"}
"""The v2 training config's observation and reward (its actuator aside: same switching)."""


def measure_env(scenario: str | Scenario, seconds: float, backend: str,
                record: Path | None = None, config: dict | None = None) -> dict:
    import numpy as np

    from sim.env import WulinParallelEnv

    # ``record``: write every signal state the actuator sets (for the replay).  The recording
    # costs the env time of its own, so the timed env run records nothing: a separate run
    # (same seed, same actions) records, and the two runs' digests must agree.
    env = WulinParallelEnv(scenario, config={"delta_t": 5, "episode_seconds": seconds, **(config or {})},
                           backend=backend)
    env.reset(seed=1)
    act = env.engine.actuator
    assert act is not None
    ids = env.engine.layout.signal_ids
    start = [(env.engine.time, s, st) for s, st in enumerate(act.states)]
    act.record = record is not None  # every state the actuator writes from now on
    rng = np.random.default_rng(0)
    K = env.engine.n_actions
    lanes = env.engine.layout.n_in
    c0, t0 = time.thread_time(), time.perf_counter()
    steps = 0
    while env.agents:
        acts = rng.integers(0, K, len(env.agents))
        env.step({a: int(acts[i]) for i, a in enumerate(env.agents)})
        steps += 1
    wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
    sim_s = env.engine.time - env.engine.scenario.begin
    if record is not None:
        events = [[round(t, 6), ids[s], st] for t, s, st in [*start, *act.history]]
        record.write_text(json.dumps(events))
    state = env.engine.state  # the last state read: equal in two runs of the same traffic
    digest = hashlib.sha256(state.count.tobytes() + state.queue.tobytes()).hexdigest()[:16]
    env.close()
    return {"sim_s": sim_s, "wall_s": wall, "cpu_s": cpu, "decisions": steps,
            "signals": len(env.possible_agents), "in_lanes": lanes, "digest": digest}


def measure_sumorl(scenario: str, seconds: float, backend: str) -> dict:
    from sim.scenario import load_scenario

    sc = load_scenario(scenario)
    from sumo_rl import SumoEnvironment  # needs SUMO_HOME (set by the parent for this child)

    env = SumoEnvironment(
        net_file=str(sc.net_file), route_file=",".join(str(p) for p in sc.route_files),
        begin_time=int(sc.begin), num_seconds=int(seconds), delta_time=5, single_agent=False,
        sumo_seed=1, sumo_warnings=False, add_system_info=False, add_per_agent_info=False,
        # the scenario's additional files (bus stops the routes refer to)
        additional_sumo_cmd=(f"--additional-files {','.join(str(p) for p in sc.additional_files)}"
                             if sc.additional_files else None),
    )
    env.reset()
    t0 = time.perf_counter()
    steps = 0
    while True:
        acts = {a: env.action_spaces(a).sample() for a in env.ts_ids}
        _, _, dones, _ = env.step(acts)
        steps += 1
        if dones["__all__"]:
            break
    wall = time.perf_counter() - t0
    sim_s = env.sim_step - sc.begin
    env.close()
    return {"sim_s": sim_s, "wall_s": wall, "decisions": steps}


def measure_scaling(scenario: str, seconds: float, n_envs: int) -> dict:
    import numpy as np

    from agents.vec_env import SignalVecEnv

    venv = SignalVecEnv({"scenario": scenario, "config": {"delta_t": 5, "episode_seconds": seconds}},
                        n_envs=n_envs, seed=0, subprocess=True)
    try:
        venv.reset()
        rng = np.random.default_rng(0)
        n_actions = int(venv.action_space.n)
        steps = int(seconds / 5)
        t0 = time.perf_counter()
        for _ in range(steps):
            venv.step(rng.integers(0, n_actions, venv.num_envs))
        wall = time.perf_counter() - t0
    finally:
        venv.close()
    return {"sim_s": steps * 5.0 * n_envs, "wall_s": wall, "n_envs": n_envs}


def _record_file(backend: str) -> Path:
    import tempfile

    return Path(tempfile.gettempdir()) / f"wulin-bench-switching-{os.getppid()}-{backend}.json"


def _child(kind: str, scenario: str, seconds: float) -> None:
    name, _, arg = kind.partition(":")
    if name == "raw":
        out = measure_raw(scenario, seconds, arg)
    elif name == "replay":
        out = measure_replay(scenario, seconds, arg, _record_file(arg))
    elif name == "record":
        out = measure_env(scenario, seconds, arg, _record_file(arg))
    elif name == "env":
        out = measure_env(scenario, seconds, arg)
    elif name == "envv2":
        out = measure_env(scenario, seconds, arg, config=V2_CONFIG)
    elif name == "sumorl":
        out = measure_sumorl(scenario, seconds, arg)
    elif name == "scale":
        out = measure_scaling(scenario, seconds, int(arg))
    else:
        raise SystemExit(f"unknown measurement {kind}")
    print("RESULT " + json.dumps(out))


def run_child(kind: str, scenario: str, seconds: float) -> dict | None:
    env = dict(os.environ)
    if kind.startswith("sumorl"):
        import sumo

        env["SUMO_HOME"] = sumo.SUMO_HOME  # sumo-rl's import requires it; this child only
        if kind.endswith("libsumo"):
            env["LIBSUMO_AS_TRACI"] = "1"
        else:
            env.pop("LIBSUMO_AS_TRACI", None)
    cmd = [sys.executable, __file__, "--child", kind, "--scenario", scenario, "--seconds", str(seconds)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    print(f"  {kind}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
    return None


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _have_sumorl() -> bool:
    import importlib.util

    return importlib.util.find_spec("sumo_rl") is not None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default=None)
    ap.add_argument("--seconds", type=float, default=1800.0, help="simulated seconds per run")
    ap.add_argument("--repeat", type=int, default=1, help="take the best of N runs per row")
    ap.add_argument("--skip-traci", action="store_true")
    ap.add_argument("--skip-scaling", action="store_true")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    scenario = args.scenario or _default_scenario()
    if args.child:
        _child(args.child, scenario, args.seconds)
        return

    from rich.console import Console
    from rich.progress import track

    console = Console()
    kinds = ["raw:libsumo", "record:libsumo", "env:libsumo", "replay:libsumo", "envv2:libsumo"]
    have_rl = _have_sumorl()
    if have_rl:
        kinds.append("sumorl:libsumo")
    if not args.skip_traci:
        kinds += ["raw:traci", "record:traci", "env:traci", "replay:traci"] + (["sumorl:traci"] if have_rl else [])
    if not args.skip_scaling:
        kinds += ["scale:1", "scale:2", "scale:4"]
    console.print(f"scenario {scenario}, {args.seconds:g} simulated s per run, best of {args.repeat}, "
                  f"{os.cpu_count()} CPUs, load average {_load()}"
                  + ("" if have_rl else "; sumo-rl not installed: skipped"))
    rate: dict[str, float] = {}
    info: dict[str, dict] = {}
    for kind in track(kinds * args.repeat, description="measuring", console=console, transient=True):
        res = run_child(kind, scenario, args.seconds)
        if res is None:
            continue
        r = res["sim_s"] / max(res["wall_s"], 1e-9)
        if r > rate.get(kind, 0.0):
            rate[kind] = r
            info[kind] = res
    for kind in kinds:
        if kind in rate:
            extra = {k: v for k, v in info[kind].items() if k not in ("sim_s", "wall_s")}
            console.print(f"  {kind:<15} {rate[kind]:9.0f} sim-s/wall-s  {extra if extra else ''}")

    for b in ("libsumo", "traci"):
        if len({info[k]["digest"] for k in (f"record:{b}", f"env:{b}") if k in info}) > 1:
            console.print(f"[red]record:{b} and env:{b} ended in different states: the replay "
                          "below is not the env's traffic[/]")

    def ratio(a: str, b: str, label: str, target: float) -> None:
        if a in rate and b in rate:
            x = rate[a] / rate[b]
            ok = "meets" if x >= target else "misses"
            console.print(f"  {label:<38} {x:6.2f}x  ({ok} target {target:g}x)")

    console.print(f"[bold]ratios[/] (load average at the end {_load()})")
    ratio("env:libsumo", "replay:libsumo", "env / raw SUMO, same switching (libsumo)", 0.85)
    if "cpu_s" in info.get("env:libsumo", {}) and "cpu_s" in info.get("replay:libsumo", {}):
        # on the thread's CPU clock (SUMO runs in the thread with libsumo): other load barely
        # moves it (the rows above are wall clock)
        x = info["replay:libsumo"]["cpu_s"] / info["env:libsumo"]["cpu_s"]
        console.print(f"  {'  the same on thread CPU time':<38} {x:6.2f}x")
    ratio("env:libsumo", "raw:libsumo", "env / raw SUMO, own programs (libsumo)", 0.0)
    ratio("envv2:libsumo", "env:libsumo", "env v2 observation / env (libsumo)", 0.0)
    if len({info[k]["digest"] for k in ("env:libsumo", "envv2:libsumo") if k in info}) > 1:
        console.print("[red]env and env v2 ended in different states: not the same traffic[/]")
    ratio("env:libsumo", "sumorl:libsumo", "env / sumo-rl (libsumo)", 1.0)
    ratio("env:traci", "replay:traci", "env / raw SUMO, same switching (traci)", 0.0)
    ratio("env:traci", "sumorl:traci", "env / sumo-rl (traci)", 10.0)
    ratio("scale:2", "scale:1", "2 processes / 1", 1.8)
    ratio("scale:4", "scale:1", "4 processes / 1", 0.0)


if __name__ == "__main__":
    main()
