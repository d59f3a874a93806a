"""The project's one error type.

Every mistake a user can make (bad TOML, a missing file, an unknown scenario id, an invalid
plan, a malformed SNMP response) raises :class:`WulinError` or a subclass, with a message that
names the file, the field and the fix.  The ``wulin`` command prints the message without a
traceback and exits with status 2.

This module is standard-library only, so that ``controllers.plan`` (a plan is data) and
``deploy`` can use it without importing SUMO or numpy.
"""

from __future__ import annotations


class WulinError(Exception):
    """An error the user can fix; the message says what, where and how."""


class SimulationError(WulinError):
    """SUMO failed or died; carries SUMO's own message."""


def where(path: object, field: str | None = None) -> str:
    """Format a location for error messages: ``file.toml: field 'x'``."""
    return f"{path}: field '{field}'" if field else f"{path}"
