"""Sign-in throttle and lock-out, recorded in the store so they hold across gunicorn workers.

Contract:

- Every attempt is a row in ``login_attempts`` (email as typed, normalised; source address).
  Rows of that email and address older than ``KEEP`` are deleted as new ones come in, so a
  guesser cannot grow the table without bound (the audit log keeps the history).
- ``wait_seconds`` is how long a new attempt must wait: after ``free`` failures (of the email, or
  of the address, since its last success within ``window``) each further failure doubles the
  wait from ``base`` up to ``cap``. The web layer refuses early attempts with "try again in N s"
  instead of sleeping, so a guesser ties up no worker thread.
- After ``lock_after`` consecutive failures an existing account is locked (``users.locked_at``)
  until a tenant admin, technician or admin lifts it (``unlock``); a success resets the count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from datacenter.store.tables.accounts import login_attempts
from datacenter.store.tables.core import users

KEEP = timedelta(days=1)  # longer than any policy's window


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    free_per_account: int = 3
    free_per_address: int = 10  # an office behind one NAT address shares it
    base: timedelta = timedelta(seconds=2)
    cap: timedelta = timedelta(minutes=15)
    window: timedelta = timedelta(hours=1)
    lock_after: int = 10


def record_attempt(
    conn: sa.Connection, email: str, address: str, *, ok: bool, now: datetime
) -> None:
    email, address = email.strip().lower()[:254], address[:64]
    for column, value in ((login_attempts.c.email, email), (login_attempts.c.address, address)):
        conn.execute(
            login_attempts.delete().where(column == value, login_attempts.c.at < now - KEEP)
        )
    conn.execute(login_attempts.insert().values(at=now, email=email, address=address, succeeded=ok))


def wait_seconds(
    conn: sa.Connection, email: str, address: str, *, now: datetime, policy: ThrottlePolicy
) -> int:
    """Whole seconds before another attempt for ``email`` from ``address`` is heard (0: now)."""
    by_email = _wait(
        conn, login_attempts.c.email == email.strip().lower(), now, policy,
        policy.free_per_account,
    )  # fmt: skip
    by_address = _wait(
        conn, login_attempts.c.address == address, now, policy, policy.free_per_address
    )
    return max(by_email, by_address)


def _wait(
    conn: sa.Connection,
    who: sa.ColumnElement[bool],
    now: datetime,
    policy: ThrottlePolicy,
    free: int,
) -> int:
    since = now - policy.window
    last_ok = conn.scalar(
        sa.select(sa.func.max(login_attempts.c.at)).where(
            who, login_attempts.c.at >= since, login_attempts.c.succeeded.is_(True)
        )
    )
    start = max(since, last_ok) if last_ok is not None else since
    failures, last_failure = conn.execute(
        sa.select(sa.func.count(), sa.func.max(login_attempts.c.at)).where(
            who, login_attempts.c.at >= start, login_attempts.c.succeeded.is_(False)
        )
    ).one()
    if failures < free or last_failure is None:
        return 0
    if isinstance(last_failure, str):  # SQLite's max() of a DateTime column comes back as text
        last_failure = datetime.fromisoformat(last_failure).replace(tzinfo=now.tzinfo)
    delay = min(policy.base * 2 ** min(failures - free, 20), policy.cap)
    remaining: float = (last_failure + delay - now).total_seconds()
    return max(0, math.ceil(remaining))


def register_failure(
    conn: sa.Connection, email: str, *, now: datetime, policy: ThrottlePolicy
) -> bool:
    """Count a failure against an existing account; True when this one locked it."""
    address = email.strip().lower()
    row = conn.execute(
        sa.select(users.c.user_id, users.c.failed_logins, users.c.locked_at).where(
            users.c.email == address
        )
    ).one_or_none()
    if row is None:
        return False
    failures = row.failed_logins + 1
    lock = row.locked_at is None and failures >= policy.lock_after
    values: dict[str, object] = {"failed_logins": failures}
    if lock:
        values["locked_at"] = now
    conn.execute(users.update().where(users.c.user_id == row.user_id).values(**values))
    return lock


def register_success(conn: sa.Connection, user_id: int) -> None:
    conn.execute(users.update().where(users.c.user_id == user_id).values(failed_logins=0))


def unlock(conn: sa.Connection, user_id: int) -> bool:
    """Lift a lock-out; False if the account was not locked."""
    result = conn.execute(
        users.update()
        .where(users.c.user_id == user_id, users.c.locked_at.is_not(None))
        .values(locked_at=None, failed_logins=0)
    )
    return bool(result.rowcount)
