"""The console's work end to end over TestClient: propose, review, deploy (steps streamed),
roll back, the cockpit, the audit log, users and tokens, and the Chinese interface."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.emulator import ControllerEmulator
from deploy.secrets import SecretsFile
from deploy.store import PlanStore
from tests.deploy.conftest import CAPS, make_plan, make_profile, propose

from .conftest import EVIDENCE


@pytest.fixture
def emulator(store: PlanStore) -> Iterator[ControllerEmulator]:
    emu = ControllerEmulator(make_profile(), make_plan(name="local"), CAPS, time_scale=300, verify_s=3).start()
    SecretsFile().put("B1", emu.credentials)  # WULIN_SECRETS points into the test's folder
    store.register_device("B1", emu.host, emu.port, emu.profile, CAPS)
    yield emu
    emu.stop()


def events(client, url: str) -> list[tuple[str, object]]:  # type: ignore[no-untyped-def]
    """Every server-sent event of a stream that ends by itself."""
    with client.stream("GET", url) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        text = "".join(r.iter_text())
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def test_propose_by_upload_then_approve_with_comment(client_for, store: PlanStore) -> None:  # type: ignore[no-untyped-def]
    ann = client_for("ann")
    plan = make_plan(greens=(48, 32), name="webster am")
    r = ann.post("/plans/new", data={"csrf": ann.csrf, "note": "am peak", "evidence": "| webster | 120.1 |"},
                 files={"plan_file": ("plan.json", plan.to_json(), "application/json")}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/plans/{plan.plan_hash()}"
    rec = store.get(plan.plan_hash())
    assert (rec.state, rec.proposed_by, rec.note) == ("proposed", "ann", "am peak")
    cat = client_for("cat")
    page = cat.get(f"/plans/{rec.hash}").text
    assert f'name="hash" value="{rec.hash}"' in page and "<svg" in page and "| webster | 120.1 |" in page
    r = cat.post(f"/plans/{rec.hash}/approve", data={"csrf": cat.csrf, "hash": rec.hash, "comment": "fine"},
                 follow_redirects=False)
    assert r.status_code == 303 and store.get(rec.hash).state == "approved"
    logged = [(e.actor, e.channel, e.action) for e in store.audit(rec.hash)]
    assert ("ann", "web", "propose") in logged and ("cat", "web", "approve") in logged
    assert [e.detail for e in store.audit(rec.hash) if e.action == "approve.comment"] == [{"comment": "fine"}]


def test_upload_of_a_bad_plan_is_one_clear_error(client_for, store: PlanStore) -> None:  # type: ignore[no-untyped-def]
    ann = client_for("ann")
    for content in (b"\xff\xfe", b'{"signal_id": "B1"}', b"[]", json.dumps(make_plan(signal_id="ZZ").to_dict())):
        r = ann.post("/plans/new", data={"csrf": ann.csrf}, files={"plan_file": ("p.json", content)})
        assert r.status_code == 400 and 'class="error"' in r.text and "Traceback" not in r.text
    assert store.plans() == []


def test_plan_page_shows_kpis_and_the_change_against_the_live_plan(client_for, store: PlanStore) -> None:  # type: ignore[no-untyped-def]
    rec = propose(store, make_plan(greens=(45, 35), name="pm"), evidence=EVIDENCE)
    page = client_for("bob").get(f"/plans/{rec.hash}").text
    assert "mean travel time (s)" in page and "116.1 – 120.7" in page
    assert re.search(r"cycle \(s\)</td><td>-</td><td>90</td>", page)
    assert "All engineering checks pass." in page
    assert 'class="tsd"' in page and page.count("<title>no plan on record</title>") == 2  # B1's neighbours have none


def test_deploy_streams_the_ntcip_steps_then_rollback(client_for, app, store: PlanStore,  # type: ignore[no-untyped-def]
                                                      emulator: ControllerEmulator) -> None:
    rec = propose(store, make_plan(greens=(50, 30), offset=7, name="webster am"), evidence=EVIDENCE)
    cat, ann = client_for("cat"), client_for("ann")
    cat.post(f"/plans/{rec.hash}/approve", data={"csrf": cat.csrf, "hash": rec.hash})
    r = ann.post(f"/plans/{rec.hash}/deploy", data={"csrf": ann.csrf, "hash": rec.hash}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/jobs/")
    got = events(ann, r.headers["location"] + "/events")
    steps = [d for e, d in got if e == "step"]
    assert any("readback" in str(s) for s in steps) and len(steps) >= 5
    assert got[-1] == ("done", got[-1][1]) and got[-1][1]["state"] == "deployed"  # type: ignore[index]
    assert store.get(rec.hash).state == "deployed"
    monitor = app.state.console.monitor
    monitor.refresh()
    (sig,) = monitor.snapshot()[1]
    assert sig.mode == "plan" and sig.live_plan == rec.hash[:12] and sig.pattern in make_profile().pattern_slots
    assert ann.post(f"/plans/{rec.hash}/rollback", data={"csrf": ann.csrf, "hash": rec.hash}).status_code == 403
    r = cat.post(f"/plans/{rec.hash}/rollback", data={"csrf": cat.csrf, "hash": rec.hash}, follow_redirects=False)
    done = events(cat, r.headers["location"] + "/events")[-1]
    assert done[0] == "done" and done[1]["state"] == "rolled_back"  # type: ignore[index]
    assert store.get(rec.hash).state == "rolled_back"
    who = {(e.actor, e.channel) for e in store.audit(rec.hash) if e.action in ("deploy.start", "rollback")}
    assert who == {("ann", "web"), ("cat", "web")}


def test_audit_page_verifies_the_chain(client_for, store: PlanStore) -> None:  # type: ignore[no-untyped-def]
    propose(store, make_plan(name="x"))
    page = client_for("vic").get("/audit", params={"verify": "1"}).text
    assert 'id="verify-result"' in page and "Chain intact" in page


def test_cockpit_draws_the_network_and_streams_status(client_for, app, emulator: ControllerEmulator) -> None:  # type: ignore[no-untyped-def]
    app.state.console.monitor.refresh()
    c = client_for("vic")
    page = c.get("/cockpit").text
    assert 'id="district"' in page and 'id="sig-B1"' in page and "<polyline" in page
    status = c.get("/cockpit/status").json()
    assert [s["signal_id"] for s in status["signals"]] == ["B1"] and status["signals"][0]["mode"] == "plan"
    with c.stream("GET", "/cockpit/events") as r:
        first = next(r.iter_lines())
        assert first == "event: status"


def test_offline_controller_shows_offline(app, store: PlanStore) -> None:  # type: ignore[no-untyped-def]
    app.state.console.monitor.refresh()  # B1 is registered at port 9, where nothing answers
    (sig,) = app.state.console.monitor.snapshot()[1]
    assert sig.mode == "offline" and sig.last_contact is None


def test_admin_adds_a_user_issues_a_token_and_disables_a_user(client_for, store: PlanStore) -> None:  # type: ignore[no-untyped-def]
    root = client_for("root")
    r = root.post("/admin/users", data={"csrf": root.csrf, "name": "Dan", "role": "engineer",
                                        "password": "dan-password"}, follow_redirects=False)
    assert r.status_code == 303 and any(u.name == "dan" and u.role == "engineer" for u in store.users())
    page = root.post("/admin/tokens", data={"csrf": root.csrf, "name": "dan", "days": "7"}).text
    token = re.search(r"<code>(wulin_[^<]+)</code>", page).group(1)  # type: ignore[union-attr]
    assert store.authenticate_token(token).name == "dan"
    bob = client_for("bob")
    root.post("/admin/users/bob/disable", data={"csrf": root.csrf})
    assert bob.get("/plans", follow_redirects=False).headers["location"] == "/login"
    web = [(e.actor, e.action) for e in store.audit() if e.channel == "web" and e.action.startswith(("user", "token"))]
    assert web == [("root", "user.add"), ("root", "token.issue"), ("root", "user.disable")]


def test_chinese_interface_with_dates_and_numbers_for_the_locale(client_for, store: PlanStore) -> None:  # type: ignore[no-untyped-def]
    rec = propose(store, make_plan(greens=(1000, 30), name="long"))
    c = client_for("bob")
    c.post("/lang", data={"csrf": c.csrf, "lang": "zh_CN"})
    page = c.get("/plans").text
    assert "待审方案" in page and "退出登录" in page and "1,040" in page
    c.post(f"/plans/{rec.hash}/reject", data={"csrf": c.csrf, "hash": rec.hash, "comment": "周期过长"})
    assert "周期过长" in c.get("/audit").text  # audit details shown as text, not \u escapes
    assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日", page)
    c.post("/lang", data={"csrf": c.csrf, "lang": "en"})
    assert "Proposals waiting for review" in c.get("/plans").text


def test_cockpit_raises_an_alarm_when_the_controller_drifts_from_the_store(client_for, app, store: PlanStore,  # type: ignore[no-untyped-def]
                                                                          emulator: ControllerEmulator) -> None:
    import time

    from deploy import oids as O
    from deploy.snmp import SnmpClient
    from deploy.usm import UsmManager

    rec = propose(store, make_plan(greens=(50, 30), name="am"), evidence=EVIDENCE)
    cat = client_for("cat")
    cat.post(f"/plans/{rec.hash}/approve", data={"csrf": cat.csrf, "hash": rec.hash})
    r = cat.post(f"/plans/{rec.hash}/deploy", data={"csrf": cat.csrf, "hash": rec.hash}, follow_redirects=False)
    assert events(cat, r.headers["location"] + "/events")[-1][1]["state"] == "deployed"  # type: ignore[index]
    monitor = app.state.console.monitor
    monitor.refresh()
    assert monitor.snapshot()[1][0].mode == "plan"
    # out of band, as an snmpset by someone holding the write credential would
    client = SnmpClient(emulator.host, emulator.port, timeout=1.0, usm=UsmManager(emulator.credentials.writer))
    client.set([(O.SYSTEM_PATTERN_CONTROL, 1)])
    client.close()
    for _ in range(50):
        monitor.refresh()
        sig = monitor.snapshot()[1][0]
        if sig.mode != "plan":
            break
        time.sleep(0.1)
    assert sig.mode == "alarm" and "drift" in sig.health


def test_cockpit_shows_level_of_service_from_the_newest_experiment_runs(store: PlanStore, tmp_path: Path) -> None:
    import os

    import pandas as pd

    from console.app import create_app
    from experiments.results import RunOutput, write_run
    from experiments.spec import RunKey

    from .conftest import config

    out = tmp_path / "exp"
    for k, (controller, seed, delay) in enumerate([("fixed", 1, 70.0), ("webster", 1, 30.0), ("webster", 2, 40.0)]):
        table = pd.DataFrame({"signal": ["B1"], "control_delay": [delay], "los": ["?"], "throughput_vph": [500.0]})
        path = write_run(out, RunOutput(RunKey("grid-test-v1", "base", controller, seed), {"k": 1.0},
                                        {"intersections": table}))
        os.utime(path / "summary.json", (1000 + k, 1000 + k))
    app = create_app(config(tmp_path, experiment=out), store, monitor=False)
    from fastapi.testclient import TestClient

    from .conftest import login

    with TestClient(app, base_url="http://127.0.0.1") as c:
        login(c, "vic")
        page = c.get("/cockpit").text
    assert "webster, 2 seed(s)" in page
    assert re.search(r'<td class="los los-C">C</td><td>35</td>', page)  # mean of 30 and 40 s/veh: HCM C


def test_recover_a_deploy_whose_process_died(client_for, store: PlanStore, emulator: ControllerEmulator) -> None:  # type: ignore[no-untyped-def]
    import socket

    from tests.deploy.conftest import ANN, CAT

    rec = propose(store, make_plan(greens=(50, 30), name="am"), evidence=EVIDENCE)
    store.approve(rec.hash, CAT)
    dead = f"{socket.gethostname()}:999999999:dead"  # a process of this host that does not exist
    store.begin_deploy(rec.hash, ANN, holder=dead, lease_s=600)
    ann = client_for("ann")
    page = ann.get(f"/plans/{rec.hash}").text
    assert 'id="recover"' in page
    r = ann.post(f"/plans/{rec.hash}/recover", data={"csrf": ann.csrf, "hash": rec.hash}, follow_redirects=False)
    done = events(ann, r.headers["location"] + "/events")[-1]
    assert done[0] == "done" and done[1]["state"] == "failed" and "nothing was written" in done[1]["message"]  # type: ignore[index]
    assert store.get(rec.hash).state == "failed" and store.lease("B1") is None
    assert [(e.actor, e.channel) for e in store.audit(rec.hash) if e.action == "recover.start"] == [("ann", "web")]


def test_queue_shows_the_waiting_proposals_against_the_live_plans(client_for, store: PlanStore,  # type: ignore[no-untyped-def]
                                                                   emulator: ControllerEmulator) -> None:
    from deploy import service
    from tests.deploy.conftest import ANN, CAT

    live = propose(store, make_plan(greens=(50, 30), name="live"), evidence=EVIDENCE)
    store.approve(live.hash, CAT)
    assert service.deploy(store, live.hash, ANN, service.DeployOptions(30.0)).state == "deployed"
    small = propose(store, make_plan(greens=(52, 28), name="small"))
    page = client_for("vic").get("/plans").text
    table = page[page.index('id="plan-set"'):page.index("</table>", page.index('id="plan-set"'))]
    assert small.hash[:12] in table and "90 → 90" in table and "55 / 35 → 57 / 33" in table
    assert re.search(r"<td>2</td><td>no</td>", table)  # a 2 s change needs no evidence
