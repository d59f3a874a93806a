"""Preemption and bus priority: every clearance served, minimum greens kept, every controller.

The harness steps SUMO one second at a time and reads every signal's state from SUMO after each
step, so the checks see exactly what vehicles saw (independently of the layer's own audit).
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from sim.preemption import Preemptor, clearance_states, needs_yellow
from sim.priority import (
    EmergencyRun,
    PreemptSettings,
    PriorityLayer,
    TransitPriority,
    all_red_ok,
    clearance_ok,
    write_emergency_vehicles,
)
from sim.scenario import Scenario
from sim.simulation import Simulation
from sim.state import DistrictLayout
from sim.topology import GREEN, load_signal_specs

ROUTE = ("left0A0", "A0B0", "B0right0")  # west to east across both signals of the 2x2 grid


def _layout(sc: Scenario) -> DistrictLayout:
    return DistrictLayout.from_specs(load_signal_specs(sc.net_file))


class _Watch:
    """Every signal's state after every step, with the seconds each green has been shown."""

    def __init__(self, sim: Simulation, layout: DistrictLayout) -> None:
        self.sim, self.layout = sim, layout
        self.prev: dict[str, str] = {}
        self.green_since: dict[str, list[float]] = {}
        self.problems: list[str] = []

    def check(self, t: float, owned: set[str], min_green: float) -> None:
        tl = self.sim.conn.trafficlight
        for spec in self.layout.specs:
            cur = tl.getRedYellowGreenState(spec.id)
            prev = self.prev.get(spec.id)
            since = self.green_since.setdefault(spec.id, [t] * len(cur))
            if spec.conflicting_greens(cur):
                self.problems.append(f"{t} {spec.id}: conflicting greens {cur}")
            if prev is not None and prev != cur and spec.id in owned:
                if not clearance_ok(prev, cur):
                    self.problems.append(f"{t} {spec.id}: green to red without yellow {prev}->{cur}")
                if not all_red_ok(prev, cur, spec.conflicts):
                    self.problems.append(f"{t} {spec.id}: all-red skipped {prev}->{cur}")
                for i, (p, c) in enumerate(zip(prev, cur, strict=True)):
                    if p in GREEN and c == "y" and t - since[i] < min_green - 1e-6 \
                            and any(x in GREEN for x in prev):
                        self.problems.append(f"{t} {spec.id}: link {i} green only {t - since[i]} s")
            for i, c in enumerate(cur):
                if c in GREEN and (prev is None or prev[i] not in GREEN):
                    since[i] = t
            self.prev[spec.id] = cur


def test_clearance_states_keep_common_greens() -> None:
    yellow, red = clearance_states("GGrrgy", "GrGrgr")
    assert yellow == "GyrrgY".replace("Y", "y")
    assert red == "Grrrgr"
    assert needs_yellow("GGrr", "GrGr") and not needs_yellow("Grrr", "GGrr")


@pytest.mark.parametrize("actuated", [False, True])
def test_preemption_never_skips_a_clearance(tiny_scenario: Scenario, actuated: bool) -> None:
    """Requests at every point of the cycle, for every stage: each change SUMO shows while the
    preemptor holds a signal has its yellow and all-red, and no green is cut short."""
    from sim.actuator import SignalActuator

    layout = _layout(tiny_scenario)
    with Simulation(tiny_scenario, seed=1) as sim:
        sim.start()
        act = None
        if actuated:
            act = SignalActuator(sim, layout, yellow=3.0, all_red=2.0, min_green=5.0, max_green=30.0)
            act.reset()
        pre = Preemptor(sim, layout.specs, act, min_green=5.0)
        watch = _Watch(sim, layout)
        t = sim.time
        holds = 0
        owned_before: set[str] = set()
        for k in range(400):
            sim.step_until(t + 1.0)
            t = sim.time
            if act is not None:
                act.tick(t)
            spec = layout.specs[k % layout.n_signals]
            if k % 23 == 0:  # every stage in turn, at shifting points of the cycle
                stage = (k // 23) % spec.n_stages
                pre.request(spec.id, list(spec.stage_links(stage)), t)
            # the state read after a step is the one vehicles saw during it (what the
            # preemptor writes now shows in the next step): read before acting
            owned = {sp.id for sp in layout.specs if pre.active(sp.id)}
            watch.check(t, owned | owned_before, 5.0)
            owned_before = owned
            for sp in layout.specs:
                if pre.mode(sp.id) == "hold" and k % 23 == 15:
                    pre.clear(sp.id, t)
                    holds += 1
            pre.poll(t)
    assert holds > 5
    assert not watch.problems, "\n".join(watch.problems[:10])
    modes = {m for _, _, m in pre.events}
    assert {"yellow", "all-red", "hold"} <= modes


def _episode(sc: Scenario, controller: str, tmp: Path, **layer_kw: object) -> tuple[PriorityLayer, object]:
    from experiments.episode import run_episode

    run = EmergencyRun("ev0", ROUTE, 200.0)
    add = write_emergency_vehicles(tmp / "ev.add.xml", (run,))
    layer = PriorityLayer((run,), **layer_kw)  # type: ignore[arg-type]
    res = run_episode(sc, controller, seed=1, additional_files=[add], priority=layer,
                      output_dir=tmp / controller)
    return layer, res


@pytest.mark.parametrize("controller", ["field", "actuated", "max-pressure", "webster",
                                        "webster-online", "sotl"])
def test_preemption_under_every_controller(tiny_scenario: Scenario, tmp_path: Path,
                                           controller: str) -> None:
    layer, res = _episode(tiny_scenario, controller, tmp_path)
    assert layer.audit["steps"] > 10
    assert layer.audit["conflicting_greens"] == 0
    assert layer.audit["green_to_red"] == 0 and layer.audit["no_all_red"] == 0
    held = {sig for _, sig, mode in layer.preemptor.events if mode == "hold"}  # type: ignore[union-attr]
    assert held == {"A0", "B0"}
    ev = res.trips[res.trips.id == "ev0"]  # type: ignore[attr-defined]
    assert len(ev) == 1 and bool(ev.finished.iloc[0])
    assert all(st.mode in (0, 7) for st in layer.preemptor.signals.values())  # type: ignore[union-attr]


@pytest.mark.parametrize("mode,recovery", [("green-wave", "immediate"), ("detection", "short-way"),
                                           ("detection", "long-way")])
def test_modes_and_recoveries(tiny_scenario: Scenario, tmp_path: Path, mode: str,
                              recovery: str) -> None:
    layer, _ = _episode(tiny_scenario, "field", tmp_path,
                        preempt=PreemptSettings(mode=mode, recovery=recovery))
    assert sum(layer.audit[k] for k in ("conflicting_greens", "green_to_red", "no_all_red")) == 0
    events = layer.preemptor.events  # type: ignore[union-attr]
    assert {sig for _, sig, m in events if m == "hold"} == {"A0", "B0"}
    if recovery != "immediate":  # the offset error is corrected, then the signal is idle
        assert [m for _, sig, m in events if sig == "A0"][-1] in ("idle", "recover")


def test_two_vehicles_share_a_preemption(tiny_scenario: Scenario, tmp_path: Path) -> None:
    """A second vehicle close behind keeps the hold until it has passed too."""
    from experiments.episode import run_episode

    runs = (EmergencyRun("ev0", ROUTE, 200.0), EmergencyRun("ev1", ROUTE, 212.0, "police"))
    add = write_emergency_vehicles(tmp_path / "ev.add.xml", runs)
    layer = PriorityLayer(runs)
    res = run_episode(tiny_scenario, "max-pressure", seed=2, additional_files=[add], priority=layer)
    assert sum(layer.audit[k] for k in ("conflicting_greens", "green_to_red", "no_all_red")) == 0
    trips = res.trips[res.trips.id.isin(["ev0", "ev1"])]
    assert len(trips) == 2 and trips.finished.all()
    holds = [(t, sig) for t, sig, m in layer.preemptor.events if m == "hold"]  # type: ignore[union-attr]
    assert {sig for _, sig in holds} == {"A0", "B0"}


def test_disabled_preemption_leaves_signals_alone(tiny_scenario: Scenario, tmp_path: Path) -> None:
    layer, _ = _episode(tiny_scenario, "field", tmp_path, preempt=PreemptSettings(enabled=False))
    assert layer.preemptor.events == []  # type: ignore[union-attr]
    assert layer.emergency_rows()[0]["travel_time"] > 0


BUSES = ('<additional><vType id="bus" vClass="bus" length="12"/>'
         '<flow id="busline" type="bus" begin="0" end="500" period="40" from="left0A0" to="B0right0"/>'
         '<flow id="busline2" type="bus" begin="10" end="500" period="40" from="bottom0A0" '
         'to="A1top0"/></additional>')


def _bus_run(sc: Scenario, tmp: Path, tp: TransitPriority) -> tuple[PriorityLayer, list[float], list[float]]:
    """Two bus lines across the tiny grid under its SUMO programs, stepped one second at a time.
    Returns the layer, every green's length as SUMO showed it, and at each priority given the
    longest queue on the in-lanes it delays (read in the step it was given)."""
    add = tmp / "bus.add.xml"
    add.write_text(BUSES)
    layout = _layout(sc)
    layer = PriorityLayer((), None, tp)
    greens: list[float] = []
    queues: list[float] = []
    with Simulation(sc, seed=1, additional_files=[add]) as sim:
        sim.start()
        layer.start(sim, layout.specs)
        since: dict[str, tuple[str, float]] = {}
        t = sim.time
        while t < 590:
            sim.step_until(t + 1.0)
            t = sim.time
            n = len(layer.grants)
            layer.poll(t)
            for _, sig, bus, _ in layer.grants[n:]:
                link = sim.conn.vehicle.getNextTLS(bus)[0][1]
                queues.append(layer.bus._losing_queue(sig, link))  # type: ignore[union-attr]
            for spec in layout.specs:
                cur = sim.conn.trafficlight.getRedYellowGreenState(spec.id)
                st, t0 = since.get(spec.id, (cur, t))
                if cur != st:
                    if st in spec.stages:
                        greens.append(t - t0)
                    since[spec.id] = (cur, t)
                else:
                    since.setdefault(spec.id, (cur, t))
    return layer, greens[len(layout.specs):], queues


@pytest.mark.parametrize("tp", [
    TransitPriority(late_after=-math.inf, max_extension=20.0, min_interval=30.0, min_green=5.0),
    TransitPriority(buses="all", max_queue=1, max_extension=15.0, min_interval=30.0, min_green=5.0),
], ids=["late-from-start", "all-conditional"])
def test_bus_priority_never_cuts_a_minimum_green(tiny_scenario: Scenario, tmp_path: Path,
                                                  tp: TransitPriority) -> None:
    """Buses get priority at every signal; every green SUMO shows still lasts at least the
    minimum green."""
    layer, greens, _ = _bus_run(tiny_scenario, tmp_path, tp)
    kinds = {g[3] for g in layer.grants}
    assert kinds & {"extension", "early-green"}, "no priority was given"
    assert greens and min(greens) >= 5.0 - 1e-6
    assert layer.bus_rows()


def test_conditional_priority_waits_for_the_other_approaches(tiny_scenario: Scenario, tmp_path: Path) -> None:
    """With ``max_queue`` a priority is given only while no lane it delays holds more halted
    vehicles (a bus waits for that moment); without it, priorities are given against queues."""
    base = TransitPriority(buses="all", max_extension=15.0, min_interval=30.0)
    free, _, free_q = _bus_run(tiny_scenario, tmp_path, base)
    held, _, held_q = _bus_run(tiny_scenario, tmp_path, replace(base, max_queue=0))
    assert held.grants and max(held_q) <= 0
    assert max(free_q) > 0 and held.grants != free.grants


def test_every_bus_ignores_the_schedule(tiny_scenario: Scenario, tmp_path: Path) -> None:
    """``buses = "all"`` gives priority to buses the schedule finds on time; "late" does not."""
    on_time = TransitPriority(late_after=1e6, min_interval=30.0)
    late, _, _ = _bus_run(tiny_scenario, tmp_path, on_time)
    every, _, _ = _bus_run(tiny_scenario, tmp_path, replace(on_time, buses="all"))
    assert not late.grants and every.grants


def test_emergency_vehicles_keep_sumos_defaults(tiny_scenario: Scenario, tmp_path: Path) -> None:
    """The ambulance is SUMO's vClass emergency as SUMO defines it (keeping to the limit:
    speedFactor 1 without deviation, Krauss sigma 0.5); police and fire engine differ only in
    body (SUMO's passenger car and truck)."""
    from sim.priority import EV_TYPE

    runs = tuple(EmergencyRun(f"e{k}", ROUTE, 10.0 + k, kind)
                 for k, kind in enumerate(("ambulance", "fire-engine", "police")))
    add = write_emergency_vehicles(tmp_path / "ev.add.xml", runs)
    with Simulation(tiny_scenario, seed=1, additional_files=[add]) as sim:
        sim.start()
        vt = sim.conn.vehicletype
        got = {k: (vt.getSpeedFactor(f"{EV_TYPE}-{k}"), vt.getSpeedDeviation(f"{EV_TYPE}-{k}"),
                   vt.getImperfection(f"{EV_TYPE}-{k}"), vt.getLength(f"{EV_TYPE}-{k}"),
                   vt.getAccel(f"{EV_TYPE}-{k}"))
               for k in ("ambulance", "fire-engine", "police")}
    assert got["ambulance"] == (1.0, 0.0, 0.5, 6.5, 2.6)
    assert got["fire-engine"] == (1.0, 0.0, 0.5, 7.1, 1.3)
    assert got["police"] == (1.0, 0.0, 0.5, 5.0, 2.6)


def test_idle_layer_changes_nothing(tiny_scenario: Scenario, tmp_path: Path) -> None:
    """A layer with nothing declared leaves the trips byte-identical."""
    from experiments.episode import run_episode

    a = run_episode(tiny_scenario, "max-pressure", seed=3, output_dir=tmp_path / "a")
    b = run_episode(tiny_scenario, "max-pressure", seed=3, output_dir=tmp_path / "b",
                    priority=PriorityLayer())
    assert a.trips.equals(b.trips)
