"""SNMPv3 messages with the User-based Security Model (RFC 3412 / 3414), authPriv only.

Authentication is HMAC-SHA-256 (``usmHMAC192SHA256AuthProtocol``, RFC 7860) and privacy
AES-128-CFB (``usmAesCfb128Protocol``, RFC 3826): the strongest pair that both Net-SNMP 5.9
(``-a SHA-256 -x AES``) and pysnmp 7.1 implement the same way (AES-192/256 for SNMPv3 exist
only as drafts with two incompatible key extensions).  The message syntax is written and read by :mod:`deploy.ber` (RFC 3412
``SNMPv3Message``, RFC 3414 ``UsmSecurityParameters``) and the digest and cipher are the
standard library's ``hmac`` and ``cryptography``'s AES-CFB (pysnmp's own path built pyasn1
objects for every message, most of a central round's time); this module puts them together
for both sides:

* :class:`UsmManager` (the client's half): engine discovery, then every request authenticated
  and encrypted, every answer checked; a Report (wrong keys, unknown user, out of time) is an
  answer too;
* :class:`UsmAgent` (the agent's half): discovery reports, the time window, user lookup, digest
  and decryption checks, each failure answered with the RFC 3414 report (never with data).

There is no noAuthNoPriv or authNoPriv data path: a message below authPriv is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from cryptography.hazmat.decrepit.ciphers.modes import CFB
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from deploy import ber
from deploy.oids import OID
from deploy.snmp import Counter, Pdu, SnmpError, make_pdu
from sim.errors import WulinError

AUTH_PROTOCOL = (1, 3, 6, 1, 6, 3, 10, 1, 1, 5)  # usmHMAC192SHA256AuthProtocol (RFC 7860)
PRIV_PROTOCOL = (1, 3, 6, 1, 6, 3, 10, 1, 2, 4)  # usmAesCfb128Protocol (RFC 3826)
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

DIGEST_LEN = 24  # usmHMAC192SHA256AuthProtocol: HMAC-SHA-256 truncated to 192 bits
_ZEROS = b"\x00" * DIGEST_LEN


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
    """A user's keys localised to one engine (RFC 3414 2.6): HMAC key, AES-128 key."""

    auth: bytes
    priv: bytes


@lru_cache(maxsize=256)
def local_keys(user: UsmUser, engine_id: bytes) -> LocalKeys:
    """``user``'s keys for the engine ``engine_id`` (cached: the derivation hashes 1 MB)."""
    return LocalKeys(_localize(user.auth_key, engine_id), _localize(user.priv_key, engine_id)[:16])


def _localize(passphrase: str, engine_id: bytes) -> bytes:
    """RFC 3414 A.2: the passphrase repeated over 1 MB and hashed, then hashed with the engine id
    (SHA-256 for both keys: AES takes its 16 bytes from the key localised with the auth hash)."""
    pw = passphrase.encode()
    ku = hashlib.sha256((pw * (1048576 // len(pw) + 1))[:1048576]).digest()
    return hashlib.sha256(ku + engine_id + ku).digest()


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


def _cfb(keys: LocalKeys, engine: Engine, salt: bytes) -> Cipher[Any]:
    """AES-128-CFB with the RFC 3826 IV: engine boots, engine time, the 8-byte salt."""
    iv = engine.boots.to_bytes(4, "big") + engine.time.to_bytes(4, "big") + salt
    return Cipher(algorithms.AES(keys.priv), CFB(iv))


def _digest(keys: LocalKeys, whole: bytes) -> bytes:
    return hmac.new(keys.auth, whole, hashlib.sha256).digest()[:DIGEST_LEN]


def encode_v3(pdu: Pdu, msg_id: int, engine: Engine, user: UsmUser | None, flags: int) -> bytes:
    """BER bytes of ``pdu`` in a v3 message; ``user`` None: unauthenticated (discovery, reports)."""
    keys = local_keys(user, engine.engine_id) if user else None
    scoped = ber.tlv(ber.SEQ, ber.tlv(ber.OCTETS, engine.engine_id) + b"\x04\x00" +
                     ber.pdu(pdu.kind, pdu.request_id, pdu.varbinds, pdu.error_status, pdu.error_index))
    salt = b""
    if keys is not None and flags & FLAG_PRIV:
        salt = os.urandom(8)
        enc = _cfb(keys, engine, salt).encryptor()
        data = ber.tlv(ber.OCTETS, enc.update(scoped) + enc.finalize())
    else:
        data = scoped
    authed = keys is not None and flags & FLAG_AUTH
    head = (ber.tlv(ber.OCTETS, engine.engine_id) + ber.integer(engine.boots) + ber.integer(engine.time)
            + ber.tlv(ber.OCTETS, user.name.encode() if user else b"") + ber.tlv(ber.OCTETS, _ZEROS if authed else b""))
    sec = ber.tlv(ber.SEQ, head + ber.tlv(ber.OCTETS, salt))
    glob = ber.tlv(ber.SEQ, ber.integer(msg_id) + ber.integer(MAX_SIZE) + ber.tlv(ber.OCTETS, bytes([flags]))
                   + ber.integer(USM_MODEL))
    before = ber.integer(3) + glob + ber.tlv(ber.OCTETS, sec)[:-len(sec)]
    msg = ber.tlv(ber.SEQ, before + sec + data)
    if not authed:
        return msg
    assert keys is not None
    at = len(msg) - len(data) - len(ber.tlv(ber.OCTETS, salt)) - DIGEST_LEN  # the digest precedes the salt
    return msg[:at] + _digest(keys, msg) + msg[at + DIGEST_LEN:]


def _scoped_pdu(data: bytes, s: int, e: int) -> tuple[str, int, int, int, list[tuple[OID, Any]]]:
    """The PDU of the scoped PDU whose contents lie at ``data[s:e]`` (context id and name skipped)."""
    _, p = ber.read_octets(data, s, e)
    _, p = ber.read_octets(data, p, e)
    return ber.read_pdu(data, p, e)


@dataclass
class _Raw:
    msg_id: int
    flags: int
    engine: Engine
    user: str
    auth: bytes  # msgAuthenticationParameters
    auth_at: int  # where they lie in the message
    salt: bytes  # msgPrivacyParameters
    body: tuple[int, int, int]  # msgData: tag, start, end of its contents


def _parse(data: bytes) -> _Raw:
    try:
        s, e = ber.expect(data, 0, ber.SEQ)
        ver, p = ber.read_int(data, s, end=e)
        gs, p = ber.expect(data, p, ber.SEQ, e)
        msg_id, q = ber.read_int(data, gs, end=p)
        _, q = ber.read_int(data, q, end=p)
        flag_bytes, q = ber.read_octets(data, q, p)
        model, _ = ber.read_int(data, q, end=p)
        if ver != 3 or model != USM_MODEL or len(flag_bytes) != 1:
            raise SnmpError("not a USM message")
        ss, p = ber.expect(data, p, ber.OCTETS, e)
        q, se = ber.expect(data, ss, ber.SEQ, p)
        eid, q = ber.read_octets(data, q, se)
        boots, q = ber.read_int(data, q, end=se)
        etime, q = ber.read_int(data, q, end=se)
        user, q = ber.read_octets(data, q, se)
        auth_at, q = ber.expect(data, q, ber.OCTETS, se)
        auth = bytes(data[auth_at:q])
        salt, _ = ber.read_octets(data, q, se)
        body = ber.read(data, p, e)
        return _Raw(msg_id, flag_bytes[0], Engine(eid, boots, etime), user.decode("utf-8", "replace"), auth, auth_at,
                    salt, body)
    except ber.BerError as exc:
        raise SnmpError(f"undecodable SNMPv3 message ({exc})") from None


def _open(raw: _Raw, data: bytes, keys: LocalKeys | None) -> V3Message:
    """Check the digest and decrypt, with ``keys`` (None: the message must be unauthenticated)."""
    if raw.flags & FLAG_AUTH:
        if keys is None:
            raise UsmError(f"unknown SNMPv3 user {raw.user!r}", "unknownUserNames")
        zeroed = data[:raw.auth_at] + _ZEROS + data[raw.auth_at + DIGEST_LEN:]
        if len(raw.auth) != DIGEST_LEN or not hmac.compare_digest(_digest(keys, zeroed), raw.auth):
            raise UsmError(f"SNMPv3 user {raw.user!r}: wrong authentication key (digest differs)", "wrongDigests")
    tag, s, e = raw.body
    if raw.flags & FLAG_PRIV:
        if keys is None or not raw.flags & FLAG_AUTH:
            raise UsmError("privacy without authentication", "unsupportedSecLevels")
        if tag != ber.OCTETS or len(raw.salt) != 8:
            raise UsmError(f"SNMPv3 user {raw.user!r}: cannot decrypt (no encrypted PDU)", "decryptionErrors")
        dec = _cfb(keys, raw.engine, raw.salt).decryptor()
        clear = dec.update(data[s:e]) + dec.finalize()
        try:
            s, e = ber.expect(clear, 0, ber.SEQ)
            fields = _scoped_pdu(clear, s, e)
        except ber.BerError:
            raise UsmError(f"SNMPv3 user {raw.user!r}: cannot decrypt (wrong privacy key)",
                           "decryptionErrors") from None
    elif tag == ber.SEQ:
        try:
            fields = _scoped_pdu(data, s, e)
        except ber.BerError:
            raise SnmpError("undecodable scoped PDU") from None
    else:
        raise SnmpError("not a plaintext scoped PDU")
    return V3Message(raw.msg_id, raw.flags, raw.engine, raw.user, make_pdu("3", raw.user, fields))


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

    def restart(self) -> None:
        """The device restarted: ``snmpEngineBoots`` + 1, its engine time from 0 (RFC 3414 2.2)."""
        self.boots, self._t0 = self.boots + 1, time.monotonic()

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
        tag, s, e = raw.body
        if not raw.flags & FLAG_PRIV and tag == ber.SEQ:  # the request id is readable only in plaintext
            try:
                request_id = _scoped_pdu(data, s, e)[1]
            except ber.BerError:
                request_id = 0
        vb = [(REPORTS[exc.report], Counter(self.counters[exc.report]))]
        rep = Pdu("3", "", "report", request_id, vb)
        # A time-window report is authenticated (RFC 3414 3.2 step 7): the manager may trust the
        # clock it carries; the others go out unauthenticated.
        user = self.users.get(raw.user) if exc.report == "notInTimeWindows" else None
        flags = FLAG_AUTH if user else 0
        return encode_v3(rep, raw.msg_id, self.engine(), user, flags)


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
