"""The emulator answers Net-SNMP's snmpget / snmpset / snmpwalk (an independent client), and the
OIDs in deploy.oids are pinned against the reference table."""

from __future__ import annotations

import csv
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy import oids as O
from deploy.emulator import ControllerEmulator
from deploy.usm import AUTH_NAME, PRIV_NAME, UsmUser

from .conftest import CAPS, make_plan, make_profile

# The reference table lives in shared/ beside (or inside) the checkout; worktrees sit one level deeper.
REFERENCE = next((p / "shared" / "reference" / "ntcip_oids.tsv" for p in Path(__file__).resolve().parents
                  if (p / "shared" / "reference" / "ntcip_oids.tsv").is_file()), Path("shared/reference/ntcip_oids.tsv"))
needs_netsnmp = pytest.mark.skipif(shutil.which("snmpget") is None,
                                   reason="Net-SNMP tools not installed (Debian package 'snmp')")


@pytest.fixture
def emu() -> Iterator[ControllerEmulator]:
    """An emulator that also answers v1/v2c (opted in), with random communities."""
    e = ControllerEmulator(make_profile(), make_plan(), CAPS, time_scale=100, verify_s=1, snmp_v2c=True).start()
    yield e
    e.stop()


@pytest.fixture
def emu3() -> Iterator[ControllerEmulator]:
    """An emulator as it starts by default: SNMPv3 authPriv only."""
    e = ControllerEmulator(make_profile(), make_plan(), CAPS, time_scale=100, verify_s=1).start()
    yield e
    e.stop()


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=20)


def target(emu: ControllerEmulator) -> str:
    return f"udp:{emu.host}:{emu.port}"


def ro(emu: ControllerEmulator) -> str:
    return str(emu.credentials.read_community)


def rw(emu: ControllerEmulator) -> str:
    return str(emu.credentials.write_community)


def v3(user: UsmUser, auth: str | None = None, priv: str | None = None) -> list[str]:
    """Net-SNMP's authPriv options for ``user`` (``auth`` / ``priv``: other passphrases)."""
    return ["-v3", "-l", "authPriv", "-u", user.name, "-a", AUTH_NAME, "-A", auth or user.auth_key,
            "-x", PRIV_NAME, "-X", priv or user.priv_key, "-r", "0", "-t", "2"]


@needs_netsnmp
@pytest.mark.parametrize("version", ["1", "2c"])
def test_snmpget_reads_the_objects(emu: ControllerEmulator, version: str) -> None:
    out = run("snmpget", f"-v{version}", "-c", ro(emu), "-On", "-r", "1", "-t", "2", target(emu),
              O.dotted(O.MAX_PHASES), O.dotted(O.PATTERN_CYCLE + (1,)), O.dotted(O.SYS_DESCR),
              O.dotted(O.SEQUENCE_DATA + (1, 1)))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f".{O.dotted(O.MAX_PHASES)} = INTEGER: {CAPS.max_phases}"
    assert lines[1] == f".{O.dotted(O.PATTERN_CYCLE + (1,))} = INTEGER: 90"
    assert "Wulin NTCIP 1202 v02 controller emulator" in lines[2]
    assert lines[3].endswith("Hex-STRING: 01 02 ") or "01 02" in lines[3]


@needs_netsnmp
def test_snmpset_writes_with_the_write_community_only(emu: ControllerEmulator) -> None:
    oid = O.dotted(O.UNIT_BACKUP_TIME)
    ok = run("snmpset", "-v2c", "-c", rw(emu), "-On", "-r", "0", "-t", "2", target(emu), oid, "i", "120")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == f".{oid} = INTEGER: 120" and emu.db[O.UNIT_BACKUP_TIME] == 120
    denied = run("snmpset", "-v2c", "-c", ro(emu), "-r", "0", "-t", "2", target(emu), oid, "i", "5")
    assert denied.returncode != 0 and "noAccess" in denied.stderr
    v1 = run("snmpset", "-v1", "-c", ro(emu), "-r", "0", "-t", "2", target(emu), oid, "i", "5")
    assert v1.returncode != 0 and "noSuchName" in (v1.stdout + v1.stderr)
    assert emu.db[O.UNIT_BACKUP_TIME] == 120
    ro_obj = run("snmpset", "-v2c", "-c", rw(emu), "-r", "0", "-t", "2", target(emu), O.dotted(O.MAX_PHASES), "i", "4")
    assert ro_obj.returncode != 0 and "notWritable" in ro_obj.stderr
    # A timing-table object outside a transaction is refused by the device.
    p2 = run("snmpset", "-v2c", "-c", rw(emu), "-r", "0", "-t", "2", target(emu),
             O.dotted(O.PATTERN_CYCLE + (2,)), "i", "90")
    assert p2.returncode != 0 and "genErr" in p2.stderr
    # The whole transaction with Net-SNMP: open, set, verify, poll, apply; every SET names the
    # session's owner token (the emulator's private object), and one without it is refused.
    owner = (O.dotted(O.TX_OWNER), "s", "netsnmp-session")
    tx = O.dotted(O.DB_CREATE_TRANSACTION)
    assert run("snmpset", "-v2c", "-c", rw(emu), target(emu), tx, "i", "2").returncode != 0
    assert run("snmpset", "-v2c", "-c", rw(emu), target(emu), *owner, tx, "i", "2").returncode == 0
    nameless = run("snmpset", "-v2c", "-c", rw(emu), target(emu), O.dotted(O.PHASE_WALK + (1,)), "i", "9")
    assert nameless.returncode != 0 and "genErr" in nameless.stderr
    assert run("snmpset", "-v2c", "-c", rw(emu), target(emu), *owner, O.dotted(O.PHASE_WALK + (1,)), "i",
               "9").returncode == 0
    assert run("snmpset", "-v2c", "-c", rw(emu), target(emu), *owner, tx, "i", "3").returncode == 0
    import time

    for _ in range(100):
        st = run("snmpget", "-v2c", "-c", ro(emu), "-Oqv", target(emu), O.dotted(O.DB_CREATE_TRANSACTION))
        if st.stdout.strip() == "6":
            break
        time.sleep(0.02)
    assert run("snmpset", "-v2c", "-c", rw(emu), target(emu), *owner, tx, "i", "1").returncode == 0
    assert emu.db[O.PHASE_WALK + (1,)] == 9


@needs_netsnmp
def test_snmpwalk_and_bulkwalk(emu: ControllerEmulator) -> None:
    root = O.dotted(O.PHASE_MIN_GREEN)
    walk = run("snmpwalk", "-v1", "-c", ro(emu), "-On", target(emu), root)
    bulk = run("snmpbulkwalk", "-v2c", "-c", ro(emu), "-On", target(emu), root)
    assert walk.returncode == 0 and bulk.returncode == 0, walk.stderr + bulk.stderr
    assert walk.stdout == bulk.stdout
    assert len(walk.stdout.splitlines()) == CAPS.max_phases
    assert f".{root}.1 = INTEGER: 10" in walk.stdout


@pytest.mark.skipif(not REFERENCE.is_file(), reason="shared/reference/ntcip_oids.tsv not beside the repository")
def test_oids_are_pinned_to_the_reference_table() -> None:
    with REFERENCE.open(newline="") as fh:
        table = {row["object"]: row for row in csv.DictReader(fh, delimiter="\t")}
    for name, value in O.NAMED.items():
        assert name in table, f"{name} is not in the reference table"
        assert O.dotted(value) == table[name]["oid"], f"{name}: {O.dotted(value)} != {table[name]['oid']}"
    # The enumerations the adapter relies on.
    assert "normal(1), transaction(2), verifying(3), done(6)" in table["dbCreateTransaction"]["range/enum"]
    assert "notFree(2)" in table["localFreeStatus"]["range/enum"] and "badPlan(7)" in table["localFreeStatus"]["range/enum"]
    assert "maximumVehicleRecall(4)" in table["splitMode"]["range/enum"]
    assert "phaseOmitted(7)" in table["splitMode"]["range/enum"]
    assert "backupMode(4)" in table["unitControlStatus"]["range/enum"]
    assert "doneWithNoError(2)" in table["dbVerifyStatus"]["range/enum"]
    assert O.VERIFY_SCHEMES["table"][2] == "doneWithNoError"


@needs_netsnmp
def test_snmpv3_authpriv_reads_writes_and_refuses_wrong_keys(emu3: ControllerEmulator) -> None:
    creds = emu3.credentials
    assert creds.writer is not None
    oid = O.dotted(O.UNIT_BACKUP_TIME)
    got = run("snmpget", *v3(creds.reader), "-On", target(emu3), O.dotted(O.MAX_PHASES))
    assert got.returncode == 0 and got.stdout.strip() == f".{O.dotted(O.MAX_PHASES)} = INTEGER: {CAPS.max_phases}"
    ok = run("snmpset", *v3(creds.writer), "-On", target(emu3), oid, "i", "77")
    assert ok.returncode == 0, ok.stderr
    assert emu3.db[O.UNIT_BACKUP_TIME] == 77
    # The read-only user cannot write; wrong keys and unknown users get nothing.
    denied = run("snmpset", *v3(creds.reader), target(emu3), oid, "i", "5")
    assert denied.returncode != 0 and "noAccess" in denied.stderr
    wrong_auth = run("snmpget", *v3(creds.writer, auth="not-the-key-1"), target(emu3), oid)
    assert wrong_auth.returncode != 0 and "Authentication failure" in wrong_auth.stderr
    wrong_priv = run("snmpset", *v3(creds.writer, priv="not-the-key-2"), target(emu3), oid, "i", "5")
    assert wrong_priv.returncode != 0
    stranger = run("snmpget", *v3(UsmUser("intruder", "intruder-key-1", "intruder-key-2")), target(emu3), oid)
    assert stranger.returncode != 0 and "Unknown user name" in stranger.stderr
    assert emu3.db[O.UNIT_BACKUP_TIME] == 77
    assert emu3.agent.usm.counters["wrongDigests"] >= 1 and emu3.agent.usm.counters["unknownUserNames"] >= 1
    # Below authPriv: refused.
    noauth = run("snmpget", "-v3", "-l", "noAuthNoPriv", "-u", creds.reader.name, "-r", "0", "-t", "2",
                 target(emu3), oid)
    assert noauth.returncode != 0 and "INTEGER" not in noauth.stdout


@needs_netsnmp
def test_v2c_is_refused_unless_opted_in(emu3: ControllerEmulator) -> None:
    for community in ("public", "private"):
        out = run("snmpget", "-v2c", "-c", community, "-r", "0", "-t", "1", target(emu3), O.dotted(O.MAX_PHASES))
        assert out.returncode != 0 and "Timeout" in out.stderr
        out = run("snmpset", "-v2c", "-c", community, "-r", "0", "-t", "1", target(emu3),
                  O.dotted(O.UNIT_BACKUP_TIME), "i", "9")
        assert out.returncode != 0
    assert emu3.db[O.UNIT_BACKUP_TIME] == 0
