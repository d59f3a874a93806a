"""Locating SUMO's binaries in the eclipse-sumo wheel (no SUMO_HOME, no system install)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from sim.errors import WulinError


def sumo_binary(name: str = "sumo") -> str:
    """Absolute path of a SUMO binary (``sumo``, ``sumo-gui``, ``netconvert``, ``netgenerate``).

    Uses the eclipse-sumo wheel installed in this environment; falls back to ``PATH``.
    """
    try:
        import sumo  # the eclipse-sumo wheel

        candidate = Path(sumo.SUMO_HOME) / "bin" / name
        if candidate.exists() and os.access(candidate, os.X_OK):
            return str(candidate)
    except ImportError:
        pass
    found = shutil.which(name)
    if found:
        return found
    raise WulinError(
        f"SUMO binary {name!r} not found; install the project (`make demo` or "
        "`pip install -e .`), which brings the eclipse-sumo wheel"
    )


def sumo_tools_dir() -> Path:
    """SUMO's ``tools/`` folder inside the eclipse-sumo wheel (routeSampler.py and friends)."""
    import sumo

    return Path(sumo.SUMO_HOME) / "tools"


_HEADER = re.compile(r"<!--.*?-->", re.S)


def strip_xml_comments(text: str) -> str:
    """XML text without comments: SUMO stamps a date and options into its output header."""
    return _HEADER.sub("", text)


def run_tool(cmd: list[str], source: object, what: str, *, timeout: float = 900) -> str:
    """Run a SUMO binary or tools script; its first error becomes one WulinError line.

    Args:
        cmd: The command (a binary from :func:`sumo_binary`, or ``python tools/x.py``).
        source: The user's file the run is about (named in the message).
        what: What the tool was doing (``"netconvert"``, ``"SUMO loading the network"``).

    Returns:
        The tool's standard output.
    """
    import subprocess

    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise WulinError(f"{source}: {what} did not finish within {timeout:g} s") from None
    if res.returncode != 0:
        lines = (res.stderr + "\n" + res.stdout).splitlines()
        first = next((ln for ln in lines if ln.startswith("Error")), None) or next(
            (ln for ln in reversed(lines) if ln.strip()), f"exit status {res.returncode}")
        raise WulinError(f"{source}: {what} refused it: {first.strip()}")
    return res.stdout
