"""Ctrl-C while the deploy waits for the cycle boundary leaves the controller consistent.

The interrupt comes as it would from the terminal: another thread raises KeyboardInterrupt in
the main thread (``_thread.interrupt_main``) while the adapter polls for the pattern change.
"""

from __future__ import annotations

import _thread
import threading
from collections.abc import Callable

import pytest

from deploy import oids as O
from deploy.emulator import ControllerEmulator
from deploy.ntcip import DeployInterrupted, NtcipAdapter

from .conftest import CAPS, make_plan, make_profile


def p2_tables(emu: ControllerEmulator) -> dict[O.OID, object]:
    with emu.lock:
        return {o: v for o, v in emu.db.items() if emu.spec[o].kind == "P2"}


def interrupt_when(text: str) -> tuple[Callable[[str], None], threading.Event]:
    """A log sink that interrupts the main thread 0.2 s after a step containing ``text``."""
    fired = threading.Event()

    def log(line: str) -> None:
        if text in line and not fired.is_set():
            fired.set()
            threading.Timer(0.2, _thread.interrupt_main).start()

    return log, fired


@pytest.mark.parametrize("activation", ["pattern", "schedule"])
def test_ctrl_c_while_waiting_for_the_cycle_boundary_rolls_back(activation: str) -> None:
    # time_scale 1: the 90 s cycle boundary is far away, so the interrupt lands in the wait.
    emu = ControllerEmulator(make_profile(), make_plan(name="local"), CAPS, time_scale=1, verify_s=0.2).start()
    try:
        before = p2_tables(emu)
        log, fired = interrupt_when("waiting for the cycle boundary")
        ad = NtcipAdapter(emu.host, emu.port, emu.profile, emu.credentials, timeout=0.5, activation_timeout_s=60,
                          activation=activation, poll_s=0.02, log=log)
        with pytest.raises(DeployInterrupted) as info:
            ad.deploy(make_plan(greens=(50, 30), offset=7))
        rep = info.value.report
        assert isinstance(info.value, KeyboardInterrupt) and fired.is_set()
        assert rep.interrupted and rep.outcome == "rolled_back", rep.message
        assert rep.summary()["interrupted"] is True
        assert "rolled back to the snapshot (readback verified)" in rep.message
        # Consistent on the device: the old tables, the old pattern, and no switch pending.
        assert p2_tables(emu) == before and emu.active_pattern == 1
        assert emu.pending_pattern is None and emu.db[O.SYSTEM_PATTERN_CONTROL] == 0 and emu.tod_pattern() == 1
        with emu.lock:
            emu._t0 -= 1000  # a thousand seconds later the controller still runs the old pattern
            emu.advance()
        assert emu.active_pattern == 1 and emu.tx_state == O.TX_NORMAL
    finally:
        emu.stop()



def test_ctrl_c_during_verify_aborts_the_transaction_unapplied() -> None:
    # verify takes 1 s: the interrupt lands while the adapter polls for done; by the time the
    # cleanup runs the device may be in 'done' with verify passed, where 'normal' would apply.
    emu = ControllerEmulator(make_profile(), make_plan(name="local"), CAPS, time_scale=1, verify_s=1.0).start()
    try:
        before = p2_tables(emu)
        log, fired = interrupt_when("dbCreateTransaction = verify")
        ad = NtcipAdapter(emu.host, emu.port, emu.profile, emu.credentials, timeout=0.5, poll_s=0.02, log=log)
        with pytest.raises(DeployInterrupted) as info:
            ad.deploy(make_plan(greens=(50, 30), offset=7))
        rep = info.value.report
        assert rep.interrupted and rep.outcome == "failed", rep.message
        assert "readback confirms the controller is unchanged" in rep.message
        assert p2_tables(emu) == before and emu.tx_state == O.TX_NORMAL and emu.active_pattern == 1
    finally:
        emu.stop()
