"""The driver's side of an experiment: write each result as it comes back, record each event.

:class:`Recorder` is what the executors hand their results to.  A finished run is written to
its folder at once (:func:`experiments.results.write_run`), a failed one to
``runs/<id>.error.txt``, and every event goes to the run history
(:mod:`experiments.history`).  When the experiment folder stops being writable, the recorder
raises :class:`Unwritable` and keeps the finished runs it could not write; the runner then
saves them in a ``wulin-unsaved-*`` folder so that nothing already computed is lost.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from experiments.durable import write_text_atomic
from experiments.history import append_event
from experiments.results import RunError, RunOutput, manifest, write_run
from experiments.spec import ExperimentSpec, RunKey


class Unwritable(Exception):
    """The experiment folder stopped being writable (carries the OSError)."""


class Recorder:
    """Writes results and history for one invocation of the runner.

    Args:
        spec: The experiment.
        out: Its folder.
        keys: The runs this invocation sets out to do.
        progress: Show a progress bar while running.
        console: A ``rich`` console for messages (None: silent).
    """

    def __init__(self, spec: ExperimentSpec, out: Path, keys: Sequence[RunKey], *,
                 progress: bool, console: Any) -> None:
        self.spec, self.out, self.console = spec, out, console
        self.total = len(spec.runs())
        self.before = self.total - len(keys)
        self.written: list[str] = []
        self.failures: list[RunError] = []
        self.unsaved: list[RunOutput] = []
        self.error: OSError | None = None
        self._progress = progress
        self._bar: Any = None
        self._task: Any = None
        append_event(out, "start", **manifest(spec), to_run=[k.run_id for k in keys],
                     finished_before=self.before)

    @contextlib.contextmanager
    def progress_bar(self) -> Iterator[None]:
        """Show the progress bar (when asked for) while the runs go."""
        if not self._progress:
            yield
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[last]}"),
                             console=self.console)
        self._task = self._bar.add_task(self.spec.name, total=self.total, completed=self.before, last="")
        with self._bar:
            yield
        self._bar = None

    def _say(self, text: str) -> None:
        if self._bar is not None:
            self._bar.console.print(text)
        elif self.console is not None:
            self.console.print(text)

    def done(self, result: RunOutput | RunError) -> None:
        """Write one result (raises :class:`Unwritable` when the folder cannot take it)."""
        if self.error is not None:  # the folder already failed: keep the rest in memory
            if isinstance(result, RunOutput):
                self.unsaved.append(result)
            else:
                self.failures.append(result)
            return
        try:
            if isinstance(result, RunOutput):
                write_run(self.out, result)
                self.written.append(result.key.run_id)
                label = result.key.run_id
            else:
                self.failures.append(result)
                write_text_atomic(self.out / "runs" / f"{result.key.run_id}.error.txt", result.message)
                append_event(self.out, "failed", run_id=result.key.run_id, attempts=result.attempts,
                             error=_last_line(result.message))
                label = f"[red]failed: {result.key.run_id}"
        except OSError as exc:
            self.error = exc
            if isinstance(result, RunOutput):
                self.unsaved.append(result)
            raise Unwritable(str(exc)) from exc
        if self._bar is not None:
            self._bar.update(self._task, advance=1, last=label)

    def salvage(self, result: RunOutput | RunError) -> None:
        """Like :meth:`done` while stopping: never raises; what cannot be written is kept."""
        try:
            self.done(result)
        except Unwritable:
            pass

    def retry(self, key: RunKey, attempt: int, why: str) -> None:
        """A worker died running ``key``: record it; the pool runs it again."""
        self._say(f"[yellow]worker {why} while running {key.run_id}; trying it again "
                  f"(attempt {attempt})")
        with contextlib.suppress(OSError):
            append_event(self.out, "retry", run_id=key.run_id, attempt=attempt, reason=f"worker {why}")

    def end(self, status: str) -> None:
        """Record the end of this invocation (best effort: the folder may be unwritable)."""
        with contextlib.suppress(OSError):
            append_event(self.out, "end", status=status, written=self.written,
                         failed=[f.key.run_id for f in self.failures],
                         unsaved=[r.key.run_id for r in self.unsaved])

    def finished(self) -> int:
        """Runs finished and kept in the folder, this invocation and earlier ones."""
        return self.before + len(self.written)

    def interrupted_message(self) -> str:
        """One line: what was kept and how to resume."""
        n = self.finished()
        return (f"interrupted: {n} of {self.total} runs finished and kept in {self.out}; run the "
                f"same command again to resume the other {self.total - n}")

    def unwritable_message(self) -> str:
        """Which folder failed, what was not written there and where it went instead."""
        err = self.error
        assert err is not None
        where = err.filename or self.out
        text = (f"{self.out}: cannot write the results any more ({err.strerror or err}: {where}); "
                f"{self.finished()} of {self.total} runs are saved there")
        if self.unsaved:
            ids = ", ".join(r.key.run_id for r in self.unsaved)
            rescue = self._rescue()
            text += (f"; the finished run(s) {ids} were saved to {rescue}/runs instead (move them "
                     f"into {self.out}/runs)" if rescue else f"; the finished run(s) {ids} were lost")
        return text + "; make the folder writable and run the same command again to resume"

    def _rescue(self) -> Path | None:
        """Write the runs that could not go to the experiment folder into a new temp folder."""
        try:
            folder = Path(tempfile.mkdtemp(prefix=f"wulin-unsaved-{self.spec.name}-"))
            (folder / "runs").mkdir()
            for r in self.unsaved:
                write_run(folder, r)
        except OSError:
            return None
        return folder

    def failures_message(self) -> str:
        """The failed runs, one line each, and how to retry them."""
        lines = "\n".join(f"  {f.key.run_id}: {_last_line(f.message)}" for f in self.failures)
        return (f"{len(self.failures)} of {self.total} runs failed (errors in {self.out}/runs/*.error.txt; "
                f"run the command again to retry only them):\n{lines}")


def _last_line(text: str) -> str:
    return text.strip().splitlines()[-1] if text.strip() else text
