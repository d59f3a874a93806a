"""Entry point of the ``wulin`` command.

Each ``wulin/cmd_*.py`` module defines a ``register(app)`` function that adds its commands to
the Typer app.  Command modules import only typer and rich at module level; SUMO, numpy,
numba and torch are imported inside the command functions, so ``wulin --help`` answers in
well under a second.

A :class:`~sim.errors.WulinError` escaping a command is printed as one red line (no
traceback) and the process exits with status 2.
"""

from __future__ import annotations

import errno
import importlib
import sys

import typer

from sim.errors import WulinError

COMMAND_MODULES = (
    "wulin.cmd_sim",
    "wulin.cmd_network",
    "wulin.cmd_controllers",
    "wulin.cmd_plan",
    "wulin.cmd_schedule",
    "wulin.cmd_experiments",
    "wulin.cmd_agents",
    "wulin.cmd_deploy",
    "wulin.cmd_cosim",
    "wulin.cmd_preempt",
    "wulin.cmd_adaptive",
    "wulin.cmd_console",
    "wulin.cmd_benchmark",
    "wulin.cmd_optimise",
    "wulin.cmd_tune",
)

app = typer.Typer(
    name="wulin",
    help="Traffic-signal optimisation engine for the Wulin district of Hangzhou.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register_all() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)


_register_all()


def main(argv: list[str] | None = None) -> None:
    """Run the command line; user errors exit 2 with a one-line message, no traceback."""
    try:
        app(args=argv)
    except WulinError as exc:
        from rich.console import Console

        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            raise
        from rich.console import Console

        name = str(exc.filename or "")
        shown = name if len(name) <= 80 else f"{name[:40]}...{name[-20:]}"
        Console(stderr=True).print(f"[bold red]error:[/] {shown}: the name is too long ({len(name)} characters); "
                                   "use a shorter path", highlight=False, soft_wrap=True)
        sys.exit(2)
