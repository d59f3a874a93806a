"""The `wulin plan` walkthrough on the command line, against an emulator on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deploy.emulator import ControllerEmulator
from deploy.secrets import SecretsFile
from deploy.store import PlanStore, Refused
from wulin.cli import app

from .conftest import CAPS, PASSWORDS, make_plan, make_profile


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    emu = ControllerEmulator(make_profile(), make_plan(name="local"), CAPS, time_scale=300, verify_s=3).start()
    store = tmp_path / "store.sqlite"
    secrets = tmp_path / "secrets" / "device-secrets.json"
    SecretsFile(secrets).put("B1", emu.credentials)  # credentials outside the store
    PlanStore(store).register_device("B1", emu.host, emu.port, emu.profile, CAPS)
    env = {"WULIN_STORE": str(store), "WULIN_SECRETS": str(secrets), "COLUMNS": "200"}
    env["_emu"] = emu  # type: ignore[assignment]
    yield env
    emu.stop()


def wulin(env: dict[str, str], *args: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
    clean = {k: v for k, v in env.items() if not k.startswith("_")}
    return CliRunner().invoke(app, list(args), env=clean, input=stdin)


def as_user(env: dict[str, str], who: str, *args: str):  # type: ignore[no-untyped-def]
    """Run a command logged in as ``who`` (password on stdin)."""
    return wulin(env, *args, "--user", who, "--password-stdin", stdin=PASSWORDS[who] + "\n")


def setup_users(env: dict[str, str], *users: tuple[str, str]) -> None:
    """`plan init` with admin root, then `plan user add` for each (name, role)."""
    r = wulin(env, "plan", "init", "--admin", "root", "--password-stdin", stdin=PASSWORDS["root"] + "\n")
    assert r.exit_code == 0, r.output
    for name, role in users:
        r = wulin(env, "plan", "user", "add", name, "--role", role, "--user", "root", "--password-stdin",
                  "--new-password-stdin", stdin=f"{PASSWORDS['root']}\n{PASSWORDS[name]}\n")
        assert r.exit_code == 0, r.output


def test_walkthrough_propose_approve_deploy_audit_rollback(env: dict[str, str], tmp_path: Path) -> None:
    plan = make_plan(greens=(50, 30), offset=7, name="webster am")
    plan_file = tmp_path / "plans.json"
    plan.save(plan_file)
    evidence = tmp_path / "evidence.md"
    evidence.write_text("| controller | mean travel time (s) |\n| field | 125.0 |\n| webster | 120.1 |\n")
    setup_users(env, ("ann", "engineer"), ("bob", "supervisor"))
    assert wulin(env, "plan", "validate", str(plan_file)).exit_code == 0
    r = as_user(env, "ann", "plan", "propose", str(plan_file), "--evidence", str(evidence))
    assert r.exit_code == 0 and plan.plan_hash() in r.output
    h = plan.short_hash
    r = as_user(env, "ann", "plan", "approve", h)
    assert isinstance(r.exception, Refused) and "second person" in str(r.exception)
    assert as_user(env, "bob", "plan", "approve", h).exit_code == 0
    r = as_user(env, "ann", "plan", "deploy", h, "--plan", str(plan_file), "--activation-timeout", "5")
    assert r.exit_code == 0, r.output
    assert "readback of 44 objects equals the plan" in r.output and "deployed: pattern 2 running" in r.output
    emu: ControllerEmulator = env["_emu"]  # type: ignore[assignment]
    assert emu.active_plan().splits == plan.splits  # type: ignore[union-attr]
    r = wulin(env, "plan", "list")
    assert "deployed" in r.output and h in r.output
    r = wulin(env, "plan", "show", h)
    assert "validation: valid (with the network's conflicts)" in r.output and "webster" in r.output
    r = wulin(env, "plan", "audit", h)
    assert [line.split()[4] for line in r.output.splitlines()] == [
        "propose", "evidence", "approve", "approve", "deploy.start", "deploy.snapshot", "deploy.finish"]
    assert "audit log intact" in wulin(env, "plan", "audit", "--verify").output
    # A second, slightly changed plan: small change, no evidence needed; diff against the live plan.
    nxt = make_plan(greens=(47, 33), offset=7, name="webster am 2")
    nxt.save(tmp_path / "next.json")
    assert as_user(env, "ann", "plan", "propose", str(tmp_path / "next.json")).exit_code == 0
    r = wulin(env, "plan", "diff", nxt.short_hash)
    assert "stage 0 green: 50 -> 47" in r.output and "change size: 3 s" in r.output
    # Roll back the deployed plan: the controller is back on its local plan.
    r = as_user(env, "bob", "plan", "rollback", h, "--activation-timeout", "5")
    assert r.exit_code == 0, r.output
    assert emu.active_pattern == 1 and PlanStore(env["WULIN_STORE"]).get(h).state == "rolled_back"


def test_faulty_deploy_rolls_back_by_itself(env: dict[str, str], tmp_path: Path) -> None:
    plan = make_plan(greens=(50, 30), offset=7)
    plan.save(tmp_path / "p.json")
    (tmp_path / "e.json").write_text('{"kind": "experiment", "mean_travel_time_s": {"field": 125, "new": 120}}')
    setup_users(env, ("ann", "engineer"), ("bob", "supervisor"))
    as_user(env, "ann", "plan", "propose", str(tmp_path / "p.json"), "--evidence", str(tmp_path / "e.json"))
    as_user(env, "bob", "plan", "approve", plan.short_hash)
    emu: ControllerEmulator = env["_emu"]  # type: ignore[assignment]
    before = dict(emu.db)
    emu.arm("readback-mismatch")
    r = as_user(env, "ann", "plan", "deploy", plan.short_hash, "--activation-timeout", "5",
              "--activation", "schedule")
    assert r.exit_code == 1
    assert "readback differs" in r.output and "rolled back to the snapshot (readback verified)" in r.output
    assert PlanStore(env["WULIN_STORE"]).get(plan.short_hash).state == "rolled_back"
    assert {o: v for o, v in emu.db.items() if emu.spec[o].kind == "P2"} == {
        o: v for o, v in before.items() if emu.spec[o].kind == "P2"}
    r = as_user(env, "ann", "plan", "deploy", plan.short_hash)
    assert isinstance(r.exception, Refused) and "is rolled_back" in str(r.exception)


def test_unknown_device_and_emulator_command(env: dict[str, str], tmp_path: Path) -> None:
    other = make_plan(signal_id="C2")
    other.save(tmp_path / "c2.json")
    setup_users(env, ("ann", "engineer"), ("bob", "supervisor"))
    as_user(env, "ann", "plan", "propose", str(tmp_path / "c2.json"))
    r = as_user(env, "bob", "plan", "approve", other.short_hash)
    assert isinstance(r.exception, Refused) and "unknown device" in str(r.exception)
    # `wulin emulator start` registers one emulator per signal of the network.
    r = wulin(env, "emulator", "start", "--network", "grid", "--port", "26100", "--seconds", "0.5",
              "--signals", "B1,C2", "--fault", "C2=bad-health")
    assert r.exit_code == 0, r.output
    assert "127.0.0.1:26101" in r.output and "bad-health" in r.output
    devices = {d.signal_id: d.port for d in PlanStore(env["WULIN_STORE"]).devices()}
    assert devices == {"B1": 26100, "C2": 26101}
    r = wulin(env, "emulator", "start", "--network", "nowhere", "--seconds", "0.1")
    assert r.exception is not None and "known networks" in str(r.exception)


def test_cli_authenticates_and_only_an_admin_manages_users(env: dict[str, str], tmp_path: Path) -> None:
    from deploy.identity import AuthError
    from sim.errors import WulinError

    setup_users(env, ("ann", "engineer"), ("bob", "supervisor"))
    plan = make_plan(greens=(50, 30))
    plan.save(tmp_path / "p.json")
    r = wulin(env, "plan", "propose", str(tmp_path / "p.json"))
    assert isinstance(r.exception, WulinError) and "log in with --user NAME" in str(r.exception)
    r = wulin(env, "plan", "propose", str(tmp_path / "p.json"), "--user", "ann", "--password-stdin",
              stdin="not-her-password\n")
    assert isinstance(r.exception, AuthError) and "wrong user name or password" in str(r.exception)
    # --user names someone; acting as them needs their password (bob's does not open ann's account).
    r = wulin(env, "plan", "propose", str(tmp_path / "p.json"), "--user", "ann", "--password-stdin",
              stdin=PASSWORDS["bob"] + "\n")
    assert isinstance(r.exception, AuthError)
    r = wulin(env, "plan", "user", "add", "eve", "--role", "supervisor", "--user", "bob", "--password-stdin",
              "--new-password-stdin", stdin=f"{PASSWORDS['bob']}\neve-password\n")
    assert isinstance(r.exception, Refused) and "needs an admin" in str(r.exception)
    r = as_user(env, "bob", "plan", "user", "list")
    assert isinstance(r.exception, WulinError) and "admin role" in str(r.exception)
    r = wulin(env, "plan", "token", "issue", "ann", "--user", "root", "--password-stdin",
              stdin=PASSWORDS["root"] + "\n")
    assert r.exit_code == 0, r.output
    token = r.output.split()[-1]
    r = wulin({**env, "WULIN_TOKEN": token}, "plan", "propose", str(tmp_path / "p.json"))
    assert r.exit_code == 0 and plan.plan_hash() in r.output
    audit = wulin(env, "plan", "audit").output
    assert "login" in audit and "refused" in audit and "user.add" in audit


def test_cli_refuses_approval_of_a_conflicting_plan(env: dict[str, str], tmp_path: Path) -> None:
    from controllers.plan import PlanStage, TimingPlan

    setup_users(env, ("ann", "engineer"), ("bob", "supervisor"))
    ok = make_plan()
    first = PlanStage("ns+x", "GGGgGrrrGGGgrrrr", 40, min_green=10, walk=7, ped_clearance=3)
    bad = TimingPlan(**{**ok.__dict__, "stages": (first, ok.stages[1])})  # type: ignore[arg-type]
    bad.save(tmp_path / "bad.json")
    (tmp_path / "e.json").write_text('{"kind": "experiment"}')
    r = wulin(env, "plan", "validate", str(tmp_path / "bad.json"), "--net", "networks/grid/grid.net.xml")
    assert r.exit_code == 1 and "conflicting links" in r.output
    r = as_user(env, "ann", "plan", "propose", str(tmp_path / "bad.json"), "--evidence", str(tmp_path / "e.json"))
    assert r.exit_code == 0 and "violation" in r.output  # the network was found under networks/
    r = as_user(env, "bob", "plan", "approve", bad.short_hash)
    assert isinstance(r.exception, Refused) and "conflicting links have protected green together" in str(r.exception)


def test_a_mistyped_store_path_is_an_error_not_a_new_store(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "store.sqlite"
    for args in (["plan", "list"], ["plan", "drift"], ["plan", "audit", "--verify"]):
        r = CliRunner().invoke(app, [*args, "--store", str(missing)])
        assert r.exit_code != 0 and "no such file; create it with `wulin plan init" in str(r.exception)
    assert not missing.parent.exists()
