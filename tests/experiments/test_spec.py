"""Experiment declarations: what loads, and errors that name the line and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.spec import load_spec, parse_spec
from sim.errors import WulinError
from sim.scenario import Scenario

from .conftest import SHORT, spec_text, write_spec


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(WulinError) as exc:
        load_spec(write_spec(tmp_path, text))
    return str(exc.value)


def test_valid_spec_expands_to_runs(tmp_path: Path, tiny_scenario: Scenario) -> None:
    spec = load_spec(write_spec(tmp_path, spec_text(tiny_scenario, SHORT, seeds="3")))
    assert spec.seeds == (1, 2, 3)
    assert [v.name for v in spec.variations] == ["base", "closed"]
    assert spec.baseline == "field"
    runs = spec.runs()
    assert len(runs) == 2 * 2 * 3
    assert len({r.run_id for r in runs}) == len(runs)
    assert runs[0].run_id == "tiny-test-v1--base--field--s1"
    closure = spec.variations[1].closures[0]
    assert closure.lanes == ("A0B0_0",) and closure.at == 100.0 and closure.duration == 120.0


def test_no_variation_means_base(tmp_path: Path, tiny_scenario: Scenario) -> None:
    spec = load_spec(write_spec(tmp_path, spec_text(tiny_scenario)))
    assert [v.name for v in spec.variations] == ["base"]


def test_unknown_field_names_line_and_suggestion(tmp_path: Path, tiny_scenario: Scenario) -> None:
    text = spec_text(tiny_scenario, SHORT.replace('name = "base"\n', 'name = "base"\nsclae = 1.2\n'))
    msg = _error(tmp_path, text)
    line = text.splitlines().index("sclae = 1.2") + 1
    assert f"line {line}" in msg and "variations[0].sclae" in msg and "did you mean 'scale'" in msg


def test_unknown_controller(tmp_path: Path, tiny_scenario: Scenario) -> None:
    msg = _error(tmp_path, spec_text(tiny_scenario, controllers='["field", "max-presure"]'))
    assert "line 3" in msg and "max-presure" in msg and "did you mean 'max-pressure'" in msg


def test_lane_not_in_network(tmp_path: Path, tiny_scenario: Scenario) -> None:
    text = spec_text(tiny_scenario, SHORT.replace('"A0B0_0"', '"nowhere_0"'))
    msg = _error(tmp_path, text)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "nowhere_0" in ln)
    assert f"line {line}" in msg and "nowhere_0" in msg and "fix the id" in msg


def test_event_outside_window(tmp_path: Path, tiny_scenario: Scenario) -> None:
    msg = _error(tmp_path, spec_text(tiny_scenario, SHORT.replace("at = 100", "at = 400")))
    assert "closures[0].at" in msg and "00:05" in msg


def test_signal_failure_unknown_signal(tmp_path: Path, tiny_scenario: Scenario) -> None:
    body = '[[variations]]\nname = "fail"\n[[variations.signal_failures]]\nsignal = "Z9"\nat = 60\n'
    msg = _error(tmp_path, spec_text(tiny_scenario, body))
    assert "line 8" in msg and "Z9" in msg and "A0" in msg  # the signal = line


def test_incident_needs_duration(tmp_path: Path, tiny_scenario: Scenario) -> None:
    body = '[[variations]]\nname = "inc"\n[[variations.incidents]]\nlane = "A0B0_0"\nat = 60\n'
    msg = _error(tmp_path, spec_text(tiny_scenario, body))
    assert "incidents[0].duration" in msg and "add duration" in msg


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("seeds = [1, 1]", "listed twice"),
        ("seeds = [1.5]", "integer seeds"),
        ('baseline = "sotl"', "not one of the experiment's controllers"),
        ('test = "anova"', "t-test, wilcoxon"),
    ],
)
def test_top_level_errors(tmp_path: Path, tiny_scenario: Scenario, change: str, expected: str) -> None:
    key = change.split(" =")[0]
    lines = [ln for ln in spec_text(tiny_scenario).splitlines() if not ln.startswith(key)]
    text = "\n".join([*lines, change]) + "\n"
    msg = _error(tmp_path, text)
    assert expected in msg and f"line {len(lines) + 1}" in msg


def test_duplicate_variation_and_missing_plan(tmp_path: Path, tiny_scenario: Scenario) -> None:
    msg = _error(tmp_path, spec_text(tiny_scenario, '[[variations]]\nname = "a"\n[[variations]]\nname = "a"\n'))
    assert "used twice" in msg and "line 8" in msg  # the second name = line
    msg = _error(tmp_path, spec_text(tiny_scenario, '[[variations]]\nname = "p"\nplan = "nope.json"\n'))
    assert "nope.json" in msg and "not found" in msg and "line 7" in msg


def test_unknown_scenario_and_bad_toml(tmp_path: Path) -> None:
    msg = _error(tmp_path, 'scenarios = ["grid-am-v9"]\ncontrollers = ["field"]\n')
    assert "line 1" in msg and "grid-am-v1" in msg  # suggests the known id
    with pytest.raises(WulinError, match="invalid TOML"):
        parse_spec("scenarios = [\n")


def test_window_and_scale_make_effective_scenario(tiny_scenario: Scenario) -> None:
    from experiments.spec import Variation, effective_scenario

    sc = effective_scenario(tiny_scenario, Variation("w", scale=1.5, window=(60.0, 360.0), warmup=30.0))
    assert (sc.begin, sc.end, sc.warmup, sc.scale) == (60.0, 360.0, 30.0, 1.5)
    assert effective_scenario(tiny_scenario, Variation("base")) == tiny_scenario


@pytest.mark.parametrize(
    ("body", "needle"),
    [('[[variations]]\nname = "a"\nwarmup = nan\n', "variations[0].warmup': nan is not a finite number"),
     ('[[variations]]\nname = "a"\n[[variations.incidents]]\nlane = "A0B0_0"\nat = 60\nduration = inf\n',
      "incidents[0].duration': inf is not a finite number"),
     ('[[variations]]\nname = "a"\nscale = "2"\n', "variations[0].scale' must be a number"),
     ('[[variations]]\nname = "a"\nwindow = [300, 60]\n', "must be after begin"),
     ('[[variations]]\nname = "a"\n[[variations.closures]]\nat = 60\n', "a closure needs lanes"),
     ("seeds = " + "9" * 400 + "\n", "too large")],
)
def test_non_finite_and_malformed_values_are_refused(tmp_path: Path, tiny_scenario: Scenario, body: str,
                                                     needle: str) -> None:
    text = spec_text(tiny_scenario, body) if not body.startswith("seeds") else spec_text(tiny_scenario, seeds=body[8:-1])
    assert needle in _error(tmp_path, text)


def test_long_name_refused(tmp_path: Path, tiny_scenario: Scenario) -> None:
    assert "field 'name'" in _error(tmp_path, spec_text(tiny_scenario, name="x" * 5000))


def test_resolved_json_reads_back_into_the_model(tmp_path: Path, tiny_scenario: Scenario) -> None:
    import json

    from experiments.spec import read_resolved

    spec = load_spec(write_spec(tmp_path, spec_text(tiny_scenario, SHORT)))
    (tmp_path / "resolved.json").write_text(json.dumps(spec.to_dict()))
    back = read_resolved(tmp_path / "resolved.json")
    assert back.variations == spec.variations and back.seeds == spec.seeds and back.source == spec.source
    assert back.to_dict() == spec.to_dict()
    bad = spec.to_dict()
    bad["variations"][1]["closures"][0]["duration"] = -1
    (tmp_path / "resolved.json").write_text(json.dumps(bad))
    with pytest.raises(WulinError, match=r"resolved.json: field 'variations\[1\].closures\[0\].duration' must be > 0"):
        read_resolved(tmp_path / "resolved.json")
