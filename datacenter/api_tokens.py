"""Per-user API tokens: made, listed, revoked by their owner, and checked on each API request.

Contract:

- ``create_token`` returns the token once (``cc_`` + 43 URL-safe characters: 32 random bytes);
  the store keeps only its SHA-256. SHA-256, not argon2: a password is guessable, so its hash
  must be slow, but a 256-bit random token cannot be guessed however fast the hash is; and an
  unsalted hash can be looked up by index, where argon2 would need a salt per row, a scan and
  tens of milliseconds of CPU on every API request.
- ``authenticate_token`` answers the owner (a ``User``) for a live token of an enabled
  account, or None; a revoked token, a disabled owner and an unknown token are all None. It
  records ``last_used_at`` (at most once a minute per token, so a busy client does not turn
  every read into a write). Call it inside ``write_transaction``.
- Only the owner lists or revokes their tokens (every function takes the ``user_id``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from datacenter.accounts.users import User, get_user
from datacenter.store.tables.api_tokens import TOKEN_PREFIX_LENGTH, api_tokens
from shared.errors import ValidationError

TOKEN_PREFIX = "cc_"  # noqa: S105 - a label, not a secret
TOKEN_BYTES = 32
LAST_USED_RESOLUTION = timedelta(minutes=1)
MAX_NAME = 100


@dataclass(frozen=True, slots=True)
class ApiToken:
    token_id: int
    user_id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(conn: sa.Connection, user_id: int, name: str) -> tuple[ApiToken, str]:
    """A new token for ``user_id``: the stored row and the token itself (shown once)."""
    label = name.strip()
    if not label or len(label) > MAX_NAME:
        raise ValidationError("name", f"give the token a name of 1 to {MAX_NAME} characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    token_id = conn.execute(
        api_tokens.insert()
        .values(
            user_id=user_id,
            name=label,
            prefix=token[:TOKEN_PREFIX_LENGTH],
            token_hash=token_hash(token),
            created_at=datetime.now(UTC),
        )
        .returning(api_tokens.c.token_id)
    ).scalar_one()
    row = conn.execute(api_tokens.select().where(api_tokens.c.token_id == token_id)).one()
    return _token(row), token


def list_tokens(conn: sa.Connection, user_id: int) -> list[ApiToken]:
    query = (
        api_tokens.select()
        .where(api_tokens.c.user_id == user_id)
        .order_by(api_tokens.c.created_at.desc(), api_tokens.c.token_id.desc())
    )
    return [_token(row) for row in conn.execute(query)]


def revoke_token(conn: sa.Connection, user_id: int, token_id: int) -> bool:
    """Revoke one of the user's own tokens; False if they have no such live token."""
    result = conn.execute(
        api_tokens.update()
        .where(
            api_tokens.c.token_id == token_id,
            api_tokens.c.user_id == user_id,
            api_tokens.c.revoked_at.is_(None),
        )
        .values(revoked_at=datetime.now(UTC))
    )
    return result.rowcount == 1


def authenticate_token(conn: sa.Connection, token: str) -> User | None:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    digest = token_hash(token)
    row = conn.execute(api_tokens.select().where(api_tokens.c.token_hash == digest)).one_or_none()
    # The index found the row by the hash; compare again in constant time all the same.
    if row is None or not hmac.compare_digest(row.token_hash, digest) or row.revoked_at:
        return None
    user = get_user(conn, row.user_id)
    if user is None or user.disabled:
        return None
    now = datetime.now(UTC)
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        conn.execute(
            api_tokens.update()
            .where(api_tokens.c.token_id == row.token_id)
            .values(last_used_at=now)
        )
    return user


def _token(row: sa.Row[Any]) -> ApiToken:
    return ApiToken(**{name: getattr(row, name) for name in ApiToken.__slots__})
