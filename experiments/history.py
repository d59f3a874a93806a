"""The run history of an experiment folder: ``history.jsonl``, one JSON event per line, appended.

Every invocation of the runner adds a ``start`` event (code version, package versions, input
hashes, the declaration's hash, the runs it set out to do), then ``retry``, ``failed``,
``damaged`` events as they happen, and an ``end`` event (``completed``, ``failed``,
``interrupted`` or ``unwritable``).  Lines are only ever appended, so a rerun never rewrites
what an earlier one recorded; a line cut short by a kill is skipped when read.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from experiments.durable import append_line

HISTORY = "history.jsonl"


def append_event(out: Path, event: str, **fields: Any) -> None:
    """Append one event (with time and process id) to ``out/history.jsonl``."""
    doc = {"event": event, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "pid": os.getpid(), **fields}
    append_line(Path(out) / HISTORY, json.dumps(doc, default=str))


def read_history(out: Path) -> list[dict[str, Any]]:
    """Every readable event of ``out/history.jsonl``, oldest first (none when absent)."""
    path = Path(out) / HISTORY
    if not path.is_file():
        return []
    events = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            continue  # cut short by a kill
        if isinstance(doc, dict):
            events.append(doc)
    return events


def invocations(out: Path) -> int:
    """How many times the runner has started on this folder."""
    return sum(1 for e in read_history(out) if e.get("event") == "start")
