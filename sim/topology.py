"""Signal topology read from a ``.net.xml`` with sumolib: no SUMO process needed.

For every traffic light of any SUMO network a :class:`SignalSpec` gives its movements (one per
TLS link index: in-lane, out-lane, turn direction), its incoming and outgoing lanes with their
lengths, the green stages of its program and the conflict matrix from SUMO's own junction
``foes`` relations.

A *stage* is a green SUMO state string ("GGgrrrGGgrrr"): ``G`` is a protected green, ``g`` a
permitted green that yields.  Two movements conflict when SUMO marks them as foes; a stage is
unsafe when two *protected* (``G``) movements in it conflict.  Permitted (``g``) movements
yield by SUMO's right-of-way rules, which is how SUMO's own programs serve permitted lefts and
right turns.

What real networks hold is read as it is (see the README, "Real networks"): link indices
keep SUMO's numbers even where an index is unused or a pedestrian crossing (``movements``
lists the used ones, ``unused_links`` the rest, and stages are told apart by their vehicle
links only); links green in every phase (a right turn that never stops) make no stage; a
program that turns a vehicle link from green straight to red gets a yellow and all-red
(:mod:`sim.amber`).  All of it is derived here, once, so the actuator and the loop never
see the difference.

Values are plain tuples so the specs are hashable, picklable and cheap to send to worker
processes; :meth:`SignalSpec.conflict_matrix` gives a numpy view for kernels.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim import amber
from sim.errors import WulinError

if TYPE_CHECKING:
    import numpy as np

GREEN = frozenset("Gg")


@dataclass(frozen=True)
class Movement:
    """One controlled link: a TLS link index and the lanes it joins.

    Attributes:
        index: TLS link index (position in SUMO's state string).
        in_lane: Incoming lane id.
        out_lane: Outgoing lane id.
        direction: SUMO turn direction: ``s`` straight, ``l``/``L`` left, ``r``/``R`` right,
            ``t`` U-turn.
        from_edge: Incoming edge id (the approach).
        to_edge: Outgoing edge id.
    """

    index: int
    in_lane: str
    out_lane: str
    direction: str
    from_edge: str
    to_edge: str

    @property
    def is_left(self) -> bool:
        return self.direction in ("l", "L", "t")

    @property
    def is_right(self) -> bool:
        return self.direction in ("r", "R")


@dataclass(frozen=True)
class ProgramPhase:
    """One phase of the network's own signal program."""

    duration: float
    state: str
    min_dur: float | None = None
    max_dur: float | None = None


@dataclass(frozen=True)
class SignalSpec:
    """Everything a controller needs to know about one signal, derived from the network.

    Attributes:
        id: Traffic light id.
        program_id: Id of the program the stages come from.
        offset: Program offset in seconds.
        movements: One per used link index, ordered by index.
        in_lanes: Controlled incoming lanes, sorted.
        out_lanes: Outgoing lanes of the controlled links, sorted.
        lane_lengths: Length in metres of every in- and out-lane.
        lane_speeds: Speed limit in m/s of every in- and out-lane.
        phases: The network's program, phase by phase.
        stages: Distinct green states of the program, in program order.
        stage_phases: Index in ``phases`` of each stage's first occurrence.
        conflicts: ``conflicts[i][j]`` is True when links ``i`` and ``j`` are foes.
        position: Junction centre, network x/y in metres.
        lonlat: Junction centre in WGS84 when the network is geo-referenced.
        amber_inserted: ``phases`` is the network's program with a yellow and all-red put in
            where it turned a vehicle link from green to red directly (:mod:`sim.amber`).
        program_type: SUMO type of the network's program (``static``, ``actuated``, ``NEMA``...).
    """

    id: str
    program_id: str
    offset: float
    movements: tuple[Movement, ...]
    in_lanes: tuple[str, ...]
    out_lanes: tuple[str, ...]
    lane_lengths: Mapping[str, float]
    lane_speeds: Mapping[str, float]
    phases: tuple[ProgramPhase, ...]
    stages: tuple[str, ...]
    stage_phases: tuple[int, ...]
    conflicts: tuple[tuple[bool, ...], ...]
    position: tuple[float, float]
    lonlat: tuple[float, float] | None = None
    amber_inserted: bool = False
    program_type: str = "static"

    def __hash__(self) -> int:
        return hash((self.id, self.program_id, self.stages))

    @property
    def n_links(self) -> int:
        """Length of the state strings: every TLS link index, used or not."""
        return len(self.conflicts)

    @cached_property
    def link_movement(self) -> Mapping[int, Movement]:
        """The movement of each used link index (unused indices and crossings have none)."""
        return {m.index: m for m in self.movements}

    @cached_property
    def unused_links(self) -> tuple[int, ...]:
        """Link indices with no vehicle connection (unused, or pedestrian crossings)."""
        return tuple(i for i in range(self.n_links) if i not in self.link_movement)

    @property
    def n_stages(self) -> int:
        return len(self.stages)

    @property
    def cycle(self) -> float:
        """Cycle length of the network's own program."""
        return float(sum(p.duration for p in self.phases))

    @cached_property
    def clearance(self) -> tuple[float, float]:
        """``(yellow, all_red)`` of the network's program: its yellow and its red-only time per
        change of stage (a change ends each run of green phases; a link green in every phase,
        a right turn that never stops, does not make a phase green).  ``(3, 0)`` for a
        program with no change."""
        states = [p.state for p in self.phases]
        always = {i for i in range(self.n_links) if all(i < len(st) and st[i] in GREEN for st in states)}
        kinds = ["y" if any(c in "yY" for c in st)
                 else "g" if any(c in GREEN for i, c in enumerate(st) if i not in always) else "r"
                 for st in states]
        n = len(kinds)
        changes = sum(1 for i in range(n) if kinds[i] == "g" and kinds[(i + 1) % n] != "g")
        if changes == 0:
            return 3.0, 0.0
        time = {k: sum(p.duration for p, kk in zip(self.phases, kinds, strict=True) if kk == k)
                for k in "yr"}
        return time["y"] / changes, time["r"] / changes

    @cached_property
    def approaches(self) -> tuple[str, ...]:
        """Incoming edges (approaches) in link order, without repeats."""
        return tuple(dict.fromkeys(m.from_edge for m in self.movements))

    def stage_links(self, stage: int) -> tuple[int, ...]:
        """Vehicle link indices that are green (``G`` or ``g``) in ``stage``."""
        used = self.link_movement
        return tuple(i for i, c in enumerate(self.stages[stage]) if c in GREEN and i in used)

    def conflict_matrix(self) -> np.ndarray:
        """``conflicts`` as a boolean numpy array (n_links x n_links)."""
        import numpy as np

        return np.array(self.conflicts, dtype=bool).reshape(self.n_links, self.n_links)

    def conflicting_greens(self, state: str) -> list[tuple[int, int]]:
        """Pairs of protected-green links in ``state`` that SUMO marks as foes (should be [])."""
        protected = [i for i, c in enumerate(state) if c == "G"]
        return [
            (i, j)
            for a, i in enumerate(protected)
            for j in protected[a + 1 :]
            if self.conflicts[i][j]
        ]

    def lanes_of_stage(self, stage: int) -> tuple[str, ...]:
        """Incoming lanes with at least one green link in ``stage``."""
        links = self.stage_links(stage)
        return tuple(dict.fromkeys(self.link_movement[i].in_lane for i in links))


def _is_stage(state: str, used: Collection[int], always: Collection[int]) -> bool:
    """A green stage: some vehicle link green, none yellow (yellow and all-red are transitions).

    Pedestrian links (crossings) and unused indices do not make or break a stage, and links
    green in every phase (a right turn that never stops) do not make one: an all-red with
    such a right turn green is still an all-red."""
    vehicle = [state[i] for i in used if i < len(state)]
    return (any(state[i] in GREEN for i in used if i not in always and i < len(state))
            and not any(c in "yY" for c in vehicle))


def _vehicle_view(state: str, used: Collection[int]) -> str:
    return "".join(state[i] for i in sorted(used) if i < len(state))


def _read_net(net_file: Path):  # type: ignore[no-untyped-def]
    import sumolib

    net_file = Path(net_file)
    if not net_file.is_file():
        raise WulinError(f"{net_file}: network file not found; build it or fix the path")
    try:
        net = sumolib.net.readNet(str(net_file), withPrograms=True, withLatestPrograms=True)
        net.hasGeoProj()  # every SUMO network has <location>; another XML file fails here
        return net
    except Exception as exc:
        raise WulinError(f"{net_file}: not a readable SUMO network ({exc})") from None


def load_signal_specs(net_file: Path | str) -> dict[str, SignalSpec]:
    """A :class:`SignalSpec` for every traffic light in ``net_file``, keyed and sorted by id.

    Programs that turn a vehicle link from green straight to red get a yellow and all-red
    (:mod:`sim.amber`); the log says so once per network, naming how many signals.

    Raises:
        WulinError: the file is missing or not a SUMO network.
    """
    net = _read_net(Path(net_file))
    specs: dict[str, SignalSpec] = {}
    geo = net.hasGeoProj() if hasattr(net, "hasGeoProj") else False
    for tls in sorted(net.getTrafficLights(), key=lambda t: t.getID()):
        specs[tls.getID()] = _spec_from_tls(net, tls, geo)
    fixed = [sp.id for sp in specs.values() if sp.amber_inserted]
    if fixed:
        _say_once(Path(net_file), fixed)
    return specs


_TOLD: set[str] = set()


def _say_once(net_file: Path, fixed: list[str]) -> None:
    key = str(net_file.resolve())
    if key in _TOLD:
        return
    _TOLD.add(key)
    logging.getLogger("wulin").warning(
        "%s: %d signal program(s) turn green straight to red (%s%s); a yellow and all-red "
        "(ITE, from approach speed and junction size) are put in for every controller",
        net_file.name, len(fixed), ", ".join(fixed[:5]), " ..." if len(fixed) > 5 else "")


def _movements(tls, tid: str) -> tuple[list[Movement], list[Any]]:  # type: ignore[no-untyped-def]
    """One movement per used link index, in index order, with its sumolib connection."""
    by_index: dict[int, tuple] = {}
    for in_lane, out_lane, idx in tls.getConnections():
        by_index.setdefault(idx, (in_lane, out_lane))
    if not by_index:
        raise WulinError(f"traffic light {tid!r} controls no links")
    movements, conns = [], []
    for idx in sorted(by_index):
        in_lane, out_lane = by_index[idx]
        conn = next((c for c in in_lane.getOutgoing() if c.getToLane() == out_lane), None)
        conns.append(conn)
        movements.append(Movement(
            index=idx, in_lane=in_lane.getID(), out_lane=out_lane.getID(),
            direction=conn.getDirection() if conn is not None else "s",
            from_edge=in_lane.getEdge().getID(), to_edge=out_lane.getEdge().getID()))
    return movements, conns


def _conflicts(movements: list[Movement], conns: list[Any], n: int) -> list[list[bool]]:
    """Foes from the junction's foe relation (links on different junctions never conflict)."""
    jidx: list[tuple[Any, int]] = [
        (c.getJunction(), c.getJunctionIndex()) if c is not None else (None, -1) for c in conns
    ]
    conflicts = [[False] * n for _ in range(n)]
    for a, ma in enumerate(movements):
        na, ja = jidx[a]
        for b in range(a + 1, len(movements)):
            nb, jb = jidx[b]
            if na is None or na is not nb or ja < 0 or jb < 0:
                continue
            if na.areFoes(ja, jb) or na.areFoes(jb, ja):
                i, j = ma.index, movements[b].index
                conflicts[i][j] = conflicts[j][i] = True
    return conflicts


def _program(tls, tid: str) -> tuple[str, Any, tuple[ProgramPhase, ...]]:  # type: ignore[no-untyped-def]
    programs = tls.getPrograms()
    if not programs:
        raise WulinError(f"traffic light {tid!r} has no program in the network")
    pid = sorted(programs)[0]
    prog = programs[pid]
    phases = tuple(
        ProgramPhase(
            duration=float(p.duration),
            state=p.state,
            min_dur=float(p.minDur) if p.minDur not in (None, -1) else None,
            max_dur=float(p.maxDur) if p.maxDur not in (None, -1) else None,
        )
        for p in prog.getPhases()
    )
    if str(getattr(prog, "_type", "")).upper() == "NEMA":
        phases = _nema_stages(prog, phases)
    return str(pid), prog, phases


def _nema_stages(prog, phases: tuple[ProgramPhase, ...]) -> tuple[ProgramPhase, ...]:  # type: ignore[no-untyped-def]
    """A NEMA program's dual-ring phases as the stages they make together: ring 1's k-th
    phase with ring 2's k-th (the standard sequence: 1+5, 2+6, 3+7, 4+8).  SUMO times a NEMA
    program's clearances from each phase's ``yellow`` and ``red``, so the list has none; the
    amber is put in as for any other program without it."""
    params = getattr(prog, "_params", {}) or {}
    by_name = {str(n): ph for n, ph in zip((p.name for p in prog.getPhases()), phases, strict=True)}
    rings = [[by_name[x.strip()] for x in params.get(key, "").split(",") if x.strip() in by_name]
             for key in ("ring1", "ring2")]
    if not rings[0]:
        return phases
    out = []
    for k, first in enumerate(rings[0]):
        pair = [first, *([rings[1][k]] if k < len(rings[1]) else [])]
        state = "".join("G" if "G" in cs else "g" if "g" in cs else "r"
                        for cs in zip(*(p.state for p in pair), strict=True))
        out.append(ProgramPhase(duration=max(p.duration for p in pair), state=state,
                                min_dur=max((p.min_dur or 0.0) for p in pair) or None,
                                max_dur=max((p.max_dur or 0.0) for p in pair) or None))
    return tuple(out)


def _junction_size(node) -> float:  # type: ignore[no-untyped-def]
    """Largest side of the junction's shape, metres (its crossing distance)."""
    shape = node.getShape() if node is not None else None
    if not shape:
        return 0.0
    xs, ys = [p[0] for p in shape], [p[1] for p in shape]
    return float(max(max(xs) - min(xs), max(ys) - min(ys)))


def _spec_from_tls(net, tls, geo: bool) -> SignalSpec:  # type: ignore[no-untyped-def]
    tid = tls.getID()
    movements, conns = _movements(tls, tid)
    pid, prog, phases = _program(tls, tid)
    n = max(movements[-1].index + 1, max((len(p.state) for p in phases), default=0))
    conflicts = _conflicts(movements, conns, n)
    used = frozenset(m.index for m in movements)
    in_lanes = sorted({m.in_lane for m in movements})
    out_lanes = sorted({m.out_lane for m in movements})
    lengths, speeds = {}, {}
    for lane_id in (*in_lanes, *out_lanes):
        lane = net.getLane(lane_id)
        lengths[lane_id] = float(lane.getLength())
        speeds[lane_id] = float(lane.getSpeed())
    node = conns[0].getJunction() if conns[0] is not None else None
    fixed = amber.lacks_amber(phases, used)
    if fixed:
        clear = amber.ite_clearance(max(speeds[lane] for lane in in_lanes), _junction_size(node))
        phases = amber.with_amber(phases, used, clear)
    stages: list[str] = []
    stage_phases: list[int] = []
    seen: set[str] = set()
    always = amber.always_green([ph.state for ph in phases], used)
    for k, ph in enumerate(phases):
        view = _vehicle_view(ph.state, used)
        if _is_stage(ph.state, used, always) and view not in seen:
            seen.add(view)
            stages.append(ph.state)
            stage_phases.append(k)
    x, y = node.getCoord()[:2] if node is not None else (0.0, 0.0)
    lonlat = None
    if geo:
        lon, lat = net.convertXY2LonLat(x, y)
        lonlat = (float(lon), float(lat))
    return SignalSpec(
        id=tid,
        program_id=pid,
        offset=float(getattr(prog, "_offset", 0) or 0),
        movements=tuple(movements),
        in_lanes=tuple(in_lanes),
        out_lanes=tuple(out_lanes),
        lane_lengths=lengths,
        lane_speeds=speeds,
        phases=phases,
        stages=tuple(stages),
        stage_phases=tuple(stage_phases),
        conflicts=tuple(tuple(r) for r in conflicts),
        position=(float(x), float(y)),
        lonlat=lonlat,
        amber_inserted=fixed,
        program_type=str(getattr(prog, "_type", "static") or "static"),
    )
