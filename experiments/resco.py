"""The RESCO benchmark: its maps, its settings, and one experiment per map.

RESCO (Ault & Sharon, "Reinforcement Learning Benchmarks for Traffic Signal Control",
NeurIPS 2021 Datasets & Benchmarks; github.com/Pi-Star-Lab/RESCO) runs eight SUMO maps for one
hour each and scores a controller by the mean delay of every vehicle: time loss plus depart
delay, vehicles never inserted included, no teleports.  The map files ship with the
``sumo-rl`` package (``sumo_rl/nets/RESCO``, the optional extra ``[benchmarks]``); they are
referred to where pip put them, never copied into the project or into the output folder.

:func:`prepare` writes, under the output folder, one network folder per map holding only a
scenario TOML (``resco-<map>-v1``, absolute paths to sumo-rl's files, RESCO's window and
``time-to-teleport = -1``) and one experiment declaration per map whose controller
parameters carry RESCO's decision interval and yellow.  The experiments then run through the
ordinary runner (parallel, resumable) and :mod:`experiments.resco_table` puts the results
beside the published figures.  One experiment per map, because RESCO's decision interval and
yellow differ per map while an experiment's controller parameters are per controller.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from experiments.durable import write_text_atomic
from sim.errors import WulinError


@dataclass(frozen=True)
class RescoMap:
    """One RESCO map with RESCO's settings (``resco_benchmark/config/map_config.py``).

    Attributes:
        name: RESCO's map name (``cologne8``).
        net: The ``.net.xml``, relative to sumo-rl's ``nets/RESCO`` folder.
        routes: The demand file, same base (sumo-rl ships ``grid4x4_1``/``arterial4x4_1``).
        begin: Window start, seconds since midnight (RESCO ``start_time``).
        end: Window end (RESCO ``end_time``).
        decision: Seconds between decisions (RESCO ``step_length``).
        yellow: Yellow seconds (RESCO ``yellow_length``); RESCO inserts no all-red.
    """

    name: str
    net: str
    routes: str
    begin: int
    end: int
    decision: float
    yellow: float


def _m(name: str, routes: str, begin: int, decision: float = 10.0, yellow: float = 3.0) -> RescoMap:
    return RescoMap(name, f"{name}/{name}.net.xml", f"{name}/{routes}", begin, begin + 3600,
                    decision, yellow)


MAPS: dict[str, RescoMap] = {m.name: m for m in (
    _m("grid4x4", "grid4x4_1.rou.xml", 0),
    _m("arterial4x4", "arterial4x4_1.rou.xml", 0, decision=5.0, yellow=2.0),
    _m("cologne1", "cologne1.rou.xml", 25200),
    _m("cologne3", "cologne3.rou.xml", 25200),
    _m("cologne8", "cologne8.rou.xml", 25200),
    _m("ingolstadt1", "ingolstadt1.rou.xml", 57600),
    _m("ingolstadt7", "ingolstadt7.rou.xml", 57600),
    _m("ingolstadt21", "ingolstadt21.rou.xml", 57600),
)}
SMALL_MAPS = ("grid4x4", "arterial4x4", "cologne1", "ingolstadt1")

# Every registered controller that applies without training: the map's own programs (RESCO's
# "Fixed" is its own fixed-time cycle; `field` runs the network's programs as SUMO does),
# SUMO's actuated, and the engine's model-free controllers.  `fixed-time` is the field
# programs again as plans and `policy` needs a trained run, so neither is in the default list.
CONTROLLERS = ("field", "actuated", "max-pressure", "webster", "webster-online", "sotl",
               "schedule-driven")
INSTALL_HINT = "pip install -e '.[benchmarks]' (or `make benchmark-resco`)"


def nets_dir() -> Path:
    """sumo-rl's ``nets/RESCO`` folder, found without importing sumo-rl (it probes SUMO at
    import time)."""
    spec = importlib.util.find_spec("sumo_rl")
    if spec is None or not spec.submodule_search_locations:
        raise WulinError(f"the RESCO maps come with the sumo-rl package, which is not installed; "
                         f"install it with {INSTALL_HINT}")
    folder = Path(next(iter(spec.submodule_search_locations))) / "nets" / "RESCO"
    if not folder.is_dir():
        raise WulinError(f"{folder}: sumo-rl is installed without its RESCO maps; reinstall it "
                         f"with {INSTALL_HINT}")
    return folder


def controller_params(m: RescoMap, controllers: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """RESCO's decision interval and yellow (no all-red) for the controllers that take them.

    ``field`` and ``actuated`` run the map's own programs with their own yellows, as RESCO's
    Fixed does.  A decision every ``decision`` seconds is also the minimum green, as in RESCO.
    """
    timing = {"yellow": m.yellow, "all_red": 0.0}
    per = {
        "max-pressure": {"decision_interval": m.decision, "min_green": m.decision, **timing},
        "sotl": {"decision_interval": m.decision, **timing},
        "webster-online": dict(timing),
        "webster": dict(timing),
        # re-plans on its own rolling horizon (every 2 s), with RESCO's yellow
        "schedule-driven": dict(timing),
    }
    return {c: per[c] for c in controllers if c in per}


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def scenario_toml(m: RescoMap, nets: Path) -> str:
    """The scenario TOML of one map: sumo-rl's files by absolute path, RESCO's window."""
    return "\n".join([
        f"# RESCO {m.name}, written by `wulin benchmark resco` (files from sumo-rl, not copied)",
        f"description = {_toml_str(f'RESCO {m.name}, window {m.begin}-{m.end} s')}",
        f"net = {_toml_str(str(nets / m.net))}",
        f"routes = [{_toml_str(str(nets / m.routes))}]",
        f"begin = {m.begin}",
        f"end = {m.end}",
        "warmup = 0",
        "step_length = 1.0",
        'tags = ["resco"]',
        "",
        "[sumo_options]",
        "time-to-teleport = -1  # RESCO: no teleports",
        "",
    ])


def experiment_toml(m: RescoMap, controllers: tuple[str, ...], seeds: tuple[int, ...]) -> str:
    """The experiment declaration of one map (one scenario, every controller, the seeds)."""
    lines = [
        f'name = "resco-{m.name}"',
        f'description = "RESCO {m.name}: decision {m.decision:g} s, yellow {m.yellow:g} s, '
        f'no teleports"',
        f'scenarios = ["resco-{m.name}-v1"]',
        "controllers = [" + ", ".join(_toml_str(c) for c in controllers) + "]",
        f"baseline = {_toml_str(controllers[0])}",
        "seeds = [" + ", ".join(str(s) for s in seeds) + "]",
    ]
    for c, params in controller_params(m, controllers).items():
        lines.append(f"\n[controller_params.{_toml_str(c)}]")
        lines += [f"{k} = {v:g}" for k, v in params.items()]
    return "\n".join(lines) + "\n"


def check_choice(maps: tuple[str, ...], controllers: tuple[str, ...], known: list[str]) -> None:
    """One clear error for an unknown map or controller name."""
    for name in maps:
        if name not in MAPS:
            raise WulinError(f"--maps: unknown RESCO map {name!r}; known: {', '.join(MAPS)}")
    for name in controllers:
        if name not in known:
            raise WulinError(f"--controllers: unknown controller {name!r}; known: {', '.join(known)}")


def prepare(out: Path, maps: tuple[str, ...], controllers: tuple[str, ...],
            seeds: tuple[int, ...]) -> dict[str, Path]:
    """Write the scenario and experiment files under ``out``; return map -> experiment TOML.

    Layout: ``out/networks/resco-<map>/scenarios/resco-<map>-v1.toml`` (put ``out/networks``
    on the network search path) and ``out/experiments/resco-<map>.toml``.
    """
    nets = nets_dir()
    specs: dict[str, Path] = {}
    for name in maps:
        m = MAPS[name]
        folder = out / "networks" / f"resco-{name}" / "scenarios"
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(folder / f"resco-{name}-v1.toml", scenario_toml(m, nets))
        spec = out / "experiments" / f"resco-{name}.toml"
        spec.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(spec, experiment_toml(m, controllers, seeds))
        specs[name] = spec
    return specs
