"""SignalActuator: property tests (hypothesis) on random decision sequences, and one SUMO run."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.actuator import SignalActuator
from sim.errors import WulinError
from sim.state import DistrictLayout
from sim.topology import load_signal_specs
from tests.actuator_reference import ReferenceActuator
from tests.conftest import REPO

GRID_NET = REPO / "networks" / "grid" / "grid.net.xml"
GREEN = "Gg"


@pytest.fixture(scope="module")
def layout() -> DistrictLayout:
    return DistrictLayout.from_specs(load_signal_specs(GRID_NET))


class FakeSim:
    """Just enough of Simulation for the actuator: a clock and setRedYellowGreenState."""

    def __init__(self) -> None:
        self.time = 0.0
        self.calls: list[tuple[float, str, str]] = []
        self.conn = SimpleNamespace(trafficlight=SimpleNamespace(setRedYellowGreenState=self._set))

    def _set(self, tls: str, state: str) -> None:
        self.calls.append((self.time, tls, state))


class FakePhaseSim(FakeSim):
    """FakeSim plus the program calls of :class:`SignalActuator`, recorded and replayed the
    way SUMO runs a static program (:meth:`shown`)."""

    def __init__(self) -> None:
        super().__init__()
        tl = self.conn.trafficlight
        tl.Phase = lambda *a: a
        tl.Logic = lambda *a: a
        tl.setProgram = lambda tls, prog: None
        tl.setProgramLogic = lambda tls, logic: self._call(tls, "logic", logic)
        tl.setPhase = lambda tls, k: self._call(tls, "phase", k)
        tl.setPhaseDuration = lambda tls, d: self._call(tls, "for", d)

    def _call(self, tls: str, op: str, arg: object) -> None:
        self.calls.append((self.time, tls, (op, arg)))

    def shown(self, tls: str, end: float) -> list[tuple[float, str]]:
        """The states signal ``tls`` showed up to ``end``, as (time, state) at each change:
        the calls replayed, phases ending at their duration and moving to their ``next``."""
        phases: list = []
        k, until = 0, math.inf
        out: list[tuple[float, str]] = []

        def show(t: float) -> None:
            if not out or out[-1][1] != phases[k][1]:
                out.append((t, phases[k][1]))

        def run_to(t1: float) -> None:  # SUMO switches at the first step at or after `until`
            nonlocal k, until
            while until <= t1:
                nxt = phases[k][4][0] if len(phases[k]) > 4 else (k + 1) % len(phases)
                t = until
                k, until = nxt, t + phases[nxt][0]
                show(t)

        for t, who, (op, arg) in self.calls:
            if who != tls:
                continue
            if phases:
                run_to(t)
            if op == "logic":
                phases = list(arg[3])
            elif op == "phase":
                k, until = arg, t + phases[arg][0]
                show(t)
            else:
                until = t + arg
        run_to(end)
        return out


def views(act):
    """What controllers and observers read from the actuator, as plain lists (and the episode
    loop's one-pass ``views()`` agrees with the properties)."""
    out = (act.stage.tolist(), act.stage_time.tolist(), act.in_transition.tolist(),
           act.mode.tolist(), act.target.tolist(), act.pending.tolist(), act.states)
    v_stage, v_time, v_trans = act.views()
    assert v_stage == out[0] and v_trans == out[2]
    assert np.array_equal(np.array(v_time, dtype=np.float32), act.stage_time)
    return out


def drive_jumping(layout, decisions, every, yellow, all_red, min_green, max_green, extra=0,
                  seen=None):
    """The episode loop's way: tick only at decisions and at ``next_event``."""
    sim = FakePhaseSim()
    act = SignalActuator(sim, layout, yellow=yellow, all_red=all_red, min_green=min_green,
                         max_green=max_green, record=True, step_length=1.0)
    act.reset()
    end = float(len(decisions) * every + extra)
    t, k = 0.0, 0
    while t < end:
        if k < len(decisions) and t >= k * every:
            if seen is not None:
                seen.append((t, views(act)))
            act.request(decisions[k])
            k += 1
        nxt = min(k * every if k < len(decisions) else end, act.next_event, end)
        t = max(t + 1.0, float(np.ceil(nxt - 1e-9)))
        sim.time = t
        act.tick(t)
    return sim, act


def drive(layout, decisions, every, yellow, all_red, min_green, max_green, extra_steps=0,
          seen=None):
    """The reference's way: write every state, tick every step."""
    sim = FakeSim()
    act = ReferenceActuator(sim, layout, yellow=yellow, all_red=all_red, min_green=min_green,
                            max_green=max_green, record=True)
    act.reset()
    total = len(decisions) * every + extra_steps
    for step in range(total):
        if step % every == 0 and step // every < len(decisions):
            if seen is not None:
                seen.append((sim.time, views(act)))
            act.request(decisions[step // every])
        sim.time += 1.0
        act.tick()
    return sim, act


def check_rules(layout, history, yellow, all_red, min_green, max_green, end):
    """Check the recorded per-signal state sequence against the actuator's rules."""
    by_sig: dict[int, list[tuple[float, str]]] = {}
    for t, s, state in history:
        by_sig.setdefault(s, []).append((t, state))
    for s, seq in by_sig.items():
        spec = layout.specs[s]
        stages = spec.stages
        for (t0, a), (t1, b) in zip(seq, seq[1:], strict=False):
            assert a != b, "a state was written although it did not change"
            for i, (ca, cb) in enumerate(zip(a, b, strict=True)):
                if ca in GREEN and cb == "r":
                    raise AssertionError(f"{spec.id} link {i}: green -> red without yellow at {t1}")
                if ca == "y" and cb in GREEN:
                    raise AssertionError(f"{spec.id} link {i}: yellow -> green at {t1}")
            dur = t1 - t0
            if a in stages:
                assert dur >= min_green - 1e-9, f"{spec.id}: green {a} lasted {dur} < min green"
                assert dur <= max_green + 1e-9, f"{spec.id}: green {a} lasted {dur} > max green"
            elif "y" in a:
                assert abs(dur - yellow) < 1e-9, f"{spec.id}: yellow lasted {dur}"
            else:
                assert abs(dur - all_red) < 1e-9, f"{spec.id}: all-red lasted {dur}"
        for t, state in seq:
            assert spec.conflicting_greens(state) == [], f"{spec.id} at {t}: conflicting greens"
            if state not in stages:  # a clearance state: its greens are a subset of the last stage
                assert "G" not in state.replace("g", "") or any(
                    all(c not in GREEN or st_[i] in GREEN for i, c in enumerate(state)) for st_ in stages
                )
        # the last green lasts no longer than max green either
        t_last, last = seq[-1]
        if last in stages and len(stages) > 1:
            assert end - t_last <= max_green + 1e-9


decision_lists = st.integers(min_value=5, max_value=40).flatmap(
    lambda n: st.lists(st.lists(st.integers(-1, 1), min_size=9, max_size=9), min_size=n, max_size=n)
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    decisions=decision_lists,
    every=st.integers(1, 7),
    yellow=st.sampled_from([1.0, 2.0, 3.0, 4.0]),
    all_red=st.sampled_from([0.0, 1.0, 2.0, 3.0]),
    min_green=st.sampled_from([0.0, 3.0, 5.0, 10.0]),
    max_green=st.sampled_from([15.0, 30.0, 90.0]),
)
def test_random_decisions_follow_the_rules(layout, decisions, every, yellow, all_red, min_green,
                                           max_green) -> None:
    decs = [np.array(d, dtype=np.int32) for d in decisions]
    sim, act = drive(layout, decs, every, yellow, all_red, min_green, max_green)
    end = sim.time
    check_rules(layout, act.history, yellow, all_red, min_green, max_green, end)
    # every write went to SUMO, and only changes were written
    assert len(sim.calls) == len(act.history)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    decisions=decision_lists,
    every=st.integers(1, 7),
    yellow=st.sampled_from([1.0, 2.0, 3.0]),
    all_red=st.sampled_from([0.0, 1.0, 2.0]),
    min_green=st.sampled_from([0.0, 3.0, 10.0]),
    max_green=st.sampled_from([15.0, 30.0, 90.0]),
)
def test_jumping_emits_the_reference_states(layout, decisions, every, yellow, all_red,
                                                      min_green, max_green) -> None:
    """Ticking only at decisions and ``next_event`` (SUMO running the clearances) emits the
    same state sequence, at the same times, as writing every state and ticking every step;
    and that sequence follows the rules."""
    decs = [np.array(d, dtype=np.int32) for d in decisions]
    seen_ref: list = []
    seen: list = []
    _, ref = drive(layout, decs, every, yellow, all_red, min_green, max_green, extra_steps=20,
                   seen=seen_ref)
    sim, act = drive_jumping(layout, decs, every, yellow, all_red, min_green, max_green, extra=20,
                             seen=seen)
    # at every decision the views (derived from booked change times in this mode) are the
    # ones of writing every state: stage, stage time, transition, mode, target, queue, states
    assert seen == seen_ref
    # lazily booked clearance ends enter the history late: compare in time order
    def by_time(history):
        return sorted(history, key=lambda h: (h[0], h[1]))

    assert by_time(act.history) == by_time(ref.history)
    check_rules(layout, act.history, yellow, all_red, min_green, max_green, sim.time)
    # SUMO, running the programs and phases it was handed, shows exactly that sequence; its
    # calls come only when a stage change begins or is armed (none for clearance ends)
    assert len(sim.calls) == act.writes + layout.n_signals  # + the programs installed at reset
    for s, tls in enumerate(layout.signal_ids):
        assert sim.shown(tls, sim.time) == [(t, st_) for t, s_, st_ in by_time(ref.history)
                                             if s_ == s]


@settings(max_examples=40, deadline=None)
@given(decisions=decision_lists, final=st.lists(st.integers(0, 1), min_size=9, max_size=9),
       every=st.integers(1, 5))
def test_no_decision_is_skipped(layout, decisions, final, every) -> None:
    """After any sequence, a request held long enough is served by every signal."""
    decs = [np.array(d, dtype=np.int32) for d in decisions]
    decs.append(np.array(final, dtype=np.int32))
    # the final request is made once; no later request replaces it
    sim, act = drive_jumping(layout, decs, every, 3.0, 2.0, 5.0, 1000.0, extra=30)
    assert act.stage.tolist() == final
    assert not act.in_transition.any()


def test_request_during_transition_is_queued(layout) -> None:
    sim = FakePhaseSim()
    act = SignalActuator(sim, layout, yellow=3, all_red=2, min_green=5, max_green=1000, record=True)
    act.reset()
    n = layout.n_signals
    for _ in range(6):
        sim.time += 1
        act.tick()
    act.request(np.ones(n, np.int32))      # 0 -> 1 starts (min green served)
    assert act.in_transition.all()
    sim.time += 1
    act.tick()
    act.request(np.zeros(n, np.int32))     # back to 0, asked during the yellow: queued
    assert (act.pending == 0).all()
    for _ in range(4):
        sim.time += 1
        act.tick()
    assert (act.stage == 1).all() and not act.in_transition.any()  # 1 served first...
    for _ in range(5):
        sim.time += 1
        act.tick()
    assert act.in_transition.all()          # ...then, after its minimum green, back to 0
    for _ in range(5):
        sim.time += 1
        act.tick()
    assert (act.stage == 0).all()


def test_max_green_forces_next_stage(layout) -> None:
    sim, act = drive_jumping(layout, [np.full(9, -1, np.int32)], 1, 3.0, 2.0, 5.0, 20.0, extra=30)
    stage_changes = [h for h in act.history if h[2] in layout.specs[h[1]].stages and h[0] > 0]
    assert stage_changes and all(abs(t - 25.0) < 1e-9 for t, _, _ in stage_changes)
    assert (act.stage == 1).all()


def test_bad_requests_and_parameters(layout) -> None:
    act = SignalActuator(FakePhaseSim(), layout)
    act.reset()
    with pytest.raises(WulinError, match="does not exist"):
        act.request(np.full(9, 5, np.int32))
    with pytest.raises(WulinError, match="one entry per signal"):
        act.request(np.zeros(3, np.int32))
    with pytest.raises(WulinError, match="max_green < min_green"):
        SignalActuator(FakeSim(), layout, min_green=10, max_green=5)
    with pytest.raises(WulinError, match="yellow must be > 0"):
        SignalActuator(FakeSim(), layout, yellow=0.0)
    with pytest.raises(WulinError, match="one value per signal"):
        SignalActuator(FakeSim(), layout, yellow=[3.0, 3.0])


@pytest.mark.parametrize("min_green,every", [(5.0, 5), (12.0, 3)])
@pytest.mark.parametrize("reference", [True, False])
def test_drives_sumo(tiny_scenario, reference, min_green, every) -> None:
    """In SUMO, during every step the signals show the states the actuator emitted before it
    (switched by the program SUMO runs; written by the reference), and both give the same
    traffic.
    Requests every 3 s against a 12 s minimum green arm, re-arm and disarm changes."""
    from sim.simulation import Simulation

    lay = DistrictLayout.from_specs(load_signal_specs(tiny_scenario.net_file))
    with Simulation(tiny_scenario, seed=3) as sim:
        make = ReferenceActuator if reference else SignalActuator
        act = make(sim, lay, record=True, min_green=min_green)
        act.reset()
        rng = np.random.default_rng(0)
        vehicles = []
        for step in range(200):
            if step % every == 0:
                act.request(rng.integers(-1, lay.n_stages).astype(np.int32))
            expected = act.states  # what vehicles see during the next step
            sim.step()
            shown = [sim.conn.trafficlight.getRedYellowGreenState(i) for i in lay.signal_ids]
            assert shown == expected, f"step {step}"
            act.tick()
            vehicles.append(sim.conn.vehicle.getIDList())
    assert len(act.history) > lay.n_signals
    traces = _TRACES.setdefault((min_green, every), {})
    traces[reference] = (sorted(act.history, key=lambda h: (h[0], h[1])), vehicles)
    if len(traces) == 2:
        assert traces[True] == traces[False]


_TRACES: dict[tuple[float, int], dict[bool, object]] = {}


@pytest.mark.parametrize("yellow,all_red", [(3.0, 2.0), (4.0, 1.0), (3.0, 0.0)])
def test_run_cycle_in_sumo(tiny_scenario, yellow, all_red) -> None:
    """Whole cycles handed to SUMO: at every step the signals show what the actuator's views
    say, the recorded sequence follows the rules, and each cycle ends when run_cycle said."""
    from sim.simulation import Simulation

    lay = DistrictLayout.from_specs(load_signal_specs(tiny_scenario.net_file))
    rng = np.random.default_rng(1)
    with Simulation(tiny_scenario, seed=3) as sim:
        act = SignalActuator(sim, lay, record=True, yellow=yellow,
                             all_red=all_red, min_green=5.0, max_green=60.0)
        act.reset()
        t0 = sim.time
        ends = [t0] * lay.n_signals
        cycles = 0
        for step in range(400):
            for s in range(lay.n_signals):
                if sim.time >= ends[s] - 1e-9:
                    greens = rng.integers(2, 30, int(lay.n_stages[s])).astype(float).tolist()
                    ends[s] = act.run_cycle(s, greens)
                    cycles += 1
                    assert ends[s] > sim.time
            expected = act.states
            stage = act.stage.tolist()
            v_stage, v_time, v_trans = act.views()  # the loop's one-pass views
            assert v_stage == stage and v_trans == act.in_transition.tolist()
            assert np.array_equal(np.array(v_time, dtype=np.float32), act.stage_time)
            sim.step()
            shown = [sim.conn.trafficlight.getRedYellowGreenState(i) for i in lay.signal_ids]
            assert shown == expected, f"step {step}"
            act.tick()
            # a cycle is never cut short or run past: stage K-1 green while its cycle runs out
            for s in range(lay.n_signals):
                if act.stage[s] != stage[s]:
                    assert act.in_transition[s] or int(act.stage[s]) == stage[s] + 1 or \
                        int(act.stage[s]) == 0
        end = sim.time
    assert cycles > 2 * lay.n_signals
    check_rules(lay, act.history, yellow, all_red, 5.0, 60.0, end)


def test_run_cycle_errors(layout) -> None:
    sim = FakePhaseSim()
    act = SignalActuator(sim, layout)
    with pytest.raises(WulinError, match="greens"):
        act.reset()
        act.run_cycle(0, [10.0])
    end = act.run_cycle(0, [10.0] * int(layout.n_stages[0]))
    assert end > 0
    with pytest.raises(WulinError, match="running cycle"):
        act.run_cycle(0, [10.0] * int(layout.n_stages[0]))


def test_request_after_run_cycle_in_sumo(tiny_scenario) -> None:
    """A cycle program holds only its cycle's phases: a stage change after it (a request, then
    maximum green) re-sends the base program, and SUMO shows what the views say throughout."""
    from sim.simulation import Simulation

    lay = DistrictLayout.from_specs(load_signal_specs(tiny_scenario.net_file))
    with Simulation(tiny_scenario, seed=3) as sim:
        act = SignalActuator(sim, lay, record=True, yellow=3.0,
                             all_red=2.0, min_green=5.0, max_green=40.0)
        act.reset()
        ends = [act.run_cycle(s, [8.0] * int(lay.n_stages[s])) for s in range(lay.n_signals)]
        requested = False
        for step in range(200):
            if not requested and sim.time >= max(ends) + 1:
                act.request(np.zeros(lay.n_signals, np.int64))  # back to stage 0, off-cycle
                requested = True
            expected = act.states
            sim.step()
            shown = [sim.conn.trafficlight.getRedYellowGreenState(i) for i in lay.signal_ids]
            assert shown == expected, f"step {step}"
            act.tick()
        end = sim.time
    assert requested and not any(act._cycle_installed)
    check_rules(lay, act.history, 3.0, 2.0, 5.0, 40.0, end)
