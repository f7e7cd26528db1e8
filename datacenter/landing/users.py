"""System users of the landing: one locked-password, no-shell account per agent.

``ensure_account`` runs ``useradd --system`` (with a group of the same name) and adds it to
the agents' group that sshd's ``Match Group`` names; ``usermod -p '*'`` unlocks it for key
logins when sshd runs with ``UsePAM no`` (a ``!`` password locks every login there). Without
``system_users`` (tests, non-root, a dry run) no user is made and the current user owns the
folders. Commands run with a fixed argument list, never through a shell.
"""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
from dataclasses import dataclass

from shared.errors import CallCollectError  # useradd failed, or not root: exit 1

AGENTS_GROUP = "callcollect-agents"
NOLOGIN = "/usr/sbin/nologin"


@dataclass(frozen=True, slots=True)
class Owner:
    uid: int
    gid: int


def current_owner() -> Owner:
    return Owner(os.geteuid(), os.getegid())


def owner_of(user: str) -> Owner:
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise CallCollectError(f"no user {user!r} on this host: pass an existing user") from None
    return Owner(entry.pw_uid, entry.pw_gid)


def ensure_account(account: str, *, group: str = AGENTS_GROUP) -> Owner:
    """The agent's system user, made if missing, in ``group``; its uid and own group's gid."""
    if os.geteuid() != 0:
        raise CallCollectError(
            "making the landing account needs root: run `datacenter agent approve` as root, or "
            "with --no-system-user to prepare the folders only"
        )
    _ensure_group(group)
    try:
        pwd.getpwnam(account)
    except KeyError:
        _run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/",
              "--shell", NOLOGIN, "--groups", group, account])  # fmt: skip
    else:
        _run(["usermod", "--append", "--groups", group, account])
    _run(["usermod", "-p", "*", account])
    return owner_of(account)


def remove_account(account: str) -> None:
    """``userdel`` the account (its group goes with it); nothing if it does not exist."""
    try:
        pwd.getpwnam(account)
    except KeyError:
        return
    _run(["userdel", account])


def _ensure_group(group: str) -> None:
    try:
        grp.getgrnam(group)
    except KeyError:
        _run(["groupadd", "--system", group])


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CallCollectError(
            f"`{' '.join(argv)}` failed ({done.returncode}): {done.stderr.strip()}"
        )
