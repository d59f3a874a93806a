"""``wulin tune``: the search on a tiny network, resume after a kill, the tuned file and bad inputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments.compare import comparison_spec, describe_params
from experiments.tuned import effective_params, load_tuned, tuned_path
from experiments.tuning import Measured, space_for, tune
from sim.errors import WulinError
from sim.scenario import Scenario, load_scenario
from tests.conftest import make_grid_network, write_scenario

REPO = Path(__file__).resolve().parents[2]
FLOWS = [("left0A0", "B0right0", 300), ("right1B1", "A1left1", 300),
         ("bottom0A0", "A1top0", 250), ("top1B1", "B0bottom1", 250)]


@pytest.fixture
def own_tiny(tmp_path: Path) -> Scenario:
    """A tiny scenario of this test's own (its tuned/ folder is written by the test)."""
    folder = tmp_path / "net"
    folder.mkdir()
    return write_scenario(folder, make_grid_network(folder), FLOWS, end=400, warmup=30)


def fake(params: dict) -> Measured:
    """A deterministic objective, lowest at min_green = 12 (no SUMO)."""
    v = 30.0 + abs(float(params.get("min_green", 10.0)) - 12.0) \
        + 0.1 * float(params.get("decision_interval", 5))
    return Measured(v, (v, v), (0.0, 0.0))


def test_tune_three_trials_on_a_tiny_network_saves_a_tuned_file(own_tiny: Scenario,
                                                                  tmp_path: Path) -> None:
    res = tune(str(own_tiny.source), "max-pressure", trials=3, seeds=[1], study_dir=tmp_path / "st")
    study = json.loads((tmp_path / "st" / "study.json").read_text())
    assert study["defaults"]["value"] > 0 and len(study["trials"]) == 3
    assert all(t["value"] > 0 and t["per_seed"] for t in study["trials"])
    values = [t["value"] for t in study["trials"]] + [study["defaults"]["value"]]
    assert res.best.value == min(values)
    from experiments.tuned import save_tuned
    from experiments.tuning import tuned_entry

    path = save_tuned(own_tiny, "max-pressure", tuned_entry(res, "wulin tune ..."))
    assert path == tuned_path(own_tiny) == own_tiny.network_dir / "tuned" / "tiny-test-v1.toml"
    entry = load_tuned(own_tiny).controllers["max-pressure"]  # type: ignore[union-attr]
    assert entry.params == res.best.params and entry.trials == 3 and entry.seeds == (1,)
    assert entry.default_value == pytest.approx(study["defaults"]["value"], abs=1e-3)
    # experiments use them by default; given parameters win; --defaults turns them off
    assert effective_params(own_tiny, "max-pressure", {"min_green": 9}) == \
        {**res.best.params, "min_green": 9}
    spec = comparison_spec(str(own_tiny.source), ["field", "max-pressure"], [5])
    assert spec.tuned_params.get(spec.scenarios[0], {}).get("max-pressure", {}) == res.best.params
    assert "tuned" not in spec.to_dict()
    off = comparison_spec(str(own_tiny.source), ["max-pressure"], [5], tuned=False)
    assert off.tuned_params == {} and off.to_dict()["tuned"] is False
    assert any("--defaults" in line for line in describe_params(off))


def test_the_tuned_run_is_the_run_of_the_tuned_parameters(own_tiny: Scenario,
                                                          tmp_path: Path) -> None:
    """An experiment's run with the tuned file equals a run with the parameters given."""
    from experiments.compare import run_comparison
    from experiments.tuned import TunedController, save_tuned

    params = {"decision_interval": 3, "min_green": 7.0, "pressure": "queue"}
    save_tuned(own_tiny, "max-pressure", TunedController(
        params=params, tuned_value=1.0, default_value=2.0, seeds=(1,), trials=1))
    tuned = run_comparison(comparison_spec(str(own_tiny.source), ["max-pressure"], [1]),
                           workers=1, progress=False)
    given = run_comparison(comparison_spec(str(own_tiny.source), ["max-pressure"], [1],
                                           tuned=False, controller_params={"max-pressure": params}),
                           workers=1, progress=False)
    default = run_comparison(comparison_spec(str(own_tiny.source), ["max-pressure"], [1],
                                             tuned=False), workers=1, progress=False)
    mtl = [r.runs["mean_time_loss"].iloc[0] for r in (tuned, given, default)]
    assert mtl[0] == mtl[1] != mtl[2]


def test_an_interrupted_search_resumes_to_the_same_trials(own_tiny: Scenario, tmp_path: Path) -> None:
    whole = tune(str(own_tiny.source), "max-pressure", trials=6, seeds=[1, 2],
                 study_dir=tmp_path / "whole", evaluate=fake)
    calls = []

    def dies_at_third(params: dict) -> Measured:
        calls.append(params)
        if len(calls) == 4:  # the defaults, two trials, then the third trial's run is killed
            raise KeyboardInterrupt
        return fake(params)

    with pytest.raises(KeyboardInterrupt):
        tune(str(own_tiny.source), "max-pressure", trials=6, seeds=[1, 2],
             study_dir=tmp_path / "cut", evaluate=dies_at_third)
    kept = json.loads((tmp_path / "cut" / "study.json").read_text())
    assert len(kept["trials"]) == 2  # the finished trials were saved as they finished
    again = tune(str(own_tiny.source), "max-pressure", trials=6, seeds=[1, 2],
                 study_dir=tmp_path / "cut", evaluate=fake)
    assert [t.params for t in again.study.trials] == [t.params for t in whole.study.trials]
    assert (again.best.number, again.best.value) == (whole.best.number, whole.best.value)
    assert not list((tmp_path / "cut").glob(".*tmp*"))  # atomic writes leave nothing behind


@pytest.mark.slow
def test_wulin_tune_killed_with_sigkill_resumes(own_tiny: Scenario, tmp_path: Path) -> None:
    """The real command, killed by SIGKILL mid-search, finishes when run again."""
    study = tmp_path / "st"
    cmd = [sys.executable, "-m", "wulin", "tune", str(own_tiny.source), "-c", "sotl",
           "--trials", "4", "--seeds", "1", "--study", str(study), "--no-save"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        f = study / "study.json"
        if f.is_file() and len(json.loads(f.read_text())["trials"]) >= 1:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = len(json.loads((study / "study.json").read_text())["trials"])
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    done = json.loads((study / "study.json").read_text())
    assert 1 <= partial <= 4 and len(done["trials"]) == 4
    assert [t["number"] for t in done["trials"]] == [0, 1, 2, 3]


@pytest.mark.parametrize(("ranges", "message"), [
    ({"min_greem": "5:10"}, "has no tunable parameter 'min_greem'; its parameters: decision_interval"),
    ({"min_green": "20:5"}, "empty or inverted"),
    ({"min_green": "5:5"}, "empty or inverted"),
    ({"min_green": "nan:10"}, "two finite numbers"),
    ({"min_green": "5:inf"}, "two finite numbers"),
    ({"min_green": "5"}, "expected LOW:HIGH"),
    ({"decision_interval": "2.5:6"}, "integer"),
    ({"pressure": "count,speed"}, "choose from count, queue"),
])
def test_bad_ranges_are_one_clear_error(ranges: dict, message: str) -> None:
    with pytest.raises(WulinError, match=message.replace("(", r"\(")):
        space_for("max-pressure", ranges)


def test_a_given_range_replaces_the_default() -> None:
    space = space_for("sotl", {"theta": "20:40", "decision_interval": "1:3"})
    assert (space["theta"].low, space["theta"].high, space["theta"].step) == (20.0, 40.0, 5)
    assert space["decision_interval"].kind == "int" and space["decision_interval"].high == 3
    assert space_for("max-pressure", {"min_green": "5.3:9"})["min_green"].step is None
    with pytest.raises(WulinError, match="no search space; tunable: actuated"):
        space_for("field")


def test_a_longer_study_is_judged_on_the_budget_asked(own_tiny: Scenario, tmp_path: Path) -> None:
    long = tune(str(own_tiny.source), "max-pressure", trials=6, seeds=[1], study_dir=tmp_path / "s",
                evaluate=fake)
    short = tune(str(own_tiny.source), "max-pressure", trials=2, seeds=[1],
                 study_dir=tmp_path / "s", evaluate=fake)
    assert len(short.study.trials) == 6 and short.budget == 2
    first_two = [t.value for t in long.study.trials[:2]] + [long.study.defaults.value]
    assert short.best.value == min(first_two)


def test_a_study_folder_of_another_search_is_refused(own_tiny: Scenario, tmp_path: Path) -> None:
    tune(str(own_tiny.source), "max-pressure", trials=2, seeds=[1], study_dir=tmp_path / "s",
         evaluate=fake)
    with pytest.raises(WulinError, match="holds a study made with other seeds"):
        tune(str(own_tiny.source), "max-pressure", trials=3, seeds=[1, 2],
             study_dir=tmp_path / "s", evaluate=fake)
    (tmp_path / "s" / "study.json").write_text('{"format": "wulin.tune-study/1", "scen')
    with pytest.raises(WulinError, match="study.json"):
        tune(str(own_tiny.source), "max-pressure", trials=3, seeds=[1],
             study_dir=tmp_path / "s", evaluate=fake)


def test_trials_the_controller_refuses_fail_without_ending_the_search(own_tiny: Scenario,
                                                                      tmp_path: Path) -> None:
    def nan_or_refused(params: dict) -> Measured:
        if params and float(params["theta"]) > 100:
            raise WulinError("sotl: refused")
        return Measured(float("nan"), (), ()) if params and float(params["mu"]) > 5 \
            else Measured(10.0 + float(params.get("theta", 60)) / 100, (1.0,), (0.0,))

    res = tune(str(own_tiny.source), "sotl", trials=8, seeds=[1], study_dir=tmp_path / "s",
               evaluate=nan_or_refused)
    errors = [t.error for t in res.study.trials if t.value is None]
    assert all(e in ("sotl: refused", "no vehicle measured (NaN)") for e in errors)
    assert res.best.value is not None


def test_a_bad_tuned_file_names_file_and_field(own_tiny: Scenario) -> None:
    path = tuned_path(own_tiny)
    path.parent.mkdir(parents=True)
    entry = ('objective = "mean_time_loss"\ntuned_value = 1.0\ndefault_value = 2.0\n'
             'seeds = [1]\ntrials = 1\n')
    path.write_text(f'scenario = "tiny-test-v1"\n[controllers.sotl]\nparams = {{ thetaa = 3.0 }}\n{entry}')
    with pytest.raises(WulinError, match=r"tiny-test-v1.toml.*controllers.sotl.params.*thetaa"):
        load_tuned(own_tiny)
    path.write_text(f'scenario = "tiny-test-v1"\n[controllers.nope]\nparams = {{}}\n{entry}')
    with pytest.raises(WulinError, match="unknown controller 'nope'"):
        load_tuned(own_tiny)
    path.write_text(f'scenario = "tiny-test-v1"\n[controllers.sotl]\nparams = {{}}\n'
                    f'{entry.replace("1.0", "nan")}')
    with pytest.raises(WulinError, match="tuned_value"):
        load_tuned(own_tiny)
    path.write_text(f'scenario = "other-v1"\n[controllers.sotl]\nparams = {{}}\n{entry}')
    with pytest.raises(WulinError, match="names scenario 'other-v1'"):
        load_tuned(own_tiny)


def test_the_cli_refuses_bad_inputs_in_one_line(own_tiny: Scenario, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for extra, message in ((["--range", "min_green=9:3"], "inverted"),
                           (["--range", "bogus=1:2"], "no tunable parameter 'bogus'"),
                           (["--seeds", "1,x"], "comma-separated integers"),
                           (["--trials", "0"], "at least 1")):
        out = subprocess.run([sys.executable, "-m", "wulin", "tune", str(own_tiny.source),
                              "-c", "max-pressure", "--study", str(tmp_path / "s"), *extra],
                             env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


def test_max_pressure_queue_variant_is_a_valid_controller(grid_scenario: Scenario) -> None:
    from controllers.base import check_controller, make_controller, random_states
    from sim.state import DistrictLayout
    from sim.topology import load_signal_specs

    ctl = make_controller("max-pressure", pressure="queue")
    check_controller(ctl, grid_scenario)
    layout = DistrictLayout.from_specs(load_signal_specs(grid_scenario.net_file))
    states = random_states(layout, 30, seed=3)
    count = make_controller("max-pressure")
    ctl.reset(layout, 0)
    count.reset(layout, 0)
    differ = [not (ctl.act(s) == count.act(s)).all() for s in states]
    assert any(differ)  # queues are not counts, so some decisions differ
    with pytest.raises(WulinError, match="pressure must be 'count' or 'queue'"):
        make_controller("max-pressure", pressure="speed")


def test_shipped_tuned_files_load() -> None:
    """Every tuned file committed next to a network is valid and names its scenario."""
    for path in sorted((REPO / "networks").glob("*/tuned/*.toml")):
        tuned = load_tuned(load_scenario(path.stem))
        assert tuned is not None and tuned.controllers
        for entry in tuned.controllers.values():
            assert entry.tuned_value <= entry.default_value and entry.command.startswith("wulin tune")
