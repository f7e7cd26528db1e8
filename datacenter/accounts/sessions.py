"""Server-side session records: a signed-in browser is a row in ``user_sessions``.

Contract:

- ``start`` makes a random session id (returned once, for the signed cookie) and stores only
  its SHA-256. ``look_up`` (read-only) answers the user id of a live session: not ended, used
  within ``idle`` and younger than ``lifetime``; and whether to end an expired one or refresh
  ``last_seen_at``, which is asked at most once a ``TOUCH_EVERY`` so browsing is not a write
  per click. ``write_back`` does that; ``resume`` is both in one transaction.
- ``end`` ends one session (sign-out); ``end_all`` ends every session of a user (password change,
  disable, role or scope change, an admin's reset), except ``keep`` when given.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from datacenter.store.tables.accounts import user_sessions

TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class SessionLimits:
    idle: timedelta
    lifetime: timedelta


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def start(conn: sa.Connection, user_id: int, *, now: datetime, address: str = "") -> str:
    session_id = secrets.token_urlsafe(32)
    conn.execute(
        user_sessions.insert().values(
            session_hash=_hash(session_id),
            user_id=user_id,
            created_at=now,
            last_seen_at=now,
            address=address[:64],
        )
    )
    return session_id


@dataclass(frozen=True, slots=True)
class Lookup:
    """What the store says of a session id: whose it is (None: no live session) and what to
    write back: ``"touch"`` (refresh ``last_seen_at``), ``"idle"``/``"lifetime"`` (end it)."""

    user_id: int | None
    write: str | None = None


def look_up(
    conn: sa.Connection, session_id: str, *, now: datetime, limits: SessionLimits
) -> Lookup:
    """Read-only: a request without anything to write back takes no write lock."""
    row = conn.execute(
        sa.select(user_sessions).where(user_sessions.c.session_hash == _hash(session_id))
    ).one_or_none()
    if row is None or row.ended_at is not None:
        return Lookup(None)
    if now - row.created_at >= limits.lifetime:
        return Lookup(None, "lifetime")
    if now - row.last_seen_at >= limits.idle:
        return Lookup(None, "idle")
    if now - row.last_seen_at >= TOUCH_EVERY:
        return Lookup(int(row.user_id), "touch")
    return Lookup(int(row.user_id))


def write_back(conn: sa.Connection, session_id: str, lookup: Lookup, *, now: datetime) -> None:
    """Do what ``look_up`` asked for (in the caller's write transaction)."""
    key = _hash(session_id)
    if lookup.write == "touch":
        conn.execute(
            user_sessions.update()
            .where(user_sessions.c.session_hash == key)
            .values(last_seen_at=now)
        )
    elif lookup.write is not None:
        _end(conn, key, now, lookup.write)


def resume(
    conn: sa.Connection, session_id: str, *, now: datetime, limits: SessionLimits
) -> int | None:
    """The user id of a live session ``session_id``, or None (look-up and write-back at once)."""
    lookup = look_up(conn, session_id, now=now, limits=limits)
    write_back(conn, session_id, lookup, now=now)
    return lookup.user_id


def end(conn: sa.Connection, session_id: str, *, now: datetime, reason: str) -> None:
    _end(conn, _hash(session_id), now, reason)


def end_all(
    conn: sa.Connection, user_id: int, *, now: datetime, reason: str, keep: str | None = None
) -> int:
    """End every live session of ``user_id`` (but ``keep``); how many were ended."""
    query = user_sessions.update().where(
        user_sessions.c.user_id == user_id, user_sessions.c.ended_at.is_(None)
    )
    if keep is not None:
        query = query.where(user_sessions.c.session_hash != _hash(keep))
    return int(conn.execute(query.values(ended_at=now, ended_reason=reason)).rowcount)


def live_count(conn: sa.Connection, user_id: int) -> int:
    return int(
        conn.scalar(
            sa.select(sa.func.count()).where(
                user_sessions.c.user_id == user_id, user_sessions.c.ended_at.is_(None)
            )
        )
        or 0
    )


def _end(conn: sa.Connection, key: str, now: datetime, reason: str) -> None:
    conn.execute(
        user_sessions.update()
        .where(user_sessions.c.session_hash == key, user_sessions.c.ended_at.is_(None))
        .values(ended_at=now, ended_reason=reason)
    )
