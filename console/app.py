"""The console's FastAPI application: routes, security headers, error pages, the monitor thread.

:func:`create_app` wires the routers over one :class:`deploy.store.PlanStore`; ``wulin
console`` serves it with uvicorn.  Every response carries a strict Content-Security-Policy
(scripts only from this console, no inline script), ``X-Frame-Options: DENY`` and
``no-store`` caching for pages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from console import routes_admin, routes_auth, routes_live, routes_ops, routes_plans, routes_sets
from console.config import ConsoleConfig
from console.corridor import read_roads
from console.los import latest_los
from console.network_map import draw_network
from console.routes_live import start_live
from console.web import Denied, make_state, render, see_other, session_of
from deploy.identity import Principal
from deploy.store import PlanStore, Refused
from sim.errors import WulinError

STATIC = Path(__file__).parent / "static"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")


def create_app(cfg: ConsoleConfig, store: PlanStore | None = None, *, monitor: bool = True,
               live_actor: Principal | None = None) -> FastAPI:
    """The console over ``store`` (default: the store at ``cfg.store_url``).

    Args:
        cfg: Settings.
        store: An open store to use (tests); opened from ``cfg.store_url`` when None.
        monitor: Start the thread that reads the controllers for the cockpit.
        live_actor: Who started the console with ``cfg.live_scenario`` (logged in on the command
            line; the audit log names them, channel ``cli``).
    """
    store = store or PlanStore(cfg.store_url)
    drawing = draw_network(cfg.net) if cfg.net is not None else None
    los = latest_los(cfg.experiment) if cfg.experiment is not None else None
    roads = read_roads(cfg.net) if cfg.net is not None else None
    st = make_state(cfg, store, drawing, los, roads)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if monitor:
            st.monitor.start()
        if cfg.live_scenario and live_actor is not None:
            start_live(st, cfg.live_scenario, cfg.live_speed, live_actor)
        yield
        st.live.stop()
        st.monitor.stop()

    app = FastAPI(title="Wulin console", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.console = st
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    for module in (routes_auth, routes_plans, routes_sets, routes_ops, routes_admin, routes_live):
        app.include_router(module.router)
    _handlers(app)
    return app


def _handlers(app: FastAPI) -> None:
    @app.middleware("http")
    async def headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        resp = await call_next(request)
        resp.headers.setdefault("Content-Security-Policy", CSP)
        # reports under /files/ may be framed by the review page (this origin only; their own
        # CSP is a sandbox: no script runs in them)
        resp.headers["X-Frame-Options"] = "SAMEORIGIN" if request.url.path.startswith("/files/") else "DENY"
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "same-origin"
        if not request.url.path.startswith("/static/"):
            resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    @app.exception_handler(Denied)
    async def denied(request: Request, exc: Denied) -> Response:
        if exc.login and request.method == "GET":
            return see_other("/login")
        return render(request, "error.html", session_of(request), exc.status, message=exc.reason)

    @app.exception_handler(WulinError)
    async def refused(request: Request, exc: WulinError) -> Response:
        # Refused by the store's rules (already audited by the store) or a bad input.
        status = 403 if isinstance(exc, Refused) else 400
        return render(request, "error.html", session_of(request), status, message=str(exc))
