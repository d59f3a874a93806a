"""TimingPlan: canonical JSON and hash, loading errors, validation, tlLogic export, schedules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controllers.plan import (
    PlanLimits,
    PlanStage,
    TimeOfDaySchedule,
    TimingPlan,
    change_size,
    check_plan,
    diff_plans,
    ite_yellow,
    load_plans,
    plans_to_additional,
    validate_plan,
)
from sim.errors import WulinError

REPO = Path(__file__).resolve().parent.parent
GRID_NET = REPO / "networks" / "grid" / "grid.net.xml"


def four_stage(**kw: object) -> TimingPlan:
    """A valid 8-link, 2-stage-per-axis plan (NS through, NS left, EW through, EW left)."""
    stages = (
        PlanStage("NS through", "GGrrrrrr", 30, min_green=12, walk=7, ped_clearance=5),
        PlanStage("NS left", "rrGGrrrr", 10),
        PlanStage("EW through", "rrrrGGrr", 25),
        PlanStage("EW left", "rrrrrrGG", 5),
    )
    args: dict[str, object] = dict(
        signal_id="J1",
        cycle=90,
        offset=10,
        stages=stages,
        yellow=3,
        all_red=2,
        name="am",
        source="test",
    )
    args.update(kw)
    return TimingPlan(**args)  # type: ignore[arg-type]


def test_valid_plan_has_no_violation() -> None:
    plan = four_stage()
    assert validate_plan(plan) == []
    check_plan(plan)
    assert plan.n_links == 8
    assert plan.splits == (35, 15, 30, 10)
    assert plan.stage_starts == (0, 35, 50, 80)
    assert plan.stages[0].links == (0, 1)


def test_canonical_json_and_hash_are_stable() -> None:
    a = four_stage()
    b = TimingPlan.from_json(a.to_json())
    assert a == b and a.plan_hash() == b.plan_hash()
    # Same numbers spelled differently, keys in another order: same plan, same hash.
    d = json.loads(a.to_json())
    d["cycle"] = 90.0
    d["stages"][0]["green"] = 30.0000001
    text = json.dumps(dict(reversed(list(d.items()))), indent=4)
    assert TimingPlan.from_json(text).plan_hash() == a.plan_hash()
    assert " " not in a.to_json().replace("NS through", "").replace("NS left", "").replace(
        "EW through", ""
    ).replace("EW left", "")
    # Any change changes the hash.
    assert a.with_offset(11).plan_hash() != a.plan_hash()
    # The hash is the same in another process (no dict-order or hash-seed effects).
    code = (
        "import sys, json; from controllers.plan import TimingPlan; "
        "print(TimingPlan.from_json(sys.stdin.read()).plan_hash())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=a.to_json(),
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
    )
    assert out.stdout.strip() == a.plan_hash()


def test_save_load_roundtrip(tmp_path: Path) -> None:
    plan = four_stage()
    path = tmp_path / "p.json"
    plan.save(path)
    assert TimingPlan.load(path) == plan
    assert load_plans(path) == [plan]
    (tmp_path / "many.json").write_text(json.dumps([plan.to_dict(), plan.with_offset(0).to_dict()]))
    assert [p.offset for p in load_plans(tmp_path / "many.json")] == [10, 0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{", "not valid JSON"),
        ("[]", "a timing plan is a JSON object"),
        ('{"signal_id": "J1", "cycle": 90, "offset": 0}', "missing field(s) stages"),
        (
            '{"signal_id": "J1", "cycle": 90, "offset": 0, "stages": [], "colour": 1}',
            "unknown field(s) colour",
        ),
        (
            '{"signal_id": "J1", "cycle": "ninety", "offset": 0, "stages": [{"state": "G", "green": 1}]}',
            "field 'cycle': expected a number",
        ),
        (
            '{"signal_id": "J1", "cycle": 90, "offset": 0, "stages": [{"state": "GyG", "green": 1}]}',
            "stages[0]'.state",
        ),
        (
            '{"signal_id": "J1", "cycle": 90, "offset": 0, "stages": [{"state": "G"}]}',
            "stages[0]': missing field(s) green",
        ),
        (
            '{"signal_id": "J1", "cycle": 90, "offset": 0, "stages": [{"state": "G", "green": true}]}',
            "stages[0]'.green: expected a number",
        ),
        (
            '{"format": "other/2", "signal_id": "J1", "cycle": 90, "offset": 0, "stages": []}',
            "field 'format'",
        ),
    ],
)
def test_loading_errors_name_source_and_field(text: str, expected: str) -> None:
    with pytest.raises(WulinError) as info:
        TimingPlan.from_json(text, source="plans/x.json")
    assert "plans/x.json" in str(info.value) and expected in str(info.value)


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WulinError, match="file not found"):
        TimingPlan.load(tmp_path / "nope.json")
    with pytest.raises(WulinError, match=r"\[1\]"):
        (tmp_path / "l.json").write_text(json.dumps([four_stage().to_dict(), {"x": 1}]))
        load_plans(tmp_path / "l.json")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (dict(cycle=200), "cycle 200 s is outside"),
        (dict(offset=90), "offset 90 s must be"),
        (dict(offset=-1), "offset -1 s must be"),
        (dict(yellow=2.5), "yellow 2.5 s is below the 3 s minimum"),
        (dict(all_red=0.5), "all-red 0.5 s is below"),
        (dict(all_red=4), "all-red 4 s is above"),
        (dict(signal_id=""), "signal_id is empty"),
        (dict(cycle=95), "add up to 90 s but the cycle is 95 s"),
    ],
)
def test_plan_level_violations(change: dict[str, object], expected: str) -> None:
    plan = TimingPlan(**{**four_stage().__dict__, **change})  # type: ignore[arg-type]
    found = validate_plan(plan)
    assert any(expected in v for v in found), found
    with pytest.raises(WulinError, match="is not valid"):
        check_plan(plan)


@pytest.mark.parametrize(
    ("k", "change", "expected"),
    [
        (1, dict(green=4, min_green=5), "green 4 s is shorter than its minimum green 5 s"),
        (0, dict(walk=5), "walk 5 s is below the 7 s minimum"),
        (0, dict(ped_clearance=0), "no clearance time"),
        (
            0,
            dict(min_green=10),
            "minimum green 10 s is shorter than walk + pedestrian clearance (12 s)",
        ),
        (1, dict(state="rrrrrrrr"), "no link has protected green"),
        (1, dict(state="rrGGrrr"), "different lengths"),
        (1, dict(min_green=3, green=10), "below the 4 s floor"),
        (1, dict(max_green=4), "maximum green 4 s is below"),
    ],
)
def test_stage_violations(k: int, change: dict[str, object], expected: str) -> None:
    plan = four_stage()
    stages = list(plan.stages)
    stages[k] = PlanStage(**{**stages[k].__dict__, **change})  # type: ignore[arg-type]
    bad = TimingPlan(**{**plan.__dict__, "stages": tuple(stages)})  # type: ignore[arg-type]
    found = validate_plan(bad)
    assert any(expected in v for v in found), found


def test_every_link_must_get_green_and_conflicts_are_checked() -> None:
    plan = four_stage()
    stages = list(plan.stages)
    stages[3] = PlanStage("EW left", "rrrrrrGr", 5)
    found = validate_plan(TimingPlan(**{**plan.__dict__, "stages": tuple(stages)}))  # type: ignore[arg-type]
    assert any("link(s) [7] never get green" in v for v in found)
    n = 8
    conflicts = [[False] * n for _ in range(n)]
    conflicts[0][1] = conflicts[1][0] = True
    found = validate_plan(plan, conflicts)
    assert any(
        "stage 0 (NS through): conflicting links have protected green together: 0-1" in v
        for v in found
    )
    # Permitted green may overlap a foe (it yields): no violation.
    stages = list(plan.stages)
    stages[0] = PlanStage("NS through", "Ggrrrrrr", 30, min_green=12, walk=7, ped_clearance=5)
    assert validate_plan(TimingPlan(**{**plan.__dict__, "stages": tuple(stages)}), conflicts) == []  # type: ignore[arg-type]
    assert any(
        "conflict matrix is 3 links wide" in v for v in validate_plan(plan, [[False] * 3] * 3)
    )


def test_ite_yellow_and_crossing_limits() -> None:
    # 50 km/h: 1 + 13.89 / 6 = 3.31 s.
    assert ite_yellow(50) == pytest.approx(1 + 50 / 3.6 / 6)
    assert ite_yellow(20) == 3.0
    found = validate_plan(four_stage(), limits=PlanLimits(approach_speed_kmh=50))
    assert any("below the ITE yellow 3.4 s for a 50 km/h approach" in v for v in found), found
    ok = four_stage(yellow=3.5, cycle=92)
    assert validate_plan(ok, limits=PlanLimits(approach_speed_kmh=50)) == []
    found = validate_plan(four_stage(), limits=PlanLimits(crossing_m=12))
    assert any("too short for a 12 m crossing" in v for v in found)


def test_with_splits_and_offset() -> None:
    plan = four_stage()
    new = plan.with_splits([40, 10, 30, 10])
    assert new.cycle == 90 + 20 and validate_plan(new) == []
    with pytest.raises(WulinError, match="3 greens given for 4 stages"):
        plan.with_splits([1, 2, 3])
    assert plan.with_offset(100).offset == 10


def test_diff_and_change_size() -> None:
    a = four_stage()
    b = a.with_splits([34, 10, 21, 5])
    assert diff_plans(a, a) == []
    lines = diff_plans(a, b)
    assert "stage 0 green: 30 -> 34" in lines and "stage 2 green: 25 -> 21" in lines
    assert change_size(a, b) == 4
    assert change_size(a, a.with_offset(85)) == 15  # the short way round the cycle
    other = TimingPlan(**{**a.__dict__, "stages": a.stages[::-1]})  # type: ignore[arg-type]
    assert change_size(a, other) == float("inf")


def test_sumo_phases() -> None:
    plan = TimingPlan(
        "J", 50, 0, (PlanStage("A", "GGgr", 20), PlanStage("B", "rGrG", 20)), yellow=3, all_red=2
    )
    phases = plan.sumo_phases()
    assert [(d, s) for d, s, _ in phases] == [
        (20, "GGgr"),
        (3, "yGyr"),
        (2, "rGrr"),  # link 1 stays green into stage B
        (20, "rGrG"),
        (3, "rGry"),
        (2, "rGrr"),  # and on into stage A again
    ]
    assert sum(d for d, _, _ in phases) == plan.cycle
    xml = plans_to_additional([plan])
    assert xml.count("<tlLogic") == 1 and 'offset="0"' in xml and 'programID="wulin"' in xml


def test_from_sumo_phases_roundtrip() -> None:
    plan = four_stage()
    back = TimingPlan.from_sumo_phases("J1", [(d, s) for d, s, _ in plan.sumo_phases()], offset=10)
    assert [s.state for s in back.stages] == [s.state for s in plan.stages]
    assert back.splits == plan.splits and back.cycle == plan.cycle and back.offset == 10
    with pytest.raises(WulinError, match="no green phase"):
        TimingPlan.from_sumo_phases("J1", [(3, "yyrr"), (2, "rrrr")])


@settings(max_examples=60, deadline=None)
@given(
    greens=st.lists(st.integers(5, 60), min_size=2, max_size=6),
    offset=st.integers(0, 500),
    yellow=st.sampled_from([3, 3.5, 4]),
    all_red=st.sampled_from([1, 1.5, 2, 3]),
)
def test_property_generated_plans_validate_and_roundtrip(
    greens: list[int], offset: int, yellow: float, all_red: float
) -> None:
    n = len(greens)
    stages = tuple(
        PlanStage(f"s{k}", "".join("G" if i == k else "r" for i in range(n)), g)
        for k, g in enumerate(greens)
    )
    cycle = sum(greens) + n * (yellow + all_red)
    plan = TimingPlan("J", cycle, offset % cycle, stages, yellow=yellow, all_red=all_red)
    back = TimingPlan.from_json(plan.to_json())
    assert back == plan and back.plan_hash() == plan.plan_hash()
    found = validate_plan(plan)
    assert (40 <= cycle <= 180) == (found == []), found
    assert sum(d for d, _, _ in plan.sumo_phases()) == pytest.approx(cycle)


def test_schedule() -> None:
    s = TimeOfDaySchedule("J1", (("00:00", "night"), ("07:00", "am"), ("09:30", "day")))
    assert (
        s.plan_at("06:59") == "night"
        and s.plan_at("07:00") == "am"
        and s.plan_at(9.5 * 3600) == "day"
    )
    assert s.plan_at("23:59") == "day"
    assert TimeOfDaySchedule.from_json(s.to_json()) == s
    assert s.schedule_hash() == TimeOfDaySchedule.from_json(s.to_json()).schedule_hash()
    with pytest.raises(WulinError, match="first entry must be at"):
        TimeOfDaySchedule("J1", (("01:00", "a"),))
    with pytest.raises(WulinError, match="sort the entries"):
        TimeOfDaySchedule("J1", (("00:00", "a"), ("09:00", "b"), ("08:00", "c")))
    with pytest.raises(WulinError, match="expected a time"):
        TimeOfDaySchedule("J1", (("00:00", "a"), ("25:00", "b")))
    with pytest.raises(WulinError, match="sched.json"):
        TimeOfDaySchedule.from_json('{"signal_id": "J1", "entries": [["00:00"]]}', "sched.json")


def test_network_program_plan_runs_in_sumo(tmp_path: Path) -> None:
    """A plan built from the grid's own program exports to tlLogic and SUMO runs it."""
    import libsumo

    from sim.scenario import load_scenario
    from sim.simulation import Simulation
    from sim.topology import load_signal_specs

    spec = load_signal_specs(GRID_NET)["B1"]
    base = TimingPlan.from_sumo_phases(
        spec.id, [(p.duration, p.state) for p in spec.phases], spec.offset
    )
    assert validate_plan(base, spec.conflicts, PlanLimits(min_all_red=0)) == []
    plan = base.with_splits([30, 30]).with_offset(7)
    plan = TimingPlan(**{**plan.__dict__, "all_red": 1, "cycle": plan.cycle + 2})  # type: ignore[arg-type]
    assert validate_plan(plan, spec.conflicts) == []
    add = tmp_path / "plan.add.xml"
    add.write_text(plans_to_additional([plan]))
    with Simulation(load_scenario("grid-am-v1"), seed=1, additional_files=[add]) as sim:
        sim.step_until(sim.scenario.begin + 2 * plan.cycle)
        assert libsumo.trafficlight.getProgram("B1") == "wulin"
        logic = libsumo.trafficlight.getAllProgramLogics("B1")
        ours = next(lg for lg in logic if lg.programID == "wulin")
        assert [p.state for p in ours.phases] == [s for _, s, _ in plan.sumo_phases()]
        assert sum(p.duration for p in ours.phases) == plan.cycle
