"""What part of its tenant a user sees (``user_scopes``), and how its numbers are masked.

Contract:

- ``UserScope`` (``datacenter.store.call_scope``) is a user's scope: ``whole`` (the
  organisation), or sets of sites, departments, cost centres and extensions; a call is in scope
  when it matches any of them (sites, departments and cost centres through
  ``directory_entries`` at the call's start).
  ``TenantScope`` applies it to every call query (datacenter/store/scoped.py).
- Tenant admins, technicians and admins always see the whole tenant; only ``tenant`` users are
  limited. A ``tenant`` user without rows sees the whole organisation.
- ``mask_digits(conn, tenant_id, role)`` is how many trailing digits of external numbers that
  role sees hidden (0: none); ``set_mask_digits`` changes it.
"""

from __future__ import annotations

import sqlalchemy as sa

from datacenter.accounts.users import User
from datacenter.store.call_scope import WHOLE, UserScope, scope_from
from datacenter.store.tables.accounts import MASKED_ROLES, number_masks, user_scopes
from shared.errors import ValidationError

__all__ = ["WHOLE", "UserScope", "mask_digits", "mask_settings", "scope_from", "scope_of",
           "set_mask_digits", "set_scope"]  # fmt: skip
MAX_MASK_DIGITS = 20


def scope_of(conn: sa.Connection, user: User) -> UserScope:
    """The user's scope; the whole tenant for every role but ``tenant``."""
    if user.role != "tenant" or user.tenant_id is None:
        return WHOLE
    rows = conn.execute(
        sa.select(user_scopes.c.kind, user_scopes.c.value).where(
            user_scopes.c.tenant_id == user.tenant_id, user_scopes.c.user_id == user.user_id
        )
    )
    values: dict[str, set[str]] = {}
    for kind, value in rows:
        values.setdefault(kind, set()).add(value)
    return scope_from(values)


def set_scope(conn: sa.Connection, user: User, scope: UserScope) -> None:
    """Replace the user's scope rows (none for the whole organisation)."""
    if user.tenant_id is None:
        raise ValidationError("scope", f"{user.email} belongs to no tenant: staff have no scope")
    conn.execute(
        user_scopes.delete().where(
            user_scopes.c.tenant_id == user.tenant_id, user_scopes.c.user_id == user.user_id
        )
    )
    rows = [
        {"tenant_id": user.tenant_id, "user_id": user.user_id, "kind": kind, "value": value}
        for kind, values in scope.by_kind().items()
        for value in sorted(values)
    ]
    if rows:
        conn.execute(user_scopes.insert(), rows)


def mask_digits(conn: sa.Connection, tenant_id: int, role: str) -> int:
    if role not in MASKED_ROLES:
        return 0
    value = conn.scalar(
        sa.select(number_masks.c.digits).where(
            number_masks.c.tenant_id == tenant_id, number_masks.c.role == role
        )
    )
    return int(value or 0)


def mask_settings(conn: sa.Connection, tenant_id: int) -> dict[str, int]:
    """Digits hidden per role (every role in ``MASKED_ROLES``, 0 when none are)."""
    out = dict.fromkeys(MASKED_ROLES, 0)
    for role, digits in conn.execute(
        sa.select(number_masks.c.role, number_masks.c.digits).where(
            number_masks.c.tenant_id == tenant_id
        )
    ):
        out[role] = int(digits)
    return out


def set_mask_digits(conn: sa.Connection, tenant_id: int, role: str, digits: int) -> None:
    if role not in MASKED_ROLES:
        raise ValidationError("role", f"{role!r} is not one of: {', '.join(MASKED_ROLES)}")
    if not 0 <= digits <= MAX_MASK_DIGITS:
        raise ValidationError("digits", f"must be between 0 and {MAX_MASK_DIGITS}")
    conn.execute(
        number_masks.delete().where(
            number_masks.c.tenant_id == tenant_id, number_masks.c.role == role
        )
    )
    if digits:
        conn.execute(number_masks.insert().values(tenant_id=tenant_id, role=role, digits=digits))
