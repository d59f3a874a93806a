"""Plan review: the queue, one plan against the live one, propose, approve and reject.

The approve, reject, deploy and roll-back forms post the full hash the page displayed; the
server refuses (and audits) a post whose hash is not the plan's, then hands the action to the
store, whose rules (two persons, roles, states, signatures) decide.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from console import corridor, diagrams, evidence, plansets
from console.web import (
    Denied,
    WebSession,
    audit_refusal,
    lang_of,
    render,
    require,
    require_post,
    see_other,
    served_file,
    state,
)
from controllers.plan import TimingPlan, validate_plan
from deploy.rules import change_tier
from deploy.store import PlanRecord, PlanStore
from sim.errors import WulinError

router = APIRouter()
ENGINEERS = ("engineer", "supervisor")
MAX_UPLOAD = 1_000_000
MAX_FILES = 50


def bound_plan(request: Request, sess: WebSession, ref: str, fields: dict[str, str]) -> PlanRecord:
    """The plan ``ref`` names, if the form's ``hash`` is exactly its full hash (hash binding)."""
    rec = state(request).store.get(ref)
    posted = fields.get("hash", "")
    if posted != rec.hash:
        audit_refusal(request, sess.principal, f"posted hash {posted[:64]!r} is not the displayed plan's", rec.hash)
        raise Denied(409, "the plan you saw is not the plan this form names (hash mismatch); reload the page")
    return rec


@router.get("/")
def home(request: Request) -> Response:
    require(request)
    return see_other("/plans")


@dataclass(frozen=True)
class SetRow:
    """One waiting proposal against its signal's live plan, for the plan-set table."""

    rec: PlanRecord
    live: TimingPlan | None
    tier: str
    change_s: float | None


def plan_set(store: PlanStore, queue: list[PlanRecord]) -> list[SetRow]:
    """Every proposal in ``queue`` against its signal's live plan, by signal."""
    rows = []
    for rec in sorted(queue, key=lambda r: (r.signal_id, r.proposed_at)):
        live = store.live_plan(rec.signal_id)
        live = live if live is not None and live.hash != rec.hash else None  # (a member deployed already)
        tier, size = change_tier(rec.plan, live.plan if live else None)
        rows.append(SetRow(rec, live.plan if live else None, tier, size))
    return rows


@router.get("/plans")
def plans(request: Request) -> Response:
    sess = require(request)
    store = state(request).store
    every = store.plans()
    queue = [p for p in every if p.state == "proposed"]
    others = [p for p in reversed(every) if p.state != "proposed"]
    return render(request, "plans.html", sess, queue=queue, others=others, plan_set=plan_set(store, queue),
                  sets=plansets.all_sets(store)[:50])


@router.get("/plans/new")
def new_plan(request: Request) -> Response:
    sess = require(request, ENGINEERS)
    return render(request, "propose.html", sess, error=None, net=state(request).cfg.net)


def _conflicts(net: Path | None, signal_id: str) -> tuple[list[list[bool]], str]:
    """The network's conflict matrix for ``signal_id`` (read by the project's topology reader)."""
    if net is None:
        raise WulinError("the console was started without --net: plans cannot be proposed here "
                         "(approval needs the network's conflicts); use `wulin plan propose --net`")
    from sim.topology import load_signal_specs  # the one network reader; only when proposing

    spec = load_signal_specs(net).get(signal_id)
    if spec is None:
        raise WulinError(f"signal {signal_id!r} is not in {net.name}")
    return [list(r) for r in spec.conflicts], str(net)


@router.post("/plans/new")
async def propose(request: Request) -> Response:
    """Propose every plan of the uploaded file(s); more than one plan makes one plan set."""
    sess, fields = await require_post(request, ENGINEERS)
    form = await request.form()
    st = state(request)
    try:
        found = await _uploaded_plans([u for u in form.getlist("plan_file") if not isinstance(u, str)])
        ev = {"kind": "note", "text": fields["evidence"]} if fields.get("evidence", "").strip() else None
        matrices = {p.signal_id: _conflicts(st.cfg.net, p.signal_id) for p, _ in found}  # all, before any
        done = [st.store.propose(plan, sess.principal, evidence=ev, note=fields.get("note", ""),
                                 conflicts=matrices[plan.signal_id][0], conflicts_source=matrices[plan.signal_id][1])
                for plan, _ in found]
    except WulinError as exc:
        return render(request, "propose.html", sess, 400, error=str(exc), net=st.cfg.net)
    if len(done) == 1:
        return see_other(f"/plans/{done[0].hash}")
    set_id = plansets.record(st.store, sess.principal, done, sorted({name for _, name in found}))
    return see_other(f"/sets/{set_id}")


async def _uploaded_plans(uploads: list[Any]) -> list[tuple[TimingPlan, str]]:
    """Every plan in the uploaded files, with its file's name; one signal at most once."""
    if not uploads:
        raise WulinError("choose a plan JSON file")
    found: list[tuple[TimingPlan, str]] = []
    for upload in uploads[:MAX_FILES + 1]:
        name = str(upload.filename or "plan.json")[:120]
        data = await upload.read(MAX_UPLOAD + 1)
        if len(data) > MAX_UPLOAD:
            raise WulinError(f"{name}: larger than {MAX_UPLOAD // 1000} kB")
        try:
            items = _plan_dicts(json.loads(data.decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise WulinError(f"{name}: not UTF-8 JSON ({exc})") from None
        found += [(TimingPlan.from_dict(d, name), name) for d in items]
    if len(uploads) > MAX_FILES or len(found) > 200:
        raise WulinError(f"upload at most {MAX_FILES} files and 200 plans at once")
    signals = [p.signal_id for p, _ in found]
    twice = sorted({s for s in signals if signals.count(s) > 1})
    if twice:
        raise WulinError(f"the upload holds more than one plan for signal(s) {', '.join(twice)}: a plan set "
                         "has one plan per signal")
    return found


def _plan_dicts(data: object) -> list[object]:
    items = data if isinstance(data, list) else [data]
    if not items or len(items) > 200:
        raise WulinError("a plan file holds 1 to 200 plans")
    return items


@router.get("/plans/{ref}")
def plan_page(request: Request, ref: str) -> Response:
    sess = require(request)
    st = state(request)
    rec = st.store.get(ref)
    live = st.store.live_plan(rec.signal_id)
    live_plan = live.plan if live is not None and live.hash != rec.hash else None
    tr = lang_of(request, sess).gettext
    rows = [(tr("This plan"), rec.plan)]
    if live_plan is not None:
        rows.insert(0, (tr("Live"), live_plan))
    return render(request, "plan.html", sess, rec=rec, live=live if live_plan else None, tsd=_time_space(request, rec),
                  table=diagrams.compare(rec.plan, live_plan), svg=diagrams.ring_diagram(rows),
                  problems=validate_plan(rec.plan), evidence=_evidence(request, rec.hash),
                  history=st.store.audit(rec.hash), error=request.query_params.get("error"),
                  sets=plansets.sets_of(st.store, rec.hash))


def _evidence(request: Request, plan_hash: str) -> list[evidence.EvidenceView]:
    """The plan's evidence; a report is kept (and embedded) only when it is under ``--files``."""
    views = [evidence.view(e) for e in state(request).store.evidence(plan_hash)]
    return [v if v.report is None or served_file(request, v.report) else replace(v, report=None) for v in views]


def _time_space(request: Request, rec: PlanRecord) -> str | None:
    """The time-space diagram along the plan's corridor: this plan here, live plans elsewhere."""
    st = state(request)
    if st.roads is None or rec.signal_id not in st.roads.signals:
        return None
    line = corridor.corridor(st.roads, rec.signal_id)
    plans = {sid: live.plan for sid, _ in line.signals if (live := st.store.live_plan(sid)) is not None}
    return corridor.time_space_svg(st.roads, line, plans | {rec.signal_id: rec.plan})


@router.post("/plans/{ref}/approve")
async def approve(request: Request, ref: str) -> Response:
    sess, fields = await require_post(request)
    rec = bound_plan(request, sess, ref, fields)
    store = state(request).store
    store.approve(rec.hash, sess.principal)
    comment = fields.get("comment", "").strip()
    if comment:  # the store's approve() takes no comment: it goes into the log beside it
        store.log(sess.principal, "approve.comment", rec.hash, "ok", {"comment": comment[:2000]})
    return see_other(f"/plans/{rec.hash}")


@router.post("/plans/{ref}/reject")
async def reject(request: Request, ref: str) -> Response:
    sess, fields = await require_post(request)
    rec = bound_plan(request, sess, ref, fields)
    state(request).store.reject(rec.hash, sess.principal, fields.get("comment", "")[:2000])
    return see_other(f"/plans/{rec.hash}")
