"""Device access: SNMPv3 authPriv by default, v2c only opted in, no default community, and no
secret in the plan store (issue 11 item 7)."""

from __future__ import annotations

import inspect
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deploy import oids as O
from deploy.emulator import ControllerEmulator
from deploy.ntcip import NtcipAdapter, adapter_for
from deploy.secrets import DeviceCredentials, SecretsFile
from deploy.snmp import SnmpAuthError, SnmpClient, SnmpTimeout
from deploy.store import PlanStore
from deploy.usm import UsmManager, UsmUser
from sim.errors import WulinError
from wulin.cli import app

from .conftest import CAPS, make_plan, make_profile


def secret_strings(creds: DeviceCredentials) -> list[str]:
    users = [u for u in (creds.reader, creds.writer) if u is not None]
    return [k for u in users for k in (u.auth_key, u.priv_key)] + [
        c for c in (creds.read_community, creds.write_community) if c]


def test_v3_client_authpriv_works_and_wrong_keys_are_refused() -> None:
    emu = ControllerEmulator(make_profile(), make_plan(), CAPS, time_scale=100).start()
    try:
        w = emu.credentials.writer
        assert w is not None
        good = SnmpClient(emu.host, emu.port, timeout=0.3, usm=UsmManager(w))
        good.set([(O.UNIT_BACKUP_TIME, 12)])
        assert good.get([O.UNIT_BACKUP_TIME])[O.UNIT_BACKUP_TIME] == 12
        for bad in (UsmUser(w.name, "wrong-auth-key", w.priv_key), UsmUser("stranger", "abcdefgh1", "abcdefgh2")):
            with pytest.raises(SnmpAuthError, match="refused the SNMPv3 request"):
                SnmpClient(emu.host, emu.port, timeout=0.3, retries=0, usm=UsmManager(bad)).set(
                    [(O.UNIT_BACKUP_TIME, 99)])
        wrong_priv = SnmpClient(emu.host, emu.port, timeout=0.3, retries=0,
                                usm=UsmManager(UsmUser(w.name, w.auth_key, "wrong-priv-key")))
        with pytest.raises(WulinError):
            wrong_priv.set([(O.UNIT_BACKUP_TIME, 99)])
        assert emu.db[O.UNIT_BACKUP_TIME] == 12
    finally:
        emu.stop()


def test_no_default_community_and_v2c_only_opted_in() -> None:
    # No default community or user anywhere a caller could fall back on.
    for fn in (ControllerEmulator.__init__, SnmpClient, PlanStore.register_device):
        defaults = [p.default for p in inspect.signature(fn).parameters.values()]
        assert "public" not in defaults and "private" not in defaults
    assert inspect.signature(NtcipAdapter).parameters["credentials"].default is inspect.Parameter.empty
    with pytest.raises(WulinError, match="needs a community"):
        SnmpClient("127.0.0.1", 161, version="2c")
    with pytest.raises(WulinError, match="needs a user"):
        SnmpClient("127.0.0.1", 161)
    emu = ControllerEmulator(make_profile(), make_plan(), CAPS, time_scale=100).start()
    try:
        assert emu.credentials.snmp == "3" and emu.credentials.write_community is None
        for community in ("public", "private"):
            with pytest.raises(SnmpTimeout):  # a v3-only agent does not answer v2c at all
                SnmpClient(emu.host, emu.port, community, "2c", timeout=0.2, retries=0).get([O.MAX_PHASES])
    finally:
        emu.stop()
    opted = ControllerEmulator(make_profile(), make_plan(), CAPS, time_scale=100, snmp_v2c=True).start()
    try:
        c = opted.credentials
        assert c.write_community not in (None, "public", "private") and len(c.write_community or "") >= 20
        SnmpClient(opted.host, opted.port, c.write_community or "", "2c", timeout=0.3).set([(O.UNIT_BACKUP_TIME, 3)])
        assert opted.db[O.UNIT_BACKUP_TIME] == 3
    finally:
        opted.stop()


def test_secrets_file_is_0600_and_the_store_holds_no_secret(tmp_path: Path) -> None:
    vault = SecretsFile(tmp_path / "cfg" / "device-secrets.json")
    creds = DeviceCredentials.generate(v2c=True)
    vault.put("B1", creds)
    assert stat.S_IMODE(vault.path.stat().st_mode) == 0o600
    assert vault.get("B1") == creds and "auth" not in repr(creds) and creds.reader.auth_key not in repr(creds)
    store_file = tmp_path / "store.sqlite"
    store = PlanStore(store_file)
    store.register_device("B1", "127.0.0.1", 16161, make_profile(), CAPS, snmp_version="2c")
    dev = store.device("B1")
    store.close()
    raw = store_file.read_bytes()
    for secret in secret_strings(creds):
        assert secret.encode() not in raw, "a device secret is in the store file"
    assert adapter_for(dev, vault).credentials == creds
    # A file others can read is refused, as is a device with no entry.
    os.chmod(vault.path, 0o644)
    with pytest.raises(WulinError, match="readable by others"):
        vault.get("B1")
    os.chmod(vault.path, 0o600)
    with pytest.raises(WulinError, match="no credentials for device 'C2'"):
        vault.get("C2")


def test_emulator_start_writes_credentials_outside_the_store(tmp_path: Path) -> None:
    store, secrets = tmp_path / "store.sqlite", tmp_path / "s" / "secrets.json"
    env = {"WULIN_STORE": str(store), "WULIN_SECRETS": str(secrets), "COLUMNS": "200"}
    r = CliRunner().invoke(app, ["emulator", "start", "--network", "grid", "--port", "26300", "--seconds", "0.3",
                                 "--signals", "B1"], env=env)
    assert r.exit_code == 0, r.output
    assert "SNMPv3 authPriv" in r.output and "public" not in r.output
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    creds = SecretsFile(secrets).get("B1")
    raw = store.read_bytes()
    assert all(s.encode() not in raw for s in secret_strings(creds))
    dev = PlanStore(store).device("B1")
    assert (dev.credentials_ref, dev.snmp_version) == ("B1", "3")


def test_client_rediscovers_a_restarted_agent() -> None:
    emu = ControllerEmulator(make_profile(), make_plan(), CAPS, time_scale=100).start()
    creds, port = emu.credentials, emu.port
    assert creds.reader is not None
    client = SnmpClient(emu.host, port, timeout=0.3, usm=UsmManager(creds.reader))
    assert client.get([O.MAX_PHASES])[O.MAX_PHASES] == CAPS.max_phases
    old_engine = client.usm.engine  # type: ignore[union-attr]
    emu.stop()
    again = ControllerEmulator(make_profile(), make_plan(), CAPS, port=port, credentials=creds, time_scale=100).start()
    try:  # a new engine id: the agent reports unknownEngineIDs, the client learns it and goes on
        assert client.get([O.MAX_PHASES])[O.MAX_PHASES] == CAPS.max_phases
        assert client.usm.engine.engine_id != old_engine.engine_id  # type: ignore[union-attr]
    finally:
        again.stop()


def test_client_clock_outside_the_time_window_is_corrected_by_an_authenticated_report() -> None:
    from deploy.usm import Engine

    emu = ControllerEmulator(make_profile(), make_plan(), CAPS, time_scale=100).start()
    try:
        assert emu.credentials.writer is not None
        usm = UsmManager(emu.credentials.writer)
        client = SnmpClient(emu.host, emu.port, timeout=0.3, retries=0, usm=usm)
        client.get([O.MAX_PHASES])
        e = usm.engine
        assert e is not None
        usm.learn(Engine(e.engine_id, e.boots, e.time + 1000))  # our idea of its clock is 1000 s off
        client.set([(O.UNIT_BACKUP_TIME, 21)])  # refused once (not applied), then resent in time
        assert emu.db[O.UNIT_BACKUP_TIME] == 21 and emu.agent.usm.counters["notInTimeWindows"] == 1
    finally:
        emu.stop()
