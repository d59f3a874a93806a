"""Tamper evidence that does not depend on the database: a key outside it, and a published head.

Why HMAC-SHA256 with one store key rather than per-user Ed25519 keys: the party that must
check an approval is the deploy path on the same host(s) as the store, and the threat is
someone who can write the database (a copied SQLite file, a PostgreSQL account) but not the
key file.  A shared secret kept beside the program, never in the database, defeats that
attacker with the standard library alone; per-user private keys would each need their own
protection (a passphrase at every approval) for no gain against this threat.  Someone who can
read the key file can forge signatures: keep it readable by the service account only (it is
created 0600).

* :func:`load_key` creates the key (256 random bits) on first use, 0600.
* :func:`approval_mac` signs (plan hash, signal, approver, role, time, proposer).
* :func:`entry_mac` keys each audit entry to the one before (an HMAC chain): removing entries
  and re-chaining, or appending one, needs the key.
* :class:`HeadFile` appends the signed chain head (sequence number and MAC) after every
  write, outside the database, so truncating the newest rows is seen by ``--verify``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from controllers.plan import canonical_json
from sim.errors import WulinError

KEY_BYTES = 32


def private_file(path: Path) -> None:
    """Create ``path`` (and its folder) readable and writable by its owner only, if missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def default_paths(store_url: str) -> tuple[Path, Path]:
    """Key and head files for a store: ``$WULIN_KEY_FILE`` / ``$WULIN_HEAD_FILE``, or files
    named after the store under ``$XDG_CONFIG_HOME/wulin`` (``~/.config/wulin``)."""
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "wulin"
    tag = hashlib.sha256(store_url.encode()).hexdigest()[:16]
    key = os.environ.get("WULIN_KEY_FILE") or str(base / f"store-{tag}.key")
    head = os.environ.get("WULIN_HEAD_FILE") or str(base / f"store-{tag}.head")
    return Path(key), Path(head)


def load_key(path: Path, create: bool) -> bytes:
    """The store key in ``path``; a new one is written (0600) when missing and ``create``.

    Raises:
        WulinError: the file is missing (and ``create`` is false), unreadable or malformed.
    """
    if not path.exists():
        if not create:
            raise WulinError(
                f"store key {path} is missing: approvals and the audit log cannot be checked without it; "
                "restore it from backup or set WULIN_KEY_FILE to it"
            )
        private_file(path)
        path.write_text(secrets.token_hex(KEY_BYTES) + "\n", encoding="ascii")
    try:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:  # like ssh: a key others can read is no secret
            raise WulinError(f"store key {path} is readable by others (mode {mode:04o}); `chmod 600 {path}`")
        key = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise WulinError(f"store key {path}: cannot read it ({exc})") from None
    if len(key) != KEY_BYTES:
        raise WulinError(f"store key {path}: expected {KEY_BYTES} bytes of hex, found {len(key)}")
    return key


def mac(key: bytes, purpose: str, fields: list[object]) -> str:
    """HMAC-SHA256 over ``purpose`` and the canonical JSON of ``fields`` (hex)."""
    return hmac.new(key, canonical_json([purpose, *fields]).encode(), hashlib.sha256).hexdigest()


def same(a: str | None, b: str) -> bool:
    """Constant-time comparison of two MACs."""
    return a is not None and hmac.compare_digest(a, b)


@dataclass(frozen=True)
class ApprovalClaim:
    """What an approval signature binds."""

    plan_hash: str
    signal_id: str
    approver: str
    role: str
    approved_at: str
    proposer: str

    def fields(self) -> list[object]:
        """The signed values, in order."""
        return [self.plan_hash, self.signal_id, self.approver, self.role, self.approved_at, self.proposer]


def approval_mac(key: bytes, claim: ApprovalClaim) -> str:
    """The signature an approval carries."""
    return mac(key, "approval", claim.fields())


def entry_mac(key: bytes, fields: list[object], prev_mac: str) -> str:
    """The keyed hash chaining one audit entry to the one before."""
    return mac(key, "audit", [*fields, prev_mac])


@dataclass(frozen=True)
class Head:
    """A published chain head: the newest entry's sequence number and MAC."""

    seq: int
    entry_mac: str


class HeadFile:
    """Signed chain heads, one line per write, appended outside the database.

    Args:
        path: The head file (created 0600).
        key: The store key (each line is signed so it cannot be rewritten without it).
    """

    def __init__(self, path: Path, key: bytes) -> None:
        self.path, self._key = path, key

    def publish(self, head: Head) -> None:
        """Append ``head``, signed, to the file."""
        private_file(self.path)
        sig = mac(self._key, "head", [head.seq, head.entry_mac])
        with open(self.path, "a", encoding="ascii") as f:
            f.write(f"{head.seq} {head.entry_mac} {sig}\n")

    def latest(self) -> tuple[Head | None, list[str]]:
        """The highest correctly signed head, and problems with the file's lines."""
        if not self.path.exists():
            return None, []
        best: Head | None = None
        problems: list[str] = []
        for n, line in enumerate(self.path.read_text(encoding="ascii", errors="replace").splitlines(), 1):
            parts = line.split()
            ok = len(parts) == 3 and parts[0].isdigit()
            if ok and same(parts[2], mac(self._key, "head", [int(parts[0]), parts[1]])):
                head = Head(int(parts[0]), parts[1])
                best = head if best is None or head.seq > best.seq else best
            else:
                problems.append(f"head file {self.path} line {n}: not signed with the store key (forged or damaged)")
        return best, problems
