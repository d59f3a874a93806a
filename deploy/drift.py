"""Drift detection: does each controller run what the store says is live?

For every device with a deployed (live) plan, :func:`check_drift` reads back from the
controller the pattern it runs (``coordPatternStatus``), the one it is about to run
(``systemPatternControl``, or the time-of-day action's pattern when that is 0) and, for each,
the timing objects a deploy writes (phase table, pattern row, split row, ring sequences),
and compares them with the live plan's values for that pattern number.  Anything else is a
:class:`DriftAlarm`: the controller runs or is switching to other timings (an out-of-band
SET, a local change, a backup-timer fallback to the time-of-day plan), or it cannot be read.

Reads only; it never writes to a controller.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from controllers.plan import TimingPlan
from deploy import oids as O
from deploy.ntcip import NtcipAdapter
from deploy.profile import plan_values
from deploy.snmp import SnmpError, SnmpTimeout
from deploy.store import Device, PlanStore
from sim.errors import WulinError

MAX_SHOWN = 5  # differences quoted per alarm


@dataclass(frozen=True)
class LiveExpectation:
    """What the store says one controller runs."""

    device: Device
    plan: TimingPlan
    plan_hash: str


@dataclass(frozen=True)
class DriftAlarm:
    """One controller that does not run its live plan.

    Attributes:
        signal_id: The signal.
        kind: ``"tables"`` (the running pattern's timings differ), ``"pending"`` (it is about
            to switch to a pattern that differs) or ``"unreachable"`` (no readback).
        message: One line for an operator.
        differences: The objects that differ (``name: store ..., controller ...``).
    """

    signal_id: str
    kind: str
    message: str
    differences: tuple[str, ...] = ()


def live_expectations(store: PlanStore) -> list[LiveExpectation]:
    """Every registered device with a deployed plan, and that plan."""
    out = []
    for dev in store.devices():
        live = store.live_plan(dev.signal_id)
        if live is not None:
            out.append(LiveExpectation(dev, live.plan, live.hash))
    return out


def check_drift(expected: Iterable[LiveExpectation],
                adapter_factory: Callable[[Device], NtcipAdapter]) -> list[DriftAlarm]:
    """Read back every controller in ``expected`` and compare with its live plan."""
    alarms: list[DriftAlarm] = []
    for exp in expected:
        ad = adapter_factory(exp.device)
        try:
            alarms += _check_one(exp, ad)
        except (SnmpError, SnmpTimeout, WulinError) as exc:
            alarms.append(DriftAlarm(exp.device.signal_id, "unreachable", f"cannot read it back: {exc}"))
        finally:
            ad.close()
    return alarms


def _check_one(exp: LiveExpectation, ad: NtcipAdapter) -> list[DriftAlarm]:
    sid, short = exp.device.signal_id, exp.plan_hash[:12]
    st = ad.status()
    running, control = int(st["pattern"]), int(st["control"])
    if control == O.PATTERN_STANDBY:
        tod = O.TIMEBASE_PATTERN + (ad.action_in_force(),)
        pending = int(ad.reader.get([tod])[tod]) or 1
    else:
        pending = control if 1 <= control <= 253 else running
    out = []
    diff = _differences(exp, ad, running)
    if diff:
        out.append(DriftAlarm(sid, "tables", f"runs pattern {running}, whose timings differ from live plan "
                              f"{short} in {len(diff)} object(s)", tuple(diff[:MAX_SHOWN])))
    if pending != running:
        pend = _differences(exp, ad, pending)
        if pend:
            out.append(DriftAlarm(sid, "pending", f"is switching to pattern {pending} at the cycle boundary, "
                                  f"whose timings differ from live plan {short}", tuple(pend[:MAX_SHOWN])))
    return out


def _differences(exp: LiveExpectation, ad: NtcipAdapter, pattern: int) -> list[str]:
    """The objects of ``pattern`` on the controller that differ from the live plan's values."""
    dev = exp.device
    if not 1 <= pattern <= dev.capabilities.max_patterns:
        return [f"coordPatternStatus: a pattern ({pattern}) outside the device's 1-{dev.capabilities.max_patterns}"]
    want = plan_values(exp.plan, dev.profile, dev.capabilities, pattern)
    got = ad.reader.get_many(sorted(want))
    return [f"{O.name_of(o)}: store {want[o]!r}, controller {got.get(o)!r}" for o in sorted(want)
            if got.get(o) != want[o]]
