"""Tariffs: per carrier, versioned, with a fast longest-prefix index and one CSV format.

A ``TariffPlan`` is one carrier's prices for one tenant: a sequence of ``TariffVersion`` values,
each in force from ``valid_from`` (inclusive) to ``valid_to`` (exclusive; the next version's
start, or open). A version is self-contained (currency, rounding, band calendar, destinations),
so a call rated with it can be reproduced from the version alone.

On disk a plan is a TOML file (carrier, currency, rounding, calendar, versions) and one CSV
rate deck per version (docs/rating.md lists every column)::

    prefix,class,destination,band,rate_per_minute,connection_fee,initial_increment,subsequent_increment
    33,international,France,*,0.0900,0,60,1
    336,mobile,France mobile,*,0.1500,0,60,1

Guarantees:

- Loading is all or nothing: every problem in every file is collected, each with its file,
  line and column, and reported in one ``TariffImportError``; no partial plan is ever built.
- Rejected at load, never at rating time: a prefix repeated at the same priority and band,
  a destination without a rate for one of the calendar's bands, overlapping versions, a row in
  another currency, more than six decimals, negative amounts, zero increments.
- Matching: the longest prefix wins; among rows for the same prefix the highest ``priority``
  wins (equal priority is a load error, so the result never depends on row order). A number
  no prefix matches falls back to a row for its class (prefix left empty), if there is one.
- Amounts are integers in micro-units (see ``money``); no float anywhere.
"""

from __future__ import annotations

import csv
import io
import json
import tomllib
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from datacenter.rating.bands import (
    ALL_BANDS,
    SINGLE,
    SINGLE_BAND,
    BandClock,
    Calendar,
    calendar_from_dict,
    calendar_to_dict,
)
from datacenter.rating.money import (
    CURRENCY_DECIMALS,
    MICRO_PLACES,
    RoundingMode,
    format_micro,
    minor_denominator,
    parse_amount,
)
from datacenter.rating.numbering import NumberClass
from datacenter.rating.shapes import (
    Shape,
    StepRounding,
    Tier,
    build_shape,
    parse_steps,
    parse_tiers,
    steps_text,
    tiers_text,
)
from shared.errors import ConfigError, ValidationError

DEFAULT_INCREMENT = 60
DEFAULT_MAX_BAND_SPANS = 24  # a call crossing more band runs than this is queued
MAX_PROBLEMS_SHOWN = 20
MAX_PREFIX_DIGITS = 15
MEMO_SIZE = 1_000_000  # numbers remembered per prefix index; cleared wholesale when full
OUT, IN = "out", "in"

COLUMNS = (
    "prefix", "class", "destination", "direction", "band", "rate_per_minute", "connection_fee",
    "initial_increment", "subsequent_increment", "minimum_charge", "max_cost", "grace_seconds",
    "fee_in_grace", "charge_unanswered", "priority", "currency",
)  # fmt: skip
# Columns of the tariff shapes (datacenter.rating.shapes) and inbound trunk rows: optional on
# import; export writes them only when a row of the version uses one, so decks that use none
# export exactly as before (same bytes, same content hash in the store).
SHAPE_COLUMNS = (
    "first_block_seconds", "first_block_price", "tiers", "free_seconds", "free_seconds_rounding",
    "surcharge", "surcharge_after", "step_rounding", "trunk",
)  # fmt: skip
ALL_COLUMNS = COLUMNS + SHAPE_COLUMNS
_ROW_SHAPE_COLUMNS = SHAPE_COLUMNS[:-1]  # all but trunk, which belongs to the destination
UNPRICED = "unpriced"  # a rate_per_minute cell: no price in this band; such calls are unrated
FREE_BEFORE, FREE_AFTER = "before", "after"
REQUIRED_COLUMNS = ("prefix", "destination", "rate_per_minute")


class BandRule(StrEnum):
    """How a call that crosses a band boundary is priced (formats.md §7.7)."""

    PER_INCREMENT = "per_increment"  # each increment at the band in force at its start
    START_BAND = "start_band"  # the whole call at the band of its first second
    PRORATE = "prorate"  # each billed second at its own band


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a tariff file, located to the cell."""

    file: str
    line: int  # 1-based; the header is line 1; 0 when the problem is not on a line
    column: str  # column name or TOML key
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: column {self.column}: {self.message}"


class TariffImportError(ValidationError):
    """A tariff plan or rate deck has problems; nothing of it was loaded."""

    exit_code = 3

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        shown = "; ".join(str(p) for p in self.problems[:MAX_PROBLEMS_SHOWN])
        more = len(self.problems) - MAX_PROBLEMS_SHOWN
        suffix = f"; and {more} more" if more > 0 else ""
        first = self.problems[0] if self.problems else Problem("?", 0, "?", "no problems")
        super().__init__(
            f"{first.file}:{first.line}:{first.column}",
            f"{len(self.problems)} problem(s), nothing imported: {shown}{suffix}",
        )


@dataclass(frozen=True, slots=True)
class Rate:
    """One destination's price in one band. Amounts in micro-units."""

    band: str
    rate_per_minute: int
    connection_fee: int = 0
    initial_increment: int = DEFAULT_INCREMENT
    subsequent_increment: int = DEFAULT_INCREMENT
    minimum_charge: int = 0
    max_cost: int | None = None
    grace_seconds: int = 0
    fee_in_grace: bool = False
    charge_unanswered: bool = False
    line: int = 0  # where it came from in the CSV, for the explanation
    shape: Shape | None = None  # first block, tiers, free seconds, surcharge, rounding steps
    unpriced: bool = False  # the carrier sets no price in this band: calls in it are unrated

    @property
    def increments(self) -> str:
        return f"{self.initial_increment}/{self.subsequent_increment}"


@dataclass(frozen=True, slots=True)
class Destination:
    """A priced destination: a prefix (or a class) with its rate per band."""

    direction: str  # "out" or "in" (inbound rated only where a row says so)
    prefix: str  # E.164 digits; "" for a class destination
    number_class: NumberClass | None  # authoritative class; None = keep the dial plan's
    name: str
    priority: int
    rates: Mapping[str, Rate]  # band -> rate; ALL_BANDS covers bands not listed
    trunk: str = ""  # inbound trunk row: charges every inbound call on this trunk

    def rate_for(self, band: str) -> Rate:
        rate = self.rates.get(band)
        return self.rates[ALL_BANDS] if rate is None else rate


@dataclass(frozen=True, slots=True)
class PrefixIndex:
    """Longest-prefix match: one dict probe per distinct prefix length, longest first.

    Service codes (100, 118 118, 411) are matched only against service-class prefix rows, so
    ``+44100`` never falls into ``441`` (UK geographic); otherwise they take the service class row.
    """

    by_prefix: Mapping[str, Destination]
    lengths: tuple[int, ...]  # distinct prefix lengths, descending
    by_class: Mapping[NumberClass, Destination]
    service_prefixes: Mapping[str, Destination]
    by_trunk: Mapping[str, Destination] = field(default_factory=dict)
    # longest-prefix hits by number (None: no prefix matches), one memo per table; plain string
    # keys, so a memo of many numbers adds no objects for the garbage collector to track
    _memo: dict[str, Destination | None] = field(
        init=False, default_factory=dict, compare=False, repr=False
    )
    _service_memo: dict[str, Destination | None] = field(
        init=False, default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def build(cls, destinations: Iterable[Destination]) -> PrefixIndex:
        by_prefix: dict[str, Destination] = {}
        by_class: dict[NumberClass, Destination] = {}
        by_trunk: dict[str, Destination] = {}
        for dest in destinations:
            if dest.trunk:
                by_trunk[dest.trunk] = dest
                continue
            table: dict[Any, Destination] = by_prefix if dest.prefix else by_class
            key: Any = dest.prefix or dest.number_class
            held = table.get(key)
            if held is None or dest.priority > held.priority:
                table[key] = dest
        lengths = tuple(sorted({len(p) for p in by_prefix}, reverse=True))
        service = {p: d for p, d in by_prefix.items() if d.number_class is NumberClass.SERVICE}
        return cls(by_prefix, lengths, by_class, service, by_trunk)

    @property
    def empty(self) -> bool:
        return not (self.by_prefix or self.by_class or self.by_trunk)

    def match(self, e164: str, number_class: NumberClass) -> Destination | None:
        service = number_class is NumberClass.SERVICE
        memo = self._service_memo if service else self._memo
        if e164 in memo:
            found = memo[e164]
        else:
            if len(memo) >= MEMO_SIZE:
                memo.clear()
            found = memo[e164] = self._longest(e164, service)
        return self.by_class.get(number_class) if found is None else found

    def _longest(self, e164: str, service: bool) -> Destination | None:
        get = (self.service_prefixes if service else self.by_prefix).get
        for length in self.lengths:
            if length <= len(e164):
                found = get(e164[:length])
                if found is not None:
                    return found
        return None


@dataclass(frozen=True)
class TariffVersion:
    """One self-contained version of a carrier's tariff."""

    carrier: str
    version: str
    valid_from: datetime  # inclusive, UTC
    valid_to: datetime | None  # exclusive, UTC; None = open
    currency: str
    decimals: int
    rounding: RoundingMode
    destinations: tuple[Destination, ...]
    calendar: Calendar = SINGLE
    band_rule: BandRule = BandRule.PER_INCREMENT
    max_band_spans: int = DEFAULT_MAX_BAND_SPANS
    minor_denominator: int = field(init=False, compare=False, repr=False)
    outbound: PrefixIndex = field(init=False, compare=False, repr=False)
    inbound: PrefixIndex = field(init=False, compare=False, repr=False)
    # ("peak",) for each band a call can be in: a rated call's bands, shared rather than built
    band_tuples: Mapping[str, tuple[str]] = field(init=False, compare=False, repr=False)
    # band clocks per site zone, filled by the engine (a memo: never changes a result)
    clocks: dict[str, BandClock] = field(
        init=False, default_factory=dict, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "minor_denominator", minor_denominator(self.decimals))
        outbound = [d for d in self.destinations if d.direction == OUT]
        inbound = [d for d in self.destinations if d.direction == IN]
        object.__setattr__(self, "outbound", PrefixIndex.build(outbound))
        object.__setattr__(self, "inbound", PrefixIndex.build(inbound))
        bands = {*self.calendar.bands, SINGLE_BAND, ALL_BANDS}
        object.__setattr__(self, "band_tuples", {band: (band,) for band in bands})

    def covers(self, instant: datetime) -> bool:
        return self.valid_from <= instant and (self.valid_to is None or instant < self.valid_to)


@dataclass(frozen=True, slots=True)
class TariffPlan:
    """A carrier's versions, sorted by start, non-overlapping."""

    carrier: str
    versions: tuple[TariffVersion, ...]
    _starts: tuple[datetime, ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_starts", tuple(v.valid_from for v in self.versions))

    def version_at(self, instant: datetime) -> TariffVersion | None:
        """The version in force at ``instant`` (the call's start, never the processing time)."""
        position = bisect_right(self._starts, instant) - 1
        if position < 0:
            return None
        version = self.versions[position]
        valid_to = version.valid_to
        return version if valid_to is None or instant < valid_to else None


# --- CSV rate decks ---------------------------------------------------------------------------


@dataclass
class _Deck:
    """What one CSV rate deck produced, before it becomes part of a version."""

    destinations: list[Destination]
    problems: list[Problem]


def parse_rates_csv(
    text: str, *, file: str, currency: str, bands: frozenset[str] = frozenset({SINGLE_BAND})
) -> tuple[Destination, ...]:
    """Parse one rate deck; TariffImportError lists every problem with line and column."""
    deck = _parse_deck(text, file=file, currency=currency, bands=bands)
    if deck.problems:
        raise TariffImportError(deck.problems)
    return tuple(deck.destinations)


def _parse_deck(text: str, *, file: str, currency: str, bands: frozenset[str]) -> _Deck:
    problems: list[Problem] = []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        return _Deck([], [Problem(file, 1, "-", f"not valid CSV: {exc}")])
    if header is None:
        return _Deck([], [Problem(file, 1, "-", "the file is empty; it needs a header line")])
    header = [h.strip().lower() for h in header]
    for index, name in enumerate(header, start=1):
        if name not in ALL_COLUMNS:
            problems.append(
                Problem(
                    file,
                    1,
                    name or f"#{index}",
                    f"unknown column; allowed: {', '.join(ALL_COLUMNS)}",
                )
            )
        elif header.index(name) != index - 1:
            problems.append(Problem(file, 1, name, "column appears twice"))
    for name in REQUIRED_COLUMNS:
        if name not in header:
            problems.append(Problem(file, 1, name, "required column is missing from the header"))
    if problems:
        return _Deck([], problems)
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        for record in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            if len(record) != len(header):
                problems.append(
                    Problem(
                        file, line, "-", f"has {len(record)} cells, the header has {len(header)}"
                    )
                )
                continue
            rows.append((line, {h: cell.strip() for h, cell in zip(header, record, strict=True)}))
    except csv.Error as exc:
        problems.append(Problem(file, reader.line_num, "-", f"not valid CSV: {exc}"))
    parsed = [_parse_row(file, line, row, currency, bands, problems) for line, row in rows]
    destinations = _group(file, [p for p in parsed if p is not None], bands, problems)
    return _Deck(destinations, problems)


@dataclass(frozen=True, slots=True)
class _Row:
    line: int
    key: tuple[str, str, str, int, str]  # direction, prefix, class, priority, trunk
    name: str
    number_class: NumberClass | None
    rate: Rate


def _parse_row(
    file: str,
    line: int,
    row: Mapping[str, str],
    currency: str,
    bands: frozenset[str],
    problems: list[Problem],
) -> _Row | None:
    before = len(problems)

    def bad(column: str, message: str) -> None:
        problems.append(Problem(file, line, column, message))

    prefix = row.get("prefix", "").lstrip("+")
    if prefix and (not prefix.isdigit() or len(prefix) > MAX_PREFIX_DIGITS):
        bad("prefix", f"{prefix!r} must be 1-{MAX_PREFIX_DIGITS} E.164 digits")
    number_class: NumberClass | None = None
    if row.get("class"):
        try:
            number_class = NumberClass(row["class"])
        except ValueError:
            bad(
                "class", f"{row['class']!r} is not one of {', '.join(c.value for c in NumberClass)}"
            )
    trunk = row.get("trunk", "")
    if (
        not prefix
        and not trunk
        and number_class is None
        and "class" not in _bad_columns(problems, before)
    ):
        bad("prefix", "a row needs a prefix, a class, a trunk, or a combination")
    name = row.get("destination", "")
    if not name:
        bad("destination", "is empty; name the destination")
    direction = row.get("direction") or OUT
    if direction not in (OUT, IN):
        bad("direction", f"{direction!r} must be 'out' or 'in'")
    if trunk and (direction != IN or prefix):
        bad("trunk", "a trunk row is an inbound row (direction in) with an empty prefix")
    band = row.get("band") or ALL_BANDS
    if band != ALL_BANDS and band not in bands:
        known = ", ".join(sorted(bands))
        bad("band", f"{band!r} is not a band of this tariff's calendar ({known}, or *)")
    row_currency = row.get("currency", "")
    if row_currency and row_currency != currency:
        bad("currency", f"{row_currency!r} differs from the plan's currency {currency}")

    def amount(column: str, *, required: bool = False) -> int | None:
        text = row.get(column, "")
        if not text:
            if required:
                bad(column, "is empty")
            return None
        try:
            return parse_amount(text)
        except ValueError as exc:
            bad(column, str(exc))
            return None

    def whole(column: str, default: int, *, minimum: int) -> int:
        text = row.get(column, "")
        if not text:
            return default
        if not text.isdigit() or int(text) < minimum:
            bad(column, f"{text!r} must be a whole number >= {minimum}")
            return default
        return int(text)

    def flag(column: str) -> bool:
        text = row.get(column, "").lower()
        if text not in ("", "true", "false", "yes", "no", "1", "0"):
            bad(column, f"{text!r} must be true or false")
        return text in ("true", "yes", "1")

    unpriced = row.get("rate_per_minute", "").lower() == UNPRICED
    rate_per_minute = 0 if unpriced else amount("rate_per_minute", required=True)
    priority_text = row.get("priority", "")
    try:
        priority = int(priority_text) if priority_text else 0
    except ValueError:
        bad("priority", f"{priority_text!r} must be a whole number")
        priority = 0
    rate = Rate(
        band=band,
        rate_per_minute=rate_per_minute or 0,
        connection_fee=amount("connection_fee") or 0,
        initial_increment=whole("initial_increment", DEFAULT_INCREMENT, minimum=1),
        subsequent_increment=whole("subsequent_increment", DEFAULT_INCREMENT, minimum=1),
        minimum_charge=amount("minimum_charge") or 0,
        max_cost=amount("max_cost"),
        grace_seconds=whole("grace_seconds", 0, minimum=0),
        fee_in_grace=flag("fee_in_grace"),
        charge_unanswered=flag("charge_unanswered"),
        line=line,
        unpriced=unpriced,
    )
    rate = _with_shape(rate, row, bad, amount, whole)
    if rate.max_cost is not None and rate.minimum_charge > rate.max_cost:
        bad("minimum_charge", "is more than max_cost; a call cannot cost both")
    if len(problems) > before:
        return None
    key = (direction, prefix, number_class.value if number_class else "", priority, trunk)
    return _Row(line, key, name, number_class, rate)


def _with_shape(rate: Rate, row: Mapping[str, str], bad: Any, amount: Any, whole: Any) -> Rate:
    """The row's shape columns onto ``rate`` (``bad(column, message)`` reports a problem)."""
    if not any(row.get(column) for column in _ROW_SHAPE_COLUMNS):
        return rate  # most rows: nothing to build (keeps a large deck's load time)
    tiers: tuple[Tier, ...] = ()
    steps: tuple[StepRounding, ...] = ()
    try:
        tiers = parse_tiers(row.get("tiers", ""))
    except ValueError as exc:
        bad("tiers", str(exc))
    try:
        steps = parse_steps(row.get("step_rounding", ""))
    except ValueError as exc:
        bad("step_rounding", str(exc))
    free_when = row.get("free_seconds_rounding", "") or FREE_BEFORE
    if free_when not in (FREE_BEFORE, FREE_AFTER):
        bad("free_seconds_rounding", f"{free_when!r} must be 'before' or 'after'")
    first_block = whole("first_block_seconds", 0, minimum=0)
    first_price = amount("first_block_price")
    if (first_price is not None) != bool(first_block):
        bad("first_block_price", "give first_block_seconds and first_block_price together")
    surcharge = amount("surcharge") or 0
    surcharge_after = whole("surcharge_after", 0, minimum=0)
    if row.get("surcharge_after") and not row.get("surcharge"):
        bad("surcharge", "surcharge_after is set; give the surcharge amount")
    shape = build_shape(
        initial=rate.initial_increment,
        subsequent=rate.subsequent_increment, first_block_seconds=first_block,
        first_block_price=first_price or 0, tiers=tiers,
        free_seconds=whole("free_seconds", 0, minimum=0),
        free_after_rounding=free_when == FREE_AFTER, surcharge=surcharge,
        surcharge_after=surcharge_after, steps=steps,
    )  # fmt: skip
    if isinstance(shape, str):
        bad("tiers" if tiers else "first_block_seconds" if first_block else "step_rounding", shape)
        return rate
    if shape is not None and rate.unpriced:
        bad("rate_per_minute", "an unpriced row cannot have tiers, blocks or surcharges")
    return replace(rate, shape=shape)


def _bad_columns(problems: list[Problem], since: int) -> set[str]:
    return {p.column for p in problems[since:]}


def _group(
    file: str, rows: list[_Row], bands: frozenset[str], problems: list[Problem]
) -> list[Destination]:
    """Rows of one destination (same direction, prefix, class, priority) -> one Destination."""
    groups: dict[tuple[str, str, str, int, str], list[_Row]] = {}
    for row in rows:
        groups.setdefault(row.key, []).append(row)
    seen_class: dict[tuple[str, str, str], int] = {}
    destinations: list[Destination] = []
    for key, members in groups.items():
        direction, prefix, class_name, priority, trunk = key
        first = members[0]
        rates: dict[str, Rate] = {}
        for row in members:
            if row.name != first.name:
                problems.append(Problem(
                    file, row.line, "destination",
                    f"{row.name!r} differs from {first.name!r} on line {first.line} for the same prefix",
                ))  # fmt: skip
            held = rates.get(row.rate.band)
            if held is not None:
                what = f"prefix {prefix}" if prefix else f"class {class_name}"
                problems.append(Problem(
                    file, row.line, "band",
                    f"{what} band {row.rate.band!r} priority {priority} repeats line {held.line}",
                ))  # fmt: skip
                continue
            rates[row.rate.band] = row.rate
        missing = sorted(bands - set(rates)) if ALL_BANDS not in rates else []
        if missing:
            problems.append(Problem(
                file, first.line, "band",
                f"{first.name!r} has no rate for band(s) {', '.join(missing)}; add rows or a '*' row",
            ))  # fmt: skip
        if not prefix and not trunk:
            # Class rows have no length to break a tie: two priorities for one class is ambiguous.
            held_line = seen_class.get((direction, class_name, ""))
            if held_line is not None:
                problems.append(Problem(
                    file, first.line, "class",
                    f"class {class_name} already has a class row on line {held_line}",
                ))  # fmt: skip
            seen_class[(direction, class_name, "")] = first.line
        destinations.append(Destination(
            direction=direction, prefix=prefix, number_class=first.number_class,
            name=first.name, priority=priority, rates=rates, trunk=trunk,
        ))  # fmt: skip
    return destinations


def rates_to_csv(version: TariffVersion) -> str:
    """The version's rate deck in the import format (round-trips through ``parse_rates_csv``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    shaped = any(
        d.trunk or r.shape is not None for d in version.destinations for r in d.rates.values()
    )
    writer.writerow(ALL_COLUMNS if shaped else COLUMNS)
    for dest in sorted(version.destinations, key=_destination_order):
        for band in sorted(dest.rates):
            rate = dest.rates[band]
            extra = _shape_cells(rate.shape, dest.trunk) if shaped else []
            writer.writerow([
                dest.prefix, dest.number_class.value if dest.number_class else "", dest.name,
                dest.direction, band,
                UNPRICED if rate.unpriced else format_micro(rate.rate_per_minute),
                format_micro(rate.connection_fee), rate.initial_increment,
                rate.subsequent_increment, format_micro(rate.minimum_charge),
                "" if rate.max_cost is None else format_micro(rate.max_cost),
                rate.grace_seconds, _yes(rate.fee_in_grace), _yes(rate.charge_unanswered),
                dest.priority, version.currency, *extra,
            ])  # fmt: skip
    return out.getvalue()


def _shape_cells(shape: Shape | None, trunk: str) -> list[Any]:
    if shape is None:
        return ["", "", "", "", "", "", "", "", trunk]
    first = shape.first_block_seconds
    return [
        first or "", format_micro(shape.first_block_price) if first else "",
        tiers_text(shape.tiers), shape.free_seconds or "",
        (FREE_AFTER if shape.free_after_rounding else FREE_BEFORE) if shape.free_seconds else "",
        format_micro(shape.surcharge) if shape.surcharge else "",
        shape.surcharge_after if shape.surcharge else "", steps_text(shape.steps), trunk,
    ]  # fmt: skip


def _destination_order(dest: Destination) -> tuple[str, str, str, int, str]:
    return (dest.direction, dest.prefix, dest.number_class or "", dest.priority, dest.trunk)


def _yes(value: bool) -> str:
    return "true" if value else "false"


# --- TOML tariff plans --------------------------------------------------------------------------

_PLAN_KEYS = {
    "carrier", "currency", "decimals", "rounding", "timezone", "band_rule", "max_band_spans",
    "calendar", "version",
}  # fmt: skip
_VERSION_KEYS = {"id", "valid_from", "valid_to", "rates", "calendar"}


@dataclass(frozen=True, slots=True)
class PlanSettings:
    """The plan-level settings every version of a plan shares unless it overrides them."""

    carrier: str
    currency: str
    decimals: int
    rounding: RoundingMode
    zone: ZoneInfo
    band_rule: BandRule
    max_band_spans: int


def load_tariff(path: Path) -> TariffPlan:
    """Read a TOML tariff plan and its CSV rate decks (paths relative to the TOML file)."""
    data = _read_toml(path)

    def read_rates(name: str) -> str:
        return (path.parent / name).read_text(encoding="utf-8")

    return tariff_from_dict(data, file=str(path), read_rates=read_rates)


def tariff_from_dict(data: Mapping[str, Any], *, file: str, read_rates: Any) -> TariffPlan:
    """Build and validate a plan; ``read_rates(name) -> str`` supplies each version's CSV."""
    problems: list[Problem] = []
    settings = _plan_settings(data, file, problems)
    raw_versions = data.get("version", [])
    if not isinstance(raw_versions, list) or not raw_versions:
        problems.append(Problem(file, 0, "version", "a plan needs at least one [[version]] table"))
        raw_versions = []
    if settings is None:
        raise TariffImportError(problems)
    base_calendar = _calendar(data.get("calendar"), "calendar", file, problems)
    versions: list[TariffVersion] = []
    for index, raw in enumerate(raw_versions):
        version = _version(raw, index, settings, base_calendar, file, read_rates, problems)
        if version is not None:
            versions.append(version)
    versions = _chain(versions, file, problems)
    if problems:
        raise TariffImportError(problems)
    return TariffPlan(carrier=settings.carrier, versions=tuple(versions))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), f"cannot be read ({exc.strerror})", "check the path") from exc
    except tomllib.TOMLDecodeError as exc:
        raise TariffImportError([Problem(str(path), 0, "-", f"not valid TOML: {exc}")]) from exc


def _plan_settings(
    data: Mapping[str, Any], file: str, problems: list[Problem]
) -> PlanSettings | None:
    before = len(problems)
    for key in sorted(set(data) - _PLAN_KEYS):
        problems.append(
            Problem(file, 0, key, f"unknown key; allowed: {', '.join(sorted(_PLAN_KEYS))}")
        )
    carrier = data.get("carrier")
    if not isinstance(carrier, str) or not carrier:
        problems.append(Problem(file, 0, "carrier", 'name the carrier, e.g. carrier = "northtel"'))
    currency = data.get("currency")
    decimals = data.get("decimals")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isupper():
        problems.append(Problem(file, 0, "currency", "must be an ISO 4217 code such as GBP"))
    elif decimals is None and currency not in CURRENCY_DECIMALS:
        problems.append(
            Problem(file, 0, "decimals", f"{currency} is not in the built-in table; set decimals")
        )
    elif decimals is None:
        decimals = CURRENCY_DECIMALS[currency]
    if decimals is not None and (
        isinstance(decimals, bool)
        or not isinstance(decimals, int)
        or not 0 <= decimals <= MICRO_PLACES
    ):
        problems.append(Problem(file, 0, "decimals", f"must be 0-{MICRO_PLACES}"))
    rounding = _choice(data, "rounding", RoundingMode, RoundingMode.HALF_UP, file, problems)
    band_rule = _choice(data, "band_rule", BandRule, BandRule.PER_INCREMENT, file, problems)
    zone_name = data.get("timezone", "UTC")
    zone = ZoneInfo("UTC")
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        problems.append(Problem(file, 0, "timezone", f"{zone_name!r} is not an IANA zone"))
    spans = data.get("max_band_spans", DEFAULT_MAX_BAND_SPANS)
    if isinstance(spans, bool) or not isinstance(spans, int) or spans < 1:
        problems.append(Problem(file, 0, "max_band_spans", "must be a whole number >= 1"))
    if len(problems) > before:
        return None
    return PlanSettings(
        str(carrier), str(currency), int(decimals or 0), rounding, zone, band_rule, int(spans)
    )


def _choice(
    data: Mapping[str, Any], key: str, enum: Any, default: Any, file: str, problems: list[Problem]
) -> Any:
    value = data.get(key, default.value)
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        problems.append(Problem(file, 0, key, f"{value!r} is not one of {allowed}"))
        return default


def _calendar(value: Any, key: str, file: str, problems: list[Problem]) -> Calendar:
    if value is None:
        return SINGLE
    try:
        if not isinstance(value, Mapping):
            raise ConfigError(key, "must be a table", "see docs/rating.md, Time bands")
        return calendar_from_dict(value, key=key)
    except ConfigError as exc:
        problems.append(Problem(file, 0, exc.key, f"{exc.problem}; {exc.fix}"))
        return SINGLE


def _instant(value: Any, zone: ZoneInfo) -> datetime:
    """A TOML date (midnight in the plan's zone), datetime, or ISO string -> UTC instant."""
    if isinstance(value, str):
        value = (
            datetime.fromisoformat(value)
            if "T" in value or " " in value
            else date.fromisoformat(value)
        )
    if isinstance(value, datetime):
        aware: datetime = value if value.tzinfo is not None else value.replace(tzinfo=zone)
        return aware.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=zone).astimezone(UTC)
    raise ValueError(f"{value!r} is not a date or a date-time")


def _version(
    raw: Any,
    index: int,
    settings: PlanSettings,
    base_calendar: Calendar,
    file: str,
    read_rates: Any,
    problems: list[Problem],
) -> TariffVersion | None:
    key = f"version[{index}]"
    if not isinstance(raw, Mapping):
        problems.append(Problem(file, 0, key, "must be a table"))
        return None
    before = len(problems)
    for extra in sorted(set(raw) - _VERSION_KEYS):
        problems.append(Problem(file, 0, f"{key}.{extra}", "unknown key"))
    version_id = raw.get("id")
    if not isinstance(version_id, str) or not version_id:
        problems.append(Problem(file, 0, f"{key}.id", 'give the version an id, e.g. "2025-07"'))
    bounds: list[datetime | None] = []
    for name in ("valid_from", "valid_to"):
        if name not in raw:
            if name == "valid_from":
                problems.append(Problem(file, 0, f"{key}.valid_from", "is required"))
            bounds.append(None)
            continue
        try:
            bounds.append(_instant(raw[name], settings.zone))
        except ValueError as exc:
            problems.append(Problem(file, 0, f"{key}.{name}", str(exc)))
            bounds.append(None)
    calendar = (
        _calendar(raw["calendar"], f"{key}.calendar", file, problems)
        if "calendar" in raw
        else base_calendar
    )
    rates_name = raw.get("rates")
    if not isinstance(rates_name, str) or not rates_name:
        problems.append(Problem(file, 0, f"{key}.rates", "name the version's CSV rate deck"))
        return None
    try:
        text = read_rates(rates_name)
    except OSError as exc:
        problems.append(Problem(rates_name, 0, "-", f"cannot be read ({exc.strerror or exc})"))
        return None
    deck = _parse_deck(text, file=rates_name, currency=settings.currency, bands=calendar.bands)
    problems.extend(deck.problems)
    valid_from, valid_to = bounds
    if len(problems) > before or valid_from is None:
        return None
    if valid_to is not None and valid_to <= valid_from:
        problems.append(Problem(file, 0, f"{key}.valid_to", "must be after valid_from"))
        return None
    return TariffVersion(
        carrier=settings.carrier, version=str(version_id), valid_from=valid_from,
        valid_to=valid_to, currency=settings.currency, decimals=settings.decimals,
        rounding=settings.rounding, destinations=tuple(deck.destinations), calendar=calendar,
        band_rule=settings.band_rule, max_band_spans=settings.max_band_spans,
    )  # fmt: skip


def _chain(
    versions: list[TariffVersion], file: str, problems: list[Problem]
) -> list[TariffVersion]:
    """Sort by start; an open end runs to the next version's start; overlaps are refused."""
    ordered = sorted(versions, key=lambda v: v.valid_from)
    ids = [v.version for v in ordered]
    for version_id in sorted({i for i in ids if ids.count(i) > 1}):
        problems.append(Problem(file, 0, "version.id", f"{version_id!r} is used twice"))
    chained: list[TariffVersion] = []
    for position, current in enumerate(ordered):
        following = ordered[position + 1] if position + 1 < len(ordered) else None
        end = current.valid_to
        if following is not None:
            if end is None:
                end = following.valid_from
            elif end > following.valid_from:
                problems.append(Problem(
                    file, 0, "version.valid_to",
                    f"version {current.version!r} overlaps {following.version!r}",
                ))  # fmt: skip
            elif following.valid_from == current.valid_from:
                problems.append(
                    Problem(file, 0, "version.valid_from", "two versions start together")
                )
        chained.append(_with_end(current, end))
    return chained


def _with_end(version: TariffVersion, end: datetime | None) -> TariffVersion:
    if end == version.valid_to:
        return version
    return TariffVersion(
        carrier=version.carrier, version=version.version, valid_from=version.valid_from,
        valid_to=end, currency=version.currency, decimals=version.decimals,
        rounding=version.rounding, destinations=version.destinations, calendar=version.calendar,
        band_rule=version.band_rule, max_band_spans=version.max_band_spans,
    )  # fmt: skip


def version_settings_to_dict(version: TariffVersion) -> dict[str, Any]:
    """The version's non-rate settings as JSON (the store keeps this beside the rate rows)."""
    return {
        "carrier": version.carrier, "version": version.version,
        "valid_from": version.valid_from.isoformat(),
        "valid_to": None if version.valid_to is None else version.valid_to.isoformat(),
        "currency": version.currency, "decimals": version.decimals,
        "rounding": version.rounding.value, "band_rule": version.band_rule.value,
        "max_band_spans": version.max_band_spans,
        "calendar": None if version.calendar is SINGLE else calendar_to_dict(version.calendar),
    }  # fmt: skip


def plan_to_toml(plan: TariffPlan, *, rates_name: Any) -> str:
    """A TOML plan file for ``plan``; ``rates_name(version) -> str`` names each CSV.

    ValueError if the versions disagree on a plan-level setting (they were imported from
    different plan files): export them one plan file at a time.
    """
    first = plan.versions[0]
    for version in plan.versions[1:]:
        for name in ("currency", "decimals", "rounding", "band_rule", "max_band_spans"):
            if getattr(version, name) != getattr(first, name):
                raise ValueError(
                    f"versions {first.version!r} and {version.version!r} differ in {name}; "
                    "a plan file holds one value for it"
                )
    lines = [
        f"carrier = {json.dumps(plan.carrier)}",
        f"currency = {json.dumps(first.currency)}",
        f"decimals = {first.decimals}",
        f"rounding = {json.dumps(first.rounding.value)}",
        f"band_rule = {json.dumps(first.band_rule.value)}",
        f"max_band_spans = {first.max_band_spans}",
        'timezone = "UTC"  # valid_from / valid_to below are exact UTC instants',
    ]
    for version in plan.versions:
        lines += ["", "[[version]]", f"id = {json.dumps(version.version)}"]
        lines.append(f"valid_from = {json.dumps(version.valid_from.isoformat())}")
        if version.valid_to is not None:
            lines.append(f"valid_to = {json.dumps(version.valid_to.isoformat())}")
        lines.append(f"rates = {json.dumps(rates_name(version))}")
        if version.calendar is not SINGLE:
            lines += ["[version.calendar]", *_calendar_toml(version.calendar)]
    return "\n".join(lines) + "\n"


def _calendar_toml(calendar: Calendar) -> list[str]:
    data = calendar_to_dict(calendar)
    lines = [f"holidays = {json.dumps(data.pop('holidays'))}"]
    for day, schedule in data.items():
        cells = ", ".join(f"{json.dumps(t)} = {json.dumps(b)}" for t, b in schedule.items())
        lines.append(f"{day} = {{ {cells} }}")
    return lines
