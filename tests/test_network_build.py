"""Network builds are reproducible: a rebuild equals the committed files."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.errors import WulinError
from sim.tools import strip_xml_comments

ROOT = Path(__file__).resolve().parent.parent


def _same(a: Path, b: Path) -> bool:
    return strip_xml_comments(a.read_text()) == strip_xml_comments(b.read_text())


def test_wulin_rebuild_equals_committed(tmp_path: Path) -> None:
    from networks.wulin.build import build

    written = build(tmp_path, progress=False)
    assert len(written) == 6
    for p in written:
        committed = ROOT / "networks" / "wulin" / p.relative_to(tmp_path)
        assert committed.is_file(), f"{committed} is not committed"
        assert _same(p, committed), f"{p.name} differs from the committed file; run `wulin network build wulin`"


def test_grid_rebuild_equals_committed(tmp_path: Path) -> None:
    from networks.grid.build import build

    for p in build(tmp_path):
        assert _same(p, ROOT / "networks" / "grid" / p.relative_to(tmp_path))


def test_unknown_network_is_a_clear_error() -> None:
    from wulin.cmd_network import _network_dir

    with pytest.raises(WulinError, match="known networks"):
        _network_dir("nosuch")
