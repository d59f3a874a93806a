"""The committed demo grid is reproducible and runs with its own programs."""

from __future__ import annotations

from pathlib import Path

from networks.grid.build import build
from sim.tools import strip_xml_comments

GRID = Path(__file__).resolve().parent.parent / "networks" / "grid"


def test_rebuild_equals_committed(tmp_path: Path) -> None:
    for new in build(tmp_path):
        old = GRID / new.relative_to(tmp_path)
        assert strip_xml_comments(new.read_text()) == strip_xml_comments(old.read_text()), old.name
