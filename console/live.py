"""The cockpit's live mode: a scenario running in SUMO with the deployed plans, shown as it runs.

The simulation runs in a process of its own (:func:`deploy.sumo_bridge.live_worker`, started
with ``spawn``), so it never holds the web server's interpreter; one thread here reads its
frames and hands the newest to the :class:`~console.cockpit.Monitor`, which pushes it to every
open cockpit over the existing server-sent-event stream.  One run at a time; it ends when the
scenario does, on :meth:`LiveRun.stop`, or when the console shuts down.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import re
import threading
from typing import Any

from console.cockpit import Monitor
from controllers.plan import TimingPlan
from sim.errors import WulinError

SCENARIO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")
JOIN_S = 5.0
LIVE_SPEEDS = (0.1, 1000.0)  # simulated seconds per wall second


def check_request(scenario: str, speed: float) -> None:
    """Refuse a scenario id that cannot be one, or a speed out of bounds (one clear line)."""
    if not SCENARIO_ID.fullmatch(scenario):
        raise WulinError(f"live scenario {scenario[:80]!r}: give a scenario id such as wulin-am-peak-v1")
    if not LIVE_SPEEDS[0] <= speed <= LIVE_SPEEDS[1]:
        raise WulinError(f"live speed {speed:g}: use {LIVE_SPEEDS[0]:g} to {LIVE_SPEEDS[1]:g} x real time")


class LiveRun:
    """At most one live simulation, its process and the thread that reads its frames."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self._ctx = mp.get_context("spawn")
        self._proc: Any = None
        self._stop: Any = None
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._reader is not None and self._reader.is_alive()

    def start(self, scenario: str, speed: float, plans: dict[str, TimingPlan]) -> None:
        """Start ``scenario`` at ``speed`` with ``plans`` (signal -> deployed plan)."""
        check_request(scenario, speed)
        from deploy.sumo_bridge import (
            live_worker,  # SUMO itself loads only in the run's own process
        )

        with self._lock:
            if self.running:
                raise WulinError("a live simulation is running already; stop it first")
            out, self._stop = self._ctx.Queue(maxsize=8), self._ctx.Event()
            self._proc = self._ctx.Process(
                target=live_worker, name="console-live", daemon=True,
                args=(scenario, {sid: p.to_dict() for sid, p in plans.items()}, speed, out, self._stop))
            self.monitor.publish_live({"starting": scenario, "speed": speed})
            self._proc.start()
            self._reader = threading.Thread(target=self._read, args=(self._proc, out, self._stop), name="console-live-reader",
                                            daemon=True)
            self._reader.start()

    def _read(self, proc: Any, out: Any, stop: Any) -> None:
        while True:
            try:
                item = out.get(timeout=0.5)
            except queue.Empty:
                if proc.is_alive():
                    continue
                item = ({"done": "stopped"} if stop.is_set() else
                        {"error": f"the live simulation ended unexpectedly (exit code {proc.exitcode})"})
            self.monitor.publish_live(item)
            if "done" in item or "error" in item:
                break
        proc.join(JOIN_S)

    def stop(self) -> None:
        """Stop the run (if any) and wait for its process; killed if it does not end in time."""
        with self._lock:
            proc, reader = self._proc, self._reader
            if proc is None:
                return
            self._stop.set()
            proc.join(JOIN_S)
            if proc.is_alive():
                proc.terminate()
                proc.join(JOIN_S)
            if reader is not None:
                reader.join(JOIN_S)
