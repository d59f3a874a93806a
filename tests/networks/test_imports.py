"""``wulin network import`` through each source, the folders it writes, and bad input."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from networks.imports import import_network
from sim.errors import WulinError
from sim.scenario import load_scenario, scenario_from_toml
from tests.networks.sources import grid_sources, write_cityflow, write_osm

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("sources")
    found = grid_sources(folder)
    found["osm"] = write_osm(folder / "town.osm")
    found["roadnet"], found["flow"] = write_cityflow(folder)
    return found


@pytest.fixture(scope="module")
def nets(src: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every import path, into one folder of networks outside the repository."""
    out = tmp_path_factory.mktemp("nets")
    import_network(src["sumocfg"], out, "cfg")
    import_network(src["net"], out, "net", demand=[src["flows"]], end="600")
    import_network(src["net"], out, "od", od=src["od"], end="600")
    import_network(src["osm"], out, "osm", end="600", period=3)
    import_network(src["roadnet"], out, "cityflow", demand=[src["flow"]])
    return out


def test_each_source_gives_a_folder_that_works_anywhere(nets: Path, tmp_path: Path) -> None:
    assert sorted(p.name for p in nets.iterdir()) == ["cfg", "cityflow", "net", "od", "osm"]  # no leftovers
    for name in ("cfg", "net", "od", "osm", "cityflow"):
        moved = tmp_path / "elsewhere" / name
        shutil.copytree(nets / name, moved)
        sc = scenario_from_toml(moved / "scenarios" / f"{name}-v1.toml")
        assert sc.network == name and sc.net_file == moved / f"{name}.net.xml"
        assert all(p.is_relative_to(moved) and p.is_file() for p in sc.route_files)
        assert "<tlLogic" in sc.net_file.read_text() and "y" in sc.net_file.read_text().split("<tlLogic")[1][:400]
    cfg = scenario_from_toml(nets / "cfg" / "scenarios" / "cfg-v1.toml")
    assert cfg.sumo_options == (("time-to-teleport", "-1"),) and (cfg.begin, cfg.end) == (0, 600)
    od = (nets / "od" / "demand" / "od.rou.xml").read_text()
    assert od.count("<flow") == 4 and 'from="left0A0" to="B0right0" vehsPerHour="300"' in od
    cityflow = (nets / "cityflow" / "cityflow.net.xml").read_text()
    assert cityflow.count("<connection from=\"n_c\"") == 4  # 2 straight + 1 left + 1 right, as in the roadnet
    assert "<vehicle" in (nets / "osm" / "demand" / "random.rou.xml").read_text()


def test_a_sumocfg_is_a_scenario_directly(src: dict[str, Path]) -> None:
    sc = load_scenario(str(src["sumocfg"]))
    assert sc.id == "city-v1" and sc.end == 600 and dict(sc.sumo_options) == {"time-to-teleport": "-1"}


def _bad(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("case", ["net", "demand", "osm", "cityflow", "flow", "od", "sumocfg"])
def test_bad_input_is_one_line_naming_file_and_field_and_leaves_nothing(
        case: str, src: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    roadnet = json.loads(src["roadnet"].read_text())
    roadnet["roads"][0]["lanes"] = "two"
    flows = json.loads(src["flow"].read_text())
    flows[1]["interval"] = -8
    calls = {
        "net": (lambda: import_network(_bad(tmp_path, "x.net.xml", '<net version="1.9"><edge id="a" from="p" to="q">'
                                            '<lane id="a_0" index="0" speed="9" length="9" shape="0,0 9,0"/></edge></net>'),
                                       out, "x", demand=[src["flows"]], end="600"),
                "x.net.xml: SUMO refused it: Error:"),
        "demand": (lambda: import_network(src["net"], out, "x", end="600", demand=[_bad(
            tmp_path, "d.rou.xml", '<routes><trip id="t1" depart="0" from="left0A0" to="nowhere"/></routes>')]),
                   "d.rou.xml: <trip id='t1'> field 'to' names edge 'nowhere', which is not in the network"),
        "osm": (lambda: import_network(write_osm(tmp_path / "lake.osm", roads=False), out, "x", end="600"),
                "lake.osm: no roads: no <way> has a <tag k=\"highway\">"),
        "cityflow": (lambda: import_network(_bad(tmp_path, "rn.json", json.dumps(roadnet)), out, "x",
                                            demand=[src["flow"]]),
                     "rn.json: field 'roads[0].lanes' must be a list"),
        "flow": (lambda: import_network(src["roadnet"], out, "x", demand=[_bad(tmp_path, "fl.json", json.dumps(flows))]),
                 "fl.json: field 'flows[1].interval' must be > 0"),
        "od": (lambda: import_network(src["net"], out, "x", end="600",
                                      od=_bad(tmp_path, "m.csv", "left0A0,B9,100\n")),
               "m.csv, line 1: field 'destination' names edge 'B9', which is not in the network"),
        "sumocfg": (lambda: import_network(_bad(tmp_path, "c.sumocfg", '<configuration><input><net-file value="grid.net.xml"/>'
                                                '</input></configuration>'), out, "x"),
                    "c.sumocfg: no <route-files value=...>"),
    }
    call, needle = calls[case]
    with pytest.raises(WulinError) as err:
        call()
    message = str(err.value)
    assert needle in message and "\n" not in message, message
    assert not out.exists() or list(out.iterdir()) == []  # nothing half-written


def _wulin(*args: str, nets: Path, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {"COLUMNS": "120", "PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO), "HOME": str(cwd),
           "WULIN_NETWORKS": str(nets)}
    return subprocess.run([sys.executable, "-m", "wulin", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout)


@pytest.mark.slow
def test_cli_import_then_simulate_every_source(src: dict[str, Path], tmp_path: Path) -> None:
    """The CLI writes the folder; simulate runs it with several controllers, and a .sumocfg directly."""
    out = tmp_path / "mine"
    res = _wulin("network", "import", str(src["osm"]), "--out", str(out), "--name", "town", "--end", "600",
                 nets=out, cwd=tmp_path)
    assert res.returncode == 0 and "wulin simulate town-v1 --networks" in res.stdout, res.stderr
    for scenario in ("town-v1", str(src["sumocfg"])):
        for controller in ("field", "max-pressure", "sotl", "webster-online"):
            res = _wulin("simulate", scenario, "-c", controller, nets=out, cwd=tmp_path)
            assert res.returncode == 0 and "Trips finished" in res.stdout, (scenario, controller, res.stderr)


@pytest.mark.slow
def test_cli_compare_plan_and_emulator_on_imported_networks(nets: Path, tmp_path: Path) -> None:
    for sid in ("cfg-v1", "net-v1", "od-v1", "osm-v1", "cityflow-v1"):
        res = _wulin("compare", sid, "--controllers", "fixed-time,max-pressure", "--seeds", "1",
                     "--workers", "1", nets=nets, cwd=tmp_path)
        assert res.returncode == 0 and "max-pressure" in res.stdout, (sid, res.stderr)
        plans = tmp_path / sid
        res = _wulin("plan", "webster", sid, "--out", str(plans), nets=nets, cwd=tmp_path)
        assert res.returncode == 0, (sid, res.stdout, res.stderr)
        res = _wulin("plan", "validate", str(plans / "plans.json"), "--net", sid.removesuffix("-v1"),
                     nets=nets, cwd=tmp_path)
        assert res.returncode == 0 and "valid" in res.stdout, (sid, res.stdout)
    res = _wulin("emulator", "start", "--network", "osm", "--seconds", "1", "--no-register", "--port", "17400",
                 nets=nets, cwd=tmp_path)
    assert res.returncode == 0 and "NTCIP emulators for osm" in res.stdout, res.stdout + res.stderr


@pytest.mark.slow
def test_cli_evaluate_a_policy_on_an_imported_network(nets: Path, tmp_path: Path) -> None:
    from agents.config import config_from_dict
    from agents.train import train

    cfg = config_from_dict({"name": "tiny", "scenario": "cityflow-v1", "algorithm": "ppo", "n_envs": 1,
                            "subprocess": False, "seed": 0, "checkpoint_every": 128,
                            "env": {"episode_seconds": 160},
                            "algo": {"n_steps": 32, "batch_size": 64, "n_epochs": 1},
                            "policy": {"net_arch": [16]}}, "tiny.toml")
    run = tmp_path / "run"
    os.environ["WULIN_NETWORKS"] = str(nets)
    try:
        train(cfg, run, total_timesteps=64, progress=False)
    finally:
        del os.environ["WULIN_NETWORKS"]
    res = _wulin("evaluate", str(run), "--scenario", str(nets / "cityflow" / "scenarios" / "cityflow-v1.toml"),
                 "--seeds", "1", "--baselines", "max-pressure", "--workers", "1", nets=nets, cwd=tmp_path)
    assert res.returncode == 0 and "policy" in res.stdout, res.stderr
    assert (run / "eval-cityflow-v1.csv").is_file()


IMPORTED = ("cfg", "net", "od", "osm", "cityflow")


@pytest.mark.slow
@pytest.mark.parametrize("name", IMPORTED)
def test_every_controller_and_both_envs_run_on_each_imported_network(nets: Path, name: str) -> None:
    """Straight from the imported folder (outside the repository): every controller's episode
    counts every vehicle due, and both environments pass their API checkers."""
    from gymnasium.utils.env_checker import check_env
    from pettingzoo.test import parallel_api_test

    from controllers.base import available_controllers
    from experiments.episode import run_episode
    from sim.env import WulinEnv, WulinParallelEnv, district_layout
    from sim.kpi import summarise

    sc = scenario_from_toml(nets / name / "scenarios" / f"{name}-v1.toml")
    for controller in available_controllers():
        if controller == "policy":  # needs a trained run: test_cli_evaluate_a_policy_on_an_imported_network
            continue
        result = run_episode(sc, controller, seed=1)
        summary = summarise(result.trips)
        assert 0 < summary["trips"] <= result.network["loaded"], (name, controller)
        assert summary["finished"] + summary["unfinished"] == summary["trips"], (name, controller)
        assert math.isfinite(summary["mean_time_loss"]) and summary["mean_time_loss"] >= 0, (name, controller)
    first = district_layout(sc).signal_ids[0]
    env = WulinEnv(sc, signals=first, config={"episode_seconds": 120})
    try:
        check_env(env, skip_render_check=True)
    finally:
        env.close()
    penv = WulinParallelEnv(sc, config={"episode_seconds": 120})
    try:
        parallel_api_test(penv, num_cycles=20)
        assert len(penv.possible_agents) >= 1
    finally:
        penv.close()
