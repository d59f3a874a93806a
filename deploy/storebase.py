"""What the plan store's parts share: the declarative base, the refusal error, time stamps, actors.

:mod:`deploy.store` (plans, approvals, deploys, audit) and :mod:`deploy.accounts` (users and
API tokens) define their tables on one :class:`Base`, so one ``create_all`` makes the store.
"""

from __future__ import annotations

import datetime as dt
from typing import TypeVar

from sqlalchemy.orm import DeclarativeBase

from deploy.identity import Principal
from sim.errors import WulinError

T = TypeVar("T")
# The state machine of a plan, and of a time-of-day plan set (deploy/plan_sets.py).
STATES = ("proposed", "approved", "deploying", "deployed", "rolled_back", "rejected", "failed")
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "proposed": ("approved", "rejected"),
    "approved": ("deploying", "rejected"),
    "deploying": ("deployed", "failed", "rolled_back"),
    "deployed": ("rolled_back",),
    "failed": ("deploying",),
    "rolled_back": (),
    "rejected": (),
}
Actor = Principal | str  # a plain name is a system actor (an emulator registering itself)


class Refused(WulinError):
    """An action the rules forbid (self-approval, wrong state, wrong role...)."""


class Base(DeclarativeBase):
    """The declarative base of every plan-store table."""


def now_iso() -> str:
    """The current UTC time, ISO 8601 with microseconds (how the store writes times)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def parse_iso(ts: str) -> dt.datetime:
    """A time the store wrote, back as a datetime."""
    return dt.datetime.fromisoformat(ts)


def actor_parts(actor: Actor) -> tuple[str, str]:
    """(name, channel) of an actor."""
    return (actor.name, actor.channel) if isinstance(actor, Principal) else (actor, "system")
