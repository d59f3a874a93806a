"""Emergency and bus-priority declarations: what loads, bad inputs, a run with its KPIs and report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from experiments.spec import load_spec
from sim.errors import WulinError
from sim.scenario import Scenario

from .conftest import spec_text, write_spec

VEHICLES = """window = [0, 420]
warmup = 60
[[variations.emergency]]
route = ["left0A0", "A0B0", "B0right0"]
depart = 150
vehicle = "fire-engine"
repeats = 2
every = 60
"""
EMERGENCY = f"""
[[variations]]
name = "ev-only"
{VEHICLES}[variations.preemption]
enabled = false

[[variations]]
name = "ev-preempt"
{VEHICLES}[variations.preemption]
mode = "green-wave"
recovery = "short-way"
[variations.bus_priority]
max_extension = 10
"""


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(WulinError) as exc:
        load_spec(write_spec(tmp_path, text))
    return str(exc.value)


def test_declaration_loads(tmp_path: Path, tiny_scenario: Scenario) -> None:
    spec = load_spec(write_spec(tmp_path, spec_text(tiny_scenario, EMERGENCY)))
    v = spec.variation("ev-preempt")
    assert v.emergency[0].repeats == 2 and v.emergency[0].vehicle == "fire-engine"
    assert v.preemption is not None and v.preemption.mode == "green-wave"
    assert v.bus_priority is not None and v.bus_priority.max_extension == 10
    assert spec.variation("ev-only").preemption.enabled is False  # type: ignore[union-attr]


def test_conditional_priority_for_every_bus_loads(tmp_path: Path, tiny_scenario: Scenario) -> None:
    """``buses`` and ``max_queue`` reach the layer's settings unchanged."""
    from experiments.variations import _priority_layer

    text = EMERGENCY.replace("max_extension = 10", 'max_extension = 10\nbuses = "all"\nmax_queue = 1')
    v = load_spec(write_spec(tmp_path, spec_text(tiny_scenario, text))).variation("ev-preempt")
    layer, _ = _priority_layer(v, tmp_path / "work")
    assert layer.transit.buses == "all" and layer.transit.max_queue == 1


@pytest.mark.parametrize("old,new,field,words", [
    ('"A0B0", "B0right0"', '"A0B0", "nowhere"', "emergency[0].route", "nowhere"),
    ('"A0B0", "B0right0"', '"A0B0", "left0A0"', "emergency[0].route", "does not lead on"),
    ('vehicle = "fire-engine"', 'vehicle = "tank"', "emergency[0].vehicle", "ambulance"),
    ('recovery = "short-way"', 'recovery = "shortway"', "preemption.recovery", "did you mean"),
    ('mode = "green-wave"', 'mode = "wave"', "preemption.mode", "green-wave"),
    ("max_extension = 10", "max_extension = -1", "bus_priority.max_extension", ">= 0"),
    ("max_extension = 10", 'max_extension = 10\nbuses = "every"', "bus_priority.buses", "late, all"),
    ("max_extension = 10", "max_extension = 10\nmax_queue = -2", "bus_priority.max_queue", ">= 0"),
    ("max_extension = 10", 'max_extension = 10\nmax_queue = "few"', "bus_priority.max_queue", "number"),
    ("depart = 150", "depart = 5000", "emergency[0].depart", "not inside"),
    ("repeats = 2", "repeats = 0", "emergency[0].repeats", ">= 1"),
])
def test_bad_inputs_name_line_and_field(tmp_path: Path, tiny_scenario: Scenario, old: str, new: str,
                                        field: str, words: str) -> None:
    text = spec_text(tiny_scenario, EMERGENCY.replace(old, new, 1))
    msg = _error(tmp_path, text)
    assert field in msg and words in msg and "\n" not in msg.strip()
    assert "line " in msg and str(tmp_path) in msg


def test_min_green_below_plan_floor(tmp_path: Path, tiny_scenario: Scenario) -> None:
    text = spec_text(tiny_scenario, EMERGENCY.replace('mode = "green-wave"', "min_green = 2"))
    assert "preemption.min_green" in _error(tmp_path, text)


def test_preemption_without_vehicle(tmp_path: Path, tiny_scenario: Scenario) -> None:
    body = '[[variations]]\nname = "x"\n[variations.preemption]\nmode = "detection"\n'
    msg = _error(tmp_path, spec_text(tiny_scenario, body))
    assert "variations[0].preemption" in msg and "[[variations.emergency]]" in msg


@pytest.mark.slow
def test_run_reports_priority_kpis(tmp_path: Path, tiny_scenario: Scenario) -> None:
    from experiments.report import build_report
    from experiments.runner import run_experiment

    spec = load_spec(write_spec(tmp_path, spec_text(tiny_scenario, EMERGENCY, seeds="[1, 2]")))
    out = run_experiment(spec, tmp_path / "out", workers=1, progress=False)
    runs = pd.read_parquet(out / "runs.parquet")
    for col in ("ev_travel_time", "ev_stops", "clearance_violations", "general_time_loss",
                "cross_queue_peak"):
        assert runs[col].notna().all(), col
    assert (runs.clearance_violations == 0).all()
    pre = runs[runs.variation == "ev-preempt"]
    assert (pre.bus_priorities == 0).all()  # the tiny grid runs no bus: declared, nothing to do
    rid = pre.run_id.iloc[0]
    trace = pd.read_parquet(out / "runs" / rid / "ev_trace.parquet")
    assert set(trace.vehicle) == {"emergency0.0", "emergency0.1"}
    html = build_report(out).read_text()
    assert "Emergency vehicles and bus priority" in html and "data:image/png" in html
