"""Plan sets across a day in SUMO: one program per plan, switched by a WAUT at the schedule's times."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from controllers.fixed_time import plan_from_spec
from controllers.plan import (
    PlanSet,
    TimeOfDaySchedule,
    TimingPlan,
    plan_sets_to_additional,
    tod_program_id,
)
from sim.errors import WulinError
from sim.state import DistrictLayout
from sim.topology import load_signal_specs

GRID_NET = Path(__file__).resolve().parents[2] / "networks" / "grid" / "grid.net.xml"


def _alt(plan: TimingPlan, shift: float, name: str) -> TimingPlan:
    """The plan with ``shift`` seconds of green moved from stage 1 to stage 0."""
    greens = [s.green for s in plan.stages]
    greens[0], greens[1] = greens[0] + shift, greens[1] - shift
    return replace(plan.with_splits(greens), name=name)


def write_sets(folder: Path, specs: list, switch: str | None, shift: float = 10) -> dict[str, PlanSet]:
    """Per signal: its net program until ``switch``, then a shifted plan (None: the shifted plan
    all day); as plan files and schedule files."""
    folder.mkdir(parents=True, exist_ok=True)
    sets, early, late = {}, [], []
    for spec in specs:
        base = replace(plan_from_spec(spec), name="early")
        alt = _alt(base, shift, "late")
        early.append(base)
        late.append(alt)
        if switch is None:
            ps = PlanSet(TimeOfDaySchedule(spec.id, (("00:00", alt.plan_hash()),)), (alt,))
        else:
            ps = PlanSet(TimeOfDaySchedule(spec.id, (("00:00", base.plan_hash()), (switch, alt.plan_hash()))),
                         (base, alt))
        (folder / f"{spec.id}.schedule.json").write_text(ps.schedule.to_json())
        sets[spec.id] = ps
    for name, plans in (("early", early), ("late", late)):
        (folder / f"{name}.plans.json").write_text("[" + ",".join(p.to_json() for p in plans) + "]")
    return sets


def test_sumo_switches_program_at_the_schedule_time(tmp_path: Path) -> None:
    import sumolib

    specs = load_signal_specs(GRID_NET)
    sets = write_sets(tmp_path / "sets", [specs["B1"]], "07:10")
    ps = sets["B1"]
    add = tmp_path / "tod.add.xml"
    add.write_text(plan_sets_to_additional(sets.values(), start=25200))
    ev = tmp_path / "ev.add.xml"
    out = tmp_path / "tls.xml"
    ev.write_text(f'<additional><timedEvent type="SaveTLSSwitchStates" source="B1" dest="{out}"/></additional>')
    subprocess.run([sumolib.checkBinary("sumo"), "-n", str(GRID_NET), "-a", f"{add},{ev}", "-b", "25200",
                    "-e", "26100", "--no-step-log", "--no-warnings"], check=True, capture_output=True, timeout=120)
    import xml.etree.ElementTree as ET

    programs = [(float(e.get("time", 0)), e.get("programID")) for e in ET.parse(out).getroot()]
    first, second = (tod_program_id(p) for p in ps.plans)
    assert programs[0] == (25200.0, first)
    switched = [t for t, p in programs if p == second]
    assert switched and switched[0] == 7 * 3600 + 600  # 07:10 exactly
    assert all(p == first for t, p in programs if t < 25800)


def test_controller_runs_the_plan_in_force(tiny_scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A schedule whose plan is in force all run gives the same trips as that plan fixed-time;
    switching half-way gives other trips than either plan alone."""
    from controllers.fixed_time import FixedTimeController
    from experiments.episode import run_episode

    lay = DistrictLayout.from_specs(load_signal_specs(tiny_scenario.net_file))
    specs = list(lay.specs)
    whole = write_sets(tmp_path / "whole", specs, None, shift=4)
    mid = write_sets(tmp_path / "mid", specs, "00:05", shift=4)
    late = [ps.plans[0] for ps in whole.values()]
    early = [ps.plans[0] for ps in mid.values()]

    def durations(ctl: object) -> list[float]:
        return run_episode(tiny_scenario, ctl, seed=3).trips["duration"].tolist()  # type: ignore[arg-type]

    fixed_late, fixed_early = durations(FixedTimeController(plans=late)), durations(FixedTimeController(plans=early))
    assert fixed_late != fixed_early
    assert durations(_tod(tmp_path / "whole")) == fixed_late
    switched = durations(_tod(tmp_path / "mid"))
    assert switched not in (fixed_late, fixed_early)


def _tod_default() -> object:
    from controllers.base import make_controller

    return make_controller("tod-schedule")


def _tod(folder: Path) -> object:
    from controllers.base import make_controller

    return make_controller("tod-schedule", plans=str(folder))


def test_controller_refuses_plans_for_other_signals(tiny_scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    grid = load_signal_specs(GRID_NET)
    write_sets(tmp_path / "grid", [grid["C1"]], "07:00")
    lay = DistrictLayout.from_specs(load_signal_specs(tiny_scenario.net_file))
    ctl = _tod(tmp_path / "grid")
    with pytest.raises(WulinError, match="plan for signal 'C1', which is not in the network"):
        ctl.reset(lay, 1)  # type: ignore[attr-defined]
    default = _tod_default()
    default.reset(lay, 1)  # type: ignore[attr-defined]
    assert [len(ps.plans) for ps in default.sets] == [1] * lay.n_signals  # type: ignore[attr-defined]
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "x.json").write_text(json.dumps({"format": "other/1"}))
    with pytest.raises(WulinError, match="no time-of-day schedule"):
        _tod(tmp_path / "empty").reset(lay, 1)  # type: ignore[attr-defined]


def test_verify_writes_the_evidence_of_a_day_run(tiny_scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from experiments.episode import run_episode
    from sim.kpi import summarise
    from wulin.cli import app

    lay = DistrictLayout.from_specs(load_signal_specs(tiny_scenario.net_file))
    write_sets(tmp_path / "mid", list(lay.specs), "00:05", shift=4)
    out = tmp_path / "ev.json"
    r = CliRunner().invoke(app, ["plan", "schedule", "verify", str(tiny_scenario.source), str(tmp_path / "mid"),
                                 "--seeds", "1,2", "--out", str(out)])
    assert r.exit_code == 0, r.output
    ev = json.loads(out.read_text())
    assert ev["kind"] == "verification" and ev["seeds"] == "1,2" and ev["baseline"] == "field"
    assert ev["schedule"] == [["00:00", "early"], ["00:05", "late"]] and ev["signals"] == lay.n_signals
    again = [summarise(run_episode(tiny_scenario, _tod(tmp_path / "mid"), seed=s).trips)["mean_time_loss"]  # type: ignore[arg-type]
             for s in (1, 2)]
    assert ev["kpis"]["mean_time_loss (schedule)"]["mean"] == round(sum(again) / 2, 2)
    assert "mean_time_loss (field)" in ev["kpis"]


def test_an_experiment_declares_the_schedule(tmp_path: Path) -> None:
    from experiments.spec import load_spec

    grid = load_signal_specs(GRID_NET)
    write_sets(tmp_path / "sets", [grid["B1"]], "07:30")
    toml = tmp_path / "day.toml"
    toml.write_text(f'name = "day"\nscenarios = ["grid-am-v1"]\ncontrollers = ["field", "tod-schedule"]\n'
                    f'seeds = 1\n[controller_params.tod-schedule]\nplans = "{tmp_path / "sets"}"\n')
    spec = load_spec(toml)
    assert spec.controller_params["tod-schedule"]["plans"] == str(tmp_path / "sets")
    toml.write_text(toml.read_text().replace(str(tmp_path / "sets"), str(tmp_path / "nope")))
    with pytest.raises(WulinError, match="no such folder or file"):
        load_spec(toml)
