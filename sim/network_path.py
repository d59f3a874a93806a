"""The network search path: where network folders and their scenarios are found.

A network folder holds a ``.net.xml``, its demand and ``scenarios/<id>.toml`` (the package's
own ``networks/grid``, ``networks/wulin``, or what ``wulin network import`` writes).  The
search path is, in order:

1. the folders named by ``WULIN_NETWORKS`` (separated by ``os.pathsep``, ``:`` on Linux),
   to which every ``--networks DIR`` option of the CLI is added (:func:`add_search_dirs`:
   through the environment, so the experiment runner's worker processes see it too);
2. the package's own ``networks/`` folder, always.

Each folder on the path is either a network folder itself (it has ``scenarios/`` or a
``.net.xml``) or a folder of network folders.  Network names and scenario ids must be unique
over the whole path; a clash is an error naming both places.  Wherever a command takes a
network name or a scenario id it also takes a path (:func:`find_net_file`,
``sim.scenario.load_scenario``).  This module is the one place that knows the path.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from sim.errors import WulinError

ENV_VAR = "WULIN_NETWORKS"
PACKAGE_NETWORKS = Path(__file__).resolve().parent.parent / "networks"


def search_dirs() -> list[Path]:
    """The folders searched, in order: ``WULIN_NETWORKS``'s, then the package's ``networks/``."""
    dirs = [Path(p).expanduser().resolve() for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p]
    out: list[Path] = []
    for d in [*dirs, PACKAGE_NETWORKS]:
        if d not in out:
            out.append(d)
    return out


def add_search_dirs(dirs: Iterable[Path | str], what: str = "--networks") -> None:
    """Put ``dirs`` first on the search path (for this process and the ones it starts).

    Raises:
        WulinError: a folder that does not exist.
    """
    added = []
    for d in dirs:
        p = Path(d).expanduser().resolve()
        if not p.is_dir():
            raise WulinError(f"{what} {d}: no such folder (a folder of network folders, or one "
                             "network folder)")
        added.append(str(p))
    if added:
        rest = os.environ.get(ENV_VAR, "")
        os.environ[ENV_VAR] = os.pathsep.join([*added, *([rest] if rest else [])])


def _is_network(folder: Path) -> bool:
    return (folder / "scenarios").is_dir() or any(folder.glob("*.net.xml"))


def network_dirs() -> dict[str, Path]:
    """Every network folder on the search path, by name (the folder's name).

    Raises:
        WulinError: two folders with the same name.
    """
    found: dict[str, Path] = {}
    for d in search_dirs():
        if not d.is_dir():
            continue  # a WULIN_NETWORKS entry that is gone is skipped, as PATH entries are
        candidates = [d] if _is_network(d) else sorted(c for c in d.iterdir() if c.is_dir() and _is_network(c))
        for folder in candidates:
            if folder.name in found and found[folder.name] != folder:
                raise WulinError(f"network {folder.name!r} is in {found[folder.name]} and in {folder}; "
                                 f"network names must be unique on the search path ({ENV_VAR}, --networks)")
            found.setdefault(folder.name, folder)
    return found


def scenario_files() -> dict[str, Path]:
    """Every scenario id on the search path and its TOML file.

    Raises:
        WulinError: two TOML files with the same id.
    """
    found: dict[str, Path] = {}
    for folder in network_dirs().values():
        for path in sorted(folder.glob("scenarios/*.toml")):
            if path.stem in found:
                raise WulinError(f"{path}: scenario id {path.stem!r} is also defined in "
                                 f"{found[path.stem]}; ids must be unique")
            found[path.stem] = path
    return found


def find_net_file(network: str | Path) -> Path:
    """The ``.net.xml`` of a network given by name, folder or file.

    A folder with several nets gives ``<name>.net.xml`` if it has one, else the first.  A bare
    name that is both a folder here without a net (``wulin`` in the repository root is the
    CLI package) and a network on the search path means the network.

    Raises:
        WulinError: not a file, folder or known name (listing the known names).
    """
    path = Path(network).expanduser()
    if path.is_file():
        return path.resolve()
    known_dirs = network_dirs()
    folder = path if path.is_dir() else known_dirs.get(str(network))
    if folder is path and str(network) in known_dirs and not any(path.glob("*.net.xml")):
        folder = known_dirs[str(network)]
    if folder is None:
        known = ", ".join(sorted(known_dirs)) or "none"
        raise WulinError(f"network {str(network)!r}: not a file, a folder or a network on the search "
                         f"path; known networks: {known} (add folders with --networks DIR or {ENV_VAR})")
    nets = sorted(folder.glob("*.net.xml"))
    if not nets:
        raise WulinError(f"network {str(network)!r}: no .net.xml in {folder}")
    preferred = [p for p in nets if p.name == f"{folder.name}.net.xml"]
    return (preferred or nets)[0].resolve()
