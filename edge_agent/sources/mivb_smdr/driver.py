"""Mitel MiVoice Business / 3300 ICP SMDR: fixed-width text lines over TCP -> ICDRs.

Contract (formats.md §2):

- ``MivbSmdrParser.feed(unit)`` returns exactly one result per line: an ``ICDR`` or a
  ``Quarantined`` unit with a reason. It never raises, whatever the bytes.
- Columns come from the layout's column map (``mivb_smdr_layout``), generated from the site's
  SMDR option flags, or detected per line from its anchors when the layout is ``auto``. With a
  fixed layout every line's anchors are checked; a line that fails is quarantined as
  ``layout_mismatch``, never guessed at.
- Local wall-clock times are dated with the year rule of §2.7.4 (latest year that is not after
  the receive time plus a tolerance; an ``@YYYYMMDD@`` prefix wins) and converted to UTC with the
  site's IANA zone. ``utc_offset_minutes`` is the offset at the start of the call.
- Timing follows §2.3: incoming ``answer = start + TTA`` and ``end = answer + duration``;
  outgoing ``end = start + duration``, with the per-site unsupervised allowance when the trunk
  gave no answer supervision.
- ``record_id`` is made of agent, source, journal sequence and the raw line, so re-reading the
  journal gives the same ids. From the journal position ``ctx.line_ids_from`` on (fixed by the
  journal when an agent that knows it first opened it) it is scheme 2, one BLAKE2b
  (``shared.icdr.make_line_record_id``); before it, and for every line when the context gives
  no position, scheme 1 as since ``mivb-smdr/1``: ``make_record_id(agent, source, seq,
  SHA-256 of the line)``. A line delivered before the upgrade and read again after it keeps its
  id, so the data centre never stores the call twice. ``raw`` is the line decoded as Latin-1
  exactly as received.
- A parser caches what repeats between lines (each printed hour with its date, clock reading
  and UTC start; durations; parties; the columns kept in ``extra``). The caches are bounded
  and change speed only: a line reads the same to a fresh parser.

Quarantine reasons: ``not_a_record`` (banners, clock-fault messages, blank lines),
``layout_mismatch``, ``bad_date``, ``bad_time``, ``bad_duration``, ``too_long``,
``invalid_record`` (the result failed ICDR validation) and ``parser_error`` (a bug, kept visible).
"""

from __future__ import annotations

import calendar
import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from edge_agent.sources.base import (
    ParseResult,
    ParserKit,
    RawUnit,
    Source,
    SourceContext,
)
from edge_agent.sources.mivb_smdr.layout import (
    AUTO,
    CompiledLayout,
    LayoutFlags,
    Override,
    check_overrides,
    compile_layout,
    looks_like_record,
    match_layout,
)
from edge_agent.sources.options import OptionReader, ReconnectOptions, read_reconnect_options
from edge_agent.sources.rejection import Rejection, quarantine
from edge_agent.sources.streams.lines import split_lines
from shared.errors import ConfigError, ICDRValidationError
from shared.icdr import (
    ICDR,
    LINE_ID_PERSON,
    MAX_CALL_SECONDS,
    MAX_NAME,
    MAX_RAW,
    MAX_TEXT,
    RECORD_ID_LENGTH,
    Completion,
    Direction,
    checked_builder,
    line_id_head,
    source_checked_builder,
)

_sha256: Final = hashlib.sha256
_blake2b: Final = hashlib.blake2b
_NEVER: Final = 1 << 62  # line_ids_from when the context gives none: scheme 1 for every line
KIND: Final = "mivb-smdr"
PARSER_VERSION: Final = "mivb-smdr/1"
DEFAULT_PORT = 1752
DEFAULT_LAYOUT = AUTO
DEFAULT_CLOCK = "auto"
CLOCKS = ("auto", "12h", "24h")
DEFAULT_UNSUPERVISED_ALLOWANCE_SECONDS = 0
MAX_UNSUPERVISED_ALLOWANCE_SECONDS = 600
DEFAULT_YEAR_TOLERANCE_DAYS = 1.0
DEFAULT_IDLE_RECONNECT_SECONDS = 900.0
OVERFLOW_SECONDS = 100 * 3600  # `99:99:99` means "100 hours or more" (§2.3)
OVERFLOW_FIELD = "99"
MAX_LINE_CHARS: Final = MAX_RAW
YEARS_BACK = 8  # enough to reach the previous 29 February, even across 2100
BLANK_CODE = "blank"
_DAYS_IN_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # leap year: 29 Feb is valid
# Control bytes are removed from the parser's copy only; the journal and `raw` keep them.
_CONTROL: Final = dict.fromkeys([*range(0x20), 0x7F, *range(0x80, 0xA0)])

# Normalised outcome per (direction, completion letter), formats.md §2.4. A letter missing here
# (blank, account-code markers C/R, anything unknown) is judged from the evidence instead: TTA
# for incoming calls, the unsupervised allowance for outgoing ones, the duration otherwise.
DEFAULT_COMPLETION: Mapping[tuple[Direction, str], Completion] = {
    (Direction.OUT, "A"): Completion.ANSWERED,  # answer supervision
    (Direction.OUT, "T"): Completion.ANSWERED,  # toll-reversal supervision
    (Direction.TANDEM, "A"): Completion.ANSWERED,
    (Direction.TANDEM, "T"): Completion.ANSWERED,
    (Direction.TANDEM, "B"): Completion.BUSY,
    (Direction.TANDEM, "E"): Completion.INVALID,
    (Direction.IN, "B"): Completion.BUSY,
    (Direction.IN, "E"): Completion.INVALID,
    (Direction.IN, "T"): Completion.ANSWERED,  # trunk answer from any station (TAFAS)
    (Direction.IN, "O"): Completion.BUSY,  # Extended Reporting Level 1
    (Direction.IN, "D"): Completion.BUSY,  # do not disturb
    (Direction.IN, "S"): Completion.FAILED,  # out of service
    (Direction.IN, "U"): Completion.NO_ANSWER,  # attendant unavailable
    (Direction.INTERNAL, "I"): Completion.ANSWERED,
    (Direction.INTERNAL, "B"): Completion.BUSY,
}
# Enum member access is slow on Python 3.11; the hot path uses these module constants.
# Final: the compiled build reads them as C statics, not from the module's dict.
_IN: Final = Direction.IN
_OUT: Final = Direction.OUT
_INTERNAL: Final = Direction.INTERNAL
_TANDEM: Final = Direction.TANDEM
_UNKNOWN: Final = Direction.UNKNOWN
_ANSWERED: Final = Completion.ANSWERED
_NO_ANSWER: Final = Completion.NO_ANSWER
_UNKNOWN_COMPLETION: Final = Completion.UNKNOWN
# The ICDR fields _parse passes, positionally and in this order: matching some thirty keyword
# arguments cost about as much as building the record (the builders are generated for this order).
_RECORD_FIELDS = (
    "record_id",
    "agent_id",
    "source_id",
    "source_kind",
    "start",
    "answer",
    "end",
    "utc_offset_minutes",
    "ring_seconds",
    "talk_seconds",
    "direction",
    "calling",
    "called",
    "dialled_digits",
    "extension",
    "trunk",
    "third_party",
    "account_code",
    "ani",
    "dnis",
    "answered",
    "completion",
    "completion_source",
    "transferred",
    "conference",
    "call_id",
    "parent_call_id",
    "flags",
    "raw",
    "parser_version",
    "extra",
)
_BUILD_CHECKED: Final = checked_builder(_RECORD_FIELDS)
_BUILD_SOURCE_CHECKED: Final = source_checked_builder(_RECORD_FIELDS)
TRANSFER_LETTERS: Final = frozenset("TX")
CONFERENCE_LETTERS: Final = frozenset("C")


@dataclass(frozen=True, slots=True)
class ParserSettings:
    """The site settings the parser depends on (the parser is a pure function of these)."""

    layout: LayoutFlags | None = None  # None: detect per line
    columns: tuple[Override, ...] = ()  # hand-written text-field columns (fixed layouts only)
    clock: str = DEFAULT_CLOCK
    completion_map: Mapping[tuple[Direction, str], Completion] = field(
        default_factory=lambda: dict(DEFAULT_COMPLETION)
    )
    unsupervised_allowance_seconds: int = DEFAULT_UNSUPERVISED_ALLOWANCE_SECONDS
    year_tolerance: timedelta = timedelta(days=DEFAULT_YEAR_TOLERANCE_DAYS)


# --- party forms and direction ----------------------------------------------------------------


@functools.lru_cache(maxsize=8192)
def party_kind(party: str) -> str:
    """``station``, ``trunk`` (Tnnn, Xnnn), ``attendant`` (ATTm, ATmm), ``blank`` or ``unknown``."""
    if not party:
        return "blank"
    head = party[0]
    if head in "TX" and party[1:].isdecimal() and len(party) > 1:
        return "trunk"
    if party.startswith("AT") and party[2:].lstrip("T").isdecimal() and len(party) > 2:
        return "attendant"
    if all(ch in "0123456789*#" for ch in party):
        return "station"
    return "unknown"


_ON_SITE = ("station", "attendant")
DIRECTIONS: Mapping[tuple[str, str], Direction] = {
    **{("trunk", k): Direction.IN for k in (*_ON_SITE, "blank", "unknown")},
    **{(k, "trunk"): Direction.OUT for k in _ON_SITE},
    ("trunk", "trunk"): Direction.TANDEM,
    **{(a, b): Direction.INTERNAL for a in _ON_SITE for b in _ON_SITE},
}


# --- the parser -----------------------------------------------------------------------------------

# The parser's caches are cleared when full, so a feed of unusual values costs time, never memory.
_HOUR_CACHE_LIMIT = 20_000  # printed hours (mm/dd hh and AM/PM): a year of 24-hour lines has 8,784
_DURATION_CACHE_LIMIT = 50_000
_PARTY_CACHE_LIMIT = 20_000
_EXTRAS_CACHE_LIMIT = 20_000
# Columns kept in ``extra`` under these names, in this order, when not blank.
_EXTRA_NAMES = (
    "system_id",
    "attendant",
    "speed_forward",
    "transfer_flag",
    "route_optimisation",
    "meter_pulses",
    "precedence",
)
_KINDS = ("station", "trunk", "attendant", "blank", "unknown")


@dataclass(slots=True)
class _Hour:
    """A printed ``mm/dd hh`` with its AM/PM column, read once: date, 24-hour hour, UTC start.

    ``utc_start`` is the UTC instant of hh:00:00 in ``year``, worked out on first use and again
    only when a line of the same printed hour falls in another year; None when the site's UTC
    offset changes within the hour, whose lines are then converted one by one.
    """

    month: int
    day: int
    hour: int  # above 23 is refused per line, with the line's minutes
    flags: tuple[str, ...]  # ("clock_ambiguous",) or ()
    leap_day: bool
    year: int = 0
    utc_start: datetime | None = None
    offset_minutes: int = 0


_Route = tuple[Direction, Mapping[str, Completion]]


class MivbSmdrParser:
    """One SMDR line in, one ICDR or one quarantined unit out."""

    kind = KIND
    parser_version = PARSER_VERSION

    def __init__(self, ctx: SourceContext, settings: ParserSettings | None = None) -> None:
        self._ctx = ctx
        # The record id's fixed head (agent, source), encoded once, and for scheme 2 already
        # hashed: each line copies that state (see _record_id).
        self._id_prefix = line_id_head(ctx.agent_id, ctx.source_id)
        self._id_head = _blake2b(
            self._id_prefix, digest_size=RECORD_ID_LENGTH // 2, person=LINE_ID_PERSON
        )
        self._line_ids_from = _NEVER if ctx.line_ids_from is None else ctx.line_ids_from
        # Records are built with source_checked when what it skips is guaranteed: times and enums
        # by this parser's types, text by the layout's column widths (per line) and the context.
        fits = len(ctx.agent_id) <= MAX_NAME and len(ctx.source_id) <= MAX_TEXT
        self._build_full = _BUILD_CHECKED
        self._build_fast = _BUILD_SOURCE_CHECKED if fits else _BUILD_CHECKED
        self._settings = settings or ParserSettings()
        self._zone: ZoneInfo = ctx.timezone
        self._layout = (
            None
            if self._settings.layout is None
            else compile_layout(self._settings.layout, self._settings.columns)
        )
        # What the hot path reads of a fixed layout and the context, as the parser's own
        # attributes: the compiled build reads those natively, a layout's through Python.
        layout = self._layout
        self._agent_id = ctx.agent_id
        self._source_id = ctx.source_id
        self._head_match = None if layout is None else layout.head.match
        self._cut_text = None if layout is None else layout.text
        self._length = 0 if layout is None else layout.length
        self._fixed_build = self._build_fast
        if layout is not None and layout.widest_text > MAX_TEXT:
            self._fixed_build = self._build_full
        self._clock = self._settings.clock
        self._routes = _routes(self._settings.completion_map)
        self._allowance = self._settings.unsupervised_allowance_seconds
        self._tolerance = self._settings.year_tolerance
        self._reference_key: datetime | None = None
        self._reference_local = datetime.min
        self._reference_utc = datetime.min.replace(tzinfo=UTC)
        self._reference_tuple = (0, 0, 0, 0, 0)
        self._reference_year = datetime.min.year
        self._hours: dict[str, _Hour | Rejection] = {}
        self._durations: dict[str, tuple[int, tuple[str, ...]] | Rejection] = {}
        self._parties: dict[str, tuple[str, str]] = {}
        self._extras: dict[tuple[str, ...], dict[str, str]] = {}

    def feed(self, unit: RawUnit) -> list[ParseResult]:
        try:
            result = self._parse(unit)
        except ICDRValidationError as exc:
            result = Rejection("invalid_record", f"the line gives an invalid call: {exc}")
        except Exception as exc:  # a parser bug quarantines the line, visibly
            result = Rejection("parser_error", f"unexpected {type(exc).__name__}: {exc}")
        if isinstance(result, Rejection):
            return [quarantine(unit, result)]
        return [result]

    def flush(self, now: datetime) -> list[ParseResult]:
        return []  # one line is one call: no open state

    # The hot path: one pass, locals only, no exceptions on the normal route. What repeats
    # between lines (a printed hour and its UTC offset, a duration, a party, the columns kept
    # in `extra`) is read once and cached: see _Hour, _read_duration, _party, _read_extras.
    def _parse(self, unit: RawUnit) -> ICDR | Rejection:
        data = unit.data
        if len(data) > MAX_LINE_CHARS:
            return Rejection("too_long", f"{len(data)} bytes is not an SMDR line")
        raw = data.decode("latin-1")
        line = raw if raw.isprintable() else raw.translate(_CONTROL)
        if unit.received_at is not self._reference_key:
            self._receive(unit.received_at)
        flags: tuple[str, ...] = ()
        if line[:1] == "@":
            line, flags = self._date_prefix(line)
        layout = self._layout
        if layout is None:
            found = match_layout(line)
            if found is None:
                return _unmatched(line, None)
            layout, head = found
            width = layout.length
            if len(line) < width:
                line = line.ljust(width)
            text = layout.text(line)
            build = self._build_fast if layout.widest_text <= MAX_TEXT else self._build_full
        else:
            width = self._length
            if len(line) < width:
                line = line.ljust(width)
            matched = self._head_match(line)  # type: ignore[misc]  # set with the layout
            if matched is None:
                return _unmatched(line, layout)
            head = matched.groups()
            text = self._cut_text(line)  # type: ignore[misc]
            build = self._fixed_build
        (
            _long_call,
            date_hour,
            minute_text,
            second_text,
            am_pm,
            duration_text,
            calling_text,
            attendant,
            tta_text,
        ) = head
        (
            digits,
            meter_pulses,
            completion_letter,
            speed_forward,
            called_text,
            transfer,
            third_party,
            account_code,
            route_opt,
            system_id,
            precedence,
            ani,
            dnis,
            oli_call_id,
            oli_associated,
        ) = text

        # when: the printed hour (date and clock) is read once, then the minutes and seconds
        hour = self._hours.get(date_hour + am_pm) or self._read_hour(date_hour, am_pm)
        if isinstance(hour, Rejection):
            return hour
        minute = int(minute_text)
        second = int(second_text) if second_text else 0
        if hour.hour > 23 or minute > 59 or second > 59:
            return Rejection("bad_time", f"{date_hour[-2:]}:{minute_text} is not a time of day")
        flags += hour.flags

        # how long
        length = self._durations.get(duration_text) or self._read_duration(duration_text)
        if isinstance(length, Rejection):
            return length
        duration, duration_flags = length
        flags += duration_flags
        tta: int | None = None
        never_answered = False
        if tta_text[0] == "*":
            never_answered = True
        elif tta_text[0] != " ":
            tta = int(tta_text)

        # who
        calling, calling_kind = self._parties.get(calling_text) or self._party(calling_text)
        called, called_kind = self._parties.get(called_text) or self._party(called_text)
        direction, letters = self._routes[calling_kind, called_kind]

        # outcome and timing, in seconds from the start
        code = completion_letter.strip()
        completion = letters.get(code)
        unsupervised = False
        if completion is None:
            if direction is _IN or direction is _TANDEM:
                answered = tta is not None or (not never_answered and duration > 0)
            elif direction is _OUT:
                unsupervised = True
                flags += ("unsupervised",)
                answered = duration > self._allowance
            else:
                answered = duration > 0
            if direction is _UNKNOWN:
                completion = _UNKNOWN_COMPLETION
            else:
                completion = _ANSWERED if answered else _NO_ANSWER
        else:
            answered = completion is _ANSWERED
        answer_after: int | None = None
        if answered:
            if tta is not None and (direction is _IN or direction is _TANDEM):
                ring, answer_after, talk, end_after = tta, tta, duration, tta + duration
            elif unsupervised:
                ring = answer_after = self._allowance
                talk, end_after = duration - self._allowance, duration
            else:
                ring, answer_after, talk, end_after = 0, 0, duration, duration
        elif tta is not None:
            ring, talk, end_after = tta, 0, tta + duration
        else:
            ring, talk, end_after = duration, 0, duration

        # which year (§2.7.4), then UTC from the printed hour's cached start
        month, day, hour_of_day = hour.month, hour.day, hour.hour
        year = self._reference_year
        if (month, day, hour_of_day, minute, second) > self._reference_tuple or (
            hour.leap_day and not calendar.isleap(year)
        ):
            latest = _latest_before(self._reference_local, month, day, hour_of_day, minute, second)
            if latest is None:
                return Rejection("bad_date", f"no year puts {date_hour[:5]} before receipt")
            year = latest.year
        if hour.year != year:
            self._locate(hour, year)
        hour_start = hour.utc_start
        if hour_start is not None:
            start = hour_start + _DELTAS[minute * 60 + second]  # within the hour: prebuilt
            offset_minutes = hour.offset_minutes
        else:  # the site's offset changes within this hour
            start, offset_minutes, ambiguous = self._exact_start(
                datetime(year, month, day, hour_of_day, minute, second)
            )
            if ambiguous:
                flags += ("local_time_ambiguous",)
        end = start + _seconds(end_after)
        if end > self._reference_utc:
            flags += ("ends_after_receipt",)

        columns = (
            system_id,
            attendant,
            speed_forward,
            transfer,
            route_opt,
            meter_pulses,
            precedence,
        )
        known = self._extras.get(columns)
        if known is None:
            known = self._read_extras(columns)
        extra = known.copy() if self._layout is not None else {"layout": layout.name, **known}
        if len(line) > width:
            rest = line[width:].rstrip()
            if rest.strip():
                extra["unparsed_suffix"] = rest

        trunk = ""
        extension = ""
        if direction is _IN:
            trunk, extension = calling, called
        elif direction is _OUT:
            extension, trunk = calling, called
        elif direction is _INTERNAL:
            extension = calling
        elif direction is _TANDEM:
            trunk = calling
            extra["outgoing_trunk"] = called
        transfer = transfer.strip()
        return build(  # positionally, in _RECORD_FIELDS order
            self._record_id(unit.seq, data),  # record_id
            self._agent_id,  # agent_id
            self._source_id,  # source_id
            KIND,  # source_kind
            start,  # start
            None if answer_after is None else start + _seconds(answer_after),  # answer
            end,  # end
            offset_minutes,  # utc_offset_minutes
            ring,  # ring_seconds
            talk,  # talk_seconds
            direction,  # direction
            calling,  # calling
            called,  # called
            digits.strip(),  # dialled_digits
            extension,  # extension
            trunk,  # trunk
            third_party.strip(),  # third_party
            account_code.strip(),  # account_code
            ani.strip(),  # ani
            dnis.strip(),  # dnis
            answered,  # answered
            completion,  # completion
            code,  # completion_source
            transfer in TRANSFER_LETTERS,  # transferred
            transfer in CONFERENCE_LETTERS,  # conference
            oli_call_id.strip(),  # call_id
            oli_associated.strip(),  # parent_call_id
            flags,  # flags
            raw,  # raw
            PARSER_VERSION,  # parser_version
            extra,  # extra
        )

    def _record_id(self, seq: int, data: bytes) -> str:
        """Scheme 2 from ``line_ids_from`` on: ``make_line_record_id(agent, source, seq, data)``
        from the head's hashed state. Before it, scheme 1: ``make_record_id(agent, source,
        str(seq), sha256(data).hexdigest())``, the same bytes hashed without joining and
        encoding the fixed head again for every line."""
        if seq >= self._line_ids_from:
            hashed = self._id_head.copy()
            hashed.update(b"%d\x1f%s" % (seq, data))
            return hashed.hexdigest()
        inner = _sha256(data).hexdigest().encode("ascii")
        return _sha256(b"%s%d\x1f%s" % (self._id_prefix, seq, inner)).hexdigest()[:RECORD_ID_LENGTH]

    def _receive(self, received_at: datetime) -> None:
        """Receive time as naive site wall-clock plus the tolerance (once per delivery)."""
        aware = received_at if received_at.tzinfo else received_at.replace(tzinfo=UTC)
        local = aware.astimezone(self._zone).replace(tzinfo=None)
        self._set_reference(local + self._tolerance, (aware + self._tolerance).astimezone(UTC))
        self._reference_key = received_at

    def _set_reference(self, local: datetime, utc: datetime) -> None:
        self._reference_local = local
        self._reference_utc = utc
        self._reference_tuple = (local.month, local.day, local.hour, local.minute, local.second)
        self._reference_year = local.year

    def _date_prefix(self, line: str) -> tuple[str, tuple[str, ...]]:
        """Strip an ``@YYYYMMDD@`` prefix; its date (end of that day) becomes the reference."""
        text = line[1:9]
        if line[9:10] != "@" or not text.isdecimal():
            return line, ()
        try:
            day = datetime(int(text[:4]), int(text[4:6]), int(text[6:8]))
        except ValueError:
            return line[10:], ("bad_date_prefix",)
        reference = day + timedelta(days=1) + self._tolerance
        self._set_reference(reference, reference.replace(tzinfo=self._zone).astimezone(UTC))
        self._reference_key = None  # the next line may carry no prefix
        return line[10:], ()

    def _read_hour(self, date_hour: str, am_pm: str) -> _Hour | Rejection:
        """Read a printed ``mm/dd hh`` and AM/PM column on the site's clock (then cached)."""
        month_text, day_text, hour_text = date_hour[:2], date_hour[3:5], date_hour[-2:]
        month = int(month_text)
        day = int(day_text)
        hour = int(hour_text)
        flags: tuple[str, ...] = ()
        result: _Hour | Rejection
        if not 1 <= month <= 12 or not 1 <= day <= _DAYS_IN_MONTH[month]:
            result = Rejection("bad_date", f"{month_text}/{day_text} is not a date (mm/dd)")
        elif am_pm != " " and not 1 <= hour <= 12:
            result = Rejection("bad_time", f"hour {hour_text} with {am_pm!r} is not a 12-hour time")
        else:
            if am_pm == " ":
                if hour == 12:
                    if self._clock == "12h":
                        hour = 0
                    elif self._clock == "auto":
                        flags = ("clock_ambiguous",)
            elif am_pm in "Pp":
                hour = hour if hour == 12 else hour + 12
            elif hour == 12:
                hour = 0
            result = _Hour(month, day, hour, flags, leap_day=month == 2 and day == 29)
        if len(self._hours) >= _HOUR_CACHE_LIMIT:
            self._hours.clear()
        self._hours[date_hour + am_pm] = result
        return result

    def _locate(self, hour: _Hour, year: int) -> None:
        """Work out the UTC start of a printed hour in ``year``, if the hour has one offset."""
        local = datetime(year, hour.month, hour.day, hour.hour)
        constant = _hour_offset(local, self._zone)
        hour.year = year
        if constant is None:
            hour.utc_start = None
        else:
            hour.utc_start = local.replace(tzinfo=UTC) - constant[0]
            hour.offset_minutes = constant[1]

    def _exact_start(self, local: datetime) -> tuple[datetime, int, bool]:
        """UTC start, offset and ambiguity of a time in an hour where the offset changes.

        The earlier reading wins where the wall-clock time happens twice (the autumn change).
        """
        first = local.replace(tzinfo=self._zone, fold=0).utcoffset()
        second = local.replace(tzinfo=self._zone, fold=1).utcoffset()
        delta = first or timedelta(0)
        start = local.replace(tzinfo=UTC) - delta
        return start, int(delta.total_seconds() // 60), first != second

    def _read_duration(self, text: str) -> tuple[int, tuple[str, ...]] | Rejection:
        """Seconds and flags of a printed ``[hh]hh:mm:ss`` duration (then cached)."""
        hours_text, minutes_text, seconds_text = text.split(":")
        result: tuple[int, tuple[str, ...]] | Rejection
        if minutes_text == OVERFLOW_FIELD and seconds_text == OVERFLOW_FIELD:
            result = (OVERFLOW_SECONDS, ("duration_overflow",))
        else:
            minutes = int(minutes_text)
            seconds = int(seconds_text)
            duration = int(hours_text) * 3600 + minutes * 60 + seconds
            if minutes > 59 or seconds > 59:
                result = Rejection("bad_duration", "the duration's minutes or seconds exceed 59")
            elif duration > MAX_CALL_SECONDS:
                result = Rejection("bad_duration", f"{hours_text} hours is not a call")
            else:
                result = (duration, ())
        if len(self._durations) >= _DURATION_CACHE_LIMIT:
            self._durations.clear()
        self._durations[text] = result
        return result

    def _read_extras(self, columns: tuple[str, ...]) -> dict[str, str]:
        """The ``extra`` entries of the columns without an ICDR field (then cached)."""
        known: dict[str, str] = {}
        for name, text in zip(_EXTRA_NAMES, columns, strict=True):
            value = text.strip()
            if value:
                known[name] = value
        if len(self._extras) >= _EXTRAS_CACHE_LIMIT:
            self._extras.clear()
        self._extras[columns] = known
        return known

    def _party(self, text: str) -> tuple[str, str]:
        """A party column's text and form (then cached: a site has few parties, so the cached
        strings are also shared between records)."""
        party = text.strip()
        result = (party, party_kind(party))
        if len(self._parties) >= _PARTY_CACHE_LIMIT:
            self._parties.clear()
        self._parties[text] = result
        return result


def _routes(
    completion_map: Mapping[tuple[Direction, str], Completion],
) -> dict[tuple[str, str], _Route]:
    """Per pair of party forms: the direction, and that direction's completion letters."""
    letters: dict[Direction, dict[str, Completion]] = {}
    for direction in Direction:
        table = letters[direction] = {}
        for _, code in completion_map:
            outcome = completion_map.get((direction, code))
            if outcome is not None:
                table[code] = outcome
    routes: dict[tuple[str, str], _Route] = {}
    for calling in _KINDS:
        for called in _KINDS:
            direction = DIRECTIONS.get((calling, called), Direction.UNKNOWN)
            routes[calling, called] = (direction, letters[direction])
    return routes


_DELTAS: Final = tuple(
    timedelta(seconds=count) for count in range(3600)
)  # the first hour, prebuilt
_SECONDS: Final[dict[int, timedelta]] = {}
_SECONDS_LIMIT: Final = 100_000


def _seconds(count: int) -> timedelta:
    """``timedelta(seconds=count)`` without building one per call (construction is slow):
    prebuilt for the first hour, memoised beyond it, where call lengths repeat too."""
    if 0 <= count < len(_DELTAS):
        return _DELTAS[count]
    delta = _SECONDS.get(count)
    if delta is None:
        delta = timedelta(seconds=count)
        if len(_SECONDS) < _SECONDS_LIMIT:
            _SECONDS[count] = delta
    return delta


def _hour_offset(local: datetime, zone: ZoneInfo) -> tuple[timedelta, int] | None:
    """The offset if it is the same for every wall-clock second of the hour, else None."""
    top = local.replace(minute=0, second=0, tzinfo=zone)
    bottom = local.replace(minute=59, second=59, tzinfo=zone)
    offsets = {
        top.utcoffset(),
        top.replace(fold=1).utcoffset(),
        bottom.utcoffset(),
        bottom.replace(fold=1).utcoffset(),
    }
    if len(offsets) != 1:
        return None
    delta = offsets.pop() or timedelta(0)
    return delta, int(delta.total_seconds() // 60)


def _latest_before(
    reference: datetime, month: int, day: int, hour: int, minute: int, second: int
) -> datetime | None:
    """Year rule (§2.7.4): the latest year whose date and time are not after the reference."""
    for year in range(reference.year, reference.year - YEARS_BACK - 1, -1):
        try:
            candidate = datetime(year, month, day, hour, minute, second)
        except ValueError:
            continue
        if candidate <= reference:
            return candidate
    return None


def _unmatched(line: str, layout: CompiledLayout | None) -> Rejection:
    if not line.strip():
        return Rejection("not_a_record", "blank line")
    if not looks_like_record(line):
        return Rejection("not_a_record", "no SMDR date and start time: a PBX message or banner")
    if layout is None:
        return Rejection(
            "layout_mismatch",
            "the line has an SMDR date and time but fits no known layout",
        )
    return Rejection(
        "layout_mismatch",
        f"the line does not fit layout {layout.name}; check the PBX's SMDR options "
        "and the source's `layout` (`edge-agent parse mivb-smdr --layout auto FILE` proposes one)",
    )


# --- options and factories ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DriverSettings:
    """Every option of a ``mivb-smdr`` source, validated."""

    parser: ParserSettings
    host: str
    port: int
    reconnect: ReconnectOptions


def read_settings(ctx: SourceContext, options: Mapping[str, Any]) -> DriverSettings:
    """Validate a source's options; a bad one raises ``ConfigError`` naming the key and the fix."""
    options = dict(options)
    raw_map = options.pop("completion_map", None)
    raw_columns = options.pop("columns", None)
    reader = OptionReader(ctx, options)
    layout_text_value = reader.string("layout", DEFAULT_LAYOUT).strip()
    layout: LayoutFlags | None = None
    if layout_text_value.lower() != AUTO:
        try:
            layout = LayoutFlags.parse(layout_text_value)
        except ValueError as exc:
            raise ConfigError(
                reader.key("layout"),
                str(exc),
                "use auto, standard, or the PBX's SMDR options joined by '+' from "
                "A, L2, X, ANI, OLI, M (e.g. A+L2+X)",
            ) from exc
    columns = _columns(raw_columns, layout, key=reader.key("columns"))
    clock = reader.string("clock", DEFAULT_CLOCK).strip().lower()
    if clock not in CLOCKS:
        raise ConfigError(reader.key("clock"), f"{clock!r} is not a clock", "use auto, 12h or 24h")
    allowance = reader.integer(
        "unsupervised_allowance_seconds",
        DEFAULT_UNSUPERVISED_ALLOWANCE_SECONDS,
        minimum=0,
        maximum=MAX_UNSUPERVISED_ALLOWANCE_SECONDS,
    )
    tolerance = reader.number(
        "year_tolerance_days", DEFAULT_YEAR_TOLERANCE_DAYS, minimum=0, maximum=60
    )
    settings = DriverSettings(
        parser=ParserSettings(
            layout=layout,
            columns=columns,
            clock=clock,
            completion_map=completion_table(raw_map, key=reader.key("completion_map")),
            unsupervised_allowance_seconds=allowance,
            year_tolerance=timedelta(days=tolerance),
        ),
        host=reader.string("host", "").strip(),
        port=reader.integer("port", DEFAULT_PORT, minimum=1, maximum=65535),
        reconnect=read_reconnect_options(reader, idle_reconnect=DEFAULT_IDLE_RECONNECT_SECONDS),
    )
    reader.finish()
    return settings


def _columns(raw: Any, layout: LayoutFlags | None, *, key: str) -> tuple[Override, ...]:
    """A site's hand-written columns: ``{ani = "103-112", dnis = "114-123"}`` or the same as text."""
    if raw is None:
        return ()
    fix = 'give text fields as FIRST-LAST columns, e.g. columns = { ani = "103-112" }'
    if layout is None:
        raise ConfigError(key, "needs a fixed layout, not auto", "set layout as well, e.g. A+ANI")
    if isinstance(raw, str):
        items = [item.partition("=") for item in raw.split(",") if item.strip()]
        if any(not sep for _, sep, _ in items):
            raise ConfigError(key, f"{raw!r} is not FIELD=FIRST-LAST, ...", fix)
        raw = {name.strip(): value.strip() for name, _, value in items}
    if not isinstance(raw, Mapping):
        raise ConfigError(key, f"expected a table, got {raw!r}", fix)
    try:
        return check_overrides(layout, raw)
    except ValueError as exc:
        raise ConfigError(key, str(exc), fix) from exc


def completion_table(raw: Any, *, key: str) -> dict[tuple[Direction, str], Completion]:
    """Defaults overlaid with the site's table.

    The table maps a completion letter, optionally qualified by direction, to a normalised
    outcome: ``{"T" = "failed", "out:blank" = "answered"}``; on the command line the same as text,
    ``T=failed,out:blank=answered``. ``blank`` names the empty column.
    """
    fix = (
        "map letters to one of "
        + ", ".join(c.value for c in Completion)
        + ', e.g. {"T" = "failed", "out:blank" = "answered"} (a direction prefix is optional)'
    )
    table = dict(DEFAULT_COMPLETION)
    if raw is None:
        return table
    if isinstance(raw, str):
        pairs: list[tuple[Any, Any]] = []
        for item in raw.split(","):
            if item.strip():
                name, sep, value = item.partition("=")
                if not sep:
                    raise ConfigError(key, f"{item.strip()!r} has no '='", fix)
                pairs.append((name.strip(), value.strip()))
    elif isinstance(raw, Mapping):
        pairs = list(raw.items())
    else:
        raise ConfigError(key, f"expected a table, got {raw!r}", fix)
    for name, value in pairs:
        if not isinstance(name, str) or not isinstance(value, str):
            raise ConfigError(key, f"{name!r} = {value!r} is not text = text", fix)
        prefix, _, code = name.rpartition(":")
        code = code.strip()
        if code.lower() == BLANK_CODE:
            letter = ""
        elif len(code) == 1:
            letter = code
        else:
            raise ConfigError(key, f"{name!r} is not one completion letter or 'blank'", fix)
        try:
            outcome = Completion(value.strip().lower())
        except ValueError as exc:
            raise ConfigError(key, f"{value!r} is not a completion value", fix) from exc
        if prefix:
            try:
                directions = [Direction(prefix.strip().lower())]
            except ValueError as exc:
                raise ConfigError(key, f"{prefix!r} is not a direction", fix) from exc
        else:
            directions = list(Direction)
        for direction in directions:
            table[(direction, letter)] = outcome
    return table


def make_parser(ctx: SourceContext, options: Mapping[str, Any]) -> ParserKit:
    settings = read_settings(ctx, options)
    return ParserKit(parser=MivbSmdrParser(ctx, settings.parser), file_framer=split_lines)


def make_source(ctx: SourceContext, options: Mapping[str, Any]) -> Source:
    settings = read_settings(ctx, options)
    if not settings.host:
        raise ConfigError(
            f"sources.{ctx.source_id}.host",
            "is missing",
            'set host = "ADDRESS" to the PBX controller that serves SMDR (port 1752)',
        )
    acquirer = settings.reconnect.client(
        host=settings.host, port=settings.port, backoff=settings.reconnect.backoff()
    )
    layout = "auto" if settings.parser.layout is None else settings.parser.layout.name
    return Source(
        ctx=ctx,
        kind=KIND,
        parser=MivbSmdrParser(ctx, settings.parser),
        acquirer=acquirer,
        file_framer=split_lines,
        description=f"MiVoice Business SMDR from {settings.host}:{settings.port} (layout {layout})",
        settings={
            "host": settings.host,
            "port": settings.port,
            "layout": layout,
            "clock": settings.parser.clock,
            "unsupervised_allowance_seconds": settings.parser.unsupervised_allowance_seconds,
        },
    )
