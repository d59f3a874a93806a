"""``wulin console`` on the command line: refused beyond loopback without --public, and light."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from wulin.cli import main

REPO_ROOT = __file__.rsplit("/tests/", 1)[0]


def test_non_loopback_host_is_one_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["console", "--host", "0.0.0.0", "--store", "unused.sqlite"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--public" in err and "Traceback" not in err


def test_console_package_imports_no_simulation_or_learning_stack() -> None:
    code = ("import json, sys, console.app, wulin.cmd_console; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('traci', 'libsumo', 'sumolib', 'torch', 'numba', 'stable_baselines3'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_wulin_help_does_not_import_the_web_stack() -> None:
    code = "import sys, wulin.cli; print(any(m.split('.')[0] in ('fastapi', 'uvicorn', 'starlette') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


@pytest.mark.parametrize(("args", "words"), [
    (["--live", "no-such-scenario-v1"], "no-such-scenario-v1"),
    (["--live", "grid-am-v1", "--speed", "0"], "speed"),
])
def test_live_with_a_bad_scenario_or_speed_is_one_clear_error(args: list[str], words: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["console", "--store", "unused.sqlite", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_live_needs_a_login_of_an_operator(store, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                                           capsys: pytest.CaptureFixture[str]) -> None:
    import io

    with pytest.raises(SystemExit):
        main(["console", "--store", store.url, "--live", "grid-am-v1"])
    assert "log in with --user" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("vic-password\n"))
    with pytest.raises(SystemExit):
        main(["console", "--store", store.url, "--live", "grid-am-v1", "--user", "vic", "--password-stdin"])
    err = capsys.readouterr().err
    assert "role 'viewer'" in err and "Traceback" not in err
