"""Tenants: the customers whose calls the data centre holds.

Tenant slugs are folder names in the landing area (``<landing>/<slug>/incoming``). Functions take
a ``Connection`` inside the caller's transaction; bad input raises ``ValidationError``, a clash
with an existing tenant ``StoreError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from datacenter.store.tables.core import tenants
from shared.errors import StoreError, ValidationError

_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclass(frozen=True, slots=True)
class Tenant:
    tenant_id: int
    slug: str
    name: str
    timezone: str
    created_at: datetime

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def check_slug(slug: str) -> str:
    if not _SLUG_RE.match(slug):
        raise ValidationError(
            "slug",
            f"{slug!r} is not a tenant slug: use 1-63 lower-case letters, digits and '-', "
            "starting with a letter or digit (it names the tenant's landing folder)",
        )
    return slug


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            "timezone", f"{name!r} is not an IANA time zone: use e.g. Europe/London or UTC"
        ) from None
    return name


def create_tenant(conn: sa.Connection, slug: str, name: str, timezone: str) -> Tenant:
    check_slug(slug)
    check_timezone(timezone)
    if not name.strip():
        raise ValidationError("name", "must not be empty: pass --name 'Customer Ltd'")
    if get_tenant(conn, slug) is not None:
        raise StoreError(f"tenant {slug} already exists: `datacenter tenant list` shows it")
    values = {
        "slug": slug,
        "name": name.strip(),
        "timezone": timezone,
        "created_at": datetime.now(UTC),
    }
    try:
        conn.execute(tenants.insert().values(**values))
    except sa.exc.IntegrityError as exc:
        raise StoreError(f"could not add tenant {slug}: {exc.orig}") from exc
    tenant = get_tenant(conn, slug)
    assert tenant is not None
    return tenant


def get_tenant(conn: sa.Connection, slug: str) -> Tenant | None:
    row = conn.execute(tenants.select().where(tenants.c.slug == slug)).one_or_none()
    return None if row is None else Tenant(**row._asdict())


def get_tenant_by_id(conn: sa.Connection, tenant_id: int) -> Tenant | None:
    row = conn.execute(tenants.select().where(tenants.c.tenant_id == tenant_id)).one_or_none()
    return None if row is None else Tenant(**row._asdict())


def require_tenant(conn: sa.Connection, slug: str) -> Tenant:
    tenant = get_tenant(conn, slug)
    if tenant is None:
        raise StoreError(
            f"no tenant {slug!r}: add it with `datacenter tenant add {slug} --name ...`"
        )
    return tenant


def list_tenants(conn: sa.Connection) -> list[Tenant]:
    return [
        Tenant(**row._asdict()) for row in conn.execute(tenants.select().order_by(tenants.c.slug))
    ]
