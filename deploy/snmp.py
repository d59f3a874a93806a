"""SNMP messages (encoded by :mod:`deploy.ber`) and a small manager.

The manager is deliberately plain: one UDP socket, one request at a time, request ids matched
(a late answer to an earlier request is recognised and dropped), every PDU recorded in
:attr:`SnmpClient.wire`.  GETs are retried; a SET is **never** retried blind: when its answer
is lost the client raises :class:`SetUnconfirmed` and the caller reads back first (NTCIP 1201
practice).  SNMPv3 (USM, authPriv) comes from :mod:`deploy.usm` through the client's ``usm``;
v1 / v2c only when a caller asks for them with a community (there is no default community).

Values cross this module as plain Python: ``int``, ``bytes`` (OCTET STRING), :class:`Ticks`
(TimeTicks), ``None`` (NULL, or "no such object" in a response).
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from deploy import ber
from deploy.ber import Counter as Counter  # re-exported: the value types of this module
from deploy.ber import NoSuch as NoSuch
from deploy.ber import Ticks as Ticks
from deploy.oids import OID, name_of
from sim.errors import WulinError

VERSIONS = {"1": 0, "2c": 1}
VERSION_NAMES = {v: k for k, v in VERSIONS.items()}
ERRORS = {0: "noError", 1: "tooBig", 2: "noSuchName", 3: "badValue", 4: "readOnly", 5: "genErr",
          6: "noAccess", 7: "wrongType", 8: "wrongLength", 9: "wrongEncoding", 10: "wrongValue",
          11: "noCreation", 12: "inconsistentValue", 13: "resourceUnavailable", 14: "commitFailed",
          15: "undoFailed", 16: "authorizationError", 17: "notWritable", 18: "inconsistentName"}
ERROR_CODES = {v: k for k, v in ERRORS.items()}


class SnmpError(WulinError):
    """The agent answered with an error status."""

    def __init__(self, message: str, status: int = 0, index: int = 0) -> None:
        super().__init__(message)
        self.status, self.index = status, index


class SnmpTimeout(WulinError):
    """No answer in time (after the retries allowed)."""


class SetUnconfirmed(SnmpTimeout):
    """A SET went out and no answer came: it may or may not have been applied."""


@dataclass
class Pdu:
    """A decoded SNMP message."""

    version: str
    community: str
    kind: str  # get, getnext, getbulk, set, response
    request_id: int
    varbinds: list[tuple[OID, Any]]
    error_status: int = 0
    error_index: int = 0
    non_repeaters: int = 0
    max_repetitions: int = 0


@dataclass
class WireRecord:
    """One PDU seen on the wire (by the manager or the agent)."""

    t: float
    direction: str  # "sent", "received", "dropped", "late"
    peer: str
    pdu: Pdu

    def describe(self) -> str:
        vb = ", ".join(f"{name_of(o)}={_show(v)}" for o, v in self.pdu.varbinds)
        err = f" {ERRORS.get(self.pdu.error_status, self.pdu.error_status)}@{self.pdu.error_index}" if self.pdu.error_status else ""
        return f"{self.direction:8s} {self.pdu.kind:8s} #{self.pdu.request_id}{err} [{vb}]"


def _show(v: Any) -> str:
    if isinstance(v, bytes):
        return v.hex() if any(b < 32 or b > 126 for b in v) else repr(v.decode())
    return repr(v)


def encode(pdu: Pdu) -> bytes:
    """BER bytes of a v1 / v2c ``pdu`` (v3 messages: :mod:`deploy.usm`)."""
    a, b = (pdu.non_repeaters, pdu.max_repetitions) if pdu.kind == "getbulk" else (pdu.error_status, pdu.error_index)
    body = ber.integer(VERSIONS[pdu.version]) + ber.tlv(ber.OCTETS, pdu.community.encode("latin-1"))
    return ber.tlv(ber.SEQ, body + ber.pdu(pdu.kind, pdu.request_id, pdu.varbinds, a, b))


def message_version(data: bytes) -> str:
    """``"1"``, ``"2c"`` or ``"3"`` for an SNMP message, ``""`` when it is not one."""
    try:
        s, e = ber.expect(data, 0, ber.SEQ)
        ver, _ = ber.read_int(data, s, end=e)
    except ber.BerError:
        return ""
    return {0: "1", 1: "2c", 3: "3"}.get(ver, "")


def make_pdu(version: str, principal: str, fields: tuple[str, int, int, int, list[tuple[OID, Any]]]) -> Pdu:
    """A :class:`Pdu` from what :func:`deploy.ber.read_pdu` read."""
    kind, rid, a, b, vbs = fields
    if kind == "getbulk":
        return Pdu(version, principal, kind, rid, vbs, non_repeaters=a, max_repetitions=b)
    return Pdu(version, principal, kind, rid, vbs, a, b)


def decode(data: bytes) -> Pdu:
    """Decode one SNMP v1/v2c message.

    Raises:
        SnmpError: not a v1/v2c message this module understands.
    """
    try:
        s, e = ber.expect(data, 0, ber.SEQ)
        ver, p = ber.read_int(data, s, end=e)
        if ver not in VERSION_NAMES:
            raise ber.BerError(f"SNMP version {ver}")
        community, p = ber.read_octets(data, p, e)
        return make_pdu(VERSION_NAMES[ver], community.decode("latin-1"), ber.read_pdu(data, p, e))
    except ber.BerError as exc:
        raise SnmpError(f"undecodable SNMP message ({exc})") from None


class SecurityLayer(Protocol):
    """What :class:`SnmpClient` needs from SNMPv3 security (:class:`deploy.usm.UsmManager`)."""

    engine: Any

    def discovery(self, msg_id: int, request_id: int) -> bytes: ...

    def seal(self, pdu: Pdu, msg_id: int) -> bytes: ...

    def open(self, data: bytes) -> tuple[Any, str | None]: ...


class SnmpAuthError(SnmpError):
    """The agent refused our SNMPv3 credentials (a USM report: wrong keys, unknown user...)."""


@dataclass
class SnmpClient:
    """A blocking SNMP manager for one agent: SNMPv3 authPriv, or v1 / v2c when asked for.

    Args:
        host, port: The agent.
        community: Community string, for v1 / v2c only (no default: v2c is an explicit choice).
        version: ``"3"`` (with ``usm``), ``"2c"`` or ``"1"``.
        timeout: Seconds to wait for each answer.
        retries: Extra tries for GETs (never for SETs).
        usm: The SNMPv3 security layer (:class:`deploy.usm.UsmManager`) for ``"3"``.
    """

    host: str
    port: int
    community: str = ""
    version: str = "3"
    timeout: float = 1.0
    retries: int = 2
    usm: SecurityLayer | None = None
    wire: list[WireRecord] = field(default_factory=list)
    _sock: socket.socket | None = None
    _next_id: int = 1000

    def __post_init__(self) -> None:
        if self.version == "3":
            if self.usm is None:
                raise WulinError("SNMPv3 needs a user (authPriv credentials)")
        elif self.version not in VERSIONS:
            raise WulinError(f"SNMP version {self.version!r} is not supported; use 3, or 2c / 1 when opted in")
        elif not self.community:
            raise WulinError(f"SNMP v{self.version} needs a community string; there is no default")

    @property
    def peer(self) -> str:
        return f"{self.host}:{self.port}"

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _socket(self) -> socket.socket:
        if self._sock is None:
            self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._sock.connect((self.host, self.port))
        return self._sock

    def _new_id(self) -> int:
        self._next_id = self._next_id % 2_000_000_000 + 1
        return self._next_id

    def _exchange(self, kind: str, varbinds: list[tuple[OID, Any]], tries: int, community: str | None = None,
                  **bulk: int) -> Pdu:
        if self.usm is not None and self.usm.engine is None:
            self._discover()
        resync = 1  # one more try after the agent corrects our engine view (it did not act on the request)
        attempt = 0
        while attempt < tries:
            attempt += 1
            req, data = self._seal(kind, varbinds, community, **bulk)
            rsp = self._roundtrip(req, data)
            if rsp is None:
                continue
            if rsp.kind == "report":
                if rsp.community in ("notInTimeWindows", "unknownEngineIDs") and resync:
                    resync, attempt = 0, attempt - 1
                    continue
                raise SnmpAuthError(f"{self.peer}: the agent refused the SNMPv3 request ({rsp.community}): "
                                    "wrong user name or keys")
            return rsp
        if kind == "set":
            raise SetUnconfirmed(f"{self.peer}: no answer to SET within {self.timeout:g} s; it may have been applied")
        raise SnmpTimeout(f"{self.peer}: no answer within {self.timeout:g} s after {tries} tries")

    def _seal(self, kind: str, varbinds: list[tuple[OID, Any]], community: str | None = None,
              **bulk: int) -> tuple[Pdu, bytes]:
        req = Pdu(self.version, community or self.community, kind, self._new_id(), varbinds, **bulk)
        return req, self.usm.seal(req, req.request_id) if self.usm is not None else encode(req)

    def send(self, kind: str, varbinds: list[tuple[OID, Any]]) -> Pdu | None:
        """Send one request without waiting (``None``: it could not go out); :func:`exchange_all`
        collects the answer."""
        if self.usm is not None and self.usm.engine is None:
            self._discover()
        req, data = self._seal(kind, varbinds)
        self.wire.append(WireRecord(time.time(), "sent", self.peer, req))
        try:
            self._socket().send(data)
        except OSError:
            return None
        return req

    def take(self, req: Pdu) -> Pdu | None:
        """The answer to ``req`` if one is waiting on the socket (never blocks)."""
        sock = self._socket()
        sock.setblocking(False)
        try:
            while True:
                try:
                    got = sock.recv(65535)
                except (BlockingIOError, InterruptedError):
                    return None
                except OSError:  # ICMP port unreachable: nobody listens
                    continue
                try:
                    rsp = self._unwrap(got)
                except SnmpError:
                    continue
                if rsp.request_id == req.request_id:
                    self.wire.append(WireRecord(time.time(), "received", self.peer, rsp))
                    return rsp
                self.wire.append(WireRecord(time.time(), "late", self.peer, rsp))
        finally:
            sock.setblocking(True)

    def _discover(self) -> None:
        """SNMPv3 engine discovery: learn the agent's engine id, boots and time."""
        assert self.usm is not None
        for _ in range(1 + self.retries):
            req = Pdu("3", "", "get", self._new_id(), [])
            rsp = self._roundtrip(req, self.usm.discovery(req.request_id, req.request_id))
            if rsp is not None and rsp.kind == "report":
                return
        raise SnmpTimeout(f"{self.peer}: no answer to SNMPv3 engine discovery within {self.timeout:g} s")

    def _unwrap(self, data: bytes) -> Pdu:
        """The answer in ``data``; for v3 a Report's counter name is put in ``community``."""
        if self.usm is None:
            return decode(data)
        msg, report = self.usm.open(data)
        if report is not None:
            return Pdu("3", report, "report", msg.msg_id, msg.pdu.varbinds)
        return Pdu("3", msg.user, msg.pdu.kind, msg.msg_id, msg.pdu.varbinds, msg.pdu.error_status,
                   msg.pdu.error_index)

    def _roundtrip(self, req: Pdu, data: bytes) -> Pdu | None:
        """Send ``data`` (carrying ``req``) and wait for its answer; ``None`` after the timeout."""
        sock = self._socket()
        self.wire.append(WireRecord(time.time(), "sent", self.peer, req))
        try:
            sock.send(data)
        except OSError as exc:
            raise SnmpTimeout(f"{self.peer}: cannot send ({exc.strerror})") from None
        deadline = time.monotonic() + self.timeout
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                got = sock.recv(65535)
            except TimeoutError:
                return None
            except OSError:  # ICMP port unreachable: nobody listens
                time.sleep(min(left, 0.05))
                continue
            try:
                rsp = self._unwrap(got)
            except SnmpError:
                continue
            if rsp.request_id != req.request_id:
                self.wire.append(WireRecord(time.time(), "late", self.peer, rsp))
                continue
            self.wire.append(WireRecord(time.time(), "received", self.peer, rsp))
            return rsp
        return None

    @staticmethod
    def _check(rsp: Pdu, varbinds: list[tuple[OID, Any]]) -> None:
        if rsp.error_status:
            idx = rsp.error_index
            what = name_of(varbinds[idx - 1][0]) if 0 < idx <= len(varbinds) else "?"
            raise SnmpError(f"agent answered {ERRORS.get(rsp.error_status, rsp.error_status)} for {what}",
                            rsp.error_status, idx)

    def get(self, oids: list[OID]) -> dict[OID, Any]:
        """Values of ``oids`` (one PDU); missing objects raise :class:`SnmpError`."""
        vbs = [(o, None) for o in oids]
        rsp = self._exchange("get", vbs, 1 + self.retries)
        self._check(rsp, vbs)
        out = dict(rsp.varbinds)
        missing = [name_of(o) for o, v in rsp.varbinds if isinstance(v, NoSuch)]
        if missing:
            raise SnmpError(f"agent has no {', '.join(missing)}", ERROR_CODES["noSuchName"])
        return out

    def get_many(self, oids: list[OID], per_pdu: int = 24) -> dict[OID, Any]:
        out: dict[OID, Any] = {}
        for i in range(0, len(oids), per_pdu):
            out.update(self.get(oids[i:i + per_pdu]))
        return out

    def set(self, pairs: list[tuple[OID, Any]], community: str | None = None) -> None:
        """One SET PDU (atomic at the agent). Never retried: see :class:`SetUnconfirmed`."""
        rsp = self._exchange("set", pairs, 1, community)
        self._check(rsp, pairs)

    def walk(self, root: OID) -> dict[OID, Any]:
        """Every object under ``root`` by GETNEXT."""
        out: dict[OID, Any] = {}
        cur = root
        while True:
            rsp = self._exchange("getnext", [(cur, None)], 1 + self.retries)
            if rsp.error_status:  # v1 end of MIB
                return out
            (o, v), = rsp.varbinds
            if isinstance(v, NoSuch) or o[: len(root)] != root:
                return out
            out[o] = v
            cur = o


@dataclass
class Exchange:
    """One request of :func:`exchange_all` and what came of it (``answer`` None: no answer in time)."""

    client: SnmpClient
    kind: str  # get or set
    varbinds: list[tuple[OID, Any]]
    answer: Pdu | None = None
    error: SnmpError | None = None  # the agent answered with an error status (or a Report)

    @property
    def values(self) -> dict[OID, Any]:
        return dict(self.answer.varbinds) if self.answer is not None and self.error is None else {}


def exchange_all(exchanges: list[Exchange], timeout: float) -> list[Exchange]:
    """Send every request at once, then wait for the answers together (one ``select`` over the
    agents' sockets) until all came or ``timeout`` passed: a round to many agents costs about one
    round trip, not one per agent.  A GET's error status, a missing object or a Report is put in
    ``error``; a SET is never re-sent (its ``answer`` None means unconfirmed, as :meth:`SnmpClient.set`)."""
    import select

    waiting: dict[int, tuple[Exchange, Pdu]] = {}
    for ex in exchanges:
        try:
            req = ex.client.send(ex.kind, ex.varbinds)
        except SnmpTimeout:  # its engine discovery got no answer: no answer this round either
            continue
        if req is not None:
            waiting[ex.client._socket().fileno()] = (ex, req)
    deadline = time.monotonic() + timeout
    while waiting and (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select(list(waiting), [], [], left)
        for fd in ready:
            ex, req = waiting[fd]
            rsp = ex.client.take(req)
            if rsp is None:
                continue
            del waiting[fd]
            ex.answer = rsp
            ex.error = _answer_error(rsp, ex.varbinds)
    return exchanges


def _answer_error(rsp: Pdu, varbinds: list[tuple[OID, Any]]) -> SnmpError | None:
    if rsp.kind == "report":
        return SnmpAuthError(f"the agent answered with a Report ({rsp.community})")
    try:
        SnmpClient._check(rsp, varbinds)
    except SnmpError as exc:
        return exc
    missing = [name_of(o) for o, v in rsp.varbinds if isinstance(v, NoSuch)]
    return SnmpError(f"agent has no {', '.join(missing)}", ERROR_CODES["noSuchName"]) if missing else None
