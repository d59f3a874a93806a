"""SNMPv3 messages with the User-based Security Model (RFC 3412 / 3414), authPriv only.

Authentication is HMAC-SHA-256 (``usmHMAC192SHA256AuthProtocol``, RFC 7860) and privacy
AES-128-CFB (``usmAesCfb128Protocol``, RFC 3826): the strongest pair that both Net-SNMP 5.9
(``-a SHA-256 -x AES``) and pysnmp 7.1 implement the same way (AES-192/256 for SNMPv3 exist
only as drafts with two incompatible key extensions).  The cryptography and the message
syntax are pysnmp's (``HmacSha2``, ``Aes``, ``SNMPv3Message``, ``UsmSecurityParameters``);
this module puts them together for both sides:

* :class:`UsmManager` (the client's half): engine discovery, then every request authenticated
  and encrypted, every answer checked; a Report (wrong keys, unknown user, out of time) is an
  answer too;
* :class:`UsmAgent` (the agent's half): discovery reports, the time window, user lookup, digest
  and decryption checks, each failure answered with the RFC 3414 report (never with data).

There is no noAuthNoPriv or authNoPriv data path: a message below authPriv is refused.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pyasn1.codec.ber import decoder, encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from pysnmp.proto import error as pysnmp_error
from pysnmp.proto.mpmod.rfc3412 import ScopedPDU, SNMPv3Message
from pysnmp.proto.secmod.rfc3414.service import UsmSecurityParameters
from pysnmp.proto.secmod.rfc3826.priv.aes import Aes
from pysnmp.proto.secmod.rfc7860.auth.hmacsha2 import HmacSha2

from deploy.oids import OID
from deploy.snmp import Counter, Pdu, SnmpError, build_pdu, read_pdu
from sim.errors import WulinError

AUTH_PROTOCOL = HmacSha2.SHA256_SERVICE_ID
PRIV_PROTOCOL = Aes.SERVICE_ID
AUTH_NAME, PRIV_NAME = "SHA-256", "AES"  # as Net-SNMP's -a / -x spell them
FLAG_AUTH, FLAG_PRIV, FLAG_REPORTABLE = 0x01, 0x02, 0x04
USM_MODEL = 3
TIME_WINDOW_S = 150  # RFC 3414 3.2 step 7
MAX_SIZE = 65507
# usmStats counters (RFC 3414): the OID a Report carries says what went wrong.
USM_STATS = (1, 3, 6, 1, 6, 3, 15, 1, 1)
REPORTS: dict[str, OID] = {
    "unsupportedSecLevels": USM_STATS + (1, 0), "notInTimeWindows": USM_STATS + (2, 0),
    "unknownUserNames": USM_STATS + (3, 0), "unknownEngineIDs": USM_STATS + (4, 0),
    "wrongDigests": USM_STATS + (5, 0), "decryptionErrors": USM_STATS + (6, 0),
}
REPORT_NAMES = {o: n for n, o in REPORTS.items()}
MIN_PASSPHRASE = 8  # RFC 3414 11.2

_AUTH = HmacSha2(AUTH_PROTOCOL)
_PRIV = Aes()


class UsmError(SnmpError):
    """A v3 message failed a USM check; ``report`` names the usmStats counter to answer with."""

    def __init__(self, message: str, report: str) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class UsmUser:
    """An SNMPv3 user and its two passphrases (never printed)."""

    name: str
    auth_key: str = field(repr=False)
    priv_key: str = field(repr=False)

    def __post_init__(self) -> None:
        if not 1 <= len(self.name.encode()) <= 32:
            raise WulinError(f"SNMPv3 user name {self.name!r}: 1-32 bytes")
        for what, key in (("authentication", self.auth_key), ("privacy", self.priv_key)):
            if len(key) < MIN_PASSPHRASE:
                raise WulinError(f"SNMPv3 user {self.name!r}: the {what} passphrase needs at least "
                                 f"{MIN_PASSPHRASE} characters")


@dataclass(frozen=True)
class LocalKeys:
    """A user's keys localised to one engine (RFC 3414 2.6)."""

    auth: univ.OctetString
    priv: univ.OctetString


@lru_cache(maxsize=256)
def local_keys(user: UsmUser, engine_id: bytes) -> LocalKeys:
    """``user``'s keys for the engine ``engine_id`` (cached: the derivation hashes 1 MB)."""
    eid = univ.OctetString(engine_id)
    auth = _AUTH.localize_key(_AUTH.hash_passphrase(user.auth_key), eid)
    priv = _PRIV.localize_key(AUTH_PROTOCOL, _PRIV.hash_passphrase(AUTH_PROTOCOL, user.priv_key), eid)
    return LocalKeys(auth, priv)


@dataclass(frozen=True)
class Engine:
    """The authoritative engine's identity and clock as a message states them."""

    engine_id: bytes
    boots: int
    time: int


@dataclass(frozen=True)
class V3Message:
    """One decoded, checked v3 message."""

    msg_id: int
    flags: int
    engine: Engine
    user: str
    pdu: Pdu


def encode_v3(pdu: Pdu, msg_id: int, engine: Engine, user: UsmUser | None, flags: int) -> bytes:
    """BER bytes of ``pdu`` in a v3 message; ``user`` None: unauthenticated (discovery, reports)."""
    scoped = ScopedPDU()
    scoped["contextEngineId"] = engine.engine_id
    scoped["contextName"] = b""
    p = build_pdu(pdu)
    scoped["data"].setComponentByType(p.tagSet, p)
    sec = UsmSecurityParameters()
    sec["msgAuthoritativeEngineId"] = engine.engine_id
    sec["msgAuthoritativeEngineBoots"] = engine.boots
    sec["msgAuthoritativeEngineTime"] = engine.time
    sec["msgUserName"] = user.name.encode() if user else b""
    sec["msgPrivacyParameters"] = b""
    sec["msgAuthenticationParameters"] = b""
    keys = local_keys(user, engine.engine_id) if user else None
    msg = SNMPv3Message()
    msg["msgVersion"] = 3
    head = msg["msgGlobalData"]
    head["msgID"], head["msgMaxSize"] = msg_id, MAX_SIZE
    head["msgFlags"] = bytes([flags])
    head["msgSecurityModel"] = USM_MODEL
    if keys is not None and flags & FLAG_PRIV:
        data, salt = _PRIV.encrypt_data(keys.priv, (engine.boots, engine.time, None), encoder.encode(scoped))
        sec["msgPrivacyParameters"] = salt
        msg["msgData"]["encryptedPDU"] = data
    else:
        msg["msgData"]["plaintext"] = scoped
    if keys is not None and flags & FLAG_AUTH:
        sec["msgAuthenticationParameters"] = b"\x00" * _AUTH.digest_length
        msg["msgSecurityParameters"] = encoder.encode(sec)
        return bytes(_AUTH.authenticate_outgoing_message(keys.auth, encoder.encode(msg)))
    msg["msgSecurityParameters"] = encoder.encode(sec)
    return bytes(encoder.encode(msg))


@dataclass
class _Raw:
    msg: Any
    sec: Any
    flags: int
    engine: Engine
    user: str


def _parse(data: bytes) -> _Raw:
    try:
        msg, _ = decoder.decode(data, asn1Spec=SNMPv3Message())
        sec, _ = decoder.decode(bytes(msg["msgSecurityParameters"]), asn1Spec=UsmSecurityParameters())
        head = msg["msgGlobalData"]
        if int(head["msgSecurityModel"]) != USM_MODEL:
            raise SnmpError("not a USM message")
        flags = bytes(head["msgFlags"])[0]
        engine = Engine(bytes(sec["msgAuthoritativeEngineId"]), int(sec["msgAuthoritativeEngineBoots"]),
                        int(sec["msgAuthoritativeEngineTime"]))
        return _Raw(msg, sec, flags, engine, bytes(sec["msgUserName"]).decode("utf-8", "replace"))
    except (PyAsn1Error, IndexError, ValueError) as exc:
        raise SnmpError(f"undecodable SNMPv3 message ({exc.__class__.__name__})") from None


def _open(raw: _Raw, data: bytes, keys: LocalKeys | None) -> V3Message:
    """Check the digest and decrypt, with ``keys`` (None: the message must be unauthenticated)."""
    if raw.flags & FLAG_AUTH:
        if keys is None:
            raise UsmError(f"unknown SNMPv3 user {raw.user!r}", "unknownUserNames")
        try:
            _AUTH.authenticate_incoming_message(keys.auth, raw.sec["msgAuthenticationParameters"], data)
        except (pysnmp_error.StatusInformation, pysnmp_error.ProtocolError):
            raise UsmError(f"SNMPv3 user {raw.user!r}: wrong authentication key (digest differs)",
                           "wrongDigests") from None
    body = raw.msg["msgData"]
    if raw.flags & FLAG_PRIV:
        if keys is None or not raw.flags & FLAG_AUTH:
            raise UsmError("privacy without authentication", "unsupportedSecLevels")
        try:
            clear = _PRIV.decrypt_data(keys.priv, (raw.engine.boots, raw.engine.time,
                                                   raw.sec["msgPrivacyParameters"]), body["encryptedPDU"])
            scoped, _ = decoder.decode(bytes(clear), asn1Spec=ScopedPDU())
        except (pysnmp_error.StatusInformation, PyAsn1Error, ValueError):
            raise UsmError(f"SNMPv3 user {raw.user!r}: cannot decrypt (wrong privacy key)",
                           "decryptionErrors") from None
    else:
        scoped = body["plaintext"]
    p = scoped["data"].getComponent()
    return V3Message(int(raw.msg["msgGlobalData"]["msgID"]), raw.flags, raw.engine, raw.user,
                     read_pdu(p, "3", raw.user))


class UsmAgent:
    """The agent's USM: one engine, its users; checks requests and seals answers.

    Args:
        users: The users it knows, by name.
        engine_id: Its snmpEngineID (random under the documentation enterprise 32473 when
            not given).
    """

    def __init__(self, users: dict[str, UsmUser], engine_id: bytes | None = None) -> None:
        self.users = users
        self.engine_id = engine_id or bytes.fromhex("80007ed905") + os.urandom(8)
        self.boots, self._t0 = 1, time.monotonic()
        self.counters = dict.fromkeys(REPORTS, 0)

    def engine(self) -> Engine:
        return Engine(self.engine_id, self.boots, int(time.monotonic() - self._t0))

    def receive(self, data: bytes) -> V3Message:
        """The checked request in ``data``.

        Raises:
            UsmError: the check that failed; answer it with :meth:`report` when reportable.
            SnmpError: not a message at all (drop it).
        """
        raw = _parse(data)
        if raw.engine.engine_id != self.engine_id:
            raise UsmError("engine discovery", "unknownEngineIDs")
        user = self.users.get(raw.user)
        if user is None:
            raise UsmError(f"unknown SNMPv3 user {raw.user!r}", "unknownUserNames")
        if raw.flags & (FLAG_AUTH | FLAG_PRIV) != FLAG_AUTH | FLAG_PRIV:
            raise UsmError(f"SNMPv3 user {raw.user!r}: authPriv required", "unsupportedSecLevels")
        msg = _open(raw, data, local_keys(user, self.engine_id))
        now = self.engine()
        if raw.engine.boots != now.boots or abs(raw.engine.time - now.time) > TIME_WINDOW_S:
            raise UsmError("outside the time window", "notInTimeWindows")
        return msg

    def seal(self, req: V3Message, rsp: Pdu) -> bytes:
        """``rsp`` to ``req``, authenticated and encrypted with the requester's keys."""
        return encode_v3(rsp, req.msg_id, self.engine(), self.users[req.user], FLAG_AUTH | FLAG_PRIV)

    def report(self, data: bytes, exc: UsmError) -> bytes | None:
        """The Report answering a failed check (``None`` when the request was not reportable)."""
        try:
            raw = _parse(data)
        except SnmpError:
            return None
        if not raw.flags & FLAG_REPORTABLE:
            return None
        self.counters[exc.report] += 1
        request_id = 0
        if not raw.flags & FLAG_PRIV:  # the request id is readable only in plaintext
            try:
                request_id = int(raw.msg["msgData"]["plaintext"]["data"].getComponent()["request-id"])
            except (PyAsn1Error, KeyError, ValueError):
                request_id = 0
        vb = [(REPORTS[exc.report], Counter(self.counters[exc.report]))]
        rep = Pdu("3", "", "report", request_id, vb)
        # A time-window report is authenticated (RFC 3414 3.2 step 7): the manager may trust the
        # clock it carries; the others go out unauthenticated.
        user = self.users.get(raw.user) if exc.report == "notInTimeWindows" else None
        flags = FLAG_AUTH if user else 0
        return encode_v3(rep, int(raw.msg["msgGlobalData"]["msgID"]), self.engine(), user, flags)


class UsmManager:
    """The manager's USM for one agent: discovery, then sealed requests and checked answers."""

    def __init__(self, user: UsmUser) -> None:
        self.user = user
        self.engine: Engine | None = None
        self._synced_at = 0.0

    def discovery(self, msg_id: int, request_id: int) -> bytes:
        """An unauthenticated, reportable, empty GET: the agent answers with its engine."""
        pdu = Pdu("3", "", "get", request_id, [])
        return encode_v3(pdu, msg_id, Engine(b"", 0, 0), None, FLAG_REPORTABLE)

    def learn(self, engine: Engine) -> None:
        """Take the engine id, boots and time a Report stated."""
        self.engine, self._synced_at = engine, time.monotonic()

    def seal(self, pdu: Pdu, msg_id: int) -> bytes:
        """``pdu`` authenticated and encrypted for the discovered engine."""
        if self.engine is None:
            raise WulinError("SNMPv3: the agent's engine is not discovered yet")
        e = self.engine
        now = Engine(e.engine_id, e.boots, e.time + int(time.monotonic() - self._synced_at))
        return encode_v3(pdu, msg_id, now, self.user, FLAG_AUTH | FLAG_PRIV | FLAG_REPORTABLE)

    def open(self, data: bytes) -> tuple[V3Message, str | None]:
        """The answer in ``data`` and, for a Report, the usmStats counter it names (a discovery
        report, or an authenticated time-window report, also updates :attr:`engine`).

        A response must be authenticated and encrypted by this user's keys for the discovered
        engine; an unauthenticated Report is accepted only as an error (it carries no data).

        Raises:
            SnmpError: undecodable, or a response that fails the checks (dropped by the caller).
        """
        raw = _parse(data)
        keyed = self.engine is not None and raw.engine.engine_id == self.engine.engine_id
        keys = local_keys(self.user, raw.engine.engine_id) if raw.flags & FLAG_AUTH and (
            keyed or self.engine is None) else None
        if raw.flags & FLAG_AUTH and keys is None:
            raise SnmpError("an answer from another engine")
        msg = _open(raw, data, keys)
        if msg.pdu.kind == "report":
            name = next((REPORT_NAMES.get(o, "") for o, _ in msg.pdu.varbinds), "") or "unknown report"
            # Discovery answers are unauthenticated by nature; a clock correction is trusted
            # only when authenticated (RFC 3414 3.2 step 7b).
            if name == "unknownEngineIDs" or (name == "notInTimeWindows" and raw.flags & FLAG_AUTH):
                self.learn(raw.engine)
            return msg, name
        if raw.flags & (FLAG_AUTH | FLAG_PRIV) != FLAG_AUTH | FLAG_PRIV:
            raise SnmpError("an unauthenticated response (dropped)")
        return msg, None
