"""User accounts and API tokens in the plan store: their tables and the store's identity methods.

:class:`Accounts` is the identity half of :class:`deploy.store.PlanStore` (which inherits it
and supplies the transaction and audit plumbing it uses); the rules on names, passwords and
tokens themselves are in :mod:`deploy.identity`.  Every account and token row carries a MAC
with the store key (:mod:`deploy.signing`), so a user inserted or promoted in the database, or
a token added there, does not log in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from deploy.identity import (
    LOCK_AFTER,
    AuthError,
    Principal,
    check_role,
    hash_password,
    lock_until,
    needs_rehash,
    new_token,
    normalise_name,
    token_digest,
    verify_password,
)
from deploy.signing import mac, same
from deploy.storebase import Actor, Base, Refused, T, actor_parts, now_iso, parse_iso
from sim.errors import WulinError

ADMINS = ("admin",)
_now, _parse = now_iso, parse_iso


class UserRow(Base):
    __tablename__ = "users"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[str] = mapped_column(String(40))
    password_hash: Mapped[str | None] = mapped_column(String(256), nullable=True)
    disabled: Mapped[int] = mapped_column(Integer, default=0)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[str | None] = mapped_column(String(40), nullable=True)
    sig: Mapped[str] = mapped_column(String(64), default="")  # MAC over name, role, hash, disabled

    def fields(self) -> list[object]:
        """What the row's MAC covers: a user inserted or promoted in the database does not verify."""
        return [self.name, self.role, self.password_hash, int(self.disabled)]


class TokenRow(Base):
    __tablename__ = "tokens"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user: Mapped[str] = mapped_column(ForeignKey("users.name"), index=True)
    created_at: Mapped[str] = mapped_column(String(40))
    expires_at: Mapped[str] = mapped_column(String(40))
    revoked_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    sig: Mapped[str] = mapped_column(String(64), default="")

    def fields(self) -> list[object]:
        """What the row's MAC covers."""
        return [self.digest, self.user, self.expires_at, self.revoked_at]


@dataclass(frozen=True)
class UserInfo:
    """A user as listed (never the password hash)."""

    name: str
    role: str
    disabled: bool
    locked_until: str | None


@dataclass(frozen=True)
class IssuedToken:
    """A new API token: ``token`` is shown once and never stored."""

    token: str
    token_id: str
    user: str
    expires_at: str



class Accounts:
    """Users and tokens: bootstrap, login (password or token), management by an admin."""

    _key: bytes

    # The store's plumbing (deploy.store.PlanStore defines these).
    def _tx(self) -> AbstractContextManager[Session]:
        raise NotImplementedError

    def _run(self, actor: Actor, action: str, plan_hash: str, fn: Callable[[Session], T]) -> T:
        raise NotImplementedError

    def _append(self, s: Session, actor: Actor, action: str, plan_hash: str, outcome: str,
                detail: dict[str, Any] | None = None) -> Any:
        raise NotImplementedError

    def _user(self, s: Session, actor: Actor, roles: tuple[str, ...] | None = None) -> UserRow:
        """The acting user's row: it exists, is active and (when given) has one of ``roles``."""
        name = actor_parts(actor)[0]
        user = s.get(UserRow, name)
        if user is None:
            raise Refused(f"unknown user {name!r}; an administrator adds users with `wulin plan user add`")
        if not self._signed(user):
            raise Refused(f"user {name!r}: the account record does not verify with the store key "
                          "(it was added or changed outside the store)")
        if user.disabled:
            raise Refused(f"user {name!r} is disabled")
        if roles is not None and user.role not in roles:
            article = "an" if roles[0][0] in "aeiou" else "a"
            raise Refused(f"user {name!r} has role {user.role!r}; this needs {article} {' or '.join(roles)}")
        return user

    def _sign(self, row: UserRow | TokenRow) -> None:
        """(Re)compute the MAC of an account or token row after changing it."""
        row.sig = mac(self._key, type(row).__tablename__, row.fields())

    def _signed(self, row: UserRow | TokenRow) -> bool:
        return same(row.sig, mac(self._key, type(row).__tablename__, row.fields()))

    def init_admin(self, name: str, password: str) -> Principal:
        """Create the first user, an admin, in an empty store (refused once any user exists)."""
        key, pw_hash = normalise_name(name), hash_password(password)

        def go(s: Session) -> Principal:
            if s.execute(select(UserRow.name).limit(1)).first() is not None:
                raise Refused("the store already has users; an admin adds more with `wulin plan user add`")
            admin = UserRow(name=key, role="admin", created_at=_now(), password_hash=pw_hash, disabled=0,
                            failed_logins=0)
            self._sign(admin)
            s.add(admin)
            self._append(s, Principal(key, "admin"), "store.init", "", "ok", {"admin": key})
            return Principal(key, "admin")

        return self._run(key, "store.init", "", go)

    def authenticate(self, name: str, password: str, channel: str = "cli") -> Principal:
        """The principal for ``name`` if ``password`` is right; failures are audited and counted.

        Raises:
            AuthError: wrong name or password, disabled or locked user (the message does not
                say whether the name exists).
        """
        key = normalise_name(name)

        def go(s: Session) -> Principal | str:
            user, now = s.get(UserRow, key), dt.datetime.now(dt.UTC)
            if user is not None and user.locked_until and _parse(user.locked_until) > now:
                reason = f"user {key!r} is locked after {LOCK_AFTER} failed logins until {user.locked_until[:19]} UTC"
            elif verify_password(user.password_hash if user else None, password) and user is not None:
                if user.disabled:
                    reason = f"user {key!r} is disabled"
                elif not self._signed(user):
                    reason = f"user {key!r}: the account record does not verify with the store key"
                else:
                    user.failed_logins, user.locked_until = 0, None
                    if user.password_hash and needs_rehash(user.password_hash):
                        user.password_hash = hash_password(password)
                        self._sign(user)
                    return Principal(key, user.role, channel)
            else:
                reason = "wrong user name or password"
                if user is not None:
                    user.failed_logins += 1
                    until = lock_until(user.failed_logins, now)
                    user.locked_until = until.isoformat() if until else None
            self._append(s, Principal(key, "?", channel), "login", "", "refused",
                         {"reason": reason, "failures": user.failed_logins if user else None,
                          "locked": bool(user and user.locked_until)})
            return reason

        out = self._run(key, "login", "", go)
        if isinstance(out, str):
            raise AuthError(out)
        return out

    def authenticate_token(self, token: str, channel: str = "cli") -> Principal:
        """The principal an API token stands for; a bad, expired or revoked token is audited."""
        digest = token_digest(token)

        def go(s: Session) -> Principal | str:
            row = s.get(TokenRow, digest)
            user = s.get(UserRow, row.user) if row else None
            if row is None or user is None:
                reason = "unknown API token"
            elif row.revoked_at:
                reason = f"API token {digest[:12]} was revoked"
            elif _parse(row.expires_at) <= dt.datetime.now(dt.UTC):
                reason = f"API token {digest[:12]} expired at {row.expires_at[:19]} UTC"
            elif user.disabled:
                reason = f"user {user.name!r} is disabled"
            elif not (self._signed(row) and self._signed(user)):
                reason = f"API token {digest[:12]}: its record or its user's does not verify with the store key"
            else:
                return Principal(user.name, user.role, channel)
            self._append(s, Principal(row.user if row else "?", "?", channel), "login.token", "", "refused",
                         {"reason": reason, "token": digest[:12]})
            return reason

        out = self._run("?", "login.token", "", go)
        if isinstance(out, str):
            raise AuthError(out)
        return out

    def add_user(self, actor: Principal, name: str, role: str, password: str) -> str:
        """Add a user (an admin's action); returns the normalised name."""
        key, role = normalise_name(name), check_role(role)
        pw_hash = hash_password(password)

        def go(s: Session) -> str:
            self._user(s, actor, ADMINS)
            if s.get(UserRow, key) is not None:
                raise Refused(f"user {key!r} exists already (names are compared case- and width-blind)")
            new = UserRow(name=key, role=role, created_at=_now(), password_hash=pw_hash, disabled=0,
                          failed_logins=0)
            self._sign(new)
            s.add(new)
            self._append(s, actor, "user.add", "", "ok", {"user": key, "role": role})
            return key

        return self._run(actor, "user.add", "", go)

    def set_disabled(self, actor: Principal, name: str, disabled: bool = True) -> None:
        """Disable (or enable again) a user; a disabled user's tokens stop working too."""
        key = normalise_name(name)

        def go(s: Session) -> None:
            self._user(s, actor, ADMINS)
            user = s.get(UserRow, key)
            if user is None:
                raise Refused(f"unknown user {key!r}")
            if key == actor.name and disabled:
                raise Refused("an admin cannot disable their own account")
            user.disabled = int(disabled)
            self._sign(user)
            user.failed_logins, user.locked_until = 0, None
            self._append(s, actor, "user.disable" if disabled else "user.enable", "", "ok", {"user": key})

        self._run(actor, "user.disable", "", go)

    def set_role(self, actor: Principal, name: str, role: str) -> None:
        """Give user ``name`` another role (an admin's action); the last active admin stays one."""
        key, role = normalise_name(name), check_role(role)

        def go(s: Session) -> None:
            self._user(s, actor, ADMINS)
            user = s.get(UserRow, key)
            if user is None or not self._signed(user):
                raise Refused(f"unknown user {key!r}")
            if user.role == "admin" and role != "admin" and not user.disabled:
                admins = s.execute(select(UserRow.name).where(UserRow.role == "admin", UserRow.disabled == 0)).all()
                if len(admins) <= 1:
                    raise Refused(f"{key!r} is the last active admin; make another user admin first")
            old, user.role = user.role, role
            self._sign(user)
            self._append(s, actor, "user.role", "", "ok", {"user": key, "from": old, "to": role})

        self._run(actor, "user.role", "", go)

    def users(self) -> list[UserInfo]:
        """Every user, by name."""
        with self._tx() as s:
            return [UserInfo(u.name, u.role, bool(u.disabled), u.locked_until)
                    for u in s.execute(select(UserRow).order_by(UserRow.name)).scalars()]

    def issue_token(self, actor: Principal, name: str, days: float = 30.0) -> IssuedToken:
        """A new API token for user ``name`` (an admin's action), valid for ``days``."""
        key = normalise_name(name)
        if not 0 < days <= 366:
            raise WulinError(f"token lifetime {days:g} days: use more than 0 and at most 366")
        token = new_token()
        expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).isoformat(timespec="seconds")

        def go(s: Session) -> IssuedToken:
            self._user(s, actor, ADMINS)
            if s.get(UserRow, key) is None:
                raise Refused(f"unknown user {key!r}")
            digest = token_digest(token)
            row = TokenRow(digest=digest, user=key, created_at=_now(), expires_at=expires)
            self._sign(row)
            s.add(row)
            self._append(s, actor, "token.issue", "", "ok", {"user": key, "token": digest[:12], "expires": expires})
            return IssuedToken(token, digest[:12], key, expires)

        return self._run(actor, "token.issue", "", go)

    def revoke_token(self, actor: Principal, token_id: str) -> None:
        """Revoke the token whose id (first digits of its digest) is ``token_id``."""
        ref = token_id.strip().lower()

        def go(s: Session) -> None:
            self._user(s, actor, ADMINS)
            rows = s.execute(select(TokenRow).where(TokenRow.digest.startswith(ref))).scalars().all()
            if len(ref) < 8 or len(rows) != 1:
                raise Refused(f"token id {token_id!r} names {len(rows)} tokens; give the 12-digit id")
            rows[0].revoked_at = _now()
            self._sign(rows[0])
            self._append(s, actor, "token.revoke", "", "ok", {"user": rows[0].user, "token": rows[0].digest[:12]})

        self._run(actor, "token.revoke", "", go)
