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
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from experiments.results import RunOutput, collect, finished_runs, init_experiment_dir, write_run
from experiments.spec import ExperimentSpec, RunKey
from sim.errors import WulinError

EXECUTORS = ("local", "ray")
# CO2 and fuel for every vehicle; SUMO's per-vehicle warnings (teleports...) would flood the
# console from every worker: teleports are counted in the KPIs instead
SUMO_ARGS = ("--device.emissions.probability", "1", "--no-warnings", "true")


def _edgedata_period(duration: float) -> float:
    """About 12 periods per run, in whole minutes, between 1 and 5 minutes."""
    return float(min(300, max(60, 60 * round(duration / 12 / 60))))


def execute_run(spec: ExperimentSpec, key: RunKey, backend: str = "libsumo") -> RunOutput:
    """Run one episode of an experiment and measure it (runs in a worker process or Ray task)."""
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
    from sim.scenario import load_scenario
    from sim.state import DistrictLayout
    from sim.topology import load_signal_specs
    from sim.variations import read_edgedata, write_edgedata_additional

    variation = spec.variation(key.variation)
    work = Path(tempfile.mkdtemp(prefix=f"wulin-run-{key.seed}-"))
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
            controller_params=spec.controller_params.get(key.controller),
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
        return RunOutput(
            key=key, summary=summary,
            tables={"trips": trips, "approaches": appr, "intersections": inter,
                    "delay_series": series, "queues": queues},
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


def _local_worker(spec: ExperimentSpec, key: RunKey) -> RunOutput | tuple[RunKey, str]:
    try:
        return execute_run(spec, key)
    except Exception as exc:  # sent back as text: the driver records it and carries on
        detail = str(exc) if isinstance(exc, WulinError) else traceback.format_exc()
        return key, detail


def _run_local(spec: ExperimentSpec, keys: Sequence[RunKey], workers: int,
               on_done: Callable[[RunOutput | tuple[RunKey, str]], None]) -> None:
    if workers <= 1:
        for k in keys:
            on_done(_local_worker(spec, k))
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn: a fresh interpreter per worker (libsumo keeps one simulation per process, and
    # forking a process that has loaded libsumo or Ray is not safe)
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(_local_worker, spec, k) for k in keys]
        for fut in as_completed(futures):
            on_done(fut.result())


def _run_ray(spec: ExperimentSpec, keys: Sequence[RunKey], address: str | None,
             on_done: Callable[[RunOutput | tuple[RunKey, str]], None]) -> None:
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
    task = ray.remote(num_cpus=1, max_retries=0)(_local_worker)
    spec_ref = ray.put(spec)
    pending = [task.remote(spec_ref, k) for k in keys]
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        for ref in done:
            on_done(ray.get(ref))


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
        spec: A validated experiment.
        out: The experiment folder (created, or reopened to resume).
        executor: ``"local"`` (processes) or ``"ray"``.
        workers: Local worker processes (default: one per core, at most one per run).
        address: Ray cluster address (``ray`` executor; default: a local Ray instance).
        progress: Show a progress bar.
        console: A ``rich`` console for messages.

    Returns:
        ``out``.

    Raises:
        WulinError: a bad executor, or some runs failed (the others are kept).
    """
    if executor not in EXECUTORS:
        raise WulinError(f"--executor: expected one of {', '.join(EXECUTORS)}, got {executor!r}")
    if workers is not None and workers < 1:
        raise WulinError(f"--workers: expected a number >= 1, got {workers}")
    out = init_experiment_dir(spec, Path(out))
    done_ids = finished_runs(out)
    keys = [k for k in spec.runs() if k.run_id not in done_ids]
    total = len(spec.runs())
    if console is not None and done_ids:
        console.print(f"resuming: {total - len(keys)} of {total} runs already finished in {out}")
    failures: list[tuple[RunKey, str]] = []
    if keys:
        _warm_numba(spec)
        bar = None
        if progress:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                           TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[last]}"),
                           console=console)
            bar.start()
            task = bar.add_task(spec.name, total=total, completed=total - len(keys), last="")

        def on_done(result: RunOutput | tuple[RunKey, str]) -> None:
            if isinstance(result, RunOutput):
                write_run(out, result)
                label = result.key.run_id
            else:
                key, err = result
                failures.append((key, err))
                (out / "runs" / f"{key.run_id}.error.txt").write_text(err)
                label = f"[red]failed: {key.run_id}"
            if bar is not None:
                bar.update(task, advance=1, last=label)

        try:
            if executor == "ray":
                _run_ray(spec, keys, address, on_done)
            else:
                n = workers or os.cpu_count() or 1
                _run_local(spec, keys, max(1, min(n, len(keys))), on_done)
        finally:
            if bar is not None:
                bar.stop()
    collect(out)
    if failures:
        lines = "\n".join(f"  {k.run_id}: {e.strip().splitlines()[-1] if e.strip() else e}"
                          for k, e in failures)
        raise WulinError(f"{len(failures)} of {total} runs failed (errors in {out}/runs/*.error.txt; "
                         f"run the command again to retry only them):\n{lines}")
    return out
