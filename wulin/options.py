"""CLI options shared by several commands: the network search path (``--networks DIR``).

The option's callback puts the folders on the search path of :mod:`sim.network_path` as soon
as the command line is parsed, so a command only declares ``networks: ... = NETWORKS_OPT``.
"""

from __future__ import annotations

from pathlib import Path

import typer


def _use_networks(dirs: list[Path] | None) -> list[Path] | None:
    if dirs:
        from sim.network_path import add_search_dirs

        add_search_dirs(dirs)
    return dirs


NETWORKS_OPT = typer.Option(
    None, "--networks", callback=_use_networks, metavar="DIR",
    help="Also look for networks and scenarios here (repeatable; adds to WULIN_NETWORKS; "
         "the package's own networks are always searched).")
