"""SNMP v1 / v2c messages (pysnmp's protocol API and pyasn1's BER codec) and a small manager.

The manager is deliberately plain: one UDP socket, one request at a time, request ids matched
(a late answer to an earlier request is recognised and dropped), every PDU recorded in
:attr:`SnmpClient.wire`.  GETs are retried; a SET is **never** retried blind: when its answer
is lost the client raises :class:`SetUnconfirmed` and the caller reads back first (NTCIP 1201
practice).  SNMPv3 is not implemented.

Values cross this module as plain Python: ``int``, ``bytes`` (OCTET STRING), :class:`Ticks`
(TimeTicks), ``None`` (NULL, or "no such object" in a response).
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from typing import Any

from pyasn1.codec.ber import decoder, encoder
from pyasn1.error import PyAsn1Error
from pysnmp.proto import api

from deploy.oids import OID, name_of
from sim.errors import WulinError

VERSIONS = {"1": api.SNMP_VERSION_1, "2c": api.SNMP_VERSION_2C}
VERSION_NAMES = {v: k for k, v in VERSIONS.items()}
ERRORS = {0: "noError", 1: "tooBig", 2: "noSuchName", 3: "badValue", 4: "readOnly", 5: "genErr",
          6: "noAccess", 7: "wrongType", 8: "wrongLength", 9: "wrongEncoding", 10: "wrongValue",
          11: "noCreation", 12: "inconsistentValue", 13: "resourceUnavailable", 14: "commitFailed",
          15: "undoFailed", 16: "authorizationError", 17: "notWritable", 18: "inconsistentName"}
ERROR_CODES = {v: k for k, v in ERRORS.items()}


class Ticks(int):
    """A TimeTicks value (hundredths of a second)."""


class NoSuch:
    """v2c noSuchObject / noSuchInstance / endOfMibView in a response."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return self.kind

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NoSuch) and other.kind == self.kind

    def __hash__(self) -> int:
        return hash(self.kind)


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


_KINDS = {
    "get": "GetRequestPDU", "getnext": "GetNextRequestPDU", "set": "SetRequestPDU",
    "response": "GetResponsePDU", "getbulk": "GetBulkRequestPDU",
}


def _to_asn1(mod: Any, value: Any) -> Any:
    if value is None:
        return mod.null
    if isinstance(value, NoSuch):
        from pysnmp.proto import rfc1905

        return {"noSuchObject": rfc1905.noSuchObject, "noSuchInstance": rfc1905.noSuchInstance,
                "endOfMibView": rfc1905.endOfMibView}[value.kind]
    if isinstance(value, Ticks):
        return mod.TimeTicks(int(value))
    if isinstance(value, bool):
        raise WulinError("SNMP has no boolean type")
    if isinstance(value, int):
        return mod.Integer(value)
    if isinstance(value, str):
        return mod.OctetString(value.encode())
    if isinstance(value, bytes):
        return mod.OctetString(value)
    if isinstance(value, tuple):
        return mod.ObjectIdentifier(value)
    raise WulinError(f"cannot encode {value!r} for SNMP")


def _from_asn1(value: Any) -> Any:
    tag = value.__class__.__name__
    if tag in ("NoSuchObject", "NoSuchInstance", "EndOfMibView"):
        return NoSuch(tag[0].lower() + tag[1:])
    if tag == "Null":
        return None
    if tag == "TimeTicks":
        return Ticks(int(value))
    if tag == "OctetString" or tag == "Opaque" or tag == "IpAddress":
        return bytes(value.asOctets())
    if tag == "ObjectIdentifier":
        return tuple(value)
    try:
        return int(value)
    except (TypeError, ValueError, PyAsn1Error):
        return None


def encode(pdu: Pdu) -> bytes:
    """BER bytes of ``pdu``."""
    mod = api.PROTOCOL_MODULES[VERSIONS[pdu.version]]
    p = getattr(mod, _KINDS[pdu.kind])()
    papi = mod.apiBulkPDU if pdu.kind == "getbulk" else mod.apiPDU
    papi.set_defaults(p)
    papi.set_request_id(p, pdu.request_id)
    if pdu.kind == "getbulk":
        papi.set_non_repeaters(p, pdu.non_repeaters)
        papi.set_max_repetitions(p, pdu.max_repetitions)
    else:
        papi.set_error_status(p, pdu.error_status)
        papi.set_error_index(p, pdu.error_index)
    papi.set_varbinds(p, [(o, _to_asn1(mod, v)) for o, v in pdu.varbinds])
    msg = mod.Message()
    mod.apiMessage.set_defaults(msg)
    mod.apiMessage.set_community(msg, pdu.community)
    mod.apiMessage.set_pdu(msg, p)
    return bytes(encoder.encode(msg))


def decode(data: bytes) -> Pdu:
    """Decode one SNMP v1/v2c message.

    Raises:
        SnmpError: not a v1/v2c message this module understands.
    """
    try:
        ver = int(api.decodeMessageVersion(data))
        mod = api.PROTOCOL_MODULES[ver]
        msg, _ = decoder.decode(data, asn1Spec=mod.Message())
    except (PyAsn1Error, KeyError, ValueError) as exc:
        raise SnmpError(f"undecodable SNMP message ({exc.__class__.__name__})") from None
    p = mod.apiMessage.get_pdu(msg)
    name = p.__class__.__name__
    kind = {"GetRequestPDU": "get", "GetNextRequestPDU": "getnext", "SetRequestPDU": "set",
            "GetResponsePDU": "response", "ResponsePDU": "response", "GetBulkRequestPDU": "getbulk"}.get(name)
    if kind is None:
        raise SnmpError(f"unsupported PDU {name}")
    papi = mod.apiBulkPDU if kind == "getbulk" else mod.apiPDU
    out = Pdu(
        version=VERSION_NAMES[ver],
        community=bytes(mod.apiMessage.get_community(msg)).decode("latin-1"),
        kind=kind,
        request_id=int(papi.get_request_id(p)),
        varbinds=[(tuple(o), _from_asn1(v)) for o, v in papi.get_varbinds(p)],
    )
    if kind == "getbulk":
        out.non_repeaters = int(papi.get_non_repeaters(p))
        out.max_repetitions = int(papi.get_max_repetitions(p))
    else:
        out.error_status = int(papi.get_error_status(p))
        out.error_index = int(papi.get_error_index(p, muteErrors=True))
    return out


@dataclass
class SnmpClient:
    """A blocking SNMP v1/v2c manager for one agent.

    Args:
        host, port: The agent.
        community: Community string (read-only or read-write).
        version: ``"1"`` or ``"2c"``.
        timeout: Seconds to wait for each answer.
        retries: Extra tries for GETs (never for SETs).
    """

    host: str
    port: int
    community: str = "public"
    version: str = "2c"
    timeout: float = 1.0
    retries: int = 2
    wire: list[WireRecord] = field(default_factory=list)
    _sock: socket.socket | None = None
    _next_id: int = 1000

    def __post_init__(self) -> None:
        if self.version not in VERSIONS:
            raise WulinError(f"SNMP version {self.version!r} is not supported; use 1 or 2c")

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

    def _exchange(self, kind: str, varbinds: list[tuple[OID, Any]], tries: int, community: str | None = None,
                  **bulk: int) -> Pdu:
        sock = self._socket()
        for _attempt in range(tries):
            self._next_id = self._next_id % 2_000_000_000 + 1
            req = Pdu(self.version, community or self.community, kind, self._next_id, varbinds, **bulk)
            self.wire.append(WireRecord(time.time(), "sent", self.peer, req))
            try:
                sock.send(encode(req))
            except OSError as exc:
                raise SnmpTimeout(f"{self.peer}: cannot send ({exc.strerror})") from None
            deadline = time.monotonic() + self.timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                sock.settimeout(left)
                try:
                    data = sock.recv(65535)
                except TimeoutError:
                    break
                except OSError:  # ICMP port unreachable: nobody listens
                    time.sleep(min(left, 0.05))
                    continue
                try:
                    rsp = decode(data)
                except SnmpError:
                    continue
                if rsp.request_id != req.request_id:
                    self.wire.append(WireRecord(time.time(), "late", self.peer, rsp))
                    continue
                self.wire.append(WireRecord(time.time(), "received", self.peer, rsp))
                return rsp
        if kind == "set":
            raise SetUnconfirmed(f"{self.peer}: no answer to SET within {self.timeout:g} s; it may have been applied")
        raise SnmpTimeout(f"{self.peer}: no answer within {self.timeout:g} s after {tries} tries")

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
