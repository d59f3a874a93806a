"""``wulin plan ...``: timing plans (propose, approve, deploy...); other modules add to it."""

from __future__ import annotations

import typer

plan_app = typer.Typer(help="Timing plans: make, validate, propose, approve, deploy, roll back.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(plan_app, name="plan")
