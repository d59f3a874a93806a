"""`wulin adaptive run` on the wall clock against one emulator per signal: how long a round takes.

In a temporary folder (its own store, signing key and secrets file) this sets up what a field
deployment has: one NTCIP emulator per signal of the scenario's network on loopback, each
running the network's program with one stop-bar detector per incoming lane, registered as its
signal's device; each signal's program proposed and approved as its fallback plan; a
max-pressure configuration proposed, approved and deployed (the fallback plans downloaded and
verified, then central control).  The emulators run 300 times faster while the plans are
deployed (each waits for a cycle boundary), then at wall speed.

Then ``wulin adaptive run HASH --scenario ID --for SECONDS`` runs in a process of its own
(login by an API token) and its output is printed: its status lines and, at the end, the
round's median / p95 / max (poll every device and command them, wall milliseconds).  Meanwhile
this process feeds the detectors random vehicles (each lane: a vehicle standing on its loop
with probability ``--presence``, redrawn every second, one vehicle counted per second present)
so the controller changes stages.  Emulators, detector feed and the central process share the
machine: the 1-minute load average before and after is printed with the cores.

Run: ``.venv/bin/python benchmarks/bench_adaptive_run.py [--scenario ID] [--seconds N] [--presence P]``.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EVIDENCE = {"kind": "benchmark", "note": "the network's own program, as the fallback"}


def _field(scenario: str, work: Path):  # noqa: ANN202 - (store, emulators, clocks, config hash)
    from dataclasses import replace

    from controllers.fixed_time import plan_from_spec
    from deploy import adaptive_service, service
    from deploy.adaptive import AdaptiveConfig, AdaptiveStore
    from deploy.detectors import detector_calls
    from deploy.emulator import ControllerEmulator, SwitchClock
    from deploy.identity import Principal
    from deploy.profile import bounds_admitting, single_ring_profile
    from deploy.secrets import SecretsFile
    from deploy.service import DeployOptions
    from deploy.store import PlanStore
    from sim.scenario import load_scenario
    from sim.topology import load_signal_specs

    root, ann = Principal("root", "admin", "bench"), Principal("ann", "engineer", "bench")
    bob = Principal("bob", "supervisor", "bench")
    store = PlanStore(work / "store.sqlite")
    store.init_admin("root", "root-password-bench")
    store.add_user(root, "ann", "engineer", "ann-password-bench")
    store.add_user(root, "bob", "supervisor", "bob-password-bench")
    specs = load_signal_specs(load_scenario(scenario).net_file)
    emus, clocks, fallback = [], [], {}
    for sid, spec in specs.items():
        plan = replace(plan_from_spec(spec), name="local (network program)")
        profile = single_ring_profile(sid, len(plan.stages), cycle_bounds=bounds_admitting(plan))
        clocks.append(SwitchClock(300))
        emus.append(ControllerEmulator(profile, plan, clock=clocks[-1], verify_s=1, conflicts=spec.conflicts,
                                       detectors=detector_calls(spec), idle_s=0.5).start())
        SecretsFile().put(sid, emus[-1].credentials)
        store.register_device(sid, emus[-1].host, emus[-1].port, profile, emus[-1].caps)
        fallback[sid] = store.propose(plan, ann, evidence=EVIDENCE, conflicts=[list(r) for r in spec.conflicts]).hash
        store.approve(fallback[sid], bob)
    plans = [store.get(h).plan for h in fallback.values()]
    cfg = AdaptiveConfig.parse({
        "name": f"central max-pressure on {scenario}", "controller": "max-pressure",
        "bounds": {"min_green": min(s.min_green for p in plans for s in p.stages),
                   "max_cycle": max(max(p.cycle for p in plans), 180.0)},
        "fallback": fallback})
    astore = AdaptiveStore(store)
    h = astore.propose(cfg, ann).hash
    astore.approve(h, bob)
    opts = DeployOptions(activation_timeout_s=30, activation="schedule")
    for ph in fallback.values():  # fast: each waits for a cycle boundary (the adaptive deploy would do it)
        if not (out := service.deploy(store, ph, ann, opts)).ok:
            raise SystemExit(f"fallback plan deploy failed: {out.message}")
    for emu, clock in zip(emus, clocks, strict=True):  # at wall speed before central control begins
        with emu.lock:
            clock.set_scale(1.0)
    if not (out := adaptive_service.deploy(store, h, ann, opts)).ok:
        raise SystemExit(f"deploy failed: {out.message}")
    return store, emus, h, store.issue_token(root, "ann").token


def _feed(emus: list, presence: float, stop: threading.Event) -> None:  # noqa: ANN001 - ControllerEmulator
    from deploy.detectors import DetectorReading

    rng = random.Random(1)
    while not stop.wait(1.0):
        for emu in emus:
            readings = {}
            for d in range(1, emu.unit.n_detectors + 1):
                on = rng.random() < presence
                readings[d] = DetectorReading(on, int(on))
            with emu.lock:
                emu.unit.feed(readings)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="wulin-am-peak-v1")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--presence", type=float, default=0.3, help="chance a lane's loop holds a vehicle each second")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="wulin-bench-adaptive-") as tmp:
        work = Path(tmp)
        env = {**os.environ, "XDG_CONFIG_HOME": str(work / "config"), "WULIN_STORE": str(work / "store.sqlite"),
               "WULIN_SECRETS": str(work / "config" / "device-secrets.json"), "COLUMNS": "200"}
        os.environ.update({k: env[k] for k in ("XDG_CONFIG_HOME", "WULIN_STORE", "WULIN_SECRETS")})
        store, emus, h, token = _field(a.scenario, work)
        stop = threading.Event()
        feeder = threading.Thread(target=_feed, args=(emus, a.presence, stop), daemon=True)
        load0 = os.getloadavg()[0]
        try:
            feeder.start()
            cmd = [sys.executable, "-m", "wulin", "adaptive", "run", h[:12], "--scenario", a.scenario,
                   "--for", f"{a.seconds:g}", "--status-every", "10", "--token", token]
            print(f"{len(emus)} emulators; `wulin adaptive run {h[:12]} --scenario {a.scenario} "
                  f"--for {a.seconds:g} --status-every 10`", flush=True)
            run = subprocess.run(cmd, cwd=REPO, env=env, text=True, capture_output=True, timeout=a.seconds + 600)
            print(run.stdout + run.stderr, flush=True)
        finally:
            stop.set()
            for e in emus:
                e.stop()
            store.close()
        print(f"load average (1 min) {load0:.2f} before, {os.getloadavg()[0]:.2f} after; {os.cpu_count()} cores")
        if run.returncode != 0:
            raise SystemExit(run.returncode)


if __name__ == "__main__":
    main()
