"""Engineering checks on the timing plans an experiment simulates.

An experiment may run hand-written or optimised plans (a variation's ``plan = "x.json"``, or a
controller's ``plans`` parameter). SUMO runs whatever it is given, conflicting protected greens
and 0 s yellows included, so before any run the experiment checks each such plan with the same
``validate_plan`` the approval uses, against the conflict matrix of every scenario's network,
and reports every violation as a warning: a what-if on an unsafe plan is still allowed (it may
be the point of the study) but never silently.
"""

from __future__ import annotations

from pathlib import Path

from controllers.plan import load_plans, validate_plan
from experiments.spec import ExperimentSpec
from sim.scenario import load_scenario
from sim.topology import load_signal_specs


def plan_files(spec: ExperimentSpec) -> list[tuple[str, Path]]:
    """(where it is declared, JSON plan file) for every timing-plan file the experiment runs."""
    found = [(f"variation {v.name!r}", Path(v.plan)) for v in spec.variations if v.plan]
    for controller, params in spec.controller_params.items():
        if isinstance(params.get("plans"), str | Path):
            base = spec.source.parent if spec.source else Path.cwd()
            found.append((f"controller {controller!r}", base / params["plans"]))
    return [(where, p) for where, p in found if p.suffix == ".json"]


def plan_warnings(spec: ExperimentSpec) -> list[str]:
    """One line per violation of the engineering checks, for every plan and scenario network."""
    files = plan_files(spec)
    if not files:
        return []
    nets = {load_scenario(s).net_file for s in spec.scenarios}
    specs = {net: load_signal_specs(net) for net in nets}
    warnings = []
    for where, path in files:
        for plan in load_plans(path):
            for net, by_id in specs.items():
                sig = by_id.get(plan.signal_id)
                if sig is None:
                    continue  # check_plans_fit refuses unknown signals when the run starts
                for problem in validate_plan(plan, sig.conflicts, unused=sig.unused_links):
                    warnings.append(f"{path.name} ({where}), signal {plan.signal_id} on {net.name}: "
                                    f"{problem}")
    return warnings
