"""Webster plans: one :class:`~controllers.plan.TimingPlan` per signal from the scenario's demand.

Each plan keeps the signal's stage structure (its program's green states) and intergreen,
and replaces the cycle and greens with Webster's (:mod:`controllers.webster.formula`) for the
flows measured from the route files (:mod:`sim.demand`) in a time window.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from controllers.splits import scale_greens
from controllers.webster.formula import SAT_FLOW, stage_ratios, webster_timing
from sim.demand import lane_flows_from_demand
from sim.errors import WulinError

if TYPE_CHECKING:
    from controllers.plan import TimingPlan
    from sim.scenario import Scenario
    from sim.state import DistrictLayout
    from sim.topology import SignalSpec


def network_intergreen(spec: SignalSpec) -> tuple[float, float]:
    """``(yellow, all_red)`` of the signal's own program (mean per stage, as in its plan)."""
    from controllers.fixed_time import plan_from_spec

    base = plan_from_spec(spec)
    return float(base.yellow), float(base.all_red)


def webster_plan(spec: SignalSpec, lane_flow: dict[str, float], *, yellow: float | None = None,
                 all_red: float | None = None, min_green: float = 7.0, min_cycle: float = 40.0,
                 max_cycle: float = 150.0, sat_flow: float = SAT_FLOW, name: str = "webster",
                 cycle: float | None = None) -> TimingPlan:
    """A Webster plan for one signal (its program's stages, new cycle and greens).

    Webster retimes the cycle and the splits only: by default the intergreen (yellow and
    all-red) is the one the signal already has in the network's program, i.e. the field
    plan's, because clearance times come from approach speeds and intersection geometry,
    not from demand.  ``yellow`` / ``all_red`` override it.

    Args:
        yellow: Yellow seconds; default: the network program's.
        all_red: All-red seconds; default: the network program's.
        cycle: Force this cycle (a common cycle for coordination); greens keep Webster's ratios.
    """
    from controllers.fixed_time import plan_from_spec

    base = plan_from_spec(spec, min_green=min_green)
    yellow = float(base.yellow) if yellow is None else float(yellow)
    all_red = float(base.all_red) if all_red is None else float(all_red)
    if yellow <= 0 or all_red < 0:
        raise WulinError(f"webster plan for {spec.id!r}: need yellow > 0 and all_red >= 0 "
                         f"seconds, got yellow={yellow:g}, all_red={all_red:g}")
    y = stage_ratios(spec, lane_flow, sat_flow)
    # the plan's stages come from the program; map each to the spec's stage of the same state
    stage_y = []
    for st in base.stages:
        k = spec.stages.index(st.state) if st.state in spec.stages else -1
        stage_y.append(y[k] if k >= 0 else 0.0)
    clearance = yellow + all_red
    c, greens = webster_timing(stage_y, clearance, min_green=min_green, min_cycle=min_cycle,
                               max_cycle=max_cycle)
    if cycle is not None:
        greens = scale_greens(stage_y, greens, cycle, clearance, min_green)
    from dataclasses import replace

    stages = tuple(replace(st, min_green=min(min_green, g), green=g)
                   for st, g in zip(base.stages, greens, strict=True))
    total = sum(greens) + len(greens) * clearance
    return replace(base, stages=stages, cycle=total, offset=0.0, yellow=yellow, all_red=all_red,
                   name=name, source="webster")


def webster_plans(scenario: Scenario, layout: DistrictLayout,
                  window: tuple[float, float] | None = None, *, common_cycle: bool = False,
                  progress: bool = False, **kwargs: Any) -> list[TimingPlan]:
    """One Webster plan per signal from the scenario's demand in ``window`` (default: the
    demand's active window, :func:`default_window`); the window is in each plan's name."""
    from sim.scenario import format_clock

    w = window or default_window(scenario)
    flows = lane_flows_from_demand(scenario, layout, w)
    name = f"webster {format_clock(w[0])}-{format_clock(w[1])}"
    specs = layout.specs
    it: Iterable[Any] = specs
    if progress:
        from rich.progress import track

        it = track(specs, description="Webster plans", transient=True)
    plans = [webster_plan(spec, flows, name=name, **kwargs) for spec in it]
    if common_cycle and plans:
        c = max(p.cycle for p in plans)
        plans = [webster_plan(spec, flows, name=name, cycle=c, **kwargs) for spec in specs]
    return plans


def default_window(scenario: Scenario) -> tuple[float, float]:
    """Webster's default window: the demand's active window inside the scenario's (first to
    last departure in its route files), so demand that ends early is not diluted."""
    from sim.demand import active_window

    return active_window(scenario)


def parse_window(window: str | tuple[float, float]) -> tuple[float, float]:
    """``"07:00-09:00"`` or ``(25200, 32400)`` -> seconds since midnight."""
    from sim.scenario import parse_clock

    if isinstance(window, str):
        parts = window.split("-")
        if len(parts) != 2:
            raise WulinError(f"--window: expected HH:MM-HH:MM such as 07:00-09:00, got {window!r}")
        w = (parse_clock(parts[0], "--window start"), parse_clock(parts[1], "--window end"))
    else:
        w = (float(window[0]), float(window[1]))
    if not w[1] > w[0]:
        raise WulinError(f"--window: end must be after start, got {window!r}")
    return w
