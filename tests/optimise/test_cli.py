"""``wulin plan optimise`` end to end on the tiny grid: outputs, bad inputs, kill and resume."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controllers.plan import TimeOfDaySchedule, TimingPlan, load_plans
from sim.scenario import Scenario

REPO = Path(__file__).resolve().parents[2]
FAST = ["--seeds", "1", "--demand-factors", "1.0", "--generations", "2", "--popsize", "4",
        "--min-cycle", "30", "--max-cycle", "120", "--no-distill", "--no-verify", "--workers", "1"]


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from wulin.cli import main

    code = 0
    try:
        main(args)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err.replace("\n", " ")


def test_outputs_are_checked_plans_and_schedules(tiny_scenario: Scenario, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    code, text, err = _cli(["plan", "optimise", str(tiny_scenario.source), "--periods", "P=00:01-00:10",
                            "--out", str(out), *FAST], capsys)
    assert code == 0, err
    assert "screen best" in text
    plans = {p.stem: TimingPlan.load(p) for p in (out / "plans" / "P").glob("*.json")}
    current = {p.stem: TimingPlan.load(p) for p in (out / "plans" / "current").glob("*.json")}
    assert set(plans) == set(current) == {"A0", "A1", "B0", "B1"}
    for sid, plan in plans.items():
        assert plan.source.startswith("optimise")
        sch = TimeOfDaySchedule.from_json((out / "schedules" / f"{sid}.json").read_text())
        assert sch.entries == (("00:00", current[sid].plan_hash()), ("00:01", plan.plan_hash()),
                               ("00:10", current[sid].plan_hash()))
    assert [p.plan_hash() for p in load_plans(out / "P" / "optimised.json")] == \
        [plans[p.signal_id].plan_hash() for p in load_plans(out / "P" / "optimised.json")]
    assert (out / "P" / "convergence.png").read_bytes()[:4] == b"\x89PNG"
    changes = (out / "P" / "changes.md").read_text()
    assert "| A0 |" in changes
    doc = json.loads((out / "P" / "result.json").read_text())
    assert doc["generations"] == 2 and set(doc["warm_starts"]) == {
        "webster", "current", "webster-min4-c100", "webster-min4-c90", "webster-min4-c80"}
    # the main corridors: bandwidth table, diagrams linked from changes.md, the terminal line
    pngs = sorted(p.name for p in (out / "P").glob("time_space_*.png"))
    assert pngs and all(f"]({name})" in changes for name in pngs)
    assert "through bandwidth at the speed limit" in changes and "through bandwidth" in text
    assert doc["bandwidth"] and all(f"| {b['corridor']} | {b['heading']} |" in changes for b in doc["bandwidth"])


@pytest.mark.parametrize(("args", "needle"), [
    (["--periods", "P=00:01-00:20"], "outside scenario tiny-test-v1's window 00:00-00:10"),
    (["--periods", "P=00:05-00:01"], "must be after the start"),
    (["--periods", "morning"], "is not NAME=HH:MM-HH:MM"),
    (["--periods", "P=00:01-00:05,Q=00:04-00:08"], "overlap"),
    (["--periods", "P=00:01-00:10", "--signals", "A0,Z9"], "'Z9' not in the network"),
    (["--periods", "P=00:01-00:10", "--min-green", "60"], "above the maximum cycle 120 s"),
    (["--periods", "P=00:01-00:10", "--held-out-seeds", "1"], "overlap the search seeds"),
    (["--periods", "P=00:01-00:10", "--demand-factors", "1,x"], "not a comma-separated list"),
])
def test_bad_inputs_are_one_error_line(tiny_scenario: Scenario, tmp_path: Path, args: list[str], needle: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(["plan", "optimise", str(tiny_scenario.source), "--out", str(tmp_path / "o"),
                         *FAST, *args], capsys)
    assert code == 2
    assert needle in err
    assert "Traceback" not in err


def test_existing_run_needs_resume(tiny_scenario: Scenario, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    args = ["plan", "optimise", str(tiny_scenario.source), "--periods", "P=00:01-00:10",
            "--out", str(tmp_path / "o"), *FAST]
    assert _cli(args, capsys)[0] == 0
    before = (tmp_path / "o" / "P" / "search.ckpt").read_bytes()
    code, _, err = _cli(args, capsys)
    assert code == 2 and "continue it with --resume" in err
    assert (tmp_path / "o" / "P" / "search.ckpt").read_bytes() == before  # nothing lost
    assert _cli([*args, "--resume"], capsys)[0] == 0


@pytest.mark.slow
def test_sigkill_then_resume_finishes_the_generations(tiny_scenario: Scenario, tmp_path: Path) -> None:
    """A real SIGKILL between generations; ``--resume`` continues from the checkpoint."""
    out = tmp_path / "o"
    args = [sys.executable, "-m", "wulin", "plan", "optimise", str(tiny_scenario.source), "--periods",
            "P=00:01-00:10", "--out", str(out), *FAST[:4], "--generations", "400", "--popsize", "4",
            "--min-cycle", "30", "--max-cycle", "120", "--no-distill", "--no-verify", "--workers", "1"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt = out / "P" / "search.ckpt"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if ckpt.exists() and pickle.loads(ckpt.read_bytes()).generation >= 3:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = pickle.loads(ckpt.read_bytes()).generation
    assert 3 <= done < 400
    args[args.index("400")] = str(done + 2)
    res = subprocess.run([*args, "--resume"], env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    state = pickle.loads(ckpt.read_bytes())
    assert state.generation == done + 2
    assert [h["generation"] for h in state.history] == list(range(done + 3))


@pytest.mark.slow
def test_sumo_verification_and_held_out_comparison(tiny_scenario: Scenario, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Candidates verified in SUMO, the kept one compared on a held-out seed with field, webster
    and actuated in one experiment, its report written."""
    out = tmp_path / "o"
    fast = [a for a in FAST if a != "--no-verify"]
    code, text, err = _cli(["plan", "optimise", str(tiny_scenario.source), "--periods", "P=00:01-00:10",
                            "--out", str(out), *fast, "--held-out-seeds", "7"], capsys)
    assert code == 0, err
    doc = json.loads((out / "P" / "result.json").read_text())
    assert set(doc["sumo_verify"]) >= {"screen-best", "webster"}
    assert doc["chosen"] == min(doc["sumo_verify"], key=doc["sumo_verify"].get)
    assert set(doc["held_out"]) == {"field", "webster", "actuated", "fixed-time"}
    assert all(v["count"] == 1 and v["mean"] > 0 for v in doc["held_out"].values())
    assert Path(doc["report"]).is_file()
    assert "held-out mean time loss" in " ".join(text.split())
