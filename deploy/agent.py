"""The SNMP agent in front of a :class:`~deploy.device_model.DeviceModel`: UDP, PDUs, access.

One thread per agent serves its UDP socket on loopback.  It checks each message (SNMPv3 USM
authPriv through :mod:`deploy.usm`: unknown users, wrong keys and stale clocks are answered with
RFC 3414 reports, never with data; v1 / v2c only when it was given communities), decides who
may do what (the read-only user or community may only read: ``noAccess``, ``noSuchName`` in
v1; unknown communities get no answer), answers GET / GETNEXT / GETBULK from the device's
objects and hands SETs to the device, which applies them all or none.  The wire faults the device
carries (:class:`~deploy.device_model.Faults`: dropped and late responses, silence while
rebooting) happen here.  Every PDU is logged in :attr:`SnmpAgent.pdu_log`.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from deploy import oids as O
from deploy.device_model import DeviceModel
from deploy.secrets import DeviceCredentials
from deploy.snmp import (
    ERROR_CODES,
    NoSuch,
    Pdu,
    SnmpError,
    WireRecord,
    decode,
    encode,
    message_version,
)
from deploy.usm import UsmAgent, UsmError, V3Message
from sim.errors import WulinError

LOOPBACK = ("127.0.0.1", "localhost", "::1")
# RFC 2576: v2 error statuses as a v1 agent reports them.
V1_ERRORS = {6: 2, 7: 3, 8: 3, 9: 3, 10: 3, 11: 2, 12: 3, 13: 5, 14: 5, 15: 5, 16: 2, 17: 2, 18: 2}
MAX_BULK_REPETITIONS = 50


@dataclass(frozen=True)
class Delayed:
    """A response held back by the ``late`` fault."""

    due: float
    data: bytes
    peer: Any


class SnmpAgent:
    """Serves one device over SNMPv3 (and v1 / v2c when opted in) on a loopback UDP port.

    Args:
        device: The controller it answers for.
        credentials: Its users (the reader may read, the writer read and write) and, only with
            ``v2c``, its communities.
        v2c: Also answer v1 / v2c with the credentials' communities (explicit opt-in).
        host, port: Where to listen (port 0: a free port); loopback only.
        idle_s: How often the device's time advances while no request comes (a device on an
            outside clock, as in the co-simulation, is advanced by its owner: a long wait spares
            the other threads the wake-ups).
    """

    def __init__(self, device: DeviceModel, credentials: DeviceCredentials, *, v2c: bool = False,
                 host: str = "127.0.0.1", port: int = 0, idle_s: float = 0.02) -> None:
        if host not in LOOPBACK:
            raise WulinError(f"the emulator listens on loopback only, not {host!r}")
        if v2c and not credentials.read_community:
            raise WulinError("v2c needs explicit communities in the credentials; there is no default")
        self.device = device
        writer = credentials.writer
        users = {credentials.reader.name: credentials.reader} | ({writer.name: writer} if writer else {})
        self.usm = UsmAgent(users)
        # principal -> may write; v3 principals are user names, v1/v2c ones communities
        self.access: dict[str, bool] = {credentials.reader.name: False} | ({writer.name: True} if writer else {})
        self.communities: dict[str, bool] = {}
        if v2c:
            self.communities[str(credentials.read_community)] = False
            if credentials.write_community:
                self.communities[credentials.write_community] = True
        self.pdu_log: list[WireRecord] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((host, port))
        self.host, self.port = self._sock.getsockname()[:2]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._delayed: list[Delayed] = []
        self.idle_s = float(idle_s)
        self.link_up = True  # False: the cable is cut, nothing arrives (a fault the co-simulation injects)
        self.errors: list[str] = []  # messages that raised inside the agent (it keeps serving)

    # ------------------------------------------------------------------ requests
    def handle(self, req: Pdu, peer: Any) -> Pdu | None:
        """Answer one request from manager ``peer`` (its IP address); ``None``: no answer."""
        dev = self.device
        with dev.lock:
            dev.advance()
            if self._may_write(req) is None:
                return None
            if req.kind == "set":
                return self._set(req, peer)
            if req.kind == "get":
                return self._get(req)
            if req.kind in ("getnext", "getbulk"):
                return self._getnext(req)
            return None

    def _may_write(self, req: Pdu) -> bool | None:
        """Whether ``req``'s principal may write (``None``: unknown, no answer)."""
        return (self.access if req.version == "3" else self.communities).get(req.community)

    @staticmethod
    def _response(req: Pdu, varbinds: list[tuple[O.OID, Any]], status: str = "noError", index: int = 0) -> Pdu:
        code = ERROR_CODES[status]
        if req.version == "1":
            code = V1_ERRORS.get(code, code)
        return Pdu(req.version, req.community, "response", req.request_id, varbinds, code, index if code else 0)

    def _get(self, req: Pdu) -> Pdu:
        out = []
        for i, (o, _) in enumerate(req.varbinds, 1):
            if not self.device.exists(o):
                if req.version == "1":
                    return self._response(req, req.varbinds, "noSuchName", i)
                out.append((o, NoSuch("noSuchObject")))
            else:
                out.append((o, self.device.value(o)))
        return self._response(req, out)

    def _next(self, o: O.OID) -> tuple[O.OID, Any]:
        n = self.device.next_oid(o)
        return (n, self.device.value(n)) if n else (o, NoSuch("endOfMibView"))

    def _getnext(self, req: Pdu) -> Pdu:
        if req.kind == "getbulk":
            return self._getbulk(req)
        out: list[tuple[O.OID, Any]] = []
        for i, (o, _) in enumerate(req.varbinds, 1):
            if self.device.next_oid(o) is None and req.version == "1":
                return self._response(req, req.varbinds, "noSuchName", i)
            out.append(self._next(o))
        return self._response(req, out)

    def _getbulk(self, req: Pdu) -> Pdu:
        nr, reps = req.non_repeaters, max(req.max_repetitions, 0)
        out = [self._next(o) for o, _ in req.varbinds[:nr]]
        cur = [o for o, _ in req.varbinds[nr:]]
        for _ in range(min(reps, MAX_BULK_REPETITIONS)):
            nxt = []
            for o in cur:
                n, v = self._next(o)
                out.append((n, v))
                nxt.append(n)
            cur = nxt
        return self._response(req, out)

    def _set(self, req: Pdu, peer: Any) -> Pdu | None:
        if not self._may_write(req):
            return self._response(req, req.varbinds, "noAccess", 1)
        res = self.device.set(req.varbinds, req.community)
        if not res.answered:
            return None
        return self._response(req, req.varbinds, res.status, res.index)

    # ------------------------------------------------------------------ the serving loop
    def start(self) -> SnmpAgent:
        if self._thread is None:
            name = f"ntcip-{self.device.profile.signal_id}"
            self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wait = min([self.idle_s] + [d.due - time.monotonic() for d in self._delayed])
                ready, _, _ = select.select([self._sock], [], [], max(wait, 0.0))
            except (OSError, ValueError):
                return
            self._flush_delayed()
            with self.device.lock:
                self.device.advance()
            if not ready:
                continue
            try:
                data, peer = self._sock.recvfrom(65535)
            except OSError:
                continue
            try:
                self._receive(data, peer)
            except Exception as exc:  # noqa: BLE001 - one bad message must not stop the controller
                self.errors.append(f"{exc.__class__.__name__}: {exc}")

    def _receive(self, data: bytes, peer: Any) -> None:
        if not self.link_up:
            return
        v3: V3Message | None = None
        try:
            if message_version(data) == "3":
                v3 = self.usm.receive(data)
                req = v3.pdu
            elif self.communities:
                req = decode(data)
            else:
                return  # v1 / v2c not enabled: as silent as a wrong community
        except UsmError as exc:
            report = self.usm.report(data, exc)
            if report is not None and not self.device.silent():
                self._sock.sendto(report, peer)
            return
        except SnmpError:
            return
        rec = WireRecord(time.time(), "received", f"{peer[0]}:{peer[1]}", req)
        with self.device.lock:
            self.pdu_log.append(rec)
            if self.device.silent():
                rec.direction = "ignored"  # rebooting
                return
            rsp = self.handle(req, peer[0])
            if rsp is None:
                return
            out = WireRecord(time.time(), "sent", rec.peer, rsp)
            self.pdu_log.append(out)
            data = self.usm.seal(v3, rsp) if v3 is not None else encode(rsp)
            if self._fault_withholds(req, out, data, peer):
                return
        self._sock.sendto(data, peer)

    def _fault_withholds(self, req: Pdu, out: WireRecord, data: bytes, peer: Any) -> bool:
        """Drop or delay the response as the armed faults say; True when it is not sent now."""
        f = self.device.faults
        if f.drop_responses > 0 or (req.kind == "set" and f.drop_set_responses > 0):
            if f.drop_responses > 0:
                f.drop_responses -= 1
            else:
                f.drop_set_responses -= 1
            out.direction = "dropped"
            return True
        if f.delay_responses > 0:
            f.delay_responses -= 1
            self._delayed.append(Delayed(time.monotonic() + f.delay_s, data, peer))
            out.direction = "late"
            return True
        return False

    def _flush_delayed(self) -> None:
        now = time.monotonic()
        due = [d for d in self._delayed if d.due <= now]
        self._delayed = [d for d in self._delayed if d.due > now]
        for d in due:
            try:
                self._sock.sendto(d.data, d.peer)
            except OSError:
                pass
