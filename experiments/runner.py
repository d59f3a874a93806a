"""Run an experiment: every (scenario, variation, controller, seed) through the one episode loop.

Each run is :func:`execute_run`: the variation is applied (scenario, hooks, additional files),
the run goes through :func:`experiments.episode.run_episode` with a queue observer and an
``edgeData`` file on every approach, and the KPIs come back as a
:class:`~experiments.results.RunOutput`.  Executors only decide *where* that function runs:

* ``local`` (default): a pool of worker processes, one SUMO (libsumo) each, at most one per
  core.  Numba kernels are compiled into the disk cache in this process first, so workers
  load them instead of each compiling them.
* ``ray``: one Ray task per run, on a local Ray instance or a cluster (``address``).  Results
  travel back through Ray's object store, so nodes need no shared file system, but each node
  needs the same checkout and environment (the package importable, the networks present).

Only this process writes results, each run atomically as it finishes
(:func:`experiments.results.write_run`): a killed experiment started again skips finished runs.
A failed run does not stop the others; its error is written to ``runs/<id>.error.txt`` and the
experiment ends with a :class:`~sim.errors.WulinError` listing the failures.

Faults (see :mod:`experiments.pool`): a worker that dies (SIGKILL, a SUMO crash) has its run
retried, at most :data:`~experiments.pool.MAX_ATTEMPTS` tries in all, while the others go on;
the workers end with the driver however it ends; Ctrl-C or SIGTERM stops the workers, keeps
every finished run and raises :class:`ExperimentInterrupted` saying how to resume.  An output
folder that cannot be written is refused before any work; one that stops being writable
midway ends the experiment with one error naming it, and the finished runs that could not be
written there are saved in a ``wulin-unsaved-*`` folder instead of being lost.  Each event
(start, retry, failure, end) is appended to ``history.jsonl`` (:mod:`experiments.history`).

``--workers 1`` runs in this process (no worker to lose, and tests can patch
:func:`execute_run`); more workers are spawned processes.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import tempfile
import threading
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from experiments.recorder import Recorder, Unwritable
from experiments.results import RunError, RunOutput
from experiments.spec import ExperimentSpec, RunKey
from sim.errors import WulinError

EXECUTORS = ("local", "ray")
# CO2 and fuel for every vehicle; SUMO's per-vehicle warnings (teleports...) would flood the
# console from every worker: teleports are counted in the KPIs instead
SUMO_ARGS = ("--device.emissions.probability", "1", "--no-warnings", "true")


def _edgedata_period(duration: float) -> float:
    """About 12 periods per run, in whole minutes, between 1 and 5 minutes."""
    return float(min(300, max(60, 60 * round(duration / 12 / 60))))


class ExperimentInterrupted(WulinError, KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped the experiment; finished runs are kept (the message says how to
    resume).  Both a :class:`WulinError` (the CLI prints one line) and a ``KeyboardInterrupt``."""


def execute_run(spec: ExperimentSpec, key: RunKey, backend: str = "libsumo",
                tmp_root: Path | None = None) -> RunOutput:
    """Run one episode of an experiment and measure it (runs in a worker process or Ray task).

    Args:
        spec: The experiment.
        key: Which run.
        backend: SUMO backend.
        tmp_root: Parent of the run's temporary folder (default: the system's temp folder);
            the folder is removed when the run ends, however it ends.
    """
    import pandas as pd

    from experiments.episode import run_episode
    from experiments.kpis import (
        Approaches,
        QueueObserver,
        intersection_tables,
        network_intersection_kpis,
    )
    from experiments.variations import prepare
    from sim.kpi import summarise
    from sim.kpi_registry import FLAG_COLUMN, run_flag
    from sim.scenario import load_scenario
    from sim.state import DistrictLayout
    from sim.topology import load_signal_specs
    from sim.variations import read_edgedata, write_edgedata_additional

    variation = spec.variation(key.variation)
    work = Path(tempfile.mkdtemp(prefix=f"wulin-run-{key.run_id}-", dir=tmp_root))
    try:
        prepared = prepare(load_scenario(key.scenario), variation, work, spec.pedestrian_street_edges)
        sc = prepared.scenario
        layout = DistrictLayout.from_specs(load_signal_specs(sc.net_file))
        approaches = Approaches.from_layout(layout)
        edgedata_out = work / "approaches.edgedata.xml"
        edgedata_add = write_edgedata_additional(work / "approaches.add.xml", edgedata_out,
                                                 approaches.edge, _edgedata_period(sc.duration))
        observer = QueueObserver(approaches)
        res = run_episode(
            sc, key.controller, seed=key.seed, backend=backend, output_dir=work / "sumo",
            additional_files=(*prepared.additional_files, edgedata_add),
            extra_args=(*prepared.extra_args, *SUMO_ARGS),
            hooks=(prepared.hook,) if prepared.hook is not None else (),
            observers=(observer,),
            controller_params=spec.params_for(key),
            priority=prepared.priority,
        )
        edgedata = pd.DataFrame(read_edgedata(edgedata_out))
        queues = observer.frame()
        appr, inter, series = intersection_tables(edgedata, queues, approaches,
                                                  sc.measure_begin, sc.end)
        trips = res.trips
        summary: dict[str, Any] = dict(summarise(trips))
        hours = max(sc.end - sc.measure_begin, 1e-9) / 3600.0
        net = res.network
        summary.update({
            "throughput_vph": summary["finished"] / hours,
            "unfinished": summary["trips"] - summary["finished"],
            "inserted": net.get("inserted", math.nan),
            "arrived": net.get("arrived", math.nan),
            "teleports": net.get("teleports", math.nan),
            "collisions": net.get("collisions", math.nan),
            "mean_speed_kmh": net.get("mean_speed", math.nan) * 3.6,
            "wall_time": res.wall_time,
            "controller_time": res.controller_time,
            "decisions": float(res.decisions),
            "sim_begin": sc.begin, "sim_end": sc.end, "measure_begin": sc.measure_begin,
            "scale": sc.scale,
        })
        summary.update(network_intersection_kpis(appr, queues, sc.measure_begin))
        extra_tables: dict[str, Any] = {}
        if prepared.priority is not None:  # emergency vehicles, bus priority: their KPIs
            from experiments.priority_kpis import priority_outputs

            more, extra_tables = priority_outputs(prepared.priority, trips, queues, sc.measure_begin)
            summary.update(more)
        summary[FLAG_COLUMN] = run_flag(summary)  # why not to rank on this run ("" when clean)
        return RunOutput(
            key=key, summary=summary,
            tables={"trips": trips, "approaches": appr, "intersections": inter,
                    "delay_series": series, "queues": queues, **extra_tables},
            events=prepared.hook.log if prepared.hook is not None else [],
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _warm_numba(spec: ExperimentSpec) -> None:
    """Compile the Numba kernels into the disk cache once, before workers start."""
    from controllers.base import warm_up_kernels
    from sim.scenario import load_scenario
    from sim.state import DistrictLayout
    from sim.topology import load_signal_specs

    nets = {load_scenario(s).net_file for s in spec.scenarios}
    for net in sorted(nets):
        warm_up_kernels(DistrictLayout.from_specs(load_signal_specs(net)))


def _local_worker(spec: ExperimentSpec, key: RunKey, tmp_root: Path | None = None) -> RunOutput | RunError:
    try:
        return execute_run(spec, key, tmp_root=tmp_root)
    except Exception as exc:  # sent back as text: the driver records it and carries on
        detail = str(exc) if isinstance(exc, WulinError) else traceback.format_exc()
        return RunError(key, detail)


def _run_local(spec: ExperimentSpec, keys: Sequence[RunKey], workers: int, work_root: Path,
               rec: Recorder) -> None:
    from experiments.pool import WorkerPool

    if workers <= 1:
        tmp = work_root / f"{os.getpid()}-{os.getpid()}"
        tmp.mkdir(parents=True, exist_ok=True)
        for k in keys:
            rec.done(_local_worker(spec, k, tmp))
        return
    with WorkerPool(_local_worker, spec, workers=workers, work_root=work_root) as pool:
        try:
            pool.run(keys, rec.done, rec.retry)
        except BaseException:
            pool.close(drain=rec.salvage)  # results already sent back are still written
            raise


def _run_ray(spec: ExperimentSpec, keys: Sequence[RunKey], address: str | None, rec: Recorder) -> None:
    from experiments.pool import MAX_ATTEMPTS

    try:
        import ray
    except ImportError:
        raise WulinError("--executor ray: Ray is not installed; pip install 'wulin-signals[ray]'") from None
    if not ray.is_initialized():
        try:
            if address:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(include_dashboard=False, log_to_driver=False)
        except ConnectionError as exc:
            raise WulinError(f"--address {address}: cannot reach a Ray cluster ({exc}); "
                             "start one with `ray start --head` or fix the address") from None
    # Ray retries a task whose worker died (max_retries covers system failures only)
    task = ray.remote(num_cpus=1, max_retries=MAX_ATTEMPTS - 1)(_local_worker)
    spec_ref = ray.put(spec)
    key_of = {task.remote(spec_ref, k): k for k in keys}
    pending = list(key_of)
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                try:
                    rec.done(ray.get(ref))
                except ray.exceptions.RayError as exc:
                    rec.done(RunError(key_of[ref], f"Ray task failed after {MAX_ATTEMPTS} attempts: {exc}",
                                      attempts=MAX_ATTEMPTS))
    finally:
        for ref in pending:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM stops the experiment as Ctrl-C does (workers stopped, finished runs kept)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _check_options(executor: str, workers: int | None) -> None:
    if executor not in EXECUTORS:
        raise WulinError(f"--executor: expected one of {', '.join(EXECUTORS)}, got {executor!r}")
    if workers is not None and workers < 1:
        raise WulinError(f"--workers: expected a number >= 1, got {workers}")


def run_experiment(
    spec: ExperimentSpec,
    out: Path,
    *,
    executor: str = "local",
    workers: int | None = None,
    address: str | None = None,
    progress: bool = True,
    console: Any = None,
) -> Path:
    """Run every run of ``spec`` not yet finished in ``out``; write the results.

    Args:
        spec: A validated experiment (from a file or built in memory).
        out: The experiment folder (created, or reopened to resume).
        executor: ``"local"`` (processes) or ``"ray"``.
        workers: Local worker processes (default: one per core, at most one per run).
        address: Ray cluster address (``ray`` executor; default: a local Ray instance).
        progress: Show a progress bar.
        console: A ``rich`` console for messages.

    Returns:
        ``out``.

    Raises:
        WulinError: a bad option, an unwritable or foreign ``out`` (before any work), some runs
            failed (the others are kept), or ``out`` stopped being writable midway.
        ExperimentInterrupted: Ctrl-C or SIGTERM (finished runs kept).
    """
    from experiments.pool import sweep
    from experiments.results import collect, open_experiment

    _check_options(executor, workers)
    out, keys = open_experiment(spec, Path(out), console)
    work_root = out.absolute() / ".work"  # SUMO reads output paths relative to its files
    rec = Recorder(spec, out, keys, progress=progress, console=console)
    try:
        if keys:
            _warm_numba(spec)
            with rec.progress_bar(), _sigterm_interrupts():
                if executor == "ray":
                    _run_ray(spec, keys, address, rec)
                else:
                    n = workers or os.cpu_count() or 1
                    _run_local(spec, keys, max(1, min(n, len(keys))), work_root, rec)
    except KeyboardInterrupt:
        rec.end("interrupted")
        raise ExperimentInterrupted(rec.interrupted_message()) from None
    except Unwritable:
        rec.end("unwritable")
        raise WulinError(rec.unwritable_message()) from None
    finally:
        sweep(work_root)
    rec.end("failed" if rec.failures else "completed")
    collect(out)
    if rec.failures:
        raise WulinError(rec.failures_message())
    return out
