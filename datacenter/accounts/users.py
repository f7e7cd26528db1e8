"""Web console users: who may log in, with which role, for which tenant.

- Emails are stored lower-case and unique. A ``tenant`` user or ``tenant_admin`` belongs to
  exactly one tenant; ``technician`` and ``admin`` users belong to none (the schema enforces both).
- ``authenticate`` spends the same argon2 work on an unknown, disabled or locked account as on a
  real one, and records the login (call it inside ``write_transaction``). A locked account
  (``datacenter.accounts.throttle``) answers ``locked`` only to the right password.
- Functions take a ``Connection`` inside the caller's transaction. Bad input raises
  ``ValidationError``; a clash with an existing row raises ``StoreError``; both say how to fix it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from datacenter.accounts.passwords import (
    check_password_policy,
    dummy_hash,
    hash_password,
    verify_password,
)
from datacenter.store.tables.core import users
from datacenter.store.tables.metadata import ROLES, TENANT_ROLES
from shared.errors import StoreError, ValidationError

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True, slots=True)
class User:
    user_id: int
    email: str
    role: str  # one of tables.ROLES
    tenant_id: int | None
    display_name: str
    created_at: datetime
    last_login_at: datetime | None
    disabled: bool
    totp_enabled: bool = False
    locked_at: datetime | None = None
    failed_logins: int = 0

    @property
    def is_staff(self) -> bool:
        """Technicians and admins see every tenant's polling health."""
        return self.role in ("technician", "admin")

    @property
    def is_tenant_admin(self) -> bool:
        return self.role == "tenant_admin"


@dataclass(frozen=True, slots=True)
class AuthResult:
    """What a sign-in attempt came to: ``ok`` (with the user), ``failed`` or ``locked``."""

    outcome: str
    user: User | None = None


def normalise_email(email: str) -> str:
    address = email.strip().lower()
    if len(address) > 254 or not _EMAIL_RE.match(address):
        raise ValidationError("email", f"{email!r} is not an email address")
    return address


def create_user(
    conn: sa.Connection,
    email: str,
    password: str,
    role: str,
    tenant_id: int | None = None,
    *,
    display_name: str = "",
) -> User:
    """Add a login. ``tenant_id`` is required for tenant roles and refused for staff."""
    address = normalise_email(email)
    check_role(role, tenant_id)
    check_password_policy(password, email=address, name=display_name)
    if get_user_by_email(conn, address) is not None:
        raise StoreError(f"a user {address} already exists: pick another email")
    values = {
        "email": address,
        "password_hash": hash_password(password),
        "role": role,
        "tenant_id": tenant_id,
        "display_name": display_name.strip(),
        "created_at": datetime.now(UTC),
        "disabled": False,
    }
    try:
        user_id = conn.execute(
            users.insert().values(**values).returning(users.c.user_id)
        ).scalar_one()
    except sa.exc.IntegrityError as exc:
        raise StoreError(f"could not add user {address}: {exc.orig}") from exc
    user = get_user(conn, user_id)
    assert user is not None
    return user


def check_role(role: str, tenant_id: int | None) -> None:
    if role not in ROLES:
        raise ValidationError("role", f"{role!r} is not one of: {', '.join(ROLES)}")
    if role in TENANT_ROLES and tenant_id is None:
        raise ValidationError("tenant", f"a {role} user needs a tenant: pass --tenant SLUG")
    if role not in TENANT_ROLES and tenant_id is not None:
        raise ValidationError("tenant", f"a {role} sees every tenant: drop --tenant")


def authenticate(conn: sa.Connection, email: str, password: str) -> User | None:
    """The user if the password is right and the account enabled; records the login time."""
    return sign_in(conn, email, password).user


def sign_in(conn: sa.Connection, email: str, password: str) -> AuthResult:
    """Check a password; records the login time on success.

    A locked account answers ``locked`` when the password is right (so only its owner learns
    it is locked) and ``failed`` otherwise, exactly like an unknown email.
    """
    try:
        address = normalise_email(email)
    except ValidationError:
        address = ""
    row = (
        conn.execute(users.select().where(users.c.email == address)).one_or_none()
        if address
        else None
    )
    if row is None or row.disabled:
        verify_password(dummy_hash(), password)  # same work as a real check
        return AuthResult("failed")
    check = verify_password(row.password_hash, password)
    if not check.ok:
        return AuthResult("failed")
    if row.locked_at is not None:
        return AuthResult("locked", _user(row))
    changes: dict[str, Any] = {"last_login_at": datetime.now(UTC)}
    if check.new_hash is not None:
        changes["password_hash"] = check.new_hash
    conn.execute(users.update().where(users.c.user_id == row.user_id).values(**changes))
    return AuthResult("ok", get_user(conn, row.user_id))


def check_current_password(conn: sa.Connection, user_id: int, password: str) -> bool:
    row = conn.execute(users.select().where(users.c.user_id == user_id)).one_or_none()
    return row is not None and verify_password(row.password_hash, password).ok


def set_role(conn: sa.Connection, user_id: int, role: str) -> None:
    """Change a user's role within its tenant (tenant <-> tenant_admin) or among staff roles."""
    user = get_user(conn, user_id)
    if user is None:
        raise StoreError(f"no user with id {user_id}")
    check_role(role, user.tenant_id)
    conn.execute(users.update().where(users.c.user_id == user_id).values(role=role))


def set_password(conn: sa.Connection, user_id: int, password: str) -> None:
    user = get_user(conn, user_id)
    if user is None:
        raise StoreError(f"no user with id {user_id}")
    check_password_policy(password, email=user.email, name=user.display_name)
    result = conn.execute(
        users.update()
        .where(users.c.user_id == user_id)
        .values(password_hash=hash_password(password))
    )
    if result.rowcount != 1:
        raise StoreError(f"no user with id {user_id}")


def set_disabled(conn: sa.Connection, user_id: int, disabled: bool) -> None:
    result = conn.execute(
        users.update().where(users.c.user_id == user_id).values(disabled=disabled)
    )
    if result.rowcount != 1:
        raise StoreError(f"no user with id {user_id}")


def get_user(conn: sa.Connection, user_id: int) -> User | None:
    row = conn.execute(users.select().where(users.c.user_id == user_id)).one_or_none()
    return None if row is None else _user(row)


def get_user_by_email(conn: sa.Connection, email: str) -> User | None:
    address = email.strip().lower()
    row = conn.execute(users.select().where(users.c.email == address)).one_or_none()
    return None if row is None else _user(row)


def list_users(conn: sa.Connection, *, tenant_id: int | None = None) -> list[User]:
    query = users.select().order_by(users.c.email)
    if tenant_id is not None:
        query = query.where(users.c.tenant_id == tenant_id)
    return [_user(row) for row in conn.execute(query)]


def _user(row: sa.Row[Any]) -> User:
    return User(
        user_id=row.user_id,
        email=row.email,
        role=row.role,
        tenant_id=row.tenant_id,
        display_name=row.display_name,
        created_at=row.created_at,
        last_login_at=row.last_login_at,
        disabled=bool(row.disabled),
        totp_enabled=row.totp_secret is not None,
        locked_at=row.locked_at,
        failed_logins=row.failed_logins,
    )
