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
