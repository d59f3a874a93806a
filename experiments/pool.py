"""Worker processes that survive faults: a dead worker's run is retried, the driver's death ends them.

:class:`WorkerPool` replaces ``concurrent.futures.ProcessPoolExecutor`` for experiment runs.
That executor marks the whole pool broken when one worker dies (``BrokenProcessPool``) and
cannot say which run killed it.  Here each worker is a spawned process with its own pipe and
runs one task at a time, so the driver knows which run a dead worker held: that run is put
back in the queue (at most ``max_attempts`` attempts in all) and a new worker takes its place,
while the other workers go on.  A run that keeps killing its worker ends as a
:class:`~experiments.results.RunError` naming the signal or exit status.

Workers end with the driver: on Linux the kernel sends them SIGKILL when the driver dies
(``PR_SET_PDEATHSIG``); elsewhere a thread polls the parent pid.  An idle worker also ends at
the end of its pipe.  Workers ignore SIGINT (Ctrl-C reaches the whole process group): the
driver decides, stops them and keeps what has finished.

Each worker's temporary files live in ``<work_root>/<driver pid>-<worker pid>/`` (its
``TMPDIR``), removed by the driver when the worker ends, however it ends; :func:`sweep` removes
those of drivers that no longer run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from experiments.results import RunError, RunOutput
from experiments.spec import RunKey

MAX_ATTEMPTS = 3  # a run whose worker dies is tried again twice
Result = RunOutput | RunError
Task = Callable[[Any, RunKey, Path], Result]


def _die_with_parent(driver_pid: int) -> None:
    """End this process when the driver ends, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    else:
        def watch() -> None:
            while os.getppid() == driver_pid:
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != driver_pid:  # the driver died before the line above took effect
        os._exit(1)


def _worker_main(conn: Connection, task: Task, shared: Any, driver_pid: int, work_root: str) -> None:
    _die_with_parent(driver_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    work = Path(work_root) / f"{driver_pid}-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    # every temporary file of this worker (tempfile, SUMO, netconvert) goes under its folder
    tempfile.tempdir = str(work)
    os.environ["TMPDIR"] = str(work)
    while True:
        try:
            key = conn.recv()
        except (EOFError, OSError):
            return
        if key is None:
            return
        result = task(shared, key, work)
        try:
            conn.send(result)
        except Exception:  # an unpicklable result: pickling fails before anything is written
            conn.send(RunError(key, traceback.format_exc()))


def describe_exit(exitcode: int | None) -> str:
    """How a process ended, in words (``killed by SIGKILL``, ``exited with status 1``)."""
    if exitcode is None:
        return "did not exit"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with status {exitcode}"


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    work: Path
    key: RunKey | None = None


def sweep(work_root: Path) -> None:
    """Remove the worker folders of drivers that no longer run (killed ones leave theirs)."""
    if not work_root.is_dir():
        return
    for d in work_root.iterdir():
        pid = d.name.split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or not _alive(int(pid)):
            shutil.rmtree(d, ignore_errors=True)
    with contextlib.suppress(OSError):
        work_root.rmdir()  # only when empty


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WorkerPool:
    """Spawned worker processes running ``task(shared, key, work_dir)`` one key at a time.

    Args:
        task: A module-level function (it is sent to the workers by reference).
        shared: Its first argument, sent once to each worker (the experiment spec).
        workers: Processes running at once.
        work_root: Parent of the workers' temporary folders.
        max_attempts: Tries of a run whose worker dies, the first included.
    """

    def __init__(self, task: Task, shared: Any, *, workers: int, work_root: Path,
                 max_attempts: int = MAX_ATTEMPTS) -> None:
        import multiprocessing as mp

        # spawn: a fresh interpreter per worker (libsumo keeps one simulation per process, and
        # forking a process that has loaded libsumo or Ray is not safe)
        self._ctx = mp.get_context("spawn")
        self._task, self._shared = task, shared
        self._size, self._root, self._max = workers, Path(work_root), max_attempts
        self._workers: list[_Worker] = []
        self._attempts: dict[str, int] = {}

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, keys: Iterable[RunKey], on_done: Callable[[Result], None],
            on_retry: Callable[[RunKey, int, str], None]) -> None:
        """Run every key; ``on_done`` gets each result, ``on_retry(key, attempt, why)`` each retry."""
        queue = deque(keys)
        while queue or any(w.key is not None for w in self._workers):
            self._hand_out(queue)
            busy = [w for w in self._workers if w.key is not None]
            ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
            for w in busy:
                if w.conn in ready:  # a result, or the end of the pipe of a dead worker
                    try:
                        result = w.conn.recv()
                    except (EOFError, OSError):
                        self._lost(w, queue, on_done, on_retry)
                        continue
                    assert w.key is not None
                    attempts = self._attempts[w.key.run_id]
                    w.key = None
                    on_done(dataclasses.replace(result, attempts=attempts))
                elif w.process.sentinel in ready:
                    self._lost(w, queue, on_done, on_retry)

    def _hand_out(self, queue: deque[RunKey]) -> None:
        for w in list(self._workers):
            if w.key is None and not w.process.is_alive():  # died while idle: no run lost
                self._retire(w)
        for w in list(self._workers):
            if w.key is None and queue:
                self._give(w, queue)
        while queue and len(self._workers) < self._size:
            self._give(self._start(), queue)

    def _give(self, w: _Worker, queue: deque[RunKey]) -> None:
        key = queue.popleft()
        self._attempts[key.run_id] = self._attempts.get(key.run_id, 0) + 1
        w.key = key
        with contextlib.suppress(OSError):  # died just now: run() sees its sentinel and retries
            w.conn.send(key)

    def _start(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_worker_main, daemon=True,
                                 args=(child, self._task, self._shared, os.getpid(), str(self._root)))
        proc.start()
        child.close()  # so that the worker's death ends the pipe here
        w = _Worker(proc, parent, self._root / f"{os.getpid()}-{proc.pid}")
        self._workers.append(w)
        return w

    def _lost(self, w: _Worker, queue: deque[RunKey], on_done: Callable[[Result], None],
              on_retry: Callable[[RunKey, int, str], None]) -> None:
        """A worker died holding ``w.key``: retry that run, or record it as failed."""
        key = w.key
        assert key is not None
        w.process.join(5)
        why = describe_exit(w.process.exitcode)
        self._retire(w)
        n = self._attempts[key.run_id]
        if n < self._max:
            on_retry(key, n + 1, why)
            queue.appendleft(key)
        else:
            on_done(RunError(key, f"the worker process running it died on each of {n} attempts "
                                  f"(last: {why}); SUMO crashing or the machine running out of "
                                  "memory are the usual causes", attempts=n))

    def _retire(self, w: _Worker) -> None:
        if w.process.is_alive():
            w.process.kill()
            w.process.join(5)
        w.conn.close()
        shutil.rmtree(w.work, ignore_errors=True)
        self._workers.remove(w)

    def close(self, drain: Callable[[Result], None] | None = None) -> None:
        """Stop every worker and remove its folder; results already sent go to ``drain``."""
        for w in list(self._workers):
            if w.key is not None and drain is not None:
                with contextlib.suppress(EOFError, OSError):
                    if w.conn.poll(0):
                        result = w.conn.recv()
                        drain(dataclasses.replace(result, attempts=self._attempts[w.key.run_id]))
                        w.key = None
            if w.key is None:
                with contextlib.suppress(OSError):
                    w.conn.send(None)  # idle: let it leave on its own
            else:
                w.process.terminate()
        deadline = time.monotonic() + 5
        for w in list(self._workers):
            w.process.join(max(0.1, deadline - time.monotonic()))
            self._retire(w)
