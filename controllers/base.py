"""The one controller interface, a lazy registry and the ``check_controller`` conformance helper.

A controller decides *which* stage each signal should serve; the
:class:`~sim.actuator.SignalActuator` decides *how* (yellow, all-red, minimum and maximum
green), the same way for every controller, RL policies included.

A :data:`Decision` is an ``int32`` array with one entry per signal in layout order (the order
of :attr:`DistrictLayout.specs`, sorted by id): the index of the stage to serve next in
``SignalSpec.stages``, or ``-1`` to keep what the signal is doing.

A controller declares what it can do in one frozen :class:`Capabilities` value (never probed):
``native`` (SUMO runs the signals from the programs ``sumo_additional_files`` returns; the
episode loop then never creates an actuator and never calls ``act``), ``needs_state``,
``lane_counts``, ``whole_cycles`` and ``own_schedule``.  Each "yes" promises the members of one
small protocol (:class:`LaneCountUser`, :class:`CyclePlanner`, :class:`Scheduled`), and
:func:`check_controller` checks each promise, including what a flag says about behaviour
(``needs_state=False``: decisions do not change with the lanes).  A controller whose ``act``
is one Numba kernel call derives from :class:`KernelController`, which binds the compiled
entry point once.

Adding a controller is one file (a class) plus one registration line in ``_REGISTRY`` (or a
``register(...)`` call); ``kernels=True`` there makes :func:`warm_up_kernels` compile its
kernels before worker processes start.  A registration with ``arg`` also answers to
``"name:VALUE"``, made with ``arg=VALUE`` (``"policy:wulin-am-peak-ppo"`` is
``make_controller("policy", run="wulin-am-peak-ppo")``), so such a controller can be named
wherever a controller name goes (``--controller``, an experiment's ``controllers``).

The registry maps names to ``"module:Class"`` strings, so importing this module imports
neither numba nor any controller implementation; :func:`make_controller` imports on demand.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, is_dataclass
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


@dataclass(frozen=True)
class Capabilities:
    """What a controller declares about itself; the episode loop reads this and nothing else.

    Each flag that says "yes" promises the members of one small protocol, which
    :func:`check_controller` verifies.  Defaults describe a plain decider: ``act`` every
    ``decision_interval`` seconds, reading the lane state.

    Attributes:
        native: SUMO runs the signals itself from the programs ``sumo_additional_files``
            returns; the loop creates no actuator and never calls ``act``.
        needs_state: ``act`` reads lane state (counts, queues, speeds); False when it uses only
            ``state.time`` and the actuator's stage fields, so the loop skips reading lanes.
        lane_counts: Wants cumulative stop-line counts: the loop adds E1 loops and hands a
            counter to :meth:`LaneCountUser.attach_lane_counter`.
        whole_cycles: Plans whole cycles (:class:`CyclePlanner`): the loop calls
            ``plan_cycles`` instead of ``act`` and hands each cycle to the actuator in one call.
        own_schedule: Knows when ``act`` next has anything but keep to say
            (:class:`Scheduled`); the loop skips the calls before then.
    """

    native: bool = False
    needs_state: bool = True
    lane_counts: bool = False
    whole_cycles: bool = False
    own_schedule: bool = False


@runtime_checkable
class Controller(Protocol):
    """What every controller provides.

    Attributes:
        name: Registered name (``"max-pressure"``).
        decision_interval: Simulated seconds between :meth:`act` calls.
        capabilities: What the controller declares (:class:`Capabilities`).
        actuator_params: Keyword arguments for :class:`~sim.actuator.SignalActuator`
            (``yellow``, ``all_red``, ``min_green``, ``max_green``: scalars or per-signal
            arrays), read after :meth:`reset`.
    """

    name: str
    decision_interval: float
    capabilities: Capabilities
    actuator_params: Mapping[str, Any]

    def reset(self, layout: DistrictLayout, seed: int) -> None:
        """Prepare for a new episode on ``layout`` (clear all internal state)."""
        ...

    def act(self, state: DistrictState) -> Decision:
        """The stage each signal should serve next (``-1`` = keep)."""
        ...

    def sumo_additional_files(self, scenario: Scenario, workdir: Path) -> list[Path]:
        """Extra SUMO additional files (programs for native controllers, detectors)."""
        ...


@runtime_checkable
class LaneCountUser(Protocol):
    """``Capabilities.lane_counts``: receives the stop-line counter."""

    def attach_lane_counter(self, counter: Any) -> None:
        """Receive the counter (``counter.read(lanes)`` -> cumulative counts per in-lane)."""
        ...


@runtime_checkable
class CyclePlanner(Protocol):
    """``Capabilities.whole_cycles``: plans each signal's next cycle at its boundary."""

    def plan_cycles(self, time: float) -> list[tuple[int, list[float]]]:
        """``(signal, greens per stage)`` for the signals whose cycle ends at ``time``."""
        ...

    def cycle_booked(self, signal: int, end: float) -> None:
        """The cycle handed to the actuator for ``signal`` ends at ``end``."""
        ...


@runtime_checkable
class Scheduled(Protocol):
    """``Capabilities.own_schedule``: says when ``act`` next has something to say."""

    def next_decision_time(self, time: float) -> float:
        """Earliest time after ``act`` at ``time`` when ``act`` may return anything but keep."""
        ...


_PROMISES: tuple[tuple[str, type, str], ...] = (
    ("lane_counts", LaneCountUser, "attach_lane_counter(counter)"),
    ("whole_cycles", CyclePlanner, "plan_cycles(time) and cycle_booked(signal, end)"),
    ("own_schedule", Scheduled, "next_decision_time(time)"),
)


class ControllerBase:
    """Convenience base class: defaults for every member of :class:`Controller`.

    Subclasses set ``name`` (and ``capabilities`` when they differ from the defaults) and
    implement :meth:`reset` and :meth:`act` (or declare ``native`` and implement
    :meth:`sumo_additional_files`).
    """

    name: str = "base"
    decision_interval: float = 5.0
    capabilities: Capabilities = Capabilities()
    actuator_params: Mapping[str, Any] = {}

    def reset(self, layout: DistrictLayout, seed: int) -> None:
        self.layout = layout
        self.seed = seed

    def act(self, state: DistrictState) -> Decision:
        raise NotImplementedError(f"controller {self.name!r} does not implement act()")

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


class KernelController(ControllerBase):
    """Base for a controller whose ``act`` is one compiled kernel call over all signals.

    A subclass names its kernel (``kernel``: a :func:`controllers.kernels.jitted` name), lists
    the :class:`DistrictState` arrays the kernel reads (``state_fields``) and builds the
    kernel's whole argument tuple in :meth:`kernel_args`, with ``self.out`` (the decision
    written by the kernel) among them.  The tuple and the compiled entry point for its types
    are bound once and rebound only when the state's arrays change: ``act`` runs at every
    decision, between SUMO steps that leave Python's caches cold, where Numba's dispatcher
    would type every argument again.
    """

    kernel: str = ""
    state_fields: tuple[str, ...] = ()
    use_numba: bool = True

    def reset(self, layout: DistrictLayout, seed: int) -> None:
        from controllers import kernels

        super().reset(layout, seed)
        self._kernel = kernels.jitted(self.kernel) if self.use_numba \
            else kernels.loop(self.kernel)
        self.out = np.full(layout.n_signals, KEEP, dtype=np.int32)
        self._args: tuple[Any, ...] | None = None
        self._bound: tuple[Any, ...] = ()
        self._call: Callable[..., Any] = self._kernel

    def kernel_args(self, state: DistrictState) -> tuple[Any, ...]:
        """The kernel's arguments for ``state``, in its order (``self.out`` included)."""
        raise NotImplementedError(f"controller {self.name!r} does not implement kernel_args()")

    def _bind(self, state: DistrictState) -> tuple[Any, ...]:
        from controllers import kernels

        args = self.kernel_args(state)
        self._call = kernels.entry_point(self._kernel, args)
        self._args = args
        self._bound = tuple(getattr(state, f) for f in self.state_fields)
        self._stale = _identity_check(tuple(self.state_fields))
        return args

    def act(self, state: DistrictState) -> Decision:
        args = self._args
        if args is None or self._stale(state, self._bound):
            args = self._bind(state)
        self._call(*args)
        return self.out.copy()


@functools.cache
def _identity_check(fields: tuple[str, ...]) -> Callable[[Any, tuple[Any, ...]], bool]:
    """``check(state, arrays)``: True when one of ``state``'s ``fields`` is not the array bound.

    Written out once per field list (``state.count is not arrays[0] or ...``): it runs at
    every decision, where a loop over the names with ``getattr`` costs several times more.
    """
    bad = [f for f in fields if not f.isidentifier()]
    if bad:
        raise WulinError(f"KernelController.state_fields: {bad} are not attribute names")
    body = " or ".join(f"state.{f} is not arrays[{i}]" for i, f in enumerate(fields)) or "False"
    return eval(f"lambda state, arrays: {body}")  # type: ignore[no-any-return]


# ------------------------------------------------------------------ registry
@dataclass
class Registration:
    """One registered controller.

    Attributes:
        target: ``"module:Class"`` (imported on demand) or the class itself.
        description: One line for ``wulin controllers``.
        kernels: Its ``reset`` and ``act`` compile Numba kernels: :func:`warm_up_kernels`
            makes and runs it once so the disk cache is filled before workers start.
        arg: The keyword argument ``"name:VALUE"`` fills (None: the name takes no value).
            The class may check VALUE cheaply in a ``check_arg(value)`` class method.
    """

    target: str | Callable[..., Any]
    description: str = ""
    kernels: bool = False
    arg: str | None = None


_REGISTRY: dict[str, Registration] = {
    "field": Registration(
        "controllers.native:FieldController",
        "the network's own signal programs, run by SUMO (field-like fixed time)"),
    "actuated": Registration(
        "controllers.native:ActuatedController",
        "SUMO 'actuated' programs (gap-out on automatic E1 detectors)"),
    "delay-based": Registration(
        "controllers.native:DelayBasedController",
        "SUMO 'delay_based' programs (time-loss on automatic E2 detectors)"),
    "fixed-time": Registration(
        "controllers.fixed_time:FixedTimeController",
        "a TimingPlan per signal (from the network's programs or a plan file), as tlLogic"),
    "tod-schedule": Registration(
        "controllers.tod_schedule:TimeOfDayController",
        "plan sets across the day: a tlLogic per plan, switched at the schedule's times (param plans=DIR)"),
    "webster": Registration(
        "controllers.webster:WebsterController",
        "Webster plan from the demand in a time window, as tlLogic"),
    "webster-online": Registration(
        "controllers.webster:OnlineWebsterController",
        "Webster splits recomputed every cycle from stop-line counts", kernels=True),
    "max-pressure": Registration(
        "controllers.max_pressure:MaxPressureController",
        "Varaiya max-pressure, batched Numba kernel (param max_red=SECONDS: serve a stage "
        "with vehicles red that long)", kernels=True),
    "sotl": Registration(
        "controllers.sotl:SOTLController",
        "self-organising traffic lights (Gershenson), batched Numba kernel", kernels=True),
    "schedule-driven": Registration(
        "controllers.schedule_driven:ScheduleDrivenController",
        "schedule-driven (Surtrac-style): clusters of approaching vehicles, forward DP over "
        "stage sequences, rolling horizon, neighbours' outflows; batched Numba kernels",
        kernels=True),
    # a trained stable-baselines3 policy: make_controller("policy", run="runs/<name>")
    "policy": Registration(
        "agents.policy_controller:PolicyController",
        "a trained RL policy: policy:NAME (shipped, agents/policies/) or policy:RUN_DIR "
        "(from `wulin train`)", arg="run"),
}


def register(name: str, target: str | None = None, description: str = "",
             kernels: bool = False) -> Callable[[Any], Any]:
    """Register a controller class under ``name``.

    Use as a decorator (``@register("mine")``) or with a lazy ``"module:Class"`` target
    (``register("mine", "pkg.mod:Mine")``), which imports nothing until it is made.  Set
    ``kernels`` when the controller compiles Numba kernels (warmed up before workers start).
    """
    if target is not None:
        _REGISTRY[name] = Registration(target, description, kernels)
        return lambda cls: cls

    def deco(cls: Any) -> Any:
        _REGISTRY[name] = Registration(cls, description, kernels)
        return cls

    return deco


def available_controllers() -> list[str]:
    """Registered controller names, sorted."""
    return sorted(_REGISTRY)


def describe_controller(name: str) -> str:
    """One line about a registered controller."""
    entry = _REGISTRY.get(name)
    return entry.description if entry is not None else ""


def split_name(name: str) -> tuple[str, dict[str, str]]:
    """``"policy:x"`` -> ``("policy", {"run": "x"})``; a plain registered name -> ``(name, {})``.

    Raises:
        WulinError: a ``name:VALUE`` whose name takes no value, or an empty VALUE.
    """
    if name in _REGISTRY or ":" not in name:
        return name, {}
    base, _, value = name.partition(":")
    entry = _REGISTRY.get(base)
    if entry is None or entry.arg is None:
        takes = sorted(n for n, e in _REGISTRY.items() if e.arg)
        raise WulinError(f"controller {name!r}: only {', '.join(takes) or 'none'} take a "
                         f"':VALUE' (e.g. policy:wulin-am-peak-ppo)")
    if not value.strip():
        raise WulinError(f"controller {name!r}: give a value after ':' (e.g. {base}:NAME)")
    return base, {entry.arg: value}


def check_controller_name(name: str) -> None:
    """Raise a WulinError unless ``name`` is a registered name or a valid ``name:VALUE``."""
    base, arg = split_name(name)
    cls = controller_class(base)
    check = getattr(cls, "check_arg", None)
    if arg and check is not None:
        check(*arg.values())


def controller_class(name: str) -> Any:
    """The class registered as ``name`` (imports its module)."""
    if name not in _REGISTRY:
        raise WulinError(
            f"unknown controller {name!r}; known controllers: {', '.join(available_controllers())}"
        )
    entry = _REGISTRY[name]
    if isinstance(entry.target, str):
        import importlib

        mod_name, _, cls_name = entry.target.partition(":")
        entry.target = getattr(importlib.import_module(mod_name), cls_name)
    return entry.target


def warm_up_kernels(layout: DistrictLayout) -> None:
    """Compile (or load from the disk cache) every registered controller's kernels for
    ``layout``'s array types: each controller registered with ``kernels=True`` is made with
    its defaults, reset and asked once on a random state.

    Call once in the parent before starting worker processes: several processes compiling
    the same cached function at once can race.
    """
    state = random_states(layout, 1)[0]
    for name in available_controllers():
        if _REGISTRY[name].kernels:
            ctl = make_controller(name)
            ctl.reset(layout, 0)
            ctl.act(state)


def make_controller(name: str, **params: Any) -> Controller:
    """Make the controller registered as ``name`` with keyword ``params``.

    Raises:
        WulinError: unknown name (listing the known ones) or a bad parameter.
    """
    base, arg = split_name(name)
    cls = controller_class(base)
    try:
        return cls(**arg, **params)  # type: ignore[no-any-return]
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

    Checks: the members every controller has and a :class:`Capabilities` value; the protocol
    each declared capability promises (``lane_counts``: :class:`LaneCountUser`,
    ``whole_cycles``: :class:`CyclePlanner`, ``own_schedule``: :class:`Scheduled`); ``reset``
    then ``act`` on random states gives an ``int32`` array of one entry per signal with values
    in ``-1 .. n_stages-1``; ``act`` never changes the state it is given; two resets with the
    same seed give the same decisions on the same states; ``actuator_params`` names only
    actuator settings; ``needs_state=False`` really ignores the lanes; ``next_decision_time``
    after ``act`` is not in the past.  Native controllers are checked for their additional
    files instead of decisions when a scenario is given.

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
    problems = _contract_problems(controller)
    if problems:
        raise WulinError(f"controller {name!r}: " + "; ".join(problems))
    caps: Capabilities = controller.capabilities
    if caps.native:
        problems = _native_problems(controller, layout, scenario, seed)
    else:
        problems = _decision_problems(controller, layout, seed, steps)
        if not problems:
            problems = _declared_problems(controller, layout, seed)
    if problems:
        raise WulinError(f"controller {name!r} fails the interface check:\n  "
                         + "\n  ".join(problems))


def _contract_problems(controller: Any) -> list[str]:
    """The members every controller has, and the protocol each declared capability promises."""
    problems = [f"missing attribute {attr!r}" for attr in
                ("name", "decision_interval", "capabilities", "actuator_params", "reset", "act",
                 "sumo_additional_files") if not hasattr(controller, attr)]
    di = getattr(controller, "decision_interval", None)
    if not isinstance(di, int | float) or isinstance(di, bool) or not di > 0:
        problems.append(f"decision_interval must be a positive number of seconds, got {di!r}")
    caps = getattr(controller, "capabilities", None)
    if not isinstance(caps, Capabilities):
        problems.append(f"capabilities must be a controllers.base.Capabilities, got {caps!r}")
        return problems
    for flag, protocol, members in _PROMISES:
        if getattr(caps, flag) and not isinstance(controller, protocol):
            problems.append(f"declares {flag} but does not implement {members}")
    if caps.native and (caps.whole_cycles or caps.lane_counts or caps.own_schedule):
        problems.append("a native controller never decides: whole_cycles, lane_counts and "
                        "own_schedule must be False")
    return problems


def _native_problems(controller: Any, layout: DistrictLayout, scenario: Scenario | None,
                     seed: int) -> list[str]:
    """A native controller's programs exist as files (checked when a scenario is given)."""
    if scenario is None:
        return []
    import tempfile

    controller.reset(layout, seed)
    with tempfile.TemporaryDirectory() as tmp:
        return [f"sumo_additional_files returned missing file {f}"
                for f in controller.sumo_additional_files(scenario, Path(tmp))
                if not Path(f).is_file()]


_ACTUATOR_KEYS = frozenset({"yellow", "all_red", "min_green", "max_green"})


def _declared_problems(controller: Any, layout: DistrictLayout, seed: int) -> list[str]:
    """What the declared capabilities and parameters promise about behaviour, after reset."""
    problems: list[str] = []
    controller.reset(layout, seed)
    params = controller.actuator_params
    if not isinstance(params, Mapping) or not set(params) <= _ACTUATOR_KEYS:
        problems.append(f"actuator_params must be a mapping with keys from "
                        f"{sorted(_ACTUATOR_KEYS)}, got {params!r}")
    caps: Capabilities = controller.capabilities
    if caps.own_schedule:
        state = random_states(layout, 1, seed=seed)[0]
        controller.act(state)
        t = float(state.time)
        nd = controller.next_decision_time(t)
        if not isinstance(nd, int | float) or not nd >= t:
            problems.append(f"next_decision_time({t}) after act() at {t} must be a time "
                            f">= {t}, got {nd!r}")
    if not caps.needs_state:
        # declared not to read lanes: decisions must not change when the lanes do
        problems += _lane_blind_problems(controller, layout, seed)
    return problems


def _lane_blind_problems(controller: Any, layout: DistrictLayout, seed: int) -> list[str]:
    runs = []
    for scramble in (False, True):
        controller.reset(layout, seed)
        decisions = []
        for st in random_states(layout, 10, seed=seed, interval=controller.decision_interval):
            if scramble:
                for lane_field in ("count", "queue", "speed", "waiting", "out_count"):
                    getattr(st, lane_field)[:] = 1e3
            decisions.append(np.asarray(controller.act(st)).copy())
        runs.append(decisions)
    if any(not np.array_equal(a, b) for a, b in zip(*runs, strict=True)):
        return ["declares needs_state=False but its decisions change with the lane state"]
    return []


def _decision_problems(controller: Any, layout: DistrictLayout, seed: int,
                       steps: int) -> list[str]:
    """``act`` returns valid int32 decisions, leaves the state alone and is deterministic."""
    problems: list[str] = []
    di = controller.decision_interval
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
    return problems
