"""Provenance of results: code version, package versions and hashes of the inputs.

Experiments (``experiments/results.py``) and training runs (``agents/train.py``) both record
where their numbers came from (DESIGN principle 8); this module is the one place that knows how.
Standard library only.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
from collections.abc import Iterable
from pathlib import Path

from sim.scenario import Scenario

REPO = Path(__file__).resolve().parent.parent
PACKAGES = (
    "wulin-signals", "eclipse-sumo", "libsumo", "numpy", "pandas", "scipy", "numba", "ray",
    "gymnasium", "pettingzoo", "torch", "stable-baselines3",
)


def file_sha256(path: Path | str) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def git(*args: str) -> str | None:
    """Output of a git command in the repository, or None outside a checkout."""
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def code_version() -> dict[str, object]:
    """``{"git_commit": ..., "git_dirty": ...}`` (None when not in a git checkout)."""
    status = git("status", "--porcelain")
    return {"git_commit": git("rev-parse", "HEAD"), "git_dirty": bool(status) if status is not None else None}


def package_versions(packages: Iterable[str] = PACKAGES) -> dict[str, str]:
    """Python's version and the installed version of each named distribution."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for pkg in packages:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def scenario_inputs(scenario: Scenario) -> dict[str, str]:
    """``{absolute path: sha256}`` of every file a scenario reads."""
    files = (scenario.source, scenario.net_file, *scenario.route_files, *scenario.additional_files)
    return {str(Path(p).resolve()): file_sha256(p) for p in files}
