"""Central control over NTCIP 1202: "serve stage k" becomes phase control commands, device by device.

A central adaptive system does not switch signals itself: it tells each field controller which
phases to keep, end, skip and call, and the controller times the change with its own
minimum green and clearances.  :class:`NtcipActuator` is that link for the controllers in
``controllers/`` (max-pressure, SOTL, ... : anything that says "serve stage k"), the
counterpart over SNMP of the in-process :class:`sim.actuator.SignalActuator`:

* **take control**: ``unitBackupTime`` (the device's watchdog) and ``systemPatternControl``
  254 (free: the device runs no cycle of its own, it serves what it is told);
* **poll** (every round, a second in the co-simulation): one GET per device of its phase
  status (greens, yellows, phase next) and unit status; from the changes it sees, the
  actuator keeps each signal's stage, stage time and transition flag, as the in-process
  actuator reports them to the controllers;
* **request**: a decision (one stage per signal, -1 keep), as ``SignalActuator.request``;
* **command**: for a target stage ``k`` the device gets, in one SET PDU per phase group,
  hold = k's phases, force-off = omit = every other phase, vehicle call = k's phases.  So a
  green ``k`` stays, any other green ends as soon as its minimum green (the device's) allows,
  and the next green is ``k``.  Maximum green is the actuator's rule, as in simulation: a
  green that reaches it while nothing else is asked changes to the next stage in order.
  Unchanged commands are re-sent every ``heartbeat_s`` so the watchdog stays fed;
* **resume**: a device that reports anything but ``systemControl`` (it fell back after a
  silence, or restarted) is taken under central control again with its next command;
* **release**: commands cleared, ``systemPatternControl`` 0: the devices return to their
  time-of-day plans (as they do on their own when central control goes quiet);
* **detectors** (``read_detectors``): the same GET also reads each device's detector objects
  (``volumeOccupancySequence``, ``detectorVolume`` and ``detectorOccupancy`` of each detector,
  ``vehicleDetectorStatusGroupActive``) into a :class:`DetectorSample` per device; take-over
  sets ``volumeOccupancyPeriod`` to :data:`DETECTOR_PERIOD_S`, so each round reads one new
  period (what central makes of them: :mod:`deploy.detector_state`).

:func:`central_round` is one round (poll, decide when due, command), the same in the
co-simulation (``wulin cosim``) and on the wall clock (``wulin adaptive run``,
:mod:`deploy.adaptive_run`).  A device that does not answer is counted and skipped for the round; it keeps running (and,
past its backup time, falls back to its plan by itself).  Standard library and ``deploy``
only: decisions arrive as plain lists.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from deploy import oids as O
from deploy.phase_engine import bits
from deploy.profile import DeviceProfile
from deploy.snmp import Exchange, SnmpClient, SnmpError, exchange_all
from sim.errors import WulinError

KEEP = -1
DETECTOR_PERIOD_S = 1  # volumeOccupancyPeriod under central control: one period per round
_POLL = (O.PHASE_STATUS_GREENS, O.PHASE_STATUS_YELLOWS, O.PHASE_STATUS_NEXTS)


@dataclass
class DeviceLink:
    """One controller as the central system reaches it: its wiring and its two SNMP sessions."""

    signal_id: str
    profile: DeviceProfile
    reader: SnmpClient
    writer: SnmpClient
    detectors: int = 0  # detector inputs 1..detectors, read when central reads detectors

    @property
    def groups(self) -> int:
        return (max(self.profile.phases) + 7) // 8


@dataclass
class DetectorSample:
    """One device's detector objects as last read (detector ``d`` at index ``d - 1``).

    ``new`` says whether the round read a period not read before (``volumeOccupancySequence``
    moved); ``sequence`` -1: none read yet, or the device restarted or fell back (its period
    may differ until central takes it again), so the next reading is not taken as new."""

    sequence: int = -1
    volume: list[int] = field(default_factory=list)  # vehicles in the period
    occupancy: list[int] = field(default_factory=list)  # 0-200, 0.5 % steps
    active: int = 0  # vehicleDetectorStatusGroupActive: detector d sees a vehicle now at bit d - 1
    new: bool = False


@dataclass
class SignalView:
    """What central knows of one signal: its stage, when its green (or transition) began."""

    stage: int = 0
    in_transition: bool = False
    since: float = 0.0  # start of the green, or of the yellow / red clearance being shown
    green_start: float = 0.0
    shown: tuple[int, int, int] = (0, 0, 0)  # (greens, yellows, next) bitmaps last seen
    target: int | None = None  # the stage requested (None: no request yet)
    sent: tuple[int, ...] | None = None  # the command bitmaps last sent
    sent_at: float = -1e18
    reachable: bool = True
    in_control: bool = False  # the device reports systemControl (else: take it again)


@dataclass
class CentralStats:
    """Counts and timings of the central link (wall seconds per round)."""

    rounds: int = 0
    polls: int = 0
    sets: int = 0
    timeouts: int = 0
    refused: int = 0
    resumed: int = 0  # devices taken back under central control after they fell back
    reports: int = 0  # SETs answered with a Report (a restarted device's new SNMP engine clock): re-sent
    detector_gaps: int = 0  # detector periods published but never read (a lost poll)
    round_wall: list[float] = field(default_factory=list)  # every round: poll + commands
    decision_wall: list[float] = field(default_factory=list)  # the rounds that carried a decision
    round_cpu: list[float] = field(default_factory=list)  # the process's CPU seconds in each round (both ends)

    def note_round(self, seconds: float, decision: bool, cpu: float = 0.0) -> None:
        self.round_wall.append(seconds)
        self.round_cpu.append(cpu)
        if decision:
            self.decision_wall.append(seconds)


class NtcipActuator:
    """Turns stage requests into NTCIP phase control for a set of devices (module docstring).

    Args:
        links: The devices, in the controllers' signal order.
        max_green: Per signal, seconds (the in-process actuator's rule).
        heartbeat_s: Re-send unchanged commands this often (keep it well under the backup time).
        backup_s: ``unitBackupTime`` written on take-over, seconds.
        read_detectors: Poll the detector objects too (:attr:`samples`).
    """

    def __init__(self, links: Sequence[DeviceLink], max_green: Sequence[float], *, heartbeat_s: float = 2.0,
                 backup_s: int = 10, read_detectors: bool = False) -> None:
        if len(max_green) != len(links):
            raise WulinError(f"NtcipActuator: {len(max_green)} maximum greens for {len(links)} devices")
        self.links, self.max_green = list(links), [float(x) for x in max_green]
        self.heartbeat_s, self.backup_s = float(heartbeat_s), int(backup_s)
        self.views = [SignalView() for _ in self.links]
        self.read_detectors = read_detectors
        self.samples = [DetectorSample() for _ in self.links]
        self.stats = CentralStats()
        self.timeout = max(lk.reader.timeout for lk in self.links) if self.links else 1.0
        self._stage_of = [{p: k for k, ps in enumerate(lk.profile.stage_phases) for p in ps} for lk in self.links]
        # what a round sends, built once: the poll's varbinds, and per stage its command bitmaps and varbinds
        self._poll_vbs = [[(c + (g,), None) for c in _POLL for g in range(1, lk.groups + 1)]
                          + [(O.UNIT_CONTROL_STATUS, None)] + (_detector_varbinds(lk) if read_detectors else [])
                          for lk in self.links]
        # what take-over (and taking a device back) sets
        self._take = [(O.UNIT_BACKUP_TIME, self.backup_s), (O.SYSTEM_PATTERN_CONTROL, O.PATTERN_FREE)]
        if read_detectors:
            self._take.append((O.VOLUME_OCCUPANCY_PERIOD, DETECTOR_PERIOD_S))
        self._commands = [[_stage_command(lk, k) for k in range(len(lk.profile.stage_phases))] for lk in self.links]
        self._command_vbs = [[_command_varbinds(lk, cmd) for cmd in cmds] for lk, cmds in zip(self.links, self._commands,
                                                                                             strict=True)]

    # ------------------------------------------------------------------ control
    def take_control(self, now: float) -> None:
        """Backup time and free mode on every device; then one poll to learn where each is."""
        for lk in self.links:
            self._set(lk, self._take)
        self.poll(now)
        for v in self.views:  # each keeps its stage until asked otherwise, as in simulation
            v.green_start = v.since = now
            v.target = v.stage

    def release(self) -> None:
        """Commands cleared and the system pattern released: the devices run their own plans."""
        for lk in self.links:
            pairs = [(c + (g,), 0) for g in range(1, lk.groups + 1) for c in
                     (O.PHASE_CONTROL_HOLD, O.PHASE_CONTROL_FORCE_OFF, O.PHASE_CONTROL_OMIT, O.PHASE_CONTROL_VEH_CALL)]
            self._set(lk, [*pairs, (O.SYSTEM_PATTERN_CONTROL, O.PATTERN_STANDBY)])

    def _set(self, lk: DeviceLink, pairs: list[tuple[O.OID, int]]) -> bool:
        try:
            lk.writer.set(pairs)
            self.stats.sets += 1
            return True
        except SnmpError:
            self.stats.refused += 1
        except WulinError:  # no answer (SetUnconfirmed, SnmpTimeout)
            self.stats.timeouts += 1
        return False

    # ------------------------------------------------------------------ one round
    def poll(self, now: float) -> None:
        """Read every device's phase status (all GETs out at once) and update the views."""
        got = exchange_all([Exchange(lk.reader, "get", self._poll_vbs[i]) for i, lk in enumerate(self.links)],
                           self.timeout)
        for ex, lk, v, stage_of, sample in zip(got, self.links, self.views, self._stage_of, self.samples, strict=True):
            sample.new = False
            if ex.answer is None or ex.error is not None:
                values = self._retry_get(lk, ex)
                if values is None:
                    v.reachable = False
                    continue
            else:
                values = ex.values
            v.reachable = True
            v.in_control = int(values[O.UNIT_CONTROL_STATUS]) == O.CONTROL_SYSTEM  # type: ignore[call-overload]
            self.stats.polls += 1
            shown = tuple(sum(int(values[c + (g,)]) << (8 * (g - 1)) for g in range(1, lk.groups + 1)) for c in _POLL)  # type: ignore[call-overload]
            _observe(v, (shown[0], shown[1], shown[2]), stage_of, now)
            if self.read_detectors:
                self._sample(lk, sample, values, v.in_control)
        self.stats.rounds += 1

    def _sample(self, lk: DeviceLink, s: DetectorSample, values: dict[O.OID, object], in_control: bool) -> None:
        """The detector objects of one poll; a period is new when the sequence moved."""
        seq = int(values[O.VOLUME_OCCUPANCY_SEQUENCE])  # type: ignore[call-overload]
        if s.sequence < 0 or not in_control:
            s.new = False
        else:
            step = (seq - s.sequence) % 256
            s.new = step > 0
            self.stats.detector_gaps += max(step - 1, 0)
        s.sequence = seq if in_control else -1
        n = lk.detectors
        s.volume = [int(values[O.DETECTOR_VOLUME + (d,)]) for d in range(1, n + 1)]  # type: ignore[call-overload]
        s.occupancy = [int(values[O.DETECTOR_OCCUPANCY + (d,)]) for d in range(1, n + 1)]  # type: ignore[call-overload]
        s.active = sum(int(values[O.DETECTOR_STATUS_ACTIVE + (g,)]) << (8 * (g - 1))  # type: ignore[call-overload]
                       for g in range(1, (n + 7) // 8 + 1))

    def _retry_get(self, lk: DeviceLink, ex: Exchange) -> dict[O.OID, object] | None:
        """A poll that got no answer, or a Report (the device restarted: its SNMP engine clock
        changed), is counted; a Report is re-asked once the blocking way, which resynchronises."""
        if ex.answer is not None and ex.answer.kind == "report":
            try:
                return lk.reader.get([o for o, _ in ex.varbinds])
            except WulinError:
                pass
        self.stats.timeouts += 1
        return None

    def request(self, decision: Sequence[int]) -> None:
        """Ask each signal for a stage (-1: no new request), as ``SignalActuator.request``."""
        for v, lk, k in zip(self.views, self.links, decision, strict=True):
            k = int(k)
            if k == KEEP:
                continue
            if not 0 <= k < len(lk.profile.stage_phases):
                raise WulinError(f"decision for signal {lk.signal_id!r}: stage {k} does not exist")
            v.target = k

    def command(self, now: float) -> None:
        """Send each device the commands its target asks for (when changed, or as heartbeat);
        every SET of the round goes out at once."""
        batch: list[tuple[int, tuple[int, ...], Exchange]] = []
        for i, (lk, v, max_green) in enumerate(zip(self.links, self.views, self.max_green, strict=True)):
            n = len(lk.profile.stage_phases)
            if (n > 1 and not v.in_transition and v.target in (None, v.stage)
                    and now - v.green_start >= max_green - 1e-9):
                v.target = (v.stage + 1) % n  # maximum green: the next stage in order
            if v.target is None or not v.reachable:
                continue
            cmd = self._commands[i][v.target]
            if cmd == v.sent and now - v.sent_at < self.heartbeat_s and v.in_control:
                continue
            pairs = self._command_vbs[i][v.target]
            if not v.in_control:  # it fell back (silence past its backup time) or restarted
                pairs = [*self._take, *pairs]
            batch.append((i, cmd, Exchange(lk.writer, "set", pairs)))
        exchange_all([ex for _, _, ex in batch], self.timeout)
        for i, cmd, ex in batch:  # type: ignore[assignment]
            v = self.views[i]
            if not self._count_set(ex):
                continue
            if not v.in_control:
                self.stats.resumed += v.sent is not None
                v.in_control = True
            v.sent, v.sent_at = cmd, now

    def _count_set(self, ex: Exchange) -> bool:
        if ex.answer is None:
            self.stats.timeouts += 1  # unconfirmed: re-sent as the next heartbeat, never blind now
        elif ex.answer.kind == "report":
            self.stats.reports += 1  # not applied; the session learnt the engine's clock from it
        elif ex.error is not None:
            self.stats.refused += 1
        else:
            self.stats.sets += 1
            return True
        return False

    def stage_views(self, now: float) -> tuple[list[int], list[float], list[bool]]:
        """``(stage, stage_time, in_transition)`` per signal, as the in-process actuator's views."""
        return ([v.stage for v in self.views], [now - v.since for v in self.views],
                [v.in_transition for v in self.views])


def check_stage_chooser(controller: Any) -> None:
    """Refuse a controller central control cannot drive: it must choose stages (``act``)."""
    caps = controller.capabilities
    if caps.native or caps.whole_cycles:
        raise WulinError(f"controller {controller.name!r}: central control drives controllers that choose "
                         "stages (act); native programs and whole-cycle planners are not supported")


def central_round(central: NtcipActuator, controller: Any, reader: Any, state: Any, t: float,
                  next_decision: float, di: float) -> float:
    """One round of central control (the co-simulation's and the field's): poll, decide when due,
    command; returns the time of the next decision.  ``reader`` fills ``state`` with
    :class:`~deploy.detector_state.DetectorStateReader`'s two calls, ``update(samples)`` and
    ``read(into, stage, stage_time, in_transition, time)``: that reader, or the co-simulation's
    view of SUMO's lanes (:class:`deploy.sumo_bridge.SumoLaneReader`)."""
    t0, c0 = time.perf_counter(), time.process_time()
    central.poll(t)
    link, link_cpu = time.perf_counter() - t0, time.process_time() - c0
    reader.update(central.samples)  # every period read goes into the estimate, decision or not
    decided = t >= next_decision - 1e-9
    if decided:  # the controller's own time is not the link's
        stage, stage_time, in_transition = central.stage_views(t)
        reader.read(state, stage, stage_time, in_transition, t)
        central.request(controller.act(state).tolist())
        next_decision += di
    t0, c0 = time.perf_counter(), time.process_time()
    central.command(t)
    central.stats.note_round(link + time.perf_counter() - t0, decided, link_cpu + time.process_time() - c0)
    return next_decision


def _detector_varbinds(lk: DeviceLink) -> list[tuple[O.OID, None]]:
    """The detector objects a poll reads: sequence, each detector's volume and occupancy, presence."""
    n = lk.detectors
    return ([(O.VOLUME_OCCUPANCY_SEQUENCE, None)]
            + [(c + (d,), None) for d in range(1, n + 1) for c in (O.DETECTOR_VOLUME, O.DETECTOR_OCCUPANCY)]
            + [(O.DETECTOR_STATUS_ACTIVE + (g,), None) for g in range(1, (n + 7) // 8 + 1)])


def _stage_command(lk: DeviceLink, k: int) -> tuple[int, int, int, int]:
    """(hold, force-off, omit, vehicle call) bitmaps that ask device ``lk`` for stage ``k``."""
    mine = bits(lk.profile.stage_phases[k])
    others = bits(lk.profile.phases) & ~mine
    return mine, others, others, mine


def _command_varbinds(lk: DeviceLink, cmd: tuple[int, ...]) -> list[tuple[O.OID, int]]:
    """The SET varbinds of ``cmd``, phase group by phase group (one PDU)."""
    pairs: list[tuple[O.OID, int]] = []
    for g in range(1, lk.groups + 1):
        sh = 8 * (g - 1)
        pairs += [(c + (g,), (x >> sh) & 0xFF) for c, x in
                  zip((O.PHASE_CONTROL_HOLD, O.PHASE_CONTROL_FORCE_OFF, O.PHASE_CONTROL_OMIT,
                       O.PHASE_CONTROL_VEH_CALL), cmd, strict=True)]
    return pairs


def _observe(v: SignalView, shown: tuple[int, int, int], stage_of: dict[int, int], now: float) -> None:
    """Update one view from the phase status just read."""
    greens, yellows, nxt = shown
    if shown == v.shown:
        return
    if greens:
        stage = stage_of.get((greens & -greens).bit_length(), v.stage)
        if v.in_transition or stage != v.stage or not (v.shown[0] & greens):
            v.green_start = v.since = now
        v.stage, v.in_transition = stage, False
    else:
        if nxt:
            v.stage = stage_of.get((nxt & -nxt).bit_length(), v.stage)
        if not v.in_transition or (yellows == 0) != (v.shown[1] == 0):
            v.since = now  # a transition began, or its yellow turned to red clearance
        v.in_transition = True
    v.shown = shown
