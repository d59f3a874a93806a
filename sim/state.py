"""``DistrictState``: the traffic state of every signal, read in one pass into numpy arrays.

:class:`DistrictLayout` flattens the :class:`~sim.topology.SignalSpec` of all signals into
index arrays once (lanes, movements, stage incidence), so controllers can work on whole arrays
and Numba kernels can batch over all signals.  :class:`StateReader` fills a
:class:`DistrictState` from SUMO with no per-vehicle calls (except the opt-in approach bins of
:mod:`sim.approach`, read only for a consumer that names them).

How values are read, by backend (measured in ``benchmarks/bench_sim.py``; this departs from
"always subscribe" in DESIGN.md on purpose):

* **traci**: lane variable subscriptions, set once and renewed after every reset.  All values
  arrive with the step response, one round trip instead of four per lane.
* **libsumo**: plain getters.  libsumo calls cost about 0.25 µs, and a subscription makes SUMO
  compute and package the values on *every* step, whether the controller reads them or not;
  getters cost nothing between decisions, so reading every 5 simulated seconds costs a fifth
  of reading every step.

Per signal, the current stage and the time spent in it come from the
:class:`~sim.actuator.SignalActuator` when one drives the signals, otherwise from SUMO's own
program (phase index mapped to the stage it serves; yellow and all-red count as the stage
being left).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from sim.approach import BINS, ApproachReader
from sim.errors import WulinError
from sim.simulation import Simulation
from sim.topology import GREEN, SignalSpec

# traci/libsumo variable ids (traci.constants), kept here to avoid importing traci for libsumo.
_LAST_STEP_VEHICLE_NUMBER = 0x10
_LAST_STEP_MEAN_SPEED = 0x11
_LAST_STEP_VEHICLE_HALTING_NUMBER = 0x14
_WAITING_TIME = 0x7A
_LANE_VARS = (
    _LAST_STEP_VEHICLE_HALTING_NUMBER,
    _LAST_STEP_VEHICLE_NUMBER,
    _LAST_STEP_MEAN_SPEED,
    _WAITING_TIME,
)


@dataclass(frozen=True, eq=False)
class DistrictLayout:
    """Index arrays over all signals of a network (built once, read-only).

    Attributes:
        specs: The signals, in a fixed order (sorted by id).
        signal_ids: Their ids.
        in_lanes: Every controlled incoming lane, grouped by signal.
        out_lanes: Every outgoing lane of a controlled link, grouped by signal (a lane leaving
            one signal and entering the next appears in both lists).
        in_lane_signal: Signal index of each in-lane.
        out_lane_signal: Signal index of each out-lane.
        in_lane_length: Lengths in metres.
        out_lane_length: Lengths in metres.
        in_ptr: ``in_lanes[in_ptr[s]:in_ptr[s+1]]`` belong to signal ``s``.
        out_ptr: Same for out-lanes.
        mov_ptr: ``movements[mov_ptr[s]:mov_ptr[s+1]]`` belong to signal ``s``.
        mov_in: In-lane index (into ``in_lanes``) of each movement.
        mov_out: Out-lane index (into ``out_lanes``) of each movement.
        mov_link: TLS link index of each movement within its signal.
        n_stages: Number of green stages per signal.
        stage_green: ``[signal, stage, link]`` True when the link is green in the stage
            (padded with False up to the largest signal).
    """

    specs: tuple[SignalSpec, ...]
    signal_ids: tuple[str, ...]
    in_lanes: tuple[str, ...]
    out_lanes: tuple[str, ...]
    in_lane_signal: np.ndarray
    out_lane_signal: np.ndarray
    in_lane_length: np.ndarray
    out_lane_length: np.ndarray
    in_ptr: np.ndarray
    out_ptr: np.ndarray
    mov_ptr: np.ndarray
    mov_in: np.ndarray
    mov_out: np.ndarray
    mov_link: np.ndarray
    n_stages: np.ndarray
    stage_green: np.ndarray
    index: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_specs(cls, specs: Mapping[str, SignalSpec] | Sequence[SignalSpec]) -> DistrictLayout:
        """Flatten signal specs (a dict from ``load_signal_specs`` or a sequence)."""
        seq = list(specs.values()) if isinstance(specs, Mapping) else list(specs)
        seq.sort(key=lambda s: s.id)
        in_lanes: list[str] = []
        out_lanes: list[str] = []
        in_sig, out_sig, in_len, out_len = [], [], [], []
        in_ptr, out_ptr, mov_ptr = [0], [0], [0]
        mov_in, mov_out, mov_link = [], [], []
        for s, spec in enumerate(seq):
            in_pos = {}
            for lane in spec.in_lanes:
                in_pos[lane] = len(in_lanes)
                in_lanes.append(lane)
                in_sig.append(s)
                in_len.append(spec.lane_lengths[lane])
            out_pos = {}
            for lane in spec.out_lanes:
                out_pos[lane] = len(out_lanes)
                out_lanes.append(lane)
                out_sig.append(s)
                out_len.append(spec.lane_lengths[lane])
            for m in spec.movements:
                mov_in.append(in_pos[m.in_lane])
                mov_out.append(out_pos[m.out_lane])
                mov_link.append(m.index)
            in_ptr.append(len(in_lanes))
            out_ptr.append(len(out_lanes))
            mov_ptr.append(len(mov_in))
        max_stages = max((sp.n_stages for sp in seq), default=0)
        max_links = max((sp.n_links for sp in seq), default=0)
        stage_green = np.zeros((len(seq), max(max_stages, 1), max(max_links, 1)), dtype=np.bool_)
        for s, spec in enumerate(seq):
            for k, state in enumerate(spec.stages):
                stage_green[s, k, : len(state)] = [c in GREEN for c in state]
        i32, f32 = np.int32, np.float32
        return cls(
            specs=tuple(seq),
            signal_ids=tuple(sp.id for sp in seq),
            in_lanes=tuple(in_lanes),
            out_lanes=tuple(out_lanes),
            in_lane_signal=np.array(in_sig, dtype=i32),
            out_lane_signal=np.array(out_sig, dtype=i32),
            in_lane_length=np.array(in_len, dtype=f32),
            out_lane_length=np.array(out_len, dtype=f32),
            in_ptr=np.array(in_ptr, dtype=i32),
            out_ptr=np.array(out_ptr, dtype=i32),
            mov_ptr=np.array(mov_ptr, dtype=i32),
            mov_in=np.array(mov_in, dtype=i32),
            mov_out=np.array(mov_out, dtype=i32),
            mov_link=np.array(mov_link, dtype=i32),
            n_stages=np.array([sp.n_stages for sp in seq], dtype=i32),
            stage_green=stage_green,
            index={sp.id: s for s, sp in enumerate(seq)},
        )

    @property
    def n_signals(self) -> int:
        return len(self.specs)

    @property
    def n_in(self) -> int:
        return len(self.in_lanes)

    @property
    def n_out(self) -> int:
        return len(self.out_lanes)

    @property
    def n_movements(self) -> int:
        return len(self.mov_in)

    def signal_slice(self, s: int) -> slice:
        """In-lane slice of signal ``s``."""
        return slice(int(self.in_ptr[s]), int(self.in_ptr[s + 1]))


@dataclass
class DistrictState:
    """One snapshot of the district.  Arrays are indexed like the layout's lists.

    Attributes:
        time: Simulation time in seconds since midnight.
        queue: Halting vehicles (speed < 0.1 m/s) per in-lane.
        count: Vehicles per in-lane.
        speed: Mean speed per in-lane in m/s (the speed limit when the lane is empty).
        waiting: Accumulated waiting time of the vehicles on each in-lane, seconds.
        out_count: Vehicles per out-lane.
        stage: Current (or last served) green stage per signal.
        stage_time: Seconds since that stage's green began (or since the signal entered its
            current transition, when ``in_transition``).
        in_transition: True while a signal shows yellow or all-red.
        approach: ``[in-lane, sim.approach.BINS]`` vehicles by distance to the stop line and
            speed (read only when asked for: :mod:`sim.approach`).
    """

    time: float
    queue: np.ndarray
    count: np.ndarray
    speed: np.ndarray
    waiting: np.ndarray
    out_count: np.ndarray
    stage: np.ndarray
    stage_time: np.ndarray
    in_transition: np.ndarray
    approach: np.ndarray = field(default_factory=lambda: np.zeros((0, BINS), np.float32))

    @classmethod
    def empty(cls, layout: DistrictLayout, time: float = 0.0) -> DistrictState:
        f32 = np.float32
        return cls(
            time=time,
            queue=np.zeros(layout.n_in, f32),
            count=np.zeros(layout.n_in, f32),
            speed=np.zeros(layout.n_in, f32),
            waiting=np.zeros(layout.n_in, f32),
            out_count=np.zeros(layout.n_out, f32),
            stage=np.zeros(layout.n_signals, np.int32),
            stage_time=np.zeros(layout.n_signals, f32),
            in_transition=np.zeros(layout.n_signals, np.bool_),
            approach=np.zeros((layout.n_in, BINS), f32),
        )

    def copy(self) -> DistrictState:
        """A deep copy (the arrays too)."""
        arrays = {f.name: getattr(self, f.name).copy() for f in fields(self) if f.name != "time"}
        return DistrictState(time=self.time, **arrays)


LANE_VARIABLES = ("queue", "count", "speed", "waiting")
"""The in-lane variables of :class:`DistrictState` (out-lanes: ``count`` only, as ``out_count``)."""
APPROACH = "approach"
"""The opt-in per-vehicle field (:mod:`sim.approach`): read only when named."""

#: :class:`DistrictState` array -> the lane variable it is read from.
_FIELD_VARIABLE = {"queue": "queue", "count": "count", "speed": "speed", "waiting": "waiting",
                   "out_count": "count"}
_GETTERS = {"queue": "getLastStepHaltingNumber", "count": "getLastStepVehicleNumber",
            "speed": "getLastStepMeanSpeed", "waiting": "getWaitingTime"}
_VAR_ID = {"queue": _LAST_STEP_VEHICLE_HALTING_NUMBER, "count": _LAST_STEP_VEHICLE_NUMBER,
           "speed": _LAST_STEP_MEAN_SPEED, "waiting": _WAITING_TIME}


def lane_variables(fields: Sequence[str] | None) -> tuple[str, ...]:
    """The lane variables to read for the :class:`DistrictState` ``fields`` a consumer uses
    (``None``: all of them).  ``count`` is always read (``out_count`` and the envs' info)."""
    if fields is None:
        return LANE_VARIABLES
    need = {"count"} | {_FIELD_VARIABLE[f] for f in fields if f in _FIELD_VARIABLE}
    return tuple(v for v in LANE_VARIABLES if v in need) + ((APPROACH,) if APPROACH in fields else ())


class StateReader:
    """Reads :class:`DistrictState` from a running :class:`Simulation`.

    Only the lane ``variables`` asked for are read (the others stay 0): a controller or an
    environment names what it uses (:func:`lane_variables`).  In-lane variables are read on
    the in-lanes; out-lanes that are not also in-lanes are read for their vehicle count only.

    With libsumo one variable of many lanes is one ``np.fromiter(map(getter, lanes))``: the
    compiled getter is called from C by ``map`` and the values land in a float32 array with
    no Python bytecode per lane.  Counts are read first; halting vehicles and waiting time
    only on the occupied in-lanes (both are 0 on an empty lane, exactly).  Measured at 256
    signals and 3,264 lanes (``benchmarks/bench_scale.py`` network, 15:00 into the hour, on
    this project's 2-core machine): four variables by a Python loop of getters 6.5 ms, the
    count alone 1.45 ms by the loop and 0.69 ms by ``fromiter``; subscribing every lane's
    count costs 1.3 ms per read *and* about 1.4 ms per SUMO step, and one context
    subscription over the whole network 6.7 ms per read, so libsumo reads by getters.

    Args:
        sim: A started simulation.
        layout: The signals to read.
        variables: Subset of :data:`LANE_VARIABLES` (``count`` is always read), and
            :data:`APPROACH` for the per-vehicle approach bins.
    """

    def __init__(self, sim: Simulation, layout: DistrictLayout,
                 variables: Sequence[str] = LANE_VARIABLES) -> None:
        bad = [v for v in variables if v not in (*LANE_VARIABLES, APPROACH)]
        if bad:
            raise WulinError(f"StateReader: unknown lane variable(s) {bad}; "
                             f"known: {(*LANE_VARIABLES, APPROACH)}")
        self.sim = sim
        self.layout = layout
        self.variables = tuple(v for v in LANE_VARIABLES if v in variables or v == "count")
        # Distinct lanes to read, in-lanes first (an out-lane of one signal may be an in-lane
        # of the next): in-lane variables are read on the first ``_n_in_read``, counts on all.
        self._lanes = tuple(dict.fromkeys((*layout.in_lanes, *layout.out_lanes)))
        self._n_in_read = len(dict.fromkeys(layout.in_lanes))
        self._in_lane_array = np.array(self._lanes[: self._n_in_read], dtype=object)
        pos = {lane: i for i, lane in enumerate(self._lanes)}
        self._in_idx = np.array([pos[x] for x in layout.in_lanes], dtype=np.int64)
        self._out_idx = np.array([pos[x] for x in layout.out_lanes], dtype=np.int64)
        self._phase_stage, self._phase_transition = _phase_tables(layout)
        self._stage_flat, self._trans_flat, self._phase_base = _flat_phase_tables(
            self._phase_stage, self._phase_transition)
        self._edge_tables()
        self._approach = self._approach_reader() if APPROACH in variables else None

    def _approach_reader(self) -> ApproachReader:
        lanes = self._lanes[: self._n_in_read]
        first = {lane: i for i, lane in reversed(list(enumerate(self.layout.in_lanes)))}
        limits = {ln: v for sp in self.layout.specs for ln, v in sp.lane_speeds.items()}
        self._approach_bins = np.zeros((len(lanes), BINS), np.float32)
        self._in_first = np.array([first[lane] for lane in lanes], dtype=np.int64)
        return ApproachReader(self.sim.conn, lanes, self.layout.in_lane_length[self._in_first],
                              np.array([limits.get(lane, 13.9) for lane in lanes]))

    def _read_approach(self, st: DistrictState) -> None:
        assert self._approach is not None
        occupied = np.flatnonzero(st.count[self._in_first] > 0)
        self._approach.read(occupied, self._approach_bins)
        st.approach[:] = self._approach_bins[self._in_idx]

    # -------------------------------------------------------------- lanes
    def _getter(self, var: str, domain: str = "lane") -> Any:
        """libsumo's compiled getter (skipping its Python wrapper, half the call cost)."""
        name = _GETTERS[var]
        low = getattr(getattr(self.sim.conn, "libsumo", None), "_libsumo", None)
        fast = getattr(low, f"{domain}_{name}", None) if low is not None else None
        return fast or getattr(getattr(self.sim.conn, domain), name)

    def _edge_tables(self) -> None:
        """Each read lane's edge (a SUMO lane id is ``<edge>_<index>``), for :meth:`_counts`."""
        edge_of = [lane.rsplit("_", 1)[0] for lane in self._lanes]
        self._edges = tuple(dict.fromkeys(edge_of))
        pos = {e: i for i, e in enumerate(self._edges)}
        self._lane_edge = np.array([pos[e] for e in edge_of], dtype=np.int64)
        self._lane_array = np.array(self._lanes, dtype=object)
        self._by_edge = False  # the first read is lane by lane; it decides the next

    def _counts(self) -> np.ndarray:
        """Vehicles on every read lane; by edge first where that makes fewer calls.

        An edge with no vehicle has none on any of its lanes, so when the last read found
        few occupied edges, one call per edge finds them and only their lanes are read (on
        the 256-signal grid about half the calls); when most edges are occupied, lane by lane.
        """
        f32 = np.float32
        lanes = self._lanes
        get = self._getter("count")
        if not self._by_edge:
            counts = np.fromiter(map(get, lanes), f32, len(lanes))
        else:
            edges = self._edges
            busy = np.fromiter(map(self._getter("count", "edge"), edges), f32, len(edges))
            sub = np.flatnonzero(busy[self._lane_edge])
            counts = np.zeros(len(lanes), f32)
            counts[sub] = np.fromiter(map(get, self._lane_array[sub]), f32, len(sub))
        occupied = np.bincount(self._lane_edge, weights=counts, minlength=len(self._edges)) > 0
        lanes_to_read = np.count_nonzero(occupied[self._lane_edge])
        self._by_edge = len(self._edges) + lanes_to_read < len(lanes)
        return counts

    def _read_lanes_libsumo(self, st: DistrictState) -> None:
        f32 = np.float32
        counts = self._counts()
        lanes = self._lanes
        st.count[:] = counts[self._in_idx]
        st.out_count[:] = counts[self._out_idx]
        # halting vehicles and waiting time are 0 on an empty lane (both count the vehicles
        # on it): read them on the occupied in-lanes only
        occupied = np.flatnonzero(counts[: self._n_in_read])
        busy = self._in_lane_array[occupied]
        values = np.zeros(self._n_in_read, f32)
        for var in self.variables:
            if var == "count":
                continue
            if var == "speed":  # an empty lane reports its speed limit: read them all
                full = np.fromiter(map(self._getter(var), lanes[: self._n_in_read]), f32,
                                   self._n_in_read)
                st.speed[:] = full[self._in_idx]
                continue
            values[:] = 0.0
            values[occupied] = np.fromiter(map(self._getter(var), busy), f32, len(busy))
            getattr(st, var)[:] = values[self._in_idx]

    def _subscribe(self) -> None:
        lane = self.sim.conn.lane
        in_vars = tuple(_VAR_ID[v] for v in self.variables)
        for i, lid in enumerate(self._lanes):
            lane.subscribe(lid, in_vars if i < self._n_in_read else (_VAR_ID["count"],))

    def _subscription_results(self) -> dict[str, dict[int, Any]]:
        """traci: this step's subscribed lane values (subscribing first when needed)."""
        lane = self.sim.conn.lane
        results = lane.getAllSubscriptionResults()
        if len(results) < len(self._lanes):  # first read, or SUMO reloaded: subscribe again
            self._subscribe()
            results = lane.getAllSubscriptionResults()
        return results  # type: ignore[no-any-return]

    def _read_lanes_traci(self, st: DistrictState) -> None:
        results = self._subscription_results()
        lanes, n_in, f32 = self._lanes, self._n_in_read, np.float32
        for var in self.variables:
            vid = _VAR_ID[var]
            span = lanes if var == "count" else lanes[:n_in]
            values = np.fromiter((results[lid][vid] for lid in span), f32, len(span))
            getattr(st, var)[:] = values[self._in_idx]
            if var == "count":
                st.out_count[:] = values[self._out_idx]

    def subscribe(self) -> None:
        """Set up traci subscriptions now (call after start or reset; a no-op for libsumo)."""
        if self.sim.backend == "traci":
            self._subscribe()

    # -------------------------------------------------------------- signals
    def _read_program_stages(self, state: DistrictState) -> None:
        """Stages from SUMO's own programs: phase index -> stage served, for every signal."""
        tl = self.sim.conn.trafficlight
        ids = self.layout.signal_ids
        n = len(ids)
        phase = np.fromiter(map(tl.getPhase, ids), np.int64, n)
        known = (phase >= 0) & (phase < np.diff(self._phase_base))
        flat = self._phase_base[:-1] + np.where(known, phase, 0)
        state.stage[known] = self._stage_flat[flat[known]]
        state.in_transition[known] = self._trans_flat[flat[known]]
        state.stage_time[:] = np.fromiter(map(tl.getSpentDuration, ids), np.float64, n)

    # -------------------------------------------------------------- public
    def read(
        self,
        into: DistrictState | None = None,
        stage: np.ndarray | Sequence[int] | None = None,
        stage_time: np.ndarray | Sequence[float] | None = None,
        in_transition: np.ndarray | Sequence[bool] | None = None,
    ) -> DistrictState:
        """Read the current state.

        Args:
            into: A state to overwrite (avoids allocating every step).
            stage: Current stages from the actuator; read from SUMO's program when omitted.
            stage_time: Time in stage from the actuator.
            in_transition: Transition flags from the actuator.
        """
        sim = self.sim
        st = into if into is not None else DistrictState.empty(self.layout)
        if sim.backend == "libsumo":
            self._read_lanes_libsumo(st)
        else:
            self._read_lanes_traci(st)
        if self._approach is not None:
            self._read_approach(st)
        if stage is None:
            self._read_program_stages(st)
        else:
            st.stage[:] = stage
            if stage_time is not None:
                st.stage_time[:] = stage_time
            if in_transition is not None:
                st.in_transition[:] = in_transition
        st.time = sim.time
        return st


def _phase_tables(layout: DistrictLayout) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per signal: program phase -> stage served, and whether the phase is a transition."""
    phase_stage: list[np.ndarray] = []
    phase_transition: list[np.ndarray] = []
    for spec in layout.specs:
        stages, trans, last = [], [], 0
        for ph in spec.phases:
            if ph.state in spec.stages:
                last = spec.stages.index(ph.state)
                stages.append(last)
                trans.append(False)
            else:
                stages.append(last)
                trans.append(True)
        # a transition before the first green of the cycle belongs to the cycle's last stage
        first_green = next((k for k, t in enumerate(trans) if not t), 0)
        for k in range(first_green):
            stages[k] = last
        phase_stage.append(np.array(stages or [0], dtype=np.int32))
        phase_transition.append(np.array(trans or [False], dtype=np.bool_))
    return phase_stage, phase_transition


def _flat_phase_tables(phase_stage: list[np.ndarray], phase_transition: list[np.ndarray]
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The per-signal tables concatenated, with each signal's offset (``base[s]..base[s+1]``)."""
    base = np.zeros(len(phase_stage) + 1, dtype=np.int64)
    base[1:] = np.cumsum([len(t) for t in phase_stage])
    if not phase_stage:
        return np.zeros(0, np.int32), np.zeros(0, np.bool_), base
    return np.concatenate(phase_stage), np.concatenate(phase_transition), base
