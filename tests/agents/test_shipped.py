"""The trained Wulin policy shipped in the repository: found by name, checked, and run."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from agents.shipped import SHIPPED, resolve_run, shipped_policies
from sim.errors import WulinError

NAME = "wulin-am-peak-ppo"
V2 = "wulin-am-peak-ppo-v2"  # time-loss reward, approach + upstream + type observation


@pytest.mark.parametrize("name", [NAME, V2])
def test_the_wulin_policy_ships_with_its_provenance(name: str) -> None:
    assert name in shipped_policies()
    folder = SHIPPED / name
    assert {p.name for p in folder.iterdir()} == {"model.zip", "run.json", "provenance.json"}
    assert sum(p.stat().st_size for p in folder.iterdir()) < 1_000_000  # small: inference only
    prov = json.loads((folder / "provenance.json").read_text())
    for key in ("training_command", "git_commit", "total_timesteps", "training_seed",
                "evaluation_seeds", "model_sha256"):
        assert prov[key], key
    from sim.provenance import file_sha256

    assert prov["model_sha256"] == file_sha256(folder / "model.zip")
    assert json.loads((folder / "run.json").read_text())["config"]["scenario"] == "wulin-am-peak-v1"


def test_policy_names_resolve_to_a_run_folder_or_a_shipped_policy(tmp_path: Path) -> None:
    assert resolve_run(NAME) == SHIPPED / NAME
    assert resolve_run(SHIPPED / NAME) == SHIPPED / NAME
    with pytest.raises(WulinError, match=f"nor a shipped policy \\(shipped: .*{NAME}"):
        resolve_run("no-such-policy")
    with pytest.raises(WulinError, match="not a run folder"):
        resolve_run(tmp_path)


def test_policy_colon_name_is_a_controller_name_for_experiments() -> None:
    from experiments.compare import comparison_spec

    spec = comparison_spec("wulin-am-peak-v1", [f"policy:{NAME}", "actuated"], [1])
    assert spec.controllers[0] == f"policy:{NAME}"
    assert spec.runs()[0].run_id == f"wulin-am-peak-v1--base--policy_{NAME}--s1"
    with pytest.raises(WulinError, match="nor a shipped policy"):
        comparison_spec("wulin-am-peak-v1", ["policy:nope"], [1])
    with pytest.raises(WulinError, match="only policy take a ':VALUE'"):
        comparison_spec("wulin-am-peak-v1", ["sotl:x"], [1])
    path_spec = comparison_spec("wulin-am-peak-v1", [f"policy:{SHIPPED / NAME}"], [1])
    assert not set("/:") & set(path_spec.runs()[0].run_id)  # no sub-folder, no host:port


def test_a_changed_model_is_refused(tmp_path: Path) -> None:
    from controllers.base import make_controller

    copy = tmp_path / NAME
    shutil.copytree(SHIPPED / NAME, copy)
    with (copy / "model.zip").open("ab") as fh:
        fh.write(b"x")
    with pytest.raises(WulinError, match="differs from the .* in provenance.json"):
        make_controller(f"policy:{copy}")


def test_the_v2_policy_reads_approaching_vehicles_and_bounds_red() -> None:
    from controllers.base import make_controller

    ctl = make_controller(f"policy:{V2}", max_red=120)
    assert "approach" in ctl.state_fields and ctl.max_red == 120.0
    assert make_controller(f"policy:{V2}").max_red == 0.0  # the training config's: no limit
    for bad in (float("nan"), -1, "two minutes"):
        with pytest.raises(WulinError, match="max_red"):
            make_controller(f"policy:{V2}", max_red=bad)


@pytest.mark.slow
@pytest.mark.parametrize("name, params", [(NAME, {}), (V2, {"max_red": 120})])
def test_the_shipped_policy_runs_an_episode_on_wulin(name: str, params: dict) -> None:
    """Loads without training and runs ten minutes of the AM peak through the episode loop."""
    from controllers.base import make_controller
    from experiments.episode import run_episode
    from sim.scenario import load_scenario

    sc = load_scenario("wulin-am-peak-v1")
    short = replace(sc, end=sc.begin + 600, warmup=120)
    ctl = make_controller(f"policy:{name}", **params)
    assert ctl.name == f"policy:{name}"
    res = run_episode(short, ctl, seed=1)
    assert res.decisions > 50 and len(res.trips) > 100
    assert res.trips["time_loss"].notna().all()
