"""The layering rules of DESIGN.md, checked by importing each module in a fresh interpreter.

Each rule names module prefixes that must NOT appear in ``sys.modules`` after importing a
module of a package.  A fresh interpreter per module, so one import cannot hide another's.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "stable_baselines3", "ray")
SUMO = ("traci", "libsumo")

# package or module -> forbidden module prefixes
RULES: dict[str, tuple[str, ...]] = {
    "controllers.plan": ("numpy", "pandas", "sumolib", *SUMO, "numba", *HEAVY, "sim.simulation"),
    "sim": (*HEAVY, "numba", "controllers", "agents", "experiments", "deploy"),
    "sim.env": (*HEAVY, "agents", "experiments", "deploy"),
    "controllers": (*SUMO, *HEAVY, "agents", "experiments", "deploy"),
    "experiments": ("torch", "stable_baselines3", "agents"),
    "deploy": (
        "numpy",
        "pandas",
        "sumolib",
        *SUMO,
        "numba",
        *HEAVY,
        "sim.simulation",
        "controllers.base",
        "experiments",
        "agents",
    ),
    "wulin.cli": ("numpy", "pandas", "sumolib", *SUMO, "numba", *HEAVY),
}
# Modules that bridge layers on purpose (documented in their docstrings).
EXEMPT = {"deploy.sim_bridge", "deploy.sumo_bridge", "experiments.policy"}


def _modules() -> list[str]:
    mods = ["wulin.cli"]
    for pkg in ("sim", "controllers", "experiments", "deploy"):
        path = REPO / pkg
        if path.is_dir():
            mods += [f"{pkg}.{m.name}" for m in pkgutil.iter_modules([str(path)]) if not m.ispkg]
            mods += [
                f"{pkg}.{m.name}.{sub.name}"
                for m in pkgutil.iter_modules([str(path)])
                if m.ispkg
                for sub in pkgutil.iter_modules([str(path / m.name)])
            ]
    return sorted(set(mods) - EXEMPT)


def _rule(module: str) -> tuple[str, ...]:
    best = max(
        (k for k in RULES if module == k or module.startswith(k + ".")), key=len, default=None
    )
    return RULES[best] if best else ()


def _imported(module: str) -> list[str]:
    code = f"import importlib, json, sys; importlib.import_module({module!r}); print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, f"importing {module} failed:\n{out.stderr[-2000:]}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_every_module_respects_its_layer() -> None:
    modules = [m for m in _modules() if _rule(m)]
    assert "controllers.plan" in modules or not (REPO / "controllers/plan.py").exists()
    with ThreadPoolExecutor(max_workers=2) as pool:
        loaded = dict(zip(modules, pool.map(_imported, modules), strict=True))
    violations = []
    for module, mods in loaded.items():
        for forbidden in _rule(module):
            bad = [m for m in mods if m == forbidden or m.startswith(forbidden + ".")]
            if bad:
                violations.append(f"{module} imports {bad[0]} (forbidden: {forbidden})")
    assert not violations, "\n".join(violations)


@pytest.mark.parametrize("module", ["controllers.plan", "wulin.cli"])
def test_pure_modules_stay_light(module: str) -> None:
    mods = _imported(module)
    assert "numpy" not in mods
