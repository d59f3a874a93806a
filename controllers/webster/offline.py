"""``webster``: offline Webster plans for a time window, run as SUMO static programs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from controllers.corridor import coordinate_corridor
from controllers.native import NativeController
from controllers.webster.plans import parse_window, webster_plans

if TYPE_CHECKING:
    from controllers.plan import TimingPlan
    from sim.scenario import Scenario


class WebsterController(NativeController):
    """Offline Webster plans for a time window, run as SUMO static programs.

    Args:
        window: ``(begin, end)`` seconds or ``"07:00-09:00"``; default: the demand's active
            window (first to last departure in the route files, inside the scenario's).
        common_cycle: One cycle for all signals (the largest Webster cycle).
        corridor: A green wave along signal ids in travel order, or along a road named in
            the network (``"Yan'an Rd"``); the transform equalises cycles along it.
        heading: Travel direction (N, S, E, W) of a corridor given by road name.
        speed_kmh: Progression speed of the green wave.
        **plan_params: ``yellow``, ``all_red`` (default: the network program's intergreen),
            ``min_green``, ``min_cycle``, ``max_cycle``,
            ``sat_flow``.
    """

    name = "webster"

    def __init__(self, window: str | tuple[float, float] | None = None,
                 common_cycle: bool = False, corridor: str | Sequence[str] = (),
                 heading: str | None = None, speed_kmh: float = 40.0,
                 decision_interval: float = 60.0, **plan_params: float) -> None:
        self.window = parse_window(window) if window is not None else None
        self.common_cycle = common_cycle
        self.corridor = corridor if isinstance(corridor, str) else tuple(corridor)
        self.heading = heading
        self.speed_kmh = speed_kmh
        self.plan_params = plan_params
        self.decision_interval = float(decision_interval)
        self.plans: list[TimingPlan] = []

    def make_plans(self, scenario: Scenario) -> list[TimingPlan]:
        plans = webster_plans(scenario, self.layout, self.window, common_cycle=self.common_cycle,
                              **self.plan_params)
        if self.corridor:
            plans = coordinate_corridor(plans, self.layout, self.corridor, self.speed_kmh,
                                        net_file=scenario.net_file, heading=self.heading)
        return plans

    def sumo_additional_files(self, scenario: Scenario, workdir: Path) -> list[Path]:
        from controllers.plan import plans_to_additional

        self.plans = self.make_plans(scenario)
        path = Path(workdir) / "wulin_webster.add.xml"
        path.write_text(plans_to_additional(self.plans, "wulin-webster"))
        return [path]
