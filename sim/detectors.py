"""Stop-line induction loops (E1) for measuring flows per controlled in-lane.

:func:`write_stopline_loops` writes an additional file with one E1 loop a metre before the
stop line of every controlled in-lane; it goes into a work folder, never into ``networks/``.
:class:`LaneCounter` reads the cumulative number of vehicles that crossed each loop, with one
libsumo getter per lane, at the caller's pace (once per decision, not per step).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr

import numpy as np

if TYPE_CHECKING:
    from sim.state import DistrictLayout

PREFIX = "wulin_sl_"
STOPBAR_PREFIX = "wulin_sb_"
STOPBAR_SETBACK_M = 3.0
"""A stop-bar presence loop's distance from the lane's end: inside the footprint of a car
standing at the stop line (its front stops about 1 m before the lane's end, exactly on a loop
at 1 m, which then never sees it)."""
_PERIOD = 10**6  # one interval for the whole run: interval counts are cumulative


def loop_id(lane: str, prefix: str = PREFIX) -> str:
    return f"{prefix}{lane}"


def write_stopline_loops(layout: DistrictLayout, path: Path, setback: float = 1.0, prefix: str = PREFIX) -> Path:
    """Write E1 loops ``setback`` metres before the stop line of every in-lane of ``layout`` to
    ``path`` (ids ``prefix + lane``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["<additional>"]
    for lane, length in zip(layout.in_lanes, layout.in_lane_length, strict=True):
        pos = max(float(length) - setback, 0.1)
        lines.append(
            f"    <inductionLoop id={quoteattr(loop_id(lane, prefix))} lane={quoteattr(lane)} "
            f'pos="{pos:.2f}" period="{_PERIOD}" file="NUL"/>'
        )
    lines.append("</additional>")
    path.write_text("\n".join(lines) + "\n")
    return path


class LaneCounter:
    """Cumulative stop-line counts per in-lane (layout order) from the loops above.

    Args:
        sim: A started simulation whose additional files include :func:`write_stopline_loops`.
        layout: The same layout.
    """

    def __init__(self, sim: Any, layout: DistrictLayout) -> None:
        self.sim = sim
        self.ids = [loop_id(lane) for lane in layout.in_lanes]
        self.counts = np.zeros(len(self.ids), dtype=np.float64)
        #: Seconds spent reading loops (the episode loop books it as state reading).
        self.read_time = 0.0

    def read(self, lanes: slice | None = None) -> np.ndarray:
        """Vehicles that crossed each stop line since the start (all lanes, or a slice of them).

        A getter costs about 10 µs (SUMO walks the interval's vehicles), so controllers read
        a signal's lanes only when they need them, e.g. at its cycle boundary.
        """
        t0 = time.perf_counter()
        get = self.sim.conn.inductionloop.getIntervalVehicleNumber
        sl = lanes if lanes is not None else slice(0, len(self.ids))
        for i in range(*sl.indices(len(self.ids))):
            self.counts[i] = get(self.ids[i])
        self.read_time += time.perf_counter() - t0
        return self.counts
