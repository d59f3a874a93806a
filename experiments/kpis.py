"""Intersection KPIs: HCM-style control delay and level of service, queues, throughput.

Two sources, both measured in every run whatever the controller:

* **Control delay** per approach comes from SUMO's ``edgeData`` on every approach edge (see
  :func:`sim.variations.write_edgedata_additional`): the time loss accumulated on the approach
  (deceleration, stopped and creeping time against free-flow speed) divided by the vehicles
  that left it in the same periods.  HCM defines control delay as exactly this extra travel
  time caused by the signal; an approach's time loss also holds the delay of a queue spilling
  back from the next junction, which HCM would charge to that junction: on short urban links
  the two cannot be told apart without per-vehicle traces.  The intersection value is the
  vehicle-weighted mean over its approaches, and the level of service uses the HCM 6th
  edition thresholds for signalised intersections (A <= 10 s, B <= 20, C <= 35, D <= 55,
  E <= 80, F above, or a volume-to-capacity ratio above 1, which is not estimated here).
* **Queues** come from an observer the episode loop calls at every decision interval with the
  :class:`~sim.state.DistrictState`: halting vehicles (speed < 0.1 m/s) summed over the lanes
  of each approach; mean, maximum and 95th percentile over the samples after the warm-up.
  The sampling interval is the controller's decision interval (5 s for actuator-driven
  controllers, 60 s for SUMO-native ones), so maxima of native runs are sampled more coarsely.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sim.state import DistrictLayout, DistrictState

LOS_LIMITS = ((10.0, "A"), (20.0, "B"), (35.0, "C"), (55.0, "D"), (80.0, "E"))


def los(delay: float) -> str:
    """HCM level of service of a signalised intersection for a control delay in s/veh."""
    if delay is None or not math.isfinite(delay):
        return "-"
    for limit, letter in LOS_LIMITS:
        if delay <= limit:
            return letter
    return "F"


@dataclass(frozen=True)
class Approaches:
    """The approaches (incoming edges) of every signal, with their in-lane indices."""

    signal: tuple[str, ...]
    edge: tuple[str, ...]
    lanes: tuple[tuple[int, ...], ...]  # indices into layout.in_lanes

    @classmethod
    def from_layout(cls, layout: DistrictLayout) -> Approaches:
        sig, edge, lanes = [], [], []
        for s, spec in enumerate(layout.specs):
            by_edge: dict[str, list[int]] = {}
            base = int(layout.in_ptr[s])
            for m in spec.movements:
                # in-lanes of a signal are contiguous in the layout, from in_ptr[s]
                idx = base + spec.in_lanes.index(m.in_lane)
                by_edge.setdefault(m.from_edge, [])
                if idx not in by_edge[m.from_edge]:
                    by_edge[m.from_edge].append(idx)
            for e, idxs in by_edge.items():
                sig.append(spec.id)
                edge.append(e)
                lanes.append(tuple(sorted(idxs)))
        return cls(tuple(sig), tuple(edge), tuple(lanes))

    def __len__(self) -> int:
        return len(self.edge)


@dataclass
class QueueObserver:
    """Samples the queue of every approach at each decision interval (an episode observer)."""

    approaches: Approaches
    times: list[float] = field(default_factory=list)
    samples: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        n_in = max((max(ix) for ix in self.approaches.lanes if ix), default=-1) + 1
        # sparse sum: approach a = sum of queue[lane] for its lanes
        self._matrix = np.zeros((len(self.approaches), n_in), dtype=np.float32)
        for a, ix in enumerate(self.approaches.lanes):
            self._matrix[a, list(ix)] = 1.0

    def __call__(self, state: DistrictState) -> None:
        self.times.append(float(state.time))
        self.samples.append(self._matrix @ state.queue[: self._matrix.shape[1]])

    def frame(self) -> pd.DataFrame:
        """Long table: time, signal, edge, queue (vehicles)."""
        if not self.times:
            return pd.DataFrame(columns=["time", "signal", "edge", "queue"])
        q = np.vstack(self.samples)
        n_t, n_a = q.shape
        return pd.DataFrame({
            "time": np.repeat(np.asarray(self.times), n_a),
            "signal": np.tile(np.asarray(self.approaches.signal, dtype=object), n_t),
            "edge": np.tile(np.asarray(self.approaches.edge, dtype=object), n_t),
            "queue": q.reshape(-1).astype(np.float32),
        })


def _queue_stats(q: pd.Series) -> dict[str, float]:
    if not len(q):
        return {"queue_mean": math.nan, "queue_max": math.nan, "queue_p95": math.nan}
    return {"queue_mean": float(q.mean()), "queue_max": float(q.max()),
            "queue_p95": float(np.percentile(q.to_numpy(), 95))}


def _delay(time_loss: float, left: float) -> float:
    return time_loss / left if left > 0 else math.nan


def intersection_tables(edgedata: pd.DataFrame, queues: pd.DataFrame, approaches: Approaches,
                        measure_begin: float, measure_end: float
                        ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Per-approach and per-intersection KPIs after the warm-up, and a delay time series.

    Args:
        edgedata: ``sim.variations.read_edgedata`` rows (begin, end, edge, time_loss, left...).
        queues: :meth:`QueueObserver.frame`.
        approaches: Which edge approaches which signal.
        measure_begin: First second counted (after the warm-up).
        measure_end: Last second simulated.

    Returns:
        ``(approach_table, intersection_table, delay_series)``; the series has one row per
        edgeData period and signal (``time`` = period start, ``delay``, ``left``, ``queue``).
    """
    hours = max(measure_end - measure_begin, 1e-9) / 3600.0
    amap = pd.DataFrame({"signal": approaches.signal, "edge": approaches.edge})
    ed = edgedata.merge(amap, on="edge", how="inner") if len(edgedata) else pd.DataFrame(
        columns=["begin", "end", "edge", "time_loss", "left", "signal"])
    ed_m = ed[ed["begin"] >= measure_begin - 1e-9]
    q_m = queues[queues["time"] > measure_begin] if len(queues) else queues

    rows = []
    for (sig, edge), g in ed_m.groupby(["signal", "edge"], sort=True):
        tl, left = float(g["time_loss"].sum()), float(g["left"].sum())
        d = _delay(tl, left)
        qs = q_m[(q_m["signal"] == sig) & (q_m["edge"] == edge)]["queue"] if len(q_m) else pd.Series([])
        rows.append({"signal": sig, "edge": edge, "control_delay": d, "los": los(d),
                     "throughput_vph": left / hours, "time_loss_h": tl / 3600.0, **_queue_stats(qs)})
    appr = pd.DataFrame(rows, columns=["signal", "edge", "control_delay", "los", "throughput_vph",
                                       "time_loss_h", "queue_mean", "queue_max", "queue_p95"])

    rows = []
    sig_q = (q_m.groupby(["signal", "time"])["queue"].sum().reset_index() if len(q_m)
             else pd.DataFrame(columns=["signal", "time", "queue"]))
    for sig in sorted(set(approaches.signal)):
        a = appr[appr["signal"] == sig]
        tl = float(a["time_loss_h"].sum()) * 3600.0
        left = float(a["throughput_vph"].sum()) * hours
        d = _delay(tl, left)
        rows.append({"signal": sig, "control_delay": d, "los": los(d),
                     "throughput_vph": left / hours,
                     **_queue_stats(sig_q[sig_q["signal"] == sig]["queue"])})
    inter = pd.DataFrame(rows, columns=["signal", "control_delay", "los", "throughput_vph",
                                        "queue_mean", "queue_max", "queue_p95"])

    # time series over the whole run (warm-up included, marked by the report)
    if len(ed):
        ts = ed.groupby(["begin", "signal"]).agg(time_loss=("time_loss", "sum"),
                                                 left=("left", "sum")).reset_index()
        ts["delay"] = ts["time_loss"] / ts["left"].where(ts["left"] > 0)
        ts = ts.rename(columns={"begin": "time"})
    else:
        ts = pd.DataFrame(columns=["time", "signal", "time_loss", "left", "delay"])
    return appr, inter, ts


def network_intersection_kpis(approach_table: pd.DataFrame, queues: pd.DataFrame,
                              measure_begin: float) -> dict[str, float]:
    """District-wide control delay (vehicle-weighted over all approaches) and queue statistics.

    Queue statistics are over every (intersection, sample) pair after the warm-up.
    """
    tl = float(approach_table["time_loss_h"].sum()) * 3600.0 if len(approach_table) else 0.0
    served = approach_table["throughput_vph"].sum() if len(approach_table) else 0.0
    # throughput_vph * hours = vehicles; the hours cancel in the ratio below
    weights = approach_table["throughput_vph"] if len(approach_table) else pd.Series([], dtype=float)
    delays = approach_table["control_delay"] if len(approach_table) else pd.Series([], dtype=float)
    ok = weights > 0
    d = float((delays[ok] * weights[ok]).sum() / weights[ok].sum()) if ok.any() else math.nan
    q_m = queues[queues["time"] > measure_begin] if len(queues) else queues
    sig_q = q_m.groupby(["signal", "time"])["queue"].sum() if len(q_m) else pd.Series([], dtype=float)
    out = {"control_delay": d, "intersection_throughput_vph": float(served),
           "approach_time_loss_h": tl / 3600.0}
    out.update(_queue_stats(sig_q))
    return out


def summarise_signals(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Mean over runs (seeds) of per-intersection tables, LOS recomputed from the mean delay."""
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True)
    num = [c for c in df.columns if c not in ("signal", "edge", "los") and df[c].dtype != object]
    keys = [c for c in ("signal", "edge") if c in df.columns]
    out = df.groupby(keys)[num].mean().reset_index()
    out["los"] = out["control_delay"].map(los)
    return out
