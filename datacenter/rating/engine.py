"""The rating engine: (ICDR, dial plan, tariffs, route map) -> RatedCall or Unrated. Pure.

``rate_call`` does no I/O and reads no clock: the same inputs always give the same result, which
is what makes re-rating idempotent and every cost reproducible. It follows formats.md §7.1:
select the number, normalise it (``numbering``), choose the carrier (``carriers``), take the
tariff version in force at the call's **start**, longest-prefix match, price, and explain.

Pricing (formats.md §7.4), all in integers (rates in micro-units, raw cost in sixtieths of a
micro-unit, so ``rate x seconds`` is exact), rounded once per call to the currency's minor unit:

    billed = 0                               if d == 0 or d <= grace
           = a                               if d <= a
           = a + ceil((d - a) / b) * b       otherwise
    raw = connection_fee + sum(rate(band_i) x seconds_i) / 60
    raw = max(raw, minimum_charge)           if billed > 0
    raw = min(raw, max_cost)                 if max_cost is set
    cost = round(raw, currency decimals, tariff rounding mode)

The increments, fee, grace, minimum and cap come from the rate of the band the call *starts*
in; crossing into another band changes only the per-minute rate (by the tariff's band rule:
per increment, start band, or prorated by second). Bands are evaluated in the site's zone.

Outcomes that are not a priced call:

- zero cost with a ``zero_reason``: internal and on-net calls, emergency numbers, inbound calls
  no inbound tariff row covers, unanswered calls (unless the rate says ``charge_unanswered``:
  then the connection fee), toll-free numbers with no tariff row.
- ``Unrated`` with a reason code (the unrated queue, formats.md §7.9) for anything the engine
  cannot price without guessing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from datacenter.rating.bands import (
    SINGLE,
    SINGLE_BAND,
    BandClock,
    Span,
    epoch_seconds,
    from_epoch,
)
from datacenter.rating.carriers import CarrierChoice, CarrierRules
from datacenter.rating.money import (
    MICRO,
    SECONDS_PER_MINUTE,
    format_fraction,
    format_micro,
    format_minor,
    round_to_minor,
)
from datacenter.rating.numbering import DialPlan, Normalised, NumberClass
from datacenter.rating.shapes import (
    Priced,
    Shape,
    price_shape,
    round_subtotal,
    steps_text,
    tiers_text,
)
from datacenter.rating.tariffs import (
    BandRule,
    Destination,
    Rate,
    TariffPlan,
    TariffVersion,
)
from shared.icdr import ICDR, Direction, format_time

ENGINE_VERSION = "2"  # 2: tariff shapes, band "all" for one-band tariffs, MISSING_TIMES (issue 14)
INCOMPLETE_FLAGS = frozenset({"partial", "incomplete"})
UNSUPERVISED_FLAG = "unsupervised"
# Set by a driver on a record that is real but must not be charged: a Lync retried session or a
# Response Group agent leg (the caller's leg is billed), whose reason travels beside it in flags.
NOT_BILLED_FLAG = "not_billed"
# Set by a driver on a call still in progress when read (Lync): its end, hence its duration, is
# not known yet; the complete record replaces it at ingest and is rated then.
END_PENDING_FLAG = "end_pending"
_MICROSECOND = timedelta(microseconds=1)
_RAW_SCALE = SECONDS_PER_MINUTE * MICRO  # sixtieths of a micro-unit per currency unit


class UnratedReason(StrEnum):
    """Why a call is on the unrated queue (formats.md §7.9)."""

    UNKNOWN_ROUTE = "UNKNOWN_ROUTE"
    NO_TARIFF_FOR_DATE = "NO_TARIFF_FOR_DATE"
    NO_PREFIX_MATCH = "NO_PREFIX_MATCH"
    INVALID_NUMBER = "INVALID_NUMBER"
    AMBIGUOUS_NUMBER = "AMBIGUOUS_NUMBER"
    MISSING_TIMES = "MISSING_TIMES"
    NO_TIMEZONE = "NO_TIMEZONE"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    PARSE_INCOMPLETE = "PARSE_INCOMPLETE"
    BAND_SPAN_LIMIT = "BAND_SPAN_LIMIT"
    UNKNOWN_DIRECTION = "UNKNOWN_DIRECTION"
    NO_DIAL_PLAN = "NO_DIAL_PLAN"  # set by the store layer: the site has no dial plan
    UNPRICED_TIME = "UNPRICED_TIME"  # the tariff sets no price for the band the call is billed in
    END_PENDING = "END_PENDING"


class ZeroReason(StrEnum):
    """Why a rated call costs nothing without a tariff saying so."""

    INTERNAL = "internal"
    ON_NET = "on_net"
    EMERGENCY = "emergency"
    INBOUND = "inbound_not_tariffed"
    UNANSWERED = "unanswered"
    TOLL_FREE = "toll_free"
    NOT_BILLED = "not_billed"  # the source marks the record as not a billable call


class Charge(NamedTuple):
    """One band's (or shaped line's) share of a call: ``seconds`` at ``rate_per_minute``."""

    band: str
    start: int  # UTC epoch seconds of the first billed second in this band
    seconds: int
    increments: int  # how many increments started in this band (0 under prorate)
    rate_per_minute: int
    amount: int = -1  # sixtieths of a micro-unit when not rate x seconds (a shaped line)
    label: str = ""  # a shaped line: "first block", "base rate", "tier from 600 s"

    @property
    def amount60(self) -> int:
        return self.rate_per_minute * self.seconds if self.amount < 0 else self.amount


# A ``Charge`` as a plain tuple, the form a ``RatedCall`` keeps (see there): five fields, or
# seven for a shaped line.
ChargeParts = tuple[Any, ...]


class Explanation(NamedTuple):
    """Everything needed to show, line by line, how a cost came about."""

    direction: str
    number_field: str = ""  # which ICDR field was rated ("" when none)
    number: Normalised | None = None
    carrier: CarrierChoice | None = None
    version: TariffVersion | None = None
    destination: Destination | None = None
    rate: Rate | None = None  # the start band's rate: increments, fee, grace, minimum, cap
    duration_seconds: int = 0
    duration_basis: str = ""
    billed_seconds: int = 0
    charges: tuple[Charge, ...] = ()
    fee: int = 0  # micro-units actually charged
    raw60: int = 0  # fee + charges, sixtieths of a micro-unit
    final60: int = 0  # after minimum and cap
    adjustment: str = ""  # "minimum_charge" | "max_cost" | ""
    cost: int = 0
    zero_reason: str = ""
    detail: str = ""
    notes: tuple[str, ...] = ()  # the shapes' steps: free seconds, surcharge, rounding steps
    surcharge: int = 0  # micro-units
    subtotal60: int = -1  # after a subtotal rounding step (-1: none)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the store keeps and the web page shows."""
        return _explanation_dict(self)


class RatedCall(NamedTuple):
    """A priced call (possibly zero, with a reason) and everything that explains it.

    The fields up to ``zero_reason`` are the summary the store keeps in columns; the rest are the
    parts of the explanation, and ``explanation`` assembles them into an ``Explanation`` when it
    is asked for (to store or print a call). They are kept flat in this one tuple, and a call in
    one band (most calls) needs no charge tuples at all (``charges`` derives its one charge),
    because rating a batch should leave one object per call for the garbage collector to track:
    with a result, an explanation and a charge per call, Python's collector took about half the
    CPU time of a million-call run.
    """

    record_id: str
    cost: int  # minor units of ``currency``
    currency: str  # "" when no tariff was involved (internal, emergency, ...)
    decimals: int
    number_class: NumberClass
    e164: str
    carrier: str
    tariff_version: str
    destination: str
    prefix: str
    billed_seconds: int
    bands: tuple[str, ...]
    zero_reason: str  # "" when a tariff priced the call
    # the explanation's parts, as in ``Explanation``
    direction: str
    number_field: str
    number: Normalised | None
    carrier_choice: CarrierChoice | None
    version: TariffVersion | None
    matched: Destination | None  # the destination row
    rate: Rate | None
    duration_seconds: int
    duration_basis: str
    billed_from: int  # UTC epoch seconds of the first billed second (when any is billed)
    # ``Charge`` fields per band when the band rule split the call; empty when every billed
    # second is one charge in ``bands[0]`` at ``rate`` (see ``charges``)
    band_split: tuple[ChargeParts, ...]
    fee: int
    raw60: int
    final60: int
    adjustment: str
    surcharge: int = 0  # micro-units (a shaped row's surcharge, when it applied)
    subtotal60: int = -1  # after a shaped row's subtotal rounding step (-1: none)

    @property
    def charges(self) -> tuple[Charge, ...]:
        """The billed seconds by band (or a shaped row's lines), each at its rate."""
        if self.band_split:
            return tuple(Charge(*parts) for parts in self.band_split)
        rate, billed = self.rate, self.billed_seconds
        if rate is None:
            return ()
        if rate.shape is not None:  # the lines again, as priced: kept by no rated call
            return tuple(Charge(*parts) for parts in self._shaped()[1])
        if billed == 0:
            return ()
        increments = 1 + (billed - rate.initial_increment) // rate.subsequent_increment
        return (Charge(self.bands[0], self.billed_from, billed, increments, rate.rate_per_minute),)

    @property
    def explanation(self) -> Explanation:
        return Explanation(
            self.direction, self.number_field, self.number, self.carrier_choice, self.version,
            self.matched, self.rate, self.duration_seconds, self.duration_basis,
            self.billed_seconds, self.charges, self.fee, self.raw60, self.final60,
            self.adjustment, self.cost, self.zero_reason, "",
            self._shaped()[4] if self.rate is not None and self.rate.shape else (),
            self.surcharge, self.subtotal60,
        )  # fmt: skip

    def _shaped(self) -> Priced:
        """A shaped row's pricing, recomputed (pure): rating keeps no lines per call (see above)."""
        rate = self.rate
        assert rate is not None and rate.shape is not None
        if self.duration_seconds <= rate.grace_seconds:
            return 0, (), 0, 0, ()
        return price_shape(
            rate.shape, rate.rate_per_minute, self.duration_seconds, self.bands[0], self.billed_from
        )

    @property
    def cost_text(self) -> str:
        return format_minor(self.cost, self.decimals) if self.currency else "0"

    def to_dict(self) -> dict[str, Any]:
        return {
            "record_id": self.record_id, "rated": True, "cost": self.cost_text,
            "cost_minor": self.cost, "currency": self.currency,
            "number_class": self.number_class.value, "e164": _plus(self.e164),
            "carrier": self.carrier, "tariff_version": self.tariff_version,
            "destination": self.destination, "prefix": self.prefix,
            "billed_seconds": self.billed_seconds, "bands": list(self.bands),
            "zero_reason": self.zero_reason or None, "explanation": self.explanation.to_dict(),
        }  # fmt: skip


class Unrated(NamedTuple):
    """A call that cannot be priced without guessing: it goes to the unrated queue."""

    record_id: str
    reason: UnratedReason
    detail: str
    explanation: Explanation

    def to_dict(self) -> dict[str, Any]:
        return {
            "record_id": self.record_id, "rated": False, "reason": self.reason.value,
            "detail": self.detail, "explanation": self.explanation.to_dict(),
        }  # fmt: skip


RatingResult = RatedCall | Unrated


def rate_call(
    icdr: ICDR,
    *,
    dial_plan: DialPlan,
    tariffs: Mapping[str, TariffPlan],
    carriers: CarrierRules,
) -> RatingResult:
    """Rate one call. Pure: no I/O, no clock; memo caches never change a result."""
    trace = _Trace(icdr)
    if NOT_BILLED_FLAG in icdr.flags:
        return trace.zero(ZeroReason.NOT_BILLED)
    if END_PENDING_FLAG in icdr.flags:
        return trace.unrated(
            UnratedReason.END_PENDING, "the call had not ended when read; its end is awaited"
        )
    if icdr.direction is Direction.IN:
        return _rate_inbound(trace, dial_plan, tariffs, carriers)
    field_name, number = _outgoing_number(icdr)
    if not number:
        if icdr.direction is Direction.INTERNAL:
            return trace.zero(ZeroReason.INTERNAL)
        if not _connection(trace, dial_plan):
            return trace.zero(ZeroReason.UNANSWERED)
        return trace.unrated(
            UnratedReason.INVALID_NUMBER, "the record has no dialled or called number"
        )
    normalised = dial_plan.normalise(number, source_id=icdr.source_id)
    trace.number_field, trace.number = field_name, normalised
    if icdr.direction is Direction.INTERNAL or normalised.number_class is NumberClass.INTERNAL:
        return trace.zero(ZeroReason.INTERNAL)
    if normalised.number_class is NumberClass.EMERGENCY:
        return trace.zero(ZeroReason.EMERGENCY)
    answered = _connection(trace, dial_plan)
    if icdr.direction is Direction.UNKNOWN:
        if not answered:
            return trace.zero(ZeroReason.UNANSWERED)
        return trace.unrated(
            UnratedReason.UNKNOWN_DIRECTION,
            "the source did not say whether the call was outgoing or incoming",
        )
    if normalised.problem is not None:
        if not answered:
            return trace.zero(ZeroReason.UNANSWERED)
        return trace.unrated(UnratedReason(normalised.problem.value), normalised.detail)
    failed = _find_tariff(trace, normalised, tariffs, carriers, inbound=False)
    if failed is not None:
        if answered or isinstance(failed, RatedCall):
            return failed
        return trace.zero(ZeroReason.UNANSWERED)
    return _price(trace, dial_plan, answered)


# --- the steps ----------------------------------------------------------------------------------


class _Trace:
    """What rating found so far; turned into the result once, when the call is decided.

    Class attributes are the defaults, so a call only pays for what it sets (hot path). The
    pricing figures (charges, fee, raw and final amounts, cost) are not here: only a priced call
    has them, and ``_price`` hands them straight to ``rated``.
    """

    number_field = ""
    number: Normalised | None = None
    carrier: CarrierChoice | None = None
    version: TariffVersion | None = None
    destination: Destination | None = None
    rate: Rate | None = None
    duration_seconds = 0
    duration_basis = ""
    start: datetime | None = None
    billed_seconds = 0

    def __init__(self, icdr: ICDR) -> None:
        self.icdr = icdr

    def zero(self, reason: ZeroReason) -> RatedCall:
        version, number, dest, choice = self.version, self.number, self.destination, self.carrier
        return RatedCall(
            self.icdr.record_id, 0,
            version.currency if version is not None else "",
            version.decimals if version is not None else 0,
            number.number_class if number is not None else NumberClass.UNKNOWN,
            number.e164 if number is not None else "",
            choice.carrier if choice is not None else "",
            version.version if version is not None else "",
            dest.name if dest is not None else "",
            dest.prefix if dest is not None else "",
            0, (), reason.value,
            self.icdr.direction, self.number_field, number, choice, version, dest, self.rate,
            self.duration_seconds, self.duration_basis, 0, (), 0, 0, 0, "",
        )  # fmt: skip

    def rated(
        self, cost: int, bands: tuple[str, ...], billed_from: int,
        band_split: tuple[ChargeParts, ...], fee: int, raw60: int, final60: int, adjustment: str,
        surcharge: int = 0, subtotal60: int = -1,
    ) -> RatedCall:  # fmt: skip
        """The priced call; the pricing figures come as arguments (hot path: no stores)."""
        version, dest, number = self.version, self.destination, self.number
        assert version is not None and dest is not None and number is not None
        return RatedCall._make((
            self.icdr.record_id, cost, version.currency, version.decimals,
            dest.number_class or number.number_class, number.e164, version.carrier,
            version.version, dest.name, dest.prefix, self.billed_seconds, bands, "",
            self.icdr.direction, self.number_field, number, self.carrier, version, dest,
            self.rate, self.duration_seconds, self.duration_basis, billed_from, band_split, fee,
            raw60, final60, adjustment, surcharge, subtotal60,
        ))  # fmt: skip

    def unrated(self, reason: UnratedReason, detail: str) -> Unrated:
        explanation = Explanation(
            self.icdr.direction, self.number_field, self.number, self.carrier, self.version,
            self.destination, self.rate, self.duration_seconds, self.duration_basis,
            self.billed_seconds, detail=detail,
        )  # fmt: skip
        return Unrated(self.icdr.record_id, reason, detail, explanation)


def _outgoing_number(icdr: ICDR) -> tuple[str, str]:
    """What the PBX says was dialled: dialled digits first, then the called party."""
    if icdr.dialled_digits.strip():
        return "dialled_digits", icdr.dialled_digits
    if icdr.called.strip():
        return "called", icdr.called
    return "", ""


def _connection(trace: _Trace, plan: DialPlan) -> bool:
    """Whether the call connected; sets the seconds to bill, how, and the first billed instant."""
    icdr = trace.icdr
    unsupervised = UNSUPERVISED_FLAG in icdr.flags
    if not (icdr.answered or (unsupervised and icdr.talk_seconds > 0)):
        trace.duration_basis = "not answered"
        return False
    if icdr.answer is not None:
        micros = (icdr.end - icdr.answer) // _MICROSECOND
        seconds = -(-micros // 1_000_000)  # rounded up to whole seconds
        basis = "end - answer, rounded up to whole seconds"
        trace.start = icdr.answer
    else:
        seconds = icdr.talk_seconds
        basis = "talk_seconds (no answer time recorded)"
        trace.start = icdr.end - timedelta(seconds=seconds) if seconds else None
    if unsupervised:
        seconds = max(0, seconds - plan.unsupervised_allowance)
        basis += f", less the unsupervised allowance of {plan.unsupervised_allowance} s"
        if seconds == 0 or seconds < plan.unsupervised_min_seconds:
            trace.duration_basis = basis + ": below the threshold, counted as unanswered"
            return False
    trace.duration_seconds, trace.duration_basis = seconds, basis
    return True


def _find_tariff(
    trace: _Trace,
    normalised: Normalised,
    tariffs: Mapping[str, TariffPlan],
    carriers: CarrierRules,
    *,
    inbound: bool,
) -> RatedCall | Unrated | None:
    """Carrier, version and destination onto the trace; a result only when that fails."""
    icdr = trace.icdr
    choice = trace.carrier = carriers.choose(
        source_id=icdr.source_id, trunk=icdr.trunk, route=icdr.route
    )
    if choice.on_net:
        return trace.zero(ZeroReason.ON_NET)
    if choice.unknown:
        return trace.unrated(UnratedReason.UNKNOWN_ROUTE, choice.rule)
    tariff = tariffs.get(choice.carrier)
    if tariff is None:
        return trace.unrated(
            UnratedReason.NO_TARIFF_FOR_DATE, f"carrier {choice.carrier!r} has no tariff plan"
        )
    version = trace.version = tariff.version_at(icdr.start)
    if version is None:
        return trace.unrated(
            UnratedReason.NO_TARIFF_FOR_DATE,
            f"carrier {choice.carrier!r} has no tariff version in force at {format_time(icdr.start)}",
        )
    if carriers.currency and version.currency != carriers.currency:
        return trace.unrated(
            UnratedReason.CURRENCY_MISMATCH,
            f"tariff {version.version!r} is in {version.currency}, the site bills in {carriers.currency}",
        )
    index = version.inbound if inbound else version.outbound
    destination = trace.destination = index.match(normalised.e164, normalised.number_class)
    if destination is None:
        if normalised.number_class is NumberClass.TOLL_FREE and not inbound:
            return trace.zero(ZeroReason.TOLL_FREE)
        return trace.unrated(
            UnratedReason.NO_PREFIX_MATCH,
            f"no destination of tariff {version.version!r} matches "
            f"{_plus(normalised.e164) or normalised.number} ({normalised.number_class})",
        )
    return None


def _rate_inbound(
    trace: _Trace, plan: DialPlan, tariffs: Mapping[str, TariffPlan], carriers: CarrierRules
) -> RatingResult:
    """Inbound calls cost nothing unless an inbound row covers the DDI, its class or the trunk.

    Order: the DDI's longest prefix, then a class row for the DDI's class (toll-free, premium,
    national ...), then a trunk row for the call's trunk; a call without a DDI can only be
    charged by its trunk's row (carriers that bill the receiving side per trunk).
    """
    icdr = trace.icdr
    field_name, number = (
        ("dnis", icdr.dnis) if icdr.dnis.strip() else ("dialled_digits", icdr.dialled_digits)
    )
    choice = trace.carrier = carriers.choose(
        source_id=icdr.source_id, trunk=icdr.trunk, route=icdr.route
    )
    tariff = tariffs.get(choice.carrier) if choice.carrier and not choice.on_net else None
    version = tariff.version_at(icdr.start) if tariff is not None else None
    if version is None or version.inbound.empty:
        return trace.zero(ZeroReason.INBOUND)
    trunk_row = version.inbound.by_trunk.get(icdr.trunk) if icdr.trunk else None
    if not number.strip():
        if trunk_row is None:
            return trace.zero(ZeroReason.INBOUND)
        trace.number = Normalised("", "", NumberClass.UNKNOWN, ("no DDI: rated by trunk",))
        return _rate_by_trunk(trace, plan, carriers, version, trunk_row)
    normalised = plan.normalise(number, source_id=icdr.source_id, inbound=True)
    trace.number_field, trace.number = field_name, normalised
    answered = _connection(trace, plan)
    if normalised.problem is not None:
        if not answered:
            return trace.zero(ZeroReason.UNANSWERED)
        return trace.unrated(UnratedReason(normalised.problem.value), normalised.detail)
    failed = _find_tariff(trace, normalised, tariffs, carriers, inbound=True)
    if isinstance(failed, Unrated):
        if trunk_row is not None and failed.reason is UnratedReason.NO_PREFIX_MATCH:
            return _rate_by_trunk(trace, plan, carriers, version, trunk_row)
        # No inbound row for this DDI: inbound is free unless a tariff says otherwise.
        return trace.zero(ZeroReason.INBOUND)
    if failed is not None:
        return failed
    return _price(trace, plan, answered)


def _rate_by_trunk(
    trace: _Trace,
    plan: DialPlan,
    carriers: CarrierRules,
    version: TariffVersion,
    trunk_row: Destination,
) -> RatingResult:
    """An inbound call priced by its trunk's row (the receiving side pays per trunk)."""
    answered = _connection(trace, plan)
    if carriers.currency and version.currency != carriers.currency:
        return trace.unrated(
            UnratedReason.CURRENCY_MISMATCH,
            f"tariff {version.version!r} is in {version.currency}, the site bills in {carriers.currency}",
        )
    trace.version, trace.destination = version, trunk_row
    return _price(trace, plan, answered)


def _price(trace: _Trace, plan: DialPlan, answered: bool) -> RatingResult:
    version, destination = trace.version, trace.destination
    assert version is not None and destination is not None
    if not answered:
        return _price_unanswered(trace, plan, version, destination)
    if trace.icdr.flags and INCOMPLETE_FLAGS.intersection(trace.icdr.flags):
        return trace.unrated(
            UnratedReason.PARSE_INCOMPLETE,
            "the record is flagged partial/incomplete; tariffs refuse partial calls",
        )
    duration = trace.duration_seconds
    if trace.start is None:  # answered, yet no answer time and no talk time: nothing to bill
        return trace.unrated(
            UnratedReason.MISSING_TIMES,
            "answered, but neither an answer time nor a talk time was recorded",
        )
    t0 = epoch_seconds(trace.start if trace.start is not None else trace.icdr.end)
    clock = _clock(version, plan)
    if clock is None and version.calendar is not SINGLE:
        return trace.unrated(
            UnratedReason.NO_TIMEZONE,
            f"site {plan.site!r} has no timezone; tariff {version.version!r} has time bands",
        )
    run = None if clock is None else clock.run_at(t0)
    first_band = SINGLE_BAND if run is None else run.band
    rate = trace.rate = destination.rate_for(first_band)
    if rate.unpriced:
        return _unpriced(trace, version, destination, first_band)
    if rate.shape is not None:
        return _price_shaped(trace, version, rate, rate.shape, t0, first_band, duration)
    billed = trace.billed_seconds = billed_seconds(duration, rate)
    split: tuple[ChargeParts, ...] = ()
    if billed == 0:
        fee = rate.connection_fee if rate.fee_in_grace else 0
        raw60 = fee * 60  # sixtieths of a micro-unit: rate per minute x seconds stays an integer
        bands = _one_band(version, first_band)
    else:
        if clock is not None and run is not None and t0 + billed > run.end:
            # rare: the call outlasts the band run it starts in (most calls do not)
            found = _band_split(version, destination, rate, clock, t0, billed)
            if isinstance(found, Unpriced):
                return _unpriced(trace, version, destination, found.band)
            if isinstance(found, str):
                return trace.unrated(UnratedReason.BAND_SPAN_LIMIT, found)
            split = found
        fee = rate.connection_fee
        raw60 = fee * 60
        if split:
            for _band, _start, seconds, _increments, per_minute in split:
                raw60 += per_minute * seconds
            bands = tuple(dict.fromkeys(parts[0] for parts in split))
        else:  # one charge: every billed second in the start band
            raw60 += rate.rate_per_minute * billed
            bands = _one_band(version, first_band)  # the band, never the row's '*'

    final60, adjustment = raw60, ""
    if billed > 0 and final60 < rate.minimum_charge * 60:
        final60, adjustment = rate.minimum_charge * 60, "minimum_charge"
    if rate.max_cost is not None and final60 > rate.max_cost * 60:
        final60, adjustment = rate.max_cost * 60, "max_cost"
    cost = round_to_minor(final60, version.minor_denominator, version.rounding)
    return trace.rated(cost, bands, t0, split, fee, raw60, final60, adjustment)


class Unpriced(NamedTuple):
    """A band the call is billed in has no price (the row says ``unpriced``)."""

    band: str


def _unpriced(
    trace: _Trace, version: TariffVersion, destination: Destination, band: str
) -> Unrated:
    what = f"prefix {destination.prefix}" if destination.prefix else f"{destination.name!r}"
    return trace.unrated(
        UnratedReason.UNPRICED_TIME,
        f"tariff {version.version!r} sets no price for {what} in band {band!r}",
    )


def _price_shaped(
    trace: _Trace,
    version: TariffVersion,
    rate: Rate,
    shape: Shape,
    t0: int,
    band: str,
    duration: int,
) -> RatingResult:
    """A row with a first block, tiers, free seconds, a surcharge or rounding steps.

    The whole call is priced at the band it starts in: tiers and blocks are measured from the
    call's first second, so they do not split across bands (docs/rating.md, Tariff shapes).
    """
    bands = version.band_tuples.get(band) or (band,)
    if duration <= rate.grace_seconds:
        fee = rate.connection_fee if rate.fee_in_grace else 0
        cost = round_to_minor(fee * 60, version.minor_denominator, version.rounding)
        return trace.rated(cost, bands, t0, (), fee, fee * 60, fee * 60, "")
    start = t0 + shape.free_seconds if not shape.free_after_rounding else t0
    billed, _, charges60, surcharge60, _ = price_shape(
        shape, rate.rate_per_minute, duration, band, start, lines_too=False
    )
    trace.billed_seconds = billed
    fee = rate.connection_fee if billed or rate.fee_in_grace else 0
    raw60 = fee * 60 + charges60 + surcharge60
    final60, adjustment, subtotal60 = raw60, "", -1
    step = shape.by_subtotal
    if step is not None:
        final60 = subtotal60 = round_subtotal(raw60, step)
    if billed > 0 and final60 < rate.minimum_charge * 60:
        final60, adjustment = rate.minimum_charge * 60, "minimum_charge"
    if rate.max_cost is not None and final60 > rate.max_cost * 60:
        final60, adjustment = rate.max_cost * 60, "max_cost"
    cost = round_to_minor(final60, version.minor_denominator, version.rounding)
    # no lines or notes kept: ``RatedCall.charges`` recomputes them (one object per call)
    return trace.rated(
        cost, bands, start, (), fee, raw60, final60, adjustment, surcharge60 // 60, subtotal60
    )


def _price_unanswered(
    trace: _Trace, plan: DialPlan, version: TariffVersion, destination: Destination
) -> RatingResult:
    """An unanswered call costs its connection fee if the rate says so, else nothing.

    The rate is the one of the band the call started in, never a stand-in row; a band that
    cannot be told (no site zone) or has no price leaves the call free (unanswered calls are
    never queued).
    """
    clock = _clock(version, plan)
    if clock is None and version.calendar is not SINGLE:
        return trace.zero(ZeroReason.UNANSWERED)
    band = SINGLE_BAND if clock is None else clock.run_at(epoch_seconds(trace.icdr.start)).band
    rate = destination.rate_for(band)
    if not rate.charge_unanswered or rate.unpriced:
        return trace.zero(ZeroReason.UNANSWERED)
    trace.rate = rate
    raw60 = rate.connection_fee * SECONDS_PER_MINUTE
    cost = round_to_minor(raw60, version.minor_denominator, version.rounding)
    trace.duration_basis = "not answered; the rate charges unanswered calls its connection fee"
    return trace.rated(cost, _one_band(version, band), 0, (), rate.connection_fee, raw60, raw60, "")


def _one_band(version: TariffVersion, band: str) -> tuple[str, ...]:
    return version.band_tuples.get(band) or (band,)


def billed_seconds(duration: int, rate: Rate) -> int:
    """Billed seconds for a talk time (formats.md §7.4)."""
    if duration <= 0 or duration <= rate.grace_seconds:
        return 0
    first, step = rate.initial_increment, rate.subsequent_increment
    if duration <= first:
        return first
    return first + -(-(duration - first) // step) * step


def _band_split(
    version: TariffVersion,
    destination: Destination,
    rate: Rate,
    clock: BandClock,
    t0: int,
    billed: int,
) -> tuple[ChargeParts, ...] | str | Unpriced:
    """The charges per band of a call that leaves its start run (a str: too many spans).

    Empty when every billed second is still one charge in the start band at ``rate``: the
    runs merge into one, or the tariff prices the whole call at its start band. ``Unpriced``
    when a band that would be charged has no price.
    """
    spans = clock.spans(t0, t0 + billed)
    if len(spans) > version.max_band_spans:
        return (
            f"the call crosses {len(spans)} band runs; tariff {version.version!r} allows "
            f"{version.max_band_spans}"
        )
    if len(spans) == 1 or version.band_rule is BandRule.START_BAND:
        return ()
    if version.band_rule is BandRule.PRORATE:
        for s in spans:
            if destination.rate_for(s.band).unpriced:
                return Unpriced(s.band)
        return tuple(
            (s.band, s.start, s.end - s.start, 0, destination.rate_for(s.band).rate_per_minute)
            for s in spans
        )
    charges = _per_increment(destination, rate, t0, billed, spans)
    for parts in charges:
        if destination.rate_for(parts[0]).unpriced:
            return Unpriced(parts[0])
    return charges


def _per_increment(
    destination: Destination, rate: Rate, t0: int, billed: int, spans: list[Span]
) -> tuple[ChargeParts, ...]:
    """Each increment at the band in force at its start; counted per span, not looped."""
    first, step = rate.initial_increment, rate.subsequent_increment
    later = (billed - first) // step  # increments after the first
    charges: list[ChargeParts] = []
    for span in spans:
        lo, hi = span.start - t0, span.end - t0  # offsets from the first billed second
        seconds = first if lo <= 0 < hi else 0
        count = 1 if seconds else 0
        # later increment j starts at first + j*step: count j in [0, later) with lo <= start < hi
        j_lo = max(0, -(-(lo - first) // step))
        j_hi = min(later, -(-(hi - first) // step))
        if j_hi > j_lo:
            seconds += (j_hi - j_lo) * step
            count += j_hi - j_lo
        if count:
            band_rate = destination.rate_for(span.band).rate_per_minute
            charges.append((span.band, max(span.start, t0), seconds, count, band_rate))
    return tuple(charges)


def _clock(version: TariffVersion, plan: DialPlan) -> BandClock | None:
    """The version's calendar in the site's zone (None: single band, or no zone)."""
    if version.calendar is SINGLE or plan.timezone is None:
        return None
    clocks = version.clocks
    clock = clocks.get(plan.timezone)
    if clock is None:
        clock = clocks[plan.timezone] = BandClock(version.calendar, ZoneInfo(plan.timezone))
    return clock


# --- explanation as JSON ------------------------------------------------------------------------


def _plus(e164: str) -> str:
    return "+" + e164 if e164 else ""


def _explanation_dict(e: Explanation) -> dict[str, Any]:
    out: dict[str, Any] = {"engine_version": ENGINE_VERSION, "direction": str(e.direction)}
    if e.number is not None:
        out["number"] = {
            "field": e.number_field, "recorded": e.number.number, "steps": list(e.number.steps),
            "e164": _plus(e.number.e164), "class": e.number.number_class.value,
        }  # fmt: skip
    if e.carrier is not None:
        out["carrier"] = {
            "name": e.carrier.carrier, "rule": e.carrier.rule, "route_defaulted": e.carrier.defaulted,
            "on_net": e.carrier.on_net,
        }  # fmt: skip
    if e.version is not None:
        v = e.version
        out["tariff"] = {
            "carrier": v.carrier, "version": v.version, "valid_from": format_time(v.valid_from),
            "valid_to": None if v.valid_to is None else format_time(v.valid_to),
            "currency": v.currency, "decimals": v.decimals, "rounding": v.rounding.value,
            "band_rule": v.band_rule.value,
        }  # fmt: skip
    if e.destination is not None:
        d = e.destination
        out["destination"] = {
            "name": d.name, "prefix": d.prefix or None,
            "class": d.number_class.value if d.number_class else None,
            "match": "longest prefix" if d.prefix else f"trunk row ({d.trunk})" if d.trunk
            else "class row", "priority": d.priority,
        }  # fmt: skip
    if e.rate is not None and e.version is not None:
        out.update(_pricing_dict(e, e.rate, e.version))
    if e.zero_reason:
        out["zero_reason"] = e.zero_reason
    if e.detail:
        out["detail"] = e.detail
    return out


def _pricing_dict(e: Explanation, rate: Rate, version: TariffVersion) -> dict[str, Any]:
    places = version.decimals
    charges = [_charge_dict(c) for c in e.charges]
    terms = " + ".join(_term(c) for c in e.charges) or "0"
    if e.surcharge:
        terms += f" + surcharge {format_micro(e.surcharge)}"
    subtotal = (
        f" -> subtotal {format_fraction(e.subtotal60, _RAW_SCALE)}" if e.subtotal60 >= 0 else ""
    )
    arithmetic = (
        f"{format_micro(e.fee)} + {terms} = {format_fraction(e.raw60, _RAW_SCALE)}{subtotal}"
        + (f" -> {e.adjustment} {format_fraction(e.final60, _RAW_SCALE)}" if e.adjustment else "")
        + f" -> {version.rounding.value} to {places} decimals = {format_minor(e.cost, places)}"
    )
    shape = rate.shape
    shaped: dict[str, Any] = {}
    if shape is not None:
        shaped = {
            "shape": {
                "first_block_seconds": shape.first_block_seconds or None,
                "first_block_price": format_micro(shape.first_block_price)
                if shape.first_block_seconds else None,
                "tiers": tiers_text(shape.tiers) or None,
                "free_seconds": shape.free_seconds or None,
                "free_seconds_rounding": ("after" if shape.free_after_rounding else "before")
                if shape.free_seconds else None,
                "surcharge": format_micro(shape.surcharge) if shape.surcharge else None,
                "surcharge_after": shape.surcharge_after if shape.surcharge else None,
                "step_rounding": steps_text(shape.steps) or None,
            },
            "steps": list(e.notes),
            "surcharge": format_micro(e.surcharge) if e.surcharge else None,
            "subtotal": format_fraction(e.subtotal60, _RAW_SCALE) if e.subtotal60 >= 0 else None,
        }  # fmt: skip
    return {
        "duration": {
            "seconds": e.duration_seconds, "basis": e.duration_basis,
            "grace_seconds": rate.grace_seconds, "increments": rate.increments,
            "billed_seconds": e.billed_seconds, "csv_line": rate.line,
        },
        "charges": charges,
        "connection_fee": format_micro(e.fee),
        "raw": format_fraction(e.raw60, _RAW_SCALE),
        "minimum_charge": format_micro(rate.minimum_charge),
        "max_cost": None if rate.max_cost is None else format_micro(rate.max_cost),
        "adjustment": e.adjustment or None,
        "before_rounding": format_fraction(e.final60, _RAW_SCALE),
        "cost": format_minor(e.cost, places),
        "arithmetic": arithmetic,
        **shaped,
    }  # fmt: skip


def _charge_dict(c: Charge) -> dict[str, Any]:
    out = {
        "band": c.band, "from": format_time(from_epoch(c.start)), "seconds": c.seconds,
        "increments": c.increments, "rate_per_minute": format_micro(c.rate_per_minute),
        "amount": format_fraction(c.amount60, _RAW_SCALE),
    }  # fmt: skip
    if c.label:
        out["line"] = c.label
    return out


def _term(c: Charge) -> str:
    """One charge in the arithmetic line: ``0.0800 x 61/60``, or a first block's price."""
    if c.label == "first block":
        return f"first block {format_fraction(c.amount60, _RAW_SCALE)}"
    term = f"{format_micro(c.rate_per_minute)} x {c.seconds}/60"
    if c.amount >= 0 and c.amount != c.rate_per_minute * c.seconds:
        term += f" (rounded {format_fraction(c.amount60, _RAW_SCALE)})"
    return term
