"""Tuned controller parameters, one file per scenario: ``<network>/tuned/<scenario-id>.toml``.

``wulin tune`` (:mod:`experiments.tuning`) writes the best parameters it found for a
controller on a scenario here, with their provenance: the objective and its value on the
tuning seeds (tuned and defaults), the seeds, the number of trials, the search ranges, the
sampler, the date, the git commit and the command.  Experiments and ``wulin compare`` make
each controller with its scenario's tuned parameters by default
(:func:`effective_params`; a parameter given explicitly in ``[controller_params]`` wins, and
``tuned = false`` / ``--defaults`` turns the lookup off), so baselines are compared as tuned,
not as shipped defaults.

The file lives next to the scenario's network (``networks/grid/tuned/grid-am-v1.toml``)
because tuned values belong to a network and its demand, not to the code.  Example::

    scenario = "grid-am-v1"

    [controllers.max-pressure]
    params = { decision_interval = 4, min_green = 7.5, max_red = 150.0, pressure = "queue" }
    objective = "mean_time_loss"
    tuned_value = 38.1           # mean over the tuning seeds, seconds
    default_value = 41.0         # the defaults on the same seeds
    seeds = [101, 102]
    trials = 12
    space = { decision_interval = [2, 10], min_green = [5.0, 20.0] }
    sampler = "optuna 5.0.0 TPESampler(seed=0)"
    date = "2026-12-05"
    git_commit = "f0e6cca..."
    command = "wulin tune grid-am-v1 --controller max-pressure --trials 12 --seeds 101,102"

The file is the pydantic model :class:`TunedFile` (unknown keys refused, no nan/inf); every
controller named must be registered and its ``params`` must make it (checked when loaded), so a
stale or hand-edited file fails with one error naming the file, line and field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from sim.config import ConfigIssue, ConfigModel, Int, Name, Number, Text, load_toml_model
from sim.errors import WulinError

if TYPE_CHECKING:
    from sim.scenario import Scenario

ParamValue = Annotated[float, Field(strict=True, allow_inf_nan=False)] | Int | bool | Text


class TunedController(ConfigModel):
    """One controller's tuned parameters on one scenario, with how they were found."""

    params: dict[Name, ParamValue]
    objective: Literal["mean_time_loss"] = "mean_time_loss"
    tuned_value: Number
    default_value: Number
    seeds: Annotated[tuple[Int, ...], Field(min_length=1)]
    trials: Annotated[int, Field(strict=True, ge=1)]
    space: dict[Name, tuple[ParamValue, ...]] = Field(default_factory=dict)
    sampler: Text = ""
    date: Text = ""
    git_commit: Text = ""
    command: Text = ""


class TunedFile(ConfigModel):
    """A scenario's tuned file (see the module docstring)."""

    scenario: Name
    controllers: dict[Name, TunedController] = Field(default_factory=dict)

    @field_validator("controllers")
    @classmethod
    def _makes_each(cls, value: dict[str, TunedController],
                    info: ValidationInfo) -> dict[str, TunedController]:
        from controllers.base import available_controllers, make_controller

        if isinstance(info.context, dict) and not info.context.get("check_refs", True):
            return value
        for name, entry in value.items():
            if name not in available_controllers():
                raise ConfigIssue(f"unknown controller {name!r}; known: "
                                  f"{', '.join(available_controllers())}", name)
            try:
                make_controller(name, **entry.params)
            except WulinError as exc:
                raise ConfigIssue(f"{exc}; tune again or fix the value", name, "params") from None
        return value

    @model_validator(mode="after")
    def _named_for_file(self, info: ValidationInfo) -> TunedFile:
        stem = info.context.get("stem") if isinstance(info.context, dict) else None
        if stem and stem != self.scenario:
            raise ConfigIssue(f"names scenario {self.scenario!r} but the file is for {stem!r}; "
                              "rename the file or fix the field", "scenario")
        return self


def tuned_path(scenario: Scenario) -> Path:
    """Where ``scenario``'s tuned parameters live: ``<network folder>/tuned/<id>.toml``."""
    return scenario.network_dir / "tuned" / f"{scenario.id}.toml"


def load_tuned(scenario: Scenario) -> TunedFile | None:
    """The scenario's tuned file, or None when it has none.

    Raises:
        WulinError: the file exists but is damaged or names a bad controller or parameter.
    """
    path = tuned_path(scenario)
    if not path.is_file():
        return None
    return load_toml_model(TunedFile, path, "tuned-parameters file", context={"stem": path.stem})


def effective_params(scenario: Scenario, controller: str, given: dict[str, Any] | None,
                     use_tuned: bool = True) -> dict[str, Any]:
    """The keyword arguments ``controller`` runs with on ``scenario``.

    The tuned parameters (when ``use_tuned`` and the scenario's file tunes ``controller``),
    overridden by the parameters ``given`` explicitly.
    """
    tuned = load_tuned(scenario) if use_tuned else None
    base = dict(tuned.controllers[controller].params) if tuned and controller in tuned.controllers \
        else {}
    return {**base, **(given or {})}


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)  # strings, numbers and booleans are valid TOML as JSON writes them


def render_tuned(tuned: TunedFile) -> str:
    """The file's TOML text (controllers in name order, keys in the model's order)."""
    lines = ["# Tuned controller parameters (written by `wulin tune`; README section 'tuning').",
             "# Experiments and `wulin compare` use them by default (`--defaults`: the shipped",
             "# defaults). Values are means over the tuning seeds; report on held-out seeds.",
             f"scenario = {_toml(tuned.scenario)}"]
    for name in sorted(tuned.controllers):
        entry = tuned.controllers[name].model_dump()
        lines.append(f"\n[controllers.{_toml(name)}]")
        lines += [f"{k} = {_toml(v)}" for k, v in entry.items()]
    return "\n".join(lines) + "\n"


def save_tuned(scenario: Scenario, controller: str, entry: TunedController) -> Path:
    """Add or replace ``controller``'s entry in the scenario's tuned file (atomically).

    The other controllers' entries are kept as they are.
    """
    import fcntl
    import tempfile

    from experiments.durable import write_text_atomic

    path = tuned_path(scenario)
    path.parent.mkdir(parents=True, exist_ok=True)
    # two searches of one scenario may finish together: read, merge and write under a lock
    with open(Path(tempfile.gettempdir()) / f"wulin-tuned-{scenario.id}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        old = load_tuned(scenario)
        controllers = {**(old.controllers if old else {}), controller: entry}
        new = TunedFile(scenario=scenario.id, controllers=controllers)
        write_text_atomic(path, render_tuned(new))
    return path
