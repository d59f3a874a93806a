"""Deploys and rollbacks run in a thread each; their NTCIP steps are kept for live streaming.

The work itself is :func:`deploy.service.deploy` / :func:`deploy.service.rollback`, the same
calls as ``wulin plan deploy``; the console only passes a log callback that appends each step
to a :class:`Job`, which the browser follows over server-sent events.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from deploy.identity import Principal
from deploy.service import DeployOptions, Outcome
from sim.errors import WulinError

MAX_JOBS = 200


@dataclass
class Job:
    """One device action as the browser follows it.

    Attributes:
        id: Random id (in the URL).
        kind: ``deploy`` or ``rollback``.
        plan_hash: The plan acted on.
        owner: Who started it (only they and supervisors may watch).
        lines: The NTCIP steps so far.
        outcome: How it ended (None: still running).
        error: The refusal or failure message, when it ended in one.
    """

    id: str
    kind: str
    plan_hash: str
    owner: str
    lines: list[str] = field(default_factory=list)
    outcome: Outcome | None = None
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def add(self, line: str) -> None:
        self.lines.append(line)


Action = Callable[[DeployOptions], Outcome]


class JobBoard:
    """The running and recent jobs (the oldest forgotten beyond :data:`MAX_JOBS`)."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def start(self, kind: str, plan_hash: str, actor: Principal, base: DeployOptions, action: Action) -> Job:
        """Run ``action`` with ``base`` options whose log feeds a new job, in a thread."""
        job = Job(secrets.token_urlsafe(12), kind, plan_hash, actor.name)
        opts = DeployOptions(base.activation_timeout_s, base.activation, log=job.add)
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > MAX_JOBS:
                self._jobs.pop(next(iter(self._jobs)))

        def run() -> None:
            try:
                job.outcome = action(opts)
            except WulinError as exc:  # refused or interrupted: the store has recorded it
                job.error = str(exc)
            except Exception as exc:  # noqa: BLE001  (shown to the user; the store settled the device)
                job.error = f"{type(exc).__name__}: {exc}"
            finally:
                job.done.set()

        threading.Thread(target=run, name=f"console-{kind}-{job.id}", daemon=True).start()
        return job
