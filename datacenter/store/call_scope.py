"""What part of a tenant's calls one viewer may see: ``UserScope`` and number masking.

Pure data, no queries: ``datacenter.accounts.scopes`` loads a user's scope from ``user_scopes``
and ``TenantScope`` (``datacenter.store.scoped``) turns it into the filter every call query
carries. A scope is the whole organisation (``WHOLE``) or sets of sites, departments, cost
centres and extensions; a call is in scope when it matches any of them.

``mask_number`` hides the last N digits of a number ("01632 960123" -> "01632 960xxx").
Numbers of at most ``MAX_EXTENSION_DIGITS`` digits are extensions, never masked.
``mask_text`` does it to every run of more digits inside a text (a rating explanation's
"cleaned to 07700900123", "+447700900123: mobile (GB)"), and ``mask_document`` to every text
of a JSON document; dates and times (short runs between separators) and amounts (digits around
a decimal point) stay.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.errors import ValidationError

SCOPE_KINDS = ("site", "department", "cost_centre", "extension")
MAX_SCOPE_VALUES = 200
MAX_SCOPE_VALUE_LENGTH = 200
MAX_EXTENSION_DIGITS = 6
# A run of digits longer than an extension, with its '+' if it has one: a phone number in a
# text. Not the fraction of an amount ("0.1666666667") nor a whole part before one.
_NUMBER_IN_TEXT = re.compile(rf"(?<![\d.])\+?\d{{{MAX_EXTENSION_DIGITS + 1},}}(?![\d.])")
_LABELS = {"site": "Sites", "department": "Departments", "cost_centre": "Cost centres",
           "extension": "Extensions"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class UserScope:
    """The calls a user may see within its tenant; no values at all is the whole organisation."""

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
        return "; ".join(
            f"{_LABELS[kind]}: {', '.join(sorted(values))}"
            for kind, values in self.by_kind().items()
            if values
        )


WHOLE = UserScope()


def scope_from(values: Mapping[str, Iterable[str]]) -> UserScope:
    """A scope from ``{kind: values}``; an unknown kind or too many values is a ValidationError."""
    clean: dict[str, frozenset[str]] = {}
    for kind, items in values.items():
        if kind not in SCOPE_KINDS:
            raise ValidationError("scope", f"{kind!r} is not one of: {', '.join(SCOPE_KINDS)}")
        cleaned = frozenset(v.strip() for v in items if v.strip())
        if len(cleaned) > MAX_SCOPE_VALUES:
            raise ValidationError("scope", f"at most {MAX_SCOPE_VALUES} {kind} values")
        if any(len(v) > MAX_SCOPE_VALUE_LENGTH for v in cleaned):
            raise ValidationError(
                "scope", f"a {kind} is longer than {MAX_SCOPE_VALUE_LENGTH} characters"
            )
        clean[kind] = cleaned
    return UserScope(
        sites=clean.get("site", frozenset()),
        departments=clean.get("department", frozenset()),
        cost_centres=clean.get("cost_centre", frozenset()),
        extensions=clean.get("extension", frozenset()),
    )


def mask_number(number: str, digits: int) -> str:
    """``number`` with its last ``digits`` digits shown as ``x``; extensions stay as they are."""
    if digits <= 0 or sum(c.isdigit() for c in number) <= MAX_EXTENSION_DIGITS:
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


def mask_text(text: str, digits: int) -> str:
    """``text`` with every number in it (a run of more than an extension's digits) masked."""
    if digits <= 0:
        return text
    return _NUMBER_IN_TEXT.sub(lambda found: mask_number(found.group(), digits), text)


def mask_document(value: Any, digits: int) -> Any:
    """A JSON document (dicts, lists, texts, numbers) with ``mask_text`` applied to every text."""
    if isinstance(value, str):
        return mask_text(value, digits)
    if isinstance(value, dict):
        return {key: mask_document(item, digits) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [mask_document(item, digits) for item in value]
    return value
