"""What part of its tenant a user sees (``user_scopes``), and how its numbers are masked.

Contract:

- ``UserScope`` is a user's scope: ``whole`` (the organisation), or sets of sites, departments,
  cost centres and extensions; a call is in scope when it matches any of them (sites,
  departments and cost centres through ``directory_entries`` at the call's start).
  ``TenantScope`` applies it to every call query (datacenter/store/scoped.py).
- Tenant admins, technicians and admins always see the whole tenant; only ``tenant`` users are
  limited. A ``tenant`` user without rows sees the whole organisation.
- ``mask_digits(conn, tenant_id, role)`` is how many trailing digits of external numbers that
  role sees hidden (0: none); ``set_mask_digits`` changes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa

from datacenter.accounts.users import User
from datacenter.store.tables.accounts import MASKED_ROLES, SCOPE_KINDS, number_masks, user_scopes
from shared.errors import ValidationError

MAX_SCOPE_VALUES = 200
MAX_MASK_DIGITS = 20


@dataclass(frozen=True, slots=True)
class UserScope:
    """The calls a user may see within its tenant; ``whole`` ignores the sets."""

    sites: frozenset[str] = field(default_factory=frozenset)
    departments: frozenset[str] = field(default_factory=frozenset)
    cost_centres: frozenset[str] = field(default_factory=frozenset)
    extensions: frozenset[str] = field(default_factory=frozenset)

    @property
    def whole(self) -> bool:
        return not (self.sites or self.departments or self.cost_centres or self.extensions)

    def by_kind(self) -> dict[str, frozenset[str]]:
        return {
            "site": self.sites,
            "department": self.departments,
            "cost_centre": self.cost_centres,
            "extension": self.extensions,
        }

    def describe(self) -> str:
        if self.whole:
            return "Whole organisation"
        labels = {"site": "Sites", "department": "Departments", "cost_centre": "Cost centres",
                  "extension": "Extensions"}  # fmt: skip
        return "; ".join(
            f"{labels[kind]}: {', '.join(sorted(values))}"
            for kind, values in self.by_kind().items()
            if values
        )


WHOLE = UserScope()


def scope_from(values: Mapping[str, Iterable[str]]) -> UserScope:
    """A scope from ``{kind: values}``; unknown kinds or too many values raise ValidationError."""
    clean: dict[str, frozenset[str]] = {}
    for kind, items in values.items():
        if kind not in SCOPE_KINDS:
            raise ValidationError("scope", f"{kind!r} is not one of: {', '.join(SCOPE_KINDS)}")
        cleaned = frozenset(v.strip() for v in items if v.strip())
        if len(cleaned) > MAX_SCOPE_VALUES:
            raise ValidationError("scope", f"at most {MAX_SCOPE_VALUES} {kind} values")
        if any(len(v) > 200 for v in cleaned):
            raise ValidationError("scope", f"a {kind} is longer than 200 characters")
        clean[kind] = cleaned
    return UserScope(
        sites=clean.get("site", frozenset()),
        departments=clean.get("department", frozenset()),
        cost_centres=clean.get("cost_centre", frozenset()),
        extensions=clean.get("extension", frozenset()),
    )


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


def mask_number(number: str, digits: int) -> str:
    """``number`` with its last ``digits`` digits replaced by ``x`` (other characters kept)."""
    if digits <= 0 or not number:
        return number
    chars = list(number)
    left = digits
    for i in range(len(chars) - 1, -1, -1):
        if left == 0:
            break
        if chars[i].isdigit():
            chars[i] = "x"
            left -= 1
    return "".join(chars)
