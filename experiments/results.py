"""One folder per experiment: resolved spec, manifest, per-run Parquet, summary table.

Layout::

    <out>/
      experiment.toml        the declaration as written (a user's file already there is kept)
      resolved.json          the validated declaration (seeds, variations, parameters)
      manifest.json          git commit, package versions, input file hashes, seeds, runs
                             (of the first invocation; written once)
      history.jsonl          every invocation, retry, failure, damaged run (appended)
      runs/<run id>/         one folder per finished run (written atomically, see below)
        summary.json         run key, KPIs, event log, attempts, each file's size and
                             SHA-256 (written last)
        trips.parquet        per-trip KPIs (after the warm-up)
        approaches.parquet   control delay, LOS, queue, throughput per approach
        intersections.parquet  the same per intersection
        delay_series.parquet   control delay per edgeData period and intersection
        queues.parquet         queue per approach at every decision interval
      runs.parquet, runs.csv one row per run: the numbers the report works from
      report.html            ``wulin report``

A run is written to ``runs/.<run id>.tmp-<pid>`` and renamed into place once complete, so a
run folder either holds every file or does not exist: an experiment killed midway and started
again skips the finished runs (:func:`finished_runs`) and redoes only the others.  A run
folder whose summary.json or Parquet files were damaged afterwards (cut short, changed) fails
:func:`check_run`: the runner moves it to ``damaged/`` and runs it again, and reports refuse
the folder with an error naming the file.  Every file is written atomically
(:mod:`experiments.durable`) and nothing of the user's is overwritten.
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

from experiments.durable import (
    check_writable,
    fsync_dir,
    fsync_file,
    sha256_file,
    write_bytes_atomic,
    write_text_atomic,
)
from experiments.spec import ExperimentSpec, RunKey
from sim.errors import WulinError
from sim.provenance import code_version, file_sha256, package_versions, scenario_inputs

RUN_FILES = ("trips", "approaches", "intersections", "delay_series", "queues",
             "priority", "ev_trace", "ev_signals")  # (the last three: runs with priority only)


@dataclass
class RunOutput:
    """Everything one run produced (sent back from a worker process or a Ray task)."""

    key: RunKey
    summary: dict[str, Any]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 1


@dataclass(frozen=True)
class RunError:
    """A run that ended without results: the error text (a message or a traceback)."""

    key: RunKey
    message: str
    attempts: int = 1


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


# files of ours at the top of an experiment folder: a folder holding one of them without a
# resolved.json is someone else's, and we refuse to write over it
OWN_FILES = ("experiment.toml", "manifest.json", "history.jsonl", "runs.parquet", "runs.csv",
             "report.html")


def _read_json(path: Path) -> Any:
    """The JSON in ``path``, or ``_DAMAGED`` when it is missing, unreadable or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return _DAMAGED


_DAMAGED = object()


def _refuse_foreign(out: Path, spec: ExperimentSpec) -> None:
    """``out`` is not an experiment folder: refuse if writing would replace a file in it."""
    clash = [n for n in OWN_FILES if (out / n).exists()]
    if "experiment.toml" in clash and (out / "experiment.toml").read_bytes() == spec.text.encode():
        clash.remove("experiment.toml")  # the very declaration being run
    if (out / "runs").is_dir() and any((out / "runs").iterdir()):
        clash.append("runs/")
    if clash:
        raise WulinError(f"{out}: not an experiment folder (no resolved.json) but it holds "
                         f"{', '.join(clash)}, which the results would overwrite; choose a new or "
                         "empty folder with --out")


def _check_declaration(out: Path, spec: ExperimentSpec, resolved: str) -> None:
    """The folder's resolved.json must hold this declaration (rebuilt when damaged and the
    folder's experiment.toml is this very declaration)."""
    path = out / "resolved.json"
    before = _read_json(path)
    if before is _DAMAGED:
        toml = out / "experiment.toml"
        if toml.is_file() and toml.read_bytes() == spec.text.encode():
            write_text_atomic(path, resolved)
            return
        raise WulinError(f"{path}: damaged (not valid JSON; cut short?); it records the declaration "
                         "these results came from: restore it, or run into a new folder with --out")
    now = json.loads(resolved)
    before.pop("source", None)
    now.pop("source", None)
    if before != now:
        raise WulinError(
            f"{out}: this folder holds results of a different declaration of experiment "
            f"{before.get('name')!r}; choose another folder with --out, or delete {out} to "
            "start again"
        )


def init_experiment_dir(spec: ExperimentSpec, out: Path) -> Path:
    """Create (or reopen) an experiment folder; refuse one holding something else.

    Nothing already there is overwritten: ``experiment.toml``, ``resolved.json`` and
    ``manifest.json`` are written when absent (a damaged resolved.json or manifest.json is
    rebuilt); a user's ``experiment.toml`` that differs from the declaration is kept.

    Raises:
        WulinError: ``out`` cannot be written, holds results of a different declaration, or
            holds files of ours without being an experiment folder.
    """
    out = Path(out)
    check_writable(out)
    resolved = json.dumps(spec.to_dict(), indent=2, sort_keys=True, default=str)
    if (out / "resolved.json").is_file():
        _check_declaration(out, spec, resolved)
    else:
        _refuse_foreign(out, spec)
        write_text_atomic(out / "resolved.json", resolved)
    check_writable(out / "runs")
    if not (out / "experiment.toml").exists():
        write_text_atomic(out / "experiment.toml", spec.text)
    if _read_json(out / "manifest.json") is _DAMAGED:
        write_text_atomic(out / "manifest.json", json.dumps(manifest(spec), indent=2))
    # left-overs of runs killed while being written
    for tmp in (out / "runs").glob(".*.tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def run_dir(out: Path, key: RunKey) -> Path:
    """The folder of one run."""
    return Path(out) / "runs" / key.run_id


def check_run(folder: Path) -> str | None:
    """Why a run folder cannot be trusted (None when complete and intact).

    The summary.json must parse and every file it lists must have the recorded size and
    SHA-256 (folders written before checksums: every Parquet file must have its footer).
    """
    summary = folder / "summary.json"
    if not summary.is_file():
        return f"{summary} is missing"
    doc = _read_json(summary)
    if doc is _DAMAGED or not isinstance(doc, dict) or "kpis" not in doc:
        return f"{summary} is not a complete run summary (cut short?)"
    files = doc.get("files")
    if files is None:  # written before checksums were recorded
        for p in folder.glob("*.parquet"):
            try:
                import pyarrow.parquet as pq

                pq.read_metadata(p)
            except Exception:
                return f"{p} is not a readable Parquet file (cut short?)"
        return None
    for name, meta in files.items():
        p = folder / name
        if not p.is_file():
            return f"{p} is missing"
        if p.stat().st_size != meta.get("bytes") or sha256_file(p) != meta.get("sha256"):
            return f"{p} does not match the checksum recorded in summary.json (damaged)"
    return None


@dataclass(frozen=True)
class RunScan:
    """The run folders of an experiment: intact ones, and damaged ones with the reason."""

    finished: frozenset[str]
    damaged: dict[str, str]


def scan_runs(out: Path) -> RunScan:
    """Check every run folder of ``out`` (see :func:`check_run`)."""
    runs = Path(out) / "runs"
    finished, damaged = set(), {}
    if runs.is_dir():
        for p in runs.iterdir():
            if p.name.startswith(".") or not p.is_dir():
                continue
            why = check_run(p)
            if why is None:
                finished.add(p.name)
            else:
                damaged[p.name] = why
    return RunScan(frozenset(finished), damaged)


def finished_runs(out: Path) -> set[str]:
    """Ids of the runs whose folder is complete and intact."""
    return set(scan_runs(out).finished)


def set_aside_damaged(out: Path, damaged: dict[str, str]) -> dict[str, Path]:
    """Move damaged run folders to ``out/damaged/`` (kept for inspection) so they run again."""
    moved = {}
    for rid in sorted(damaged):
        dest = Path(out) / "damaged" / f"{rid}.{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        dest.parent.mkdir(exist_ok=True)
        os.replace(Path(out) / "runs" / rid, dest)
        moved[rid] = dest
    return moved


def open_experiment(spec: ExperimentSpec, out: Path, console: Any = None) -> tuple[Path, list[RunKey]]:
    """Prepare ``out`` for a run of ``spec``; the runs still to do (damaged ones set aside).

    Raises:
        WulinError: see :func:`init_experiment_dir`.
    """
    from experiments.history import append_event

    out = init_experiment_dir(spec, out)
    scan = scan_runs(out)
    if scan.damaged:
        moved = set_aside_damaged(out, scan.damaged)
        for rid, why in scan.damaged.items():
            append_event(out, "damaged", run_id=rid, reason=why, moved_to=str(moved[rid]))
        if console is not None:
            console.print(f"[yellow]{len(moved)} damaged run(s) moved to {out / 'damaged'} and run again: "
                          + "; ".join(scan.damaged.values()))
    keys = [k for k in spec.runs() if k.run_id not in scan.finished]
    total = len(spec.runs())
    if console is not None and scan.finished:
        console.print(f"resuming: {total - len(keys)} of {total} runs already finished in {out}")
    return out, keys


def write_run(out: Path, result: RunOutput) -> Path:
    """Write one run's folder atomically (temporary name, fsync, then rename).

    summary.json is written last and records each Parquet file's size and SHA-256, so a
    damaged file is detected (:func:`check_run`) and the run done again.
    """
    final = run_dir(out, result.key)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    files = {}
    for name in RUN_FILES:
        df = result.tables.get(name)
        if df is not None:
            path = tmp / f"{name}.parquet"
            df.to_parquet(path, index=False)
            fsync_file(path)
            files[path.name] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    doc = {"key": result.key.__dict__, "run_id": result.key.run_id, "kpis": result.summary,
           "events": result.events, "attempts": result.attempts, "files": files}
    write_text_atomic(tmp / "summary.json", json.dumps(doc, indent=2, default=float))
    if final.exists():  # a finished copy already there (two drivers on one folder): keep it
        shutil.rmtree(tmp, ignore_errors=True)
        return final
    os.replace(tmp, final)
    fsync_dir(final.parent)
    return final


def read_run_summary(out: Path, run_id: str) -> dict[str, Any]:
    """One run's summary.json.

    Raises:
        WulinError: the file is damaged (names it).
    """
    path = Path(out) / "runs" / run_id / "summary.json"
    doc = _read_json(path)
    if doc is _DAMAGED:
        raise WulinError(f"{path}: damaged (not valid JSON); run the experiment again to redo this run")
    return doc  # type: ignore[no-any-return]


def read_run_table(out: Path, run_id: str, name: str) -> pd.DataFrame:
    """One Parquet table of a run (``trips``, ``intersections``...)."""
    path = Path(out) / "runs" / run_id / f"{name}.parquet"
    if not path.is_file():
        raise WulinError(f"{path}: missing; the run folder is incomplete, delete it and run again")
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow's errors for a cut-short or damaged file
        raise WulinError(f"{path}: not a readable Parquet file ({exc}); run the experiment again "
                         "to redo this run") from None


def collect(out: Path) -> pd.DataFrame:
    """One row per finished run: key columns and KPIs; written to runs.parquet and runs.csv."""
    out = Path(out)
    rows = []
    for rid in sorted(finished_runs(out)):
        doc = read_run_summary(out, rid)
        rows.append({**doc["key"], "run_id": rid, **doc["kpis"]})
    df = pd.DataFrame(rows)
    if len(df):
        try:
            write_bytes_atomic(out / "runs.parquet", df.to_parquet(index=False))
            write_text_atomic(out / "runs.csv", df.to_csv(index=False))
        except OSError as exc:
            raise WulinError(f"{out}: cannot write runs.parquet / runs.csv ({exc.strerror or exc}); "
                             "the run folders are intact: make the folder writable and run "
                             "`wulin report` on it") from None
    return df


def load_experiment(out: Path) -> tuple[ExperimentSpec, pd.DataFrame]:
    """The resolved declaration and the per-run table of an experiment folder.

    Raises:
        WulinError: not an experiment folder, or no finished run.
    """
    out = Path(out)
    resolved = out / "resolved.json"
    if not resolved.is_file():
        raise WulinError(f"{out}: not an experiment folder (no resolved.json); run "
                         "`wulin experiment run SPEC.toml` first")
    spec_data = _read_json(resolved)
    if spec_data is _DAMAGED:
        raise WulinError(f"{resolved}: damaged (not valid JSON); rerun the experiment's declaration "
                         f"with --out {out} to rebuild it")
    from experiments.spec import read_resolved

    spec = read_resolved(resolved)  # the same typed model the TOML was loaded into
    damaged = scan_runs(out).damaged
    if damaged:
        raise WulinError(f"{out}: {len(damaged)} run(s) damaged ({'; '.join(damaged.values())}); "
                         f"run `wulin experiment run {out / 'experiment.toml'} --out {out}` to redo them")
    df = collect(out)
    if not len(df):
        raise WulinError(f"{out}: no finished run yet; run `wulin experiment run` on its declaration")
    return spec, df
