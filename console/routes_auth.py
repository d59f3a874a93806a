"""Log in, log out and the interface language.

Login checks the password with :meth:`deploy.store.PlanStore.authenticate` (channel ``web``),
so failures are counted, locked out and audited by the store's own rules.  The login form
carries a CSRF token bound to a short-lived cookie (double submit), so another site cannot log
a browser in under its own account.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.responses import Response

from console.i18n import LANGS
from console.sessions import COOKIE, CSRF_FIELD, same_token
from console.web import (
    ANONYMOUS,
    LANG_COOKIE,
    audit_refusal,
    back,
    lang_of,
    render,
    require_post,
    see_other,
    session_of,
    set_cookie,
    state,
)
from deploy.identity import AuthError
from sim.errors import WulinError

router = APIRouter()
LOGIN_CSRF = "wulin_login_csrf"
YEAR_S = 365 * 24 * 3600


def _login_page(request: Request, error: str | None = None, status: int = 200) -> Response:
    token = secrets.token_urlsafe(32)
    resp = render(request, "login.html", None, status, error=error, login_csrf=token)
    set_cookie(request, resp, LOGIN_CSRF, token, 600)
    return resp


@router.get("/login")
def login_form(request: Request) -> Response:
    if session_of(request) is not None:
        return see_other("/plans")
    return _login_page(request)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    if not same_token(request.cookies.get(LOGIN_CSRF, ""), fields.get(CSRF_FIELD)) or not request.cookies.get(
            LOGIN_CSRF):
        audit_refusal(request, ANONYMOUS, "login without a valid CSRF token")
        return _login_page(request, lang_of(request).gettext("The login form expired; please try again."), 403)
    st = state(request)
    try:
        who = st.store.authenticate(fields.get("username", ""), fields.get("password", ""), channel="web")
    except AuthError:
        return _login_page(request, lang_of(request).gettext(
            "Wrong user name or password, or the account is locked or disabled."), 401)
    except WulinError as exc:
        return _login_page(request, str(exc), 400)
    sess = st.sessions.create(who, lang_of(request).code)
    resp = see_other("/plans")
    set_cookie(request, resp, COOKIE, sess.sid, None)  # a browser-session cookie; the server expires it
    resp.delete_cookie(LOGIN_CSRF, path="/")
    return resp


@router.post("/logout")
async def logout(request: Request) -> Response:
    sess, _ = await require_post(request)
    state(request).sessions.end(sess.sid)
    resp = see_other("/login")
    resp.delete_cookie(COOKIE, path="/")
    return resp


@router.post("/lang")
async def set_lang(request: Request) -> Response:
    """Choose the interface language (kept in a cookie and in the session)."""
    form = await request.form()
    code = str(form.get("lang", ""))
    sess = session_of(request)
    if sess is not None:
        sess, _ = await require_post(request)
        state(request).sessions.update(sess.__class__(sess.sid, sess.principal, sess.csrf, sess.expires,
                                                      code if code in LANGS else sess.lang))
    resp = see_other(back(request) if sess else "/login")
    if code in LANGS:
        set_cookie(request, resp, LANG_COOKIE, code, YEAR_S)
    return resp
