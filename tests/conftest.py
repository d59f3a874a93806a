"""Shared fixtures: tiny generated networks and scenarios, so fast tests need no committed data."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from sim.scenario import Scenario, scenario_from_toml
from sim.tools import sumo_binary

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


def pytest_configure(config: pytest.Config) -> None:
    """Give Ctrl-C back when the runner was started with SIGINT ignored.

    A background job of a non-interactive shell starts with SIGINT ignored; Python then keeps
    it ignored, ``_thread.interrupt_main`` does nothing and the worker processes the tests
    interrupt inherit the ignored signal, so the Ctrl-C tests would fail for the way pytest
    was launched. The interactive default is restored.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def make_grid_network(out: Path, n: int = 2, lanes: int = 1, length: float = 150.0) -> Path:
    """A generated n x n signalised grid (netgenerate) with fringe edges; returns the .net.xml."""
    out.mkdir(parents=True, exist_ok=True)
    net = out / "tiny.net.xml"
    subprocess.run(
        [
            sumo_binary("netgenerate"),
            "--grid",
            "--grid.number",
            str(n),
            "--grid.length",
            str(length),
            "--grid.attach-length",
            str(length),
            "--default.lanenumber",
            str(lanes),
            "--default-junction-type",
            "traffic_light",
            "--tls.default-type",
            "static",
            "--no-turnarounds",
            "true",
            "--no-warnings",
            "true",
            "--seed",
            "1",
            "--output-file",
            str(net),
        ],
        check=True,
        capture_output=True,
    )
    return net


def write_scenario(
    folder: Path,
    net: Path,
    flows: list[tuple[str, str, float]],
    *,
    sid: str = "tiny-test-v1",
    begin: int = 0,
    end: int = 600,
    warmup: int = 60,
) -> Scenario:
    """Write flows and a scenario TOML next to ``net``; return the loaded scenario."""
    routes = folder / "flows.rou.xml"
    lines = ["<routes>", '  <vType id="car" sigma="0.5"/>']
    for i, (src, dst, vph) in enumerate(flows):
        lines.append(
            f'  <flow id="f{i}" type="car" begin="{begin}" end="{end}" from="{src}" to="{dst}" '
            f'vehsPerHour="{vph}" departLane="best"/>'
        )
    lines.append("</routes>")
    routes.write_text("\n".join(lines))
    (folder / "scenarios").mkdir(exist_ok=True)
    toml = folder / "scenarios" / f"{sid}.toml"
    toml.write_text(
        f'description = "test"\nnet = "{net.name}"\nroutes = ["{routes.name}"]\n'
        f"begin = {begin}\nend = {end}\nwarmup = {warmup}\n"
    )
    return scenario_from_toml(toml)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tiny")


@pytest.fixture(scope="session")
def tiny_scenario(tiny_dir: Path) -> Scenario:
    """A 2x2 one-lane signalised grid with ten minutes of crossing traffic."""
    net = make_grid_network(tiny_dir)
    flows = [
        ("left0A0", "B0right0", 300),
        ("right1B1", "A1left1", 300),
        ("bottom0A0", "A1top0", 250),
        ("top1B1", "B0bottom1", 250),
        ("left1A1", "B1right1", 200),
        ("bottom1B0", "B1top1", 200),
    ]
    return write_scenario(tiny_dir, net, flows)


@pytest.fixture(scope="session")
def grid_scenario() -> Scenario:
    from sim.scenario import load_scenario

    return load_scenario("grid-am-v1")
