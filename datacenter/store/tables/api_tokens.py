"""Per-user API tokens (migration: v0010_api_tokens).

Contract:

- A token belongs to one user and acts exactly as that user (the API builds the same
  ``TenantScope`` the user's session would). Deleting the user deletes their tokens.
- Only the SHA-256 of the token is stored (``token_hash``, hex, unique); the token itself is
  shown once when it is made. ``prefix`` (the first characters) lets a person tell tokens apart
  in a list without the store holding anything that authenticates.
- ``revoked_at`` set means refused; rows are kept so a list shows when a token stopped working.
  ``last_used_at`` is written on use.

Tokens are owned by users, not by tenants (users are not tenant-keyed either: staff have no
tenant), so ``token_id`` alone is the key, like ``users.user_id``.
"""

from __future__ import annotations

import sqlalchemy as sa

from datacenter.store.tables.metadata import UTCDateTime, metadata

TOKEN_HASH_LENGTH = 64  # SHA-256, hex
TOKEN_PREFIX_LENGTH = 12

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("token_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "user_id",
        sa.Integer,
        sa.ForeignKey("users.user_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("prefix", sa.String(TOKEN_PREFIX_LENGTH), nullable=False),
    sa.Column("token_hash", sa.String(TOKEN_HASH_LENGTH), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_used_at", UTCDateTime, nullable=True),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
)
