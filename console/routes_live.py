"""Start and stop the cockpit's live simulation (engineers, supervisors and admins; audited).

The plans run are the ones the store says are deployed when the run starts; who started or
stopped it, and through which channel, goes into the audit log (``live.start`` / ``live.stop``;
``wulin console --live`` logs in on the command line first, so its run names that user, channel
``cli``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from console.web import ConsoleState, render, require_post, see_other, state
from deploy.identity import Principal
from sim.errors import WulinError

router = APIRouter()
OPERATORS = ("engineer", "supervisor", "admin")


def start_live(st: ConsoleState, scenario: str, speed: float, actor: Principal) -> None:
    """Start ``scenario`` with the deployed plans, and audit it."""
    plans = {rec.signal_id: rec.plan for rec in st.store.plans(state="deployed")}
    st.live.start(scenario, speed, plans)
    st.store.log(actor, "live.start", "", "ok", {"scenario": scenario, "speed": speed, "plans": sorted(plans)})


@router.post("/cockpit/live")
async def live_start(request: Request) -> Response:
    sess, f = await require_post(request, OPERATORS)
    st = state(request)
    try:
        try:
            speed = float(f.get("speed", "") or st.cfg.live_speed)
        except ValueError:
            raise WulinError("live speed: give a number (simulated seconds per second)") from None
        start_live(st, f.get("scenario", "").strip(), speed, sess.principal)
    except WulinError as exc:
        return render(request, "error.html", sess, 400, message=str(exc))
    return see_other("/cockpit")


@router.post("/cockpit/live/stop")
async def live_stop(request: Request) -> Response:
    sess, _ = await require_post(request, OPERATORS)
    st = state(request)
    st.live.stop()
    st.store.log(sess.principal, "live.stop", "", "ok", {})
    return see_other("/cockpit")
