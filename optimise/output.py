"""What ``wulin plan optimise`` leaves in its folder, every file written atomically.

::

    OUT/plans/<PERIOD>/<signal>.json   the optimised plan (TimingPlan JSON, checked)
    OUT/plans/current/<signal>.json    the plan that runs outside the periods (the network's)
    OUT/schedules/<signal>.json        TimeOfDaySchedule: current plan at 00:00, the optimised
                                       plan at each period's start, current again at its end
    OUT/<PERIOD>/changes.md            per signal: cycle, splits, offset, current -> optimised;
                                       the main corridors' through bandwidths and diagrams
    OUT/<PERIOD>/convergence.png       best and mean objective per generation
    OUT/<PERIOD>/time_space_<corridor>.png  before/after time-space diagram (optimise.time_space)
    OUT/<PERIOD>/result.json           objectives (screen, SUMO), warm starts, timings
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controllers.plan import TimeOfDaySchedule, TimingPlan
from experiments.durable import write_bytes_atomic, write_text_atomic
from sim.clock import format_clock

if TYPE_CHECKING:
    from optimise.periods import Period

CURRENT = "current"


def plan_text(plan: TimingPlan) -> str:
    """The indented JSON :meth:`TimingPlan.save` writes (same plan and hash when loaded)."""
    return json.dumps(plan.to_dict(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def write_plans(folder: Path, plans: Sequence[TimingPlan]) -> None:
    """One JSON file per signal, plus ``all.json`` (the list, for ``fixed-time``'s ``plans``)."""
    folder.mkdir(parents=True, exist_ok=True)
    for p in plans:
        write_text_atomic(folder / f"{p.signal_id}.json", plan_text(p))


def write_plan_list(path: Path, plans: Sequence[TimingPlan]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps([p.to_dict() for p in plans], sort_keys=True, indent=1) + "\n")


def schedule(signal_id: str, current: TimingPlan, optimised: dict[Period, TimingPlan]) -> TimeOfDaySchedule:
    """Current plan at 00:00, each period's plan from its start, current again at its end."""
    entries: dict[str, str] = {"00:00": current.plan_hash()}
    for period, plan in sorted(optimised.items(), key=lambda kv: kv[0].start):
        entries[period.clock] = plan.plan_hash()
        end = format_clock(period.end % 86400)[:5]
        if end not in entries and period.end < 86400:
            entries[end] = current.plan_hash()
    return TimeOfDaySchedule(signal_id, tuple(sorted(entries.items())))


def write_schedules(out: Path, current: Sequence[TimingPlan],
                    optimised: dict[Period, list[TimingPlan]]) -> None:
    folder = out / "schedules"
    folder.mkdir(parents=True, exist_ok=True)
    for s, cur in enumerate(current):
        sch = schedule(cur.signal_id, cur, {p: plans[s] for p, plans in optimised.items()})
        write_text_atomic(folder / f"{cur.signal_id}.json", sch.to_json() + "\n")


def change_table(old: Sequence[TimingPlan], new: Sequence[TimingPlan]) -> str:
    """Markdown: per signal, cycle / greens / offset, old -> new."""
    rows = ["| signal | cycle s | greens s | offset s |", "|---|---|---|---|"]
    for a, b in zip(old, new, strict=True):
        ga = "/".join(f"{s.green:g}" for s in a.stages)
        gb = "/".join(f"{s.green:g}" for s in b.stages)
        rows.append(f"| {a.signal_id} | {a.cycle:g} -> {b.cycle:g} | {ga} -> {gb} | {a.offset:g} -> {b.offset:g} |")
    return "\n".join(rows) + "\n"


def convergence_plot(path: Path, history: list[dict[str, float]], title: str) -> None:
    """Best-so-far and generation-mean objective per generation (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=110)
    gens = [h["generation"] for h in history]
    ax.plot(gens, [h["mean"] for h in history], color="0.6", label="generation mean")
    ax.plot(gens, [h["best"] for h in history], color="C0", lw=2, label="best so far")
    ax.set_xlabel("generation")
    ax.set_ylabel("screen objective (s/veh)")
    ax.set_title(title)
    ax.legend()
    save_png(fig, path)


def save_png(fig: Any, path: Path, layout: bool = True) -> None:
    """Write a matplotlib figure as PNG at its own size (figsize x dpi), atomically, and close it
    (``layout``: apply ``tight_layout`` first)."""
    import io

    import matplotlib.pyplot as plt

    if layout:
        fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, buf.getvalue())


def write_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)
