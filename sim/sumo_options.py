"""A scenario's ``[sumo_options]`` table: SUMO options passed through to every run.

A scenario may set SUMO options the engine has no field for (a benchmark that never
teleports, meso, a collision action)::

    [sumo_options]
    time-to-teleport = -1
    collision.action = "teleport"
    mesosim = true

Names are SUMO's long option names without dashes (a synonym is accepted and written as
its long name); TOML reads ``collision.action = ...`` as a nested table, which counts as the
dotted name.  Each name is checked against the options this SUMO knows (read
once per process from ``sumo --save-template``) and its value against the option's type.
Options the engine owns are refused with the field to use instead: the files it loads and
writes (net, routes, additional, tripinfo, statistics, error log), the window, the step,
the seed, the scale and the process control.  Three engine defaults may be changed here:
``time-to-teleport`` (300), ``collision.action`` (``warn``) and
``collision.check-junctions`` (``false``).
"""

from __future__ import annotations

import difflib
import functools
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from sim.config import ConfigIssue
from sim.tools import sumo_binary

Value = bool | int | float | str

# option -> what to do instead (the engine sets it for every run)
OWNED: dict[str, str] = {
    "net-file": "set 'net'", "route-files": "set 'routes'", "additional-files": "set 'additional'",
    "begin": "set 'begin'", "end": "set 'end'", "step-length": "set 'step_length'",
    "scale": "set 'scale'", "seed": "the run's seed is given per run (--seed)",
    "random": "the run's seed is given per run (--seed)",
    "configuration-file": "name the files in the scenario itself",
    "save-configuration": "the engine starts SUMO itself", "save-template": "the engine starts SUMO itself",
    "save-schema": "the engine starts SUMO itself", "remote-port": "the engine starts SUMO itself",
    "start": "the engine starts SUMO itself", "quit-on-end": "the engine starts SUMO itself",
    "error-log": "the engine writes SUMO's log into the run folder",
    "no-warnings": "the engine writes SUMO's warnings into the run's log",
    "no-step-log": "the engine sets it", "duration-log.disable": "the engine sets it",
    "tripinfo-output": "the engine writes tripinfo into the run folder",
    "tripinfo-output.write-unfinished": "the engine counts every vehicle due to travel",
    "tripinfo-output.write-undeparted": "the engine counts every vehicle due to travel",
    "statistic-output": "the engine writes statistics into the run folder",
    "device.emissions.probability": "the engine sets it when emissions are asked for",
}
ENGINE_DEFAULTS: dict[str, str] = {
    "time-to-teleport": "300", "collision.action": "warn", "collision.check-junctions": "false",
}


@dataclass(frozen=True)
class SumoOption:
    """One option SUMO knows: its long name, its type (``BOOL``, ``TIME``...) and section."""

    name: str
    type: str
    section: str = ""


@functools.cache
def known_options() -> dict[str, SumoOption]:
    """Every option name and synonym of this SUMO, read from ``sumo --save-template``."""
    with tempfile.TemporaryDirectory(prefix="wulin-sumo-template-") as tmp:
        out = Path(tmp) / "template.xml"
        subprocess.run([sumo_binary("sumo"), "--save-template", str(out)],
                       check=True, capture_output=True, timeout=60)
        root = ET.parse(out).getroot()
    found: dict[str, SumoOption] = {}
    for section in root:
        for opt in section:
            option = SumoOption(opt.tag, opt.get("type", "STR"), section.tag)
            found[opt.tag] = option
            for synonym in (opt.get("synonymes") or "").split():
                found.setdefault(synonym, option)
    return found


def _flat(table: dict[str, object], prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    """``(key parts, value)`` for every leaf; TOML's dotted keys come in as nested tables."""
    out: list[tuple[tuple[str, ...], object]] = []
    for key, value in table.items():
        parts = (*prefix, str(key))
        out += _flat(value, parts) if isinstance(value, dict) else [(parts, value)]
    return out


def _check_value(option: SumoOption, value: object, key: tuple[str, ...]) -> str:
    """``value`` as SUMO's command line writes it, or a ConfigIssue naming the type wanted."""
    kind = option.type
    if isinstance(value, list | tuple):
        if kind.endswith("[]") or kind in ("FILE", "STR"):
            return ",".join(_check_value(SumoOption(option.name, "STR"), v, key) for v in value)
        raise ConfigIssue(f"must be one value ({kind}), got a list {value!r}", *key)
    if kind == "BOOL":
        if not isinstance(value, bool):
            raise ConfigIssue(f"must be true or false, got {value!r}", *key)
        return "true" if value else "false"
    if isinstance(value, bool):
        raise ConfigIssue(f"must be {kind.lower()}, got {value!r}", *key)
    if kind == "INT" and not isinstance(value, int):
        raise ConfigIssue(f"must be an integer, got {value!r}", *key)
    if kind in ("FLOAT", "TIME") and not isinstance(value, int | float):
        raise ConfigIssue(f"must be a number, got {value!r}", *key)
    if not isinstance(value, str | int | float):
        raise ConfigIssue(f"must be a string, a number or true/false, got {value!r}", *key)
    return f"{value:g}" if isinstance(value, float) else str(value)


def check_sumo_options(options: dict[str, object]) -> tuple[tuple[str, str], ...]:
    """The table as ``(long name, value)`` pairs, checked against this SUMO.

    Raises:
        ConfigIssue: about the first bad key: unknown, owned by the engine, or a wrong type.
    """
    if not options:
        return ()
    known = known_options()
    out: dict[str, str] = {}
    for key, value in _flat(options):
        bare = ".".join(key).lstrip("-")
        option = known.get(bare)
        if option is None:
            close = difflib.get_close_matches(bare, [k for k in known if len(k) > 2], n=1)
            hint = f"; did you mean '{close[0]}'?" if close else "; see `sumo --help`"
            raise ConfigIssue(f"is not an option of SUMO{hint}", *key)
        if option.name in OWNED:
            raise ConfigIssue(f"is set by the engine, not here: {OWNED[option.name]}", *key)
        if option.name in out:
            raise ConfigIssue(f"sets '{option.name}' a second time", *key)
        out[option.name] = _check_value(option, value, key)
    return tuple(out.items())


def sumo_option_args(options: tuple[tuple[str, str], ...], taken: set[str]) -> list[str]:
    """Command line for the engine's defaults overridden by ``options``, skipping ``taken``.

    ``taken`` holds option flags a caller passes itself (``--ignore-route-errors``): SUMO
    refuses an option given twice, and the caller's own choice for one run wins.
    """
    merged = {**ENGINE_DEFAULTS, **dict(options)}
    args: list[str] = []
    for name, value in merged.items():
        if f"--{name}" not in taken:
            args += [f"--{name}", value]
    return args
