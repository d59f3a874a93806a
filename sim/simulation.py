"""``Simulation``: the one owner of a SUMO process.

* libsumo is the default backend: SUMO runs inside this process, each call costs about
  0.25 µs instead of a 40-75 µs socket round trip.  libsumo allows one simulation per
  process, so parallelism is processes (see ``experiments.runner``).
* traci is used when asked for: ``sumo-gui``, or several simulations in one process; each
  instance gets its own connection label.
* The seed is always explicit and handed to SUMO (``--seed``).
* ``reset()`` reloads the scenario in the same process (``simulation.load``) instead of
  starting a new one.
* SUMO's own messages (warnings, teleports, errors) go to the run's log file
  (:attr:`Simulation.error_log`), never to the terminal; :func:`sim.sumo_log.read_sumo_log`
  counts them.  If SUMO dies or reports an error, the caller gets a
  :class:`~sim.errors.SimulationError` carrying them, never a hang (traci connections have a
  socket timeout).
* A private output folder (``wulin-<label>-*`` in the temporary directory) is removed by
  :meth:`Simulation.cleanup`, or at the latest when the object is collected or the
  interpreter exits, also after an exception.

SUMO's camelCase API stays inside ``sim/``: other packages use :attr:`Simulation.conn` only
through ``sim.state``, ``sim.actuator`` and ``sim.kpi``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import sys
import tempfile
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from sim.errors import SimulationError, WulinError
from sim.scenario import Scenario
from sim.sumo_options import sumo_option_args
from sim.tools import sumo_binary

Backend = Literal["libsumo", "traci"]
MAX_SEED = 2**31 - 1
_labels = itertools.count()
_libsumo_owner: Simulation | None = None  # libsumo: at most one running simulation per process


@contextlib.contextmanager
def _capture_stderr(path: Path) -> Iterator[None]:
    """Send file descriptor 2 to ``path`` for the duration (SUMO writes there from C++)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with path.open("wb") as fh:
            os.dup2(fh.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def check_seed(seed: object, where: str = "seed") -> int:
    """Return ``seed`` as an int in SUMO's range, or raise a :class:`WulinError`."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise WulinError(f"{where}: expected an integer seed, got {seed!r}")
    if not 0 <= seed <= MAX_SEED:
        raise WulinError(f"{where}: seed {seed} out of range; use 0..{MAX_SEED}")
    return seed


class Simulation:
    """One SUMO simulation of a :class:`Scenario`.

    Args:
        scenario: What to simulate.
        seed: SUMO's random seed (required: results must be reproducible).
        backend: ``"libsumo"`` (default, fastest) or ``"traci"`` (GUI, several per process).
        gui: Run ``sumo-gui`` (implies traci).
        label: Name of this instance (traci connection label, log file names).
        output_dir: Where SUMO writes tripinfo, statistics and its log; a private temporary
            folder by default, removed by :meth:`cleanup` (or when this object is collected,
            or at exit).
        tripinfo: Write tripinfo (per-trip KPIs) and statistics output.
        emissions: Add SUMO's emission device to every vehicle (CO2, fuel in tripinfo).
        extra_args: More SUMO options (``["--scale", "1.2"]``).
        additional_files: More additional files (timing plans, detectors, closures).
        timeout: traci socket timeout in seconds.

    Example::

        with Simulation(load_scenario("grid-am-v1"), seed=1) as sim:
            sim.step_until(sim.scenario.end)
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        seed: int,
        backend: Backend = "libsumo",
        gui: bool = False,
        label: str | None = None,
        output_dir: Path | None = None,
        tripinfo: bool = False,
        emissions: bool = False,
        extra_args: Sequence[str] = (),
        additional_files: Sequence[Path] = (),
        timeout: float = 60.0,
    ) -> None:
        if backend not in ("libsumo", "traci"):
            raise WulinError(f"backend: expected 'libsumo' or 'traci', got {backend!r}")
        if gui:
            backend = "traci"
        self.scenario = scenario
        self.seed = check_seed(seed)
        self.backend: Backend = backend
        self.gui = gui
        self.label = label or f"sim{os.getpid()}-{next(_labels)}"
        self.tripinfo = tripinfo
        self.emissions = emissions
        self.extra_args = list(extra_args)
        self.additional_files = [Path(p) for p in additional_files]
        self.timeout = timeout
        self._own_dir = output_dir is None
        self.output_dir = Path(output_dir) if output_dir else None
        self._conn: Any = None
        self._traci_proc_pid: int | None = None
        self._remove_own_dir: weakref.finalize | None = None

    # ------------------------------------------------------------------ paths and arguments
    def _ensure_dir(self) -> Path:
        if self.output_dir is None:
            self.output_dir = Path(tempfile.mkdtemp(prefix=f"wulin-{self.label}-"))
            # removed however the run ends: cleanup(), garbage collection or interpreter exit
            self._remove_own_dir = weakref.finalize(
                self, shutil.rmtree, str(self.output_dir), ignore_errors=True)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        return self.output_dir

    @property
    def error_log(self) -> Path:
        """SUMO's warnings, teleports and errors of this run (not shown on the terminal)."""
        return self._ensure_dir() / f"{self.label}.sumo.log"

    @property
    def startup_log(self) -> Path:
        return self._ensure_dir() / f"{self.label}.stderr.log"

    @property
    def tripinfo_file(self) -> Path:
        return self._ensure_dir() / f"{self.label}.tripinfo.xml"

    @property
    def statistics_file(self) -> Path:
        return self._ensure_dir() / f"{self.label}.stats.xml"

    def sumo_args(self, seed: int | None = None) -> list[str]:
        """SUMO's command line options (without the binary) for this scenario and seed."""
        sc = self.scenario
        add = [*sc.additional_files, *self.additional_files]
        args = [
            "--net-file",
            str(sc.net_file),
            "--route-files",
            ",".join(str(p) for p in sc.route_files),
            "--begin",
            f"{sc.begin:g}",
            "--end",
            f"{sc.end:g}",
            "--step-length",
            f"{sc.step_length:g}",
            "--seed",
            str(self.seed if seed is None else seed),
            "--no-step-log",
            "true",
            "--duration-log.disable",
            "true",
            "--error-log",
            str(self.error_log),
            *sumo_option_args(sc.sumo_options, set(self.extra_args)),
        ]
        if sc.scale != 1.0:
            args += ["--scale", f"{sc.scale:g}"]
        if add:
            args += ["--additional-files", ",".join(str(p) for p in add)]
        if self.tripinfo:
            args += [
                "--tripinfo-output",
                str(self.tripinfo_file),
                "--tripinfo-output.write-unfinished",
                "true",
                # vehicles due but never inserted: counted by sim.kpi (honest headline means)
                "--tripinfo-output.write-undeparted",
                "true",
                "--statistic-output",
                str(self.statistics_file),
            ]
        if self.emissions:
            args += ["--device.emissions.probability", "1"]
        if self.gui:
            args += ["--start", "true", "--quit-on-end", "true"]
        if not {"--no-warnings", "-W"} & set(self.extra_args):  # SUMO refuses an option twice
            args += ["--no-warnings", "true"]  # warnings reach the error log only, not the terminal
        return args + self.extra_args

    # ------------------------------------------------------------------ lifecycle
    @property
    def conn(self) -> Any:
        """The libsumo module or the traci connection; only ``sim/`` modules use it."""
        if self._conn is None:
            raise WulinError("simulation not started; call start() or use it as a context manager")
        return self._conn

    @property
    def running(self) -> bool:
        return self._conn is not None

    def start(self) -> Simulation:
        """Start SUMO; returns ``self``."""
        global _libsumo_owner
        if self._conn is not None:
            return self
        args = self.sumo_args()
        if self.backend == "libsumo":
            if _libsumo_owner is not None and _libsumo_owner is not self:
                raise WulinError(
                    "libsumo runs one simulation per process and one is already running "
                    f"({_libsumo_owner.label}); close it, use backend='traci', or run in a subprocess"
                )
            import libsumo

            # Loading errors are printed by SUMO to fd 2 before its error log opens: capture them.
            with _capture_stderr(self.startup_log):
                self._call(lambda: libsumo.start([sumo_binary("sumo"), *args]))
            self._conn = libsumo
            _libsumo_owner = self
        else:
            import io
            import subprocess

            import traci
            from sumolib.miscutils import getFreeSocketPort

            binary = sumo_binary("sumo-gui" if self.gui else "sumo")
            port = getFreeSocketPort()
            with self.startup_log.open("wb") as log:
                proc = subprocess.Popen(
                    [binary, *args, "--remote-port", str(port)],
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            try:
                with contextlib.redirect_stdout(io.StringIO()):  # traci prints its retries
                    conn = traci.connect(
                        port,
                        numRetries=int(self.timeout / 0.05),
                        proc=proc,
                        waitBetweenRetries=0.05,
                        label=self.label,
                    )
            except Exception as exc:  # SUMO exited during start-up or never listened
                proc.kill()
                raise SimulationError(self._message(f"SUMO failed to start: {exc}")) from None
            conn._socket.settimeout(self.timeout)
            self._conn = conn
            self._traci_proc_pid = proc.pid
            # SUMO opens its port before it has loaded every input: ask once so that a loading
            # error surfaces here, with SUMO's message, instead of at the first step.
            self._call(conn.simulation.getTime)
        return self

    @property
    def sumo_pid(self) -> int:
        """Process id of SUMO: a child process with traci, this process with libsumo."""
        return (
            self._traci_proc_pid
            if self.backend == "traci" and self._traci_proc_pid
            else os.getpid()
        )

    def reset(self, seed: int | None = None) -> None:
        """Restart the scenario from ``begin``, in the same SUMO process where possible."""
        if seed is not None:
            self.seed = check_seed(seed)
        if self._conn is None:
            self.start()
            return
        args = self.sumo_args()
        conn = self._conn
        self._call(lambda: conn.load(args))

    def close(self) -> None:
        """End SUMO (idempotent); flushes tripinfo and statistics outputs."""
        global _libsumo_owner
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # already dead: nothing left to flush
                pass
            if _libsumo_owner is self:
                _libsumo_owner = None

    def cleanup(self) -> None:
        """Close and remove the private output folder (kept when the caller chose one)."""
        self.close()
        if self._own_dir and self.output_dir is not None:
            if self._remove_own_dir is not None:
                self._remove_own_dir()
            shutil.rmtree(self.output_dir, ignore_errors=True)
            self.output_dir = None

    def __enter__(self) -> Simulation:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # best effort; never raise from a finaliser
        try:
            self.close()
        except Exception:
            pass

    # ------------------------------------------------------------------ stepping
    @property
    def time(self) -> float:
        """Current simulation time in seconds since midnight."""
        return float(self._call(self.conn.simulation.getTime))

    def step(self) -> None:
        """Advance one SUMO step."""
        self._call(self.conn.simulationStep)

    def step_until(self, t: float) -> None:
        """Advance to simulation time ``t`` (one call; SUMO loops internally)."""
        conn = self.conn
        self._call(lambda: conn.simulationStep(t))

    @property
    def finished(self) -> bool:
        """True once the scenario's end time is reached."""
        return self.time >= self.scenario.end - 1e-9

    # ------------------------------------------------------------------ errors
    def _message(self, what: str) -> str:
        log = ""
        lines: list[str] = []
        if self.output_dir is not None:
            for path in (self.startup_log, self.error_log):
                try:
                    lines += [
                        ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()
                    ]
                except OSError:
                    pass
        errors = [ln for ln in lines if ln.startswith("Error")] or lines
        log = "\n".join(dict.fromkeys(errors[-8:]))
        where = f"[{self.label}, scenario {self.scenario.id}, seed {self.seed}]"
        return f"{what} {where}" + (f"\nSUMO says:\n{log}" if log else "")

    def _call(self, fn: Any) -> Any:
        """Run a SUMO call, turning any SUMO failure into a SimulationError."""
        try:
            return fn()
        except WulinError:
            raise
        except Exception as exc:
            name = type(exc).__name__
            fatal = name == "FatalTraCIError" or isinstance(exc, OSError | EOFError | TimeoutError)
            if fatal:  # the process is gone: release it instead of talking to it again
                self.close()
            raise SimulationError(self._message(f"SUMO error ({name}): {exc}")) from None
