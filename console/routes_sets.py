"""Plan sets in the console: one upload's plans on one page, approved or rejected together.

Approving (or rejecting) a set posts the full hashes of every member the page displayed; a
post whose list is not exactly the set's is refused (409, audited) before the store is asked.
The store then decides for each member on its own rules (two persons, roles, states), so a set
never lets through a plan that would be refused alone; the page shows each member's outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import Response

from console import plansets
from console.routes_plans import plan_set
from console.web import Denied, WebSession, audit_refusal, render, require, require_post, state
from deploy.store import PlanRecord, PlanStore
from sim.errors import WulinError

router = APIRouter()
SUPERVISORS = ("supervisor",)


@dataclass(frozen=True)
class Outcome:
    """What the store said about one member."""

    signal_id: str
    hash: str
    ok: bool
    message: str


def _set_or_404(request: Request, set_id: str) -> plansets.PlanSet:
    found = plansets.find(state(request).store, set_id)
    if found is None:
        raise Denied(404, "no such plan set")
    return found


def _page(request: Request, sess: WebSession, pset: plansets.PlanSet, status: int = 200,
          outcomes: list[Outcome] | None = None) -> Response:
    store = state(request).store
    members = [store.get(h) for h in pset.hashes]
    return render(request, "planset.html", sess, status, pset=pset, rows=plan_set(store, members),
                  waiting=any(m.state == "proposed" for m in members), outcomes=outcomes or [],
                  plans_field=",".join(pset.hashes))


@router.get("/sets/{set_id}")
def set_page(request: Request, set_id: str) -> Response:
    sess = require(request)
    return _page(request, sess, _set_or_404(request, set_id))


async def _bound_set(request: Request, set_id: str) -> tuple[WebSession, dict[str, str], plansets.PlanSet]:
    """The set, if the form names exactly its members (hash binding for the whole set)."""
    sess, fields = await require_post(request, SUPERVISORS)
    pset = _set_or_404(request, set_id)
    if fields.get("plans", "") != ",".join(pset.hashes):
        audit_refusal(request, sess.principal, f"posted plans of set {set_id} are not the set's members")
        raise Denied(409, "the plans you saw are not the plans of this set (hash mismatch); reload the page")
    return sess, fields, pset


def _decide(request: Request, sess: WebSession, pset: plansets.PlanSet, approve: bool,
            comment: str) -> list[Outcome]:
    """Approve (or reject) every member still proposed, one store call each."""
    store, out = state(request).store, []
    for rec in (store.get(h) for h in pset.hashes):
        if rec.state != "proposed":
            out.append(Outcome(rec.signal_id, rec.hash, False, rec.state))  # decided already
            continue
        try:
            _one(store, rec, sess, approve, comment)
            out.append(Outcome(rec.signal_id, rec.hash, True, "approved" if approve else "rejected"))
        except WulinError as exc:  # refused by the store's rules (and audited there)
            out.append(Outcome(rec.signal_id, rec.hash, False, str(exc)))
    return out


def _one(store: PlanStore, rec: PlanRecord, sess: WebSession, approve: bool, comment: str) -> None:
    if approve:
        store.approve(rec.hash, sess.principal)
        if comment:
            store.log(sess.principal, "approve.comment", rec.hash, "ok", {"comment": comment})
    else:
        store.reject(rec.hash, sess.principal, comment)


@router.post("/sets/{set_id}/approve")
async def approve_set(request: Request, set_id: str) -> Response:
    sess, fields, pset = await _bound_set(request, set_id)
    return _page(request, sess, pset, outcomes=_decide(request, sess, pset, True, fields.get("comment", "")[:2000]))


@router.post("/sets/{set_id}/reject")
async def reject_set(request: Request, set_id: str) -> Response:
    sess, fields, pset = await _bound_set(request, set_id)
    return _page(request, sess, pset, outcomes=_decide(request, sess, pset, False, fields.get("comment", "")[:2000]))
