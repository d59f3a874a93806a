"""The layering rules of DESIGN.md: import-linter contracts, and modules that must stay light.

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``): the layers, what each
package may not import, and no import cycles inside any package.  import-linter reads the
import graph from the source, so an import inside a function counts as much as one at the
top of a module; the documented exceptions are ``ignore_imports`` lines there, each with its
reason.  What the graph cannot say, whether importing a module stays cheap at run time
(``wulin --help`` must not load numpy or torch), is checked in a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}  # analyse this checkout, not an install
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)


def test_import_contracts_are_kept() -> None:
    out = _lint_imports(REPO)
    assert out.returncode == 0, f"import contracts broken:\n{out.stdout[-6000:]}{out.stderr[-2000:]}"
    assert "0 broken" in out.stdout and " kept" in out.stdout


def test_a_function_level_import_cycle_breaks_the_contract(tmp_path: Path) -> None:
    """The checker itself: a cycle hidden in a function body is found and reported."""
    pkg = tmp_path / "cyc"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from cyc import b\n")
    (pkg / "b.py").write_text("def late():\n    from cyc import a\n    return a\n")
    (tmp_path / ".importlinter").write_text(textwrap.dedent("""\
        [importlinter]
        root_package = cyc

        [importlinter:contract:no-cycles]
        name = no cycles in cyc
        type = acyclic_siblings
        ancestors = cyc
        """))
    out = _lint_imports(tmp_path)
    assert out.returncode != 0
    assert "no cycles in cyc BROKEN" in out.stdout


def test_controllers_plan_imports_the_standard_library_only() -> None:
    """Every import of controllers.plan, at any depth in its functions, is stdlib or WulinError."""
    import grimp

    graph = grimp.build_graph("controllers", "sim", include_external_packages=True,
                              cache_dir=None)
    shared = {"sim.errors", "sim.clock", "sim.files"}  # stdlib-only modules every layer shares
    allowed = set(sys.stdlib_module_names) | shared | {"__future__"}
    for module in ("controllers.plan", *sorted(shared)):
        imported = graph.find_modules_directly_imported_by(module)
        bad = sorted(m for m in imported if m.split(".")[0] not in allowed and m not in allowed)
        assert not bad, f"{module} imports {bad}"


@pytest.mark.parametrize("module", ["controllers.plan", "wulin.cli"])
def test_pure_modules_stay_light(module: str) -> None:
    code = (f"import importlib, json, sys; importlib.import_module({module!r}); "
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, f"importing {module} failed:\n{out.stderr[-2000:]}"
    mods = json.loads(out.stdout.strip().splitlines()[-1])
    heavy = [m for m in mods if m.split(".")[0] in ("numpy", "pandas", "torch", "numba", "libsumo",
                                                     "traci", "stable_baselines3", "sumolib")]
    assert not heavy, f"importing {module} loads {heavy[:5]}"
