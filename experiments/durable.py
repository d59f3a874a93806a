"""Durable file writes for results: atomic replace, appended lines, a writability probe.

A file written with :func:`write_text_atomic` is either the old one or the whole new one, even
if the process or the machine dies midway: the text goes to a temporary file in the same
folder, is flushed to disk (``fsync``), then renamed over the target, and the folder itself
is flushed so that the rename survives a power cut.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

from sim.errors import WulinError


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (renames, new files) to disk; a no-op where unsupported."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fsync_file(path: Path) -> None:
    """Flush one file's contents to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename, fsync folder)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def append_line(path: Path, line: str) -> None:
    """Append one line to ``path`` and flush it to disk (earlier lines are never rewritten).

    A last line cut short by a kill (no newline) is ended first, so it spoils only itself.
    """
    with open(path, "a+b") as f:
        cut = f.tell() > 0 and (f.seek(-1, os.SEEK_END), f.read(1))[1] != b"\n"
        f.write((("\n" if cut else "") + line.rstrip("\n") + "\n").encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_writable(folder: Path, what: str = "--out") -> None:
    """Create ``folder`` if needed and prove it writable by creating and removing a file.

    Raises:
        WulinError: the folder cannot be created or written (names it and the reason).
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".wulin-write-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except FileExistsError:
        raise WulinError(f"{what} {folder}: is a file, not a folder; choose a folder") from None
    except OSError as exc:
        raise WulinError(f"{what} {folder}: cannot write there ({exc.strerror or exc}); choose "
                         "another folder or make this one writable") from None
