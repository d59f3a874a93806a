"""What SUMO said during a run: its warnings, teleports and errors, counted from its log.

SUMO's own messages go to the run's log file, not to the terminal (``--error-log`` with
``--no-warnings``; see :class:`~sim.simulation.Simulation`).  After a run the command line
prints one line from :func:`read_sumo_log` instead of SUMO's hundreds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SumoMessages:
    """Counts of SUMO's messages in one log file.

    Attributes:
        warnings: Warning lines, teleports included.
        teleports: Vehicles SUMO teleported (``Teleporting vehicle ...`` warnings).
        errors: Error lines.
        log: The log file the counts come from.
    """

    warnings: int
    teleports: int
    errors: int
    log: Path

    def summary(self) -> str:
        """One line for the terminal: the counts and where the full messages are."""
        if not (self.warnings or self.errors):
            return f"SUMO: no warnings (log: {self.log})"
        parts = [f"{self.warnings} warning{'s' * (self.warnings != 1)}"]
        if self.teleports:
            parts.append(f"{self.teleports} teleport{'s' * (self.teleports != 1)}")
        if self.errors:
            parts.append(f"{self.errors} error{'s' * (self.errors != 1)}")
        return f"SUMO: {', '.join(parts)}; messages in {self.log}"


def read_sumo_log(path: Path) -> SumoMessages:
    """Count the warnings, teleports and errors in SUMO's log ``path`` (missing: none)."""
    warnings = teleports = errors = 0
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        if line.startswith("Warning:"):
            warnings += 1
            teleports += line.startswith("Warning: Teleporting vehicle")
        elif line.startswith("Error:"):
            errors += 1
    return SumoMessages(warnings, teleports, errors, Path(path))


def read_sumo_logs(folder: Path) -> SumoMessages | None:
    """The counts over every SUMO log (``*.sumo.log``) in ``folder``; None if it holds none.

    ``log`` is the log itself when there is one, else the folder.
    """
    logs = sorted(Path(folder).glob("*.sumo.log"))
    if not logs:
        return None
    each = [read_sumo_log(p) for p in logs]
    return SumoMessages(sum(m.warnings for m in each), sum(m.teleports for m in each),
                        sum(m.errors for m in each), logs[0] if len(logs) == 1 else Path(folder))
