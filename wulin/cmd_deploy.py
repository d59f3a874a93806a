"""``wulin emulator start`` (NTCIP controller emulators for every signal of a network) and
``wulin plan drift`` (does each controller run what the store says is live?)."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from wulin.options import NETWORKS_OPT

emulator_app = typer.Typer(help="NTCIP 1202 controller emulators on loopback, for demos and tests.",
                           no_args_is_help=True)
console = Console()

if TYPE_CHECKING:
    from deploy.drift import DriftAlarm


def register(app: typer.Typer) -> None:
    from wulin.cmd_plan import plan_app

    app.add_typer(emulator_app, name="emulator")
    plan_app.command("drift")(drift)


def drift(
    store: str = typer.Option("runs/plan-store.sqlite", "--store", envvar="WULIN_STORE", help="Plan store."),
    secrets: Path | None = typer.Option(None, "--secrets", envvar="WULIN_SECRETS",
                                        help="Device secrets file (default ~/.config/wulin/device-secrets.json)."),
    watch: float = typer.Option(0.0, "--watch", help="Check again every this many seconds (0: check once)."),
    count: int = typer.Option(0, "--count", help="With --watch, stop after this many checks (0: until Ctrl-C)."),
    timeout: float = typer.Option(1.0, "--timeout", help="Seconds per SNMP answer."),
) -> None:
    """Read back every controller with a live plan and compare; exit 1 when any drifted."""
    from deploy.drift import check_drift, live_expectations
    from deploy.ntcip import adapter_for
    from deploy.secrets import SecretsFile
    from deploy.store import PlanStore
    from sim.errors import WulinError
    from wulin.cmd_plan import require_existing_store

    if not math.isfinite(watch) or watch < 0:
        raise WulinError(f"--watch {watch}: a finite number of seconds, 0 or more")
    if not math.isfinite(timeout) or timeout <= 0:
        raise WulinError(f"--timeout {timeout}: a finite number of seconds above 0")
    if count < 0:
        raise WulinError(f"--count {count}: 0 (no limit) or more")
    require_existing_store(store)
    ps, vault = PlanStore(store), SecretsFile(secrets)
    drifted, checks = False, 0
    try:
        while True:
            expected = live_expectations(ps)
            alarms = check_drift(expected, lambda dev: adapter_for(dev, vault, timeout=timeout, retries=1))
            drifted |= bool(alarms)
            checks += 1
            _print_drift(len(expected), alarms)
            if not watch or (count and checks >= count):
                break
            time.sleep(watch)
    except KeyboardInterrupt:
        pass
    if drifted:
        raise typer.Exit(1)


def _print_drift(n_checked: int, alarms: list[DriftAlarm]) -> None:
    stamp = time.strftime("%H:%M:%S")
    if not alarms:
        console.print(f"{stamp} no drift: {n_checked} controller(s) run their live plan", highlight=False)
        return
    for a in alarms:
        console.print(f"{stamp} [red]DRIFT[/] {a.signal_id} ({a.kind}): {a.message}", highlight=False)
        for d in a.differences:
            console.print(f"    {d}", highlight=False)


def _net_file(network: str) -> Path:
    from sim.network_path import find_net_file

    return find_net_file(network)


def _check_emulator_args(port: int, n_signals: int, time_scale: float, seconds: float) -> None:
    """Refuse impossible arguments before any emulator starts (one clear error each)."""
    import math

    from sim.errors import WulinError

    if not 1 <= port <= 65535:
        raise WulinError(f"--port {port}: a UDP port must be 1-65535")
    if port + n_signals - 1 > 65535:
        raise WulinError(f"--port {port}: {n_signals} emulators need ports {port}-{port + n_signals - 1}, "
                         f"past 65535; choose --port {65536 - n_signals} or lower")
    if not (math.isfinite(time_scale) and 0 < time_scale <= 1000):
        raise WulinError(f"--time-scale {time_scale}: must be a number in (0, 1000] "
                         "(emulated seconds per second)")
    if not (math.isfinite(seconds) and seconds >= 0):
        raise WulinError(f"--seconds {seconds}: must be a number >= 0 (0: until Ctrl-C)")


@emulator_app.command("start")
def start(
    network: str = typer.Option(..., "--network", help="Network name on the search path (grid, wulin, "
                                "one you imported), its folder or its .net.xml."),
    port: int = typer.Option(16100, "--port", help="First UDP port; one port per signal, on 127.0.0.1."),
    time_scale: float = typer.Option(1.0, "--time-scale", help="Emulated seconds per second (faster cycles)."),
    seconds: float = typer.Option(0.0, "--seconds", help="Stop after this many seconds (0: until Ctrl-C)."),
    register_devices: bool = typer.Option(True, "--register/--no-register",
                                          help="Register each emulator as its signal's device in the store."),
    store: str = typer.Option("runs/plan-store.sqlite", "--store", envvar="WULIN_STORE", help="Plan store."),
    secrets: Path | None = typer.Option(None, "--secrets", envvar="WULIN_SECRETS",
                                        help="Device secrets file (0600) the emulators' credentials go to "
                                             "(default ~/.config/wulin/device-secrets.json)."),
    snmp_v2c: bool = typer.Option(False, "--snmp-v2c", help="Also answer SNMP v1/v2c, with random communities "
                                  "(explicit opt-in; SNMPv3 authPriv otherwise only)."),
    signals: str = typer.Option("", "--signals", help="Only these signal ids (comma separated)."),
    fault: list[str] = typer.Option([], "--fault", help="SIGNAL=FAULT, armed for the next deploy "
                                    "(verify-error, readback-mismatch, bad-health, reboot, drop-set, late, held)."),
    networks: list[Path] | None = NETWORKS_OPT,
    tod: str = typer.Option("00:00", "--tod", help="The emulators' time of day at start (HH:MM); their "
                            "time-base schedule runs on it."),
    lane_detectors: bool = typer.Option(False, "--lane-detectors", help="One stop-bar detector per incoming lane "
                                        "(detector d on in-lane d), as `wulin adaptive run` reads them; "
                                        "default: one per phase."),
) -> None:
    """Run one emulated controller per signal, each running the network's own program."""
    from dataclasses import replace

    from controllers.fixed_time import plan_from_spec
    from deploy.detectors import detector_calls
    from deploy.emulator import ControllerEmulator
    from deploy.profile import bounds_admitting, single_ring_profile
    from deploy.secrets import SecretsFile
    from deploy.store import PlanStore
    from sim.errors import WulinError
    from sim.topology import load_signal_specs

    _check_emulator_args(port, 1, time_scale, seconds)  # before reading the network
    from sim.clock import TIME_OF_DAY_LATEST, parse_clock

    tod_start = parse_clock(tod, "--tod", latest=TIME_OF_DAY_LATEST)
    specs = load_signal_specs(_net_file(network))
    if signals:
        wanted = [s.strip() for s in signals.split(",") if s.strip()]
        unknown = [s for s in wanted if s not in specs]
        if unknown:
            raise WulinError(f"network {network!r} has no signal(s) {', '.join(unknown)}")
        specs = {k: specs[k] for k in wanted}
    faults: dict[str, str] = {}
    for item in fault:
        sid, _, name = item.partition("=")
        if sid not in specs or not name:
            raise WulinError(f"--fault {item!r}: expected SIGNAL=FAULT with a signal of {network!r}")
        faults[sid] = name
    _check_emulator_args(port, len(specs), time_scale, seconds)
    ps = PlanStore(store) if register_devices else None
    vault = SecretsFile(secrets)
    emus = []
    table = Table(title=f"NTCIP emulators for {network}", show_header=True, header_style="bold")
    table.add_column("signal", no_wrap=True)
    table.add_column("address", no_wrap=True)
    for c in ("stages", "cycle", "fault armed"):
        table.add_column(c)
    try:
        for k, (sid, spec) in enumerate(specs.items()):
            base = replace(plan_from_spec(spec), name="local (network program)")
            profile = single_ring_profile(sid, len(base.stages), cycle_bounds=bounds_admitting(base))
            try:
                emu = ControllerEmulator(profile, base, port=port + k, time_scale=time_scale,
                                         snmp_v2c=snmp_v2c, tod_start=tod_start,
                                         detectors=detector_calls(spec) if lane_detectors else None).start()
            except OSError as exc:
                raise WulinError(f"port {port + k} is taken ({exc.strerror}); choose another --port") from None
            emus.append(emu)
            if sid in faults:
                emu.arm(faults[sid])
            vault.put(sid, emu.credentials)  # before the store names it: a registered device has credentials
            if ps is not None:
                ps.register_device(sid, emu.host, emu.port, profile, emu.caps, actor="emulator",
                                   snmp_version=emu.credentials.snmp)
            table.add_row(sid, f"{emu.host}:{emu.port}", str(len(base.stages)), f"{base.cycle:g} s",
                          faults.get(sid, "-"))
        console.print(table)
        proto = "SNMPv3 authPriv (SHA-256/AES)" + (" and v1/v2c" if snmp_v2c else "")
        console.print(f"{len(emus)} emulators running ({proto}); random credentials in {vault.path} (0600)"
                      + (f"; devices registered in {store}" if ps else "")
                      + (f"; stopping in {seconds:g} s" if seconds else "; Ctrl-C stops them"))
        end = time.monotonic() + seconds if seconds else None
        while end is None or time.monotonic() < end:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        for e in emus:
            e.stop()
