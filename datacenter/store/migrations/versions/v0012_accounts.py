"""Accounts: tenant admins, user scopes, server-side sessions, sign-in throttle, audit, TOTP.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 05:00:00

- ``users.role`` may be ``tenant_admin`` (a tenant's own administrator, who belongs to a tenant
  like a ``tenant`` user); ``users`` gains ``totp_secret``, ``totp_last_step``, ``failed_logins`` and ``locked_at``.
- ``user_scopes``, ``user_sessions``, ``login_attempts``, ``audit_log``, ``recovery_codes`` and
  ``number_masks``: see datacenter/store/tables/accounts.py.

SQLite cannot alter a CHECK constraint, so ``users`` is rebuilt in batch mode.
"""

from __future__ import annotations

from collections.abc import Sequence

from typing import Any

import sqlalchemy as sa
from alembic import op

from datacenter.store.tables.metadata import UTCDateTime, JSONDocument

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_ROLE = "role IN ('tenant', 'tenant_admin', 'technician', 'admin')"
NEW_ROLE_TENANT = (
    "(role IN ('tenant', 'tenant_admin') AND tenant_id IS NOT NULL) "
    "OR (role NOT IN ('tenant', 'tenant_admin') AND tenant_id IS NULL)"
)
OLD_ROLE = "role IN ('tenant', 'technician', 'admin')"
OLD_ROLE_TENANT = (
    "(role = 'tenant' AND tenant_id IS NOT NULL) OR (role <> 'tenant' AND tenant_id IS NULL)"
)


def _tenant_fk(table: str, **kwargs: Any) -> sa.Column[int]:
    return sa.Column(
        "tenant_id",
        sa.Integer,
        sa.ForeignKey(
            "tenants.tenant_id", name=f"fk_{table}_tenant_id_tenants", ondelete="RESTRICT"
        ),
        **kwargs,
    )


def _user_fk(table: str, **kwargs: Any) -> sa.Column[int]:
    return sa.Column(
        "user_id",
        sa.Integer,
        sa.ForeignKey("users.user_id", name=f"fk_{table}_user_id_users", ondelete="CASCADE"),
        **kwargs,
    )


def _set_role_checks(role: str, role_tenant: str) -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint(op.f("ck_users_role"), type_="check")
        batch.drop_constraint(op.f("ck_users_role_tenant"), type_="check")
        batch.create_check_constraint(op.f("ck_users_role"), role)
        batch.create_check_constraint(op.f("ck_users_role_tenant"), role_tenant)


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("totp_secret", sa.String(64), nullable=True))
        batch.add_column(sa.Column("totp_last_step", sa.BigInteger, nullable=True))
        batch.add_column(
            sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("locked_at", UTCDateTime, nullable=True))
    _set_role_checks(NEW_ROLE, NEW_ROLE_TENANT)
    op.create_table(
        "user_scopes",
        _tenant_fk("user_scopes", nullable=False),
        _user_fk("user_scopes", nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.String(200), nullable=False),
        sa.CheckConstraint(
            "kind IN ('site', 'department', 'cost_centre', 'extension')",
            name=op.f("ck_user_scopes_kind"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", "kind", "value", name="pk_user_scopes"),
    )
    op.create_table(
        "user_sessions",
        sa.Column("session_hash", sa.String(64), nullable=False),
        _user_fk("user_sessions", nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("last_seen_at", UTCDateTime, nullable=False),
        sa.Column("ended_at", UTCDateTime, nullable=True),
        sa.Column("ended_reason", sa.String(32), nullable=True),
        sa.Column("address", sa.String(64), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("session_hash", name="pk_user_sessions"),
    )
    op.create_index("ix_user_sessions_user_id", "user_sessions", ["user_id"])
    op.create_table(
        "login_attempts",
        sa.Column("attempt_id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("succeeded", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("attempt_id", name="pk_login_attempts"),
    )
    op.create_index("ix_login_attempts_email_at", "login_attempts", ["email", "at"])
    op.create_index("ix_login_attempts_address_at", "login_attempts", ["address", "at"])
    op.create_table(
        "audit_log",
        sa.Column("audit_id", sa.Integer, autoincrement=True, nullable=False),
        _tenant_fk("audit_log", nullable=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(254), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(254), nullable=False, server_default=""),
        sa.Column("address", sa.String(64), nullable=False, server_default=""),
        sa.Column("details", JSONDocument, nullable=False),
        sa.PrimaryKeyConstraint("audit_id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_tenant_id_at", "audit_log", ["tenant_id", "at"])
    op.create_table(
        "recovery_codes",
        _user_fk("recovery_codes", nullable=False),
        sa.Column("code_index", sa.SmallInteger, nullable=False),
        sa.Column("code_hash", sa.String(255), nullable=False),
        sa.Column("used_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("user_id", "code_index", name="pk_recovery_codes"),
    )
    op.create_table(
        "number_masks",
        _tenant_fk("number_masks", nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("digits", sa.SmallInteger, nullable=False),
        sa.CheckConstraint(
            "role IN ('tenant', 'tenant_admin', 'technician')", name=op.f("ck_number_masks_role")
        ),
        sa.CheckConstraint("digits >= 0 AND digits <= 20", name=op.f("ck_number_masks_digits")),
        sa.PrimaryKeyConstraint("tenant_id", "role", name="pk_number_masks"),
    )


def downgrade() -> None:
    for table in ("number_masks", "recovery_codes", "audit_log", "login_attempts",
                  "user_sessions", "user_scopes"):  # fmt: skip
        op.drop_table(table)
    op.execute("DELETE FROM users WHERE role = 'tenant_admin'")
    _set_role_checks(OLD_ROLE, OLD_ROLE_TENANT)
    with op.batch_alter_table("users") as batch:
        batch.drop_column("locked_at")
        batch.drop_column("failed_logins")
        batch.drop_column("totp_last_step")
        batch.drop_column("totp_secret")
