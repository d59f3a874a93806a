"""A direct BER codec for SNMP messages: the bytes of v1 / v2c / v3 messages without pyasn1 objects.

Why not pyasn1 (which :mod:`deploy.snmp` and :mod:`deploy.usm` used for every PDU): it builds
a tree of typed objects for each message and walks it through generic codecs, about 1 ms of
CPU per encode or decode here; a central round (a GET and often a SET to each of 24 devices,
each encoded and decoded on both sides, v3 twice over for the scoped PDU) spent most of its
time there (``benchmarks/bench_cosim.py --profile``).  SNMP uses a handful of BER forms:
definite lengths, one-byte tags, INTEGER, OCTET STRING, NULL, OBJECT IDENTIFIER, the
SNMPv2-SMI application types and the PDU and exception tags; this module writes and reads
exactly those, byte for byte as pyasn1 does (``tests/deploy/test_ber.py`` compares them),
and refuses anything else with :class:`BerError` (a :class:`~deploy.snmp.SnmpError`).

Values are plain Python: ``int``, ``bytes``, ``None``, OID tuples, and the three SNMP types
defined here (:class:`Ticks`, :class:`Counter`, :class:`NoSuch`; :mod:`deploy.snmp` exports them).
"""

from __future__ import annotations

from typing import Any

SEQ, INT, OCTETS, NULL, OID_TAG = 0x30, 0x02, 0x04, 0x05, 0x06
IP, COUNTER32, GAUGE32, TICKS, OPAQUE, COUNTER64 = 0x40, 0x41, 0x42, 0x43, 0x44, 0x46
NO_SUCH = {0x80: "noSuchObject", 0x81: "noSuchInstance", 0x82: "endOfMibView"}
NO_SUCH_TAGS = {v: k for k, v in NO_SUCH.items()}
PDU_TAGS = {"get": 0xA0, "getnext": 0xA1, "response": 0xA2, "set": 0xA3, "getbulk": 0xA5, "report": 0xA8}
PDU_KINDS = {v: k for k, v in PDU_TAGS.items()}


class BerError(ValueError):
    """Bytes that are not the BER this codec reads."""


class Ticks(int):
    """A TimeTicks value (hundredths of a second)."""


class Counter(int):
    """A Counter32 value."""


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


# ---------------------------------------------------------------------------------------------
# writing


def length(n: int) -> bytes:
    """A definite length, short form below 128."""
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, body: bytes) -> bytes:
    return bytes((tag,)) + length(len(body)) + body


def integer(v: int, tag: int = INT) -> bytes:
    """Two's complement, fewest bytes (as BER requires; unsigned types get a leading 0 when needed)."""
    body = v.to_bytes(v.bit_length() // 8 + 1, "big", signed=True)
    return tlv(tag, body)


def oid(o: tuple[int, ...]) -> bytes:
    if len(o) < 2:
        raise BerError(f"an OBJECT IDENTIFIER needs two arcs at least: {o!r}")
    out = bytearray()
    for arc in (o[0] * 40 + o[1], *o[2:]):
        if arc < 0x80:
            out.append(arc)
            continue
        chunk = []
        while arc:
            chunk.append(arc & 0x7F)
            arc >>= 7
        out += bytes(c | 0x80 for c in reversed(chunk[1:])) + bytes((chunk[0],))
    return tlv(OID_TAG, bytes(out))


def value(v: Any) -> bytes:
    """One varbind value (the types of :mod:`deploy.snmp`)."""
    if v is None:
        return b"\x05\x00"
    if isinstance(v, bool):
        raise BerError("SNMP has no boolean type")
    if isinstance(v, Ticks):
        return integer(int(v), TICKS)
    if isinstance(v, Counter):
        return integer(int(v), COUNTER32)
    if isinstance(v, int):
        return integer(v)
    if isinstance(v, bytes):
        return tlv(OCTETS, v)
    if isinstance(v, str):
        return tlv(OCTETS, v.encode())
    if isinstance(v, tuple):
        return oid(v)
    if isinstance(v, NoSuch):
        return bytes((NO_SUCH_TAGS[v.kind], 0))
    raise BerError(f"cannot encode {v!r} for SNMP")


def pdu(kind: str, request_id: int, varbinds: list[tuple[tuple[int, ...], Any]], a: int = 0, b: int = 0) -> bytes:
    """A PDU: ``a``, ``b`` are error status and index (non-repeaters and max-repetitions for getbulk)."""
    vbs = b"".join(tlv(SEQ, oid(o) + value(v)) for o, v in varbinds)
    return tlv(PDU_TAGS[kind], integer(request_id) + integer(a) + integer(b) + tlv(SEQ, vbs))


# ---------------------------------------------------------------------------------------------
# reading


def read(data: bytes, pos: int, end: int | None = None) -> tuple[int, int, int]:
    """``(tag, start of the contents, end of the contents)`` of the element at ``pos``."""
    end = len(data) if end is None else end
    if pos + 2 > end:
        raise BerError("truncated element")
    tag, n = data[pos], data[pos + 1]
    if tag & 0x1F == 0x1F:
        raise BerError("multi-byte tags are not SNMP")
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        if not 0 < k <= 4 or pos + k > end:
            raise BerError("bad length")
        n = int.from_bytes(data[pos:pos + k], "big")
        pos += k
    if pos + n > end:
        raise BerError("truncated element")
    return tag, pos, pos + n


def expect(data: bytes, pos: int, tag: int, end: int | None = None) -> tuple[int, int]:
    """``(start, end)`` of the contents of the element at ``pos``, which must carry ``tag``."""
    t, s, e = read(data, pos, end)
    if t != tag:
        raise BerError(f"expected tag 0x{tag:02x}, found 0x{t:02x}")
    return s, e


def read_int(data: bytes, pos: int, tag: int = INT, end: int | None = None) -> tuple[int, int]:
    """``(value, position after it)`` of an INTEGER (or an application integer type)."""
    s, e = expect(data, pos, tag, end)
    if s == e:
        raise BerError("empty INTEGER")
    return int.from_bytes(data[s:e], "big", signed=True), e


def read_octets(data: bytes, pos: int, end: int | None = None) -> tuple[bytes, int]:
    s, e = expect(data, pos, OCTETS, end)
    return bytes(data[s:e]), e


def _oid_body(body: bytes) -> tuple[int, ...]:
    arcs, cur = [], 0
    for byte in body:
        cur = (cur << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(cur)
            cur = 0
    if not arcs or body[-1] & 0x80:
        raise BerError("bad OBJECT IDENTIFIER")
    first = arcs[0]
    head = (first // 40, first % 40) if first < 80 else (2, first - 80)
    return (*head, *arcs[1:])


def _value(tag: int, body: bytes) -> Any:
    if tag == INT or tag in (GAUGE32, COUNTER64):
        return int.from_bytes(body, "big", signed=tag == INT) if body else 0
    if tag == OCTETS or tag in (IP, OPAQUE):
        return bytes(body)
    if tag == NULL:
        return None
    if tag == OID_TAG:
        return _oid_body(body)
    if tag == TICKS:
        return Ticks(int.from_bytes(body, "big"))
    if tag == COUNTER32:
        return Counter(int.from_bytes(body, "big"))
    if tag in NO_SUCH:
        return NoSuch(NO_SUCH[tag])
    return None


def read_pdu(data: bytes, pos: int, end: int | None = None) -> tuple[str, int, int, int, list[tuple[tuple[int, ...], Any]]]:
    """``(kind, request id, a, b, varbinds)`` of the PDU at ``pos`` (``a``, ``b`` as :func:`pdu`)."""
    tag, s, e = read(data, pos, end)
    kind = PDU_KINDS.get(tag)
    if kind is None:
        raise BerError(f"unsupported PDU tag 0x{tag:02x}")
    rid, p = read_int(data, s, end=e)
    a, p = read_int(data, p, end=e)
    b, p = read_int(data, p, end=e)
    p, vend = expect(data, p, SEQ, e)
    vbs = []
    while p < vend:
        vs, ve = expect(data, p, SEQ, vend)
        os_, oe = expect(data, vs, OID_TAG, ve)
        t, bs, be = read(data, oe, ve)
        vbs.append((_oid_body(data[os_:oe]), _value(t, data[bs:be])))
        p = ve
    return kind, rid, a, b, vbs
