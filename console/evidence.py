"""Evidence on record for a plan, shaped for display: KPIs with confidence intervals, text, report.

Evidence is what ``wulin plan propose --evidence`` (or the console) attached: JSON such as an
experiment's comparison, or plain text such as ``wulin compare --markdown``.  A KPI row is any
mapping with a ``mean`` (and optionally ``ci`` / ``ci_low`` and ``ci_high``); a ``report``
entry names a file under the console's files folder, linked (never embedded from elsewhere).
A ``schedule`` given as ``[["HH:MM", plan], ...]`` (a plan set's verification run) is shown
as one fact, ``00:00 night, 07:00 am, ...``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SCALARS = (str, int, float, bool)


@dataclass(frozen=True)
class Kpi:
    """One KPI: its name, mean and 95 % confidence interval (None: not given)."""

    name: str
    mean: float
    low: float | None
    high: float | None


@dataclass(frozen=True)
class EvidenceView:
    """One evidence record as the plan page shows it."""

    kind: str
    added_by: str
    added_at: str
    facts: list[tuple[str, str]]
    kpis: list[Kpi]
    text: str | None
    report: str | None


def _kpi(name: str, value: Any) -> Kpi | None:
    if not isinstance(value, dict) or not isinstance(value.get("mean"), int | float):
        return None
    mean = float(value["mean"])
    if isinstance(value.get("ci"), int | float):
        return Kpi(name, mean, mean - float(value["ci"]), mean + float(value["ci"]))
    low, high = value.get("ci_low"), value.get("ci_high")
    return Kpi(name, mean, float(low) if isinstance(low, int | float) else None,
               float(high) if isinstance(high, int | float) else None)


def view(record: dict[str, Any]) -> EvidenceView:
    """The display form of one evidence record from :meth:`deploy.store.PlanStore.evidence`."""
    kpis: list[Kpi] = []
    source = record.get("kpis")
    if isinstance(source, dict):
        kpis = [k for name, v in source.items() if (k := _kpi(str(name), v)) is not None]
    elif isinstance(source, list):
        kpis = [k for v in source if isinstance(v, dict) and (k := _kpi(str(v.get("name", "?")), v)) is not None]
    skip = {"kpis", "text", "report", "added_by", "added_at", "kind"}
    facts = [(str(k), str(v)) for k, v in sorted(record.items()) if k not in skip and isinstance(v, SCALARS)]
    sched = record.get("schedule")
    if isinstance(sched, list) and all(isinstance(e, list) and len(e) == 2 for e in sched):
        facts.append(("schedule", ", ".join(f"{t} {p}" for t, p in sched)))
    report = record.get("report")
    return EvidenceView(str(record.get("kind", "evidence")), str(record.get("added_by", "")),
                        str(record.get("added_at", "")), facts, kpis,
                        record["text"] if isinstance(record.get("text"), str) else None,
                        report if isinstance(report, str) else None)
