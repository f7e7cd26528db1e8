"""Each agent's own landing folder: names, owners and modes, made by `datacenter agent approve`.

Layout under ``landing.root`` (docs/landing.md)::

    <account>/                  root:root 0755      the agent's SFTP chroot (sshd requires root)
      incoming/                 <account>:<svc> 0770 the agent uploads batches; ingest takes them
      heartbeats/               <account>:<svc> 0770 the agent uploads signed heartbeats
      recordings/               <account>:<svc> 0770 the agent uploads call recordings (.ccr)
      receipts/                 <svc>:<account> 2750 ingest writes receipts (0640, group inherited)
    .keys/                      root:root 0755      outside every chroot
      <account>                 root:<account> 0640 the agent's SSH public key (AuthorizedKeysFile)
    <tenant>/quarantine/        <svc>               outside every chroot: agents cannot reach them
    <tenant>/archive/

``<svc>`` is the data centre's service user (the ingest workers run as it). Every chroot
component up to ``/`` must be root-owned and not group- or world-writable (sshd refuses the
login otherwise), so ``landing.root`` and its parents are root's. Account names contain ``_``,
which tenant slugs never do, so an account folder cannot collide with a tenant folder.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from datacenter.landing.users import Owner

ACCOUNT_PREFIX = "cc_"
MAX_ACCOUNT = 32  # useradd's limit
KEYS_DIR = ".keys"
INCOMING, HEARTBEATS, RECEIPTS = "incoming", "heartbeats", "receipts"
RECORDINGS = "recordings"
AGENT_FOLDERS = (INCOMING, HEARTBEATS, RECEIPTS, RECORDINGS)
_UNSAFE = re.compile(r"[^a-z0-9-]")
ACCOUNT_RE = re.compile(r"^cc_[a-z0-9-]+_[0-9a-f]{6}$")


def account_name(tenant_slug: str, agent_id: str) -> str:
    """``cc_<agent>_<hash6>``: readable, at most 32 characters, unique per (tenant, agent)."""
    digest = hashlib.sha256(f"{tenant_slug}/{agent_id}".encode()).hexdigest()[:6]
    readable = _UNSAFE.sub("-", agent_id.lower())[: MAX_ACCOUNT - len(ACCOUNT_PREFIX) - 7]
    return f"{ACCOUNT_PREFIX}{readable}_{digest}"


def is_account(name: str) -> bool:
    return bool(ACCOUNT_RE.match(name))


@dataclass(frozen=True, slots=True)
class AgentLanding:
    """Where one agent's account lives under ``landing.root``."""

    root: Path
    account: str

    @property
    def chroot(self) -> Path:
        return self.root / self.account

    def folder(self, name: str) -> Path:
        return self.chroot / name

    @property
    def authorized_keys(self) -> Path:
        return self.root / KEYS_DIR / self.account


def create_landing(
    landing: AgentLanding, *, tenant_slug: str, ssh_public_key: str, agent: Owner, service: Owner
) -> list[Path]:
    """Make (or repair) the agent's folders and key file with their owners and modes.

    Also the tenant's folder, where ingest (as the service user) keeps quarantine and archive:
    ``landing.root`` itself is root's, so ingest could not make it.
    """
    root_owner = Owner(uid=0, gid=0) if os.geteuid() == 0 else service
    landing.root.mkdir(parents=True, exist_ok=True)
    tenant_dir = landing.root / tenant_slug
    if not tenant_dir.exists():  # an existing one may be the old shared chroot: left as it is
        _directory(tenant_dir, service, 0o750)
    made = [
        _directory(landing.root, root_owner, 0o755),
        _directory(landing.chroot, root_owner, 0o755),
        _directory(landing.folder(INCOMING), Owner(agent.uid, service.gid), 0o770),
        _directory(landing.folder(HEARTBEATS), Owner(agent.uid, service.gid), 0o770),
        _directory(landing.folder(RECORDINGS), Owner(agent.uid, service.gid), 0o770),
        _directory(landing.folder(RECEIPTS), Owner(service.uid, agent.gid), 0o2750),
        _directory(landing.authorized_keys.parent, root_owner, 0o755),
    ]
    keys = landing.authorized_keys
    keys.write_text(ssh_public_key.strip() + "\n", encoding="ascii")
    _own(keys, Owner(root_owner.uid, agent.gid), 0o640)
    return [*made, keys]


def _directory(path: Path, owner: Owner, mode: int) -> Path:
    path.mkdir(exist_ok=True)
    _own(path, owner, mode)
    return path


def _own(path: Path, owner: Owner, mode: int) -> None:
    if os.geteuid() == 0:
        os.chown(path, owner.uid, owner.gid, follow_symlinks=False)
    path.chmod(mode)


RECEIPT_KEEP_DAYS = 7  # an agent offline longer re-sends; ingest then receipts it again
PRUNE_EVERY_SECONDS = 3600.0  # a pass lists every account's receipts: not on every poll
_last_prune = {"at": float("-inf")}  # per process (monotonic clock)


def prune_receipts_now_and_then(root: Path, accounts: list[str]) -> int:
    """``prune_receipts`` at most once per ``PRUNE_EVERY_SECONDS`` in this process."""
    now = time.monotonic()
    if now - _last_prune["at"] < PRUNE_EVERY_SECONDS:
        return 0
    _last_prune["at"] = now
    return prune_receipts(root, accounts, before=time.time() - RECEIPT_KEEP_DAYS * 86_400)


def prune_receipts(root: Path, accounts: list[str], *, before: float) -> int:
    """Delete receipts older than ``before`` (epoch seconds) from the agents' ``receipts/``.

    The agent cannot delete them there (the folder is the data centre's); it has read a
    receipt long before this, and one it missed makes it re-send, which is receipted again.
    """
    pruned = 0
    for account in accounts:
        folder = root / account / RECEIPTS
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            continue
        for entry in entries:
            if (
                entry.is_file(follow_symlinks=False)
                and entry.stat(follow_symlinks=False).st_mtime < before
            ):
                Path(entry.path).unlink(missing_ok=True)
                pruned += 1
    return pruned
