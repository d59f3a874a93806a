"""The network search path: WULIN_NETWORKS, --networks, names and paths everywhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sim.errors import WulinError
from sim.network_path import ENV_VAR, add_search_dirs, find_net_file, network_dirs
from sim.scenario import load_scenario, scenario_files
from tests.conftest import make_grid_network, write_scenario

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of network folders outside the repository: ``<root>/town`` with one scenario."""
    root = tmp_path_factory.mktemp("nets")
    town = root / "town"
    net = make_grid_network(town)
    write_scenario(town, net, [("left0A0", "B0right0", 300), ("bottom0A0", "A1top0", 200)],
                   sid="town-test-v1", end=300)
    return root


def test_the_path_finds_networks_and_scenarios_beside_the_package_ones(
        elsewhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, os.pathsep.join([str(elsewhere), str(elsewhere / "gone")]))
    assert {"town", "grid", "wulin"} <= set(network_dirs())
    assert {"town-test-v1", "grid-am-v1"} <= set(scenario_files())
    sc = load_scenario("town-test-v1")
    assert sc.network == "town" and sc.net_file == find_net_file("town")
    assert find_net_file(elsewhere / "town") == find_net_file(str(sc.net_file)) == sc.net_file
    monkeypatch.setenv(ENV_VAR, str(elsewhere / "town"))  # a network folder itself is fine too
    assert network_dirs()["town"] == elsewhere / "town"


def test_clashes_and_unknowns_are_one_clear_error(elsewhere: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    twin = tmp_path / "other" / "town"
    make_grid_network(twin)
    monkeypatch.setenv(ENV_VAR, os.pathsep.join([str(elsewhere), str(tmp_path / "other")]))
    with pytest.raises(WulinError, match="network 'town' is in .* and in .*; network names must be unique"):
        network_dirs()
    monkeypatch.setenv(ENV_VAR, str(elsewhere))
    with pytest.raises(WulinError, match=r"network 'nowhere': .* known networks: grid, town, wulin"):
        find_net_file("nowhere")
    with pytest.raises(WulinError, match="--networks /no/such: no such folder"):
        add_search_dirs(["/no/such"])
    with pytest.raises(WulinError, match="unknown scenario 'town-test-v9' \\(did you mean town-test-v1\\?\\)"):
        load_scenario("town-test-v9")


def _wulin(*args: str, env: dict[str, str] | None = None, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wulin", *args], capture_output=True, text=True, cwd=cwd,
                          env={"COLUMNS": "120", "PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO),
                               **(env or {})}, timeout=600)


@pytest.mark.slow
def test_cli_commands_take_networks_from_the_path(elsewhere: Path, tmp_path: Path) -> None:
    """--networks and WULIN_NETWORKS on simulate, scenarios, plan webster/validate, emulator."""
    res = _wulin("scenarios", "--networks", str(elsewhere), cwd=tmp_path)
    assert res.returncode == 0 and "town-test-v1" in res.stdout, res.stderr
    res = _wulin("simulate", "town-test-v1", "-c", "max-pressure", cwd=tmp_path, env={ENV_VAR: str(elsewhere)})
    assert res.returncode == 0 and "town-test-v1" in res.stdout, res.stderr
    res = _wulin("plan", "webster", "town-test-v1", "--networks", str(elsewhere), "--all-red", "2",
                 "--out", str(tmp_path / "p"),
                 cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    res = _wulin("plan", "validate", str(tmp_path / "p" / "plans.json"), "--net", "town",
                 "--networks", str(elsewhere), cwd=tmp_path)
    assert res.returncode == 0 and "valid" in res.stdout, res.stdout + res.stderr
    res = _wulin("emulator", "start", "--network", "town", "--networks", str(elsewhere), "--seconds", "1",
                 "--no-register", "--port", "17300", cwd=tmp_path, env={"HOME": str(tmp_path)})
    assert res.returncode == 0 and "NTCIP emulators for town" in res.stdout, res.stdout + res.stderr
    res = _wulin("simulate", "town-test-v1", cwd=tmp_path)  # not on the path: one clear line
    assert res.returncode == 2 and "unknown scenario 'town-test-v1'" in res.stderr
    assert "Traceback" not in res.stderr


def test_a_network_name_that_is_also_a_folder_without_a_net_means_the_network(tmp_path, monkeypatch):
    """`--network wulin` from the repository root, where ./wulin is the CLI package."""
    from sim.network_path import find_net_file

    (tmp_path / "wulin").mkdir()
    (tmp_path / "wulin" / "cli.py").write_text("")
    monkeypatch.chdir(tmp_path)
    assert find_net_file("wulin").name == "wulin.net.xml"
    assert find_net_file("wulin").parent.name == "wulin" and find_net_file("wulin").parent != tmp_path / "wulin"
