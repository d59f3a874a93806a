"""Evidence shaped for display: a plan set's verification run shows its schedule."""

from __future__ import annotations

from console.evidence import view


def test_evidence_shows_a_plan_sets_schedule() -> None:
    v = view({"kind": "verification", "seeds": "1,2,3", "schedule": [["00:00", "night"], ["07:00", "am"]],
              "kpis": {"mean_time_loss (schedule)": {"mean": 61.2, "ci": 1.5}}})
    assert ("schedule", "00:00 night, 07:00 am") in v.facts and ("seeds", "1,2,3") in v.facts
    assert v.kpis[0].name == "mean_time_loss (schedule)" and v.kpis[0].low == 59.7
