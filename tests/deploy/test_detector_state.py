"""Central control's state from the devices' detector objects: the queue estimate from known
readings, detectors mapped to lanes, the detector poll over SNMP (project client and Net-SNMP),
and the controllers that read what the detectors cannot give."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np
import pytest

from deploy import oids as O
from deploy.central import DETECTOR_PERIOD_S, DetectorSample, DeviceLink, NtcipActuator
from deploy.detector_state import DetectorStateReader, LaneQueues, check_fields
from deploy.detectors import DetectorReading
from deploy.emulator import ControllerEmulator
from deploy.ntcip import snmp_session
from deploy.profile import single_ring_profile
from sim.errors import WulinError

from .conftest import CAPS, conflicts_for
from .engine_helpers import plan_with
from .test_emulator_netsnmp import needs_netsnmp, run, target, v3
from .test_phase_control_snmp import Clock


def test_the_arrival_rate_is_the_mean_stop_bar_volume() -> None:
    q = LaneQueues([75.0], window_s=1000)
    for v, occ in ((1, 100), (0, 0), (1, 100), (0, 0)):  # free flow: two cars in 4 s, none stopped
        q.update(0, v, occ, present=False)
    assert q.rate[0] == pytest.approx(0.5) and q.queue[0] == 0.0


def test_a_held_lane_grows_at_the_arrival_rate_and_a_served_one_drains() -> None:
    q = LaneQueues([75.0], window_s=1000)  # 10 cars of storage
    for v, occ in ((1, 100), (0, 0), (1, 100), (0, 0)):
        q.update(0, v, occ, present=False)
    q.update(0, 0, 200, present=True)  # red: a car stands on the stop bar
    assert q.queue[0] == 1.0  # at least the car the loop sees (rate 2/5 alone would say 0.4)
    expect = 1.0
    for k in range(6, 10):  # still red: the queue grows by the running mean rate, 2 cars in k s
        q.update(0, 0, 200, present=True)
        expect += 2 / k
        assert q.queue[0] == pytest.approx(expect)
    before = q.queue[0]
    q.update(0, 1, 200, present=True)  # green: one car leaves, the rate (3 in 10 s) arrives
    assert q.queue[0] == pytest.approx(max(before + 0.3 - 1, 1.0))
    q.update(0, 0, 0, present=False)  # a second with the stop bar never covered: no queue
    assert q.queue[0] == 0.0


def test_the_queue_never_exceeds_what_the_lane_holds() -> None:
    q = LaneQueues([15.0], window_s=10)  # 2 cars of storage
    for _ in range(10):
        q.update(0, 3, 200, present=True)  # a busy lane: rate 3 cars/s
    for _ in range(30):
        q.update(0, 0, 200, present=True)
    assert q.queue[0] == 2.0


def _state(n_in: int, n_out: int, n_sig: int) -> SimpleNamespace:
    f = np.float32
    return SimpleNamespace(time=0.0, queue=np.zeros(n_in, f), count=np.zeros(n_in, f), out_count=np.zeros(n_out, f),
                           stage=np.zeros(n_sig, np.int32), stage_time=np.zeros(n_sig, f),
                           in_transition=np.zeros(n_sig, np.bool_))


def test_detectors_map_to_their_lanes_and_downstream_lanes() -> None:
    # device 0: detectors 1, 2 on lanes a0, a1; device 1: detector 1 on lane b0, which a0 feeds
    rd = DetectorStateReader(["a0", "a1", "b0"], [75.0, 75.0, 75.0], ["b0", "exit"], [[0, 1], [2]])
    first = [DetectorSample(7, [0, 1], [200, 60], active=0b01, new=True), DetectorSample(3, [0], [200], 1, new=True)]
    rd.update(first)
    st = rd.read(_state(3, 2, 2), [1, 0], [4.0, 12.0], [False, True], 25200.0)
    assert st.queue.tolist() == [1.0, 0.0, 1.0]  # a0 and b0 see a standing car; a1 a car passing (1 in, 1 out)
    assert st.count.tolist() == st.queue.tolist()  # a stop-bar loop sees only the queue
    assert st.out_count.tolist() == [1.0, 0.0]  # b0's estimate; a lane leaving the district: free
    assert st.stage.tolist() == [1, 0] and st.stage_time.tolist() == [4.0, 12.0]
    assert st.in_transition.tolist() == [False, True] and st.time == 25200.0
    # a device not read this round (new False) keeps its lanes' estimates
    rd.update([DetectorSample(8, [0, 0], [0, 0], 0, new=True), DetectorSample(3, [5], [0], 0, new=False)])
    st = rd.read(st, [1, 0], [5.0, 13.0], [False, True], 25201.0)
    assert st.queue.tolist() == [0.0, 0.0, 1.0] and rd.periods == 3


def test_controllers_reading_what_detectors_cannot_give_are_refused() -> None:
    from controllers.base import make_controller
    from deploy.sumo_bridge import fields_read

    for name in ("max-pressure", "sotl"):
        check_fields(name, fields_read(make_controller(name)))
    check_fields("max-pressure", fields_read(make_controller("max-pressure", pressure="queue")))
    with pytest.raises(WulinError, match=r"'schedule-driven' reads speed .* --state sumo"):
        check_fields("schedule-driven", fields_read(make_controller("schedule-driven")))
    from agents.policy_controller import PolicyController
    from agents.shipped import resolve_run

    policy = PolicyController(resolve_run("wulin-am-peak-ppo"))
    check_fields("policy", fields_read(policy))  # the Wulin policy observes counts and queues
    with pytest.raises(WulinError, match="reads waiting"):
        check_fields("policy", fields_read(SimpleNamespace(state_fields=("queue", "waiting"))))
    with pytest.raises(WulinError, match="reads approach"):  # per-vehicle approach bins
        check_fields("policy", fields_read(SimpleNamespace(state_fields=("count", "approach"))))


# ----------------------------------------------------------------- over SNMP, on a real emulator


@pytest.fixture
def field() -> Iterator[tuple[ControllerEmulator, NtcipActuator, Clock]]:
    clock = Clock()
    emu = ControllerEmulator(single_ring_profile("B1", 2), plan_with(), CAPS, clock=clock,
                             conflicts=conflicts_for("B1"), detectors={1: 1, 2: 2, 3: 2}).start()
    link = DeviceLink("B1", emu.profile, snmp_session(emu.host, emu.port, emu.credentials, False, 1.0, 1),
                      snmp_session(emu.host, emu.port, emu.credentials, True, 1.0, 0), detectors=3)
    central = NtcipActuator([link], [30.0], heartbeat_s=2, backup_s=5, read_detectors=True)
    yield emu, central, clock
    link.reader.close()
    link.writer.close()
    emu.stop()


def _tick(emu: ControllerEmulator, clock: Clock, readings: dict[int, DetectorReading]) -> None:
    emu.unit.feed(readings)
    clock.t += 1
    with emu.lock:
        emu.advance()


def test_central_reads_each_period_of_the_detectors_in_its_poll(field) -> None:  # noqa: ANN001
    emu, central, clock = field
    central.take_control(0.0)
    assert emu.value(O.VOLUME_OCCUPANCY_PERIOD) == DETECTOR_PERIOD_S
    assert not central.samples[0].new  # the period before take-over is not one of central's
    _tick(emu, clock, {1: DetectorReading(True, 1), 3: DetectorReading(True, 0)})
    central.poll(clock.t)
    s = central.samples[0]
    assert s.new and s.volume == [1, 0, 0] and s.occupancy == [200, 0, 200] and s.active == 0b101
    central.poll(clock.t)  # the same period again: not new
    assert not central.samples[0].new
    _tick(emu, clock, {1: DetectorReading(False, 0), 3: DetectorReading(False, 0)})  # an input holds until fed
    _tick(emu, clock, {2: DetectorReading(True, 2)})  # a period central never read
    central.poll(clock.t)
    s = central.samples[0]
    assert s.new and s.volume == [0, 2, 0] and s.active == 0b010 and central.stats.detector_gaps == 1
    assert central.stats.timeouts == 0 and central.stats.polls == 4  # one GET per round, detectors included


@needs_netsnmp
def test_net_snmp_reads_the_detector_objects(field) -> None:  # noqa: ANN001
    emu, central, clock = field
    creds = emu.credentials
    assert creds.writer is not None
    ok = run("snmpset", *v3(creds.writer), "-Oqv", target(emu), O.dotted(O.VOLUME_OCCUPANCY_PERIOD), "i", "1")
    assert ok.returncode == 0, ok.stderr
    _tick(emu, clock, {2: DetectorReading(True, 3)})
    oids = [O.VOLUME_OCCUPANCY_SEQUENCE, O.DETECTOR_VOLUME + (2,), O.DETECTOR_OCCUPANCY + (2,),
            O.DETECTOR_STATUS_ACTIVE + (1,)]
    got = run("snmpget", *v3(creds.reader), "-Oqv", target(emu), *map(O.dotted, oids))
    assert got.returncode == 0, got.stderr
    assert got.stdout.split() == ["1", "3", "200", str(0b010)]


def test_a_car_standing_on_a_loop_is_counted_once() -> None:
    """The co-simulation's loops feed the devices' detectors: presence while a car is on the loop,
    volume the cars that passed it (the cumulative count's difference), not the cars on it."""
    pytest.importorskip("libsumo")
    from deploy.sumo_bridge import SignalBridge

    occupancy = iter([100.0, 100.0, 100.0, 40.0, 0.0])  # a car stands on the loop, then leaves
    passed = iter([0, 0, 0, 1, 1])
    loop = SimpleNamespace(getLastStepOccupancy=lambda _lid: next(occupancy),
                           getIntervalVehicleNumber=lambda _lid: next(passed))
    sim = SimpleNamespace(conn=SimpleNamespace(trafficlight=SimpleNamespace(setRedYellowGreenState=None),
                                               inductionloop=loop))
    fed: list[dict[int, DetectorReading]] = []
    bridge = SignalBridge(sim, {"B1": SimpleNamespace(unit=SimpleNamespace(feed=fed.append))},  # type: ignore[arg-type]
                          {}, {"B1": [(1, "loop")]})
    for _ in range(5):
        bridge.feed()
    assert [(r[1].present, r[1].count) for r in fed] == [(True, 0), (True, 0), (True, 0), (True, 1), (False, 0)]
