"""Console login sessions kept in the plan store, so a restart of the console keeps people logged in.

Only the SHA-256 digest of a session id is stored (the id itself lives in the browser's cookie),
beside its user, CSRF token, interface language and expiry (wall-clock seconds, since a
monotonic clock does not survive a restart).  :class:`WebSessions` is mixed into
:class:`deploy.store.PlanStore`, so SQLite and PostgreSQL stores both hold them; the rules on
who may do what stay in the store's other methods (the role is read from the user's row on
every request, never from here).
"""

from __future__ import annotations

import hashlib
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass

from sqlalchemy import Float, String, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from deploy.storebase import Base


class WebSessionRow(Base):
    __tablename__ = "web_sessions"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user: Mapped[str] = mapped_column(String(64), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    lang: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[float] = mapped_column(Float)


@dataclass(frozen=True)
class StoredSession:
    """A session as stored: who, the CSRF token, the language and when it ends (epoch seconds)."""

    user: str
    csrf: str
    lang: str
    expires_at: float


def session_digest(sid: str) -> str:
    """What the store keeps instead of the session id."""
    return hashlib.sha256(sid.encode()).hexdigest()


class WebSessions:
    """Create, read, extend and end console sessions (no audit entries: logins are audited)."""

    def _tx(self) -> AbstractContextManager[Session]:
        raise NotImplementedError

    def save_session(self, sid: str, stored: StoredSession) -> None:
        """Insert or replace the session ``sid``; expired sessions of anyone are dropped."""
        with self._tx() as s:
            s.execute(delete(WebSessionRow).where(WebSessionRow.expires_at <= time.time()))
            s.merge(WebSessionRow(digest=session_digest(sid), user=stored.user, csrf=stored.csrf,
                                  lang=stored.lang, expires_at=stored.expires_at))

    def load_session(self, sid: str) -> StoredSession | None:
        """The live session ``sid`` (None: unknown or expired)."""
        with self._tx() as s:
            row = s.get(WebSessionRow, session_digest(sid))
            if row is None or row.expires_at <= time.time():
                return None
            return StoredSession(row.user, row.csrf, row.lang, row.expires_at)

    def end_sessions(self, sid: str | None = None, user: str | None = None) -> None:
        """End the session ``sid``, or every session of ``user``."""
        with self._tx() as s:
            if sid is not None:
                s.execute(delete(WebSessionRow).where(WebSessionRow.digest == session_digest(sid)))
            if user is not None:
                s.execute(delete(WebSessionRow).where(WebSessionRow.user == user))

    def session_users(self) -> list[str]:
        """The users with a live session (one name per session)."""
        with self._tx() as s:
            return list(s.execute(select(WebSessionRow.user).where(WebSessionRow.expires_at > time.time())).scalars())
