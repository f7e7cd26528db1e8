"""Dial plans: what a PBX recorded -> an E.164 number and a destination class.

A ``DialPlan`` describes one site (country, area codes, access digits, prefixes, extensions,
emergency and service numbers), with per-source overrides because sources differ: MiVB SMDR
reports the digits *without* the outside-line access code, others include it. ``normalise``
follows formats.md §7.2 step by step and records every step it took, so a rated call can say
how its number was read.

Guarantees:

- Pure and deterministic: the same (dial plan, source, number) always gives the same
  ``Normalised``. Decisions are memoised per dial plan (a bounded cache; the results are
  immutable), which keeps the rating hot path off libphonenumber.
- Never a silent guess: a number that cannot be read is ``problem=INVALID_NUMBER`` or
  ``AMBIGUOUS_NUMBER`` (truncated with ``>``), and a number libphonenumber does not know (and
  no ``[[ranges]]`` entry of the dial plan covers) is class ``unknown`` with a problem, so it
  lands on the unrated queue instead of being priced on a guess.
- ``load_dial_plan`` rejects a bad file with a ``ConfigError`` naming the key and the fix.

Dial plan file (TOML; docs/rating.md has every key)::

    site = "toronto-hq"
    timezone = "America/Toronto"
    country_code = "1"
    region = "CA"
    outside_line_prefixes = ["9"]
    includes_access_digits = true
    national_prefix = "1"
    international_prefix = "011"
    local_area_codes = ["416", "647"]
    emergency_numbers = ["911"]
    [sources."mivb-1"]
    includes_access_digits = false
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import PhoneNumberType

from datacenter.rating.toml_files import read_toml
from shared.errors import ConfigError

MAX_E164_DIGITS = 15
DEFAULT_MAX_EXTENSION_LENGTH = 4
MIN_FULL_NUMBER = 7  # without national_number_length, an inbound DDI shorter than this is partial
DECISION_CACHE_SIZE = 200_000  # memoised numbers per dial plan; cleared wholesale when full
_CLEAN_DROP = str.maketrans("", "", " \t-().")
_DIALLED = re.compile(r"^[0-9*#]+$")
_PATTERN = re.compile(r"^[0-9*#xX]+$")


class NumberClass(StrEnum):
    """Destination classes (formats.md §7.3)."""

    INTERNAL = "internal"
    LOCAL = "local"
    NATIONAL = "national"
    MOBILE = "mobile"
    INTERNATIONAL = "international"
    TOLL_FREE = "toll-free"
    PREMIUM = "premium"
    EMERGENCY = "emergency"
    SERVICE = "service"
    UNKNOWN = "unknown"


class NumberProblem(StrEnum):
    """Why a number could not be normalised; these are unrated-queue reason codes."""

    INVALID_NUMBER = "INVALID_NUMBER"
    AMBIGUOUS_NUMBER = "AMBIGUOUS_NUMBER"


# libphonenumber's type -> our class, for numbers in the site's own country. NANP cannot tell
# fixed from mobile (FIXED_LINE_OR_MOBILE): such numbers are local/national here, and a tariff
# that prices NANP mobiles differently says so with prefix rows.
_DOMESTIC_TYPES: dict[int, NumberClass] = {
    PhoneNumberType.FIXED_LINE: NumberClass.NATIONAL,
    PhoneNumberType.FIXED_LINE_OR_MOBILE: NumberClass.NATIONAL,
    PhoneNumberType.MOBILE: NumberClass.MOBILE,
    PhoneNumberType.PAGER: NumberClass.MOBILE,
    PhoneNumberType.TOLL_FREE: NumberClass.TOLL_FREE,
    PhoneNumberType.PREMIUM_RATE: NumberClass.PREMIUM,
    PhoneNumberType.PERSONAL_NUMBER: NumberClass.PREMIUM,
    PhoneNumberType.SHARED_COST: NumberClass.SERVICE,
    PhoneNumberType.VOICEMAIL: NumberClass.SERVICE,
    PhoneNumberType.UAN: NumberClass.NATIONAL,
    PhoneNumberType.VOIP: NumberClass.NATIONAL,
}


@dataclass(frozen=True, slots=True)
class Normalised:
    """What the dial plan made of one recorded number."""

    number: str  # as recorded
    e164: str  # digits without '+', "" when the number is not a public number
    number_class: NumberClass
    steps: tuple[str, ...]  # each decision, in order, for the explanation
    problem: NumberProblem | None = None
    detail: str = ""  # one sentence when problem is set

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass(frozen=True, slots=True)
class RangeRule:
    """A dial-plan numbering range consulted before libphonenumber (E.164 prefix -> class)."""

    prefix: str
    number_class: NumberClass


@dataclass(frozen=True, slots=True)
class SourceRules:
    """Per-source overrides: what this source's records include."""

    includes_access_digits: bool


@dataclass(frozen=True, slots=True)
class DialPlan:
    """One site's numbering rules (formats.md §7.2)."""

    site: str
    country_code: str
    region: str  # ISO 3166 alpha-2 of the site, for libphonenumber
    timezone: str | None = None  # IANA zone; bands are evaluated in it
    outside_line_prefixes: tuple[str, ...] = ()
    includes_access_digits: bool = False  # site default; MiVB SMDR excludes the access code
    national_prefix: str = ""
    international_prefix: str = ""
    local_area_codes: tuple[str, ...] = ()
    national_number_length: int | None = None
    max_extension_length: int = DEFAULT_MAX_EXTENSION_LENGTH
    extension_ranges: tuple[tuple[str, str], ...] = ()  # inclusive, numeric, same length
    strip_prefixes: tuple[str, ...] = ()  # patterns, 'x' = any digit
    emergency_numbers: tuple[str, ...] = ()  # patterns, exact length
    service_codes: tuple[str, ...] = ()  # patterns, exact length
    did_prefix: str = ""  # prepended to short inbound DDIs, e.g. "0207946" or "312555"
    domestic_regions: tuple[str, ...] = ()  # regions sharing the country code rated as domestic
    ranges: tuple[RangeRule, ...] = ()
    sources: Mapping[str, SourceRules] = field(default_factory=dict)
    # Unsupervised outgoing trunks (MiVB SMDR without answer supervision, formats.md §2.3): the
    # duration includes dialling and ringing. This many seconds are taken off before rating, and
    # a call shorter than the threshold (after the allowance) counts as unanswered.
    unsupervised_allowance: int = 0
    unsupervised_min_seconds: int = 0
    # decisions by number, one memo per (strip access digits, inbound) reading: plain string keys
    _cache: tuple[dict[str, Normalised], ...] = field(
        init=False, default_factory=lambda: ({}, {}, {}, {}), compare=False, repr=False, hash=False
    )

    def zone(self) -> ZoneInfo | None:
        return None if self.timezone is None else ZoneInfo(self.timezone)

    def access_digits_included(self, source_id: str) -> bool:
        rules = self.sources.get(source_id)
        return self.includes_access_digits if rules is None else rules.includes_access_digits

    def normalise(self, number: str, *, source_id: str = "", inbound: bool = False) -> Normalised:
        """Normalise one recorded number (memoised; see module docstring)."""
        strip_access = not inbound and self.access_digits_included(source_id)
        cache = self._cache[2 * inbound + strip_access]
        hit = cache.get(number)
        if hit is None:
            if len(cache) >= DECISION_CACHE_SIZE:
                cache.clear()
            hit = cache[number] = _normalise(
                self, number, strip_access=strip_access, inbound=inbound
            )
        return hit


# --- the algorithm (formats.md §7.2) ----------------------------------------------------------


class _Refused(Exception):
    def __init__(self, problem: NumberProblem, detail: str) -> None:
        super().__init__(detail)
        self.problem = problem
        self.detail = detail


def _normalise(plan: DialPlan, number: str, *, strip_access: bool, inbound: bool) -> Normalised:
    steps: list[str] = []
    try:
        digits, plus = _clean(number, steps)
        if plus:
            e164 = digits
        else:
            special, digits = _special(
                plan, digits, steps, strip_access=strip_access, inbound=inbound
            )
            if special is NumberClass.SERVICE and digits.isdigit():
                # +44 118 xxx is how a UK directory number is written internationally; a tariff
                # may price service codes by prefix (service rows only) or by a class row.
                steps.append(f"service code as +{plan.country_code}{digits}")
                return Normalised(number, plan.country_code + digits, special, tuple(steps))
            if special is not None:
                return Normalised(number, "", special, tuple(steps))
            e164 = _to_e164(plan, digits, steps, inbound=inbound)
        number_class = _classify(plan, e164, steps)
    except _Refused as refused:
        steps.append(f"refused: {refused.detail}")
        return Normalised(
            number, "", NumberClass.UNKNOWN, tuple(steps), refused.problem, refused.detail
        )
    if number_class is NumberClass.UNKNOWN:
        detail = f"+{e164} is not in any numbering range known for its country"
        return Normalised(
            number, e164, number_class, tuple(steps), NumberProblem.INVALID_NUMBER, detail
        )
    return Normalised(number, e164, number_class, tuple(steps))


def _clean(number: str, steps: list[str]) -> tuple[str, bool]:
    """Step 1: drop URI scheme and parameters and punctuation; refuse truncated numbers."""
    text = number.strip()
    lowered = text.lower()
    for scheme in ("tel:", "sip:", "sips:"):
        if lowered.startswith(scheme):
            text = text[len(scheme) :]
            steps.append(f"dropped scheme {scheme!r}")
            break
    for separator in (";", "@"):
        if separator in text:
            text = text.split(separator, 1)[0]
            steps.append(f"dropped parameters after {separator!r}")
    if text.endswith(">"):
        raise _Refused(
            NumberProblem.AMBIGUOUS_NUMBER, f"{number!r} ends in '>': the PBX truncated it"
        )
    text = text.translate(_CLEAN_DROP)
    plus = text.startswith("+")
    digits = text[1:] if plus else text
    if not digits or not _DIALLED.match(digits):
        raise _Refused(NumberProblem.INVALID_NUMBER, f"{number!r} is not a dialled number")
    if plus and not digits.isdigit():
        raise _Refused(NumberProblem.INVALID_NUMBER, f"{number!r}: '+' must be followed by digits")
    steps.append(f"cleaned to {'+' if plus else ''}{digits}")
    return digits, plus


def _special(
    plan: DialPlan, digits: str, steps: list[str], *, strip_access: bool, inbound: bool
) -> tuple[NumberClass | None, str]:
    """Steps 3-6: access digits, strip prefixes, emergency, service, internal.

    Returns the class when the number is special (and normalisation stops), and the digits left.
    """
    # Emergency numbers are matched before stripping too: many PBXs let 911 through undialled 9.
    if _matches_any(plan.emergency_numbers, digits):
        steps.append(f"{digits} is an emergency number")
        return NumberClass.EMERGENCY, digits
    if strip_access:
        access = _longest_prefix(plan.outside_line_prefixes, digits)
        if access and len(digits) > len(access):
            digits = digits[len(access) :]
            steps.append(f"stripped outside-line prefix {access}")
    digits = _strip_prefixes(plan, digits, steps)
    if _matches_any(plan.emergency_numbers, digits):
        steps.append(f"{digits} is an emergency number")
        return NumberClass.EMERGENCY, digits
    if not inbound and _matches_any(plan.service_codes, digits):
        steps.append(f"{digits} is a service code")
        return NumberClass.SERVICE, digits
    if not digits.isdigit():
        raise _Refused(NumberProblem.INVALID_NUMBER, f"{digits!r} still holds '*' or '#'")
    if _is_extension(plan, digits) and not (inbound and plan.did_prefix):
        steps.append(f"{digits} is an internal extension")
        return NumberClass.INTERNAL, digits
    return None, digits


def _strip_prefixes(plan: DialPlan, digits: str, steps: list[str]) -> str:
    # Longest pattern first; several may stack (*67 then 1010xxx), each at most once.
    remaining = sorted(plan.strip_prefixes, key=len, reverse=True)
    stripped = True
    while stripped:
        stripped = False
        for pattern in remaining:
            if len(digits) > len(pattern) and _pattern_match(pattern, digits[: len(pattern)]):
                steps.append(f"stripped prefix {digits[: len(pattern)]} (pattern {pattern})")
                digits = digits[len(pattern) :]
                remaining.remove(pattern)
                stripped = True
                break
    return digits


def _to_e164(plan: DialPlan, digits: str, steps: list[str], *, inbound: bool) -> str:
    """Step 7: international, national, full national number, or local completion."""
    intl, national = plan.international_prefix, plan.national_prefix
    short = len(digits) < (plan.national_number_length or MIN_FULL_NUMBER)
    if inbound and plan.did_prefix and short and not digits.startswith(intl or national or "+"):
        # Carriers often deliver only the last 4-6 digits of a DDI (formats.md §7.2).
        steps.append(f"short DDI completed with DID prefix {plan.did_prefix}")
        return _to_e164(plan, plan.did_prefix + digits, steps, inbound=False)
    if intl and digits.startswith(intl):
        steps.append(f"international prefix {intl}")
        return digits[len(intl) :]
    if national and digits.startswith(national):
        steps.append(f"national prefix {national}: country code {plan.country_code}")
        return plan.country_code + digits[len(national) :]
    if plan.national_number_length is not None and len(digits) == plan.national_number_length:
        steps.append(f"national number without prefix: country code {plan.country_code}")
        return plan.country_code + digits
    if not plan.local_area_codes:
        raise _Refused(
            NumberProblem.INVALID_NUMBER,
            f"{digits} looks like a local number but the dial plan has no local_area_codes",
        )
    area = plan.local_area_codes[0]
    steps.append(f"local number: country code {plan.country_code}, area code {area}")
    return plan.country_code + area + digits


def _classify(plan: DialPlan, e164: str, steps: list[str]) -> NumberClass:
    """Step 8: validate and classify (dial-plan ranges first, then libphonenumber)."""
    if not e164.isdigit() or not 1 <= len(e164) <= MAX_E164_DIGITS:
        raise _Refused(NumberProblem.INVALID_NUMBER, f"+{e164} is not 1-15 digits")
    for rule in plan.ranges:
        if e164.startswith(rule.prefix):
            steps.append(f"dial-plan range +{rule.prefix}: {rule.number_class}")
            return _localise(plan, e164, rule.number_class, steps)
    try:
        parsed = phonenumbers.parse("+" + e164, None)
    except phonenumbers.NumberParseException as exc:
        raise _Refused(NumberProblem.INVALID_NUMBER, f"+{e164}: {exc}") from exc
    if not phonenumbers.is_possible_number(parsed):
        raise _Refused(
            NumberProblem.INVALID_NUMBER, f"+{e164} has an impossible length for its country"
        )
    # number_type is UNKNOWN exactly when is_valid_number is false (same range test, done once)
    number_type = phonenumbers.number_type(parsed)
    if number_type == PhoneNumberType.UNKNOWN:
        steps.append(f"+{e164}: libphonenumber knows no range for it")
        return NumberClass.UNKNOWN
    region = phonenumbers.region_code_for_number(parsed) or ""
    domestic = region == plan.region or region in plan.domestic_regions
    if str(parsed.country_code) != plan.country_code or not domestic:
        steps.append(f"+{e164}: international ({region})")
        return NumberClass.INTERNATIONAL
    number_class = _DOMESTIC_TYPES.get(number_type, NumberClass.UNKNOWN)
    steps.append(f"+{e164}: {number_class} ({region})")
    return _localise(plan, e164, number_class, steps)


def _localise(
    plan: DialPlan, e164: str, number_class: NumberClass, steps: list[str]
) -> NumberClass:
    """A national fixed number in one of the site's local area codes is local."""
    if number_class is not NumberClass.NATIONAL or not e164.startswith(plan.country_code):
        return number_class
    national = e164[len(plan.country_code) :]
    for code in plan.local_area_codes:
        if national.startswith(code):
            steps.append(f"area code {code} is local to the site")
            return NumberClass.LOCAL
    return number_class


def _is_extension(plan: DialPlan, digits: str) -> bool:
    if len(digits) <= plan.max_extension_length:
        return True
    return any(
        len(low) == len(digits) and low <= digits <= high for low, high in plan.extension_ranges
    )


def _longest_prefix(prefixes: tuple[str, ...], digits: str) -> str:
    best = ""
    for prefix in prefixes:
        if digits.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return best


def _pattern_match(pattern: str, digits: str) -> bool:
    return len(pattern) == len(digits) and all(
        (p in "xX" and d.isdigit()) or p == d for p, d in zip(pattern, digits, strict=True)
    )


def _matches_any(patterns: tuple[str, ...], digits: str) -> bool:
    return any(_pattern_match(pattern, digits) for pattern in patterns)


# --- loading ------------------------------------------------------------------------------------

_KEYS = {
    "site", "timezone", "country_code", "region", "outside_line_prefixes",
    "includes_access_digits", "national_prefix", "international_prefix", "local_area_codes",
    "national_number_length", "max_extension_length", "extension_ranges", "strip_prefixes",
    "emergency_numbers", "service_codes", "did_prefix", "domestic_regions", "ranges", "sources",
    "unsupervised_allowance", "unsupervised_min_seconds",
}  # fmt: skip


def load_dial_plan(path: Path) -> DialPlan:
    """Read a dial plan TOML file; ConfigError names the bad key."""
    return dial_plan_from_dict(read_toml(path))


def dial_plan_from_dict(data: Mapping[str, Any]) -> DialPlan:
    """Build and validate a dial plan from parsed TOML (or the JSON the store keeps)."""
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ConfigError(unknown[0], "is not a dial plan key", "see docs/rating.md, Dial plans")
    country = _digits(data, "country_code", required=True)
    region = _text(data, "region", required=True).upper()
    if phonenumbers.country_code_for_region(region) != int(country):
        raise ConfigError(
            "region", f"{region!r} does not use country code {country}", "use the site's ISO code"
        )
    timezone = data.get("timezone")
    if timezone is not None:
        try:
            ZoneInfo(_text(data, "timezone"))
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(
                "timezone", f"{timezone!r} is not an IANA zone", "use e.g. Europe/London"
            ) from exc
    return DialPlan(
        site=_text(data, "site", required=True),
        country_code=country,
        region=region,
        timezone=timezone,
        outside_line_prefixes=_patterns(data, "outside_line_prefixes", wildcards=False),
        includes_access_digits=_bool(data, "includes_access_digits", default=False),
        national_prefix=_digits(data, "national_prefix"),
        international_prefix=_digits(data, "international_prefix"),
        local_area_codes=_patterns(data, "local_area_codes", wildcards=False),
        national_number_length=_int(data, "national_number_length", default=None),
        max_extension_length=_int(data, "max_extension_length", default=4) or 0,
        extension_ranges=_extension_ranges(data),
        strip_prefixes=_patterns(data, "strip_prefixes"),
        emergency_numbers=_patterns(data, "emergency_numbers"),
        service_codes=_patterns(data, "service_codes"),
        did_prefix=_digits(data, "did_prefix"),
        domestic_regions=tuple(
            r.upper() for r in _patterns(data, "domestic_regions", any_text=True)
        ),
        ranges=_ranges(data),
        sources=_sources(data),
        unsupervised_allowance=_seconds(data, "unsupervised_allowance"),
        unsupervised_min_seconds=_seconds(data, "unsupervised_min_seconds"),
    )


def dial_plan_to_dict(plan: DialPlan) -> dict[str, Any]:
    """The inverse of ``dial_plan_from_dict`` (what the store keeps as JSON)."""
    out: dict[str, Any] = {
        "site": plan.site, "country_code": plan.country_code, "region": plan.region,
        "outside_line_prefixes": list(plan.outside_line_prefixes),
        "includes_access_digits": plan.includes_access_digits,
        "national_prefix": plan.national_prefix, "international_prefix": plan.international_prefix,
        "local_area_codes": list(plan.local_area_codes),
        "max_extension_length": plan.max_extension_length,
        "extension_ranges": [list(r) for r in plan.extension_ranges],
        "strip_prefixes": list(plan.strip_prefixes),
        "emergency_numbers": list(plan.emergency_numbers),
        "service_codes": list(plan.service_codes), "did_prefix": plan.did_prefix,
        "domestic_regions": list(plan.domestic_regions),
        "ranges": [{"prefix": r.prefix, "class": str(r.number_class)} for r in plan.ranges],
        "sources": {
            sid: {"includes_access_digits": rules.includes_access_digits}
            for sid, rules in sorted(plan.sources.items())
        },
        "unsupervised_allowance": plan.unsupervised_allowance,
        "unsupervised_min_seconds": plan.unsupervised_min_seconds,
    }  # fmt: skip
    if plan.timezone is not None:
        out["timezone"] = plan.timezone
    if plan.national_number_length is not None:
        out["national_number_length"] = plan.national_number_length
    return out


def _text(data: Mapping[str, Any], key: str, *, required: bool = False) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise ConfigError(key, f"must be a string, got {type(value).__name__}", "quote the value")
    if required and not value:
        raise ConfigError(key, "is missing", "add it to the dial plan")
    return value


def _digits(data: Mapping[str, Any], key: str, *, required: bool = False) -> str:
    value = _text(data, key, required=required)
    if value and not value.isdigit():
        raise ConfigError(key, f"{value!r} must be digits only", "write it without '+' or spaces")
    return value


def _bool(data: Mapping[str, Any], key: str, *, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(key, "must be true or false", "write true or false without quotes")
    return value


def _int(data: Mapping[str, Any], key: str, *, default: int | None) -> int | None:
    value = data.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_E164_DIGITS:
        raise ConfigError(key, f"must be a whole number 0-{MAX_E164_DIGITS}", "fix the value")
    return value


def _seconds(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 3600:
        raise ConfigError(key, "must be a whole number of seconds 0-3600", "fix the value")
    return value


def _patterns(
    data: Mapping[str, Any], key: str, *, wildcards: bool = True, any_text: bool = False
) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(key, "must be a list of non-empty strings", 'write e.g. ["999", "112"]')
    for item in value:
        if any_text:
            continue
        ok = _PATTERN.match(item) if wildcards else item.isdigit()
        if not ok:
            allowed = "digits, '*', '#' and 'x' (any digit)" if wildcards else "digits"
            raise ConfigError(key, f"{item!r} may only hold {allowed}", "fix the entry")
    return tuple(value)


def _extension_ranges(data: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    value = data.get("extension_ranges", [])
    fix = 'write e.g. [["2000", "2999"]]'
    if not isinstance(value, list):
        raise ConfigError("extension_ranges", "must be a list of [low, high] pairs", fix)
    out: list[tuple[str, str]] = []
    for item in value:
        if (
            not isinstance(item, list)
            or len(item) != 2
            or not all(isinstance(v, str) and v.isdigit() for v in item)
            or len(item[0]) != len(item[1])
            or item[0] > item[1]
        ):
            raise ConfigError(
                "extension_ranges", f"{item!r} is not a [low, high] pair of equal length", fix
            )
        out.append((item[0], item[1]))
    return tuple(out)


def _ranges(data: Mapping[str, Any]) -> tuple[RangeRule, ...]:
    value = data.get("ranges", [])
    fix = 'write [[ranges]] prefix = "447700900" class = "mobile"'
    if not isinstance(value, list):
        raise ConfigError("ranges", "must be an array of tables", fix)
    rules: list[RangeRule] = []
    for index, item in enumerate(value):
        key = f"ranges[{index}]"
        if not isinstance(item, dict) or set(item) != {"prefix", "class"}:
            raise ConfigError(key, "needs exactly 'prefix' and 'class'", fix)
        prefix, name = item["prefix"], item["class"]
        if not isinstance(prefix, str) or not prefix.isdigit():
            raise ConfigError(f"{key}.prefix", f"{prefix!r} must be E.164 digits", fix)
        try:
            number_class = NumberClass(name)
        except ValueError as exc:
            allowed = ", ".join(c.value for c in NumberClass)
            raise ConfigError(f"{key}.class", f"{name!r} is not one of {allowed}", fix) from exc
        rules.append(RangeRule(prefix, number_class))
    # Longest prefix first, so the first match in _classify is the longest.
    return tuple(sorted(rules, key=lambda r: (-len(r.prefix), r.prefix)))


def _sources(data: Mapping[str, Any]) -> dict[str, SourceRules]:
    value = data.get("sources", {})
    if not isinstance(value, dict):
        raise ConfigError("sources", "must be a table of source ids", 'write [sources."mivb-1"]')
    out: dict[str, SourceRules] = {}
    for source_id, rules in value.items():
        key = f"sources.{source_id}"
        if not isinstance(rules, dict) or set(rules) - {"includes_access_digits"}:
            raise ConfigError(key, "may only set includes_access_digits", "remove other keys")
        out[source_id] = SourceRules(
            includes_access_digits=_bool(rules, "includes_access_digits", default=False)
        )
    return out
