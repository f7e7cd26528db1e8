"""Rating results in words: money, destination classes, zero-cost reasons, unrated reasons with
their fix, and the terms of an explanation (increments, rounding, band rule). Pure functions.

The unrated reasons are the codes of ``datacenter.rating.engine.UnratedReason`` (formats.md
§7.9); a test checks that every code has its text and fix here.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from datacenter.rating.engine import UnratedReason, ZeroReason
from datacenter.rating.numbering import NumberClass

CLASS_LABELS: dict[str, str] = {
    NumberClass.INTERNAL: "Internal",
    NumberClass.LOCAL: "Local",
    NumberClass.NATIONAL: "National",
    NumberClass.MOBILE: "Mobile",
    NumberClass.INTERNATIONAL: "International",
    NumberClass.TOLL_FREE: "Toll-free",
    NumberClass.PREMIUM: "Premium",
    NumberClass.EMERGENCY: "Emergency",
    NumberClass.SERVICE: "Service",
    NumberClass.UNKNOWN: "Unknown",
}
ZERO_REASONS: dict[str, str] = {
    ZeroReason.INTERNAL: "Internal call: no charge",
    ZeroReason.ON_NET: "On-net (tie line or private network): no charge",
    ZeroReason.EMERGENCY: "Emergency number: never charged",
    ZeroReason.INBOUND: "Incoming call: your tariff does not charge it",
    ZeroReason.UNANSWERED: "Not answered: no charge",
    ZeroReason.TOLL_FREE: "Toll-free number: no charge",
    ZeroReason.NOT_BILLED: "Not a billed call (a retried session or a queue agent's leg)",
}
ROUNDING = {
    "half_up": "rounded half up",
    "up": "rounded up",
    "half_even": "rounded half to even",
    "down": "rounded down",
}
BAND_RULES = {
    "per_increment": "each increment at the band in force when it starts",
    "start_band": "the whole call at the band it starts in",
    "prorate": "each second at its own band",
}


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a call is not rated, and what fixes it."""

    text: str
    fix: str


NOT_RATED_YET = Reason(
    "This call has not been rated: it was stored before rating was set up for your account.",
    "Ask your administrator to run `datacenter rerate --tenant <tenant> --since <day>` for its day.",
)
UNRATED: dict[str, Reason] = {
    UnratedReason.NO_DIAL_PLAN: Reason(
        "The site this call came from has no dial plan, so its numbers cannot be read.",
        "Set the site's dial plan: `datacenter tariff set-site --tenant <tenant> --agent <site> "
        "--dial-plan FILE` (or `--agent '*'` for every site). Queued calls are rated again at once.",
    ),
    UnratedReason.UNKNOWN_ROUTE: Reason(
        "No rule of the site's route map matches this call's trunk or route, and the map is set "
        "to refuse calls it does not know.",
        "Add a [[route]] rule for this trunk or route to the route map, or give it a "
        "default_carrier with exact = false, then `datacenter tariff set-site --carriers FILE`.",
    ),
    UnratedReason.NO_TARIFF_FOR_DATE: Reason(
        "The carrier that took this call has no tariff in force on the day it started.",
        "Import a tariff version of that carrier valid on the call's date: "
        "`datacenter tariff import --tenant <tenant> PLAN.toml` (queued calls are retried).",
    ),
    UnratedReason.NO_PREFIX_MATCH: Reason(
        "The carrier's tariff has no destination for this number, nor a row for its class.",
        "Add a prefix row (or a class row) for this destination to the rate deck and import it "
        "again: `datacenter tariff export`, edit, `datacenter tariff import`.",
    ),
    UnratedReason.INVALID_NUMBER: Reason(
        "The number the PBX recorded cannot be read as a phone number.",
        "Check the site's dial plan (outside-line prefixes, whether the source includes the "
        "access digits, extension length); if the PBX recorded it wrong, the call cannot be priced.",
    ),
    UnratedReason.AMBIGUOUS_NUMBER: Reason(
        "The PBX recorded a shortened number (it ends in '>'), so the destination is unknown.",
        "Let the PBX record more digits (MiVB: SMDR 'Extended Digit Length'); calls already "
        "recorded shortened stay unpriced.",
    ),
    UnratedReason.END_PENDING: Reason(
        "The call had not ended when the phone system was read (a Lync / Skype for Business "
        "session still open), so its length is not known yet.",
        "Nothing to do: the agent keeps polling the session and the complete record replaces "
        "this one and is rated when it arrives. If it stays, check that the agent still polls "
        "this site (the technicians' console).",
    ),
    UnratedReason.UNPRICED_TIME: Reason(
        "The tariff sets no price for this destination in the time band the call was made in "
        "(the carrier's price list leaves it out).",
        "Add the missing price to the tariff (`datacenter tariff import`), then "
        "`datacenter rerate` the days affected.",
    ),
    UnratedReason.MISSING_TIMES: Reason(
        "The call was answered, but the record has neither an answer time nor a talk time.",
        "Check the PBX's call-record options so that they report call durations.",
    ),
    UnratedReason.NO_TIMEZONE: Reason(
        "The tariff has time bands (day / evening / weekend) but the site has no time zone.",
        "Set `timezone` in the site's dial plan and `datacenter tariff set-site` it again.",
    ),
    UnratedReason.CURRENCY_MISMATCH: Reason(
        "The tariff is in a different currency from the one the site bills in.",
        "Make the route map's `currency` and the carrier's tariff currency the same.",
    ),
    UnratedReason.PARSE_INCOMPLETE: Reason(
        "The PBX's record of this call is partial or incomplete; tariffs do not price part of a call.",
        "Nothing to fix here if the PBX sends the complete record later; otherwise check the "
        "source's connection (a record cut short in transit is marked partial).",
    ),
    UnratedReason.BAND_SPAN_LIMIT: Reason(
        "The call crosses more time-band changes than the tariff allows.",
        "Raise `max_band_spans` in the tariff plan and import it again.",
    ),
    UnratedReason.UNKNOWN_DIRECTION: Reason(
        "The PBX did not say whether this call was outgoing or incoming.",
        "Check the source's settings (e.g. the trunk numbering the driver uses to tell "
        "directions apart).",
    ),
}


def unrated_reason(code: str | None) -> Reason:
    """The text and fix for an unrated-queue code (None: never rated)."""
    if code is None:
        return NOT_RATED_YET
    return UNRATED.get(code, Reason(f"Not rated ({code}).", "Ask your administrator."))


def money(minor: int | None, decimals: int, currency: str) -> str:
    """``1,234.50 GBP``; empty for no amount."""
    if minor is None:
        return ""
    amount = Decimal(minor).scaleb(-decimals)
    text = f"{amount:,.{decimals}f}"
    return f"{text} {currency}".strip()


def class_label(value: str | None) -> str:
    return CLASS_LABELS.get(value or "", value or "")


def zero_reason_label(value: str | None) -> str:
    return ZERO_REASONS.get(value or "", value or "")


def increments_label(value: str) -> str:
    """``60/1`` -> ``first 60 s, then per 1 s``."""
    first, _, then = value.partition("/")
    if not then:
        return value
    return f"first {first} s, then per {then} s"


def rounding_label(value: str) -> str:
    return ROUNDING.get(value, value)


def band_rule_label(value: str) -> str:
    return BAND_RULES.get(value, value)


def billed_minutes(seconds: int) -> str:
    """Seconds as minutes with two decimals: ``1,234.50``."""
    return f"{Decimal(seconds) / 60:,.2f}"


JINJA_FILTERS = {
    "money": money,
    "class_label": class_label,
    "zero_reason_label": zero_reason_label,
    "increments_label": increments_label,
    "rounding_label": rounding_label,
    "band_rule_label": band_rule_label,
    "billed_minutes": billed_minutes,
}
