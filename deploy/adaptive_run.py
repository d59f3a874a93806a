"""The central process of a deployed adaptive configuration: rounds on the wall clock.

After ``wulin adaptive deploy`` the devices are under central control and nothing drives them;
their watchdogs return them to their verified fallback plans within ``unitBackupTime``.
``wulin adaptive run`` is the process that drives them, outside any simulation: every second
(:data:`ROUND_S`, on the wall clock) one round of :func:`deploy.central.central_round`, the
co-simulation's own round: every device polled at once (phase status and detector objects,
one GET each), the detector state updated (:class:`deploy.detector_state.DetectorStateReader`,
the only state a field central has), every ``decision_interval`` the controller asked, and the
commands sent (changed ones, and the unchanged ones every ``heartbeat``, which feeds the
watchdogs).  A device that stops answering, or falls back, is taken again when it answers
(:class:`deploy.central.NtcipActuator`).

The controller, the reader and the state it fills are passed in (``deploy`` imports neither
the controllers nor the simulator; ``wulin`` composes them).  This module holds the loop
(:func:`run_rounds`), the stop request a signal handler sets (:class:`StopRequest`,
:func:`stop_on_signals`) and the device links of a configuration (:func:`connect`).

A stop (Ctrl-C, SIGTERM, ``--for``, or the store no longer saying ``deployed``: a rollback
began) is taken between rounds, so no round's commands are ever half-sent.  What the devices
do then is the caller's choice: nothing (each falls back to its plan by its watchdog within
its backup time) or :func:`release` (the rollback's release, at once).
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from deploy import oids as O
from deploy.adaptive import AdaptiveConfig
from deploy.adaptive_service import _to_plan
from deploy.central import DeviceLink, NtcipActuator, central_round
from deploy.ntcip import NtcipAdapter, adapter_for
from deploy.snmp import SnmpError
from sim.errors import WulinError

ROUND_S = 1.0  # one poll (and detector period) a second, as in the co-simulation
KEEP_ROUNDS = 3600  # round timings kept for the percentiles (an hour): a process runs for days


@dataclass(frozen=True)
class RunOptions:
    """How a run goes: its length (``None``: until stopped), status lines, the end, the link."""

    for_s: float | None = None
    status_every_s: float = 10.0
    release: bool = False  # on stop, release the devices at once (else: their watchdogs)
    link_timeout_s: float = 0.3  # seconds to wait for the devices' answers in a round

    def check(self) -> RunOptions:
        """Raises WulinError naming the option that cannot work."""
        if self.for_s is not None and not self.for_s > 0:
            raise WulinError(f"--for: {self.for_s:g} s must be above 0")
        if not self.status_every_s > 0:
            raise WulinError(f"--status-every: {self.status_every_s:g} s must be above 0")
        if not 0 < self.link_timeout_s < ROUND_S:
            raise WulinError(f"--link-timeout: {self.link_timeout_s:g} s must be above 0 and under the "
                             f"{ROUND_S:g} s round")
        return self


class StopRequest:
    """Why the run should stop (set by a signal handler, or the loop itself); ``None``: keep on.

    A plain attribute, not a :class:`threading.Event`: a signal handler must not take a lock
    the interrupted code may hold."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def set(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason

    def is_set(self) -> bool:
        return self.reason is not None


@contextmanager
def stop_on_signals(stop: StopRequest) -> Iterator[None]:
    """Ctrl-C and SIGTERM ask ``stop`` to stop (between rounds) instead of raising mid-round."""
    def handler(signum: int, _frame: object) -> None:
        stop.set("interrupted (Ctrl-C)" if signum == signal.SIGINT else "terminated (SIGTERM)")

    old: dict[signal.Signals, Any] = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread (an embedding program): its handlers stay
        pass
    try:
        yield
    finally:
        for sig, before in old.items():
            signal.signal(sig, before)


@dataclass
class RunStatus:
    """The live figures of a run (what the status line shows)."""

    elapsed_s: float = 0.0
    rounds: int = 0
    decisions: int = 0
    late_rounds: int = 0  # rounds that started over a round late (the process was held up)
    round_p95_ms: float = 0.0  # over the rounds since the last status
    devices: int = 0
    in_control: int = 0  # devices answering and reporting systemControl
    unanswered: int = 0  # devices that did not answer the last poll
    resumed: int = 0  # devices taken again after they fell back or restarted
    timeouts: int = 0

    def line(self) -> str:
        return (f"{self.elapsed_s:.0f} s: rounds {self.rounds:,}  decisions {self.decisions:,}  "
                f"round p95 {self.round_p95_ms:.1f} ms  central control {self.in_control}/{self.devices}  "
                f"unanswered {self.unanswered}  taken again {self.resumed}  late rounds {self.late_rounds}")


@dataclass
class RunResult:
    """How a run ended."""

    reason: str
    status: RunStatus
    round_ms: list[float] = field(default_factory=list)  # the last KEEP_ROUNDS rounds, milliseconds
    by_store: bool = False  # stopped because the store no longer says deployed (a rollback releases the devices)

    def percentile_ms(self, q: float) -> float:
        return _percentile(self.round_ms, q)


def _percentile(xs: Sequence[float], q: float) -> float:
    if not xs:
        return 0.0
    s = sorted(xs)
    return s[min(int(q * len(s)), len(s) - 1)]


def time_of_day() -> float:
    """Local seconds since midnight (the controllers' clock, as a scenario's)."""
    now = datetime.now()
    return now.hour * 3600 + now.minute * 60 + now.second + now.microsecond / 1e6


def run_rounds(central: NtcipActuator, controller: Any, reader: Any, state: Any, stop: StopRequest,
               options: RunOptions, *, on_status: Callable[[RunStatus], None] | None = None,
               still_deployed: Callable[[], str | None] | None = None,
               clock: Callable[[], float] = time.monotonic, round_s: float = ROUND_S) -> RunResult:
    """Take the devices and run rounds every ``round_s`` wall seconds until ``stop`` is set,
    ``options.for_s`` seconds have passed or ``still_deployed()`` says why not (every round).

    Args:
        central: The link to the devices (``read_detectors`` on).
        controller: Reset already on the layout; asked every ``decision_interval``.
        reader: Fills ``state`` from the devices' detector samples.
        state: The controller's :class:`sim.state.DistrictState`.
        on_status: Called every ``options.status_every_s`` with the live figures.
    """
    for_s, status_every_s = options.for_s, options.status_every_s
    di, m0, tod0 = float(controller.decision_interval), clock(), time_of_day()
    st = RunStatus(devices=len(central.links))
    central.take_control(tod0)
    next_round, next_decision, next_status, window = m0, tod0, m0 + status_every_s, 0
    while True:
        why, by_store = stop.reason, False
        if why is None and still_deployed is not None:
            why = still_deployed()
            by_store = why is not None
        if why is None and for_s is not None and clock() - m0 >= for_s - 1e-9:
            why = f"ran for {for_s:g} s (--for)"
        if why is not None:
            break
        t = tod0 + (clock() - m0)
        before = next_decision
        next_decision = central_round(central, controller, reader, state, t, next_decision, di)
        st.rounds += 1
        st.decisions += next_decision != before
        window += 1  # rounds since the last status line
        if clock() >= next_status:
            _status(st, central, clock() - m0, window)
            window = 0
            if on_status is not None:
                on_status(st)
            next_status += status_every_s
        next_round += round_s
        if clock() > next_round + round_s:  # held up over a round: skip, never bunch rounds
            st.late_rounds += 1
            next_round = clock()
        _sleep_until(next_round, stop, clock)
    _status(st, central, clock() - m0, window)
    return RunResult(why, st, [x * 1e3 for x in central.stats.round_wall], by_store)


def _status(st: RunStatus, central: NtcipActuator, elapsed: float, window: int) -> None:
    """Fill the live figures; trims what a long run keeps (round timings, the SNMP wire logs)."""
    c = central.stats
    st.elapsed_s = elapsed
    if window:  # (none since the last line: that line's figure stands)
        st.round_p95_ms = _percentile(c.round_wall[-window:], 0.95) * 1e3
    st.in_control = sum(v.reachable and v.in_control for v in central.views)
    st.unanswered = sum(not v.reachable for v in central.views)
    st.resumed, st.timeouts = c.resumed, c.timeouts
    for xs in (c.round_wall, c.decision_wall, c.round_cpu):
        del xs[:-KEEP_ROUNDS]
    for lk in central.links:
        lk.reader.wire.clear()
        lk.writer.wire.clear()


def _sleep_until(when: float, stop: StopRequest, clock: Callable[[], float]) -> None:
    while not stop.is_set() and (left := when - clock()) > 0:
        time.sleep(min(left, 0.1))


# ---------------------------------------------------------------------------------------------
# The configuration's devices


@dataclass
class FieldDevices:
    """Each signal's adapter (credentials from the secrets file) and the central link over them."""

    adapters: list[NtcipAdapter]
    central: NtcipActuator

    def close(self) -> None:
        for ad in self.adapters:
            ad.close()


def connect(store: Any, cfg: AdaptiveConfig, specs: Mapping[str, Any], controller_max_green: Any,
            timeout: float) -> FieldDevices:
    """The registered device of each of ``cfg``'s signals (sorted, the layout's order), checked
    against its signal in the network (``specs``: :class:`sim.topology.SignalSpec` by id): as many
    stages, a detector per in-lane; and the central link to them (detectors read, the bounds'
    heartbeat and backup time, each maximum green the controller's held to the bound).

    Raises:
        WulinError: a signal with no registered device or credentials, a device whose profile
            or detectors do not fit the network, or one that does not answer.
    """
    adapters: list[NtcipAdapter] = []
    links: list[DeviceLink] = []
    try:
        for sid in sorted(cfg.fallback):
            dev, spec = store.device(sid), specs[sid]
            if len(dev.profile.stage_phases) != spec.n_stages:
                raise WulinError(f"signal {sid!r}: its device serves {len(dev.profile.stage_phases)} stages, "
                                 f"the network's signal has {spec.n_stages}")
            ad = adapter_for(dev, timeout=timeout, retries=1)
            adapters.append(ad)
            _check_detectors(ad, sid, len(spec.in_lanes))
            ad.retries = ad.reader.retries = 0  # from here on a silent device must not stall a round
            links.append(DeviceLink(sid, dev.profile, ad.reader, ad.writer, len(spec.in_lanes)))
    except BaseException:
        for ad in adapters:
            ad.close()
        raise
    b = cfg.bounds
    return FieldDevices(adapters, NtcipActuator(links, max_greens(b.max_green, controller_max_green, len(links)),
                                                heartbeat_s=b.heartbeat, backup_s=b.backup_time, read_detectors=True))


def _check_detectors(ad: NtcipAdapter, sid: str, need: int) -> None:
    try:
        have = int(ad.reader.get([O.MAX_VEHICLE_DETECTORS])[O.MAX_VEHICLE_DETECTORS])
    except (SnmpError, WulinError) as exc:
        raise WulinError(f"signal {sid!r}: its device at {ad.host}:{ad.port} does not answer ({exc})") from None
    if have < need:
        raise WulinError(f"signal {sid!r}: its device has {have} vehicle detectors; central control reads one "
                         f"per incoming lane ({need})")


def release(devices: FieldDevices) -> dict[str, str]:
    """Every device back on its time-of-day plan at once, as rollback does; signal -> "" or why not."""
    return {ad.profile.signal_id: _to_plan(ad) for ad in devices.adapters}


def max_greens(bound: float, controller_max: Any, n: int) -> list[float]:
    """Each signal's maximum green: the controller's own (a scalar or one per signal) held to the bound."""
    if controller_max is None:
        return [float(bound)] * n
    per = [float(controller_max[s]) if hasattr(controller_max, "__len__") else float(controller_max) for s in range(n)]
    return [min(x, float(bound)) if math.isfinite(x) else float(bound) for x in per]
