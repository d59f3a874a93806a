"""Plan timelines and through bands along a hand-made three-signal corridor (checked by hand)."""

from __future__ import annotations

import pytest

from controllers.corridor import CorridorRoute
from controllers.main_corridors import CorridorDirection
from controllers.plan import Interval, PlanStage, TimingPlan
from controllers.progression import progression

T0 = 7 * 3600.0  # a multiple of 90: cycles start there when the offset is 0
THROUGH = (0,)  # link 0 is the corridor's through movement, green in stage 0


def plan(sid: str, offset: float, greens: tuple[float, float] = (40, 40)) -> TimingPlan:
    """Two stages, 3 s yellow + 2 s all-red each: cycle = greens + 10 (90 s by default)."""
    stages = (PlanStage("through", "Gr", greens[0]), PlanStage("cross", "rG", greens[1]))
    return TimingPlan(sid, sum(greens) + 10, offset % (sum(greens) + 10), stages, yellow=3, all_red=2)


# 30 s between stop lines at the speed limit (e.g. 375 m at 45 km/h)
CORRIDOR = CorridorDirection(CorridorRoute(("S1", "S2", "S3"), ("", "", ""), (375.0, 375.0)),
                             (THROUGH, THROUGH, THROUGH), (30.0, 30.0), 0.0, "E")


def test_timeline_is_green_yellow_red_from_the_offset() -> None:
    p = plan("S1", 20)
    tl = p.timeline(THROUGH, T0, T0 + 200)
    assert tl == [Interval(T0, T0 + 20, "r"), Interval(T0 + 20, T0 + 60, "G"), Interval(T0 + 60, T0 + 63, "y"),
                  Interval(T0 + 63, T0 + 110, "r"), Interval(T0 + 110, T0 + 150, "G"),
                  Interval(T0 + 150, T0 + 153, "y"), Interval(T0 + 153, T0 + 200, "r")]
    # the cross street's link: green from stage 1's start (20 + 45) for 40 s, yellow, then red
    # through the all-red and stage 0 (merged)
    assert p.timeline((1,), T0 + 65, T0 + 115) == [Interval(T0 + 65, T0 + 105, "G"),
                                                  Interval(T0 + 105, T0 + 108, "y"),
                                                  Interval(T0 + 108, T0 + 115, "r")]


def test_perfect_progression_gives_the_whole_green() -> None:
    plans = {"S1": plan("S1", 0), "S2": plan("S2", 30), "S3": plan("S3", 60)}
    prog = progression(plans, CORRIDOR, T0, 900)
    assert prog.common_cycle and prog.arrivals == (0.0, 30.0, 60.0)
    assert len(prog.bands) == 10  # a green window every 90 s
    assert prog.bands[0].start == T0 and prog.bands[0].end == T0 + 40
    assert prog.bandwidth == pytest.approx(40.0) and prog.min_bandwidth == pytest.approx(40.0)


def test_the_shortest_green_limits_the_band() -> None:
    plans = {"S1": plan("S1", 0), "S2": plan("S2", 30, (30, 50)), "S3": plan("S3", 60)}
    assert progression(plans, CORRIDOR, T0, 900).bandwidth == pytest.approx(30.0)


def test_an_offset_ten_seconds_late_cuts_ten_seconds() -> None:
    # S2's green starts 10 s after the platoon's head arrives: departures 10..40 s get through
    plans = {"S1": plan("S1", 0), "S2": plan("S2", 40), "S3": plan("S3", 60)}
    prog = progression(plans, CORRIDOR, T0, 900)
    assert (prog.bands[0].start, prog.bands[0].end) == (T0 + 10, T0 + 40)
    assert prog.bandwidth == pytest.approx(30.0)


def test_half_a_cycle_off_leaves_no_band() -> None:
    # S2 half a cycle (45 s) late: its green [75, 115) - 30 = [45, 85) misses S1's [0, 40)
    plans = {"S1": plan("S1", 0), "S2": plan("S2", 75), "S3": plan("S3", 60)}
    prog = progression(plans, CORRIDOR, T0, 900)
    assert prog.bandwidth == 0.0 and all(b.width == 0 for b in prog.bands)


def test_simultaneous_offsets_lose_the_travel_time() -> None:
    # all greens at once: S2's green shifted by its 30 s, [-30, 10), leaves [0, 10) of S1's
    # [0, 40); S3's shifted by 60 s, [-60, -20) and [30, 70), leaves nothing
    plans = {s: plan(s, 0) for s in ("S1", "S2", "S3")}
    assert progression(plans, CORRIDOR, T0, 900).bandwidth == 0.0
    two = CorridorDirection(CorridorRoute(("S1", "S2"), ("", ""), (375.0,)), (THROUGH, THROUGH), (30.0,), 0.0)
    assert progression(plans, two, T0, 900).bandwidth == pytest.approx(10.0)


def test_different_cycles_average_over_the_horizon() -> None:
    plans = {"S1": plan("S1", 0), "S2": plan("S2", 30, (40, 50)), "S3": plan("S3", 60)}  # S2: 100 s
    prog = progression(plans, CORRIDOR, T0, 3600)
    assert not prog.common_cycle and len(prog.bands) == 40
    widths = [b.width for b in prog.bands]
    assert prog.min_bandwidth == min(widths) < max(widths) <= 40.0
    assert prog.bandwidth == pytest.approx(sum(widths) / 40)
