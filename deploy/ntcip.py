"""NTCIP 1202 v02 deploy adapter over SNMPv3 (USM authPriv; v2c only where a device opted in).

:meth:`NtcipAdapter.deploy` pushes one :class:`TimingPlan` to one controller:

1. **probe** the capabilities (``maxPhases``...) and check the plan fits (nothing written yet);
2. choose the pattern slot that is not running (the profile's two slots, in turn);
3. **snapshot** every object it will write, and the running pattern;
4. the NTCIP 1201 **database transaction**: wait while another manager verifies, set
   ``transaction``, set the tables (several PDUs, each atomic), set ``verify``, poll until
   ``done``, read ``dbVerifyStatus`` / ``dbVerifyError`` (compared by meaning, in the device
   profile's numbering), set ``normal`` to apply; a failure before ``normal`` aborts the
   transaction, which leaves the controller as it was;
5. **readback** of every written object, compared with the plan's values;
6. **activation** at the controller's cycle boundary, either by pattern control
   (``systemPatternControl``; a controller with a backup time falls back to its schedule unless
   the central system keeps setting it) or by the time-of-day schedule (``timebaseAscPattern``
   of the action in force, written in the same transaction as the tables, so the device
   verifies the pattern it will run); the adapter waits for ``coordPatternStatus``;
7. **health**: ``localFreeStatus`` must be notFree and the alarm objects clear, over the
   number of checks asked for;
8. on any failure after the tables were applied: **rollback** to the snapshot (back to the
   previous pattern, then a transaction restoring every object, read back).

A SET whose answer is lost is never sent again blind: the adapter reads the state back first.
Every PDU is in :attr:`DeployReport.wire`.  Standard library plus pysnmp (through
:mod:`deploy.snmp`); no simulator import.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from controllers.plan import TimingPlan
from deploy import oids as O
from deploy.profile import Capabilities, DeviceProfile, Values, check_capabilities, plan_values
from deploy.secrets import DeviceCredentials, SecretsFile
from deploy.snmp import SetUnconfirmed, SnmpClient, SnmpError, SnmpTimeout, WireRecord
from deploy.usm import UsmManager
from sim.errors import WulinError

SET_CHUNK = 16  # varbinds per SET PDU


class DeployFailed(WulinError):
    """A step failed; the adapter decides whether to roll back."""


class DeployInterrupted(KeyboardInterrupt):
    """Ctrl-C during a deploy, raised after the controller was put back in a consistent state.

    The contract for callers (``wulin plan deploy``, ``deploy/service.py``): record
    ``report.outcome`` exactly as for a deploy that returned (``failed``: nothing applied,
    readback confirms; ``rolled_back``: the pending activation was cancelled and the snapshot
    restored, readback verified; ``rollback_failed``: state unknown, read it back), with
    ``report.interrupted`` True, then let the interrupt end the program.  It is a
    ``KeyboardInterrupt``, so code that does not know it still stops.
    """

    def __init__(self, report: DeployReport) -> None:
        super().__init__(f"deploy interrupted: {report.outcome}: {report.message}")
        self.report = report


@dataclass
class DeployReport:
    """How a deploy (or a rollback) went."""

    signal_id: str
    plan_hash: str
    outcome: str = "failed"  # deployed, failed (controller unchanged), rolled_back, rollback_failed
    message: str = ""
    steps: list[str] = field(default_factory=list)
    slot: int | None = None
    previous_pattern: int | None = None
    previous_control: int | None = None
    snapshot: Values = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)
    wire: list[WireRecord] = field(default_factory=list)
    interrupted: bool = False  # Ctrl-C ended it (the outcome says how the controller was left)

    @property
    def ok(self) -> bool:
        return self.outcome == "deployed"

    def summary(self) -> dict[str, Any]:
        """JSON-able record for the audit log (the snapshot included, for a later rollback)."""
        return {
            "signal_id": self.signal_id, "outcome": self.outcome, "message": self.message, "slot": self.slot,
            "previous_pattern": self.previous_pattern, "previous_control": self.previous_control,
            "steps": self.steps, "mismatches": self.mismatches, "pdus": len(self.wire),
            "interrupted": self.interrupted,
            "snapshot": encode_values(self.snapshot),
        }


def encode_values(values: Mapping[O.OID, Any]) -> dict[str, Any]:
    """``{OID: value}`` as JSON: dotted keys, bytes as ``{"hex": ...}``."""
    return {O.dotted(o): ({"hex": v.hex()} if isinstance(v, bytes) else v) for o, v in sorted(values.items())}


def decode_values(data: Mapping[str, Any]) -> Values:
    """:func:`encode_values` back: bytes from ``{"hex": ...}``, OID values (JSON lists) as tuples."""
    return {O.oid(k): (bytes.fromhex(v["hex"]) if isinstance(v, dict) else tuple(v) if isinstance(v, list) else v)
            for k, v in data.items()}


def snmp_session(host: str, port: int, creds: DeviceCredentials, write: bool, timeout: float,
            retries: int) -> SnmpClient:
    """The SNMP client for reading (``write`` False) or writing with ``creds``."""
    if creds.snmp == "2c":
        community = creds.write_community if write else creds.read_community
        return SnmpClient(host, port, community or "", "2c", timeout, retries)
    user = creds.writer if write else creds.reader
    if user is None:
        raise WulinError(f"{host}:{port}: the credentials are read-only; writing needs the write user")
    return SnmpClient(host, port, version="3", timeout=timeout, retries=retries, usm=UsmManager(user))


@dataclass
class NtcipAdapter:
    """Talks NTCIP 1202 to one controller.

    Args:
        host, port: The controller's SNMP agent.
        profile: Its device profile.
        credentials: How to authenticate (:class:`deploy.secrets.DeviceCredentials`): SNMPv3
            authPriv users, or v2c communities where the device was registered for v2c.
        timeout: Seconds per SNMP answer; ``retries`` extra tries for GETs.
        poll_s: Wall seconds between polls (verify, activation, health).
        verify_timeout_s: How long verify may take.
        tx_wait_s: How long to wait for another (live) manager's transaction to end.
        activation_timeout_s: How long the pattern change may take (a cycle and some).
        activation: ``"pattern"`` (systemPatternControl) or ``"schedule"`` (the time-of-day
            action's pattern; needs the unit under time-base control, systemPatternControl 0).
        tod_action: The time-base action in force, for ``"schedule"``, where the controller does
            not report it (:meth:`action_in_force`).
        health_cycles: Cycles the new pattern must run with clean health after activation
            (``localFreeStatus`` and alarms read every ``poll_s``; ``coordCycleStatus``
            wrapping round counts the cycles).
        log: Called with each step's line (progress output).
    """

    host: str
    port: int
    profile: DeviceProfile
    credentials: DeviceCredentials
    timeout: float = 1.0
    retries: int = 2
    poll_s: float = 0.05
    verify_timeout_s: float = 10.0
    tx_wait_s: float = 5.0
    activation_timeout_s: float = 400.0
    activation: str = "pattern"
    tod_action: int = 1
    health_cycles: int = 1
    log: Callable[[str], None] | None = None

    def __post_init__(self) -> None:
        if self.activation not in ("pattern", "schedule"):
            raise WulinError(f"activation {self.activation!r}: use 'pattern' or 'schedule'")
        self.reader = snmp_session(self.host, self.port, self.credentials, False, self.timeout, self.retries)
        self.writer = snmp_session(self.host, self.port, self.credentials, True, self.timeout, self.retries)
        self.writer.wire = self.reader.wire  # one wire log, in order
        self._report: DeployReport | None = None
        # This session's transaction-owner token (see deploy.oids.TX_OWNER); None until the
        # controller was asked whether it has the owner object.
        self._token = secrets.token_bytes(16)
        self._owner_object: bool | None = None

    def close(self) -> None:
        self.reader.close()
        self.writer.close()

    # ------------------------------------------------------------------ small steps
    def _step(self, text: str) -> None:
        if self._report is not None:
            self._report.steps.append(text)
        if self.log is not None:
            self.log(text)

    def _get(self, o: O.OID) -> Any:
        return self.writer.get([o])[o]

    def action_in_force(self) -> int:
        """The time-base action the controller runs now (``timebaseAscActionStatus``; a
        time-of-day plan set has several), else :attr:`tod_action` where it does not say."""
        try:
            action = self.reader.get([O.TIMEBASE_ACTION_STATUS])[O.TIMEBASE_ACTION_STATUS]
        except SnmpError:
            return self.tod_action
        return int(action) if isinstance(action, int) and 1 <= action <= 255 else self.tod_action

    def probe(self) -> Capabilities:
        """Read the controller's table sizes."""
        got = self.reader.get([O.MAX_PHASES, O.MAX_PATTERNS, O.MAX_SPLITS, O.MAX_RINGS, O.MAX_SEQUENCES,
                               O.MAX_CHANNELS])
        return Capabilities(max_phases=got[O.MAX_PHASES], max_patterns=got[O.MAX_PATTERNS],
                            max_splits=got[O.MAX_SPLITS], max_rings=got[O.MAX_RINGS],
                            max_sequences=got[O.MAX_SEQUENCES], max_channels=got[O.MAX_CHANNELS])

    def status(self) -> dict[str, Any]:
        """Running pattern, system control, free status, alarms, transaction state."""
        got = self.reader.get([O.COORD_PATTERN_STATUS, O.SYSTEM_PATTERN_CONTROL, O.LOCAL_FREE_STATUS,
                               O.UNIT_ALARM_STATUS1, O.SHORT_ALARM_STATUS, O.DB_CREATE_TRANSACTION, O.SYS_UPTIME])
        return {"pattern": got[O.COORD_PATTERN_STATUS], "control": got[O.SYSTEM_PATTERN_CONTROL],
                "free": got[O.LOCAL_FREE_STATUS], "alarm1": got[O.UNIT_ALARM_STATUS1],
                "short_alarm": got[O.SHORT_ALARM_STATUS], "tx": got[O.DB_CREATE_TRANSACTION],
                "uptime": int(got[O.SYS_UPTIME])}

    def _owned(self, pairs: list[tuple[O.OID, Any]]) -> list[tuple[O.OID, Any]]:
        """``pairs`` preceded by this session's owner token, where the controller has the object."""
        if self._owner_object is None:
            try:
                self.reader.get([O.TX_OWNER])
                self._owner_object = True
            except SnmpError:
                self._owner_object = False
                self._step("the controller has no transaction-owner object: the transaction is bound "
                           "to the SNMP user that opens it")
        return [(O.TX_OWNER, self._token), *pairs] if self._owner_object else pairs

    def _set_confirmed(self, o: O.OID, value: int, accept: tuple[int, ...] | None = None,
                       owned: bool = False) -> None:
        """SET one object (with the owner token when ``owned``); if the answer is lost, read it
        back instead of re-sending."""
        try:
            self.writer.set(self._owned([(o, value)]) if owned else [(o, value)])
        except SetUnconfirmed:
            self._step(f"no answer to SET {O.name_of(o)}={value}; reading it back")
            now = self._get(o)
            if now not in (accept or (value,)):
                raise DeployFailed(f"SET {O.name_of(o)}={value} was not applied (reads {now})") from None

    def _wait(self, what: str, timeout: float, fn: Callable[[], bool]) -> None:
        end = time.monotonic() + timeout
        while True:
            if fn():
                return
            if time.monotonic() > end:
                raise DeployFailed(f"timed out after {timeout:g} s waiting for {what}")
            time.sleep(self.poll_s)

    # ------------------------------------------------------------------ transaction
    def write_tables(self, values: Values) -> None:
        """Write ``values`` in one NTCIP 1201 database transaction (applied only if verify passes).

        Raises:
            DeployFailed: the controller refused, failed verify or stopped answering; the
                transaction was aborted (nothing applied) where the controller still answers.
        """
        self._clear_foreign_transaction()
        try:
            self._set_confirmed(O.DB_CREATE_TRANSACTION, O.TX_TRANSACTION, owned=True)
        except SnmpError as exc:
            raise DeployFailed(f"cannot open the database transaction ({exc}); another manager may hold it") from None
        self._step("dbCreateTransaction = transaction")
        items = sorted(values.items())
        try:
            for i in range(0, len(items), SET_CHUNK):
                self.writer.set(self._owned(items[i:i + SET_CHUNK]))
            self._step(f"set {len(items)} objects in {(len(items) + SET_CHUNK - 1) // SET_CHUNK} PDUs")
            self._set_confirmed(O.DB_CREATE_TRANSACTION, O.TX_VERIFY, accept=(O.TX_VERIFY, O.TX_DONE), owned=True)
            self._step("dbCreateTransaction = verify")
            self._wait("verify to finish", self.verify_timeout_s,
                       lambda: self._get(O.DB_CREATE_TRANSACTION) == O.TX_DONE)
            got = self.reader.get([O.DB_VERIFY_STATUS, O.DB_VERIFY_ERROR])
            meaning = O.VERIFY_SCHEMES[self.profile.verify_scheme].get(got[O.DB_VERIFY_STATUS], "unknown")
            text = got[O.DB_VERIFY_ERROR].decode(errors="replace") if isinstance(got[O.DB_VERIFY_ERROR], bytes) else ""
            if meaning != "doneWithNoError" or text.strip():
                raise DeployFailed(f"device verify failed: {text or meaning}")
            self._step("device verify passed")
        except (DeployFailed, SnmpError, SnmpTimeout) as exc:
            self._abort()
            raise DeployFailed(str(exc)) from None
        self._set_confirmed(O.DB_CREATE_TRANSACTION, O.TX_NORMAL, owned=True)
        self._step("dbCreateTransaction = normal (applied)")

    def _clear_foreign_transaction(self) -> None:
        """Make sure no other manager's transaction is open, never joining one.

        A transaction held by another token is aborted (its buffer discarded, nothing applied)
        once the controller lets it: when its holder has been silent for the controller's
        takeover time (a killed manager).  A live holder is waited for up to ``tx_wait_s``.

        Raises:
            DeployFailed: another manager still holds the transaction after ``tx_wait_s``.
        """
        pairs = self._owned([])  # learn whether the controller has the owner object
        end = time.monotonic() + self.tx_wait_s
        while True:
            got = self.reader.get([O.DB_CREATE_TRANSACTION, *(o for o, _ in pairs)])
            state, holder = got[O.DB_CREATE_TRANSACTION], got.get(O.TX_OWNER)
            if state == O.TX_NORMAL or (pairs and holder == O.owner_fingerprint(self._token)):
                return
            if pairs and state != O.TX_VERIFY:
                try:
                    self.writer.set(self._owned([(O.DB_CREATE_TRANSACTION, O.TX_NORMAL)]))
                    self._step(f"aborted a stale transaction of another manager (state {state}): "
                               "its buffer was discarded, nothing of it applied")
                    return
                except SnmpError:
                    pass  # its holder is alive: wait for it
            if time.monotonic() > end:
                whose = "" if pairs else ("; this controller cannot say whose it is (no owner object), so it is "
                                          "never joined: wait for the controller's own timeout")
                raise DeployFailed(f"cannot open the database transaction: another manager holds it "
                                   f"(dbCreateTransaction {state} for over {self.tx_wait_s:g} s){whose}")
            time.sleep(self.poll_s)

    def _abort(self) -> None:
        """Leave the transaction without applying (``normal`` from ``transaction``)."""
        try:
            state = self._get(O.DB_CREATE_TRANSACTION)
            if state == O.TX_VERIFY:
                self._wait("verify to finish before abort", self.verify_timeout_s,
                           lambda: self._get(O.DB_CREATE_TRANSACTION) != O.TX_VERIFY)
            state = self._get(O.DB_CREATE_TRANSACTION)
            if state == O.TX_DONE:  # 'normal' from done would apply: back to transaction first
                self._set_confirmed(O.DB_CREATE_TRANSACTION, O.TX_TRANSACTION, owned=True)
                state = O.TX_TRANSACTION
            if state != O.TX_NORMAL:
                self._set_confirmed(O.DB_CREATE_TRANSACTION, O.TX_NORMAL, owned=True)
            self._step("transaction aborted (nothing applied)")
        except (WulinError, SnmpTimeout) as exc:
            self._step(f"could not abort the transaction: {exc}")

    def readback(self, values: Values) -> list[str]:
        """Objects whose value on the controller differs from ``values``."""
        got = self.reader.get_many(sorted(values))
        return [f"{O.name_of(o)}: wrote {values[o]!r}, reads {got.get(o)!r}" for o in sorted(values)
                if got.get(o) != values[o]]

    def activate(self, pattern: int) -> None:
        """Ask for ``pattern`` (0: back to the time-of-day plan) and wait until it runs."""
        self._set_confirmed(O.SYSTEM_PATTERN_CONTROL, pattern)
        target = pattern
        if pattern in (0, 254, 255):
            target = self._get(O.TIMEBASE_PATTERN + (self.action_in_force(),)) or 1
        self._step(f"systemPatternControl = {pattern}; waiting for the cycle boundary")
        self._wait(f"pattern {target} to start", self.activation_timeout_s,
                   lambda: self._get(O.COORD_PATTERN_STATUS) == target)
        self._step(f"coordPatternStatus = {target}")

    def health(self) -> list[str]:
        """Problems seen while the pattern runs ``health_cycles`` cycles (empty: healthy)."""
        wraps, last = 0, None
        end = time.monotonic() + self.activation_timeout_s * max(self.health_cycles, 1)
        while True:
            st = self.status()
            cyc = int(self.reader.get([O.COORD_CYCLE_STATUS])[O.COORD_CYCLE_STATUS])
            problems = []
            if st["free"] != O.FREE_NOT_FREE:
                problems.append(f"localFreeStatus {O.FREE_NAMES.get(st['free'], st['free'])}")
            if st["alarm1"] or st["short_alarm"]:
                problems.append(f"alarms unitAlarmStatus1={st['alarm1']} shortAlarmStatus={st['short_alarm']}")
            if problems:
                return problems
            if last is not None and cyc < last:
                wraps += 1
            last = cyc
            if wraps >= self.health_cycles:
                self._step(f"health clean for {wraps} cycle(s)")
                return []
            if time.monotonic() > end:
                return [f"could not watch {self.health_cycles} cycle(s) in time (coordCycleStatus {cyc})"]
            time.sleep(self.poll_s)

    # ------------------------------------------------------------------ deploy and rollback
    def deploy(self, plan: TimingPlan) -> DeployReport:
        """Push ``plan``; on any failure after writing, roll back to the snapshot by itself.

        Raises:
            DeployInterrupted: Ctrl-C (``KeyboardInterrupt``) arrived; the controller was first
                put back in a consistent state (see :class:`DeployInterrupted`), and the
                exception's ``report`` says how it ended.
        """
        rep = DeployReport(plan.signal_id, plan.plan_hash())
        self._report = rep
        rep.wire = self.writer.wire
        applied = False
        try:
            values = self._prepare(plan, rep)
            self.write_tables(values)
            applied = True
            self._activate_checked(rep, values)
            rep.outcome, rep.message = "deployed", f"pattern {rep.slot} running, readback verified"
        except (DeployFailed, SnmpError, SnmpTimeout) as exc:
            rep.message = str(exc)
            self._step(f"FAILED: {exc}")
            self._undo(rep, applied)
        except KeyboardInterrupt:
            self._interrupted(rep, applied)
            raise DeployInterrupted(rep) from None
        finally:
            self._report = None
        return rep

    def _prepare(self, plan: TimingPlan, rep: DeployReport) -> Values:
        """Probe, choose the slot, snapshot: the values to write (nothing written yet)."""
        caps = self.probe()
        self._step(f"probe: {caps.max_phases} phases, {caps.max_patterns} patterns, {caps.max_rings} rings")
        bad = check_capabilities(plan, self.profile, caps)
        if bad:
            raise DeployFailed("the controller cannot hold this plan: " + "; ".join(bad))
        st = self.status()
        if st["tx"] in (O.TX_TRANSACTION, O.TX_DONE):
            self._step(f"dbCreateTransaction is {st['tx']}: another manager may be writing")
        rep.previous_pattern, rep.previous_control = st["pattern"], st["control"]
        a, b = self.profile.pattern_slots
        rep.slot = b if st["pattern"] == a else a
        values = plan_values(plan, self.profile, caps, rep.slot)
        if self.activation == "schedule":
            if st["control"] != O.PATTERN_STANDBY:
                raise DeployFailed(f"the controller runs system pattern {st['control']}, not its schedule; "
                                   "deploy with pattern activation or release it first")
            values[O.TIMEBASE_PATTERN + (self.action_in_force(),)] = rep.slot
        rep.snapshot = self.reader.get_many(sorted(values))
        self._step(f"snapshot of {len(rep.snapshot)} objects; running pattern {st['pattern']}, "
                   f"writing pattern {rep.slot}")
        return values

    def _activate_checked(self, rep: DeployReport, values: Values) -> None:
        """Readback, activation at the cycle boundary, health; :class:`DeployFailed` on any problem."""
        rep.mismatches = self.readback(values)
        if rep.mismatches:
            raise DeployFailed(f"readback differs from the plan in {len(rep.mismatches)} object(s): "
                               + "; ".join(rep.mismatches[:3]))
        self._step(f"readback of {len(values)} objects equals the plan")
        slot = rep.slot or 0
        if self.activation == "schedule":
            self._step(f"time-of-day action now names pattern {slot}; waiting for the cycle boundary")
            self._wait(f"pattern {slot} to start", self.activation_timeout_s,
                       lambda: self._get(O.COORD_PATTERN_STATUS) == slot)
            self._step(f"coordPatternStatus = {slot}")
        else:
            self.activate(slot)
        problems = self.health()
        if problems:
            raise DeployFailed("health check failed: " + "; ".join(problems))

    def _undo(self, rep: DeployReport, applied: bool) -> None:
        """After a failure: roll back what was applied, else confirm the controller is unchanged."""
        if applied:
            self._rollback(rep)
        else:
            rep.outcome = "failed"
            self._confirm_unchanged(rep)

    def _interrupted(self, rep: DeployReport, applied: bool) -> None:
        """After Ctrl-C: leave the controller as before the deploy, verified by readback.

        Before the tables were applied the transaction is aborted; after (or when the readback
        shows they were applied after all) the pending activation is cancelled and the snapshot
        restored.  A second Ctrl-C during this cleanup leaves ``rollback_failed``.
        """
        rep.interrupted = True
        rep.message = "interrupted (Ctrl-C)"
        self._step("INTERRUPTED: putting the controller back as it was")
        try:
            if not applied:
                self._abort()
                applied = bool(rep.snapshot) and bool(self.readback(rep.snapshot))
            self._undo(rep, applied)
        except KeyboardInterrupt:
            rep.outcome = "rollback_failed"
            rep.message += "; interrupted again during the cleanup: controller state unknown, read it back"
        except (DeployFailed, SnmpError, SnmpTimeout) as exc:
            rep.outcome = "rollback_failed"
            rep.message += f"; cleanup failed, controller state unknown: {exc}"

    def _confirm_unchanged(self, rep: DeployReport) -> None:
        """After a failure before apply: check by readback that the controller is as it was."""
        if not rep.snapshot:
            rep.message += " (nothing was written)"
            return
        try:
            diff = self.readback(rep.snapshot)
        except (SnmpError, SnmpTimeout) as exc:
            rep.message += f"; could not confirm the controller is unchanged ({exc})"
            return
        if diff:
            rep.outcome = "rollback_failed"
            rep.message += f"; controller differs from the snapshot in {len(diff)} object(s)"
        else:
            rep.message += "; readback confirms the controller is unchanged"
            self._step("readback equals the snapshot: controller unchanged")

    def _rollback(self, rep: DeployReport) -> None:
        self._step("rolling back to the snapshot")
        try:
            self.restore(rep.snapshot, rep.previous_pattern or 1, rep.previous_control or 0)
            rep.outcome = "rolled_back"
            rep.message += "; rolled back to the snapshot (readback verified)"
        except (DeployFailed, SnmpError, SnmpTimeout) as exc:
            rep.outcome = "rollback_failed"
            rep.message += f"; ROLLBACK FAILED, controller state unknown: {exc}"
            self._step(f"ROLLBACK FAILED: {exc}")

    def restore(self, snapshot: Values, previous_pattern: int, previous_control: int) -> None:
        """Run ``previous_pattern`` again, then write ``snapshot`` back and read it back.

        Raises:
            DeployFailed: a step failed (the message says which).
        """
        self._report = self._report or DeployReport(self.profile.signal_id, "")
        tod = {o: v for o, v in snapshot.items() if o[: len(O.TIMEBASE_PATTERN)] == O.TIMEBASE_PATTERN}
        if tod and self.readback(tod):
            # Deployed through the schedule: point it back first, and let the old pattern run
            # before its replacement's tables are restored.
            self.write_tables(tod)
            self._wait(f"pattern {previous_pattern} to start again", self.activation_timeout_s,
                       lambda: self._get(O.COORD_PATTERN_STATUS) == previous_pattern)
            self._step(f"coordPatternStatus = {previous_pattern}")
        elif (self._get(O.COORD_PATTERN_STATUS) != previous_pattern
              or self._get(O.SYSTEM_PATTERN_CONTROL) != previous_control):
            self.activate(previous_control)
        changed = {o: v for o, v in snapshot.items()}
        diff = self.readback(changed)
        if diff:
            self.write_tables(changed)
            diff = self.readback(changed)
            if diff:
                raise DeployFailed(f"after restore, {len(diff)} object(s) still differ: " + "; ".join(diff[:3]))
        self._step(f"restored {len(changed)} objects; readback equals the snapshot")

    def rollback(self, summary: Mapping[str, Any]) -> DeployReport:
        """Roll back a deploy from its audit summary (:meth:`DeployReport.summary`)."""
        rep = DeployReport(self.profile.signal_id, "")
        self._report = rep
        rep.wire = self.writer.wire
        try:
            self.restore(decode_values(summary["snapshot"]), int(summary.get("previous_pattern") or 1),
                         int(summary.get("previous_control") or 0))
            rep.outcome, rep.message = "rolled_back", "restored the snapshot taken before the deploy"
        except (DeployFailed, SnmpError, SnmpTimeout, KeyError) as exc:
            rep.outcome, rep.message = "rollback_failed", f"rollback failed: {exc}"
        finally:
            self._report = None
        return rep


def adapter_for(device: Any, secrets: SecretsFile | None = None, **kw: Any) -> NtcipAdapter:
    """An adapter for a registered device (:class:`deploy.store.Device`), its credentials read
    from the secrets file (``secrets``, else ``$WULIN_SECRETS`` or the per-user default).

    Raises:
        WulinError: no credentials under the device's reference, or the file is unsafe.
    """
    creds = (secrets or SecretsFile()).get(device.credentials_ref)
    if creds.snmp != device.snmp_version:
        raise WulinError(f"device {device.signal_id!r} is registered for SNMP v{device.snmp_version}, "
                         f"its credentials are for v{creds.snmp}; register it again")
    return NtcipAdapter(device.host, device.port, device.profile, creds, **kw)
