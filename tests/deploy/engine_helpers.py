"""A device on a hand-driven clock, and a trace of its stages, for the phase engine tests."""

from __future__ import annotations

from dataclasses import dataclass, replace

from controllers.plan import TimingPlan
from deploy import oids as O
from deploy.device_model import DeviceModel
from deploy.profile import single_ring_profile

from .conftest import CAPS, conflicts_for, make_plan

STATES = ("GGGgrrrrGGGgrrrr", "rrrrGGGgrrrrGGGg")


@dataclass
class Interval:
    """One interval the engine ran: stage, green / yellow / red, from when, how long (seconds)."""

    stage: int
    kind: str
    start: float
    length: float = 0.0


class Bench:
    """A device whose clock the test moves a second at a time, recording what it ran."""

    def __init__(self, plan: TimingPlan | None = None, n_stages: int = 2, tod: float = 0.0, **kw: object) -> None:
        self.t = tod
        plan = plan or make_plan()
        kw.setdefault("conflicts", conflicts_for("B1") if plan.n_links == 16 else None)
        self.dev = DeviceModel(single_ring_profile("B1", n_stages), plan, CAPS, clock=lambda: self.t,
                               tod_start=tod, **kw)  # type: ignore[arg-type]
        self.dev.advance()
        self.trace: list[Interval] = []
        self._note()

    def set(self, *pairs: tuple[O.OID, int]) -> str:
        with self.dev.lock:
            status = self.dev.set(list(pairs)).status
        self._note()  # a command acts at the instant it arrives
        return status

    def run(self, seconds: float) -> None:
        for _ in range(int(seconds)):
            self.t += 1
            self.dev.advance()
            self._note()

    def _note(self) -> None:
        st = self.dev.unit.engine.state
        kind = "flash" if self.dev.unit.engine.flash else st.interval
        if not self.trace or (self.trace[-1].stage, self.trace[-1].kind) != (st.stage, kind):
            if self.trace:  # the state after time t is what runs from t on
                self.trace[-1].length = self.t - self.trace[-1].start
            self.trace.append(Interval(st.stage, kind, self.t))
        self.trace[-1].length = self.t - self.trace[-1].start + 1

    def closed(self) -> list[Interval]:
        """Every interval that has ended (the last one may still be running)."""
        return self.trace[:-1]


def plan_with(n: int = 2, greens: tuple[float, ...] | None = None, **stage_kw: float) -> TimingPlan:
    """A plan over the grid's links with ``n`` stages (stage states repeat) and stage fields."""
    greens = greens or (40.0,) * n
    base = make_plan()
    stages = tuple(replace(base.stages[0], name=f"stage {k}", state=STATES[k % 2], green=g, **stage_kw)
                   for k, g in enumerate(greens))
    return replace(base, stages=stages, cycle=sum(greens) + n * base.clearance)
