"""The admin page: users (add, disable, enable, change role) and API tokens for the command line.

Each action is the store's (:meth:`~deploy.store.PlanStore.add_user`,
:meth:`~deploy.store.PlanStore.set_disabled`, :meth:`~deploy.store.PlanStore.set_role`, :meth:`~deploy.store.PlanStore.issue_token`,
:meth:`~deploy.store.PlanStore.revoke_token`), which checks the admin role and audits it.
A new token is shown once, on the page that issued it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from console.web import WebSession, render, require, require_post, see_other, state
from deploy.identity import ROLES, normalise_name
from sim.errors import WulinError

router = APIRouter()
ADMIN = ("admin",)


def _page(request: Request, sess: WebSession, status: int = 200, **extra: object) -> Response:
    return render(request, "admin.html", sess, status, users=state(request).store.users(), roles=ROLES,
                  issued=extra.get("issued"), error=extra.get("error"))


@router.get("/admin")
def admin(request: Request) -> Response:
    return _page(request, require(request, ADMIN))


@router.post("/admin/users")
async def add_user(request: Request) -> Response:
    sess, f = await require_post(request, ADMIN)
    try:
        state(request).store.add_user(sess.principal, f.get("name", ""), f.get("role", ""), f.get("password", ""))
    except WulinError as exc:
        return _page(request, sess, 400, error=str(exc))
    return see_other("/admin")


@router.post("/admin/users/{name}/role")
async def change_role(request: Request, name: str) -> Response:
    """A new role for ``name``: the store checks the admin and keeps the last admin; the user's
    open sessions see the new role on their next request (it is read from the store each time)."""
    sess, f = await require_post(request, ADMIN)
    try:
        state(request).store.set_role(sess.principal, name, f.get("role", ""))
    except WulinError as exc:
        return _page(request, sess, 403, error=str(exc))
    return see_other("/admin")


@router.post("/admin/users/{name}/{action}")
async def user_action(request: Request, name: str, action: str) -> Response:
    sess, _ = await require_post(request, ADMIN)
    st = state(request)
    if action not in ("disable", "enable"):
        return _page(request, sess, 404, error=f"unknown action {action!r}")
    try:
        st.store.set_disabled(sess.principal, name, action == "disable")
    except WulinError as exc:
        return _page(request, sess, 403, error=str(exc))
    if action == "disable":
        st.sessions.end_user(normalise_name(name))
    return see_other("/admin")


@router.post("/admin/tokens")
async def issue_token(request: Request) -> Response:
    sess, f = await require_post(request, ADMIN)
    try:
        days = float(f.get("days", "30") or 30)
        issued = state(request).store.issue_token(sess.principal, f.get("name", ""), days)
    except ValueError:
        return _page(request, sess, 400, error="token lifetime: give a number of days")
    except WulinError as exc:
        return _page(request, sess, 400, error=str(exc))
    resp = _page(request, sess, issued=issued)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@router.post("/admin/tokens/revoke")
async def revoke_token(request: Request) -> Response:
    sess, f = await require_post(request, ADMIN)
    try:
        state(request).store.revoke_token(sess.principal, f.get("token_id", ""))
    except WulinError as exc:
        return _page(request, sess, 400, error=str(exc))
    return see_other("/admin")
