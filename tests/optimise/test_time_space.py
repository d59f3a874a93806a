"""The optimiser's corridor diagrams and bandwidth table, written for two plan sets on the tiny grid."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from controllers.fixed_time import plan_from_spec
from controllers.plan import TimingPlan
from optimise.periods import Period
from optimise.time_space import corridor_report, corridors_for
from sim.scenario import Scenario
from sim.state import DistrictLayout
from sim.topology import load_signal_specs


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) > 1000
    return struct.unpack(">II", data[16:24])


def _through_start(plan: TimingPlan, links: tuple[int, ...]) -> tuple[float, float]:
    """Start (in the cycle, from stage 0) and length of the stage giving the links green."""
    k = next(k for k, st in enumerate(plan.stages) if any(st.state[i] in "Gg" for i in links))
    return plan.stage_starts[k], plan.stages[k].green


def test_diagrams_and_table_for_current_and_progressed_plans(tiny_scenario: Scenario, tiny_period: Period,
                                                             tmp_path: Path) -> None:
    specs = list(DistrictLayout.from_specs(load_signal_specs(tiny_scenario.net_file)).specs)
    corridors = corridors_for(tiny_scenario, tiny_period, specs)
    assert corridors and all(len(c.forward.signals) == 2 for c in corridors)
    current = [plan_from_spec(sp) for sp in specs]
    by_id = {p.signal_id: p for p in current}
    # "optimised": the first corridor's forward direction given a perfect green wave
    d = corridors[0].forward
    (a, b), (la, lb) = d.signals, d.links
    sa, ga = _through_start(by_id[a], la)
    sb, gb = _through_start(by_id[b], lb)
    by_id[b] = by_id[b].with_offset(by_id[a].offset + sa + d.travel_times[0] - sb)
    assert by_id[a].cycle == by_id[b].cycle
    after = [by_id[p.signal_id] for p in current]

    rep = corridor_report(tmp_path, corridors, current, after, tiny_period, "tiny P")
    assert len(rep.files) == len(corridors) and len(rep.rows) == sum(len(c.directions) for c in corridors)
    for name, c in zip(rep.files, corridors, strict=True):
        assert name.startswith("time_space_") and f"![{c.name}]({name})" in rep.markdown
        # figure size 12 x (3.2 + 0.25 per signal) inches at 100 dpi
        assert _png_size(tmp_path / name) == (1200, round(100 * (3.2 + 0.25 * len(c.forward.signals))))
    row = rep.rows[0]
    assert (row.corridor, row.heading, row.signals) == (corridors[0].name, d.heading, d.signals)
    assert row.after == pytest.approx(min(ga, gb), abs=0.01) and row.before <= row.after  # offsets: ms
    assert f"| {row.corridor} | {row.heading} | {a} ... {b} (2) |" in rep.markdown
    assert f"{row.before:.1f} -> {row.after:.1f} |" in rep.markdown
