"""What every page shares: the console's state, who is asking, CSRF, refusals and rendering.

A refusal the console makes itself (no session, a wrong CSRF token, a role that may not see a
page, a posted hash that is not the one displayed, a file outside the served folder) is
written to the store's audit log as ``web.refused`` with the user (or ``anonymous``), channel
``web``, the path and the reason; refusals by the store's rules are audited by the store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from console.cockpit import Monitor
from console.config import ConsoleConfig
from console.corridor import Roads
from console.i18n import LANGS, Lang, load_catalogues, pick
from console.jobs import JobBoard
from console.live import LiveRun
from console.los import LevelOfService
from console.network_map import NetworkDrawing
from console.sessions import COOKIE, CSRF_FIELD, CSRF_HEADER, SessionStore, WebSession, same_token
from deploy.identity import Principal
from deploy.store import PlanStore

TEMPLATES = Path(__file__).parent / "templates"
LANG_COOKIE = "wulin_lang"
ANONYMOUS = Principal("anonymous", "?", "web")
VIEWERS = ("viewer", "engineer", "supervisor", "admin")


@dataclass
class ConsoleState:
    """Everything the routes share (one per app)."""

    cfg: ConsoleConfig
    store: PlanStore
    sessions: SessionStore
    langs: dict[str, Lang]
    jobs: JobBoard
    monitor: Monitor
    live: LiveRun
    drawing: NetworkDrawing | None
    los: LevelOfService | None
    roads: Roads | None
    templates: Jinja2Templates


def make_state(cfg: ConsoleConfig, store: PlanStore, drawing: NetworkDrawing | None,
               los: LevelOfService | None, roads: Roads | None) -> ConsoleState:
    templates = Jinja2Templates(directory=str(TEMPLATES))
    # Audit details as readable JSON (Chinese stays Chinese); autoescape still escapes it.
    templates.env.filters["json_text"] = lambda v: json.dumps(v, ensure_ascii=False, sort_keys=True)
    monitor = Monitor(store, cfg.poll_s, cfg.snmp_timeout_s)
    return ConsoleState(cfg, store, SessionStore(cfg.session_s, store), load_catalogues(), JobBoard(),
                        monitor, LiveRun(monitor), drawing, los, roads, templates)


class Denied(Exception):
    """A request the console refuses; turned into a page (or a redirect to the login)."""

    def __init__(self, status: int, reason: str, login: bool = False) -> None:
        super().__init__(reason)
        self.status, self.reason, self.login = status, reason, login


def state(request: Request) -> ConsoleState:
    return request.app.state.console  # type: ignore[no-any-return]


def audit_refusal(request: Request, who: Principal, reason: str, plan_hash: str = "") -> None:
    """Write a console refusal to the audit log (channel ``web``)."""
    state(request).store.log(Principal(who.name, who.role, "web"), "web.refused", plan_hash, "refused",
                             {"path": request.url.path[:200], "method": request.method, "reason": reason})


def session_of(request: Request) -> WebSession | None:
    return state(request).sessions.get(request.cookies.get(COOKIE))


def require(request: Request, roles: tuple[str, ...] = VIEWERS) -> WebSession:
    """The caller's live session, its role re-read from the store; refused (and audited) otherwise."""
    sess = session_of(request)
    if sess is None:
        if request.cookies.get(COOKIE):
            audit_refusal(request, ANONYMOUS, "session expired or unknown")
        raise Denied(401, "log in first", login=True)
    users = {u.name: u for u in state(request).store.users()}
    user = users.get(sess.principal.name)
    if user is None or user.disabled:
        state(request).sessions.end(sess.sid)
        audit_refusal(request, sess.principal, "user disabled or removed during the session")
        raise Denied(401, "your account is disabled", login=True)
    who = Principal(user.name, user.role, "web")
    if user.role not in roles:
        audit_refusal(request, who, f"role {user.role} may not use this page (needs {' or '.join(roles)})")
        raise Denied(403, f"your role ({user.role}) may not do this")
    return WebSession(sess.sid, who, sess.csrf, sess.expires, sess.lang)


async def require_post(request: Request, roles: tuple[str, ...] = VIEWERS) -> tuple[WebSession, dict[str, str]]:
    """A state-changing request: live session, role, and the session's CSRF token in the form
    (or the ``X-CSRF-Token`` header); returns the session and the form's text fields."""
    sess = require(request, roles)
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    if not same_token(sess.csrf, fields.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)):
        audit_refusal(request, sess.principal, "CSRF token missing or wrong")
        raise Denied(403, "the form is stale or did not come from this console (CSRF token); reload the page")
    return sess, fields


def lang_of(request: Request, sess: WebSession | None = None) -> Lang:
    langs = state(request).langs
    wanted = request.cookies.get(LANG_COOKIE) or (sess.lang if sess else None)
    return pick(langs, wanted)


def render(request: Request, template: str, sess: WebSession | None, status: int = 200,
           **context: Any) -> HTMLResponse:
    """A page in the caller's language, with the helpers every template uses."""
    lang = lang_of(request, sess)
    return state(request).templates.TemplateResponse(
        request, template,
        {"_": lang.gettext, "lang": lang, "langs": LANGS, "sess": sess, "csrf_field": CSRF_FIELD,
         "user": sess.principal if sess else None, **context},
        status_code=status)


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def set_cookie(request: Request, resp: Response, name: str, value: str, max_age: int | None) -> None:
    """A cookie with the console's policy: http-only, SameSite=Strict, Secure when configured."""
    resp.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict",
                    secure=state(request).cfg.cookie_secure, path="/")


def back(request: Request) -> str:
    """The page the request came from, as a path on this console only (never another site)."""
    ref = urlsplit(request.headers.get("referer", ""))
    path = ref.path if ref.netloc in ("", request.url.netloc) else "/"
    return path if path.startswith("/") and not path.startswith("//") else "/"


def served_file(request: Request, name: str) -> Path | None:
    """The file ``name`` under the ``--files`` folder (None: absent, or it resolves outside)."""
    root = state(request).cfg.files_root.resolve()
    target = (root / name).resolve()
    if "\x00" in name or not target.is_relative_to(root) or not target.is_file():
        return None
    return target
