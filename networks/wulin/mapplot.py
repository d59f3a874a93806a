"""Map picture of a built network: edges, road names and signal ids (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path


def draw_map(net_file: Path, out: Path, title: str = "") -> Path:
    """Draw ``net_file`` to ``out`` (PNG): roads with their names, signals with their ids."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import sumolib

    net = sumolib.net.readNet(str(net_file), withPrograms=True)
    fig, ax = plt.subplots(figsize=(11, 10), dpi=110)
    names: dict[str, list[tuple[float, float, float]]] = {}
    for edge in net.getEdges():
        xs, ys = zip(*edge.getShape(), strict=True)
        bus = not edge.allows("passenger")
        ax.plot(xs, ys, color="tab:orange" if bus else "0.35", lw=0.6 + 0.5 * edge.getLaneNumber(),
                ls="--" if bus else "-", zorder=1)
        name = edge.getName()
        if name:
            mx, my = xs[len(xs) // 2], ys[len(ys) // 2]
            names.setdefault(name, []).append((edge.getLength(), (xs[0] + xs[-1]) / 2, (ys[0] + ys[-1]) / 2))
            del mx, my
    for name, segs in sorted(names.items()):
        _length, x, y = max(segs)
        ax.annotate(name, (x, y), fontsize=7, color="navy", ha="center", va="bottom",
                    xytext=(0, 4), textcoords="offset points", zorder=3)
    for tls in net.getTrafficLights():
        node = net.getNode(tls.getID()) if net.hasNode(tls.getID()) else None
        if node is None:
            continue
        x, y = node.getCoord()
        ax.plot(x, y, "o", color="crimson", ms=6, zorder=4)
        ax.annotate(tls.getID(), (x, y), fontsize=7, color="crimson", xytext=(4, -9),
                    textcoords="offset points", zorder=5)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m, UTM zone 51N minus net offset)")
    ax.set_ylabel("y (m)")
    ax.set_title(title or Path(net_file).name)
    ax.grid(alpha=0.2)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, metadata={"Software": None})
    plt.close(fig)
    return out
