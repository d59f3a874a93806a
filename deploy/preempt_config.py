"""A signal's preempt configuration as data: what control-room staff review, approve and push.

The preempt table of a controller (:mod:`deploy.preempt`) decides how an emergency vehicle
takes an intersection: which phases dwell, how long the running green must still get, how
long a stuck input may hold the junction.  Like a timing plan, it is a frozen value with a
canonical JSON and a SHA-256 hash, so an approval binds the exact values
(:mod:`deploy.preempt_store`), and it becomes the exact ``{OID: value}`` set written to the
device (:meth:`PreemptConfig.varbinds`) and read back (:meth:`PreemptConfig.from_values`).
The file form is JSON, validated as a config model (unknown keys refused, errors name the
file and field)::

    {"signal_id": "B1", "preempts": [{"number": 1, "dwell_phases": [2], "max_presence": 120}]}

Times are whole seconds, as NTCIP 1202 holds them.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field
from pydantic.dataclasses import dataclass as config_dataclass

from controllers.plan import canonical_json, sha256_hex
from deploy import oids as O
from deploy.preempt import N_PREEMPTS, NON_LOCKING, stage_of
from deploy.profile import DeviceProfile, Phase
from sim.config import DATACLASS_CONFIG, Name, validate
from sim.errors import WulinError
from sim.files import parse_json, read_text

Byte = Annotated[int, Field(strict=True, ge=0, le=255)]
Word = Annotated[int, Field(strict=True, ge=0, le=65535)]
PreemptNo = Annotated[int, Field(strict=True, ge=1, le=N_PREEMPTS)]


@config_dataclass(frozen=True, config=DATACLASS_CONFIG)
class PreemptSetting:
    """One preempt's row of the table (seconds; phases by NTCIP number)."""

    number: PreemptNo
    dwell_phases: tuple[Phase, ...]
    exit_phases: tuple[Phase, ...] = ()
    track_phases: tuple[Phase, ...] = ()
    track_green: Byte = 0
    dwell_green: Byte = 0
    min_green: Byte = 0
    min_duration: Word = 0
    delay: Word = 0
    max_presence: Word = 120
    non_locking: bool = False
    link: Annotated[int, Field(strict=True, ge=0, le=N_PREEMPTS)] = 0

    def columns(self) -> dict[O.OID, Any]:
        """Column OID -> value of this row."""
        return {O.PREEMPT_CONTROL: NON_LOCKING if self.non_locking else 0, O.PREEMPT_LINK: self.link,
                O.PREEMPT_DELAY: self.delay, O.PREEMPT_MIN_DURATION: self.min_duration,
                O.PREEMPT_MIN_GREEN: self.min_green, O.PREEMPT_TRACK_GREEN: self.track_green,
                O.PREEMPT_DWELL_GREEN: self.dwell_green, O.PREEMPT_MAX_PRESENCE: self.max_presence,
                O.PREEMPT_TRACK_PHASE: bytes(self.track_phases), O.PREEMPT_DWELL_PHASE: bytes(self.dwell_phases),
                O.PREEMPT_EXIT_PHASE: bytes(self.exit_phases)}


@config_dataclass(frozen=True, config=DATACLASS_CONFIG)
class PreemptConfig:
    """The preempt table of one signal (preempts not listed are cleared on the device)."""

    signal_id: Name
    preempts: tuple[PreemptSetting, ...]

    def to_dict(self) -> dict[str, Any]:
        rows = [asdict(p) for p in sorted(self.preempts, key=lambda p: p.number)]
        return {"signal_id": self.signal_id, "preempts": [{k: (list(v) if isinstance(v, tuple) else v)
                                                           for k, v in r.items()} for r in rows]}

    def to_json(self) -> str:
        return canonical_json(self.to_dict())

    def config_hash(self) -> str:
        """SHA-256 of the canonical JSON: what an approval binds."""
        return sha256_hex(self.to_json())

    @classmethod
    def from_dict(cls, data: Any, source: str = "<preempt config>") -> PreemptConfig:
        cfg = validate(cls, data, source)
        numbers = [p.number for p in cfg.preempts]
        if len(set(numbers)) != len(numbers):
            raise WulinError(f"{source}: field 'preempts': preempt numbers repeat ({numbers})")
        return cfg

    @classmethod
    def from_json(cls, text: str, source: str = "<preempt config>") -> PreemptConfig:
        return cls.from_dict(parse_json(text, source), source)

    @classmethod
    def load(cls, path: Path | str) -> PreemptConfig:
        return cls.from_json(read_text(path, "preempt configuration"), str(path))

    def problems(self, profile: DeviceProfile) -> list[str]:
        """What the device would refuse, or what would not work, for ``profile`` (empty: fine)."""
        out = []
        if profile.signal_id != self.signal_id:
            out.append(f"configuration for {self.signal_id!r} checked against the profile of {profile.signal_id!r}")
        numbers = {p.number for p in self.preempts}
        for p in self.preempts:
            for what, phases in (("dwell", p.dwell_phases), ("exit", p.exit_phases), ("track", p.track_phases)):
                if (phases or what == "dwell") and stage_of(profile, phases) is None:
                    out.append(f"preempt {p.number}: {what} phases {list(phases)} do not serve one stage")
            if p.link and (p.link == p.number or p.link not in numbers):
                out.append(f"preempt {p.number}: linked preempt {p.link} is not another preempt of this table")
            if p.max_presence and p.max_presence <= p.delay:
                out.append(f"preempt {p.number}: maximum presence {p.max_presence} s ends it before its delay")
        return out

    def varbinds(self) -> list[tuple[O.OID, Any]]:
        """The SETs that put this table on a device (every preempt row, unlisted ones cleared)."""
        rows = {p.number: p.columns() for p in self.preempts}
        blank = {col: (b"" if isinstance(v, bytes) else 0) for col, v in
                 PreemptSetting(number=1, dwell_phases=()).columns().items()}
        return [(col + (n,), rows.get(n, blank)[col]) for n in range(1, N_PREEMPTS + 1) for col in blank]

    @classmethod
    def from_values(cls, signal_id: str, values: dict[O.OID, Any]) -> PreemptConfig:
        """The table as a device holds it (rows without dwell phases are unused)."""
        out = []
        for n in range(1, N_PREEMPTS + 1):
            def v(col: O.OID, n: int = n) -> Any:
                return values[col + (n,)]
            dwell = tuple(bytes(v(O.PREEMPT_DWELL_PHASE)))
            if not dwell:
                continue
            out.append(PreemptSetting(
                number=n, dwell_phases=dwell, exit_phases=tuple(bytes(v(O.PREEMPT_EXIT_PHASE))),
                track_phases=tuple(bytes(v(O.PREEMPT_TRACK_PHASE))), track_green=int(v(O.PREEMPT_TRACK_GREEN)),
                dwell_green=int(v(O.PREEMPT_DWELL_GREEN)), min_green=int(v(O.PREEMPT_MIN_GREEN)),
                min_duration=int(v(O.PREEMPT_MIN_DURATION)), delay=int(v(O.PREEMPT_DELAY)),
                max_presence=int(v(O.PREEMPT_MAX_PRESENCE)),
                non_locking=bool(int(v(O.PREEMPT_CONTROL)) & NON_LOCKING), link=int(v(O.PREEMPT_LINK))))
        return cls(signal_id=signal_id, preempts=tuple(out))


def per_stage(profile: DeviceProfile, max_presence: int = 120) -> PreemptConfig:
    """A table with preempt ``k + 1`` dwelling on stage ``k`` (for the first :data:`N_PREEMPTS`
    stages), no exit phases (the pattern goes on from the dwell), the phases' own minimum
    greens: what the co-simulation installs when no approved table is given."""
    return PreemptConfig(signal_id=profile.signal_id, preempts=tuple(
        PreemptSetting(number=k + 1, dwell_phases=tuple(ps), max_presence=max_presence)
        for k, ps in enumerate(profile.stage_phases[:N_PREEMPTS])))


def dumps(cfg: PreemptConfig) -> str:
    """Readable JSON of ``cfg`` (for files; the hash is over :meth:`PreemptConfig.to_json`)."""
    return json.dumps(cfg.to_dict(), indent=2, sort_keys=True)
