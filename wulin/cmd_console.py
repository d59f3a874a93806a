"""``wulin console``: serve the control-room web application (see :mod:`console`).

Heavy imports (FastAPI, uvicorn, the store) happen inside the command, so ``wulin --help``
stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

DEMO_RESULTS = Path("results") / "demo"  # where `make demo` writes


def _shipped_network() -> Path | None:
    """The Wulin district's network as installed with the package (None: not there)."""
    import networks

    path = Path(networks.__file__).parent / "wulin" / "wulin.net.xml"
    return path if path.is_file() else None


def _check_live(scenario: str, speed: float) -> None:
    """An unknown scenario or a bad speed is one clear error now, not in the cockpit later."""
    from console.live import check_request
    from sim.scenario import load_scenario

    check_request(scenario, speed)
    load_scenario(scenario)


def _live_starter(store: Any, user: str | None, token: str | None, password_stdin: bool) -> Any:
    """Who starts the live run given on the command line: logged in as for `wulin plan` (channel
    cli), an engineer, supervisor or admin."""
    from console.routes_live import OPERATORS
    from sim.errors import WulinError
    from wulin.cmd_plan import _login

    who = _login(store, user, token, password_stdin)
    if who.role not in OPERATORS:
        raise WulinError(f"--live: user {who.name!r} has role {who.role!r}; starting a live simulation needs "
                         f"an {' or '.join(OPERATORS)}")
    return who


def register(app: typer.Typer) -> None:
    app.command("console")(console)


def console(
    store: str = typer.Option("runs/plan-store.sqlite", "--store", envvar="WULIN_STORE",
                              help="Plan store: a SQLite file or a SQLAlchemy URL (postgresql+psycopg://...)."),
    net: Path | None = typer.Option(None, "--net", help="The district's .net.xml, drawn by the cockpit and used "
                                    "for the conflicts of plans proposed in the console (default: the Wulin network)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback unless --public)."),
    port: int = typer.Option(8080, "--port", help="TCP port."),
    public: bool = typer.Option(False, "--public", help="Allow listening beyond this machine (use HTTPS)."),
    secure_cookies: bool | None = typer.Option(None, "--secure-cookies/--plain-http-cookies",
                                               help="Mark cookies Secure (default: only with --public)."),
    session_minutes: float = typer.Option(30.0, "--session-minutes", help="Idle minutes before a login ends."),
    files: Path = typer.Option(Path("results"), "--files", help="Folder whose reports the console may serve."),
    experiment: Path | None = typer.Option(None, "--experiment", help="Experiment results folder: the cockpit "
                                           "shows each signal's level of service from its newest runs "
                                           "(default: results/demo once `make demo` has made it)."),
    activation_timeout: float = typer.Option(400.0, "--activation-timeout",
                                             help="Seconds a deploy waits for the cycle boundary."),
    live: str | None = typer.Option(None, "--live", help="Run this scenario in SUMO with the deployed plans "
                                    "and show it moving in the cockpit (e.g. wulin-am-peak-v1)."),
    speed: float = typer.Option(10.0, "--speed", help="Live mode: simulated seconds per second (0.1-1000)."),
    user: str | None = typer.Option(None, "--user", "-u", envvar="WULIN_USER",
                                    help="With --live: who starts it (asks for the password; audited)."),
    token: str | None = typer.Option(None, "--token", envvar="WULIN_TOKEN", help="With --live: an API token instead."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from the first line of stdin."),
) -> None:
    """Serve the control-room console (district, plan review, deploy, audit) on loopback."""
    import uvicorn

    from console.app import create_app
    from console.config import ConsoleConfig
    from deploy.store import PlanStore

    if live is not None:
        _check_live(live, speed)
    net = net or _shipped_network()
    if experiment is None and any((DEMO_RESULTS / "runs").glob("*/summary.json")):
        experiment = DEMO_RESULTS
    cfg = ConsoleConfig(store_url=store, net=net, host=host, port=port, public=public,
                        secure_cookies=secure_cookies, session_s=session_minutes * 60.0,
                        activation_timeout_s=activation_timeout, files_root=files, experiment=experiment,
                        live_scenario=live, live_speed=speed)
    opened = PlanStore(cfg.store_url)
    starter = _live_starter(opened, user, token, password_stdin) if live is not None else None
    app = create_app(cfg, opened, live_actor=starter)
    print(f"Wulin console on http://{host}:{port}/ (store {app.state.console.store.url}); Ctrl-C stops it")
    uvicorn.run(app, host=host, port=port, log_level="warning")
