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
