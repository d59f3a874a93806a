"""The shared configuration layer: one clock parser, safe file reading, typed-model errors."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from sim.clock import SIM_LATEST, TIME_OF_DAY_LATEST, parse_clock
from sim.config import ConfigModel, Int, Number, validate
from sim.errors import WulinError
from sim.files import check_writable_dir, load_json, load_toml, parse_json, parse_toml, toml_line


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("07:30", 27000.0), ("7:30", 27000.0), ("07:30:15", 27015.0), (90, 90.0), (0, 0.0),
     ("23:00", 82800.0), ("25:30", 91800.0), ("48:00", SIM_LATEST), (" 08:00 ", 28800.0)],
)
def test_clock_accepts_times_up_to_the_next_day(value: object, seconds: float) -> None:
    assert parse_clock(value, "t") == seconds


@pytest.mark.parametrize(
    "value", [-1, -0.5, "-01:00", math.nan, math.inf, True, None, "7am", "07:60", "07:00:60",
              "48:01", SIM_LATEST + 1, "1" * 500, [7, 0]],
)
def test_clock_refuses_negative_non_finite_and_malformed(value: object) -> None:
    with pytest.raises(WulinError, match="t: expected a time"):
        parse_clock(value, "t")


def test_time_of_day_stops_before_midnight() -> None:
    assert parse_clock("23:59:59", "t", latest=TIME_OF_DAY_LATEST) == TIME_OF_DAY_LATEST
    with pytest.raises(WulinError, match="00:00-23:59:59"):
        parse_clock("24:00", "t", latest=TIME_OF_DAY_LATEST)


def test_every_layer_uses_the_one_parser() -> None:
    import controllers.plan
    import sim.scenario
    from sim import clock

    assert controllers.plan.parse_clock is clock.parse_clock
    assert sim.scenario.parse_clock is clock.parse_clock


def test_file_kind_and_encoding(tmp_path: Path) -> None:
    with pytest.raises(WulinError, match="is a folder, not a scenario file"):
        load_toml(tmp_path, "scenario file")
    with pytest.raises(WulinError, match="not found; check the path"):
        load_toml(tmp_path / "nope.toml")
    bad = tmp_path / "latin1.toml"
    bad.write_bytes("name = 'Wulin Plaza — caf\xe9'\n".encode("latin-1", "replace"))
    with pytest.raises(WulinError, match=r"not UTF-8 text .*save the file as UTF-8"):
        load_toml(bad)
    big = tmp_path / "big.json"
    big.write_text("[" + "0," * 5_000_000 + "0]")
    with pytest.raises(WulinError, match="too large"):
        load_json(big)


@pytest.mark.parametrize(
    ("text", "needle"),
    [("a = " + "[" * 300 + "]" * 300, "nested more than"),
     ("a = " + "[" * 40 + "]" * 40, "nested more than"),
     ("a = " + "9" * 400, "too large"),
     ("a = nan", "not a finite number"),
     ("a = -inf", "not a finite number"),
     ('a = "' + "x" * 20_000 + '"', "too long"),
     ("a = [", "invalid TOML")],
)
def test_toml_limits(text: str, needle: str) -> None:
    with pytest.raises(WulinError, match=needle):
        parse_toml(text, "f.toml")


@pytest.mark.parametrize(
    ("text", "needle"),
    [("[" * 5000 + "]" * 5000, "nested more than"), ('{"a": NaN}', "finite"),
     ('{"a": 1e999}', "finite"), ('{"a": ' + "9" * 400 + "}", "too large"), ("{", "not valid JSON")],
)
def test_json_limits(text: str, needle: str) -> None:
    with pytest.raises(WulinError, match=needle):
        parse_json(text, "f.json")


def test_line_of_a_field_in_nested_tables() -> None:
    text = ('name = "x"\n[[variations]]\nname = "a"\n[[variations]]\nname = "b"\n'
            '[[variations.closures]]\nedges = ["e"]\nat = "07:00"\n[params.sotl]\ntheta = 3\n')
    assert toml_line(text, ("name",)) == 1
    assert toml_line(text, ("variations", 1, "name")) == 5
    assert toml_line(text, ("variations", 1, "closures", 0, "at")) == 8
    assert toml_line(text, ("params", "sotl", "theta")) == 10


class _Doc(ConfigModel):
    count: Int
    share: Number = 0.5


@pytest.mark.parametrize(
    ("data", "needle"),
    [({}, "field 'count' is missing"), ({"count": "3"}, "field 'count' must be an integer, got '3'"),
     ({"count": True}, "field 'count' must be an integer"), ({"count": 1, "share": True}, "field 'share' must be a number"),
     ({"count": 1, "cuont": 1}, "line 2: unknown field(s) cuont; did you mean 'count'?"),
     ({"count": 1, "share": math.nan}, "field 'share': nan is not a finite number")],
)
def test_model_errors_name_file_line_and_field(data: dict, needle: str) -> None:
    text = "count = 1\ncuont = 1\n"
    with pytest.raises(WulinError) as err:
        validate(_Doc, data, "doc.toml", text=text)
    assert str(err.value).startswith("doc.toml") and needle in str(err.value)


def test_models_are_frozen() -> None:
    doc = validate(_Doc, {"count": 2}, "doc.toml")
    with pytest.raises(Exception, match="frozen"):
        doc.count = 3  # type: ignore[misc]


def test_unwritable_output_folder(tmp_path: Path) -> None:
    assert check_writable_dir(tmp_path / "new" / "deep") == tmp_path / "new" / "deep"
    (tmp_path / "file").write_text("x")
    with pytest.raises(WulinError, match="is a file, not a folder"):
        check_writable_dir(tmp_path / "file")
    with pytest.raises(WulinError, match="cannot write there"):  # a file in the path (works as root too)
        check_writable_dir(tmp_path / "file" / "sub")


@pytest.mark.parametrize(
    ("bad", "needle"),
    [({"delta_t": 0}, "field 'delta_t' must be > 0"), ({"reward": "nope"}, "unknown reward 'nope'"),
     ({"observation": ["queue", "nope"]}, "unknown observation 'nope'"),
     ({"action_mode": "phase"}, "field 'action_mode' must be one of stage, splits"),
     ({"min_green": 10, "max_green": 5}, "field 'max_green' must be >= 'min_green'"),
     ({"colour": 1}, "unknown field(s) colour"), ({"cycle": math.nan}, "field 'cycle': nan is not a finite number"),
     ({"yellow": True}, "field 'yellow' must be a number"), ({"observation": []}, "field 'observation'")],
)
def test_env_config_errors_name_the_field(bad: dict, needle: str) -> None:
    from sim.env_config import EnvConfig

    with pytest.raises(WulinError) as err:
        EnvConfig.from_dict(bad, where="run.toml: [env]")
    assert str(err.value).startswith("run.toml: [env]: ") and needle in str(err.value)


def test_env_config_round_trips_and_is_frozen() -> None:
    import dataclasses

    from sim.env_config import EnvConfig

    cfg = EnvConfig(action_mode="splits", cycle=90, min_green=5, max_green=80)
    assert EnvConfig.from_dict(cfg.to_dict()) == cfg and cfg.cycle == 90.0
    assert dataclasses.replace(cfg, cycle=100).cycle == 100.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.cycle = 1  # type: ignore[misc]


def test_training_config_errors_name_line_and_field(tmp_path: Path) -> None:
    from agents.config import load_train_config

    path = tmp_path / "t.toml"
    path.write_text('scenario = "grid-am-v1"\nseed = 3\n\n[env]\ndelta_t = 5\nwarmup = nan\n')
    with pytest.raises(WulinError, match=r"t.toml, line 6: field 'env.warmup': nan is not a finite"):
        load_train_config(path)
    path.write_text('scenario = "grid-am-v1"\n\n[env]\ndelta_t = -5\n')
    with pytest.raises(WulinError, match=r"t.toml, line 4: field 'env.delta_t' must be > 0"):
        load_train_config(path)
    path.write_text('scenario = "grid-am-v1"\nn_envs = 2\nsubprocess = false\n')
    with pytest.raises(WulinError, match=r"line 3: field 'subprocess' must be true for n_envs = 2"):
        load_train_config(path)
    path.write_text('scenario = "grid-am-v1"\n[imitation]\nepochs = 0\n')
    with pytest.raises(WulinError, match=r"field 'imitation': field 'epochs' must be an integer >= 1"):
        load_train_config(path)
    path.write_text('scenario = "grid-am-v1"\nsource = "x"\n')
    with pytest.raises(WulinError, match=r"line 2: field 'source' is not a key of a training file"):
        load_train_config(path)


def test_training_config_replace_is_checked_again(tmp_path: Path) -> None:
    """`wulin train --n-envs 4` replaces a field: the value is a validated frozen dataclass."""
    import dataclasses

    import pydantic

    from agents.config import load_train_config

    path = tmp_path / "t.toml"
    path.write_text('scenario = "grid-am-v1"\n')
    cfg = load_train_config(path)
    assert cfg.name == "t" and cfg.source == path
    more = dataclasses.replace(cfg, n_envs=4)
    assert more.n_envs == 4 and more.source == path and more.env == cfg.env
    with pytest.raises(pydantic.ValidationError):
        dataclasses.replace(cfg, n_envs=0)


@pytest.mark.parametrize(
    ("data", "needle"),
    [({"delta_t": 5, "[": None}, "unknown field(s) [;"),  # a key that looks like pydantic's own steps
     ({"observation": "queue", "Float": 1}, "unknown field(s) Float;")],
)
def test_error_paths_follow_the_document(data: dict, needle: str) -> None:
    """Found by the hypothesis test: odd keys once broke the field path."""
    from sim.env_config import EnvConfig

    with pytest.raises(WulinError, match=re.escape(needle)):
        EnvConfig.from_dict(data, "[env]")


def test_single_table_for_a_list_of_tables() -> None:
    from experiments.spec import parse_spec

    text = 'name = "x"\nscenarios = ["grid-am-v1"]\ncontrollers = ["field"]\nvariations = {"" = false}\n'
    with pytest.raises(WulinError, match=r"e.toml, line 4: unknown field\(s\) variations\[0\]\."):
        parse_spec(text, source=Path("e.toml"), check_network=False)
