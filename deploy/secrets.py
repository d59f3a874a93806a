"""Device credentials, kept out of the plan store in a file only its owner can read.

The store records, per device, only a *reference* (by default the signal id) and the SNMP
version; the secrets themselves (SNMPv3 users and passphrases, or v2c communities where a
device was explicitly registered for v2c) live in one JSON file:

* ``$WULIN_SECRETS``, else ``~/.config/wulin/device-secrets.json``;
* created with mode 0600 (its folder 0700), written atomically (a temporary file renamed
  over it), and **refused** when group or others may read it (``chmod 600`` it);
* never inside the store, so a copy of the database (or a reader of it) learns no password.

Layout::

    {"version": 1, "devices": {"B1": {"snmp": "3",
        "reader": {"name": "wulin-read", "auth": "...", "priv": "..."},
        "writer": {"name": "wulin-write", "auth": "...", "priv": "..."},
        "read_community": null, "write_community": null}}}

There is no default community and no default user: :meth:`DeviceCredentials.generate` makes
random ones (the emulators use it).
"""

from __future__ import annotations

import json
import os
import secrets as _random
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.usm import UsmUser
from sim.errors import WulinError

ENV = "WULIN_SECRETS"
DEFAULT_PATH = Path("~/.config/wulin/device-secrets.json")
FORMAT_VERSION = 1


@dataclass(frozen=True)
class DeviceCredentials:
    """How a manager authenticates to one controller.

    Attributes:
        snmp: ``"3"`` (USM authPriv, the default) or ``"2c"`` (explicit opt-in).
        reader: The SNMPv3 user that may only read.
        writer: The SNMPv3 user that may write (``None``: read-only credentials).
        read_community, write_community: v2c communities, only where v2c was opted into.
    """

    snmp: str
    reader: UsmUser
    writer: UsmUser | None = None
    read_community: str | None = None
    write_community: str | None = None

    def __post_init__(self) -> None:
        if self.snmp not in ("3", "2c"):
            raise WulinError(f"SNMP version {self.snmp!r}: use 3 (or 2c, opted in)")
        if self.snmp == "2c" and not self.read_community:
            raise WulinError("v2c credentials need an explicit read community (there is no default)")

    def __repr__(self) -> str:  # never print a passphrase or community
        return f"DeviceCredentials(snmp={self.snmp!r}, reader={self.reader.name!r}, " \
               f"writer={self.writer.name if self.writer else None!r})"

    @classmethod
    def generate(cls, v2c: bool = False) -> DeviceCredentials:
        """Fresh random users (and communities, with ``v2c``): for emulators and tests."""
        def user(name: str) -> UsmUser:
            return UsmUser(name, _random.token_urlsafe(24), _random.token_urlsafe(24))

        return cls(snmp="2c" if v2c else "3", reader=user("wulin-read"), writer=user("wulin-write"),
                   read_community=_random.token_urlsafe(18) if v2c else None,
                   write_community=_random.token_urlsafe(18) if v2c else None)

    def read_only(self) -> DeviceCredentials:
        """The same credentials without the write user and community (for monitoring)."""
        return DeviceCredentials(self.snmp, self.reader, None, self.read_community, None)

    def to_dict(self) -> dict[str, Any]:
        def user(u: UsmUser | None) -> dict[str, str] | None:
            return None if u is None else {"name": u.name, "auth": u.auth_key, "priv": u.priv_key}

        return {"snmp": self.snmp, "reader": user(self.reader), "writer": user(self.writer),
                "read_community": self.read_community, "write_community": self.write_community}

    @classmethod
    def from_dict(cls, data: Any, source: str) -> DeviceCredentials:
        """Read one entry; mistakes raise a :class:`WulinError` naming ``source``."""
        def user(d: Any) -> UsmUser | None:
            return None if d is None else UsmUser(str(d["name"]), str(d["auth"]), str(d["priv"]))

        try:
            reader = user(data["reader"])
            if reader is None:
                raise KeyError("reader")
            return cls(str(data.get("snmp", "3")), reader, user(data.get("writer")),
                       data.get("read_community"), data.get("write_community"))
        except (KeyError, TypeError, AttributeError) as exc:
            raise WulinError(f"{source}: malformed device credentials ({exc!r} missing or wrong)") from None
        except WulinError as exc:
            raise WulinError(f"{source}: {exc}") from None


def secrets_path(path: str | Path | None = None) -> Path:
    """The secrets file: ``path``, else ``$WULIN_SECRETS``, else the per-user default."""
    return Path(path or os.environ.get(ENV) or DEFAULT_PATH).expanduser()


class SecretsFile:
    """The device-credentials file (see the module docstring).

    Args:
        path: The file; ``None``: :func:`secrets_path`.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = secrets_path(path)

    def _read(self) -> dict[str, Any]:
        p = self.path
        if not p.exists():
            return {"version": FORMAT_VERSION, "devices": {}}
        st = p.stat()
        if not stat.S_ISREG(st.st_mode):
            raise WulinError(f"secrets file {p}: not a regular file")
        if st.st_mode & 0o077:
            raise WulinError(f"secrets file {p}: readable by others (mode {stat.S_IMODE(st.st_mode):04o}); "
                             f"run `chmod 600 {p}` and rotate the credentials it holds")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise WulinError(f"secrets file {p}: unreadable ({exc.__class__.__name__})") from None
        if not isinstance(data, dict) or not isinstance(data.get("devices"), dict):
            raise WulinError(f"secrets file {p}: expected an object with a 'devices' object")
        return data

    def get(self, ref: str) -> DeviceCredentials:
        """The credentials stored under ``ref``.

        Raises:
            WulinError: none there, or the file is unsafe or malformed.
        """
        entry = self._read()["devices"].get(ref)
        if entry is None:
            raise WulinError(f"no credentials for device {ref!r} in secrets file {self.path}; "
                             f"`wulin emulator start` writes them for emulators (set {ENV} to use another file)")
        return DeviceCredentials.from_dict(entry, f"secrets file {self.path}, device {ref!r}")

    def put(self, ref: str, creds: DeviceCredentials) -> None:
        """Store ``creds`` under ``ref`` (replacing what was there), file mode 0600."""
        data = self._read()
        data["devices"][ref] = creds.to_dict()
        self._write(data)

    def _write(self, data: dict[str, Any]) -> None:
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = folder / f".{self.path.name}.{os.getpid()}.{_random.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=1, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise WulinError(f"secrets file {self.path}: cannot write it ({exc.strerror})") from None
