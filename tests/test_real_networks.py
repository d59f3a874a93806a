"""What real networks hold: unused link indices, crossings, programs without amber, actuated
and 8-phase programs, right turns green in every phase (``tests/awkward_net.py``)."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from controllers.fixed_time import plan_from_spec
from controllers.plan import DEFAULT_LIMITS, validate_plan
from sim import amber
from sim.errors import WulinError
from sim.topology import ProgramPhase, SignalSpec, load_signal_specs
from tests.awkward_net import FLOWS, make_awkward_network
from tests.conftest import write_scenario


@pytest.fixture(scope="module")
def awkward(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_awkward_network(tmp_path_factory.mktemp("awkward"))


@pytest.fixture(scope="module")
def specs(awkward: Path) -> dict[str, SignalSpec]:
    return load_signal_specs(awkward)


def green_to_red(states: list[tuple[str, str]], spec: SignalSpec) -> list[tuple[int, str, str]]:
    """Vehicle links going from G/g straight to r/s between consecutive states."""
    return [(i, a, b) for (_, a), (_, b) in zip(states, states[1:], strict=False)
            for i in spec.link_movement if a[i] in "Gg" and b[i] in "rs"]


def test_ite_clearance_formula() -> None:
    v = 50 / 3.6
    c = amber.ite_clearance(v, 20.0)
    assert c.yellow == pytest.approx(3.4)  # 1 + 13.89 / 6 = 3.31 -> 3.4
    assert c.yellow + c.all_red == pytest.approx(6.0)  # all-red (20 + 5) / 13.89 = 1.8, to 6 s
    slow = amber.ite_clearance(5.0, 0.0)
    assert slow.yellow == 3.0 and slow.all_red == 1.0  # the minimums


def test_with_amber_red_transition_and_direct_change() -> None:
    clear = amber.Clearance(3.5, 1.5)
    used = range(4)
    red_transition = (ProgramPhase(30, "GGrr"), ProgramPhase(6, "rrrr"),
                      ProgramPhase(30, "rrGG"), ProgramPhase(6, "rrrr"))
    out = amber.with_amber(red_transition, used, clear)
    assert [(p.duration, p.state) for p in out] == [
        (30, "GGrr"), (3.5, "yyrr"), (2.5, "rrrr"), (30, "rrGG"), (3.5, "rryy"), (2.5, "rrrr")]
    direct = (ProgramPhase(30, "GGrr"), ProgramPhase(30, "rrGG"))
    out = amber.with_amber(direct, used, clear)
    assert [p.state for p in out] == ["GGrr", "yyrr", "rrrr", "rrGG", "rryy", "rrrr"]
    assert sum(p.duration for p in out) == 60 + 2 * 5
    proper = (ProgramPhase(30, "GGrr"), ProgramPhase(3, "yyrr"), ProgramPhase(30, "rrGG"),
              ProgramPhase(3, "rryy"))
    assert amber.with_amber(proper, used, clear) == proper
    # link 3 is a crossing (not in used): its walk ending needs no amber
    assert not amber.lacks_amber((ProgramPhase(30, "GGrG"), ProgramPhase(3, "yyrr")), range(3))


def test_unused_indices_and_crossings_keep_their_indices(specs: dict[str, SignalSpec]) -> None:
    a0 = specs["A0"]
    assert a0.n_links == 21 and a0.unused_links == (0, 17, 18, 19, 20)
    assert [m.index for m in a0.movements] == list(range(1, 17))
    assert all(len(st) == a0.n_links for st in a0.stages)
    assert not any(a0.conflicts[0]) and len(a0.conflicts) == 21
    for sid in ("A1", "B0", "B1"):
        assert specs[sid].unused_links == (16, 17, 18, 19)  # the four crossings
    # the crossings' walk ending (a phase differing only there) is not a stage of its own
    assert a0.n_stages == 2 and specs["B0"].n_stages == 2


def test_programs_without_amber_get_yellow_and_all_red(specs: dict[str, SignalSpec]) -> None:
    for spec in specs.values():
        assert spec.amber_inserted
        states = [(p.duration, p.state) for p in spec.phases]
        assert green_to_red(states + states[:1], spec) == []
        assert any("y" in p.state for p in spec.phases)
    assert specs["B0"].program_type == "actuated"
    assert specs["B1"].n_stages == 4  # the 8-phase program: 4 greens, each with its clearance


def test_right_turns_green_in_every_phase(specs: dict[str, SignalSpec]) -> None:
    a1 = specs["A1"]
    rights = [m.index for m in a1.movements if m.is_right]
    assert rights and all(a1.stages[k][i] == "g" for k in range(a1.n_stages) for i in rights)
    assert a1.n_stages == 2  # the all-red with the right turns green is no stage
    plan = plan_from_spec(a1)
    assert len(plan.stages) == 2 and plan.yellow == 3.4 and plan.all_red == 2.6


def test_plans_from_the_programs_are_valid(specs: dict[str, SignalSpec]) -> None:
    for spec in specs.values():
        plan = plan_from_spec(spec)
        assert plan.yellow >= 3 and plan.all_red >= 1
        problems = validate_plan(plan, spec.conflicts, DEFAULT_LIMITS.admitting_cycle(spec.cycle),
                                 unused=spec.unused_links)
        assert problems == [], (spec.id, problems)
    # without naming the unused links the check sees link 0 never green
    a0 = specs["A0"]
    assert any("never get green" in p for p in validate_plan(plan_from_spec(a0), a0.conflicts))


def test_said_once_per_network(awkward: Path, caplog: pytest.LogCaptureFixture) -> None:
    from sim import topology

    topology._TOLD.discard(str(awkward.resolve()))
    with caplog.at_level(logging.WARNING, logger="wulin"):
        load_signal_specs(awkward)
        load_signal_specs(awkward)
    said = [r for r in caplog.records if "green straight to red" in r.getMessage()]
    assert len(said) == 1 and "4 signal program(s)" in said[0].getMessage()


def test_webster_window_is_the_demands_active_window(awkward: Path) -> None:
    from controllers.webster.plans import default_window
    from sim.scenario import scenario_from_toml

    write_scenario(awkward.parent, awkward, FLOWS, sid="short-demand-v1", end=600)
    toml = awkward.parent / "scenarios" / "short-demand-v1.toml"
    toml.write_text(toml.read_text().replace("end = 600", "end = 1800"))
    sc = scenario_from_toml(toml)
    assert (sc.begin, sc.end) == (0, 1800)
    assert default_window(sc) == (0, 600)


def test_device_cycle_bounds(specs: dict[str, SignalSpec]) -> None:
    from dataclasses import replace

    from deploy.profile import (
        Capabilities,
        DeviceProfile,
        bounds_admitting,
        check_capabilities,
        single_ring_profile,
    )

    plan = plan_from_spec(specs["B1"])
    assert bounds_admitting(plan) is None  # 104 s: inside the agency's 40-180 s
    long = plan.with_splits([g.green + 40 for g in plan.stages])  # 264 s
    with pytest.raises(WulinError, match=r"signal 'B1'.*cycle 264 s .*0-255 s"):
        bounds_admitting(long)
    mid = plan.with_splits([g.green + 20 for g in plan.stages])  # 184 s
    assert bounds_admitting(mid) == (40, 184)
    prof = single_ring_profile("B1", 4, cycle_bounds=(40, 184))
    assert check_capabilities(mid, prof, Capabilities()) == []
    assert prof.plan_limits().max_cycle == 184
    tight = replace(prof, cycle_bounds=(40, 120))
    assert any("outside the 40-120 s" in p for p in check_capabilities(mid, tight, Capabilities()))
    assert "cycle_bounds" not in single_ring_profile("B1", 4).to_dict()
    assert DeviceProfile.from_json(prof.to_json()) == prof
    for bad, said in (([40, 300], "must be <= 255"), ([200, 40], "minimum is above the maximum")):
        data = {**prof.to_dict(), "cycle_bounds": bad}
        with pytest.raises(WulinError, match=said):
            DeviceProfile.from_dict(data, "b1.json")


def test_emulator_runs_the_networks_own_programs(specs: dict[str, SignalSpec]) -> None:
    from dataclasses import replace

    from deploy.emulator import ControllerEmulator
    from deploy.profile import bounds_admitting, single_ring_profile

    for sid, spec in specs.items():
        base = replace(plan_from_spec(spec), name="local (network program)")
        profile = single_ring_profile(sid, len(base.stages), cycle_bounds=bounds_admitting(base))
        emu = ControllerEmulator(profile, base)
        assert emu.active_pattern is not None


def test_nema_ring_phases_make_stages_together(tmp_path: Path) -> None:
    b1 = load_signal_specs(make_awkward_network(tmp_path, nema=True))["B1"]
    assert b1.program_type == "NEMA" and b1.amber_inserted
    # 1+5, 2+6, 3+7, 4+8: the opposing lefts, the NS throughs, ...
    assert b1.stages[0][:16] == "rrrGrrrrrrrGrrrr" and b1.stages[1][:16] == "GGGrrrrrGGGrrrrr"
    assert b1.n_stages == 4 and all(b1.conflicting_greens(st) == [] for st in b1.stages)


@pytest.mark.slow
@pytest.mark.parametrize("nema", [False, True])
def test_every_controller_without_green_to_red(tmp_path: Path, nema: bool) -> None:
    from controllers.base import available_controllers
    from experiments.episode import run_episode

    awkward = make_awkward_network(tmp_path, nema=nema)
    specs = load_signal_specs(awkward)
    folder = awkward.parent
    sc = write_scenario(folder, awkward, FLOWS, sid="awkward-v1", end=600)
    for name in available_controllers():
        if name == "policy":  # needs a trained run; it drives the same actuator as max-pressure
            continue
        dest = folder / f"tls-{name}.xml"
        add = folder / "tls-states.add.xml"
        add.write_text("<additional>" + "".join(
            f'<timedEvent type="SaveTLSStates" source="{s}" dest="{dest}"/>' for s in specs)
            + "</additional>")
        result = run_episode(sc, name, seed=1, additional_files=[add])
        assert len(result.trips) > 100, name
        seen: dict[str, list[tuple[str, str]]] = {}
        for ev in ET.parse(dest).getroot().iter("tlsState"):
            seen.setdefault(ev.get("id", ""), []).append((ev.get("time", ""), ev.get("state", "")))
        assert set(seen) == set(specs), name
        for sid, states in seen.items():
            assert green_to_red(states, specs[sid]) == [], (name, sid)
