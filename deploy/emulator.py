"""An NTCIP 1202 v02 controller emulator: a device model served by a real SNMP agent on loopback.

:class:`ControllerEmulator` is a :class:`~deploy.device_model.DeviceModel` (what the controller
holds and does: tables, patterns, the database transaction, verify, faults) with an
:class:`~deploy.agent.SnmpAgent` in front of it (UDP, PDUs, access control).  Callers keep one
object: ``emu.db``, ``emu.active_pattern``, ``emu.arm(...)`` come from the model; ``emu.host``,
``emu.port``, ``emu.pdu_log`` and ``start``/``stop`` from the agent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from controllers.plan import TimingPlan
from deploy.agent import SnmpAgent
from deploy.device_model import (
    FAULT_NAMES,
    LOCAL_PATTERN,
    N_ACTIONS,
    TOD_ACTION,
    DeviceModel,
    Faults,
    ObjSpec,
)
from deploy.profile import Capabilities, DeviceProfile
from deploy.secrets import DeviceCredentials
from deploy.snmp import Pdu, WireRecord

__all__ = ["FAULT_NAMES", "LOCAL_PATTERN", "N_ACTIONS", "TOD_ACTION", "ControllerEmulator", "Faults", "ObjSpec",
           "SwitchClock"]


class ControllerEmulator(DeviceModel):
    """One emulated intersection controller, answering SNMP on loopback.

    Args:
        profile: How its phases serve the signal's stages.
        base_plan: The local (time-of-day) plan, loaded as pattern 1 and running at start.
        caps: Table sizes it reports.
        host, port: Where to listen (port 0: a free port).
        credentials: Its SNMPv3 users (and v2c communities); ``None``: fresh random ones, read
            back from :attr:`credentials`.  There is no default community or password.
        snmp_v2c: Also answer v1 / v2c with the credentials' communities (explicit opt-in;
            with ``credentials`` None, random communities are made).
        time_scale: Emulated seconds per wall second.
        verify_s: Emulated seconds the device-side verify takes.
        takeover_s: Emulated seconds a silent transaction holder keeps its transaction.
        owner_objects: Has the private transaction-owner objects (False: as a real controller,
            the transaction belongs to the SNMP user that opened it).
        clock, tod_start, stage_states, conflicts, detectors, tick_s: The running signal's
            clock and wiring (see :class:`~deploy.device_model.DeviceModel`).
        idle_s: How often the agent advances the device while no request comes
            (:class:`~deploy.agent.SnmpAgent`).
    """

    def __init__(self, profile: DeviceProfile, base_plan: TimingPlan, caps: Capabilities | None = None, *,
                 host: str = "127.0.0.1", port: int = 0, credentials: DeviceCredentials | None = None,
                 snmp_v2c: bool = False, time_scale: float = 1.0, verify_s: float = 0.5,
                 takeover_s: float = 60.0, owner_objects: bool = True, clock: Callable[[], float] | None = None,
                 tod_start: float = 0.0, stage_states: Sequence[str] | None = None,
                 conflicts: Sequence[Sequence[bool]] | None = None, detectors: Mapping[int, int] | None = None,
                 tick_s: float = 1.0, idle_s: float = 0.02) -> None:
        extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
        super().__init__(profile, base_plan, caps, time_scale=time_scale, verify_s=verify_s, takeover_s=takeover_s,
                         owner_objects=owner_objects, tod_start=tod_start, stage_states=stage_states,
                         conflicts=conflicts, detectors=detectors, tick_s=tick_s, **extra)
        self.credentials = credentials or DeviceCredentials.generate(v2c=snmp_v2c)
        self.agent = SnmpAgent(self, self.credentials, v2c=snmp_v2c, host=host, port=port, idle_s=idle_s)
        self.host, self.port = self.agent.host, self.agent.port

    @property
    def pdu_log(self) -> list[WireRecord]:
        """Every PDU the agent received and sent, in order."""
        return self.agent.pdu_log

    def handle(self, req: Pdu, peer: Any) -> Pdu | None:
        """Answer one decoded request as the agent would (``None``: no answer)."""
        return self.agent.handle(req, peer)

    def reboot(self) -> None:
        """Power-cycle (:meth:`DeviceModel.reboot`); the SNMP engine restarts too (boots + 1), and
        the heads show start-up flash while the unit is silent."""
        with self.lock:
            super().reboot()
            self.unit.startup_flash = max(int(round(self.faults.reboot_s * 10)), 0)
            self.agent.usm.restart()

    def start(self) -> ControllerEmulator:
        self.agent.start()
        return self

    def stop(self) -> None:
        self.agent.stop()

    def __enter__(self) -> ControllerEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SwitchClock:
    """A clock (``clock=``) that runs ``scale`` times wall speed until :meth:`set_scale`: fast while
    plans are deployed (each waits for a cycle boundary), then at wall speed for a central
    process on the wall clock (``unitBackupTime`` in wall seconds).  Change it under the
    emulator's lock."""

    def __init__(self, scale: float) -> None:
        self.scale, self.base, self.t = float(scale), time.monotonic(), 0.0

    def __call__(self) -> float:
        return self.t + (time.monotonic() - self.base) * self.scale

    def set_scale(self, scale: float) -> None:
        self.t, self.base, self.scale = self(), time.monotonic(), float(scale)
