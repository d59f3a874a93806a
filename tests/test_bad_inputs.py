"""Every parser of a user file, fed generated bad documents: a clean WulinError or a value.

Property-based (hypothesis): random TOML/JSON trees, valid documents with one field replaced
by a wrong type, ``nan``/``inf``, huge integers, deep nesting, long strings, non-UTF-8 bytes
and folders.  Whatever the input, a parser either returns its value or raises exactly one
:class:`~sim.errors.WulinError`; any other exception (a traceback for the user) fails.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.errors import WulinError

REPO = Path(__file__).resolve().parent.parent
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ------------------------------------------------------------------ generated values
_scalars = (
    st.none() | st.booleans() | st.integers() | st.integers(min_value=2**63, max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20)
    | st.sampled_from(["", "07:00", "-01:00", "99:99", "x" * 5000, "grid-am-v1", "field", "\x00", "G"])
)
values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
trees = st.dictionaries(st.text(max_size=12), values, max_size=6)


def _deep(depth: int) -> Any:
    doc: Any = 1
    for _ in range(depth):
        doc = {"a": [doc]}
    return doc


def _toml_value(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(x for x in map(_toml_value, v) if x is not None) + "]"
    items = [f"{json.dumps(str(k))} = {t}" for k, x in v.items() if (t := _toml_value(x)) is not None]
    return "{" + ", ".join(items) + "}"


def to_toml(doc: dict[str, Any]) -> str:
    """A generated tree as TOML text (inline tables; null values left out)."""
    return "".join(f"{json.dumps(str(k))} = {t}\n" for k, v in doc.items() if (t := _toml_value(v)) is not None)


def _clean(call: Callable[[], Any]) -> None:
    """The property: a value or a WulinError, nothing else."""
    try:
        call()
    except WulinError as exc:
        assert str(exc).strip(), "a WulinError must say something"


# ------------------------------------------------------------------ valid documents to break
GOOD_SCENARIO = {"net": "g.net.xml", "routes": ["r.rou.xml"], "begin": "07:00", "end": "08:00", "warmup": 300}
GOOD_SPEC = {"name": "x", "scenarios": ["grid-am-v1"], "controllers": ["field"], "seeds": [1],
             "variations": [{"name": "a", "window": ["07:00", "07:30"], "warmup": 60,
                             "closures": [{"edges": ["A0B0"], "at": "07:10", "duration": 60}],
                             "incidents": [{"lane": "A0B0_0", "at": "07:05", "duration": 30}]}]}
GOOD_TRAIN = {"scenario": "grid-am-v1", "algorithm": "ppo", "n_envs": 1, "env": {"delta_t": 5, "reward": "queue"},
              "imitation": {"episodes": 1}}
GOOD_ENV = {"delta_t": 5, "observation": ["queue"], "reward": "queue", "min_green": 5, "max_green": 60}
GOOD_PROFILE = {"signal_id": "B1", "stage_phases": [[2, 6], [4, 8]], "phase_rings": {"2": 1, "4": 1, "6": 2, "8": 2},
                "channels": {"2": 2, "4": 4, "6": 6, "8": 8}, "pattern_slots": [5, 6]}
GOOD_PLAN = {"signal_id": "B1", "cycle": 60, "offset": 0, "yellow": 3, "all_red": 2,
             "stages": [{"state": "GGrr", "green": 20}, {"state": "rrGG", "green": 30}]}


def _paths(doc: Any, at: tuple = ()) -> list[tuple]:
    out = [at] if at else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*at, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*at, i))
    return out


def _replace(doc: Any, at: tuple, value: Any) -> Any:
    if not at:
        return value
    copy = json.loads(json.dumps(doc))
    node = copy
    for part in at[:-1]:
        node = node[part]
    node[at[-1]] = value
    return copy


def broken(good: dict[str, Any]) -> st.SearchStrategy[Any]:
    """``good`` with one field (at any depth) replaced, dropped or joined by a stranger."""
    paths = _paths(good)
    replaced = st.builds(_replace, st.just(good), st.sampled_from(paths), values)
    extra = st.builds(lambda k, v: {**good, k: v}, st.text(min_size=1, max_size=8), values)
    dropped = st.builds(lambda k: {x: y for x, y in good.items() if x != k}, st.sampled_from(sorted(good)))
    return replaced | extra | dropped | trees | values


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A network folder with the grid's net and routes, and a scenarios/ folder."""
    folder = tmp_path_factory.mktemp("net")
    shutil.copy(REPO / "networks/grid/grid.net.xml", folder / "g.net.xml")
    shutil.copy(REPO / "networks/grid/demand/am.rou.xml", folder / "r.rou.xml")
    (folder / "scenarios").mkdir()
    return folder


# ------------------------------------------------------------------ one property per parser
@SETTINGS
@given(doc=broken(GOOD_SCENARIO))
def test_scenario_file(network: Path, doc: Any) -> None:
    from sim.scenario import scenario_from_toml

    path = network / "scenarios" / "fuzz-v1.toml"
    path.write_text(to_toml(doc) if isinstance(doc, dict) else f"x = {_toml_value(doc)}\n", encoding="utf-8")
    _clean(lambda: scenario_from_toml(path))


@SETTINGS
@given(doc=broken(GOOD_SPEC), check_network=st.booleans())
def test_experiment_spec(network: Path, doc: Any, check_network: bool) -> None:
    from experiments.spec import parse_spec

    text = to_toml(doc) if isinstance(doc, dict) else f"x = {_toml_value(doc)}\n"
    _clean(lambda: parse_spec(text, source=network / "exp.toml", check_network=check_network))


@SETTINGS
@given(doc=broken(GOOD_SPEC))
def test_resolved_json(tmp_path_factory: pytest.TempPathFactory, doc: Any) -> None:
    from experiments.spec import read_resolved

    path = tmp_path_factory.mktemp("res") / "resolved.json"
    path.write_text(json.dumps(doc), encoding="utf-8")  # nan/inf written as NaN/Infinity
    _clean(lambda: read_resolved(path))


@SETTINGS
@given(doc=broken(GOOD_TRAIN))
def test_training_config(doc: Any) -> None:
    from agents.config import config_from_dict

    _clean(lambda: config_from_dict(doc, "train.toml"))


@SETTINGS
@given(doc=broken(GOOD_ENV))
def test_env_config(doc: Any) -> None:
    from sim.env_config import EnvConfig

    _clean(lambda: EnvConfig.from_dict(doc if isinstance(doc, dict) else {"x": doc}, "[env]"))


@SETTINGS
@given(doc=broken(GOOD_PROFILE))
def test_device_profile(doc: Any) -> None:
    from deploy.profile import DeviceProfile

    _clean(lambda: DeviceProfile.from_dict(doc, "p.json"))
    _clean(lambda: DeviceProfile.from_json(json.dumps(doc), "p.json"))


@SETTINGS
@given(doc=broken(GOOD_PLAN))
def test_timing_plan(doc: Any) -> None:
    from controllers.plan import TimeOfDaySchedule, TimingPlan

    _clean(lambda: TimingPlan.from_dict(doc, "plan.json"))
    _clean(lambda: TimingPlan.from_json(json.dumps(doc), "plan.json"))
    _clean(lambda: TimeOfDaySchedule.from_json(json.dumps(doc), "sched.json"))


@SETTINGS
@given(doc=broken(GOOD_PLAN))
def test_plan_and_evidence_files(tmp_path_factory: pytest.TempPathFactory, doc: Any) -> None:
    from controllers.plan import load_plans
    from wulin.cmd_plan import _read_evidence

    path = tmp_path_factory.mktemp("plan") / "p.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    _clean(lambda: load_plans(path))
    _clean(lambda: _read_evidence(path))


@SETTINGS
@given(data=st.binary(max_size=200))
def test_raw_bytes_every_file_parser(network: Path, data: bytes) -> None:
    """Arbitrary bytes (mostly not UTF-8, not TOML, not JSON) given to every file reader."""
    for name, load in _file_loaders(network).items():
        path = network / "scenarios" / f"raw-v1.{name}"
        path.write_bytes(data)
        _clean(lambda load=load, path=path: load(path))


def _file_loaders(network: Path) -> dict[str, Callable[[Path], Any]]:
    from agents.config import load_train_config
    from controllers.plan import TimingPlan, load_plans
    from deploy.profile import DeviceProfile
    from experiments.spec import load_spec, read_resolved
    from sim.scenario import scenario_from_toml
    from wulin.cmd_plan import _read_evidence

    return {
        "scenario.toml": scenario_from_toml, "spec.toml": load_spec, "train.toml": load_train_config,
        "plan.json": TimingPlan.load, "plans.json": load_plans, "resolved.json": read_resolved,
        "evidence.json": _read_evidence,
        "profile.json": DeviceProfile.load,
    }


# ------------------------------------------------------------------ the named cases of issue 11
@pytest.mark.parametrize("kind", ["folder", "latin-1", "deep", "huge-int", "nan", "long-name", "fifo",
                                  "huge-int-5000", "symlink-loop"])
def test_named_bad_files_every_loader(network: Path, kind: str) -> None:
    import os

    for name, load in _file_loaders(network).items():
        if name == "evidence.json" and kind in ("deep", "huge-int", "huge-int-5000", "nan", "long-name"):
            continue  # evidence that is not JSON a config could hold is kept verbatim as text
        path = network / "named" / f"{kind}-v1.{name}"
        shutil.rmtree(path, ignore_errors=True)
        path.unlink(missing_ok=True)
        path.parent.mkdir(exist_ok=True)
        toml = name.endswith(".toml")
        if kind == "folder":
            path.mkdir()
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "symlink-loop":  # pathlib's resolve() raised RuntimeError (probe, issue 11)
            path.symlink_to(path)
        else:
            text = {
                "latin-1": None,
                "deep": ("a = " + "[" * 200 + "]" * 200) if toml else "[" * 20000 + "]" * 20000,
                "huge-int": "a = " + "9" * 400 if toml else '{"a": ' + "9" * 400 + "}",
                # past Python's 4300-digit limit: tomllib raised ValueError (probe, issue 11)
                "huge-int-5000": "a = " + "9" * 5000 if toml else '{"a": ' + "9" * 5000 + "}",
                "nan": "a = nan" if toml else '{"a": NaN}',
                "long-name": f'name = "{"x" * 5000}"' if toml else json.dumps({"signal_id": "x" * 5000}),
            }[kind]
            if text is None:
                path.write_bytes("name = 'caf\xe9'\n".encode("latin-1"))
            else:
                path.write_text(text + "\n", encoding="utf-8")
        with pytest.raises(WulinError):
            load(path)


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--port", "70000"], "--port 70000: a UDP port must be 1-65535"),
     (["--port", "65535"], "past 65535"),
     (["--time-scale", "0"], "--time-scale 0.0: must be a number in (0, 1000]"),
     (["--time-scale", "-2"], "--time-scale -2.0"), (["--time-scale", "nan"], "--time-scale nan"),
     (["--seconds", "inf"], "--seconds inf")],
)
def test_emulator_arguments_refused_before_start(args: list[str], needle: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from wulin.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["emulator", "start", "--network", "grid", "--no-register", "--seconds", "0.1", *args])
    assert exit_.value.code == 2
    assert needle in capsys.readouterr().err.replace("\n", "")


# ------------------------------------------------------------------ found by the independent probe
def _cli_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    from wulin.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    return capsys.readouterr().err.replace("\n", "")


def test_a_path_name_too_long_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    long = str(tmp_path / ("n" * 5000))
    assert "the name is too long (" in _cli_error(["report", long], capsys)
    plans = tmp_path / "p.json"
    plans.write_text("[]")
    assert "the name is too long (" in _cli_error(["plan", "validate", str(plans), "--net", long], capsys)


@pytest.mark.parametrize(("flag", "value"), [("--sat-flow", "0"), ("--yellow", "inf"), ("--all-red", "nan"),
                                             ("--speed", "-1")])
def test_webster_numbers_are_checked(tmp_path: Path, flag: str, value: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    err = _cli_error(["plan", "webster", "grid-am-v1", "--out", str(tmp_path / "w"), flag, value], capsys)
    assert f"{flag} {value}" in err and "must be a finite number" in err


@pytest.mark.parametrize("body", ['<l>x</l>', '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aa">]><l>&a;</l>'])
def test_an_xml_file_that_is_not_a_network_is_refused(tmp_path: Path, body: str) -> None:
    from sim.topology import load_signal_specs
    from sim.variations import network_index

    path = tmp_path / "other.net.xml"
    path.write_text(body)
    for load in (load_signal_specs, network_index):
        with pytest.raises(WulinError, match="not a readable SUMO network"):
            load(path)


def test_plan_names_with_control_characters_or_too_long_are_refused() -> None:
    from controllers.plan import TimingPlan

    good = {"signal_id": "A0", "cycle": 40, "offset": 0, "yellow": 3, "all_red": 1,
            "stages": [{"state": "Gr", "green": 14}, {"state": "rG", "green": 18}]}
    TimingPlan.from_dict(good)
    for field, value in (("name", "a\x1b[31m"), ("name", "x\u200by"), ("name", "n" * 257),
                         ("signal_id", "s" * 129), ("signal_id", "A\x00")):
        with pytest.raises(WulinError, match=field):
            TimingPlan.from_dict({**good, field: value})


def test_experiment_plan_and_incident_position_are_checked(tmp_path: Path) -> None:
    from experiments.spec import load_spec

    base = ('name = "p"\nscenarios = ["grid-am-v1"]\ncontrollers = ["field"]\nseeds = [1]\n'
            '[[variations]]\nname = "base"\nwindow = ["07:00", "07:05"]\nwarmup = 60\n')
    spec = tmp_path / "s.toml"
    spec.write_text(base + f'plan = "{REPO / "networks/grid/demand/am.rou.xml"}"\n')
    with pytest.raises(WulinError, match="holds no <tlLogic> element"):
        load_spec(spec)
    spec.write_text(base + '[[variations.incidents]]\nlane = "A0B0_0"\nposition = 1e9\nat = "07:01"\n'
                           'duration = 60\n')
    with pytest.raises(WulinError, match="past the end of lane 'A0B0_0'"):
        load_spec(spec)
