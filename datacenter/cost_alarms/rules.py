"""A tenant's cost and fraud alarm rules: the TOML document a tenant admin writes, parsed.

Contract: ``parse_rules(text)`` returns a ``RuleSet`` or raises ``RuleError`` naming the key
(``rules[2].over``, ``hours.days``...) with what is wrong and how to write it. Nothing else is
raised for any text. The document (docs/cost-alarms.md has every key)::

    [hours]                      # business hours, on the tenant's clock
    days = "mon-fri"             # mon..sun, ranges and lists: "mon-fri,sun"
    open = "08:00"
    close = "18:00"              # "24:00" for the end of the day

    [delivery]
    emails = ["noc@acme.example"]  # empty: the tenant's admins
    webhook_url = "https://hooks.acme.example/callcollect"

    [[rules]]
    kind = "call_cost"           # id defaults to the kind; ids are unique
    over = "25.00"               # in the currency unit; currency = "GBP" limits to one currency

Kinds and their keys are ``KIND_KEYS``. Amounts are kept in millionths of the currency unit
(``micro``), like the rollups, so costs of tariffs with different decimals compare exactly.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from shared.errors import ValidationError

MICRO = 1_000_000
MAX_AMOUNT = Decimal(10**9)  # a larger threshold is a typo
MAX_RULES = 50
RULE_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_DAYS = "mon-fri"
DEFAULT_OPEN, DEFAULT_CLOSE = "08:00", "18:00"
PREMIUM_CLASSES = ("premium", "international")
KNOWN_CLASSES = (
    "internal", "local", "national", "mobile", "international", "toll-free", "premium",
    "emergency", "service", "unknown",
)  # fmt: skip  # datacenter.rating.numbering.NumberClass (tested equal)
DIRECTIONS = ("out", "in", "any")
MAX_EMAILS = 20
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CLOCK = re.compile(r"^([01][0-9]|2[0-4]):([0-5][0-9])$")


class RuleError(ValidationError):
    """A cost alarm rules document that does not parse (docs/cost-alarms.md)."""

    exit_code = 3


class RuleKind(StrEnum):
    CALL_COST = "call_cost"  # one call costs more than ``over``
    EXTENSION_DAY_COST = "extension_day_cost"  # an extension's local day costs more than ``over``
    TENANT_DAY_COST = "tenant_day_cost"  # the tenant's local day costs more than ``over``
    OFF_HOURS = "off_hours"  # a call to one of ``classes`` outside business hours
    LONG_CALL = "long_call"  # a call talks longer than ``minutes``
    VOLUME = "volume"  # an hour's calls far above the usual for that hour of the week
    SHORT_CALLS = "short_calls"  # ``calls`` calls under ``seconds`` to one number in a window


KIND_KEYS: Mapping[RuleKind, frozenset[str]] = {
    RuleKind.CALL_COST: frozenset({"over", "currency"}),
    RuleKind.EXTENSION_DAY_COST: frozenset({"over", "currency"}),
    RuleKind.TENANT_DAY_COST: frozenset({"over", "currency"}),
    RuleKind.OFF_HOURS: frozenset({"classes"}),
    RuleKind.LONG_CALL: frozenset({"minutes"}),
    RuleKind.VOLUME: frozenset({"weeks", "factor", "min_calls", "direction"}),
    RuleKind.SHORT_CALLS: frozenset({"calls", "seconds", "window_minutes"}),
}
COMMON_KEYS = frozenset({"id", "kind"})
COST_KINDS = frozenset({RuleKind.CALL_COST, RuleKind.EXTENSION_DAY_COST, RuleKind.TENANT_DAY_COST})

# Defaults and bounds of the integer keys: (default, lowest, highest); None: required.
INT_KEYS: Mapping[str, tuple[int | None, int, int]] = {
    "minutes": (None, 1, 24 * 60),
    "weeks": (4, 1, 26),
    "min_calls": (20, 1, 1_000_000),
    "calls": (5, 2, 10_000),
    "seconds": (10, 1, 3_600),
    "window_minutes": (60, 1, 24 * 60),
}
DEFAULT_FACTOR = Decimal(3)
MAX_FACTOR = Decimal(100)


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """Days of the week (0 = Monday) and the open..close span of each, on the tenant's clock."""

    days: frozenset[int]
    open: time
    close: time | None  # None: midnight at the end of the day ("24:00")

    def contains(self, local: datetime) -> bool:
        """Whether the local (wall-clock) time ``local`` is inside business hours."""
        if local.weekday() not in self.days:
            return False
        clock = local.time().replace(tzinfo=None)
        return clock >= self.open and (self.close is None or clock < self.close)


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule; keys that do not belong to ``kind`` keep their defaults and are not used."""

    rule_id: str
    kind: RuleKind
    over_micro: int = 0
    currency: str = ""  # "" = every currency, each on its own
    classes: frozenset[str] = frozenset(PREMIUM_CLASSES)
    minutes: int = 0
    weeks: int = 4
    factor: Decimal = DEFAULT_FACTOR
    min_calls: int = 20
    direction: str = "out"
    calls: int = 5
    seconds: int = 10
    window_minutes: int = 60


@dataclass(frozen=True, slots=True)
class RuleSet:
    hours: BusinessHours
    rules: tuple[Rule, ...] = ()
    emails: tuple[str, ...] = ()
    webhook_url: str = ""

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.rule_id == rule_id), None)


DEFAULT_HOURS = BusinessHours(frozenset(range(5)), time(8), time(18))
EMPTY = RuleSet(DEFAULT_HOURS)


def parse_rules(text: str) -> RuleSet:
    """The rules ``text`` declares (module doc), or ``RuleError`` naming the key."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError("document", f"is not valid TOML ({exc}); see docs/cost-alarms.md") from exc
    _no_unknown(document, {"hours", "delivery", "rules"}, "")
    hours = parse_hours(_table(document, "hours"), "hours")
    delivery = _table(document, "delivery")
    _no_unknown(delivery, {"emails", "webhook_url"}, "delivery.")
    entries = document.get("rules", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise RuleError("rules", 'must be an array of tables: write [[rules]] then kind = "..."')
    if len(entries) > MAX_RULES:
        raise RuleError("rules", f"has {len(entries)} rules; at most {MAX_RULES} are allowed")
    rules = tuple(parse_rule(entry, f"rules[{n}]") for n, entry in enumerate(entries))
    seen: set[str] = set()
    for n, rule in enumerate(rules):
        if rule.rule_id in seen:
            raise RuleError(
                f"rules[{n}].id", f"{rule.rule_id!r} is used twice: give each rule its own id"
            )
        seen.add(rule.rule_id)
    return RuleSet(
        hours=hours,
        rules=rules,
        emails=_emails(delivery.get("emails", []), "delivery.emails"),
        webhook_url=parse_webhook_url(delivery.get("webhook_url", ""), "delivery.webhook_url"),
    )


def parse_rule(entry: Mapping[str, Any], where: str) -> Rule:
    kind_text = entry.get("kind")
    try:
        kind = RuleKind(str(kind_text))
    except ValueError:
        kinds = ", ".join(k.value for k in RuleKind)
        raise RuleError(
            f"{where}.kind", f"{kind_text!r} is not a rule kind; use one of {kinds}"
        ) from None
    allowed = KIND_KEYS[kind] | COMMON_KEYS
    _no_unknown(entry, allowed, f"{where}.")
    rule_id = entry.get("id", kind.value)
    if not isinstance(rule_id, str) or not RULE_ID_PATTERN.match(rule_id):
        raise RuleError(
            f"{where}.id", f"{rule_id!r} is not an id: use 1-64 lower-case letters, digits, - or _"
        )
    values: dict[str, Any] = {"rule_id": rule_id, "kind": kind}
    if kind in COST_KINDS:
        values["over_micro"] = parse_amount(entry.get("over"), f"{where}.over")
        values["currency"] = _currency(entry.get("currency", ""), f"{where}.currency")
    if kind is RuleKind.OFF_HOURS:
        values["classes"] = _classes(
            entry.get("classes", list(PREMIUM_CLASSES)), f"{where}.classes"
        )
    if kind is RuleKind.VOLUME:
        values["factor"] = _factor(entry.get("factor", DEFAULT_FACTOR), f"{where}.factor")
        direction = entry.get("direction", "out")
        if direction not in DIRECTIONS:
            raise RuleError(
                f"{where}.direction", f"{direction!r}: use one of {', '.join(DIRECTIONS)}"
            )
        values["direction"] = direction
    for key in sorted(KIND_KEYS[kind] & INT_KEYS.keys()):
        values[key] = _integer(entry, key, f"{where}.{key}")
    return Rule(**values)


def parse_hours(table: Mapping[str, Any], where: str) -> BusinessHours:
    _no_unknown(table, {"days", "open", "close"}, f"{where}.")
    days = parse_days(table.get("days", DEFAULT_DAYS), f"{where}.days")
    opens = parse_clock(table.get("open", DEFAULT_OPEN), f"{where}.open")
    closes = parse_clock(table.get("close", DEFAULT_CLOSE), f"{where}.close")
    if opens is None:
        raise RuleError(f"{where}.open", '"24:00" is the end of a day, not a start: use "00:00"')
    if closes is not None and closes <= opens:
        raise RuleError(
            f"{where}.close", "is not after open: business hours end later the same day"
        )
    return BusinessHours(days, opens, closes)


def parse_days(value: Any, where: str) -> frozenset[int]:
    """``"mon-fri,sun"`` -> {0, 1, 2, 3, 4, 6}; a range may wrap (``"fri-mon"``)."""
    fix = 'write day names mon..sun, ranges and lists, e.g. "mon-fri" or "mon,wed,fri"'
    if not isinstance(value, str) or not value.strip():
        raise RuleError(where, f"{value!r} is not a list of days: {fix}")
    days: set[int] = set()
    for part in value.lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in DAY_NAMES or (last and last not in DAY_NAMES) or part.count("-") > 1:
            raise RuleError(where, f"{part!r} is not a day or a range of days: {fix}")
        start = DAY_NAMES.index(first)
        end = DAY_NAMES.index(last) if last else start
        days.update((start + step) % 7 for step in range((end - start) % 7 + 1))
    return frozenset(days)


def parse_clock(value: Any, where: str) -> time | None:
    """``"08:30"`` -> 08:30; ``"24:00"`` -> None (the end of the day)."""
    match = _CLOCK.match(value) if isinstance(value, str) else None
    if match is None or (match.group(1) == "24" and match.group(2) != "00"):
        raise RuleError(where, f'{value!r} is not a time of day: write "HH:MM", e.g. "08:00"')
    hour, minute = int(match.group(1)), int(match.group(2))
    return None if hour == 24 else time(hour, minute)


def parse_amount(value: Any, where: str) -> int:
    """A positive amount in the currency unit (string, integer or float) -> micro units."""
    fix = 'write it in the currency unit, e.g. over = "25.00"'
    if value is None:
        raise RuleError(where, f"is required: {fix}")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RuleError(where, f"{value!r} is not an amount: {fix}")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise RuleError(where, f"{value!r} is not an amount: {fix}") from None
    if not amount.is_finite() or amount <= 0 or amount > MAX_AMOUNT:
        raise RuleError(where, f"{value!r} must be above 0 and at most {MAX_AMOUNT}: {fix}")
    micro = amount * MICRO
    if micro != micro.to_integral_value():
        raise RuleError(where, f"{value!r} has more than 6 decimals: {fix}")
    return int(micro)


def parse_webhook_url(value: Any, where: str) -> str:
    """An http(s) URL with a host, or "" for none."""
    fix = 'write the receiver\'s full URL, e.g. "https://hooks.example.com/callcollect"'
    if not isinstance(value, str):
        raise RuleError(where, f"{value!r} is not a URL: {fix}")
    if not value:
        return ""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise RuleError(where, f"{value!r} is not a URL: {fix}") from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(c.isspace() for c in value)
    ):
        raise RuleError(where, f"{value!r} is not an http(s) URL: {fix}")
    return value


def format_micro(micro: int) -> str:
    """Micro units as the amount people write: 25000000 -> "25.00", 1234500 -> "1.2345"."""
    amount = (Decimal(micro) / MICRO).normalize()
    text = f"{amount:f}"
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def _table(document: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = document.get(key, {})
    if not isinstance(value, dict):
        raise RuleError(key, f"must be a table: write [{key}] on a line of its own")
    return value


def _no_unknown(table: Mapping[str, Any], allowed: set[str] | frozenset[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise RuleError(
                f"{where}{key}", f"is not a key here; the keys are {', '.join(sorted(allowed))}"
            )


def _integer(entry: Mapping[str, Any], key: str, where: str) -> int:
    default, lowest, highest = INT_KEYS[key]
    value = entry.get(key, default)
    if value is None:
        raise RuleError(where, f"is required: write {key} = a whole number")
    if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= highest:
        raise RuleError(where, f"{value!r}: write a whole number from {lowest} to {highest}")
    return value


def _factor(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise RuleError(where, f"{value!r}: write a number such as 3 or 2.5")
    factor = Decimal(str(value))
    if not factor.is_finite() or not 0 < factor <= MAX_FACTOR:
        raise RuleError(where, f"{value!r}: write a number above 0 and at most {MAX_FACTOR}")
    return factor


def _currency(value: Any, where: str) -> str:
    if not isinstance(value, str) or (value and not re.fullmatch(r"[A-Z]{3}", value)):
        raise RuleError(where, f'{value!r} is not a currency code: write e.g. currency = "GBP"')
    return value


def _classes(value: Any, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not value:
        raise RuleError(where, 'must be a list of classes, e.g. ["premium", "international"]')
    for item in value:
        if item not in KNOWN_CLASSES:
            raise RuleError(
                where, f"{item!r} is not a destination class; use {', '.join(KNOWN_CLASSES)}"
            )
    return frozenset(value)


def _emails(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > MAX_EMAILS:
        raise RuleError(
            where, f'must be a list of at most {MAX_EMAILS} addresses, e.g. ["noc@example.com"]'
        )
    for item in value:
        if not isinstance(item, str) or not EMAIL_PATTERN.match(item) or len(item) > 254:
            raise RuleError(where, f"{item!r} is not an email address")
    return tuple(value)


__all__ = [
    "DEFAULT_HOURS",
    "EMPTY",
    "BusinessHours",
    "Rule",
    "RuleError",
    "RuleKind",
    "RuleSet",
    "format_micro",
    "parse_rules",
]
