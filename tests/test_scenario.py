"""Scenario loading and every bad input the user can give."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.errors import WulinError
from sim.scenario import (
    format_clock,
    list_scenarios,
    load_scenario,
    parse_clock,
    scenario_from_toml,
)


def _write(folder: Path, sid: str, body: str) -> Path:
    (folder / "scenarios").mkdir(parents=True, exist_ok=True)
    (folder / "net.net.xml").write_text("<net/>")
    (folder / "r.rou.xml").write_text("<routes/>")
    p = folder / "scenarios" / f"{sid}.toml"
    p.write_text(body)
    return p


GOOD = 'net = "net.net.xml"\nroutes = ["r.rou.xml"]\nbegin = "07:00"\nend = "08:00"\nwarmup = 300\n'


def test_grid_scenario_loads_with_absolute_paths() -> None:
    sc = load_scenario("grid-am-v1")
    assert sc.id == "grid-am-v1" and sc.network == "grid"
    assert sc.begin == 7 * 3600 and sc.end == 8 * 3600 and sc.warmup == 300
    assert sc.net_file.is_absolute() and sc.net_file.is_file()
    assert sc.measure_begin == sc.begin + 300
    assert "grid-am-v1" in [s.id for s in list_scenarios()]


def test_good_toml_and_defaults(tmp_path: Path) -> None:
    sc = scenario_from_toml(_write(tmp_path, "x-am-v2", GOOD))
    assert sc.step_length == 1.0 and sc.scale == 1.0 and sc.additional_files == ()
    with pytest.raises(AttributeError):
        sc.begin = 0  # type: ignore[misc]  # frozen


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("net = [", "invalid TOML"),
        (GOOD.replace('net = "net.net.xml"\n', ""), "field 'net' is missing"),
        (GOOD.replace("net.net.xml", "nope.net.xml"), "field 'net': 'nope.net.xml' not found"),
        (
            GOOD.replace('["r.rou.xml"]', '["gone.rou.xml"]'),
            "field 'routes': file 'gone.rou.xml' not found",
        ),
        (GOOD.replace('["r.rou.xml"]', "[]"), "field 'routes' is empty"),
        (GOOD.replace('"08:00"', '"06:00"'), "field 'end'"),
        (GOOD.replace('"07:00"', '"7 am"'), "field 'begin'"),
        (GOOD.replace("warmup = 300", "warmup = -5"), "field 'warmup'"),
        (GOOD.replace("warmup = 300", "warmup = 4000"), "field 'warmup'"),
        (GOOD + "step_length = 0\n", "field 'step_length'"),
        (GOOD + "step_length = 0.0005\n", "field 'step_length' must be whole milliseconds"),
        (GOOD + "scale = -1\n", "field 'scale'"),
        (GOOD + "colour = 'red'\n", "unknown field(s) colour"),
    ],
)
def test_bad_toml_names_file_and_field(tmp_path: Path, body: str, needle: str) -> None:
    path = _write(tmp_path, "bad-test-v1", body)
    with pytest.raises(WulinError) as err:
        scenario_from_toml(path)
    assert needle in str(err.value)
    assert str(path) in str(err.value)


def test_unversioned_id_rejected(tmp_path: Path) -> None:
    with pytest.raises(WulinError, match="versioned id"):
        scenario_from_toml(_write(tmp_path, "noversion", GOOD))


def test_unknown_id_suggests_and_lists() -> None:
    with pytest.raises(WulinError) as err:
        load_scenario("grid-am-v7")
    assert "did you mean grid-am-v1" in str(err.value) and "wulin scenarios" in str(err.value)


def test_missing_file_path() -> None:
    with pytest.raises(WulinError, match="file not found"):
        load_scenario("/nonexistent/x-v1.toml")


def test_clock_round_trip() -> None:
    assert parse_clock("07:30", "t") == 27000
    assert parse_clock("07:30:15", "t") == 27015
    assert parse_clock(90, "t") == 90
    assert format_clock(27000) == "07:30"
    for bad in ("25:99", True, -1, "x"):
        with pytest.raises(WulinError):
            parse_clock(bad, "t")


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (GOOD.replace("warmup = 300", "warmup = nan"), "line 5: field 'warmup': nan is not a finite number"),
        (GOOD.replace('"07:00"', "-5"), "line 3: field 'begin': expected a time"),
        (GOOD.replace('"08:00"', '"49:00"'), "line 4: field 'end': expected a time"),
        (GOOD.replace("warmup = 300", "warmup = " + "9" * 400), "field 'warmup': the integer is too large"),
        (GOOD.replace('net = "net.net.xml"', 'net = "r.rou.xml"'),
         "line 1: field 'net': 'r.rou.xml' is not a SUMO net file (its root element is <routes>"),
        (GOOD.replace('["r.rou.xml"]', '["net.net.xml"]'), "is not a SUMO routes file"),
        (GOOD + 'description = "' + "x" * 5000 + '"\n', "field 'description'"),
        (GOOD + "scale = inf\n", "field 'scale': inf is not a finite number"),
        (GOOD + "step_length = true\n", "field 'step_length' must be a number"),
    ],
)
def test_non_finite_out_of_range_and_wrong_kind(tmp_path: Path, body: str, needle: str) -> None:
    path = _write(tmp_path, "bad-test-v1", body)
    with pytest.raises(WulinError) as err:
        scenario_from_toml(path)
    assert str(err.value).startswith(str(path)) and needle in str(err.value)


def test_night_scenario_runs_past_midnight(tmp_path: Path) -> None:
    sc = scenario_from_toml(_write(tmp_path, "night-v1", GOOD.replace('"07:00"', '"23:00"').replace('"08:00"', '"25:00"')))
    assert (sc.begin, sc.end) == (23 * 3600, 25 * 3600)


def test_folder_or_non_utf8_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "enc-v1", GOOD)
    path.write_bytes(GOOD.encode() + b"description = '\xe9'\n")
    with pytest.raises(WulinError, match="not UTF-8 text"):
        scenario_from_toml(path)
    folder = tmp_path / "scenarios" / "dir-v1.toml"
    folder.mkdir()
    with pytest.raises(WulinError, match="is a folder"):
        scenario_from_toml(folder)


def test_paths_resolve_from_the_toml_anywhere_on_disk(tmp_path: Path) -> None:
    """A TOML names files relative to itself, in any folder; the legacy layout still loads."""
    (tmp_path / "nets").mkdir()
    (tmp_path / "nets" / "city.net.xml").write_text("<net/>")
    (tmp_path / "r.rou.xml").write_text("<routes/>")
    toml = tmp_path / "x-am-v1.toml"
    toml.write_text(GOOD.replace("net.net.xml", "nets/city.net.xml"))
    sc = scenario_from_toml(toml)
    assert sc.net_file == (tmp_path / "nets" / "city.net.xml").resolve()
    assert sc.network == "nets" and sc.route_files == ((tmp_path / "r.rou.xml").resolve(),)
    legacy = _write(tmp_path / "old", "y-am-v1", GOOD)  # names files from the folder above
    assert scenario_from_toml(legacy).net_file == (tmp_path / "old" / "net.net.xml").resolve()


def test_sumo_options_pass_through_to_sumo(tmp_path: Path) -> None:
    from sim.simulation import Simulation

    body = (GOOD + '[sumo_options]\ntime-to-teleport = -1\ncollision.action = "teleport"\n'
            'mesosim = true\nignore-route-errors = true\n')
    sc = scenario_from_toml(_write(tmp_path, "x-am-v1", body))
    assert sc.sumo_options == (("time-to-teleport", "-1"), ("collision.action", "teleport"),
                               ("mesosim", "true"), ("ignore-route-errors", "true"))
    args = Simulation(sc, seed=1, extra_args=["--ignore-route-errors", "false"]).sumo_args()
    pairs = dict(zip(args[::2], args[1::2], strict=False))
    assert pairs["--time-to-teleport"] == "-1" and pairs["--collision.action"] == "teleport"
    assert pairs["--mesosim"] == "true" and pairs["--collision.check-junctions"] == "false"
    assert args.count("--ignore-route-errors") == 1  # the caller's own choice wins, once


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        ("time-to-teleprt = 5", "field 'sumo_options.time-to-teleprt' is not an option of SUMO; "
                                "did you mean 'time-to-teleport'?"),
        ("net-file = \"x.net.xml\"", "field 'sumo_options.net-file' is set by the engine, not here: set 'net'"),
        ("tripinfo-output = \"t.xml\"", "is set by the engine, not here: the engine writes tripinfo"),
        ("seed = 4", "the run's seed is given per run"),
        ("mesosim = 1", "field 'sumo_options.mesosim' must be true or false, got 1"),
        ("time-to-teleport = \"never\"", "field 'sumo_options.time-to-teleport' must be a number"),
        ("collision.action = true", "field 'sumo_options.collision.action' must be str, got True"),
    ],
)
def test_bad_sumo_options_name_file_line_and_field(tmp_path: Path, table: str, needle: str) -> None:
    p = _write(tmp_path, "x-am-v1", GOOD + "[sumo_options]\n" + table + "\n")
    with pytest.raises(WulinError) as err:
        scenario_from_toml(p)
    assert f"{p}, line 7: " in str(err.value) and needle in str(err.value)
