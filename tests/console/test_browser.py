"""End to end in a real browser: Playwright for Python driving Debian's Chromium, headless.

An engineer proposes a plan in one browser context, a supervisor in a second context reviews
and approves it, deploys it to a controller emulator on loopback, sees the cockpit change and
rolls it back; then the same in Chinese.  Skips when ``/usr/bin/chromium`` (``apt-get install
chromium``) or Playwright is missing.  Screenshots go to ``$WULIN_CONSOLE_SHOTS`` when set.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.app import create_app
from deploy.emulator import ControllerEmulator
from deploy.secrets import SecretsFile
from deploy.store import PlanStore
from tests.deploy.conftest import CAPS, make_plan, make_profile

from .conftest import PASSWORDS_ALL, config

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(store: PlanStore, tmp_path: Path) -> Iterator[str]:
    """The console served by uvicorn on loopback, over a store with an emulated B1."""
    import uvicorn

    emu = ControllerEmulator(make_profile(), make_plan(name="local"), CAPS, time_scale=300, verify_s=3).start()
    SecretsFile().put("B1", emu.credentials)  # WULIN_SECRETS points into the test's folder
    store.register_device("B1", emu.host, emu.port, emu.profile, CAPS)
    port = _free_port()
    cfg = config(tmp_path, port=port, poll_s=0.5)
    srv = uvicorn.Server(uvicorn.Config(create_app(cfg, store), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "the console did not start"
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)
    emu.stop()


@pytest.fixture
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def _shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    folder = os.environ.get("WULIN_CONSOLE_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def _login(browser, base: str, who: str, lang: str):  # type: ignore[no-untyped-def]
    page = browser.new_context(locale="zh-CN" if lang == "zh_CN" else "en-GB").new_page()
    page.set_default_timeout(30_000)
    page.goto(base + "/login")
    if lang != "en":
        page.click(f'button[name="lang"][value="{lang}"]')
    page.fill('input[name="username"]', who)
    page.fill('input[name="password"]', PASSWORDS_ALL[who])
    page.click("#login")
    page.wait_for_url(base + "/plans")
    return page


TEXT = {"en": {"queue": "Proposals waiting for review", "plan": "plan", "deployed": "deployed"},
        "zh_CN": {"queue": "待审方案", "plan": "方案运行", "deployed": "已下发"}}


@pytest.mark.parametrize("lang", ["en", "zh_CN"])
def test_propose_approve_deploy_cockpit_rollback(server: str, browser, store: PlanStore, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                lang: str) -> None:
    plan = make_plan(greens=(50, 30), offset=7, name="webster am" if lang == "en" else "早高峰 webster")
    plan_file = tmp_path / "plan.json"
    plan.save(plan_file)
    ann = _login(browser, server, "ann", lang)
    ann.goto(server + "/plans/new")
    ann.set_input_files('input[name="plan_file"]', str(plan_file))
    ann.fill('textarea[name="evidence"]', "| controller | travel time (s) |\n| field | 125.0 |\n| webster | 120.1 |")
    ann.click("#propose")
    ann.wait_for_url(f"{server}/plans/{plan.plan_hash()}")
    cat = _login(browser, server, "cat", lang)
    assert TEXT[lang]["queue"] in cat.content()
    _shot(cat, f"{lang}-1-queue")
    cat.click(f'a[href="/plans/{plan.plan_hash()}"]')
    _shot(cat, f"{lang}-2-review")
    cat.fill('form[action$="/approve"] textarea[name="comment"]', "ok, 按证据批准")
    cat.click("#approve")
    cat.wait_for_selector("#deploy")
    assert store.get(plan.plan_hash()).state == "approved"
    cat.click("#deploy")
    cat.wait_for_selector('#result[data-state="deployed"]', timeout=60_000)
    assert "readback" in cat.inner_text("#steps")
    assert cat.inner_text("#result").startswith(TEXT[lang]["deployed"] + ":")
    _shot(cat, f"{lang}-3-deploy")
    cockpit = _login(browser, server, "vic", lang)
    cockpit.goto(server + "/cockpit")
    cockpit.wait_for_function(
        f"() => document.querySelector('tr[data-signal=\"B1\"]')?.cells[5]?.textContent === '{plan.short_hash[:12]}'")
    assert cockpit.inner_text('tr[data-signal="B1"] td.mode') == TEXT[lang]["plan"]
    assert cockpit.get_attribute("#sig-B1 circle", "fill") == "#2e9e44"
    _shot(cockpit, f"{lang}-4-cockpit")
    cat.click("#back-to-plan")
    cat.click("#rollback")
    cat.wait_for_selector('#result[data-state="rolled_back"]', timeout=60_000)
    _shot(cat, f"{lang}-5-rollback")
    assert store.get(plan.plan_hash()).state == "rolled_back"
    cat.goto(server + "/audit")
    cat.click("#verify")
    assert cat.is_visible("#verify-result.ok")
    _shot(cat, f"{lang}-6-audit")
    web = {(e.actor, e.action) for e in store.audit(plan.plan_hash()) if e.channel == "web"}
    assert {("ann", "propose"), ("cat", "approve"), ("cat", "deploy.start"), ("cat", "rollback")} <= web
    root = _login(browser, server, "root", lang)
    root.goto(server + "/admin")
    _shot(root, f"{lang}-7-admin")


SET_TEXT = {"en": {"approved": "approved", "engineer": "engineer", "live": "simulation time"},
            "zh_CN": {"approved": "已批准", "engineer": "工程师", "live": "仿真时间"}}


@pytest.mark.parametrize("lang", ["en", "zh_CN"])
def test_plan_set_report_role_and_live_cockpit(server: str, browser, store: PlanStore, tmp_path: Path,  # type: ignore[no-untyped-def]
                                               lang: str) -> None:
    import json

    for sid in ("A0", "A1"):
        store.register_device(sid, "127.0.0.1", 9, make_profile(sid), CAPS)
    corridor, b1 = tmp_path / "corridor-a.json", tmp_path / "b1.json"
    corridor.write_text(json.dumps([make_plan("A0", greens=(44, 36)).to_dict(),
                                    make_plan("A1", greens=(46, 34), offset=12).to_dict()]))
    make_plan("B1", greens=(48, 32)).save(b1)
    (tmp_path / "files" / "exp").mkdir()
    (tmp_path / "files" / "exp" / "report.html").write_text("<h1 id='r'>Experiment am-peak</h1>")
    ann = _login(browser, server, "ann", lang)
    ann.goto(server + "/plans/new")
    ann.set_input_files('input[name="plan_file"]', [str(corridor), str(b1)])
    ann.fill('textarea[name="evidence"]', "| webster | 118.4 |")
    ann.click("#propose")
    ann.wait_for_selector("#set-table")
    assert ann.locator("#set-table tr[data-signal]").count() == 3
    set_url = ann.url
    cat = _login(browser, server, "cat", lang)
    cat.click(f'a.set-link[href="{set_url[len(server):]}"]')
    _shot(cat, f"{lang}-8-plan-set")
    cat.fill('textarea[name="comment"]', "一并批准 <b>ok</b>")
    cat.click("#approve-set")
    cat.wait_for_selector("#set-outcomes")
    assert cat.locator("#set-outcomes tr.ok").count() == 3
    assert cat.inner_text('#set-table tr[data-signal="A1"] td.state') == SET_TEXT[lang]["approved"]
    # the experiment report, embedded in the review page (served from --files, sandboxed)
    rec = store.propose(make_plan(greens=(42, 38), name="with report"), store.authenticate("ann", PASSWORDS_ALL["ann"]),
                        evidence={"kind": "experiment", "report": "exp/report.html"})
    cat.goto(f"{server}/plans/{rec.hash}")
    frame = cat.frame_locator("iframe.report")
    assert frame.locator("#r").inner_text() == "Experiment am-peak"
    cat.locator("iframe.report").scroll_into_view_if_needed()  # (a full-page shot paints a frame in view)
    _shot(cat, f"{lang}-9-review-with-report")
    # an admin makes the viewer an engineer; her open session sees it at once
    vic = _login(browser, server, "vic", lang)
    assert vic.locator("#propose-link").count() == 0
    root = _login(browser, server, "root", lang)
    root.goto(server + "/admin")
    root.select_option('form[action="/admin/users/vic/role"] select[name="role"]', "engineer")
    root.click('button.set-role[data-user="vic"]')
    root.wait_for_url(server + "/admin")
    assert SET_TEXT[lang]["engineer"] in root.inner_text("table.list")
    vic.reload()
    assert vic.locator("#propose-link").count() == 1
    # live mode: the grid scenario in SUMO, queues and signal states moving in the cockpit
    pytest.importorskip("libsumo")
    ann.goto(server + "/cockpit")
    ann.fill('input[name="scenario"]', "grid-am-v1")
    ann.fill('input[name="speed"]', "120")
    ann.click("#live-start")
    ann.wait_for_selector('#live tr[data-signal="B1"] span.light', timeout=60_000)
    ann.wait_for_selector("#sig-B1 circle.queue")
    first = ann.inner_text("#live-status")
    assert SET_TEXT[lang]["live"] in first
    ann.wait_for_function(f"() => document.getElementById('live-status').textContent !== {json.dumps(first)}")
    _shot(ann, f"{lang}-10-live")
    ann.click("#live-stop")
    ann.wait_for_selector('#live-status[data-state="done"]')
    assert {("ann", "live.start"), ("ann", "live.stop")} <= {(e.actor, e.action) for e in store.audit()
                                                              if e.channel == "web"}
