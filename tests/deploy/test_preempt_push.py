"""`wulin plan preempt push`: an approved preempt table goes to the signal's registered controller
and is read back; unapproved, forged, mistargeted or unauthorised pushes are refused in one line;
every attempt is audited."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import update

from deploy import oids as O
from deploy.emulator import ControllerEmulator
from deploy.preempt_config import dumps
from deploy.preempt_store import PreemptApprovals, PreemptRow
from deploy.store import PlanStore

from . import test_cli_plan
from .test_cli_plan import as_user, setup_users, wulin
from .test_preempt_store import CONFIG

env = test_cli_plan.env  # the fixture: emulator B1 registered in a new store, its credentials in a secrets file


def _propose(env: dict[str, str], tmp_path: Path) -> str:
    f = tmp_path / "b1-preempt.json"
    f.write_text(dumps(CONFIG))
    r = as_user(env, "ann", "plan", "preempt", "propose", str(f))
    assert r.exit_code == 0, r.output
    return CONFIG.config_hash()[:12]


def _pushes(env: dict[str, str]) -> list[tuple[str, str]]:
    store = PlanStore(env["WULIN_STORE"])
    return [(e.outcome, str(e.detail.get("reason", e.detail.get("readback_sha256", ""))))
            for e in store.audit() if e.action == "preempt-push"]


def test_an_approved_table_is_pushed_and_read_back(env: dict[str, str], tmp_path: Path) -> None:
    setup_users(env, ("ann", "engineer"), ("bob", "supervisor"), ("cat", "viewer"))
    h = _propose(env, tmp_path)
    r = as_user(env, "ann", "plan", "preempt", "push", h, "--signal", "B1")
    assert r.exit_code != 0 and "proposed, not approved" in str(r.exception)  # not yet approved
    assert as_user(env, "bob", "plan", "preempt", "approve", h).exit_code == 0
    r = as_user(env, "cat", "plan", "preempt", "push", h, "--signal", "B1")
    assert r.exit_code != 0 and "role 'viewer'" in str(r.exception)
    r = as_user(env, "ann", "plan", "preempt", "push", h, "--signal", "A1")
    assert r.exit_code != 0 and "is for signal 'B1', not 'A1'" in str(r.exception)
    emu: ControllerEmulator = env["_emu"]  # type: ignore[assignment]
    assert emu.db.get(O.PREEMPT_MIN_GREEN + (1,)) != 12
    r = as_user(env, "ann", "plan", "preempt", "push", h, "--signal", "B1")
    assert r.exit_code == 0 and "the readback equals the approved table" in r.output, r.output
    assert emu.db[O.PREEMPT_DWELL_PHASE + (1,)] == b"\x02" and emu.db[O.PREEMPT_MIN_GREEN + (1,)] == 12
    assert emu.db[O.PREEMPT_CONTROL + (2,)] == 1
    pushes = _pushes(env)
    assert [o for o, _ in pushes] == ["refused", "refused", "refused", "ok"]
    assert pushes[-1][1] == CONFIG.config_hash()  # the readback's hash is the approved one
    assert "audit log intact" in wulin(env, "plan", "audit", "--verify").output


def test_a_forged_approval_is_not_pushed(env: dict[str, str], tmp_path: Path) -> None:
    setup_users(env, ("ann", "engineer"), ("bob", "supervisor"))
    h = _propose(env, tmp_path)
    store = PlanStore(env["WULIN_STORE"])
    PreemptApprovals(store)
    with store._tx() as s:  # someone marks it approved in the database
        s.execute(update(PreemptRow).where(PreemptRow.hash == CONFIG.config_hash())
                  .values(state="approved", approved_by="bob", approver_role="supervisor", approval_sig="00" * 32))
    r = as_user(env, "ann", "plan", "preempt", "push", h, "--signal", "B1")
    assert r.exit_code != 0 and "does not verify" in str(r.exception)
    emu: ControllerEmulator = env["_emu"]  # type: ignore[assignment]
    assert emu.db.get(O.PREEMPT_MIN_GREEN + (1,)) != 12
    assert _pushes(env)[-1][0] == "refused"


def test_the_command_line_prints_one_line_without_a_traceback(env: dict[str, str], tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    setup_users(env, ("ann", "engineer"), ("bob", "supervisor"))
    h = _propose(env, tmp_path)
    clean = {k: v for k, v in env.items() if not k.startswith("_")}
    out = subprocess.run([sys.executable, "-m", "wulin", "plan", "preempt", "push", h, "--signal", "B1",
                          "--user", "ann", "--password-stdin"], input="ann-password\n", capture_output=True,
                         text=True, env={**os.environ, **clean}, timeout=120)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "not approved" in out.stderr + out.stdout
