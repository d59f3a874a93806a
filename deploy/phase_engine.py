"""The emulated controller's phase engine: it runs the signal's phases itself, tick by tick.

A field controller does not play back a plan; it *times* its phases from its tables and its
inputs.  :class:`PhaseEngine` is that firmware loop for the Wulin emulator, in integer
deciseconds (NTCIP's unit for yellow, red clearance and passage), one :meth:`PhaseEngine.step`
per tick (a second by default, SUMO's step):

* **Stages.** The device profile maps each stage to one phase per ring and the barriers line
  up (:mod:`deploy.profile`), so the phases of a stage start and end together: the engine times
  stages, each from its phases' table entries (the longest minimum, clearance and pedestrian
  times of the stage's phases; the split of its ring-1 phase).  Phase status is derived from
  the stage state, phase by phase.
* **Intervals.** green -> yellow (``phaseYellowChange``) -> red clearance (``phaseRedClear``)
  -> the next stage's green.  A green never ends before its minimum green nor, when a
  pedestrian was served, before walk + pedestrian clearance; yellow and red clearance always
  run in full.  Nothing a manager sets can shorten them (commands only choose *when* a green
  may end at the first allowed point, and which stage comes next).
* **Coordinated** (a pattern with a cycle): the position in the cycle is
  ``(time of day - offset) mod cycle`` (stage 0's green starts at 0, as in SUMO's tlLogic);
  each stage's green is forced off where its split ends (fixed force-offs).  A stage whose
  split mode is ``maximumVehicleRecall`` always has a call; ``none`` lets a non-coordinated
  stage gap out early (its time goes to the stages after it).  With every split on maximum
  recall the engine shows exactly what SUMO shows running the plan as a static ``tlLogic``
  (``tests/deploy/test_phase_engine_sumo.py`` checks it step by step).
* **Free** (``systemPatternControl`` 254, or a pattern without a cycle): fully actuated:
  minimum green, extension by ``phasePassage`` while detectors see vehicles, gap-out, max-out
  at ``phaseMaximum1``; the next stage is the next in order with a call; with no call
  anywhere the green rests.
* **Phase control** (:class:`Commands`, the ``phaseControlGroup`` objects): ``hold`` keeps the
  green (no gap-out, max-out or force-off); ``force_off`` ends it at the first allowed point
  (inside minimum green it waits for the minimum: deferred, never cut); ``omit`` skips a stage
  (a green already timing is not cut); ``veh_call`` / ``ped_call`` place demand.
* **Preemption** (:class:`Preempting`, set by :mod:`deploy.preempt` each tick): the stage a
  preempt needs is served next and kept green, above every phase control command (hold,
  force-off, omit); the running green still gets its minimum green (and walk + pedestrian
  clearance), and at least the preempt's own minimum green, and its yellow and red clearance
  run in full.  A transition already under way is not redirected: a link kept green towards
  the next stage would otherwise lose its green without yellow.
* **Transit priority** (:class:`PriorityAsk`, set by :mod:`deploy.priority`): green extension
  of the bus's stage past its timed end (force-off, gap-out, max-out), up to a limit; early
  green: other greens end up to a limit before their timed end, never inside their minimum
  green.  A central force-off is not extended; a preempt comes first.
* **Flash**: the conflict monitor (:mod:`deploy.conflict_monitor`) or ``systemPatternControl``
  255 puts the unit into flash; every phase then shows flashing red.

Why stage timing rather than eight independent ring timers: every profile this project writes
is one phase per ring per stage with equal ring splits (the deploy path's verify demands it),
so dual-ring timing would always move the rings together; timing them as one is exact for
these profiles and cannot drift across a barrier.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from deploy import oids as O
from deploy.profile import DeviceProfile

GREEN, YELLOW, RED, FLASH = "green", "yellow", "red", "flash"
FREE, FLASH_PATTERN = 254, 255  # systemPatternControl values


def bit(p: int) -> int:
    """Phase ``p``'s bit in a phase bitmap (phase 1 is bit 0)."""
    return 1 << (p - 1)


def bits(phases: Sequence[int]) -> int:
    out = 0
    for p in phases:
        out |= bit(p)
    return out


@dataclass(frozen=True)
class StageTiming:
    """What the tables say for one stage, in deciseconds (``split`` 0: not in the pattern)."""

    phases: tuple[int, ...]
    min_green: int
    max_green: int
    passage: int
    yellow: int
    red: int
    walk: int
    ped_clear: int
    split: int = 0
    recall: bool = False
    omitted: bool = False
    coord: bool = False

    @property
    def mask(self) -> int:
        return bits(self.phases)

    @property
    def clearance(self) -> int:
        return self.yellow + self.red


@dataclass(frozen=True)
class Timing:
    """The running timing: the stages and, when coordinated, the cycle and offset (deciseconds)."""

    stages: tuple[StageTiming, ...]
    cycle: int = 0  # 0: free
    offset: int = 0

    @property
    def coordinated(self) -> bool:
        return self.cycle > 0

    def force_off(self, k: int) -> int:
        """Position in the cycle where stage ``k``'s green ends."""
        start = sum(s.split for s in self.stages[:k])
        return start + self.stages[k].split - self.stages[k].clearance

    def early_limit(self, k: int) -> int:
        """How far ahead of its window stage ``k`` may start (the spare time of the actuated
        stages before it, counted from the coordinated stage)."""
        n, out, i = len(self.stages), 0, (k - 1) % len(self.stages)
        while not self.stages[i].coord and i != k:
            s = self.stages[i]
            out += max(s.split - s.min_green - s.clearance, 0) if not s.recall else 0
            i = (i - 1) % n
        return out


def timing_from_tables(db: Mapping[O.OID, Any], profile: DeviceProfile, pattern: int | None) -> Timing:
    """The engine's timing from the device's objects: ``pattern`` coordinated, ``None`` free."""
    split_no = int(db.get(O.PATTERN_SPLIT + (pattern,), 0)) if pattern else 0
    stages = []
    for ps in profile.stage_phases:

        def col(c: O.OID, scale: int = 1, ps: tuple[int, ...] = ps) -> int:
            return max(int(db.get(c + (p,), 0)) for p in ps) * scale

        p0 = ps[0]
        mode = int(db.get(O.SPLIT_MODE + (split_no, p0), O.SPLIT_MODE_NONE)) if split_no else O.SPLIT_MODE_NONE
        stages.append(StageTiming(
            phases=tuple(ps), min_green=col(O.PHASE_MIN_GREEN, 10), max_green=col(O.PHASE_MAX1, 10),
            passage=col(O.PHASE_PASSAGE), yellow=col(O.PHASE_YELLOW), red=col(O.PHASE_RED_CLEAR),
            walk=col(O.PHASE_WALK, 10), ped_clear=col(O.PHASE_PED_CLEAR, 10),
            split=int(db.get(O.SPLIT_TIME + (split_no, p0), 0)) * 10 if split_no else 0,
            recall=mode == O.SPLIT_MODE_MAX_RECALL, omitted=mode == O.SPLIT_MODE_OMITTED,
            coord=bool(split_no and int(db.get(O.SPLIT_COORD_PHASE + (split_no, p0), 0))),
        ))
    cycle = int(db.get(O.PATTERN_CYCLE + (pattern,), 0)) * 10 if pattern else 0
    offset = int(db.get(O.PATTERN_OFFSET + (pattern,), 0)) * 10 if pattern else 0
    return Timing(tuple(stages), cycle, offset)


@dataclass
class Commands:
    """The phase control group objects, as phase bitmaps over all groups (bit 0: phase 1)."""

    hold: int = 0
    force_off: int = 0
    omit: int = 0
    ped_omit: int = 0
    veh_call: int = 0
    ped_call: int = 0

    def clear(self) -> None:
        self.hold = self.force_off = self.omit = self.ped_omit = self.veh_call = self.ped_call = 0


@dataclass(frozen=True)
class Preempting:
    """What a preempt asks of the engine: serve ``stage`` next and keep it green; end the
    running green no sooner than ``min_green`` deciseconds (its own minimum green still holds)."""

    stage: int
    min_green: int = 0


@dataclass
class PriorityAsk:
    """What a transit priority request asks of the engine (deciseconds): hold ``stage``'s green
    up to ``extend`` past its timed end; end any other green up to ``early`` before its timed
    end (never inside its minimum green).  ``held_since``: when the extension began (until the
    green it holds ends).  What was given, for the request's service record: ``extended``
    (deciseconds of green past the timed end) and ``early_ends`` / ``early_cut`` (greens ended
    early, deciseconds taken from them)."""

    stage: int
    extend: int
    early: int
    held_since: int | None = None
    extended: int = 0
    early_ends: int = 0
    early_cut: int = 0


@dataclass
class EngineState:
    """Where the engine is: the stage timing now, its interval and how long it has run."""

    stage: int = 0
    interval: str = GREEN
    elapsed: int = 0  # deciseconds in this interval
    next_stage: int | None = None
    gap: int = 0  # deciseconds since the last actuation of the green stage
    walk: bool = False  # a pedestrian is served in this green
    calls: set[int] = field(default_factory=set)  # stages with a locked vehicle call
    ped_calls: set[int] = field(default_factory=set)
    end_reason: str = ""  # why the last green ended (force-off, gap-out, max-out, ...)


class PhaseEngine:
    """Times one controller's stages (see the module docstring).

    Args:
        profile: Which phases serve which stage.
        tick: Deciseconds per :meth:`step` (10: one second).
    """

    def __init__(self, profile: DeviceProfile, tick: int = 10) -> None:
        self.profile, self.tick = profile, int(tick)
        self.commands = Commands()
        self.state = EngineState()
        self.flash = False
        self.preempt: Preempting | None = None
        self.priority: PriorityAsk | None = None
        self._synced = False

    # ------------------------------------------------------------------ placing it
    def start(self, timing: Timing, tod: int) -> None:
        """Power-on: coordinated, start where the pattern puts this time of day (as SUMO does
        when the plan is its tlLogic); free, start in stage 0's green."""
        st = EngineState()
        if timing.coordinated:
            pos, k = (tod - timing.offset) % timing.cycle, 0
            while k < len(timing.stages) - 1 and pos >= sum(s.split for s in timing.stages[: k + 1]):
                k += 1
            into = pos - sum(s.split for s in timing.stages[:k])
            s, green = timing.stages[k], timing.stages[k].split - timing.stages[k].clearance
            st.stage, st.next_stage = k, (k + 1) % len(timing.stages)
            if into < green:
                st.interval, st.elapsed, st.next_stage = GREEN, into, None
            elif into < green + s.yellow:
                st.interval, st.elapsed = YELLOW, into - green
            else:
                st.interval, st.elapsed = RED, into - green - s.yellow
        self.state, self._synced = st, True

    # ------------------------------------------------------------------ one tick
    def step(self, timing: Timing, tod: int, presence: int = 0) -> None:
        """Advance one tick ending at ``tod`` (deciseconds of the day).

        Args:
            timing: The tables in force.
            tod: Time of day at the end of this tick.
            presence: Bitmap of phases whose detectors see a vehicle during the tick.
        """
        if not self._synced:
            self.start(timing, tod - self.tick)
        if self.flash:
            return
        st, n = self.state, len(timing.stages)
        self._take_calls(timing, presence)
        st.elapsed += self.tick
        s = timing.stages[st.stage]
        if st.interval == GREEN:
            st.gap = 0 if presence & s.mask else st.gap + self.tick
            self.react(timing, tod)
        elif st.interval == YELLOW and st.elapsed >= s.yellow:
            st.interval, st.elapsed = RED, 0
        if st.interval == RED and st.elapsed >= s.red:
            k = st.next_stage if st.next_stage is not None else (st.stage + 1) % n
            st.stage, st.interval, st.elapsed, st.next_stage, st.gap = k, GREEN, 0, None, 0
            st.calls.discard(k)
            st.walk = k in st.ped_calls and timing.stages[k].walk > 0 and not self._ped_omitted(timing.stages[k])
            st.ped_calls.discard(k)

    def react(self, timing: Timing, tod: int) -> None:
        """End the green now if it is due (a tick's decision, or a command that arrived at the
        instant ``tod``: a controller acts on commands within its own loop, not a tick later)."""
        st = self.state
        if self.flash or st.interval != GREEN:
            return
        self._take_calls(timing, 0)  # calls commanded at this instant count now
        reason = self._green_ends(timing, tod)
        if reason:
            nxt = self._next_stage(timing)
            if nxt is not None:
                self._note_priority(timing, tod, reason)
                st.interval, st.elapsed, st.next_stage, st.end_reason = YELLOW, 0, nxt, reason

    def _note_priority(self, timing: Timing, tod: int, reason: str) -> None:
        """Record what a priority gave as the green it changed ends (an extension, an early end)."""
        pr, st = self.priority, self.state
        if pr is None:
            return
        if st.stage == pr.stage and pr.held_since is not None:
            pr.extended += tod - pr.held_since
            pr.held_since = None
        elif reason == "priority early":
            pr.early_ends += 1
            pr.early_cut += self._time_left(timing, tod, timing.stages[st.stage])

    def _take_calls(self, timing: Timing, presence: int) -> None:
        st, c = self.state, self.commands
        for k, s in enumerate(timing.stages):
            green = st.interval == GREEN and st.stage == k
            if not green and (presence | c.veh_call) & s.mask:
                st.calls.add(k)
            if c.ped_call & s.mask and not (green and st.walk):
                st.ped_calls.add(k)

    def _ped_omitted(self, s: StageTiming) -> bool:
        return bool(self.commands.ped_omit & s.mask)

    def _min_done(self, s: StageTiming) -> bool:
        st = self.state
        return st.elapsed >= s.min_green and (not st.walk or st.elapsed >= s.walk + s.ped_clear)

    def _green_ends(self, timing: Timing, tod: int) -> str:
        """Why the green should end now ("" : it goes on)."""
        st, c = self.state, self.commands
        s = timing.stages[st.stage]
        pre = self.preempt
        if pre is not None:
            if st.stage == pre.stage:
                return ""
            return "preempt" if self._min_done(s) and st.elapsed >= pre.min_green else ""
        if c.hold & s.mask or not self._min_done(s):
            return ""
        reason = "force-off" if c.force_off & s.mask else self._timed_end(timing, tod, s)
        pr = self.priority
        if pr is None or reason == "force-off":
            return reason
        if st.stage == pr.stage and reason:  # green extension, up to its limit
            if pr.held_since is None:
                pr.held_since = tod
            return "" if tod - pr.held_since < pr.extend else reason
        if st.stage != pr.stage and not reason and self._time_left(timing, tod, s) <= pr.early:
            return "priority early"  # (its minimum green is done: checked above)
        return reason

    def _timed_end(self, timing: Timing, tod: int, s: StageTiming) -> str:
        """Why the stage's own timing ends its green now ("" : it goes on)."""
        st = self.state
        if timing.coordinated:
            left = (timing.force_off(st.stage) - (tod - timing.offset)) % timing.cycle
            window = timing.force_off(st.stage) - sum(x.split for x in timing.stages[: st.stage])
            if left == 0 or left > window + timing.early_limit(st.stage):
                return "coord force-off"
            if not s.recall and not s.coord and st.gap >= max(s.passage, self.tick):
                return "gap-out"
            return ""
        if s.recall:
            return "max-out" if st.elapsed >= s.max_green else ""
        if st.elapsed >= s.max_green > 0:
            return "max-out"
        return "gap-out" if st.gap >= max(s.passage, self.tick) else ""

    def _time_left(self, timing: Timing, tod: int, s: StageTiming) -> int:
        """Deciseconds until the green's force-off (coordinated) or maximum green (free)."""
        if timing.coordinated:
            return (timing.force_off(self.state.stage) - (tod - timing.offset)) % timing.cycle
        return s.max_green - self.state.elapsed if s.max_green > 0 else 1 << 30

    def _next_stage(self, timing: Timing) -> int | None:
        """The next stage in order that wants service and is not omitted (``None``: rest)."""
        st, n = self.state, len(timing.stages)
        if self.preempt is not None and self.preempt.stage != st.stage:
            return self.preempt.stage
        for d in range(1, n):
            k = (st.stage + d) % n
            s = timing.stages[k]
            if s.omitted or self.commands.omit & s.mask:
                continue
            if s.recall or s.coord or k in st.calls or k in st.ped_calls:
                return k
        return None

    # ------------------------------------------------------------------ what it shows
    def outputs(self) -> PhaseOutputs:
        """The phase outputs now, as NTCIP phase status bitmaps."""
        st, prof = self.state, self.profile
        every = bits(prof.phases)
        if self.flash:
            return PhaseOutputs(reds=every, flash=True)
        mine = bits(prof.stage_phases[st.stage])
        nxt = bits(prof.stage_phases[st.next_stage]) if st.next_stage is not None else 0
        greens = mine if st.interval == GREEN else 0
        yellows = mine if st.interval == YELLOW else 0
        walking = mine if st.interval == GREEN and st.walk else 0
        return PhaseOutputs(reds=every & ~(greens | yellows), yellows=yellows, greens=greens, phase_on=mine,
                            phase_next=nxt, walks=walking, calls=bits([p for k in st.calls for p in prof.stage_phases[k]]),
                            ped_calls=bits([p for k in st.ped_calls for p in prof.stage_phases[k]]))

    def pedestrian(self, timing: Timing) -> tuple[int, int]:
        """``(walks, ped clears)`` bitmaps now."""
        st = self.state
        if st.interval != GREEN or not st.walk or self.flash:
            return 0, 0
        s, mine = timing.stages[st.stage], bits(self.profile.stage_phases[st.stage])
        if st.elapsed < s.walk:
            return mine, 0
        return (0, mine) if st.elapsed < s.walk + s.ped_clear else (0, 0)


@dataclass(frozen=True)
class PhaseOutputs:
    """Phase status bitmaps (bit 0: phase 1), as the ``phaseStatusGroup`` objects show them."""

    reds: int = 0
    yellows: int = 0
    greens: int = 0
    phase_on: int = 0
    phase_next: int = 0
    walks: int = 0
    calls: int = 0
    ped_calls: int = 0
    flash: bool = False


def link_state(stage_states: Sequence[str], state: EngineState, flash: bool = False) -> str:
    """The signal heads over the intersection's links (SUMO's state string) for ``state``.

    Links green in the ending stage and in the next one stay green through the clearance;
    links that lose green show ``y`` then ``r`` (as :meth:`TimingPlan.sumo_phases`).  Flash is
    shown as red on every link (SUMO has no flashing red).
    """
    cur = stage_states[state.stage]
    if flash:
        return "r" * len(cur)
    if state.interval == GREEN:
        return cur
    nxt = stage_states[state.next_stage] if state.next_stage is not None else "r" * len(cur)
    lose = "y" if state.interval == YELLOW else "r"
    return "".join(lose if c in "Gg" and nc not in "Gg" else (c if c in "Gg" else "r")
                   for c, nc in zip(cur, nxt, strict=False))
