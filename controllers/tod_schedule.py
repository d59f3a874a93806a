"""Time-of-day control: each signal runs its plan set's plans at the schedule's times, in SUMO.

The plan sets (:func:`controllers.plan.load_plan_sets`: a folder of plans and per-signal
schedules, as the optimiser or ``wulin plan schedule make`` writes them) run natively: one
``<tlLogic>`` per plan and a WAUT per signal switching programs at the schedule's times
(:func:`controllers.plan.plan_sets_to_additional`), exactly what is approved and deployed.
Signals without a set keep the network's program; without ``plans`` every signal runs its
network program as a one-entry set (as ``fixed-time`` defaults to the network's programs).  SUMO switches at the schedule time itself;
a field controller (and the emulator) waits for the running cycle to end, at most one cycle.

Use it as ``-c tod-schedule -p plans=DIR`` (the plan controllers' naming: ``-c fixed-time -p
plans=FILE``), in an experiment's ``[controller_params.tod-schedule] plans = "DIR"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from controllers.fixed_time import check_plans_fit
from controllers.native import NativeController
from sim.errors import WulinError

if TYPE_CHECKING:
    from controllers.plan import PlanSet
    from sim.scenario import Scenario
    from sim.state import DistrictLayout


class TimeOfDayController(NativeController):
    """Runs plan sets across the day as SUMO programs switched by WAUTs.

    Args:
        plans: A folder (or file) of plan sets, see :func:`controllers.plan.load_plan_sets`;
            ``None``: the network's programs, one plan all day per signal.
        program_prefix: SUMO program ids are the prefix and the plan's short hash.
    """

    name = "tod-schedule"

    def __init__(self, plans: str | Path | None = None, program_prefix: str = "wulin-tod",
                 decision_interval: float = 60.0) -> None:
        self.plans_arg = Path(plans) if plans is not None else None
        if self.plans_arg is not None and not self.plans_arg.exists():
            raise WulinError(f"controller 'tod-schedule': plans={plans}: no such folder or file")
        self.program_prefix = program_prefix
        self.decision_interval = float(decision_interval)
        self.sets: list[PlanSet] = []

    def reset(self, layout: DistrictLayout, seed: int) -> None:
        from controllers.fixed_time import plan_from_spec
        from controllers.plan import PlanSet, TimeOfDaySchedule, load_plan_sets

        super().reset(layout, seed)
        if self.plans_arg is None:
            own = [plan_from_spec(spec) for spec in layout.specs]
            self.sets = [PlanSet(TimeOfDaySchedule(p.signal_id, (("00:00", p.plan_hash()),)), (p,)) for p in own]
            return
        sets = load_plan_sets(self.plans_arg)
        for ps in sets.values():
            check_plans_fit(ps.plans, layout, str(self.plans_arg))
        self.sets = list(sets.values())

    def sumo_additional_files(self, scenario: Scenario, workdir: Path) -> list[Path]:
        from controllers.plan import plan_sets_to_additional

        path = Path(workdir) / "wulin_tod_schedule.add.xml"
        path.write_text(plan_sets_to_additional(self.sets, self.program_prefix, scenario.begin))
        return [path]
