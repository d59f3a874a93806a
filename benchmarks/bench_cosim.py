"""Central control over NTCIP in closed loop: how long one central round takes, how fast the loop runs.

One ``run_cosim`` run (SUMO, one SNMP emulator per signal on loopback, max-pressure centrally)
on the Wulin AM peak (24 signals) by default.  From that one run it prints:

* the **round**: poll every device's phase status and command them (every simulated second),
  wall milliseconds at the median, p95, p99 and max, and the decision rounds (those that carry a
  controller decision) apart; the process's CPU milliseconds per round beside them (central,
  agents and codec share one process, so CPU time is what the round costs, wall time what the
  loaded machine made of it);
* the **real-time factor**: simulated seconds over wall seconds of the whole run (SUMO start-up
  and trip files included), and over the process's CPU seconds;
* the 1-minute load average before and after, and the cores, so a figure can be read against
  what else ran.

``--profile`` runs a short window under cProfile instead and prints where a round's time goes
(the BER codec of :mod:`deploy.ber` came out of such a profile: pyasn1 took most of a round).

Run: ``.venv/bin/python benchmarks/bench_cosim.py [--scenario ID] [--until HH:MM] [--snmp 3|2c] [--seed N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(int(q * len(s)), len(s) - 1)] * 1e3 if s else float("nan")


def _row(name: str, xs: list[float]) -> str:
    return (f"{name:28s} n={len(xs):6d}  median {_pct(xs, .5):7.2f}  p95 {_pct(xs, .95):7.2f}  "
            f"p99 {_pct(xs, .99):7.2f}  max {_pct(xs, 1.0):7.2f} ms")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="wulin-am-peak-v1")
    ap.add_argument("--controller", default="max-pressure")
    ap.add_argument("--until", default=None, help="stop at this clock time (HH:MM); default: the scenario's end")
    ap.add_argument("--snmp", default="3", choices=["3", "2c"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", action="store_true", help="cProfile the run and print the top functions")
    a = ap.parse_args(argv)

    from controllers.base import make_controller
    from deploy.sumo_bridge import run_cosim
    from sim.clock import parse_clock
    from sim.scenario import load_scenario

    sc = load_scenario(a.scenario)
    end = parse_clock(a.until, "--until") if a.until else sc.end
    load0 = os.getloadavg()[0]
    if a.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        res = prof.runcall(run_cosim, sc, make_controller(a.controller), a.seed, snmp=a.snmp, end=end)
        pstats.Stats(prof).sort_stats("tottime").print_stats(20)
    else:
        res = run_cosim(sc, make_controller(a.controller), a.seed, snmp=a.snmp, end=end)
    load1 = os.getloadavg()[0]
    c = res.central
    print(f"{sc.id} {a.controller} seed {a.seed}, SNMP v{a.snmp}, {round(c.polls / max(c.rounds, 1))} devices, "
          f"{res.sim_time:,.0f} s simulated; {os.cpu_count()} cores, load average (1 min) {load0:.2f} before, "
          f"{load1:.2f} after")
    print(_row("round (poll + commands), wall", c.round_wall))
    print(_row("round, process CPU", c.round_cpu))
    print(_row("decision round, wall", c.decision_wall))
    print(f"rounds under 50 ms (wall): {sum(x < 0.05 for x in c.round_wall) / max(len(c.round_wall), 1):.1%}; "
          f"mean round {statistics.fmean(c.round_wall) * 1e3:.2f} ms wall, {statistics.fmean(c.round_cpu) * 1e3:.2f} ms CPU")
    print(f"real-time factor: {res.sim_time / res.wall_time:.1f}x wall ({res.wall_time:,.1f} s), "
          f"{res.sim_time / max(res.cpu_time, 1e-9):.1f}x CPU ({res.cpu_time:,.1f} s)")
    print(f"safety: {res.unsafe_count} unsafe states, {res.alarms} alarms, {res.fallbacks} fallbacks; "
          f"link: {c.polls:,} GETs, {c.sets:,} SETs, {c.timeouts} unanswered, {c.refused} refused")


if __name__ == "__main__":
    main()
