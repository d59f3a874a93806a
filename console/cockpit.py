"""What every registered controller runs, read through the NTCIP adapter and cached.

One background thread reads each device's status (short timeout, no retries, so one dead
controller does not hold up the others) every ``poll_s`` seconds and keeps the latest
:class:`SignalStatus` per signal; viewers read the cache, never the devices, so fifty browsers
cost the controllers nothing more than one.  ``version`` grows with every change so the
server-sent-event streams send only news.  The live mode (:mod:`console.live`) publishes its
frames here too, so the same stream carries them.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from controllers.plan import TimingPlan
from deploy import oids as O
from deploy.ntcip import NtcipAdapter, adapter_for
from deploy.service import read_device
from deploy.snmp import SnmpError, SnmpTimeout
from deploy.store import Device, PlanStore
from sim.errors import WulinError


@dataclass(frozen=True)
class SignalStatus:
    """One controller as last read.

    Attributes:
        signal_id: The signal.
        mode: ``plan``, ``fallback`` (free operation), ``alarm`` (device alarms, or drift: the
            controller does not run the plan the store says is deployed) or ``offline``.
        pattern: Running pattern (None: not read).
        health: ``ok`` or the problems seen.
        last_contact: ISO time of the last answer (None: never).
        live_plan: Short hash of the plan the store says is deployed (None: none).
        address: ``host:port`` of the controller.
    """

    signal_id: str
    mode: str
    pattern: int | None
    health: str
    last_contact: str | None
    live_plan: str | None
    address: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _drift(ad: NtcipAdapter, live: TimingPlan | None) -> str | None:
    """Why the controller differs from the store's deployed plan (None: it runs it, or none is deployed)."""
    if live is None:
        return None
    found = read_device(ad, live)
    if found.plan_slot is None:
        return f"drift: no pattern slot holds the deployed plan (running pattern {found.running})"
    if found.running != found.plan_slot:
        return f"drift: the deployed plan is in pattern {found.plan_slot}, the controller runs {found.running}"
    return None


def read_status(dev: Device, timeout_s: float, previous: SignalStatus | None,
                live: tuple[str, TimingPlan] | None) -> SignalStatus:
    """Read one controller's status, and check it runs the deployed plan ``live`` (hash, plan).

    ``offline`` when it does not answer in ``timeout_s``.
    """
    address, live_hash = f"{dev.host}:{dev.port}", live[0][:12] if live else None
    last = previous.last_contact if previous else None
    try:
        ad = adapter_for(dev, timeout=timeout_s, retries=0)  # credentials from the secrets file
    except WulinError as exc:
        return SignalStatus(dev.signal_id, "offline", None, str(exc), last, live_hash, address)
    try:
        st = ad.status()
        drift = _drift(ad, live[1] if live else None)
    except (SnmpError, SnmpTimeout, WulinError, OSError) as exc:
        return SignalStatus(dev.signal_id, "offline", None, f"no answer: {exc}", last, live_hash, address)
    finally:
        ad.close()
    alarmed = bool(st["alarm1"] or st["short_alarm"])
    problems = [f"alarms {st['alarm1']}/{st['short_alarm']}"] if alarmed else []
    if st["free"] != O.FREE_NOT_FREE:
        problems.append(f"localFreeStatus {O.FREE_NAMES.get(st['free'], st['free'])}")
    if drift:
        problems.append(drift)
    mode = "alarm" if alarmed or drift else "fallback" if st["free"] != O.FREE_NOT_FREE else "plan"
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return SignalStatus(dev.signal_id, mode, int(st["pattern"]), "; ".join(problems) or "ok", now, live_hash,
                        address)


class Monitor:
    """The cache of controller status, refreshed by one thread."""

    def __init__(self, store: PlanStore, poll_s: float, timeout_s: float) -> None:
        self.store, self.poll_s, self.timeout_s = store, poll_s, timeout_s
        self.version = 0
        self.published = time.time()  # wall time the current version was made (load test: update latency)
        self._status: dict[str, SignalStatus] = {}
        self._live: dict[str, Any] | None = None  # the live simulation's newest frame
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def snapshot(self) -> tuple[int, list[SignalStatus]]:
        with self._lock:
            return self.version, [self._status[k] for k in sorted(self._status)]

    def payload(self) -> dict[str, Any]:
        """The current version as sent to browsers: version, when it was made, every signal."""
        with self._lock:
            return {"version": self.version, "published": self.published,
                    "signals": [self._status[k].as_dict() for k in sorted(self._status)], "live": self._live}

    def live(self) -> dict[str, Any] | None:
        with self._lock:
            return self._live

    def publish_live(self, frame: dict[str, Any]) -> None:
        """A frame of the live simulation (or its start, end or error) for every viewer."""
        with self._lock:
            if "signals" not in frame and "starting" not in frame and self._live is not None and "signals" in self._live:
                frame = frame | {"signals": self._live["signals"], "time": self._live.get("time")}
            self._live = frame
            self.version += 1
            self.published = time.time()

    def refresh(self) -> None:
        """Read every registered controller once and publish what changed."""
        for dev in self.store.devices():
            live = self.store.live_plan(dev.signal_id)
            with self._lock:
                prev = self._status.get(dev.signal_id)
            new = read_status(dev, self.timeout_s, prev, (live.hash, live.plan) if live else None)
            with self._lock:
                if new != prev:
                    self._status[dev.signal_id] = new
                    self.version += 1
                    self.published = time.time()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except WulinError:  # the store is briefly unavailable: try again next round
                pass
            self._stop.wait(self.poll_s)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="console-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
