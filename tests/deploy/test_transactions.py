"""The database transaction belongs to a session token: never joined, stale ones aborted.

The first tests drive the device model directly (no socket, a clock the test moves); the last
one is issue 11's case on the wire: a manager killed mid-transaction after a value was
injected into it, then a new deploy.
"""

from __future__ import annotations

import time

import pytest

from deploy import oids as O
from deploy.device_model import DeviceModel
from deploy.emulator import ControllerEmulator
from deploy.ntcip import NtcipAdapter
from deploy.snmp import SnmpClient, SnmpError
from deploy.usm import UsmManager
from sim.errors import WulinError

from .conftest import CAPS, make_plan, make_profile

A, B = b"session-a", b"session-b"
INJECTED = (O.CHANNEL_CONTROL_SOURCE + (5,), 7)  # a P2 object no deploy of this plan writes


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def writer(emu: ControllerEmulator) -> SnmpClient:
    """A fresh manager session with the emulator's write user."""
    assert emu.credentials.writer is not None
    return SnmpClient(emu.host, emu.port, timeout=0.3, usm=UsmManager(emu.credentials.writer))


def model(clock: Clock) -> DeviceModel:
    return DeviceModel(make_profile(), make_plan(), CAPS, time_scale=1, verify_s=1, takeover_s=60, clock=clock)


def tx(owner: bytes | None, state: int) -> list[tuple[O.OID, object]]:
    return ([(O.TX_OWNER, owner)] if owner is not None else []) + [(O.DB_CREATE_TRANSACTION, state)]


def test_owner_token_is_required_and_enforced() -> None:
    clock = Clock()
    dev = model(clock)
    assert dev.set(tx(None, O.TX_TRANSACTION)).status == "inconsistentValue"  # no token, no transaction
    assert dev.set(tx(A, O.TX_TRANSACTION)).status == "noError"
    assert dev.value(O.TX_OWNER) == O.owner_fingerprint(A) and dev.value(O.TX_OWNER) != A
    assert dev.set([(O.TX_OWNER, A), INJECTED]).status == "noError"
    # Another session: cannot write into it, join it, verify it or apply it.
    assert dev.set([INJECTED]).status == "genErr"
    assert dev.set([(O.TX_OWNER, B), (O.PATTERN_CYCLE + (2,), 90)]).status == "genErr"
    assert dev.set(tx(B, O.TX_TRANSACTION)).status == "genErr"
    assert dev.set(tx(B, O.TX_VERIFY)).status == "genErr"
    assert dev.set(tx(B, O.TX_NORMAL)).status == "genErr"  # a live holder cannot be aborted
    assert dev.tx_owner == A and dev.buffer == {INJECTED[0]: INJECTED[1]}
    # Its holder can go on; a re-open by the same session (a lost answer) keeps its buffer.
    assert dev.set(tx(A, O.TX_TRANSACTION)).status == "noError" and INJECTED[0] in dev.buffer


def test_stale_transaction_is_aborted_never_applied() -> None:
    clock = Clock()
    dev = model(clock)
    before = dev.db[INJECTED[0]]
    dev.set(tx(A, O.TX_TRANSACTION))
    dev.set([(O.TX_OWNER, A), INJECTED])
    dev.set(tx(A, O.TX_VERIFY))
    clock.t += 2
    dev.advance()
    assert dev.tx_state == O.TX_DONE and dev.verify_status == 2  # verified, ready to apply
    clock.t += 57
    assert dev.value(O.TX_IDLE) == 59  # seconds since A's last SET (its verify)
    assert dev.set(tx(B, O.TX_NORMAL)).status == "genErr"  # not stale yet
    clock.t += 1
    assert dev.set(tx(B, O.TX_NORMAL)).status == "noError"
    # Aborted from done: nothing applied, the buffer gone, the device free.
    assert dev.db[INJECTED[0]] == before and dev.buffer == {} and dev.tx_state == O.TX_NORMAL
    assert dev.stale_aborts == 1
    # A's late 'normal' finds no transaction of its own to apply.
    assert dev.set(tx(A, O.TX_NORMAL)).status == "noError" and dev.db[INJECTED[0]] == before


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "x"])
def test_time_scale_must_be_finite_and_positive(bad: object) -> None:
    with pytest.raises(WulinError, match="time scale"):
        DeviceModel(make_profile(), make_plan(), CAPS, time_scale=bad)  # type: ignore[arg-type]


def test_killed_manager_transaction_is_aborted_not_joined_by_the_next_deploy() -> None:
    emu = ControllerEmulator(make_profile(), make_plan(name="local"), CAPS, time_scale=300, verify_s=3).start()
    try:
        before = emu.db[INJECTED[0]]
        # A manager opens a transaction, someone injects a value into it, the manager dies
        # (its socket dropped without closing the transaction), on the same address.
        killed = writer(emu)
        killed.set(tx(A, O.TX_TRANSACTION))
        killed.set([(O.TX_OWNER, A), INJECTED])
        killed.close()
        with pytest.raises(SnmpError, match="genErr"):  # the next deploy's session cannot join it
            writer(emu).set(tx(B, O.TX_TRANSACTION))
        time.sleep(0.3)  # 90 emulated seconds: past the 60 s takeover time
        new = make_plan(greens=(50, 30), offset=7)
        rep = NtcipAdapter(emu.host, emu.port, emu.profile, emu.credentials, timeout=0.3, activation_timeout_s=5,
                           tx_wait_s=2).deploy(new)
        assert rep.outcome == "deployed", rep.message
        assert any("aborted a stale transaction of another manager" in s for s in rep.steps)
        assert emu.db[INJECTED[0]] == before, "a value injected into another's transaction was committed"
        assert emu.stale_aborts == 1 and emu.active_plan().splits == new.splits  # type: ignore[union-attr]
    finally:
        emu.stop()


def test_emulator_command_refuses_a_zero_time_scale(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from wulin.cli import app

    env = {"WULIN_STORE": str(tmp_path / "s.sqlite"), "WULIN_SECRETS": str(tmp_path / "secrets.json")}
    r = CliRunner().invoke(app, ["emulator", "start", "--network", "grid", "--port", "26400", "--seconds", "0.2",
                                 "--signals", "B1", "--time-scale", "0"], env=env)
    assert isinstance(r.exception, WulinError) and "--time-scale 0.0: must be a number in (0, 1000]" in str(r.exception)


def test_controller_without_owner_objects_binds_the_user_and_is_never_joined() -> None:
    """As a real controller: no private objects; the transaction belongs to the SNMPv3 user.
    A transaction left open (by the same user) is never joined: the deploy refuses cleanly."""
    emu = ControllerEmulator(make_profile(), make_plan(name="local"), CAPS, time_scale=300, verify_s=3,
                             owner_objects=False).start()
    try:
        assert not emu.exists(O.TX_OWNER)
        new = make_plan(greens=(50, 30), offset=7)
        ad = NtcipAdapter(emu.host, emu.port, emu.profile, emu.credentials, timeout=0.3, activation_timeout_s=5,
                          tx_wait_s=0.5)
        rep = ad.deploy(new)
        assert rep.outcome == "deployed", rep.message
        assert any("no transaction-owner object" in s for s in rep.steps)
        # A killed manager of the same user leaves a transaction with an injected value.
        before = emu.db[INJECTED[0]]
        killed = writer(emu)
        killed.set([(O.DB_CREATE_TRANSACTION, O.TX_TRANSACTION)])
        killed.set([INJECTED])
        killed.close()
        time.sleep(0.3)
        rep = NtcipAdapter(emu.host, emu.port, emu.profile, emu.credentials, timeout=0.3, activation_timeout_s=5,
                           tx_wait_s=0.5).deploy(make_plan(greens=(45, 35), offset=7))
        assert rep.outcome == "failed" and "cannot say whose it is" in rep.message, rep.message
        assert emu.db[INJECTED[0]] == before and emu.active_plan().splits == new.splits  # type: ignore[union-attr]
    finally:
        emu.stop()
