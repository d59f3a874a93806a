"""Login sessions: a random id in an http-only cookie, a CSRF token, expiry; kept in the plan store.

The cookie carries only a 256-bit random id; who the user is, their CSRF token and when the
session ends stay on the server, so logging out (or expiry) ends the session everywhere.  The
role is read again from the store on every request (an admin's change takes effect at once).

Sessions are written to the plan store (:mod:`deploy.websessions`: the id's SHA-256 digest,
never the id), so a restart of the console keeps everyone logged in, on SQLite and
PostgreSQL alike.  A cache in memory answers the frequent questions (every page, and every
open event stream several times a second); the stored expiry is pushed back only when it has
moved by :data:`TOUCH_S`, so reading a page does not write to the database each time.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, replace

from deploy.identity import Principal
from deploy.store import PlanStore
from deploy.websessions import StoredSession

COOKIE = "wulin_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
TOUCH_S = 60.0


@dataclass(frozen=True)
class WebSession:
    """One logged-in browser.

    Attributes:
        sid: The cookie value.
        principal: Who logged in (channel ``web``).
        csrf: The token every state-changing request must carry.
        expires: Wall-clock time (``time.time()``) after which the session is gone.
        lang: Interface language chosen for this session.
    """

    sid: str
    principal: Principal
    csrf: str
    expires: float
    lang: str


class SessionStore:
    """Sessions in the plan store with a cache in memory, safe across threads; idle ones expire
    after ``ttl_s``."""

    def __init__(self, ttl_s: float, store: PlanStore) -> None:
        self.ttl_s, self.store = ttl_s, store
        self._by_id: dict[str, WebSession] = {}
        self._saved: dict[str, float] = {}  # sid -> expiry last written to the store
        self._lock = threading.Lock()

    def _save(self, s: WebSession) -> None:
        self.store.save_session(s.sid, StoredSession(s.principal.name, s.csrf, s.lang, s.expires))
        self._saved[s.sid] = s.expires

    def create(self, principal: Principal, lang: str) -> WebSession:
        s = WebSession(secrets.token_urlsafe(32), principal, secrets.token_urlsafe(32),
                       time.time() + self.ttl_s, lang)
        self._save(s)
        with self._lock:
            self._by_id[s.sid] = s
        return s

    def _cached(self, sid: str) -> WebSession | None:
        with self._lock:
            s = self._by_id.get(sid)
        if s is not None:
            return s
        stored = self.store.load_session(sid)  # after a restart: the store still has it
        if stored is None:
            return None
        role = next((u.role for u in self.store.users() if u.name == stored.user), "?")  # re-read per request too
        s = WebSession(sid, Principal(stored.user, role, "web"), stored.csrf, stored.expires_at, stored.lang)
        with self._lock:
            self._by_id[sid], self._saved[sid] = s, stored.expires_at
        return s

    def get(self, sid: str | None) -> WebSession | None:
        """The live session for ``sid``, its expiry pushed back (None: unknown or expired)."""
        if not sid:
            return None
        s = self._cached(sid)
        now = time.time()
        if s is None:
            return None
        if s.expires <= now:
            self.end(sid)
            return None
        s = replace(s, expires=now + self.ttl_s)
        with self._lock:
            self._by_id[sid] = s
            stale = s.expires - self._saved.get(sid, 0.0) >= TOUCH_S
        if stale:
            self._save(s)
        return s

    def alive(self, sid: str | None) -> bool:
        """Whether ``sid`` is a live session, without extending it (open event streams ask)."""
        with self._lock:
            s = self._by_id.get(sid or "")
            return s is not None and s.expires > time.time()

    def update(self, session: WebSession) -> None:
        with self._lock:
            if session.sid not in self._by_id:
                return
            self._by_id[session.sid] = session
        self._save(session)

    def expire(self, sid: str) -> None:
        """Make ``sid`` expired now (tests)."""
        with self._lock:
            if sid in self._by_id:
                self._by_id[sid] = replace(self._by_id[sid], expires=0.0)
        self.store.end_sessions(sid=sid)

    def end(self, sid: str | None) -> None:
        with self._lock:
            self._by_id.pop(sid or "", None)
            self._saved.pop(sid or "", None)
        self.store.end_sessions(sid=sid or "")

    def end_user(self, name: str) -> None:
        """End every session of ``name`` (the user was disabled)."""
        with self._lock:
            for sid in [k for k, v in self._by_id.items() if v.principal.name == name]:
                del self._by_id[sid]
        self.store.end_sessions(user=name)


def same_token(expected: str, given: str | None) -> bool:
    """Constant-time comparison of CSRF tokens."""
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())
