"""Reading user files safely: kind, size, encoding, syntax, depth and number checks.

Every file a user hands the engine (scenario, experiment and training TOML, device
profiles, timing-plan and evidence JSON) is read through :func:`read_text` and parsed with
:func:`parse_toml` or :func:`parse_json`, so each mistake is one :class:`~sim.errors.WulinError`
naming the file: a folder or a device instead of a file, a file too large, bytes that are
not UTF-8, bad syntax, nesting deeper than :data:`MAX_DEPTH`, a string longer than
:data:`MAX_STRING`, an integer beyond 64 bits, or ``nan`` / ``inf``.  No document a user can
write reaches the typed models with a value they cannot hold.

Standard library only: ``controllers.plan`` and ``deploy`` read their files through it.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from sim.errors import WulinError

Loc = tuple[str | int, ...]

MAX_BYTES = 8 * 1024 * 1024
"""Largest file read (8 MiB): configuration and plans are a few kilobytes."""
MAX_DEPTH = 32
"""Deepest nesting of tables and lists accepted in a TOML or JSON document."""
MAX_STRING = 10_000
"""Longest string value or key accepted in a document."""
MAX_INT = 2**63 - 1
"""Largest integer magnitude accepted (64-bit, what SQLite, numpy and SUMO hold)."""


def _article(noun: str) -> str:
    return "an" if noun[:1].lower() in "aeiou" else "a"


def read_text(path: Path | str, what: str = "file", *, max_bytes: int = MAX_BYTES) -> str:
    """The UTF-8 text of a regular file.

    Args:
        path: The file.
        what: How to name it in errors (``"experiment file"``).
        max_bytes: Refuse larger files.

    Raises:
        WulinError: missing, a folder or other non-file, unreadable, too large, not UTF-8.
    """
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise WulinError(f"{path}: {what} not found; check the path") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        reason = getattr(exc, "strerror", None) or str(exc)
        raise WulinError(f"{path!r}: cannot read the {what} ({reason}); check the path") from None
    if stat.S_ISDIR(st.st_mode):
        raise WulinError(f"{path}: is a folder, not {_article(what)} {what}; name the file inside it")
    if not stat.S_ISREG(st.st_mode):
        raise WulinError(f"{path}: is not a regular file; name {_article(what)} {what} on disk")
    if st.st_size > max_bytes:
        raise WulinError(f"{path}: {st.st_size} bytes is too large for {_article(what)} {what} "
                         f"(limit {max_bytes} bytes); check that this is the right file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WulinError(f"{path}: cannot read the {what} ({exc.strerror}); check its permissions") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WulinError(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                         f"save the {what} as UTF-8") from None


def _header_span(
    lines: list[str], name: str, nth: int | None, start: int, stop: int
) -> tuple[int, int] | None:
    """Lines of ``[name]`` (``nth`` None) or of the nth ``[[name]]`` block."""
    esc = re.escape(name).replace(r"\.", r"\s*\.\s*")
    pat = re.compile(rf"^\s*\[\[\s*{esc}\s*\]\]" if nth is not None else rf"^\s*\[\s*\"?{esc}\"?\s*\]")
    sub = re.compile(rf"^\s*\[\[?\s*{esc}\s*\.")
    hits = [i for i in range(start, stop) if pat.search(lines[i])]
    k = 0 if nth is None else nth
    if k >= len(hits):
        return None
    a = hits[k]
    b = next((i for i in range(a + 1, stop) if lines[i].lstrip().startswith("[") and not sub.search(lines[i])), stop)
    return a, b


def toml_line(text: str, loc: Loc) -> int | None:
    """1-based line of the field at ``loc`` in TOML ``text`` (None when not found)."""
    lines = text.splitlines()
    start, stop, found, prefix = 0, len(lines), None, ""
    first_header = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("[")), len(lines))
    i = 0
    while i < len(loc):
        key = loc[i]
        if isinstance(key, int):
            i += 1
            continue
        name = f"{prefix}.{key}" if prefix else str(key)
        nth = loc[i + 1] if i + 1 < len(loc) and isinstance(loc[i + 1], int) else None
        span = _header_span(lines, name, nth, start, stop)  # type: ignore[arg-type]
        if span is not None:
            (start, stop), found, prefix = span, span[0], name
            i += 2 if nth is not None else 1
            continue
        end = first_header if not prefix else stop
        rx = re.compile(rf"^\s*\"?{re.escape(str(key))}\"?\s*=")
        j = next((n for n in range(start, end) if rx.search(lines[n])), None)
        rest = [str(k) for k in loc[i:] if not isinstance(k, int)]
        if j is None and len(rest) > 1:  # a dotted key: collision.action = "warn"
            rx = re.compile(r"^\s*" + r"\s*\.\s*".join(re.escape(k) for k in rest) + r"\s*=")
            j = next((n for n in range(start, end) if rx.search(lines[n])), None)
        if j is None and i + 1 < len(loc):  # an implicit table: [a.b] with no [a] header
            prefix, i = name, i + 1
            continue
        if j is not None:
            found = j
        break
    return found + 1 if found is not None else None


def dotted(loc: tuple[str | int, ...]) -> str:
    """``("variations", 0, "at")`` -> ``variations[0].at``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def check_tree(data: Any, source: object, text: str | None = None) -> None:
    """Refuse values no configuration needs: deep nesting, huge strings or integers, nan/inf.

    Walks iteratively, so a deep document cannot exhaust the interpreter's stack here.

    Args:
        data: The parsed document.
        source: The file, for messages.
        text: The TOML text, so messages can give the line.

    Raises:
        WulinError: naming ``source``, the line and the field of the first bad value.
    """
    stack: list[tuple[Any, Loc]] = [(data, ())]
    while stack:
        value, loc = stack.pop()
        problem = _refused(value, len(loc))
        if problem:
            line = toml_line(text, loc) if text and loc else None
            where = f"{source}" + (f", line {line}" if line else "") + (f": field '{dotted(loc)}'" if loc else "")
            raise WulinError(f"{where}: {problem}")
        if isinstance(value, dict):
            stack.extend((item, (*loc, str(key))) for key, item in value.items())
        elif isinstance(value, list | tuple):
            stack.extend((item, (*loc, i)) for i, item in enumerate(value))


def _refused(value: Any, depth: int) -> str | None:
    """Why one value of a document is refused (None: it is fine)."""
    if depth > MAX_DEPTH:
        return f"nested more than {MAX_DEPTH} levels deep; flatten the document"
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int) and abs(value) > MAX_INT:
        return "the integer is too large (more than 64 bits); check the value"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value!r} is not a finite number; give a real value"
    if isinstance(value, str) and len(value) > MAX_STRING:
        return f"a string of {len(value)} characters is too long (limit {MAX_STRING}); shorten it"
    if isinstance(value, dict) and any(len(str(k)) > MAX_STRING for k in value):
        return f"a key longer than {MAX_STRING} characters; shorten it"
    return None


def _nesting_depth(text: str) -> int:
    """Upper bound on bracket nesting, counted before parsing (both parsers recurse)."""
    depth = deepest = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _check_nesting(text: str, source: object) -> None:
    # brackets inside strings count too; the bound is generous, so only real abuse is refused
    if _nesting_depth(text) > 4 * MAX_DEPTH:
        raise WulinError(f"{source}: nested more than {MAX_DEPTH} levels deep; flatten the document")


def parse_toml(text: str, source: object) -> dict[str, Any]:
    """Parse TOML text and :func:`check_tree` it.

    Raises:
        WulinError: bad syntax (with tomllib's line and column) or a refused value.
    """
    _check_nesting(text, source)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise WulinError(f"{source}: invalid TOML ({exc}); fix the syntax at that line") from None
    except RecursionError:
        raise WulinError(f"{source}: nested more than {MAX_DEPTH} levels deep; flatten the document") from None
    except ValueError as exc:  # an integer past Python's digit limit
        raise WulinError(f"{source}: invalid TOML ({exc}); use a smaller number") from None
    check_tree(data, source, text)
    return data


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite number")


def parse_json(text: str, source: object) -> Any:
    """Parse JSON text (``NaN`` / ``Infinity`` refused) and :func:`check_tree` it.

    Raises:
        WulinError: bad syntax (line and column) or a refused value.
    """
    _check_nesting(text, source)
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise WulinError(
            f"{source}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); fix the syntax there"
        ) from None
    except (ValueError, RecursionError) as exc:  # NaN/Infinity, or a number past int limits
        raise WulinError(f"{source}: not valid JSON ({exc}); give a finite number") from None
    check_tree(data, source)
    return data


def load_toml(path: Path | str, what: str = "file") -> tuple[dict[str, Any], str]:
    """The checked TOML document of a file and its text (for locating lines in errors)."""
    text = read_text(path, what)
    return parse_toml(text, path), text


def load_json(path: Path | str, what: str = "file") -> Any:
    """The checked JSON document of a file."""
    return parse_json(read_text(path, what), path)


def check_writable_dir(path: Path | str, what: str = "--out") -> Path:
    """Make sure results can be written under ``path`` before any work starts.

    Creates the folder if needed and writes and removes one probe file.

    Raises:
        WulinError: a file is in the way, or the folder cannot be created or written.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise WulinError(f"{what} {path}: is a file, not a folder; choose a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".wulin-write-check-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise WulinError(f"{what} {path}: cannot write there ({exc.strerror}); "
                         "choose a folder you can write to") from None
    return path
