"""The running signal inside an emulated controller, and the NTCIP objects that show and steer it.

:class:`SignalUnit` puts together what turns a controller's tables into signal heads: the
phase engine (:mod:`deploy.phase_engine`), the detector inputs (:mod:`deploy.detectors`) and
the cabinet's conflict monitor (:mod:`deploy.conflict_monitor`), ticking on the device's time
of day.  It owns their NTCIP 1202 objects, which :class:`~deploy.device_model.DeviceModel`
serves beside its timing tables:

* ``phaseStatusGroup*`` (reds, yellows, greens, don't walks, pedestrian clears, walks, vehicle
  and pedestrian calls, phase on, phase next): read-only, computed from the outputs shown now;
* ``phaseControlGroup*`` (omit, pedestrian omit, hold, force-off, vehicle call, pedestrian
  call): read-write control objects, applied at once; a hold naming phases that may not be
  green together is refused (``inconsistentValue``), never half applied;
* the detector objects (``vehicleDetectorCallPhase``, status group active, the volume /
  occupancy table and its period and sequence);
* the preempt objects and their sequencer (:mod:`deploy.preempt`), and the (private, not
  NTCIP) transit priority request objects (:mod:`deploy.priority`), which steer the engine
  before each of its steps;
* ``unitFlashStatus`` and the critical-alarm bit of ``shortAlarmStatus`` when the monitor
  trips, with the monitor's reason in the private ``wulinMonitorFault`` object;
* start-up flash (``unitFlashStatus`` startup) after a reboot, for :attr:`SignalUnit.startup_flash`,
  then a red clearance and stage 0, as a field controller powers up.

What the monitor checks is what the load switches show: the engine's outputs, plus any
output a fault forces on (:attr:`SignalUnit.stuck_on`, a failed load switch), so its test
needs no broken engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import replace
from typing import Any, NamedTuple

from deploy import oids as O
from deploy.conflict_monitor import ConflictMonitor, compatibility
from deploy.detectors import DetectorBank, DetectorReading
from deploy.phase_engine import (
    RED,
    EngineState,
    PhaseEngine,
    PhaseOutputs,
    Timing,
    bit,
    bits,
    link_state,
)
from deploy.preempt import Preemption
from deploy.priority import Priority
from deploy.profile import DeviceProfile

MISSING = object()
MAX_CATCH_UP = 36000  # deciseconds; a longer jump of the clock restarts the engine where the plan puts it

_CONTROL_COLUMNS = {O.PHASE_CONTROL_OMIT: "omit", O.PHASE_CONTROL_PED_OMIT: "ped_omit",
                    O.PHASE_CONTROL_HOLD: "hold", O.PHASE_CONTROL_FORCE_OFF: "force_off",
                    O.PHASE_CONTROL_VEH_CALL: "veh_call", O.PHASE_CONTROL_PED_CALL: "ped_call"}


class UnitObject(NamedTuple):
    """One object instance the unit adds to the device: access, NTCIP kind, type, range, value."""

    oid: O.OID
    access: str
    kind: str
    type: str
    lo: int
    hi: int
    value: Any


class SignalUnit:
    """Engine, detectors and monitor of one controller, ticking on its time of day.

    Args:
        profile: Which phases serve which stage.
        max_phases: The device's phase count (sets the number of phase groups).
        stage_states: Each stage's green state over the links (for SUMO's heads and the monitor).
        conflicts: The links' foe matrix (``None``: every two stages conflict).
        detectors: Detector number -> the phase it calls (``None``: detector ``p`` calls phase ``p``).
        tick: Deciseconds per engine step.
        params: The device's object values, where the preempt parameters are read live
            (``None``: a table of the unit's own).
    """

    def __init__(self, profile: DeviceProfile, max_phases: int, stage_states: Sequence[str],
                 conflicts: Sequence[Sequence[bool]] | None = None, detectors: Mapping[int, int] | None = None,
                 tick: int = 10, params: MutableMapping[O.OID, Any] | None = None) -> None:
        self.profile, self.stage_states, self.tick = profile, tuple(stage_states), int(tick)
        self.groups = (max_phases + 7) // 8
        self.engine = PhaseEngine(profile, self.tick)
        params = params if params is not None else {}
        self.preempts = Preemption(profile, params)
        self.priority = Priority(profile, params)
        self.monitor = ConflictMonitor(compatibility(profile, self.stage_states, conflicts))
        dets = dict(detectors) if detectors is not None else {p: p for p in profile.phases}
        self.bank = DetectorBank(call_phase=dets)
        self.n_detectors = max(dets, default=0)
        self.time: int | None = None  # time of day of the last tick, deciseconds
        self.stuck_on = 0  # phases a failed load switch shows green whatever the engine says
        self.flash_status = O.FLASH_NOT_FLASH
        self._readings: dict[int, DetectorReading] = {}
        self.shown = PhaseOutputs()
        self._timing: Timing | None = None
        self.startup_flash = 0  # deciseconds of start-up flash at the first tick (a reboot sets it)
        self._startup_end = 0

    # ------------------------------------------------------------------ objects
    def objects(self) -> list[UnitObject]:
        """Every object instance the unit serves, with its value at power-on."""
        out = [UnitObject(O.MAX_PHASE_GROUPS, "ro", "S", "int", 0, 255, self.groups)]
        for g in range(1, self.groups + 1):
            out.append(UnitObject(O.PHASE_STATUS_NUMBER + (g,), "ro", "S", "int", 0, 255, g))
            for col in range(2, 12):
                out.append(UnitObject(O.PHASE_STATUS_ENTRY + (col, g), "ro", "S", "int", 0, 255, 0))
            out.append(UnitObject(O.PHASE_CONTROL_NUMBER + (g,), "ro", "S", "int", 0, 255, g))
            for c in _CONTROL_COLUMNS:
                out.append(UnitObject(c + (g,), "rw", "C", "int", 0, 255, 0))
        out.append(UnitObject(O.MAX_VEHICLE_DETECTORS, "ro", "S", "int", 0, 255, self.n_detectors))
        for d in range(1, self.n_detectors + 1):
            out.append(UnitObject(O.VEHICLE_DETECTOR_NUMBER + (d,), "ro", "S", "int", 0, 255, d))
            out.append(UnitObject(O.VEHICLE_DETECTOR_CALL_PHASE + (d,), "rw", "P2", "int", 0, 255,
                                  self.bank.call_phase.get(d, 0)))
            out.append(UnitObject(O.VEHICLE_DETECTOR_ALARMS + (d,), "ro", "S", "int", 0, 255, 0))
            out.append(UnitObject(O.DETECTOR_VOLUME + (d,), "ro", "S", "int", 0, 255, 0))
            out.append(UnitObject(O.DETECTOR_OCCUPANCY + (d,), "ro", "S", "int", 0, 255, 0))
        n_det_groups = (self.n_detectors + 7) // 8
        out.append(UnitObject(O.MAX_DETECTOR_STATUS_GROUPS, "ro", "S", "int", 0, 255, n_det_groups))
        for g in range(1, n_det_groups + 1):
            out.append(UnitObject(O.DETECTOR_STATUS_ACTIVE + (g,), "ro", "S", "int", 0, 255, 0))
        out += [UnitObject(O.VOLUME_OCCUPANCY_SEQUENCE, "ro", "S", "int", 0, 255, 0),
                UnitObject(O.VOLUME_OCCUPANCY_PERIOD, "rw", "P", "int", 0, 255, self.bank.period),
                UnitObject(O.ACTIVE_VOLUME_OCCUPANCY_DETECTORS, "ro", "S", "int", 0, 255, self.n_detectors),
                UnitObject(O.UNIT_FLASH_STATUS, "ro", "S", "int", 0, 255, O.FLASH_NOT_FLASH),
                UnitObject(O.MONITOR_FAULT, "ro", "S", "octets", 0, 255, b"")]
        return out + [UnitObject(*t) for t in self.preempts.objects() + self.priority.objects()]

    def value(self, o: O.OID) -> Any:
        """The live value of ``o`` if the unit computes it, else :data:`MISSING`."""
        head, idx = o[:-1], o[-1]
        if head[:-1] == O.PHASE_STATUS_ENTRY and 2 <= head[-1] <= 11:
            return (self._status_bitmap(head[-1]) >> (8 * (idx - 1))) & 0xFF
        if head in _CONTROL_COLUMNS:
            return (getattr(self.engine.commands, _CONTROL_COLUMNS[head]) >> (8 * (idx - 1))) & 0xFF
        if head == O.DETECTOR_VOLUME:
            return self.bank.volume.get(idx, 0)
        if head == O.DETECTOR_OCCUPANCY:
            return self.bank.occupancy.get(idx, 0)
        if head == O.DETECTOR_STATUS_ACTIVE:
            return sum(1 << (d - 1 - 8 * (idx - 1)) for d, on in self.bank.present.items()
                       if on and 8 * (idx - 1) < d <= 8 * idx)
        if o == O.VOLUME_OCCUPANCY_SEQUENCE:
            return self.bank.sequence
        if o == O.UNIT_FLASH_STATUS:
            return self.flash_status
        if o == O.MONITOR_FAULT:
            return self.monitor.fault.describe().encode() if self.monitor.fault else b""
        if head == O.PREEMPT_STATE:
            return self.preempts.state(idx)
        live = self.priority.value(o)
        return MISSING if live is None else live

    def _status_bitmap(self, col: int) -> int:
        out, every = self.shown, bits(self.profile.phases)
        walks, clears = self.engine.pedestrian(self._timing) if self._timing is not None else (0, 0)
        return {2: out.reds, 3: out.yellows, 4: out.greens, 5: every & ~(walks | clears), 6: clears, 7: walks,
                8: out.calls, 9: out.ped_calls, 10: out.phase_on, 11: out.phase_next}[col]

    def refused(self, o: O.OID, v: int) -> str | None:
        """Why the unit refuses ``o = v`` (``None``: accepted): a hold on incompatible phases, or
        a preempt object the preempt sequencer refuses."""
        if o[:-1] != O.PHASE_CONTROL_HOLD:
            return self.preempts.refused(o, v) or self.priority.refused(o, v)
        shift = 8 * (o[-1] - 1)
        held = (self.engine.commands.hold & ~(0xFF << shift)) | (v << shift)
        for p in self.profile.phases:
            if held & bit(p) and held & ~self.monitor.compatible.get(p, 0) & bits(self.profile.phases):
                return "inconsistentValue"
        return None

    def apply(self, o: O.OID, v: Any) -> bool:
        """Apply a SET of one of the unit's control objects (False: not the unit's)."""
        name = _CONTROL_COLUMNS.get(o[:-1])
        if name is not None:
            shift = 8 * (o[-1] - 1)
            cur = getattr(self.engine.commands, name)
            setattr(self.engine.commands, name, (cur & ~(0xFF << shift)) | (int(v) << shift))
            if self.time is not None and self._timing is not None:  # acted on at the instant it arrives
                self.engine.react(self._timing, self.time)
                self._show()
            return True
        if o == O.VOLUME_OCCUPANCY_PERIOD:
            self.bank.period = int(v)
        return False

    def load_tables(self, db: Mapping[O.OID, Any]) -> None:
        """Take the detector call phases from the device's (committed) tables."""
        self.bank.call_phase = {d: int(db.get(O.VEHICLE_DETECTOR_CALL_PHASE + (d,), 0))
                                for d in range(1, self.n_detectors + 1)}

    # ------------------------------------------------------------------ running
    def feed(self, readings: Mapping[int, DetectorReading]) -> None:
        """Detector inputs for the next tick (vehicle counts add up until a tick takes them)."""
        for d, r in readings.items():
            prev = self._readings.get(d)
            self._readings[d] = DetectorReading(r.present, r.count + (prev.count if prev else 0))

    def run_to(self, tod: int, timing: Callable[[], Timing], flash_commanded: bool = False) -> None:
        """Tick the engine up to time of day ``tod`` (deciseconds), checking every output."""
        if self.time is None or tod - self.time > MAX_CATCH_UP:
            self.time = tod - tod % self.tick
            self._timing = timing()
            self.engine.start(self._timing, self.time)
            if self.startup_flash > 0:
                self.engine.flash, self.flash_status = True, O.FLASH_STARTUP
                self._startup_end, self.startup_flash = self.time + self.startup_flash, 0
            self._show()
        while self.time + self.tick <= tod:
            self.time += self.tick
            self._timing = timing()
            if self.flash_status == O.FLASH_STARTUP and self.time >= self._startup_end:
                self._leave_flash()
            self._set_command_flash(flash_commanded)
            self.bank.feed(self._readings, self.tick)
            self._readings = {d: replace(r, count=0) for d, r in self._readings.items()}
            self.preempts.tick(self.engine, self.time)
            self.priority.tick(self.engine, self.time, self.preempts.active is not None)
            self.engine.step(self._timing, self.time, self.bank.presence())
            self._show()

    def _show(self) -> None:
        out = self.engine.outputs()
        if self.stuck_on:
            out = replace(out, greens=out.greens | self.stuck_on, reds=out.reds & ~self.stuck_on)
        self.shown = out
        assert self.time is not None
        if self.monitor.check(out, self.time) is not None:
            self.engine.flash = True
            self.flash_status = O.FLASH_MMU
            self.shown = self.engine.outputs()

    def _set_command_flash(self, on: bool) -> None:
        """``systemPatternControl`` 255 flashes the unit; leaving it runs a red clearance first."""
        if self.monitor.tripped or self.flash_status == O.FLASH_STARTUP:
            return
        if on and not self.engine.flash:
            self.engine.flash, self.flash_status = True, O.FLASH_AUTOMATIC
        elif not on and self.engine.flash:
            self._leave_flash()

    def _leave_flash(self) -> None:
        st = self.engine.state
        self.engine.flash, self.flash_status = False, O.FLASH_NOT_FLASH
        self.engine.state = EngineState(stage=st.stage, interval=RED, next_stage=0)

    @property
    def commanded(self) -> bool:
        """Whether any phase control object is set."""
        c = self.engine.commands
        return bool(c.hold | c.force_off | c.omit | c.ped_omit | c.veh_call | c.ped_call)

    @property
    def alarm(self) -> int:
        """``shortAlarmStatus``: the critical-alarm bit while the monitor is tripped."""
        return O.SHORT_ALARM_CRITICAL if self.monitor.tripped else 0

    def heads(self) -> str:
        """What the signal heads show over the links now (SUMO's state string)."""
        return link_state(self.stage_states, self.engine.state, self.engine.flash)

    def reset_monitor(self) -> None:
        """The technician's reset after a monitor trip: red clearance, then stage 0."""
        self.monitor.reset()
        self.stuck_on = 0
        self.engine.flash, self.flash_status = False, O.FLASH_NOT_FLASH
        self.engine.state = EngineState(stage=self.engine.state.stage, interval=RED, next_stage=0)
