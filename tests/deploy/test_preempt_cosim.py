"""Emergency preemption in the co-simulation: SUMO's emergency vehicle calls the emulated
controllers' preempts over SNMP, the devices serve them, SUMO shows their heads; and the
preemptor's own logic against a scripted traffic view (no SUMO)."""

from __future__ import annotations

from typing import Any

import pytest

from deploy import oids as O
from deploy.central import DeviceLink
from deploy.preempt_cosim import EmergencyOptions, EmergencyPreemptor, EmergencyTrip
from deploy.profile import single_ring_profile
from deploy.snmp import SnmpError
from sim.errors import WulinError

STATES = ("GGGgrrrrGGGgrrrr", "rrrrGGGgrrrrGGGg")
CONTROL_STATE = "1.3.6.1.4.1.1206.4.2.1.6.3.1.2"  # preemptControlState, pinned from ntcip_oids.tsv


class Writer:
    def __init__(self, fail: int = 0) -> None:
        self.sets: list[list[tuple[O.OID, Any]]] = []
        self.fail = fail

    def set(self, pairs: list[tuple[O.OID, Any]]) -> None:
        if self.fail:
            self.fail -= 1
            raise SnmpError("genErr", 1, pairs[0][0])
        self.sets.append(pairs)


class Script:
    """A traffic view that says what the test tells it to."""

    def __init__(self) -> None:
        self.added: list[tuple[str, str, str]] = []
        self.departed: list[str] = []
        self.gone: list[str] = []
        self.next: dict[str, list[tuple[str, int, float]]] = {}

    def add_emergency(self, vid: str, origin: str, destination: str) -> None:
        self.added.append((vid, origin, destination))

    def departed_emergency(self) -> list[str]:
        out, self.departed = self.departed, []
        return out

    def arrived(self) -> list[str]:
        out, self.gone = self.gone, []
        return out

    def ahead(self, vid: str) -> list[tuple[str, int, float]]:
        return self.next.get(vid, [])

    def halted(self, vid: str) -> bool:
        return False


def _preemptor(writer: Writer, **kw: Any) -> EmergencyPreemptor:
    link = DeviceLink("B1", single_ring_profile("B1", 2), None, writer)  # type: ignore[arg-type]
    return EmergencyPreemptor(EmergencyOptions(**kw), {"B1": link}, {"B1": STATES})


def test_calls_the_preempt_of_the_vehicles_link_within_the_distance_and_clears_it() -> None:
    w, tr = Writer(), Script()
    pre = _preemptor(w, trips=(EmergencyTrip(10.0, "a", "b"),), distance=100.0)
    pre.step(9.0, tr)
    assert tr.added == []
    pre.step(10.0, tr)
    assert tr.added == [("emergency.1", "a", "b")]
    tr.departed, tr.next = ["emergency.1"], {"emergency.1": [("B1", 5, 150.0)]}
    pre.step(11.0, tr)
    assert w.sets == []  # still 150 m away
    tr.next = {"emergency.1": [("B1", 5, 90.0)]}  # link 5 is green in stage 1: preempt 2
    pre.step(12.0, tr)
    assert w.sets == [[(O.oid(CONTROL_STATE + ".2"), 1)]]
    pre.step(13.0, tr)
    assert len(w.sets) == 1  # unchanged: not sent again
    tr.next = {"emergency.1": []}  # passed
    pre.step(14.0, tr)
    assert w.sets[-1] == [(O.oid(CONTROL_STATE + ".2"), 0)]
    tr.gone = ["emergency.1"]
    pre.step(15.0, tr)
    log = pre.stats.vehicles["emergency.1"]
    assert (log.travel_time, log.signals, pre.stats.calls, pre.stats.clears) == (4.0, ["B1"], 1, 1)


def test_a_refused_set_is_tried_again_and_no_preempt_mode_sets_nothing() -> None:
    w, tr = Writer(fail=1), Script()
    pre = _preemptor(w)
    tr.departed, tr.next = ["v"], {"v": [("B1", 0, 10.0)]}
    pre.step(1.0, tr)
    assert pre.stats.failed_sets == 1 and w.sets == []
    pre.step(2.0, tr)
    assert w.sets == [[(O.oid(CONTROL_STATE + ".1"), 1)]]
    quiet, tr2 = Writer(), Script()
    off = _preemptor(quiet, preempt=False)
    tr2.departed, tr2.next = ["v"], {"v": [("B1", 0, 10.0)]}
    off.step(1.0, tr2)
    assert quiet.sets == [] and off.stats.vehicles["v"].signals == ["B1"]
    with pytest.raises(WulinError, match="distance"):
        _preemptor(Writer(), distance=0.0)


def test_install_writes_one_pdu_per_preempt_row() -> None:
    w = Writer()
    pre = _preemptor(w)
    pre.install()
    assert len(w.sets) == 6 and all(len(pdu) == 11 for pdu in w.sets)
    assert (O.PREEMPT_DWELL_PHASE + (2,), b"\x02") in w.sets[1]


def test_an_emergency_vehicle_preempts_the_signals_on_its_route_over_snmp() -> None:
    pytest.importorskip("libsumo")
    from controllers.base import make_controller
    from deploy.sumo_bridge import run_cosim
    from sim.scenario import load_scenario

    sc = load_scenario("grid-am-v1")
    seen: dict[str, Any] = {"states": set()}

    def watch(t: float, emus: Any) -> None:
        seen["emus"] = emus
        seen["states"] |= {int(e.value(O.PREEMPT_STATE + (n,))) for e in emus for n in (1, 2)}

    res = run_cosim(sc, make_controller("max-pressure"), 1, end=sc.begin + 200, faults=watch,
                    emergency=EmergencyOptions(trips=(EmergencyTrip(sc.begin + 30, "left1A1", "C1right1"),)))
    assert res.unsafe_count == 0 and res.alarms == 0  # no conflicting green, no skipped clearance
    p = res.preempt
    assert p is not None and p.installed == 9 and p.failed_sets == 0
    (log,) = p.vehicles.values()
    assert log.arrive is not None and log.signals == ["A1", "B1", "C1"]
    assert p.calls == p.clears == 3
    served = {e.profile.signal_id: e.unit.preempts.served for e in seen["emus"]}
    assert all(served[s] >= 1 for s in ("A1", "B1", "C1")) and served["A2"] == 0
    assert {6, 2} <= seen["states"]  # dwell seen, and back to notActive


def test_cosim_emergency_option_errors() -> None:
    from tests.test_cli import wulin

    bad = wulin("cosim", "grid-am-v1", "-c", "max-pressure", "--until", "07:01", "--emergency", "07:00:30,left1A1")
    assert bad.returncode == 2 and "TIME,FROM_EDGE,TO_EDGE" in bad.stderr and "Traceback" not in bad.stderr
