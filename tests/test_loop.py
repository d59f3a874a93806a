"""The one time arithmetic (StepClock, stop_after) and the event-to-event loop core."""

from __future__ import annotations

from sim.loop import CONTROLLER, STEP, StepClock, Stopwatch, advance_events, stop_after


def test_stop_for_lands_on_the_millisecond_grid_without_drift() -> None:
    clock = StepClock(0.0, 0.1, 10_000.0)
    for k in range(1, 20_001):
        t = clock.stop_for(clock.time + 0.05)  # between steps: the next step
        assert t == k / 10  # the double nearest k * 0.1, never k * 0.1 summed in floats
    assert clock.ms == 2_000_000


def test_stop_for_moves_at_least_one_step_and_never_past_the_end() -> None:
    clock = StepClock(100.0, 1.0, 103.5)
    assert clock.stop_for(50.0) == 101.0  # a due time in the past: still one step on
    assert clock.stop_for(1e6) == 103.5 and clock.done
    assert StepClock(0.0, 1.0, 10.0).later(0.2) == 1.0  # at least one step
    assert StepClock(0.0, 1.0, 10.0).later(30.0) == 10.0  # never past the end


def test_stop_after_is_the_clock_arithmetic() -> None:
    assert stop_after(21600.0, 21607.3, 1.0) == 21608.0
    assert stop_after(0.5, 0.5000001, 0.5) == 1.0


class _Sim:
    def __init__(self) -> None:
        self.stops: list[float] = []

    def step_until(self, t: float) -> None:
        self.stops.append(t)


class _Actuator:
    """Events every 7 s; tick moves the next event on."""

    def __init__(self) -> None:
        self.next_event = 7.0
        self.ticks: list[float] = []

    def tick(self, t: float) -> None:
        self.ticks.append(t)
        if t + 1e-6 >= self.next_event:
            self.next_event += 7.0


def test_advance_events_stops_only_at_events_and_the_target() -> None:
    sim, act = _Sim(), _Actuator()
    clock = StepClock(0.0, 1.0, 100.0)
    watch = Stopwatch()
    watch.switch(CONTROLLER)
    t = advance_events(sim, act, clock, 30.0, watch)
    assert t == 30.0 and clock.time == 30.0
    assert sim.stops == [7.0, 14.0, 21.0, 28.0, 30.0]
    assert act.ticks == [7.0, 14.0, 21.0, 28.0]  # not at the target: the caller ticks there
    assert watch.wall[STEP] > 0 and watch.wall[CONTROLLER] > 0 and watch.account == CONTROLLER
    assert advance_events(sim, act, clock, 200.0) == 100.0 and clock.done  # never past the end
