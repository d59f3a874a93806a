"""Who is acting: user names, passwords, API tokens, roles and login throttling.

The identity core shared by the command line and (later) the control-room console; the
tables live in :mod:`deploy.store`, which calls these functions.

* **Names** are compared after Unicode NFKC normalisation, case folding and stripping
  surrounding white space, so ``Wang``, ``wang `` and ``Ｗａｎｇ`` (full-width) are one user;
  control characters and inner line breaks are refused.
* **Passwords** are hashed with argon2id (``argon2-cffi``'s defaults, which follow RFC 9106's
  second recommended option); a hash made with older parameters is re-hashed at the next login.
* **API tokens** are 256 random bits; only their SHA-256 is stored (a token has full entropy,
  so a slow hash buys nothing), with an expiry, and they can be revoked.
* **Roles**: viewer < engineer < supervisor; admin manages users and tokens only.
* **Throttling**: after :data:`LOCK_AFTER` failed logins in a row a user is locked for
  :data:`LOCK_S` seconds; every failure is written to the audit log by the store.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import unicodedata
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from sim.errors import WulinError

ROLES = ("viewer", "engineer", "supervisor", "admin")
CHANNELS = ("cli", "web", "test", "system")
LOCK_AFTER = 5  # failed logins in a row before a lock
LOCK_S = 300.0  # seconds a locked user waits
TOKEN_DAYS = 30.0  # default API token lifetime
MIN_PASSWORD = 8
TOKEN_PREFIX = "wulin_"

_hasher = PasswordHasher()
# Verified against when the user does not exist, so an unknown name costs the same time.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class AuthError(WulinError):
    """Authentication failed (wrong password, unknown or disabled user, bad token, locked)."""


@dataclass(frozen=True)
class Principal:
    """An authenticated user as the store acts for it.

    Attributes:
        name: Normalised user name.
        role: One of :data:`ROLES` (read from the store at login).
        channel: Where the action came from (``cli``, ``web``...); it goes into the audit log.
    """

    name: str
    role: str
    channel: str = "cli"


def normalise_name(raw: str) -> str:
    """The canonical form of a user name (NFKC, case-folded, stripped).

    Raises:
        WulinError: the name is empty, longer than 64 characters or holds control characters.
    """
    if not isinstance(raw, str):
        raise WulinError("a user name must be text")
    bad = [c for c in raw if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") and c not in " \t"]
    if bad:
        raise WulinError(f"user name {raw!r}: control or invisible characters are not allowed")
    name = unicodedata.normalize("NFKC", raw).casefold().strip()
    name = unicodedata.normalize("NFKC", name)  # casefold can un-normalise a few letters
    if not name or len(name) > 64:
        raise WulinError(f"user name {raw!r}: a user name is 1-64 characters")
    if any(c.isspace() and c != " " for c in name):
        raise WulinError(f"user name {raw!r}: only plain spaces may separate words")
    return name


def check_role(role: str) -> str:
    """``role`` if it is one of :data:`ROLES`."""
    if role not in ROLES:
        raise WulinError(f"role {role!r} is not one of {', '.join(ROLES)}")
    return role


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (refused when shorter than :data:`MIN_PASSWORD`)."""
    if len(password) < MIN_PASSWORD:
        raise WulinError(f"a password needs at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches the ``stored`` hash (``None``: no such user; still slow)."""
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """Whether ``stored`` was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(stored)


def new_token() -> str:
    """A fresh API token (shown once; only :func:`token_digest` of it is stored)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """The SHA-256 under which a token is stored."""
    return hashlib.sha256(token.strip().encode()).hexdigest()


def lock_until(failures: int, now: dt.datetime) -> dt.datetime | None:
    """When a user with ``failures`` failed logins in a row may try again (None: not locked)."""
    if failures < LOCK_AFTER:
        return None
    return now + dt.timedelta(seconds=LOCK_S)
