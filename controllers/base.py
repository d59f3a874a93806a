"""The one controller interface, a lazy registry and the ``check_controller`` conformance helper.

A controller decides *which* stage each signal should serve; the
:class:`~sim.actuator.SignalActuator` decides *how* (yellow, all-red, minimum and maximum
green), the same way for every controller, RL policies included.

A :data:`Decision` is an ``int32`` array with one entry per signal in layout order (the order
of :attr:`DistrictLayout.specs`, sorted by id): the index of the stage to serve next in
``SignalSpec.stages``, or ``-1`` to keep what the signal is doing.

Controllers that let SUMO run the signals itself (the network's own programs, SUMO's
``actuated`` and ``delay_based`` types, fixed-time plans exported as ``tlLogic``) set
``native = True`` and return their programs from ``sumo_additional_files``; the episode loop
then never creates an actuator and never calls ``act``.

The registry maps names to ``"module:Class"`` strings, so importing this module imports
neither numba nor any controller implementation; :func:`make_controller` imports on demand.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from sim.errors import WulinError

if TYPE_CHECKING:
    from sim.scenario import Scenario
    from sim.state import DistrictLayout, DistrictState

Decision = np.ndarray
"""``int32`` per signal (layout order): the stage to serve next; ``-1`` keeps the current one."""

KEEP = -1


@runtime_checkable
class Controller(Protocol):
    """What every controller provides.

    Attributes:
        name: Registered name (``"max-pressure"``).
        decision_interval: Simulated seconds between :meth:`act` calls.
        native: True when SUMO runs the signals itself (no actuator, no ``act`` calls).
    """

    name: str
    decision_interval: float

    def reset(self, layout: DistrictLayout, seed: int) -> None:
        """Prepare for a new episode on ``layout`` (clear all internal state)."""
        ...

    def act(self, state: DistrictState) -> Decision:
        """The stage each signal should serve next (``-1`` = keep)."""
        ...


class ControllerBase:
    """Convenience base class: defaults for the optional parts of :class:`Controller`.

    Subclasses set ``name`` and implement :meth:`reset` and :meth:`act` (or set
    ``native = True`` and implement :meth:`sumo_additional_files`).
    """

    name: str = "base"
    decision_interval: float = 5.0
    native: bool = False
    #: Keyword arguments for :class:`~sim.actuator.SignalActuator` (yellow, all_red,
    #: min_green, max_green: scalars or per-signal arrays); the episode loop passes them on.
    actuator_params: Mapping[str, Any] = {}
    #: True when the controller wants stop-line vehicle counts per in-lane: the episode loop
    #: adds E1 loops and hands it a :class:`sim.detectors.LaneCounter` (``attach_lane_counter``)
    #: whose ``read(lanes)`` the controller calls when it needs counts.
    wants_lane_counts: bool = False
    #: False when ``act`` uses only ``state.time`` and the actuator's stage fields, so the
    #: episode loop can skip reading lanes from SUMO.
    needs_state: bool = True

    def reset(self, layout: DistrictLayout, seed: int) -> None:
        self.layout = layout
        self.seed = seed

    def act(self, state: DistrictState) -> Decision:
        raise NotImplementedError(f"controller {self.name!r} does not implement act()")

    def next_decision_time(self, time: float) -> float:
        """Earliest time after ``act`` at ``time`` when ``act`` may return anything but keep.

        The episode loop does not call ``act`` before then (it still calls it on the
        ``decision_interval`` grid).  Default: ``time + decision_interval``; controllers
        with internal clocks (webster-online) return their next stage end.  Controllers
        whose ``act`` updates state every call (SOTL's counters) keep the default.
        """
        return time + self.decision_interval

    def sumo_additional_files(self, scenario: Scenario, workdir: Path) -> list[Path]:
        """Extra SUMO additional files (programs, detectors); none by default."""
        return []

    def attach_lane_counter(self, counter: Any) -> None:
        """Receive the stop-line counter (``counter.read(lanes)`` -> cumulative counts)."""
        self.lane_counter = counter

    def keep(self) -> Decision:
        """A decision that keeps every signal as it is."""
        return np.full(self.layout.n_signals, KEEP, dtype=np.int32)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


# ------------------------------------------------------------------ registry
_REGISTRY: dict[str, str | Callable[..., Any]] = {
    "field": "controllers.native:FieldController",
    "actuated": "controllers.native:ActuatedController",
    "delay-based": "controllers.native:DelayBasedController",
    "fixed-time": "controllers.fixed_time:FixedTimeController",
    "webster": "controllers.webster:WebsterController",
    "webster-online": "controllers.webster:OnlineWebsterController",
    "max-pressure": "controllers.max_pressure:MaxPressureController",
    "sotl": "controllers.sotl:SOTLController",
    # a trained stable-baselines3 policy: make_controller("policy", run="runs/<name>")
    "policy": "agents.policy_controller:PolicyController",
}
_DESCRIPTIONS: dict[str, str] = {
    "field": "the network's own signal programs, run by SUMO (field-like fixed time)",
    "actuated": "SUMO 'actuated' programs (gap-out on automatic E1 detectors)",
    "delay-based": "SUMO 'delay_based' programs (time-loss on automatic E2 detectors)",
    "fixed-time": "a TimingPlan per signal (from the network's programs or a plan file), as tlLogic",
    "webster": "Webster plan from the demand in a time window, as tlLogic",
    "webster-online": "Webster splits recomputed every cycle from stop-line counts",
    "max-pressure": "Varaiya max-pressure, batched Numba kernel (param max_red=SECONDS: serve "
                    "a stage with vehicles red that long)",
    "sotl": "self-organising traffic lights (Gershenson), batched Numba kernel",
    "policy": "a trained RL policy (param run=RUN_DIR from `wulin train`)",
}


def register(name: str, target: str | None = None, description: str = "") -> Callable[[Any], Any]:
    """Register a controller class under ``name``.

    Use as a decorator (``@register("mine")``) or with a lazy ``"module:Class"`` target
    (``register("mine", "pkg.mod:Mine")``), which imports nothing until it is made.
    """
    if target is not None:
        _REGISTRY[name] = target
        if description:
            _DESCRIPTIONS[name] = description
        return lambda cls: cls

    def deco(cls: Any) -> Any:
        _REGISTRY[name] = cls
        if description:
            _DESCRIPTIONS[name] = description
        return cls

    return deco


def available_controllers() -> list[str]:
    """Registered controller names, sorted."""
    return sorted(_REGISTRY)


def describe_controller(name: str) -> str:
    """One line about a registered controller."""
    return _DESCRIPTIONS.get(name, "")


def controller_class(name: str) -> Any:
    """The class registered as ``name`` (imports its module)."""
    if name not in _REGISTRY:
        raise WulinError(
            f"unknown controller {name!r}; known controllers: {', '.join(available_controllers())}"
        )
    target = _REGISTRY[name]
    if isinstance(target, str):
        import importlib

        mod_name, _, cls_name = target.partition(":")
        target = getattr(importlib.import_module(mod_name), cls_name)
        _REGISTRY[name] = target
    return target


def make_controller(name: str, **params: Any) -> Controller:
    """Make the controller registered as ``name`` with keyword ``params``.

    Raises:
        WulinError: unknown name (listing the known ones) or a bad parameter.
    """
    cls = controller_class(name)
    try:
        return cls(**params)  # type: ignore[no-any-return]
    except TypeError as exc:
        raise WulinError(f"controller {name!r}: bad parameters {sorted(params)} ({exc})") from None


# ------------------------------------------------------------------ conformance
def _snapshot(state: DistrictState) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(state) if is_dataclass(state) else ():
        v = getattr(state, f.name)
        out[f.name] = v.copy() if isinstance(v, np.ndarray) else v
    return out


def random_states(layout: DistrictLayout, n: int, seed: int = 0, start: float = 0.0,
                  interval: float = 5.0) -> list[DistrictState]:
    """Plausible random :class:`DistrictState` snapshots (for checks and benchmarks)."""
    from sim.state import DistrictState

    rng = np.random.default_rng(seed)
    states = []
    for k in range(n):
        st = DistrictState.empty(layout, start + k * interval)
        cap = np.maximum(layout.in_lane_length / 7.5, 1.0)
        st.count[:] = np.floor(rng.random(layout.n_in) * cap)
        st.queue[:] = np.floor(st.count * rng.random(layout.n_in))
        st.speed[:] = rng.random(layout.n_in) * 14.0
        st.waiting[:] = st.queue * rng.random(layout.n_in) * 30.0
        out_cap = np.maximum(layout.out_lane_length / 7.5, 1.0)
        st.out_count[:] = np.floor(rng.random(layout.n_out) * out_cap)
        st.stage[:] = rng.integers(0, np.maximum(layout.n_stages, 1))
        st.stage_time[:] = rng.random(layout.n_signals) * 60.0
        st.in_transition[:] = rng.random(layout.n_signals) < 0.2
        states.append(st)
    return states


def check_controller(
    controller: Controller,
    layout_or_scenario: Any,
    seed: int = 0,
    steps: int = 50,
) -> None:
    """Check that ``controller`` follows the interface, like Gymnasium's ``check_env``.

    Checks: the required attributes; ``reset`` then ``act`` on random states gives an
    ``int32`` array of one entry per signal with values in ``-1 .. n_stages-1``; ``act``
    never changes the state it is given; two resets with the same seed give the same
    decisions on the same states.  Native controllers are checked for their additional files
    instead of decisions when a scenario is given.

    Args:
        controller: The controller to check.
        layout_or_scenario: A :class:`DistrictLayout`, a :class:`Scenario` or a scenario id.
        seed: Seed for ``reset`` and for the random states.
        steps: Number of decisions to check.

    Raises:
        WulinError: every problem found, one per line.
    """
    from sim.scenario import Scenario, load_scenario
    from sim.state import DistrictLayout
    from sim.topology import load_signal_specs

    scenario = None
    if isinstance(layout_or_scenario, str):
        layout_or_scenario = load_scenario(layout_or_scenario)
    if isinstance(layout_or_scenario, Scenario):
        scenario = layout_or_scenario
        layout = DistrictLayout.from_specs(load_signal_specs(scenario.net_file))
    elif isinstance(layout_or_scenario, DistrictLayout):
        layout = layout_or_scenario
    else:
        raise WulinError(
            f"check_controller: expected a DistrictLayout, Scenario or scenario id, "
            f"got {type(layout_or_scenario).__name__}"
        )
    name = getattr(controller, "name", type(controller).__name__)
    problems: list[str] = []
    for attr in ("name", "decision_interval", "reset"):
        if not hasattr(controller, attr):
            problems.append(f"missing attribute {attr!r}")
    di = getattr(controller, "decision_interval", None)
    if not isinstance(di, int | float) or isinstance(di, bool) or not di > 0:
        problems.append(f"decision_interval must be a positive number of seconds, got {di!r}")
    if problems:
        raise WulinError(f"controller {name!r}: " + "; ".join(problems))

    if getattr(controller, "native", False):
        if scenario is not None and hasattr(controller, "sumo_additional_files"):
            import tempfile

            controller.reset(layout, seed)
            with tempfile.TemporaryDirectory() as tmp:
                files = controller.sumo_additional_files(scenario, Path(tmp))
                for f in files:
                    if not Path(f).is_file():
                        problems.append(f"sumo_additional_files returned missing file {f}")
        if problems:
            raise WulinError(f"controller {name!r}: " + "; ".join(problems))
        return

    states = random_states(layout, steps, seed=seed, interval=float(di))
    runs: list[list[np.ndarray]] = []
    for _ in range(2):
        controller.reset(layout, seed)
        decisions = []
        for k, st in enumerate(states):
            before = _snapshot(st)
            d = controller.act(st)
            after = _snapshot(st)
            for key, v in before.items():
                w = after[key]
                same = np.array_equal(v, w) if isinstance(v, np.ndarray) else v == w
                if not same:
                    problems.append(f"act() changed state.{key} (step {k}); copy before modifying")
            if not isinstance(d, np.ndarray):
                problems.append(f"act() returned {type(d).__name__}, expected a numpy array")
                break
            if d.dtype != np.int32:
                problems.append(f"act() returned dtype {d.dtype}, expected int32")
            if d.shape != (layout.n_signals,):
                problems.append(f"act() returned shape {d.shape}, expected ({layout.n_signals},)")
                break
            bad = (d < -1) | (d >= layout.n_stages)
            if bad.any():
                s = int(np.flatnonzero(bad)[0])
                problems.append(
                    f"act() step {k}: signal {layout.signal_ids[s]!r} got stage {int(d[s])}, "
                    f"valid: -1..{int(layout.n_stages[s]) - 1}"
                )
            decisions.append(copy.deepcopy(d))
            if problems:
                break
        runs.append(decisions)
        if problems:
            break
    if not problems and any(not np.array_equal(a, b) for a, b in zip(*runs, strict=True)):
        problems.append(f"not deterministic: two resets with seed {seed} gave different decisions")
    if problems:
        raise WulinError(f"controller {name!r} fails the interface check:\n  " + "\n  ".join(problems))
