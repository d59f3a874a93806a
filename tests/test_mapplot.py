"""Network map: road names placed without overlapping each other or the signal ids."""

from __future__ import annotations

from pathlib import Path

from networks.wulin.mapplot import draw_map, place_labels
from tests.conftest import REPO


def test_labels_move_to_a_free_candidate() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    first = [(50.0, 50.0, 0.0, 1), (50.0, 10.0, 0.0, 1)]
    texts = place_labels(ax, [("Yan'an Rd", first), ("Yan'an Rd again", first)], [], fontsize=8)
    a, b = (t.get_window_extent(fig.canvas.get_renderer()) for t in texts)
    assert not a.overlaps(b)
    assert texts[1].xy == (50.0, 10.0)  # the second label took its second candidate
    plt.close(fig)


def test_wulin_map_is_drawn(tmp_path: Path) -> None:
    out = draw_map(REPO / "networks" / "wulin" / "wulin.net.xml", tmp_path / "map.png", "wulin")
    assert out.stat().st_size > 50_000 and out.read_bytes()[:4] == b"\x89PNG"
