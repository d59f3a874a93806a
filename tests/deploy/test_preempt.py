"""Preemption on the emulated controller: the preempt sequence, what it never does (skip a
clearance, cut a minimum green, show a conflicting green), maximum presence, links, refusals.

A hand-driven clock (no sockets); the plan is the tests' two-stage grid plan: greens 40 / 40,
minimum green 10 s, yellow 3 s, all-red 2 s, cycle 90 s; stage 0 is phase 1, stage 1 phase 2.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploy import oids as O
from deploy.preempt import Preemption, stage_of

from .conftest import conflicts_for
from .engine_helpers import Bench

# Pinned from ntcip_oids.tsv (preemptTable .6.2.1.<col>.<n>, preemptControlTable .6.3.1.<col>.<n>).
PREEMPT = "1.3.6.1.4.1.1206.4.2.1.6.2.1"
CONTROL_STATE = "1.3.6.1.4.1.1206.4.2.1.6.3.1.2"
YELLOW, ALL_RED, MIN_GREEN = 3, 2, 10


def col(c: int, n: int = 1) -> O.OID:
    return O.oid(f"{PREEMPT}.{c}.{n}")


def call(n: int = 1) -> O.OID:
    return O.oid(f"{CONTROL_STATE}.{n}")


def state(b: Bench, n: int = 1) -> int:
    with b.dev.lock:
        return int(b.dev.value(col(16, n)))


def setup(b: Bench, n: int = 1, *, dwell: bytes = b"\x02", exit_: bytes = b"", track: bytes = b"", delay: int = 0,
          min_duration: int = 0, min_green: int = 0, track_green: int = 0, dwell_green: int = 0,
          max_presence: int = 0, control: int = 0, link: int = 0) -> None:
    assert b.set((col(2, n), control), (col(3, n), link), (col(4, n), delay), (col(5, n), min_duration),
                 (col(6, n), min_green), (col(9, n), track_green), (col(10, n), dwell_green),
                 (col(11, n), max_presence), (col(12, n), track), (col(13, n), dwell),
                 (col(15, n), exit_)) == "noError"


def test_preempt_ends_the_green_through_clearance_dwells_and_exits() -> None:
    b = Bench()  # stage 0 green from 0
    setup(b, dwell=b"\x02", exit_=b"\x01", dwell_green=5)
    b.run(4)
    assert state(b) == 2  # notActive
    assert b.set((call(), 1)) == "noError"
    b.run(1)
    assert state(b) == 4  # entryStarted: waits out stage 0's minimum green
    b.run(40)
    assert state(b) == 6  # dwell on stage 1 while the input is on
    got = [(i.stage, i.kind, i.length) for i in b.trace[:4]]
    assert got[:3] == [(0, "green", MIN_GREEN), (0, "yellow", YELLOW), (0, "red", ALL_RED)]
    assert got[3][:2] == (1, "green") and b.dev.unit.engine.state.stage == 1
    assert b.set((call(), 0)) == "noError"
    b.run(1)
    assert state(b) == 8  # exitStarted: clearing towards the exit phase
    b.run(6)
    assert state(b) == 2 and b.dev.unit.engine.state.stage == 0
    assert [(i.kind, i.length) for i in b.trace[4:6]] == [("yellow", YELLOW), ("red", ALL_RED)]
    assert b.dev.unit.preempts.served == 1 and not b.dev.unit.monitor.tripped


def test_the_preempt_minimum_green_holds_the_running_green_longer() -> None:
    b = Bench()
    setup(b, min_green=25)
    b.run(2)
    b.set((call(), 1))
    b.run(40)
    assert [(i.stage, i.kind, i.length) for i in b.trace[:2]] == [(0, "green", 25), (0, "yellow", YELLOW)]


def test_maximum_presence_ends_the_preempt_and_a_stuck_input_cannot_call_again() -> None:
    b = Bench()
    setup(b, max_presence=30, exit_=b"\x01")
    b.run(15)
    b.set((call(), 1))
    b.run(20)
    assert state(b) == 6
    b.run(30)  # the input has been on longer than 30 s: the preempt ended although it stays on
    assert state(b) == 9 and b.dev.unit.engine.preempt is None
    b.run(120)
    assert state(b) == 9  # never re-entered while the input stays on
    greens = [i.stage for i in b.closed() if i.kind == "green"]
    assert greens[-3:] in ([0, 1, 0], [1, 0, 1])  # back to the pattern
    b.set((call(), 0))
    b.run(1)
    assert state(b) == 2
    b.set((call(), 1))
    b.run(1)
    assert state(b) in (4, 6)  # a fresh input calls again


def test_minimum_duration_keeps_the_dwell_after_the_input_drops() -> None:
    b = Bench(tod=50.0)  # stage 1 green
    setup(b, dwell=b"\x02", min_duration=40)
    b.set((call(), 1))
    b.run(3)
    assert state(b) == 6  # already green on the dwell stage: dwell at once, no clearance
    b.set((call(), 0))
    b.run(30)
    assert state(b) == 6
    b.run(10)
    assert state(b) == 2


def test_delay_and_non_locking_memory() -> None:
    b = Bench()
    setup(b, delay=10, control=1)  # non-locking: a call that drops inside the delay is forgotten
    b.set((call(), 1))
    b.run(5)
    assert state(b) == 3  # notActiveWithCall
    b.set((call(), 0))
    b.run(20)
    assert state(b) == 2 and b.dev.unit.preempts.served == 0
    setup(b, delay=10, control=0)  # locking (the default): served although the input dropped
    b.set((call(), 1))
    b.run(2)
    b.set((call(), 0))
    b.run(60)
    assert b.dev.unit.preempts.served == 1


def test_track_clearance_then_dwell_and_a_linked_preempt() -> None:
    b = Bench(tod=50.0)
    setup(b, 1, track=b"\x01", track_green=8, dwell=b"\x02", link=2)
    setup(b, 2, dwell=b"\x01", dwell_green=15)
    b.set((call(1), 1))
    b.run(60)
    kinds = [(i.stage, i.kind) for i in b.trace]
    assert (0, "green") in kinds  # the track phase was served before the dwell stage
    b.set((call(1), 0))
    b.run(2)
    assert state(b, 1) == 7 and state(b, 2) in (4, 6)  # linkActive while preempt 2 runs
    b.run(60)
    assert state(b, 1) == 2 and state(b, 2) == 2


def test_lower_number_is_served_first_and_one_at_a_time() -> None:
    b = Bench()
    setup(b, 1, dwell=b"\x01")
    setup(b, 2, dwell=b"\x02")
    b.set((call(2), 1), (call(1), 1))
    b.run(3)
    assert state(b, 1) == 6 and state(b, 2) == 3


def test_preempt_overrides_central_hold_but_not_the_minimum_green() -> None:
    b = Bench()
    setup(b, dwell=b"\x02")
    b.set((O.SYSTEM_PATTERN_CONTROL, O.PATTERN_FREE), (O.PHASE_CONTROL_HOLD + (1,), 1))
    b.set((call(), 1))
    b.run(30)
    assert [(i.stage, i.kind, i.length) for i in b.trace[:3]] == [(0, "green", MIN_GREEN), (0, "yellow", YELLOW),
                                                                   (0, "red", ALL_RED)]
    assert state(b) == 6


def test_refusals() -> None:
    b = Bench()
    assert b.set((col(13), b"\x01\x02")) == "inconsistentValue"  # phases of two stages
    assert b.set((col(13), b"\x07")) == "inconsistentValue"  # a phase no stage has
    assert b.set((call(), 1)) == "inconsistentValue"  # no dwell phase yet
    assert b.set((col(2), 0x08)) == "wrongValue"  # flash dwell: not done by this emulator
    assert b.set((col(3), 1)) == "wrongValue"  # linked to itself
    assert b.set((col(16), 6)) == "notWritable"
    assert b.set((col(6), 256)) == "wrongValue"


def test_stage_of() -> None:
    b = Bench()
    prof = b.dev.profile
    assert stage_of(prof, b"\x02") == 1 and stage_of(prof, b"") is None and stage_of(prof, [1, 2]) is None
    assert isinstance(b.dev.unit.preempts, Preemption)


def check_intervals(b: Bench, longest_green: float | None = None) -> None:
    """Every yellow and red clearance in full, every green at least its minimum (and at most
    ``longest_green``), always green -> yellow -> red -> green; the monitor never tripped."""
    closed = b.closed()[1:]  # the interval running at power-on started before the trace did
    for i, nxt in zip(closed, closed[1:], strict=False):
        if i.kind == "yellow":
            assert i.length == YELLOW and nxt.kind == "red", closed
        elif i.kind == "red":
            assert i.length == ALL_RED and nxt.kind == "green", closed
        else:
            assert i.length >= MIN_GREEN and nxt.kind == "yellow", closed
            assert longest_green is None or i.length <= longest_green, closed
    assert not b.dev.unit.monitor.tripped


def _check_run(b: Bench, heads: list[str]) -> None:
    """:func:`check_intervals`, and at the heads: no green to red, no conflicting greens."""
    check_intervals(b)
    conflicts = conflicts_for("B1")
    for before, after in zip(heads, heads[1:], strict=False):
        assert not any(a in "Gg" and z == "r" for a, z in zip(before, after, strict=True)), (before, after)
        green = [k for k, c in enumerate(after) if c in "Gg"]
        assert not any(conflicts[i][j] for i in green for j in green if i < j and after[i] == after[j] == "G")
    assert not b.dev.unit.monitor.tripped and b.dev.unit.monitor.checks > 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tod=st.integers(0, 89), free=st.booleans(), delay=st.integers(0, 6), min_duration=st.integers(0, 40),
       min_green=st.integers(0, 30), dwell_green=st.integers(0, 20), max_presence=st.sampled_from([0, 15, 45]),
       dwell=st.sampled_from([b"\x01", b"\x02"]), exit_=st.sampled_from([b"", b"\x01", b"\x02"]),
       track=st.sampled_from([(b"", 0), (b"\x01", 6), (b"\x02", 12)]),
       pulses=st.lists(st.tuples(st.integers(0, 60), st.integers(1, 80)), min_size=1, max_size=4))
def test_preemption_never_skips_a_clearance_nor_cuts_a_minimum_green(
        tod: int, free: bool, delay: int, min_duration: int, min_green: int, dwell_green: int, max_presence: int,
        dwell: bytes, exit_: bytes, track: tuple[bytes, int], pulses: list[tuple[int, int]]) -> None:
    b = Bench(tod=float(tod))
    setup(b, dwell=dwell, exit_=exit_, track=track[0], track_green=track[1], delay=delay, min_duration=min_duration,
          min_green=min_green, dwell_green=dwell_green, max_presence=max_presence)
    if free:
        b.set((O.SYSTEM_PATTERN_CONTROL, O.PATTERN_FREE), (O.PHASE_CONTROL_VEH_CALL + (1,), 3))
    heads, entered_green = [b.dev.unit.heads()], []
    for gap, length in pulses:  # the input goes off for ``gap`` s, then on for ``length`` s
        for on, seconds in ((0, gap), (1, length)):
            b.set((call(), on))
            for _ in range(seconds):
                before = b.dev.unit.engine.state
                was_green, green_for = before.interval == "green", before.elapsed
                b.run(1)
                heads.append(b.dev.unit.heads())
                after = b.dev.unit.engine.state
                if was_green and after.interval == "yellow" and after.end_reason == "preempt":
                    entered_green.append(green_for + 10)
    b.set((call(), 0))
    for _ in range(200):
        b.run(1)
        heads.append(b.dev.unit.heads())
    _check_run(b, heads)
    # every green a preempt ended had the preempt's minimum green too (counted in the engine's
    # deciseconds: the first green may have started before power-on)
    assert all(g >= 10 * max(MIN_GREEN, min_green) for g in entered_green), entered_green
    assert state(b) == 2
