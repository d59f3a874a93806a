"""Bus priority in the co-simulation: SUMO's buses raise and cancel the emulated controllers'
priority requests over SNMP and the devices act on them within their limits; the requester's
logic against a scripted view of the buses (no SUMO); Net-SNMP reads what it set."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from deploy import oids as O
from deploy.central import DeviceLink
from deploy.phase_engine import GREEN
from deploy.priority_cosim import BusOptions, BusRequester, NextSignal
from deploy.profile import single_ring_profile
from sim.errors import WulinError

from .test_emulator_netsnmp import needs_netsnmp
from .test_preempt_cosim import Writer
from .test_preempt_netsnmp import HandClock, get

STATES = ("GGGgrrrrGGGgrrrr", "rrrrGGGgrrrrGGGg")
REQUEST = "1.3.6.1.4.1.32473.1206.3.4.1.2"  # wulinPriorityRequestPhase (deploy.priority, private arc)
REQUEST_STATE = "1.3.6.1.4.1.32473.1206.3.4.1.3"


class Script:
    """A view of the buses that says what the test tells it to."""

    def __init__(self) -> None:
        self.departed: list[str] = []
        self.gone: list[str] = []
        self.next: dict[str, NextSignal] = {}
        self.late: dict[str, float] = {}
        self.waiting: set[str] = set()

    def departed_buses(self) -> list[str]:
        out, self.departed = self.departed, []
        return out

    def arrived(self) -> list[str]:
        out, self.gone = self.gone, []
        return out

    def next_signal(self, vid: str) -> NextSignal | None:
        return self.next.get(vid)

    def lateness(self, vid: str, now: float) -> float:
        return self.late.get(vid, 0.0)

    def waiting_at_signal(self, vid: str) -> bool:
        return vid in self.waiting


def _requester(writer: Any, **kw: Any) -> BusRequester:
    link = DeviceLink("B1", single_ring_profile("B1", 2), None, writer)  # type: ignore[arg-type]
    return BusRequester(BusOptions(**kw), {"B1": link}, {"B1": STATES})


def test_a_late_bus_raises_one_request_within_the_distance_and_cancels_it_once_past() -> None:
    w, tr = Writer(), Script()
    req = _requester(w, distance=100.0)
    tr.departed, tr.next, tr.late = ["line.0"], {"line.0": NextSignal("B1", 5, 150.0)}, {"line.0": 60.0}
    req.step(1.0, tr)
    assert w.sets == []  # 150 m away
    tr.next["line.0"] = NextSignal("B1", 5, 90.0)  # link 5 is green in stage 1: phase 2
    tr.waiting = {"line.0"}
    req.step(2.0, tr)
    assert w.sets == [[(O.oid(REQUEST + ".1"), 2)]]
    tr.late["line.0"] = 0.0  # no longer late: the request stays until it has passed
    req.step(3.0, tr)
    assert len(w.sets) == 1
    tr.next["line.0"] = NextSignal("C1", 5, 300.0)  # passed B1
    req.step(4.0, tr)
    assert w.sets[-1] == [(O.oid(REQUEST + ".1"), 0)]
    assert (req.stats.requests, req.stats.cancels, req.stats.signal_delay) == (1, 1, {"line.0": 3.0})


def test_an_early_bus_asks_only_with_all_and_four_buses_fill_the_request_objects() -> None:
    w, tr = Writer(), Script()
    late_only = _requester(w)
    tr.departed, tr.next = ["a.0"], {"a.0": NextSignal("B1", 0, 50.0)}
    late_only.step(1.0, tr)
    assert w.sets == []  # on time
    w2, tr2 = Writer(), Script()
    every = _requester(w2, buses="all")
    buses = [f"a.{i}" for i in range(5)]
    tr2.departed, tr2.next = buses, {b: NextSignal("B1", 0, 50.0) for b in buses}
    every.step(1.0, tr2)
    assert [pdu[0][0][-1] for pdu in w2.sets] == [1, 2, 3, 4] and every.stats.no_free_request == 1
    tr2.gone = ["a.0"]  # arrived: its object is cancelled and the fifth bus takes it
    every.step(2.0, tr2)
    assert w2.sets[-2:] == [[(O.oid(REQUEST + ".1"), 0)], [(O.oid(REQUEST + ".1"), 1)]]
    every.release()
    assert every.stats.requests == every.stats.cancels == 5 and every.raised == {}


def test_a_refused_set_is_tried_again_and_none_mode_sets_nothing() -> None:
    w, tr = Writer(fail=1), Script()
    req = _requester(w, buses="all")
    tr.departed, tr.next = ["a.0"], {"a.0": NextSignal("B1", 0, 10.0)}
    req.step(1.0, tr)
    assert req.stats.failed_sets == 1 and w.sets == []
    req.step(2.0, tr)
    assert w.sets == [[(O.oid(REQUEST + ".1"), 1)]]
    quiet, tr2 = Writer(), Script()
    off = _requester(quiet, buses="all", request=False)
    tr2.departed, tr2.next, tr2.waiting = ["a.0"], {"a.0": NextSignal("B1", 0, 10.0)}, {"a.0"}
    off.step(1.0, tr2)
    assert quiet.sets == [] and off.stats.signal_delay == {"a.0": 1.0}
    with pytest.raises(WulinError, match="distance"):
        BusOptions(distance=0.0)
    with pytest.raises(WulinError, match="late or all"):
        BusOptions(buses="some")


@needs_netsnmp
def test_net_snmp_reads_the_request_the_requester_set() -> None:
    from deploy.emulator import ControllerEmulator
    from deploy.ntcip import snmp_session

    from .conftest import CAPS, make_plan, make_profile

    clock = HandClock()
    emu = ControllerEmulator(make_profile(), make_plan(), CAPS, snmp_v2c=True, clock=clock).start()
    writer = snmp_session(emu.host, emu.port, replace(emu.credentials, snmp="2c"), True, 2.0, 0)
    try:
        link = DeviceLink("B1", emu.profile, writer, writer)
        req = BusRequester(BusOptions(buses="all"), {"B1": link}, {"B1": STATES})
        tr = Script()
        tr.departed, tr.next = ["a.0"], {"a.0": NextSignal("B1", 5, 40.0)}
        req.step(1.0, tr)
        clock.t = 1.0
        assert get(emu, REQUEST + ".1") == "2" and get(emu, REQUEST_STATE + ".1") in ("2", "3")
        tr.next = {}
        req.step(2.0, tr)
        clock.t = 2.0
        assert get(emu, REQUEST + ".1") == "0" and get(emu, REQUEST_STATE + ".1") in ("1", "4")
    finally:
        writer.close()
        emu.stop()


BUS_ROUTES = """<routes>
    <vType id="bus" vClass="bus" length="12" accel="1.2" decel="4" sigma="0.5" maxSpeed="13.9"/>
    <flow id="line1" type="bus" begin="{begin}" end="{end}" period="40" from="left1A1" to="C1right1"/>
</routes>
"""


def _grid_with_buses(tmp_path: Path) -> Any:
    from sim.scenario import load_scenario

    sc = load_scenario("grid-am-v1")
    routes = tmp_path / "buses.rou.xml"
    routes.write_text(BUS_ROUTES.format(begin=sc.begin + 10, end=sc.begin + 250))
    return replace(sc, route_files=(*sc.route_files, routes))


class Greens:
    """Every green's length at every device, seen each second before the devices tick."""

    def __init__(self) -> None:
        self.last: dict[str, tuple[int, str, int]] = {}
        self.ended: list[tuple[str, int]] = []  # (signal, deciseconds of green seen)
        self.emus: Any = None

    def __call__(self, t: float, emus: Any) -> None:
        self.emus = emus
        for e in emus:
            st = e.unit.engine.state
            before = self.last.get(e.profile.signal_id)
            if before is not None and before[1] == GREEN and (st.interval != GREEN or st.stage != before[0]):
                self.ended.append((e.profile.signal_id, before[2]))
            self.last[e.profile.signal_id] = (st.stage, st.interval, st.elapsed)


def test_buses_on_the_grid_raise_requests_over_snmp_and_the_devices_extend_within_limits(tmp_path: Path) -> None:
    pytest.importorskip("libsumo")
    from deploy.sumo_bridge import run_cosim

    sc = _grid_with_buses(tmp_path)
    greens = Greens()
    res = run_cosim(sc, None, 1, end=sc.begin + 420, faults=greens, buses=BusOptions(buses="all"))
    assert res.controller == "field" and res.central.rounds == 0  # the devices ran their own plans
    assert res.unsafe_count == 0 and res.alarms == 0 and res.flash_entries == 0
    b = res.buses
    assert b is not None and b.buses >= 5 and b.failed_sets == 0
    assert b.requests == b.cancels >= 3 * 5  # each bus at A1, B1 and C1, every one cancelled once past
    assert b.served >= 1 and b.given.requests_changed >= 1
    assert b.given.extended <= 100 * b.given.extensions  # each extension within 10 s (the default)
    assert b.given.early_cut <= 100 * b.given.early_ends  # each early end within 10 s
    assert greens.ended and min(g for _, g in greens.ended) + 10 >= 50  # no green under its 5 s minimum
    assert all(e.unit.priority.served <= 1 + 420 // 90 for e in greens.emus)  # lockout: one per cycle


def test_under_central_control_the_requests_change_nothing(tmp_path: Path) -> None:
    pytest.importorskip("libsumo")
    from controllers.base import make_controller
    from deploy.sumo_bridge import run_cosim

    sc = _grid_with_buses(tmp_path)
    res = run_cosim(sc, make_controller("max-pressure"), 1, end=sc.begin + 200, buses=BusOptions(buses="all"))
    b = res.buses
    assert b is not None and res.unsafe_count == 0 and b.requests >= 3 and b.requests == b.cancels
    g = b.given  # every phase is held or forced off by central: no extension, no early end
    assert (g.extensions, g.early_ends, g.requests_changed) == (0, 0, 0)


def test_cosim_bus_priority_option_errors() -> None:
    from tests.test_cli import wulin

    bad = wulin("cosim", "grid-am-v1", "-c", "field", "--until", "07:01", "--bus-priority", "some")
    assert bad.returncode != 0 and "late, all or none" in bad.stderr + bad.stdout
    assert "Traceback" not in bad.stderr
    bad = wulin("cosim", "grid-am-v1", "-c", "field", "--until", "07:01", "--fault", "loss-all")
    assert bad.returncode != 0 and "need a central controller" in bad.stderr + bad.stdout
