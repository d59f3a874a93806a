"""Fixed-time control: a :class:`~controllers.plan.TimingPlan` per signal, offsets included.

By default the plans come from the network's own programs (``TimingPlan.from_sumo_phases``);
a plan file (one plan or a list, JSON) replaces them signal by signal.  The plans run in
SUMO as ``tlLogic`` programs (``native``), exactly as exported for deployment.  Signals the
plan file does not name keep the network's program.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controllers.native import NativeController
from sim.errors import WulinError

if TYPE_CHECKING:
    from controllers.plan import TimingPlan
    from sim.scenario import Scenario
    from sim.state import DistrictLayout
    from sim.topology import SignalSpec


def plan_from_spec(spec: SignalSpec, min_green: float = 5.0) -> TimingPlan:
    """The network's program of ``spec`` as a plan (field-like fixed time)."""
    from controllers.plan import TimingPlan

    return TimingPlan.from_sumo_phases(
        spec.id, [(p.duration, p.state) for p in spec.phases], spec.offset,
        name=f"net program {spec.program_id}", source="fixed-time from net", min_green=min_green,
        unused=spec.unused_links,
    )


def check_plans_fit(plans: Sequence[TimingPlan], layout: DistrictLayout, where: str) -> None:
    """Raise a WulinError when a plan names an unknown signal or has the wrong link count."""
    for plan in plans:
        if plan.signal_id not in layout.index:
            raise WulinError(
                f"{where}: plan for signal {plan.signal_id!r}, which is not in the network "
                f"(signals: {', '.join(layout.signal_ids[:8])}{'...' if layout.n_signals > 8 else ''})"
            )
        spec = layout.specs[layout.index[plan.signal_id]]
        for k, st in enumerate(plan.stages):
            if len(st.state) != spec.n_links:
                raise WulinError(
                    f"{where}: plan for {plan.signal_id!r}, stage {k}: state has {len(st.state)} "
                    f"links, the signal has {spec.n_links}; regenerate the plan for this network"
                )


class FixedTimeController(NativeController):
    """Runs timing plans as SUMO static programs.

    Args:
        plans: A plan file (JSON: one plan or a list), or plans; default: the network's programs.
        program_id: SUMO program id of the exported programs.
    """

    name = "fixed-time"

    def __init__(self, plans: str | Path | Sequence[TimingPlan] | None = None,
                 program_id: str = "wulin-fixed", decision_interval: float = 60.0) -> None:
        self.plans_arg = plans
        self.program_id = program_id
        self.decision_interval = float(decision_interval)
        self.plans: list[TimingPlan] = []

    def _load(self) -> tuple[list[TimingPlan], str]:
        from controllers.plan import load_plans

        if self.plans_arg is None:
            return [], "<network>"
        if isinstance(self.plans_arg, str | Path):
            return load_plans(self.plans_arg), str(self.plans_arg)
        return list(self.plans_arg), "<plans>"

    def reset(self, layout: DistrictLayout, seed: int) -> None:
        super().reset(layout, seed)
        given, where = self._load()
        check_plans_fit(given, layout, where)
        by_id: dict[str, Any] = {p.signal_id: p for p in given}
        self.plans = [by_id.get(spec.id) or plan_from_spec(spec) for spec in layout.specs]

    def sumo_additional_files(self, scenario: Scenario, workdir: Path) -> list[Path]:
        from controllers.plan import plans_to_additional

        path = Path(workdir) / "wulin_fixed_time.add.xml"
        path.write_text(plans_to_additional(self.plans, self.program_id))
        return [path]
