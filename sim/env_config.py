"""How an environment observes, rewards and acts: the ``[env]`` table of a training TOML.

A validated frozen value (a pydantic dataclass with ``extra="forbid"``, see :mod:`sim.config`):
built in code (``EnvConfig(delta_t=5)``), from a TOML table (:meth:`EnvConfig.from_dict`) or
read back from a run's ``run.json``, with the same checks and the same messages each way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import BeforeValidator, Field, field_validator, model_validator
from pydantic.dataclasses import dataclass as config_dataclass

from sim.config import DATACLASS_CONFIG, ConfigIssue, Name, Number, validate
from sim.errors import WulinError
from sim.observations import available_observations, observation_term, reward_fn

if TYPE_CHECKING:
    from sim.state import DistrictLayout

ACTION_MODES = ("stage", "splits")
Positive = Annotated[Number, Field(gt=0)]
NonNegative = Annotated[Number, Field(ge=0)]


def _names(value: Any) -> Any:
    return (value,) if isinstance(value, str) else value


@config_dataclass(frozen=True, config=DATACLASS_CONFIG)
class EnvConfig:
    """How an environment observes, rewards and acts.

    Attributes:
        delta_t: Seconds between decisions in ``stage`` mode.
        observation: Observation term names, concatenated in this order.
        reward: Reward name.
        reward_scale: Factor applied to the reward (keeps returns near unit scale).
        action_mode: ``"stage"`` or ``"splits"``.
        cycle: Plan cycle in seconds (``splits`` mode: one decision per cycle).
        episode_seconds: Episode length from the scenario's begin; 0 = the whole scenario.
        yellow: Actuator yellow, seconds, or ``"program"``: each signal's network program's
            (:attr:`sim.topology.SignalSpec.clearance`, as the schedule-driven controller
            and SUMO's actuated control run; a policy trained with 2 s of all-red where the
            program has none pays it at every change).
        all_red: Actuator all-red, seconds, or ``"program"``.
        min_green: Actuator minimum green, seconds.
        max_green: Actuator maximum green, seconds.
        max_red: A stage whose vehicles have waited this long at red is served next
            (:mod:`sim.red_limit`); 0 = no limit.
    """

    delta_t: Positive = 5.0
    observation: Annotated[tuple[Name, ...], BeforeValidator(_names), Field(min_length=1)] = (
        "stage", "mask", "density", "queue")
    reward: Name = "queue"
    reward_scale: Positive = 0.1
    action_mode: str = "stage"
    cycle: Positive = 90.0
    episode_seconds: NonNegative = 0.0
    yellow: NonNegative | Literal["program"] = 3.0
    all_red: NonNegative | Literal["program"] = 2.0
    min_green: Positive = 5.0
    max_green: Positive = 60.0
    max_red: NonNegative = 0.0

    @field_validator("observation")
    @classmethod
    def _known_terms(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            try:
                observation_term(name, "x")
            except WulinError:
                raise ConfigIssue(f"unknown observation {name!r}; use names from "
                                  f"{', '.join(available_observations())}") from None
        return value

    @field_validator("yellow", "all_red", mode="before")
    @classmethod
    def _seconds_or_program(cls, value: Any) -> Any:
        if isinstance(value, str) and value != "program":
            raise ConfigIssue(f"must be seconds (a number >= 0) or \"program\", got {value!r}")
        return value

    @field_validator("reward")
    @classmethod
    def _known_reward(cls, value: str) -> str:
        try:
            reward_fn(value, "x")
        except WulinError as exc:
            raise ConfigIssue(str(exc).removeprefix("x: ")) from None
        return value

    @field_validator("action_mode")
    @classmethod
    def _known_mode(cls, value: str) -> str:
        if value not in ACTION_MODES:
            raise ConfigIssue(f"must be one of {', '.join(ACTION_MODES)}, got {value!r}")
        return value

    @model_validator(mode="after")
    def _greens(self) -> EnvConfig:
        if self.max_green < self.min_green:
            raise ConfigIssue(f"must be >= 'min_green' ({self.min_green:g}), got {self.max_green:g}", "max_green")
        return self

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "env config") -> EnvConfig:
        """Build from a TOML table; any bad or unknown field is a WulinError naming it."""
        return validate(cls, dict(data), where)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (``run.json``); :meth:`from_dict` reads it back."""
        d = asdict(self)
        d["observation"] = list(self.observation)
        return d

    def actuator_params(self, layout: DistrictLayout) -> dict[str, Any]:
        """Yellow, all-red (per signal of ``layout``), minimum and maximum green for the actuator."""
        yellow, all_red = self.clearance(layout)
        return {"yellow": yellow, "all_red": all_red, "min_green": self.min_green,
                "max_green": self.max_green}

    def clearance(self, layout: DistrictLayout) -> tuple[np.ndarray, np.ndarray]:
        """``(yellow [S], all_red [S])`` seconds for the signals of ``layout``."""
        program = np.array([spec.clearance for spec in layout.specs], dtype=np.float64).reshape(-1, 2)
        return tuple(  # type: ignore[return-value]
            program[:, i] if value == "program" else np.full(layout.n_signals, float(value))
            for i, value in enumerate((self.yellow, self.all_red)))
