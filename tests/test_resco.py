"""The RESCO benchmark: catalogue, generated scenarios and experiments, the table, the CLI.

Tests that need the maps skip cleanly when sumo-rl (the `[benchmarks]` extra) is absent.
"""

from __future__ import annotations

import importlib.util
import math

import pandas as pd
import pytest

from experiments import resco, resco_table
from sim.errors import WulinError

needs_maps = pytest.mark.skipif(importlib.util.find_spec("sumo_rl") is None,
                                reason="sumo-rl (the [benchmarks] extra) not installed")


def test_catalogue_holds_resco_settings():
    assert set(resco.MAPS) == {"grid4x4", "arterial4x4", "cologne1", "cologne3", "cologne8",
                               "ingolstadt1", "ingolstadt7", "ingolstadt21"}
    assert all(m.end - m.begin == 3600 for m in resco.MAPS.values())
    assert resco.MAPS["cologne8"].begin == 25200 and resco.MAPS["ingolstadt21"].begin == 57600
    art = resco.MAPS["arterial4x4"]
    assert (art.decision, art.yellow) == (5.0, 2.0)
    assert (resco.MAPS["grid4x4"].decision, resco.MAPS["grid4x4"].yellow) == (10.0, 3.0)
    params = resco.controller_params(art, ("field", "max-pressure", "sotl"))
    assert "field" not in params  # the map's own programs keep their own yellows
    assert params["max-pressure"] == {"decision_interval": 5.0, "min_green": 5.0,
                                      "yellow": 2.0, "all_red": 0.0}


def test_missing_sumo_rl_is_one_error(monkeypatch):
    monkeypatch.setattr(resco.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(WulinError, match=r"sumo-rl.*\[benchmarks\]"):
        resco.nets_dir()


def test_unknown_names_are_one_error():
    with pytest.raises(WulinError, match="--maps: unknown RESCO map 'paris'"):
        resco.check_choice(("paris",), ("field",), ["field"])
    with pytest.raises(WulinError, match="--controllers: unknown controller 'magic'"):
        resco.check_choice(("cologne1",), ("magic",), ["field"])


@needs_maps
def test_prepare_writes_loadable_scenarios_and_experiments(tmp_path, monkeypatch):
    from experiments.spec import load_spec
    from sim.scenario import scenario_from_toml

    specs = resco.prepare(tmp_path, ("cologne1", "arterial4x4"), ("field", "max-pressure"), (1, 2, 3))
    sc = scenario_from_toml(tmp_path / "networks" / "resco-cologne1" / "scenarios" / "resco-cologne1-v1.toml")
    assert (sc.begin, sc.end, sc.warmup) == (25200, 28800, 0)
    assert dict(sc.sumo_options)["time-to-teleport"] == "-1"
    assert sc.net_file.is_relative_to(resco.nets_dir())  # read in place, never copied
    assert not list(tmp_path.rglob("*.xml"))
    monkeypatch.setenv("WULIN_NETWORKS", str(tmp_path / "networks"))
    spec = load_spec(specs["arterial4x4"])
    assert spec.seeds == (1, 2, 3) and spec.scenarios == ("resco-arterial4x4-v1",)
    assert spec.controller_params["max-pressure"]["decision_interval"] == 5


def test_table_cells(tmp_path, monkeypatch):
    exp = tmp_path / "resco-cologne1"
    (exp / "runs").mkdir(parents=True)
    (exp / "runs" / "resco-cologne1-v1--base--sotl--s1.error.txt").write_text(
        "Traceback ...\nWulinError: link index 0 is unused\n")
    runs = pd.DataFrame({"controller": ["field"] * 3 + ["max-pressure"],
                         "resco_delay": [10.0, 12.0, 14.0, 20.0]})
    monkeypatch.setattr(resco_table, "collect", lambda out: runs)
    cells = resco_table.map_cells(exp, ["field", "max-pressure", "sotl", "webster"])
    half = 2.0 * 4.302652729911275 / math.sqrt(3)  # t(0.975, 2) * sd / sqrt(n)
    assert cells["field"] == f"12.0 ± {half:.1f}"
    assert cells["max-pressure"] == "20.0 (1 seed)"
    assert cells["sotl"] == "fails: WulinError: link index 0 is unused"
    assert cells["webster"] == "not run"
    table = resco_table.markdown_table(tmp_path, ["cologne1", "grid4x4"], ["field"])
    # the published columns: figures read off RESCO's plot, marked as such; none invented
    assert "| grid4x4 | not run | off plot | ≈34 | ≈34 | ≈44 | ≈48 | ≈100 |" in table
    assert table.splitlines()[0] == ("| map | field | Fixed (pub.) | MaxPressure (pub.) | IDQN (pub.) | "
                                     "IPPO (pub.) | MPLight (pub.) | FMA2C (pub.) |")
    monkeypatch.setattr(resco_table, "PUBLISHED", {})
    assert "| grid4x4 | not run | not found |" in resco_table.markdown_table(tmp_path, ["grid4x4"], ["field"])


@needs_maps
@pytest.mark.slow
def test_cli_runs_a_map_and_resumes(tmp_path):
    from typer.testing import CliRunner

    from wulin.cli import app

    args = ["benchmark", "resco", "--out", str(tmp_path), "--maps", "cologne1",
            "--controllers", "field,max-pressure", "--seeds", "2", "--workers", "1"]  # report on
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    table = (tmp_path / "table.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| cologne1"))
    assert "±" in row and "not run" not in row
    runs = pd.read_parquet(tmp_path / "results" / "resco-cologne1" / "runs.parquet")
    assert len(runs) == 4 and (runs["teleports"] == 0).all()
    assert (tmp_path / "results" / "resco-cologne1" / "report.html").is_file()
    again = CliRunner().invoke(app, args)  # resumable: nothing left to run, same table
    assert again.exit_code == 0 and (tmp_path / "table.md").read_text() == table
