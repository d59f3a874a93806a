"""Deploy, roll back (steps streamed live), the audit log, the cockpit and report files."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response, StreamingResponse

from console.jobs import Job
from console.routes_plans import ENGINEERS, bound_plan
from console.web import (
    Denied,
    WebSession,
    audit_refusal,
    render,
    require,
    require_post,
    see_other,
    served_file,
    state,
)
from deploy import service
from deploy.service import DeployOptions

router = APIRouter()
SUPERVISOR = ("supervisor",)
HEARTBEAT_S = 15.0
TICK_S = 0.1
# A report is served sandboxed (no script, no forms, an opaque origin) and may be framed only by
# this console's own pages (the review page embeds it).
DEFAULT_LIVE = "wulin-am-peak-v1"  # offered in the cockpit's live form
REPORT_CSP = "sandbox; frame-ancestors 'self'"


def _options(request: Request) -> DeployOptions:
    return DeployOptions(state(request).cfg.activation_timeout_s)


async def _device_action(request: Request, ref: str, kind: str, roles: tuple[str, ...]) -> Response:
    """Start a deploy or rollback of the plan the form is bound to; the browser follows the job."""
    sess, fields = await require_post(request, roles)
    rec = bound_plan(request, sess, ref, fields)
    st = state(request)

    def act(opts: DeployOptions) -> service.Outcome:
        if kind == "deploy":
            return service.deploy(st.store, rec.hash, sess.principal, opts, rec.plan)
        if kind == "recover":  # the store refuses unless the lease's process is gone or it expired
            return service.recover(st.store, rec.signal_id, sess.principal, opts)
        return service.rollback(st.store, rec.hash, sess.principal, opts)

    job = st.jobs.start(kind, rec.hash, sess.principal, _options(request), act)
    return see_other(f"/jobs/{job.id}")


@router.post("/plans/{ref}/deploy")
async def deploy(request: Request, ref: str) -> Response:
    return await _device_action(request, ref, "deploy", ENGINEERS)


@router.post("/plans/{ref}/rollback")
async def rollback(request: Request, ref: str) -> Response:
    return await _device_action(request, ref, "rollback", SUPERVISOR)


@router.post("/plans/{ref}/recover")
async def recover(request: Request, ref: str) -> Response:
    """Finish or undo a deploy or rollback whose process died (``wulin plan recover``)."""
    return await _device_action(request, ref, "recover", ENGINEERS)


def _job(request: Request, job_id: str) -> tuple[WebSession, Job]:
    sess = require(request)
    job = state(request).jobs.get(job_id)
    if job is None:
        raise Denied(404, "no such deploy or rollback (the console keeps the recent ones)")
    return sess, job


@router.get("/jobs/{job_id}")
def job_page(request: Request, job_id: str) -> Response:
    sess, job = _job(request, job_id)
    return render(request, "job.html", sess, job=job)


def sse(event: str, data: object) -> str:
    """One server-sent event (JSON data on one line)."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@router.get("/jobs/{job_id}/events")
def job_events(request: Request, job_id: str) -> Response:
    sess, job = _job(request, job_id)
    sessions = state(request).sessions

    async def stream() -> AsyncIterator[str]:
        sent = 0
        while sessions.alive(sess.sid):  # a logout or expiry ends the stream too
            done = job.done.is_set()
            while sent < len(job.lines):
                yield sse("step", job.lines[sent])
                sent += 1
            if done:
                out = job.outcome
                yield sse("done", {"state": out.state if out else "refused", "ok": bool(out and out.ok),
                                   "message": out.message if out else job.error})
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(TICK_S)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


@router.get("/audit")
def audit(request: Request) -> Response:
    sess = require(request)
    st = state(request)
    plan = request.query_params.get("plan", "").strip().lower()
    if plan and not all(c in "0123456789abcdef" for c in plan):
        plan = ""
    entries = st.store.audit(plan or None)[-500:]
    check = st.store.verify_audit() if request.query_params.get("verify") else None
    return render(request, "audit.html", sess, entries=list(reversed(entries)), check=check, plan=plan)


@router.get("/cockpit")
def cockpit(request: Request) -> Response:
    sess = require(request)
    st = state(request)
    _, signals = st.monitor.snapshot()
    return render(request, "cockpit.html", sess, drawing=st.drawing, signals=signals, los=st.los,
                  live=st.monitor.live(), live_running=st.live.running,
                  live_scenario=st.cfg.live_scenario or DEFAULT_LIVE, live_speed=st.cfg.live_speed)


@router.get("/cockpit/status")
def cockpit_status(request: Request) -> Response:
    require(request)
    return Response(json.dumps(state(request).monitor.payload()), media_type="application/json")


@router.get("/cockpit/events")
def cockpit_events(request: Request) -> Response:
    sess = require(request)
    monitor, sessions = state(request).monitor, state(request).sessions

    async def stream() -> AsyncIterator[str]:
        seen, idle = -1, 0.0
        while sessions.alive(sess.sid) and not await request.is_disconnected():
            if monitor.version != seen:
                data = monitor.payload()
                seen, idle = data["version"], 0.0
                yield sse("status", data)
            elif idle >= HEARTBEAT_S:
                idle = 0.0
                yield ": keep-alive\n\n"
            await asyncio.sleep(TICK_S * 2)
            idle += TICK_S * 2

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


@router.get("/files/{name:path}")
def files(request: Request, name: str) -> Response:
    """A report under the files folder; anything that resolves outside it is refused and audited."""
    sess = require(request)
    target = served_file(request, name)
    if target is None:
        audit_refusal(request, sess.principal, f"file {name[:200]!r} is not a report under the files folder")
        raise Denied(404, "no such report")
    return FileResponse(target, headers={"Content-Security-Policy": REPORT_CSP, "X-Content-Type-Options": "nosniff"})

