"""The direct BER codec writes what pyasn1 / pysnmp write, reads what they write, refuses junk."""

from __future__ import annotations

import random

import pytest
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api  # noqa: F401 - imported first: pysnmp's modules import each other in this order

from deploy import ber
from deploy.snmp import Counter, NoSuch, Pdu, SnmpError, Ticks, decode, encode, message_version
from deploy.usm import LocalKeys, UsmUser, local_keys

PDUS = [
    Pdu("2c", "public", "get", 1, [((1, 3, 6, 1, 4, 1, 1206, 4, 2, 1, 1, 4, 1, 4, 1), None)]),
    Pdu("2c", "w", "set", 2**31 - 1, [((1, 3, 6, 1, 2, 1, 1, 5, 0), b"name\x00\xff"), ((1, 3, 6, 1, 4, 1, 1206, 5), 300)]),
    Pdu("2c", "c", "response", 0, [((1, 3, 6, 1, 2, 1, 1, 3, 0), Ticks(123456)), ((1, 3, 6, 1, 6, 3, 15, 1, 1, 2, 0),
                                   Counter(2**32 - 1)), ((1, 3, 6, 1, 2, 1, 1, 2, 0), (1, 3, 6, 1, 4, 1, 1206))], 0, 0),
    Pdu("2c", "p", "response", 7, [((1, 3, 6, 1, 9, 9), NoSuch("noSuchObject")), ((1, 3, 6, 1, 9, 10),
                                   NoSuch("endOfMibView")), ((1, 3, 6, 1), -129)], 2, 1),
    Pdu("2c", "p", "getbulk", 9, [((1, 3, 6, 1, 4, 1, 1206, 4, 2, 1, 1, 2, 1, 4), None)], non_repeaters=0,
        max_repetitions=20),
    Pdu("1", "p", "getnext", 11, [((1, 3, 6, 1, 4, 1, 1206, 4, 2, 1, 1, 2, 1, 4, 200000), None)]),
]


def _pyasn1_bytes(pdu: Pdu) -> bytes:
    """The same message built by pysnmp's protocol API (the reference)."""
    from pysnmp.proto import rfc1905

    mod = api.PROTOCOL_MODULES[{"1": api.SNMP_VERSION_1, "2c": api.SNMP_VERSION_2C}[pdu.version]]
    kinds = {"get": "GetRequestPDU", "getnext": "GetNextRequestPDU", "set": "SetRequestPDU",
             "response": "GetResponsePDU", "getbulk": "GetBulkRequestPDU"}
    p = getattr(mod, kinds[pdu.kind])()
    papi = mod.apiBulkPDU if pdu.kind == "getbulk" else mod.apiPDU
    papi.set_defaults(p)
    papi.set_request_id(p, pdu.request_id)
    if pdu.kind == "getbulk":
        papi.set_non_repeaters(p, pdu.non_repeaters)
        papi.set_max_repetitions(p, pdu.max_repetitions)
    else:
        papi.set_error_status(p, pdu.error_status)
        papi.set_error_index(p, pdu.error_index)

    def conv(v):  # noqa: ANN001, ANN202
        if v is None:
            return mod.null
        if isinstance(v, NoSuch):
            return {"noSuchObject": rfc1905.noSuchObject, "endOfMibView": rfc1905.endOfMibView}[v.kind]
        if isinstance(v, Ticks):
            return mod.TimeTicks(int(v))
        if isinstance(v, Counter):
            return mod.Counter32(int(v))
        if isinstance(v, int):
            return mod.Integer(v)
        if isinstance(v, bytes):
            return mod.OctetString(v)
        return mod.ObjectIdentifier(v)

    papi.set_varbinds(p, [(o, conv(v)) for o, v in pdu.varbinds])
    msg = mod.Message()
    mod.apiMessage.set_defaults(msg)
    mod.apiMessage.set_community(msg, pdu.community)
    mod.apiMessage.set_pdu(msg, p)
    return bytes(encoder.encode(msg))


@pytest.mark.parametrize("pdu", PDUS, ids=lambda p: p.kind)
def test_messages_are_byte_for_byte_pyasn1s_and_read_back(pdu: Pdu) -> None:
    data = encode(pdu)
    assert data == _pyasn1_bytes(pdu)
    assert decode(data) == pdu
    assert message_version(data) == pdu.version


def test_integers_and_oids_match_pyasn1_over_random_values() -> None:
    from pyasn1.type import univ

    rng = random.Random(5)
    for _ in range(500):
        v = rng.choice([rng.randint(-300, 300), rng.randint(-2**40, 2**40), rng.randint(0, 2**32 - 1)])
        assert ber.integer(v) == encoder.encode(univ.Integer(v))
        o = (1, rng.randint(0, 39), *[rng.choice([rng.randint(0, 127), rng.randint(128, 2**32)]) for _ in range(8)])
        assert ber.oid(o) == encoder.encode(univ.ObjectIdentifier(o))
        assert tuple(decoder.decode(ber.oid(o))[0]) == o
        body = bytes(rng.randrange(256) for _ in range(rng.choice([0, 5, 127, 128, 300, 70000])))
        assert ber.tlv(ber.OCTETS, body) == encoder.encode(univ.OctetString(body))


def test_junk_is_refused_with_one_error() -> None:
    good = encode(PDUS[1])
    rng = random.Random(3)
    for cut in range(len(good)):
        with pytest.raises(SnmpError):
            decode(good[:cut])
    for _ in range(300):  # random corruption: either refused, or read as some message, never a crash
        bad = bytearray(good)
        bad[rng.randrange(len(bad))] = rng.randrange(256)
        try:
            decode(bytes(bad))
        except SnmpError:
            pass
    assert message_version(b"\x01\x02") == ""


def test_keys_are_localised_as_pysnmp_does() -> None:
    from pyasn1.type import univ
    from pysnmp.proto.secmod.rfc3414.service import UsmSecurityParameters  # noqa: F401 - import order
    from pysnmp.proto.secmod.rfc3826.priv.aes import Aes
    from pysnmp.proto.secmod.rfc7860.auth.hmacsha2 import HmacSha2

    from deploy.usm import AUTH_PROTOCOL, PRIV_PROTOCOL

    assert AUTH_PROTOCOL == HmacSha2.SHA256_SERVICE_ID and PRIV_PROTOCOL == Aes.SERVICE_ID
    user, eid = UsmUser("wulin-write", "auth passphrase 1", "priv passphrase 2"), bytes.fromhex("80007ed90501020304")
    a, p = HmacSha2(AUTH_PROTOCOL), Aes()
    want = LocalKeys(bytes(a.localize_key(a.hash_passphrase(user.auth_key), univ.OctetString(eid))),
                     bytes(p.localize_key(AUTH_PROTOCOL, p.hash_passphrase(AUTH_PROTOCOL, user.priv_key),
                                          univ.OctetString(eid)))[:16])
    assert local_keys(user, eid) == want
