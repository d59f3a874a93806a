"""Level of service per signal from an experiment's results, for the cockpit.

The cockpit shows the HCM level of service each intersection had in the newest finished run
group of an experiment folder (one scenario, variation and controller, averaged over its
seeds with :func:`experiments.kpis.summarise_signals`, the report's own reduction).  pandas and
the experiment readers are imported only when a folder is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sim.errors import WulinError


@dataclass(frozen=True)
class SignalLos:
    """One intersection's level of service and mean control delay (s/veh)."""

    los: str
    delay: float


@dataclass(frozen=True)
class LevelOfService:
    """What the cockpit shows, and where it came from.

    Attributes:
        source: Experiment folder, scenario, variation, controller and seed count.
        signals: Per signal id.
    """

    source: str
    signals: dict[str, SignalLos]


def latest_los(folder: Path) -> LevelOfService:
    """The level of service of the newest finished run group in experiment ``folder``.

    Raises:
        WulinError: no finished run with an intersections table in ``folder``.
    """
    from experiments.kpis import summarise_signals
    from experiments.results import finished_runs, read_run_summary, read_run_table

    runs = sorted(finished_runs(folder), key=lambda r: (folder / "runs" / r / "summary.json").stat().st_mtime)
    if not runs:
        raise WulinError(f"--experiment {folder}: no finished run there (run `wulin experiment run` first)")
    keys = {r: read_run_summary(folder, r)["key"] for r in runs}
    newest = keys[runs[-1]]
    group = [r for r in runs if all(keys[r].get(k) == newest.get(k) for k in ("scenario", "variation", "controller"))]
    table = summarise_signals([read_run_table(folder, r, "intersections") for r in group])
    signals = {str(row.signal): SignalLos(str(row.los), float(row.control_delay)) for row in table.itertuples()}
    source = (f"{folder.name}: {newest.get('scenario')} / {newest.get('variation')} / {newest.get('controller')}, "
              f"{len(group)} seed(s)")
    return LevelOfService(source, signals)
