"""One folder per experiment: resolved spec, manifest, per-run Parquet, summary table.

Layout::

    <out>/
      experiment.toml        the declaration as written
      resolved.json          the validated declaration (seeds, variations, parameters)
      manifest.json          git commit, package versions, input file hashes, seeds, runs
      runs/<run id>/         one folder per finished run (written atomically, see below)
        summary.json         run key, KPIs, event log (written last)
        trips.parquet        per-trip KPIs (after the warm-up)
        approaches.parquet   control delay, LOS, queue, throughput per approach
        intersections.parquet  the same per intersection
        delay_series.parquet   control delay per edgeData period and intersection
        queues.parquet         queue per approach at every decision interval
      runs.parquet, runs.csv one row per run: the numbers the report works from
      report.html            ``wulin report``

A run is written to ``runs/.<run id>.tmp-<pid>`` and renamed into place once complete, so a
run folder either holds every file or does not exist: an experiment killed midway and started
again skips the finished runs (:func:`finished_runs`) and redoes only the others.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from experiments.spec import ExperimentSpec, RunKey
from sim.errors import WulinError
from sim.provenance import code_version, file_sha256, package_versions, scenario_inputs

RUN_FILES = ("trips", "approaches", "intersections", "delay_series", "queues")


@dataclass
class RunOutput:
    """Everything one run produced (sent back from a worker process or a Ray task)."""

    key: RunKey
    summary: dict[str, Any]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)


def manifest(spec: ExperimentSpec) -> dict[str, Any]:
    """Provenance of an experiment: code version, package versions, input hashes, seeds."""
    from sim.scenario import load_scenario

    inputs: dict[str, str] = {}
    for sid in spec.scenarios:
        inputs.update(scenario_inputs(load_scenario(sid)))
    for v in spec.variations:
        if v.plan is not None:
            inputs[str(v.plan)] = file_sha256(v.plan)
    return {
        "experiment": spec.name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": platform.node(),
        **code_version(),
        "versions": package_versions(),
        "spec_sha256": hashlib.sha256(spec.text.encode()).hexdigest(),
        "inputs": inputs,
        "seeds": list(spec.seeds),
        "runs": [k.run_id for k in spec.runs()],
    }


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def init_experiment_dir(spec: ExperimentSpec, out: Path) -> Path:
    """Create (or reopen) an experiment folder; refuse one holding a different experiment.

    Raises:
        WulinError: ``out`` holds results of a different declaration.
    """
    out = Path(out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    resolved = json.dumps(spec.to_dict(), indent=2, sort_keys=True, default=str)
    old = out / "resolved.json"
    if old.is_file():
        before = json.loads(old.read_text())
        now = json.loads(resolved)
        before.pop("source", None)
        now.pop("source", None)
        if before != now:
            raise WulinError(
                f"{out}: this folder holds results of a different declaration of experiment "
                f"{before.get('name')!r}; choose another folder with --out, or delete {out} to "
                "start again"
            )
    _write_text_atomic(out / "experiment.toml", spec.text)
    _write_text_atomic(old, resolved)
    _write_text_atomic(out / "manifest.json", json.dumps(manifest(spec), indent=2))
    # left-overs of runs killed while being written
    for tmp in (out / "runs").glob(".*.tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def run_dir(out: Path, key: RunKey) -> Path:
    return Path(out) / "runs" / key.run_id


def finished_runs(out: Path) -> set[str]:
    """Ids of the runs whose folder is complete."""
    runs = Path(out) / "runs"
    if not runs.is_dir():
        return set()
    return {p.name for p in runs.iterdir() if not p.name.startswith(".") and (p / "summary.json").is_file()}


def write_run(out: Path, result: RunOutput) -> Path:
    """Write one run's folder atomically (temporary name, then rename)."""
    final = run_dir(out, result.key)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in RUN_FILES:
        df = result.tables.get(name)
        if df is not None:
            df.to_parquet(tmp / f"{name}.parquet", index=False)
    doc = {"key": result.key.__dict__, "run_id": result.key.run_id, "kpis": result.summary,
           "events": result.events}
    (tmp / "summary.json").write_text(json.dumps(doc, indent=2, default=float))
    if final.exists():  # a finished copy already there (two drivers on one folder): keep it
        shutil.rmtree(tmp, ignore_errors=True)
        return final
    os.replace(tmp, final)
    return final


def read_run_summary(out: Path, run_id: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((Path(out) / "runs" / run_id / "summary.json").read_text())
    return doc


def read_run_table(out: Path, run_id: str, name: str) -> pd.DataFrame:
    """One Parquet table of a run (``trips``, ``intersections``...)."""
    path = Path(out) / "runs" / run_id / f"{name}.parquet"
    if not path.is_file():
        raise WulinError(f"{path}: missing; the run folder is incomplete, delete it and run again")
    return pd.read_parquet(path)


def collect(out: Path) -> pd.DataFrame:
    """One row per finished run: key columns and KPIs; written to runs.parquet and runs.csv."""
    out = Path(out)
    rows = []
    for rid in sorted(finished_runs(out)):
        doc = read_run_summary(out, rid)
        rows.append({**doc["key"], "run_id": rid, **doc["kpis"]})
    df = pd.DataFrame(rows)
    if len(df):
        df.to_parquet(out / "runs.parquet", index=False)
        df.to_csv(out / "runs.csv", index=False)
    return df


def load_experiment(out: Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """The resolved declaration and the per-run table of an experiment folder.

    Raises:
        WulinError: not an experiment folder, or no finished run.
    """
    out = Path(out)
    resolved = out / "resolved.json"
    if not resolved.is_file():
        raise WulinError(f"{out}: not an experiment folder (no resolved.json); run "
                         "`wulin experiment run SPEC.toml` first")
    from experiments.spec import read_resolved

    spec = read_resolved(resolved).to_dict()  # checked against the spec model, then plain data
    df = collect(out)
    if not len(df):
        raise WulinError(f"{out}: no finished run yet; run `wulin experiment run` on its declaration")
    return spec, df
