"""The emulator's phase engine: its intervals, each phase control object, what it refuses and
what it never does whatever it is told (no SUMO, no sockets: a hand-driven clock)."""

from __future__ import annotations

import random

from deploy import oids as O
from deploy.detectors import DetectorReading
from deploy.phase_engine import bit

from .engine_helpers import Bench, plan_with

HOLD, FORCE_OFF, OMIT = O.PHASE_CONTROL_HOLD + (1,), O.PHASE_CONTROL_FORCE_OFF + (1,), O.PHASE_CONTROL_OMIT + (1,)
VEH_CALL, PED_CALL = O.PHASE_CONTROL_VEH_CALL + (1,), O.PHASE_CONTROL_PED_CALL + (1,)
FREE = (O.SYSTEM_PATTERN_CONTROL, O.PATTERN_FREE)


def test_coordinated_runs_the_pattern_splits() -> None:
    b = Bench()  # make_plan: greens 40/40, yellow 3, all-red 2, cycle 90, offset 0
    b.run(200)
    got = [(i.stage, i.kind, i.length) for i in b.closed()]
    assert got[:6] == [(0, "green", 40), (0, "yellow", 3), (0, "red", 2), (1, "green", 40), (1, "yellow", 3),
                       (1, "red", 2)]
    assert b.closed()[3].start == 45 and b.closed()[6].start == 90  # stage 0's green at the offset, each cycle


def test_force_off_inside_minimum_green_is_deferred_to_the_minimum() -> None:
    b = Bench()
    assert b.set(FREE, (FORCE_OFF, bit(1)), (VEH_CALL, bit(2))) == "noError"
    b.run(30)
    first = b.closed()[0]
    assert (first.stage, first.kind, first.length) == (0, "green", 10)  # minimum green, not less
    assert [(i.kind, i.length) for i in b.closed()[1:3]] == [("yellow", 3), ("red", 2)]
    assert b.dev.unit.engine.state.end_reason == "force-off"


def test_hold_keeps_the_green_past_its_force_off_and_release_ends_it() -> None:
    b = Bench()
    assert b.set((HOLD, bit(1))) == "noError"
    b.run(70)
    assert b.trace[-1].stage == 0 and b.trace[-1].kind == "green" and b.trace[-1].length == 71
    assert b.set((HOLD, 0)) == "noError"
    b.run(1)
    assert b.trace[-1].kind == "yellow"  # the force-off point has passed: it ends at once, through yellow


def test_omit_skips_a_stage_and_calls_bring_it_back() -> None:
    b = Bench(plan_with(3, greens=(20, 20, 20)), n_stages=3)
    assert b.set((OMIT, bit(2))) == "noError"
    b.run(150)
    greens = [i.stage for i in b.closed() if i.kind == "green"]
    assert 1 not in greens and greens[:3] == [0, 2, 0]
    # free, no recall: only called stages are served; a vehicle call brings stage 1 in
    assert b.set((OMIT, 0), FREE, (VEH_CALL, bit(2))) == "noError"
    b.run(120)
    assert [(i.stage, i.kind) for i in b.trace[-1:]] == [(1, "green")]  # served, then rests: no other call


def test_a_hold_on_phases_that_conflict_is_refused_whole() -> None:
    b = Bench()
    assert b.set((HOLD, bit(1) | bit(2))) == "inconsistentValue"
    assert b.dev.value(HOLD) == 0
    assert b.set((HOLD, bit(1))) == "noError" and b.dev.value(HOLD) == bit(1)


def test_free_mode_gaps_out_and_maxes_out_on_detector_input() -> None:
    b = Bench()
    assert b.set(FREE) == "noError"
    b.dev.unit.feed({2: DetectorReading(True, 1)})  # a vehicle waits for phase 2, none for phase 1
    b.run(12)
    assert (b.closed()[0].stage, b.closed()[0].length) == (0, 10)  # min green, then gap-out
    for _ in range(60):  # phase 2's detector busy all the time, phase 1 called: stage 1 maxes out
        b.dev.unit.feed({1: DetectorReading(True, 0), 2: DetectorReading(True, 1)})
        b.run(1)
    served = [i for i in b.closed() if i.stage == 1 and i.kind == "green"][0]
    assert served.length == 40  # phaseMaximum1
    reasons = b.dev.unit.engine.state.end_reason
    assert reasons == "max-out"


def test_pedestrian_call_times_walk_and_clearance_before_any_force_off() -> None:
    b = Bench(plan_with(min_green=5))  # walk 7 + ped clearance 3 = 10 s, longer than min green
    assert b.set(FREE, (PED_CALL, bit(2)), (FORCE_OFF, bit(1) | bit(2))) == "noError"
    b.run(11)  # stage 0: 5 s minimum green, 3 s yellow, 2 s red; stage 1 walks
    assert b.dev.unit.engine.state.stage == 1 and b.dev.value(O.PHASE_STATUS_WALKS + (1,)) == bit(2)
    assert b.set((VEH_CALL, bit(1))) == "noError"  # someone waits on phase 1: the force-off can act
    b.run(20)
    ped = [i for i in b.closed() if i.stage == 1 and i.kind == "green"][0]
    assert ped.length == 10  # walk + pedestrian clearance, although forced off from the start


def test_commands_never_shorten_minimums_or_clearances() -> None:
    """Random phase control, pattern and free commands every second: every green lasts its
    minimum, every yellow and red clearance runs in full, the monitor never trips."""
    rng = random.Random(7)
    b = Bench(plan_with(3, greens=(20, 15, 25)), n_stages=3)
    cols = [O.PHASE_CONTROL_HOLD, O.PHASE_CONTROL_FORCE_OFF, O.PHASE_CONTROL_OMIT, O.PHASE_CONTROL_VEH_CALL,
            O.PHASE_CONTROL_PED_CALL, O.PHASE_CONTROL_PED_OMIT]
    refused = 0
    for _ in range(3000):
        col = rng.choice(cols)
        status = b.set((col + (1,), rng.randrange(0, 8)))
        refused += status != "noError"
        if rng.random() < 0.01:
            b.set((O.SYSTEM_PATTERN_CONTROL, rng.choice([0, 1, O.PATTERN_FREE])))
        b.run(1)
    done = b.closed()
    assert len([i for i in done if i.kind == "green"]) > 50 and refused > 0
    for i in done[1:]:
        need = {"green": 10, "yellow": 3, "red": 2}[i.kind]
        assert i.length >= need if i.kind == "green" else i.length == need, i
    assert not b.dev.unit.monitor.tripped and b.dev.unit.monitor.checks >= 3000
