"""Controllers that SUMO runs itself: the network's own programs and SUMO's actuated types.

* ``field``: the programs stored in the network (field-like fixed time), untouched.
* ``actuated``: the same phase sequence as SUMO ``type="actuated"`` programs: each green
  extends while SUMO's automatically placed E1 detectors see vehicles arrive within
  ``max_gap`` seconds, between ``min_green`` and ``max_green``.
* ``delay-based``: SUMO ``type="delay_based"``: a green extends while vehicles within
  ``detector_range`` metres (automatic E2 detectors) accumulate time loss.

The programs are written to the episode's work folder as one additional file; SUMO switches
each signal to the last program loaded for it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING
from xml.sax.saxutils import quoteattr

from controllers.base import Capabilities, ControllerBase, Decision
from sim.errors import WulinError

if TYPE_CHECKING:
    from sim.scenario import Scenario
    from sim.state import DistrictLayout, DistrictState
    from sim.topology import SignalSpec


class NativeController(ControllerBase):
    """Base for controllers whose signals SUMO runs (``capabilities.native``)."""

    capabilities = Capabilities(native=True)
    decision_interval = 60.0

    def act(self, state: DistrictState) -> Decision:
        raise WulinError(f"controller {self.name!r} is native: SUMO runs its signals, act() is unused")


class FieldController(NativeController):
    """The network's own signal programs (field-like fixed time).

    Programs that turn green straight to red are run with the yellow and all-red the topology
    put in (``SignalSpec.amber_inserted``), as their own type; every other program, and NEMA
    programs (SUMO times their clearances from each phase's ``yellow`` and ``red``), runs
    from the network untouched.
    """

    name = "field"

    def __init__(self, decision_interval: float = 60.0) -> None:
        self.decision_interval = float(decision_interval)

    def sumo_additional_files(self, scenario: Scenario, workdir: Path) -> list[Path]:
        fixed = [sp for sp in self.layout.specs
                 if sp.amber_inserted and sp.program_type.upper() != "NEMA"]
        if not fixed:
            return []
        path = Path(workdir) / "wulin_field.add.xml"
        body = [_program_xml(sp, sp.program_type, "wulin-field", math.inf, 0.0, {}) for sp in fixed]
        path.write_text("<additional>\n" + "\n".join(body) + "\n</additional>\n")
        return [path]


def _program_xml(spec: SignalSpec, tl_type: str, program_id: str, min_green: float,
                 max_green: float, params: dict[str, str]) -> str:
    lines = [f"    <tlLogic id={quoteattr(spec.id)} type=\"{tl_type}\" "
             f"programID={quoteattr(program_id)} offset=\"{spec.offset:g}\">"]
    for key, value in params.items():
        lines.append(f'        <param key="{key}" value="{value}"/>')
    for ph in spec.phases:
        if ph.state in spec.stages and (tl_type != "static" or ph.min_dur is not None):
            lo = ph.min_dur if ph.min_dur is not None else min(min_green, ph.duration)
            hi = ph.max_dur if ph.max_dur is not None else max(max_green, ph.duration)
            lines.append(f'        <phase duration="{ph.duration:g}" minDur="{lo:g}" '
                         f'maxDur="{hi:g}" state="{ph.state}"/>')
        else:
            lines.append(f'        <phase duration="{ph.duration:g}" state="{ph.state}"/>')
    lines.append("    </tlLogic>")
    return "\n".join(lines)


class _SumoTypeController(NativeController):
    tl_type = "actuated"

    def __init__(self, min_green: float = 5.0, max_green: float = 60.0,
                 decision_interval: float = 60.0, **params: float | str) -> None:
        if not 0 < min_green <= max_green:
            raise WulinError(f"{self.name}: need 0 < min_green <= max_green, got {min_green}, {max_green}")
        self.min_green, self.max_green = float(min_green), float(max_green)
        self.decision_interval = float(decision_interval)
        self.params = {k.replace("_", "-") if self.tl_type == "actuated" else k: str(v)
                       for k, v in params.items()}

    def reset(self, layout: DistrictLayout, seed: int) -> None:
        super().reset(layout, seed)

    def sumo_additional_files(self, scenario: Scenario, workdir: Path) -> list[Path]:
        path = Path(workdir) / f"wulin_{self.tl_type}.add.xml"
        body = [_program_xml(spec, self.tl_type, f"wulin-{self.name}", self.min_green,
                             self.max_green, {**self.default_params(), **self.params})
                for spec in self.layout.specs]
        path.write_text("<additional>\n" + "\n".join(body) + "\n</additional>\n")
        return [path]

    def default_params(self) -> dict[str, str]:
        return {}


class ActuatedController(_SumoTypeController):
    """SUMO ``actuated`` programs (gap-based extension on automatic E1 detectors).

    Args:
        min_green: Minimum green per stage, seconds (unless the network sets minDur).
        max_green: Maximum green per stage, seconds (unless the network sets maxDur).
        **params: SUMO actuated parameters (``max_gap``, ``detector_gap``, ``passing_time``).
    """

    name = "actuated"
    tl_type = "actuated"

    def default_params(self) -> dict[str, str]:
        return {"max-gap": "3.0", "detector-gap": "2.0", "show-detectors": "false"}


class DelayBasedController(_SumoTypeController):
    """SUMO ``delay_based`` programs (time-loss based extension on automatic E2 detectors).

    Args:
        min_green: Minimum green per stage, seconds.
        max_green: Maximum green per stage, seconds.
        **params: SUMO delay_based parameters (``detectorRange``, ``minTimeLoss``).
    """

    name = "delay-based"
    tl_type = "delay_based"

    def default_params(self) -> dict[str, str]:
        return {"detectorRange": "100", "minTimeLoss": "1", "show-detectors": "false"}
