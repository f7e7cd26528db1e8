"""Which tenants each technician looks after, and so who sees a site and who hears its alarms.

Contract:

- A technician looks after the tenants assigned in ``technician_tenants``; an admin looks after
  every tenant without any assignment. A tenant user looks after nothing here (the console
  refuses them). Disabled accounts look after nothing.
- ``alarm_recipients(conn, tenant_id)`` is who gets a tenant's alarm email: its enabled
  technicians; when it has none, every enabled admin, so that no alarm goes to nobody.
- Functions take a ``Connection`` in the caller's transaction; bad input raises
  ``ValidationError`` naming the fix.

`datacenter technician assign|unassign|list` (``datacenter.commands.technician``) drive these
functions.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from datacenter.accounts.tenants import Tenant, list_tenants, require_tenant
from datacenter.accounts.users import User, get_user_by_email, list_users
from datacenter.store.tables.alarms import technician_tenants
from shared.errors import ValidationError

STAFF_ROLES = ("technician", "admin")


def tenants_of(conn: sa.Connection, user: User) -> list[Tenant]:
    """The tenants ``user`` looks after, by name (all of them for an admin)."""
    if user.disabled or user.role not in STAFF_ROLES:
        return []
    tenants = list_tenants(conn)
    if user.role == "technician":
        assigned = set(
            conn.scalars(
                sa.select(technician_tenants.c.tenant_id).where(
                    technician_tenants.c.user_id == user.user_id
                )
            )
        )
        tenants = [t for t in tenants if t.tenant_id in assigned]
    return sorted(tenants, key=lambda t: t.name.lower())


def alarm_recipients(conn: sa.Connection, tenant_id: int) -> list[User]:
    """Who receives the tenant's alarms: its technicians, else every admin."""
    assigned = set(
        conn.scalars(
            sa.select(technician_tenants.c.user_id).where(
                technician_tenants.c.tenant_id == tenant_id
            )
        )
    )
    staff = [u for u in list_users(conn) if not u.disabled and u.role in STAFF_ROLES]
    technicians = [u for u in staff if u.role == "technician" and u.user_id in assigned]
    return technicians or [u for u in staff if u.role == "admin"]


def digest_recipients(conn: sa.Connection) -> list[User]:
    """Every enabled technician and admin (each digest lists only their own tenants)."""
    return [u for u in list_users(conn) if not u.disabled and u.role in STAFF_ROLES]


def assign(conn: sa.Connection, email: str, tenant_slug: str, *, now: datetime) -> bool:
    """Let technician ``email`` look after ``tenant_slug``; False if it already did."""
    user = _technician(conn, email)
    tenant = require_tenant(conn, tenant_slug)
    exists = conn.scalar(
        sa.select(sa.func.count()).where(
            technician_tenants.c.tenant_id == tenant.tenant_id,
            technician_tenants.c.user_id == user.user_id,
        )
    )
    if exists:
        return False
    conn.execute(
        technician_tenants.insert().values(
            tenant_id=tenant.tenant_id, user_id=user.user_id, added_at=now
        )
    )
    return True


def unassign(conn: sa.Connection, email: str, tenant_slug: str) -> bool:
    """Stop technician ``email`` looking after ``tenant_slug``; False if it did not."""
    user = _technician(conn, email)
    tenant = require_tenant(conn, tenant_slug)
    result = conn.execute(
        technician_tenants.delete().where(
            technician_tenants.c.tenant_id == tenant.tenant_id,
            technician_tenants.c.user_id == user.user_id,
        )
    )
    return bool(result.rowcount)


def _technician(conn: sa.Connection, email: str) -> User:
    user = get_user_by_email(conn, email)
    if user is None:
        raise ValidationError(
            "email", f"no user {email!r}: add one with `datacenter user add --role technician`"
        )
    if user.role != "technician":
        raise ValidationError(
            "email",
            f"{email} is a {user.role} user; only technicians are assigned tenants "
            "(admins look after every tenant already)",
        )
    return user
