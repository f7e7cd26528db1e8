"""Who may play and download a tenant's recordings, and each tenant's recording policy.

Contract (docs/capture.md, "Who may listen"):

- ``access_of(conn, user, tenant_id)``: a ``tenant_admin`` of the tenant may play and download;
  a ``tenant`` user of the tenant may play with the ``recordings`` permission and download with
  ``recordings_download`` (each granted on its own); a ``technician`` assigned to the tenant may
  play (never download) only when the tenant's policy allows technicians; nobody else, admins
  included (a recording is the tenant's, not the operator's). Disabled users may do nothing.
  Whether the *call* is in the user's scope is checked separately (``TenantScope.get_call``).
- ``policy_of`` / ``set_policy``: days of audio kept (None: for ever) and whether technicians
  may play. ``grant`` / ``revoke`` a tenant user's permission.
- Functions take a ``Connection`` in the caller's transaction; bad input raises
  ``ValidationError`` naming the fix.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from datacenter.accounts.technicians import tenants_of
from datacenter.accounts.users import User
from datacenter.store.dialect import dialect_insert
from datacenter.store.tables.recordings import PERMISSIONS, recording_policies, user_permissions
from shared.errors import ValidationError

MAX_RETENTION_DAYS = 36_500


@dataclass(frozen=True, slots=True)
class RecordingAccess:
    play: bool = False
    download: bool = False


@dataclass(frozen=True, slots=True)
class RecordingPolicy:
    retention_days: int | None = None  # None: kept for ever
    technicians_may_play: bool = False


def permissions_of(conn: sa.Connection, user: User) -> set[str]:
    if user.tenant_id is None:
        return set()
    return set(
        conn.scalars(
            sa.select(user_permissions.c.permission).where(
                user_permissions.c.tenant_id == user.tenant_id,
                user_permissions.c.user_id == user.user_id,
            )
        )
    )


def access_of(conn: sa.Connection, user: User, tenant_id: int) -> RecordingAccess:
    if user.disabled:
        return RecordingAccess()
    if user.role == "tenant_admin" and user.tenant_id == tenant_id:
        return RecordingAccess(play=True, download=True)
    if user.role == "tenant" and user.tenant_id == tenant_id:
        granted = permissions_of(conn, user)
        return RecordingAccess("recordings" in granted, "recordings_download" in granted)
    if user.role == "technician" and policy_of(conn, tenant_id).technicians_may_play:
        assigned = any(t.tenant_id == tenant_id for t in tenants_of(conn, user))
        return RecordingAccess(play=assigned)
    return RecordingAccess()


def grant(conn: sa.Connection, user: User, permission: str) -> bool:
    """Give a tenant user ``permission``; False if they had it."""
    _check_grantee(user, permission)
    # RETURNING says whether the row went in (rowcount of an INSERT is not portable).
    added = conn.execute(
        dialect_insert(conn, user_permissions)
        .values(tenant_id=user.tenant_id, user_id=user.user_id, permission=permission)
        .on_conflict_do_nothing()
        .returning(user_permissions.c.permission)
    ).first()
    return added is not None


def revoke(conn: sa.Connection, user: User, permission: str) -> bool:
    """Take ``permission`` from a tenant user; False if they did not have it."""
    _check_grantee(user, permission)
    removed = conn.execute(
        user_permissions.delete().where(
            user_permissions.c.tenant_id == user.tenant_id,
            user_permissions.c.user_id == user.user_id,
            user_permissions.c.permission == permission,
        )
    )
    return bool(removed.rowcount)


def _check_grantee(user: User, permission: str) -> None:
    if permission not in PERMISSIONS:
        raise ValidationError(
            "permission", f"{permission!r} is not one of: {', '.join(PERMISSIONS)}"
        )
    if user.role != "tenant" or user.tenant_id is None:
        raise ValidationError(
            "user",
            f"{user.email} is a {user.role}: permissions are for tenant users (tenant admins "
            "may always play and download; technicians through the tenant's policy)",
        )


def policy_of(conn: sa.Connection, tenant_id: int) -> RecordingPolicy:
    row = conn.execute(
        sa.select(recording_policies.c.retention_days, recording_policies.c.technicians_may_play)
        .where(recording_policies.c.tenant_id == tenant_id)
    ).one_or_none()  # fmt: skip
    if row is None:
        return RecordingPolicy()
    return RecordingPolicy(row.retention_days, bool(row.technicians_may_play))


def set_policy(conn: sa.Connection, tenant_id: int, policy: RecordingPolicy) -> None:
    days = policy.retention_days
    if days is not None and not 1 <= days <= MAX_RETENTION_DAYS:
        raise ValidationError(
            "retention days",
            f"must be between 1 and {MAX_RETENTION_DAYS}, or none to keep for ever",
        )
    conn.execute(recording_policies.delete().where(recording_policies.c.tenant_id == tenant_id))
    conn.execute(
        recording_policies.insert().values(
            tenant_id=tenant_id, retention_days=days,
            technicians_may_play=policy.technicians_may_play,
        )
    )  # fmt: skip
