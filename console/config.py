"""The console's settings as one typed value."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from sim.errors import WulinError

LOOPBACK_NAMES = ("localhost",)


@dataclass(frozen=True)
class ConsoleConfig:
    """How the console runs.

    Attributes:
        store_url: The plan store (a SQLite file or a SQLAlchemy URL), as for ``wulin plan``.
        net: The district's ``.net.xml``, drawn by the cockpit (None: no map).
        host: Address to listen on (loopback unless ``public``).
        port: TCP port.
        public: Allow a non-loopback ``host``.
        secure_cookies: Mark cookies ``Secure`` (needs HTTPS; default on when ``public``).
        session_s: Seconds a login lasts without activity.
        poll_s: Seconds between cockpit reads of each controller.
        snmp_timeout_s: Seconds the cockpit waits for a controller's answer.
        activation_timeout_s: Seconds a deploy waits for the cycle boundary.
        files_root: The only folder whose files (experiment reports) the console serves.
        experiment: An experiment results folder whose newest run group gives the cockpit's
            level of service per signal (None: not shown).
        live_scenario: A scenario to run live in SUMO with the deployed plans from the start
            (None: none until someone starts one in the cockpit).
        live_speed: Simulated seconds per wall second for the live mode.
    """

    store_url: str = "runs/plan-store.sqlite"
    net: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    public: bool = False
    secure_cookies: bool | None = None
    session_s: float = 1800.0
    poll_s: float = 2.0
    snmp_timeout_s: float = 0.3
    activation_timeout_s: float = 400.0
    files_root: Path = field(default_factory=lambda: Path("runs"))
    experiment: Path | None = None
    live_scenario: str | None = None
    live_speed: float = 10.0

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise WulinError(f"--port {self.port}: use 1-65535")
        if not is_loopback(self.host) and not self.public:
            raise WulinError(f"--host {self.host!r} is not a loopback address: the console listens beyond this "
                             "machine only with --public (put it behind HTTPS and keep --secure-cookies)")
        for name in ("session_s", "poll_s", "snmp_timeout_s", "activation_timeout_s"):
            value = getattr(self, name)
            if not 0 < value < 1e7:
                raise WulinError(f"console setting {name} = {value!r}: use a positive number of seconds")
        if self.net is not None and not self.net.is_file():
            raise WulinError(f"--net {self.net}: no such file (give the district's .net.xml)")
        if self.experiment is not None and not self.experiment.is_dir():
            raise WulinError(f"--experiment {self.experiment}: no such folder (give an experiment's results folder)")

    @property
    def cookie_secure(self) -> bool:
        """Whether cookies carry ``Secure`` (explicit setting, else only when public)."""
        return self.public if self.secure_cookies is None else self.secure_cookies


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
