"""Login sessions held on the server: a random id in an http-only cookie, a CSRF token, expiry.

The cookie carries only a 256-bit random id; who the user is, their CSRF token and when the
session ends stay on the server, so logging out (or expiry) ends the session everywhere.  The
role is read again from the store on every request (an admin's change takes effect at once).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, replace

from deploy.identity import Principal

COOKIE = "wulin_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class WebSession:
    """One logged-in browser.

    Attributes:
        sid: The cookie value.
        principal: Who logged in (channel ``web``).
        csrf: The token every state-changing request must carry.
        expires: ``time.monotonic()`` after which the session is gone.
        lang: Interface language chosen for this session.
    """

    sid: str
    principal: Principal
    csrf: str
    expires: float
    lang: str


class SessionStore:
    """Sessions in memory, safe across threads; idle ones expire after ``ttl_s``."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._by_id: dict[str, WebSession] = {}
        self._lock = threading.Lock()

    def create(self, principal: Principal, lang: str) -> WebSession:
        s = WebSession(secrets.token_urlsafe(32), principal, secrets.token_urlsafe(32),
                       time.monotonic() + self.ttl_s, lang)
        with self._lock:
            self._by_id[s.sid] = s
        return s

    def get(self, sid: str | None) -> WebSession | None:
        """The live session for ``sid``, its expiry pushed back (None: unknown or expired)."""
        if not sid:
            return None
        now = time.monotonic()
        with self._lock:
            s = self._by_id.get(sid)
            if s is None:
                return None
            if s.expires <= now:
                del self._by_id[sid]
                return None
            s = replace(s, expires=now + self.ttl_s)
            self._by_id[sid] = s
            return s

    def alive(self, sid: str | None) -> bool:
        """Whether ``sid`` is a live session, without extending it (open event streams ask)."""
        with self._lock:
            s = self._by_id.get(sid or "")
            return s is not None and s.expires > time.monotonic()

    def update(self, session: WebSession) -> None:
        with self._lock:
            if session.sid in self._by_id:
                self._by_id[session.sid] = session

    def expire(self, sid: str) -> None:
        """Make ``sid`` expired now (tests, and an admin disabling a user)."""
        with self._lock:
            if sid in self._by_id:
                self._by_id[sid] = replace(self._by_id[sid], expires=0.0)

    def end(self, sid: str | None) -> None:
        with self._lock:
            self._by_id.pop(sid or "", None)

    def end_user(self, name: str) -> None:
        """End every session of ``name`` (the user was disabled)."""
        with self._lock:
            for sid in [k for k, v in self._by_id.items() if v.principal.name == name]:
                del self._by_id[sid]


def same_token(expected: str, given: str | None) -> bool:
    """Constant-time comparison of CSRF tokens."""
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())
