"""``wulin evaluate``: the policy and baselines through the experiment runner."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from agents.config import config_from_dict

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_cli_evaluate_with_a_scenario_path(tiny_scenario, tmp_path: Path) -> None:
    """A scenario given as a path: output names come from its id (this crashed before)."""
    from agents.train import train

    cfg = config_from_dict({"name": "tiny", "scenario": str(tiny_scenario.source), "algorithm": "ppo",
                            "n_envs": 1, "subprocess": False, "seed": 0, "checkpoint_every": 128,
                            "env": {"episode_seconds": 160},
                            "algo": {"n_steps": 32, "batch_size": 64, "n_epochs": 1},
                            "policy": {"net_arch": [16]}}, "tiny.toml")
    run = tmp_path / "run"
    train(cfg, run, total_timesteps=64, progress=False)
    res = subprocess.run(
        [sys.executable, "-m", "wulin", "evaluate", str(run), "--scenario", str(tiny_scenario.source),
         "--seeds", "2", "--baselines", "field", "--workers", "1", "--out", str(tmp_path / "exp")],
        capture_output=True, text=True, cwd=tmp_path,
        env={"COLUMNS": "100", "PATH": "", "PYTHONPATH": str(REPO)})
    assert res.returncode == 0, res.stderr
    assert "mean ± 95 % CI over seeds" in res.stdout and "policy" in res.stdout
    csv = run / "eval-tiny-test-v1.csv"
    df = pd.read_csv(csv)
    assert sorted(zip(df["controller"], df["seed"], strict=True)) == [
        ("field", 1), ("field", 2), ("policy", 1), ("policy", 2)]
    assert {"mean_time_loss", "mean_time_loss_finished", "resco_delay", "flag"} <= set(df.columns)
    assert (tmp_path / "exp" / "runs.parquet").is_file()
