"""``wulin plan ...``: validate, propose, approve, reject, deploy, roll back and audit timing plans.

Other command modules add to :data:`plan_app` (``wulin plan webster`` comes from
``wulin/cmd_controllers.py``).  The store is a SQLite file by default (``--store`` or
``WULIN_STORE`` for another file or a ``postgresql+psycopg://`` URL).  Every command that
changes something authenticates: ``--user NAME`` with a password prompt (or
``--password-stdin``), or an API token (``--token`` / ``WULIN_TOKEN``).  The deploy, rollback
and recovery work itself lives in :mod:`deploy.service`.  Heavy imports happen inside the
commands.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from wulin.options import NETWORKS_OPT

plan_app = typer.Typer(help="Timing plans: make, validate, propose, approve, deploy, roll back.", no_args_is_help=True)
user_app = typer.Typer(help="Users of the plan store and their roles (an admin's commands).", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for users (an admin's commands).", no_args_is_help=True)
plan_app.add_typer(user_app, name="user")
plan_app.add_typer(token_app, name="token")
console = Console()

STORE_OPT = typer.Option("runs/plan-store.sqlite", "--store", envvar="WULIN_STORE",
                         help="Plan store: a SQLite file or a SQLAlchemy URL (postgresql+psycopg://...).")
USER_OPT = typer.Option(None, "--user", "-u", envvar="WULIN_USER",
                        help="Log in as this user (asks for the password).")
TOKEN_OPT = typer.Option(None, "--token", envvar="WULIN_TOKEN", help="Log in with an API token instead.")
PW_STDIN_OPT = typer.Option(False, "--password-stdin", help="Read the password from the first line of stdin.")
ACT_TIMEOUT_OPT = typer.Option(400.0, "--activation-timeout", help="Seconds to wait for the cycle boundary.")


def _store(url: str, create: bool = False) -> Any:
    """The plan store; only `plan init` makes a new SQLite file (a mistyped path is an error)."""
    from deploy.store import PlanStore

    if not create:
        require_existing_store(url)
    return PlanStore(url)


def require_existing_store(url: str) -> None:
    """Refuse a SQLite store path that does not exist, naming `wulin plan init`."""
    from pathlib import Path

    from sim.errors import WulinError

    if "://" not in url and not Path(url).exists():
        raise WulinError(f"plan store {url}: no such file; create it with `wulin plan init --store {url}` "
                         "or name the existing store (--store or WULIN_STORE)")


def _password(prompt: str, from_stdin: bool) -> str:
    import getpass

    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return getpass.getpass(prompt)


def _login(store: Any, user: str | None, token: str | None, password_stdin: bool) -> Any:
    """The authenticated principal: an API token, or a user name and its password."""
    from sim.errors import WulinError

    if token:
        return store.authenticate_token(token)
    if user:
        return store.authenticate(user, _password(f"password for {user}: ", password_stdin))
    raise WulinError("this command changes the store: log in with --user NAME (password prompt) "
                     "or an API token (--token or WULIN_TOKEN)")


def _options(activation_timeout: float, activation: str = "pattern") -> Any:
    from deploy.service import DeployOptions
    from sim.errors import WulinError

    if activation not in ("pattern", "schedule"):
        raise WulinError(f"--activation {activation!r}: use 'pattern' or 'schedule'")
    return DeployOptions(activation_timeout, activation, log=lambda line: console.print(f"  {line}", highlight=False))


def register(app: typer.Typer) -> None:
    app.add_typer(plan_app, name="plan")


def _state(state: str) -> str:
    colour = {"approved": "cyan", "deployed": "green", "failed": "red", "rolled_back": "yellow",
              "rejected": "magenta", "deploying": "blue"}.get(state, "white")
    return f"[{colour}]{state}[/]"


@plan_app.command("validate")
def validate(
    plan_file: Path = typer.Argument(..., help="Plan JSON (one plan or a list)."),
    net: str | None = typer.Option(None, "--net", help="Network (.net.xml, its folder or a name on the "
                                   "search path): also check conflicts against it."),
    networks: list[Path] | None = NETWORKS_OPT,
) -> None:
    """Check plans against the engineering rules; exit 1 when any is violated."""
    from controllers.plan import DEFAULT_LIMITS, load_plans, validate_plan

    specs: dict[str, Any] = {}
    if net is not None:
        from sim.network_path import find_net_file
        from sim.topology import load_signal_specs

        specs = load_signal_specs(find_net_file(net))
    bad = 0
    for plan in load_plans(plan_file):
        spec = specs.get(plan.signal_id)
        if net is not None and spec is None:
            console.print(f"[red]{plan.signal_id}[/]: no such signal in {net}")
            bad += 1
            continue
        # against a network: what its own program runs is within bounds (a converted network's
        # long cycle), and its unused links and crossings need no green
        limits = DEFAULT_LIMITS.admitting_cycle(spec.cycle) if spec else DEFAULT_LIMITS
        found = validate_plan(plan, spec.conflicts if spec else None, limits,
                              unused=spec.unused_links if spec else ())
        head = f"{plan.signal_id} {plan.name or ''} sha256:{plan.short_hash}"
        if found:
            bad += 1
            console.print(f"[red]✗[/] {head}")
            for v in found:
                console.print(f"    - {v}")
        else:
            console.print(f"[green]✓[/] {head}: valid")
    if bad:
        raise typer.Exit(1)


@plan_app.command("init")
def init(admin: str = typer.Option(..., "--admin", help="Name of the first user, an admin."),
         password_stdin: bool = PW_STDIN_OPT, store: str = STORE_OPT) -> None:
    """Create the store (0600), its key file and the first admin."""
    from sim.errors import WulinError

    s = _store(store, create=True)
    pw = _password(f"new password for {admin}: ", password_stdin)
    if not password_stdin and _password("again: ", False) != pw:
        raise WulinError("the two passwords differ; nothing was created")
    who = s.init_admin(admin, pw)
    console.print(f"store {s.url} ready; admin {who.name}; key {s.key_file}; head file {s.head_file}",
                  highlight=False)


@user_app.command("add")
def user_add(name: str = typer.Argument(...),
             role: str = typer.Option(..., "--role", help="viewer, engineer, supervisor or admin"),
             new_password_stdin: bool = typer.Option(False, "--new-password-stdin",
                                                     help="Read the new user's password from stdin (after yours)."),
             user: str | None = USER_OPT, token: str | None = TOKEN_OPT, password_stdin: bool = PW_STDIN_OPT,
             store: str = STORE_OPT) -> None:
    """Add a user (an admin's step)."""
    s = _store(store)
    who = _login(s, user, token, password_stdin)
    key = s.add_user(who, name, role, _password(f"password for the new user {name}: ", new_password_stdin))
    console.print(f"user {key} ({role}) added")


@user_app.command("list")
def user_list(user: str | None = USER_OPT, token: str | None = TOKEN_OPT, password_stdin: bool = PW_STDIN_OPT,
              store: str = STORE_OPT) -> None:
    """Users, roles and whether they are disabled or locked (an admin's step)."""
    from sim.errors import WulinError

    s = _store(store)
    if _login(s, user, token, password_stdin).role != "admin":
        raise WulinError("listing users needs the admin role")
    for u in s.users():
        flags = " disabled" if u.disabled else ""
        flags += f" locked until {u.locked_until[:19]}" if u.locked_until else ""
        console.print(f"{u.name}\t{u.role}{flags}", highlight=False)


@user_app.command("disable")
def user_disable(name: str = typer.Argument(...),
                 enable: bool = typer.Option(False, "--enable", help="Enable the user again (and unlock)."),
                 user: str | None = USER_OPT, token: str | None = TOKEN_OPT, password_stdin: bool = PW_STDIN_OPT,
                 store: str = STORE_OPT) -> None:
    """Disable a user (their tokens stop working too) or, with --enable, enable and unlock them."""
    s = _store(store)
    s.set_disabled(_login(s, user, token, password_stdin), name, not enable)
    console.print(f"user {name} {'enabled' if enable else 'disabled'}")


@token_app.command("issue")
def token_issue(name: str = typer.Argument(..., help="The user the token acts for."),
                days: float = typer.Option(30.0, "--days", help="Lifetime in days."),
                user: str | None = USER_OPT, token: str | None = TOKEN_OPT, password_stdin: bool = PW_STDIN_OPT,
                store: str = STORE_OPT) -> None:
    """Issue an API token (shown once; the store keeps only its hash)."""
    s = _store(store)
    t = s.issue_token(_login(s, user, token, password_stdin), name, days)
    console.print(f"token {t.token_id} for {t.user}, expires {t.expires_at}:", highlight=False)
    console.print(t.token, highlight=False, soft_wrap=True)


@token_app.command("revoke")
def token_revoke(token_id: str = typer.Argument(..., help="The token's 12-digit id."),
                 user: str | None = USER_OPT, token: str | None = TOKEN_OPT, password_stdin: bool = PW_STDIN_OPT,
                 store: str = STORE_OPT) -> None:
    """Revoke an API token."""
    s = _store(store)
    s.revoke_token(_login(s, user, token, password_stdin), token_id)
    console.print(f"token {token_id} revoked")


def _read_evidence(path: Path) -> dict[str, Any]:
    """Evidence from a JSON object, or any text (a `wulin compare --markdown` table) kept verbatim."""
    from controllers.plan import sha256_hex
    from sim.errors import WulinError
    from sim.files import parse_json, read_text

    text = read_text(path, "evidence file")  # kind, size and UTF-8 checked
    if not text.strip():
        raise WulinError(f"{path}: the evidence file is empty")
    try:
        data = parse_json(text, path)
    except WulinError:  # not JSON a config could hold (syntax, depth, nan): kept verbatim as text
        data = None
    if not isinstance(data, dict):
        data = {"kind": "experiment", "text": text}
    data.setdefault("kind", "experiment")
    data.setdefault("source", str(path))
    data.setdefault("sha256", sha256_hex(text))
    return data


def _conflicts(signal_id: str, net: str | None) -> tuple[list[list[bool]], str]:
    """The conflict matrix of ``signal_id`` from ``net`` or, without it, from the one network
    on the search path that has the signal."""
    from sim.errors import WulinError
    from sim.network_path import find_net_file, network_dirs
    from sim.topology import load_signal_specs

    nets = ([find_net_file(net)] if net is not None
            else sorted(p for d in network_dirs().values() for p in d.glob("*.net.xml")))
    found: dict[Path, list[list[bool]]] = {}
    for path in nets:
        spec = load_signal_specs(path).get(signal_id)
        if spec is not None:
            found[path] = [list(row) for row in spec.conflicts]
    if not found:
        where = str(net) if net is not None else "any network on the search path"
        raise WulinError(f"signal {signal_id!r} is not in {where}: give its network with --net NET.net.xml "
                         "(approval checks the plan against the network's conflicts)")
    if len({json.dumps(m) for m in found.values()}) > 1:
        raise WulinError(f"signal {signal_id!r} is in several networks with different conflicts "
                         f"({', '.join(map(str, found))}): choose one with --net")
    path = next(iter(found))
    return found[path], str(path)


@plan_app.command("propose")
def propose(
    plan_file: Path = typer.Argument(..., help="Plan JSON (one plan or a list)."),
    signal: str | None = typer.Option(None, "--signal", help="Only the plan for this signal (from a list)."),
    evidence: Path | None = typer.Option(
        None, "--evidence", help="Results against the live plan: JSON, or text such as `wulin compare --markdown`."),
    net: str | None = typer.Option(None, "--net", help="The signal's network: .net.xml, folder or name (default: "
                                   "the network on the search path that has the signal); its conflicts are "
                                   "recorded for approval."),
    networks: list[Path] | None = NETWORKS_OPT,
    note: str = typer.Option("", "--note", help="Why this plan."),
    user: str | None = USER_OPT, token: str | None = TOKEN_OPT, password_stdin: bool = PW_STDIN_OPT,
    store: str = STORE_OPT,
) -> None:
    """Store plans as proposed (an engineer's step), with the network's conflicts for approval."""
    from controllers.plan import load_plans, validate_plan
    from sim.errors import WulinError

    ev = _read_evidence(evidence) if evidence is not None else None
    plans = load_plans(plan_file)
    if signal is not None:
        plans = [p for p in plans if p.signal_id == signal]
        if not plans:
            raise WulinError(f"{plan_file}: no plan for signal {signal!r}")
    conflicts = {p.signal_id: _conflicts(p.signal_id, net) for p in plans}
    s = _store(store)
    who = _login(s, user, token, password_stdin)
    for plan in plans:
        matrix, source = conflicts[plan.signal_id]
        rec = s.propose(plan, who, evidence=ev, note=note, conflicts=matrix, conflicts_source=source)
        found = validate_plan(plan, matrix)
        warn = f" [yellow]({len(found)} violation(s): it cannot be approved as it is)[/]" if found else ""
        console.print(f"proposed {rec.hash}  {plan.signal_id} {plan.name}{warn}", highlight=False)


@plan_app.command("evidence")
def add_evidence(ref: str = typer.Argument(..., help="Plan hash."),
                 file: Path = typer.Option(..., "--file", help="JSON or text results."),
                 user: str | None = USER_OPT, token: str | None = TOKEN_OPT, password_stdin: bool = PW_STDIN_OPT,
                 store: str = STORE_OPT) -> None:
    """Attach evidence to a stored plan."""
    s = _store(store)
    s.add_evidence(ref, _read_evidence(file), _login(s, user, token, password_stdin))
    console.print(f"evidence {file} attached to {ref}")


@plan_app.command("list")
def list_plans(signal: str | None = typer.Option(None, "--signal"), state: str | None = typer.Option(None, "--state"),
               store: str = STORE_OPT) -> None:
    """Plans in the store."""
    t = Table(show_header=True, header_style="bold")
    t.add_column("hash", no_wrap=True, min_width=12)
    for c in ("signal", "name", "state", "proposed by", "approved by", "cycle"):
        t.add_column(c)
    for r in _store(store).plans(signal, state):
        t.add_row(r.hash[:12], r.signal_id, r.name, _state(r.state), r.proposed_by, r.approved_by or "-",
                  f"{r.plan.cycle:g} s")
    console.print(t)


@plan_app.command("show")
def show(ref: str = typer.Argument(..., help="Plan hash (or a unique prefix)."), store: str = STORE_OPT) -> None:
    """One plan: its timings, validation, evidence and history."""
    from controllers.plan import validate_plan

    s = _store(store)
    r = s.get(ref)
    p = r.plan
    console.print(f"[bold]{r.hash}[/]  {p.signal_id}  {p.name}  {_state(r.state)}")
    console.print(f"cycle {p.cycle:g} s, offset {p.offset:g} s, yellow {p.yellow:g} s, all-red {p.all_red:g} s; "
                  f"source {p.source or '-'}")
    t = Table(show_header=True, header_style="bold")
    for c in ("stage", "state", "green", "split", "min", "walk", "ped clr"):
        t.add_column(c)
    for k, st in enumerate(p.stages):
        t.add_row(f"{k} {st.name}", st.state, f"{st.green:g}", f"{p.split(k):g}", f"{st.min_green:g}",
                  f"{st.walk:g}", f"{st.ped_clearance:g}")
    console.print(t)
    found = validate_plan(p, r.conflicts)
    against = "with the network's conflicts" if r.conflicts is not None else "no conflict data on record"
    console.print("validation: " + ("[green]valid[/]" if not found else "[red]" + "; ".join(found) + "[/]")
                  + f" ({against})")
    for e in s.evidence(r.hash):
        console.print(f"evidence ({e.get('kind')}, {e['added_by']}): {json.dumps(e, sort_keys=True)[:300]}")
    for e in s.audit(r.hash):
        console.print(f"  #{e.seq} {e.ts[:19]} {e.actor:10s} {e.action:14s} {e.outcome}")


@plan_app.command("diff")
def diff(a: str = typer.Argument(..., help="Plan hash or JSON file."),
         b: str | None = typer.Argument(None, help="Plan hash or JSON file (default: the live plan of A's signal)."),
         store: str = STORE_OPT) -> None:
    """What changes from plan A to plan B (or from the live plan to A)."""
    from controllers.plan import TimingPlan, change_size, diff_plans
    from sim.errors import WulinError

    s = _store(store)

    def load(ref: str) -> TimingPlan:
        return TimingPlan.load(ref) if ref.endswith(".json") or Path(ref).is_file() else s.get(ref).plan

    new = load(a)
    if b is None:
        live = s.live_plan(new.signal_id)
        if live is None:
            raise WulinError(f"no plan is deployed on {new.signal_id!r}; name two plans to compare")
        old = live.plan
    else:
        old, new = new, load(b)
    lines = diff_plans(old, new)
    for line in lines or ["the plans are identical"]:
        console.print(line)
    if lines:
        console.print(f"change size: {change_size(old, new):g} s")


@plan_app.command("approve")
def approve(ref: str = typer.Argument(...), user: str | None = USER_OPT, token: str | None = TOKEN_OPT,
            password_stdin: bool = PW_STDIN_OPT, store: str = STORE_OPT) -> None:
    """Approve a proposed plan (a supervisor other than the proposer); every rule is checked."""
    s = _store(store)
    r = s.approve(ref, _login(s, user, token, password_stdin))
    console.print(f"approved {r.hash} by {r.approved_by} (signed; binds this hash)")


@plan_app.command("reject")
def reject(ref: str = typer.Argument(...), reason: str = typer.Option(..., "--reason"),
           user: str | None = USER_OPT, token: str | None = TOKEN_OPT, password_stdin: bool = PW_STDIN_OPT,
           store: str = STORE_OPT) -> None:
    """Reject a proposed or approved plan, with a reason."""
    s = _store(store)
    r = s.reject(ref, _login(s, user, token, password_stdin), reason)
    console.print(f"rejected {r.hash}")


def _report(out: Any) -> None:
    colour = "green" if out.ok else "red"
    console.print(f"[{colour}]{out.state}[/]: {out.message}" + (f" ({out.pdus} PDUs)" if out.pdus else ""),
                  highlight=False)
    if not out.ok:
        raise typer.Exit(1)


@contextmanager
def _term_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill``, a service manager's stop) ends a device action as Ctrl-C does: the
    controller is left consistent (transaction aborted, or the snapshot restored) and the outcome
    recorded, instead of the process dying mid-activation."""
    def _raise(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, _raise)
    except ValueError:  # not the main thread (an embedding program): leave its handlers alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@plan_app.command("deploy")
def deploy(
    ref: str = typer.Argument(..., help="Hash of an approved plan."),
    plan_file: Path | None = typer.Option(None, "--plan", help="The plan file you mean to send: its hash must be the approved one."),
    activation_timeout: float = ACT_TIMEOUT_OPT,
    activation: str = typer.Option("pattern", "--activation",
                                   help="pattern (systemPatternControl) or schedule (the time-of-day action's pattern)."),
    user: str | None = USER_OPT, token: str | None = TOKEN_OPT, password_stdin: bool = PW_STDIN_OPT,
    store: str = STORE_OPT,
) -> None:
    """Send an approved plan to its controller (NTCIP 1202); rolls back by itself on failure."""
    from controllers.plan import TimingPlan
    from deploy import service

    opts = _options(activation_timeout, activation)
    s = _store(store)
    who = _login(s, user, token, password_stdin)
    plan = TimingPlan.load(plan_file) if plan_file else None
    console.print(f"deploying {ref} as {who.name}")
    with _term_as_interrupt():
        out = service.deploy(s, ref, who, opts, plan)
    _report(out)


@plan_app.command("rollback")
def rollback(ref: str = typer.Argument(..., help="Hash of a deployed plan."),
             activation_timeout: float = ACT_TIMEOUT_OPT,
             user: str | None = USER_OPT, token: str | None = TOKEN_OPT, password_stdin: bool = PW_STDIN_OPT,
             store: str = STORE_OPT) -> None:
    """Put the controller back as it was before the plan was deployed (a supervisor's step)."""
    from deploy import service

    opts = _options(activation_timeout)
    s = _store(store)
    who = _login(s, user, token, password_stdin)
    with _term_as_interrupt():
        out = service.rollback(s, ref, who, opts)
    _report(out)


@plan_app.command("recover")
def recover(signal: str = typer.Argument(..., help="The signal whose deploy or rollback died."),
            activation_timeout: float = ACT_TIMEOUT_OPT,
            user: str | None = USER_OPT, token: str | None = TOKEN_OPT, password_stdin: bool = PW_STDIN_OPT,
            store: str = STORE_OPT) -> None:
    """After a killed deploy: read the controller, then finish or roll back, and record what was found."""
    from deploy import service

    opts = _options(activation_timeout)
    s = _store(store)
    who = _login(s, user, token, password_stdin)
    lease = s.lease(signal)
    with _term_as_interrupt():
        if lease is not None and lease.purpose.startswith("set-"):  # a time-of-day plan set's deploy
            from deploy import set_service

            out = set_service.recover_set(s, signal, who, opts)
        else:
            out = service.recover(s, signal, who, opts)
    # A recovery that recorded a consistent state succeeded, whichever way it went.
    console.print(f"recovered {out.plan_hash[:12]} on {signal}: [bold]{out.state}[/]: {out.message}",
                  highlight=False)


@plan_app.command("audit")
def audit(ref: str | None = typer.Argument(None, help="Only this plan's entries."),
          verify: bool = typer.Option(False, "--verify", help="Recompute the keyed chain, compare the published head; exit 1 if tampered."),
          store: str = STORE_OPT) -> None:
    """The audit log (who, when, what, outcome); --verify checks it was not altered."""
    s = _store(store)
    if verify:
        check = s.verify_audit()
        for p in check.problems:
            console.print(f"[red]{p}[/]")
        state = "[green]audit log intact[/]" if check.ok else "[red]audit log TAMPERED[/]"
        console.print(f"{state}; {check.entries} entries, head {check.head}, published head #{check.published} "
                      f"in {s.head_file}", highlight=False)
        if not check.ok:
            raise typer.Exit(1)
        return
    for e in s.audit(ref):
        det = {k: v for k, v in e.detail.items() if k not in ("snapshot", "steps")}
        text = json.dumps(det, sort_keys=True, ensure_ascii=False)
        console.print(f"#{e.seq:<4d} {e.ts[:19]}  {e.actor:9s} {e.channel:6s} {e.action:15s} {e.plan_hash[:12] or '-':12s} "
                      f"{e.outcome:9s} {text[:160]}", highlight=False, soft_wrap=True)
