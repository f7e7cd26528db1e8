"""The MiVoice Office 250 / 5000 / Axxess SMDR record: one 80-column text line -> ICDR.

Contract: ``read_record(text)`` returns an ``SmdrRecord`` or a ``Rejection`` (reason code plus a
sentence); it never raises. ``record_to_icdr`` dates and converts a record with the site zone
and the receive time (the record has a start time but no date, formats.md §4.3). The same text
arrives over the SMDR socket (§4) and inside OAI ``SMR`` events (§5.4); both drivers use this
module, so the two transports produce identical calls.

Layout (formats.md §4.2)::

    TYP EXT#  TRUNK DIALED DIGITS (28)             START ELAPSED  COST   ACCOUNT CODE F
    TLD 1234  92001 13125550147                  14:05 00:03:27 $00.00 4711        *

Fixed columns are tried first; a line whose START/ELAPSED are not where the template puts
them (fields aligned differently, trimmed blanks) is read by a tolerant pattern instead and
``extra["layout"]`` says which path was used.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from edge_agent.sources.base import SourceContext
from edge_agent.sources.rejection import Rejection
from edge_agent.sources.streams.wallclock import offset_minutes, to_utc
from shared.icdr import ICDR, Completion, Direction, make_record_id

UNANSWERED_EXTENSION = "*****"
TRUNCATED_MARK = ">"
DISCONNECT_MARK = "*"
HEADER_PREFIX = "TYP "
RECORD_WIDTH = 80
# A PBX clock a little ahead of the appliance must not push a just-started call back a day.
CLOCK_SKEW_TOLERANCE = timedelta(minutes=15)
ONE_DAY = timedelta(days=1)

DIRECTIONS: dict[str, Direction] = {
    "IN": Direction.IN,
    "DID": Direction.IN,
    "DSA": Direction.IN,
    "LOC": Direction.OUT,
    "TLC": Direction.OUT,
    "TLD": Direction.OUT,
    "O/I": Direction.OUT,
    "OP": Direction.OUT,
    "INT": Direction.OUT,
    "000": Direction.OUT,
    "NET": Direction.INTERNAL,
    "CNF": Direction.UNKNOWN,  # a conference has no single direction
}

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_START = re.compile(r"(\d{1,2}):(\d{2})")
_HMS = re.compile(r"(\d{2}):(\d{2}):(\d{2})")
_SECONDS = re.compile(r"S=(\d{6})")
_TOLERANT = re.compile(
    r"""^(?P<typ>\S{1,3})\s+(?P<ext>\S{1,5})\s+(?P<trunk>\S{1,5})
        (?:\s+(?P<dialed>\S.*?))?
        \s+(?P<start>\d{1,2}:\d{2})
        \s+(?P<elapsed>\d{2}:\d{2}:\d{2}|S=\d{6})
        (?:\s+(?P<cost>\$?\d+\.\d{2}))?
        (?:\s+(?P<account>\S.*?))??
        (?:\s*(?P<flag>\*))?\s*$""",
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class SmdrRecord:
    """The fields of one SMDR line, trimmed, before dating."""

    call_type: str
    extension: str  # "*****" when an incoming call was not answered
    trunk: str
    dialled: str  # without the trailing ">" overflow mark
    dialled_truncated: bool
    start: time
    elapsed_seconds: int
    seconds_option: bool  # ELAPSED was "S=XXXXXX"
    cost: str
    account_code: str
    trunk_disconnect: bool  # "*" in column 80
    layout: str  # "fixed" or "tokenised"

    @property
    def unanswered(self) -> bool:
        return self.extension == UNANSWERED_EXTENSION


def clean_text(data: bytes) -> str:
    """Latin-1 text of a unit without its line end and NUL padding; trailing spaces kept."""
    return data.decode("latin-1").strip("\x00").rstrip("\r\n").strip("\x00")


def read_record(text: str) -> SmdrRecord | Rejection:
    """Read one record line (already without CR LF)."""
    if not text.strip():
        return Rejection("blank_line", "the line is blank")
    if text.lstrip().startswith(HEADER_PREFIX):
        return Rejection("header_line", "a column header line, not a call record")
    if _CONTROL.search(text):
        return Rejection("control_characters", "the line holds control characters")
    fields = _fixed_fields(text) or _tolerant_fields(text)
    if fields is None:
        return Rejection(
            "layout_mismatch",
            "no START (HH:MM) and ELAPSED (HH:MM:SS or S=nnnnnn) where an SMDR record has them",
        )
    return _to_record(fields)


def _fixed_fields(text: str) -> dict[str, str] | None:
    line = text.ljust(RECORD_WIDTH)
    if len(line.rstrip()) > RECORD_WIDTH or not _START.fullmatch(line[45:50]):
        return None
    if not (_HMS.fullmatch(line[51:59]) or _SECONDS.fullmatch(line[51:59])):
        return None
    if any(line[i] != " " for i in (3, 9, 15, 44, 50, 59)):
        return None
    return {
        "typ": line[0:3],
        "ext": line[4:9],
        "trunk": line[10:15],
        "dialed": line[16:44],
        "start": line[45:50],
        "elapsed": line[51:59],
        "cost": line[60:66],
        "account": line[67:79],
        "flag": line[79:80],
        "layout": "fixed",
    }


def _tolerant_fields(text: str) -> dict[str, str] | None:
    match = _TOLERANT.match(text.strip())
    if match is None:
        return None
    fields = {name: value or "" for name, value in match.groupdict().items()}
    fields["layout"] = "tokenised"
    return fields


def _to_record(fields: dict[str, str]) -> SmdrRecord | Rejection:
    start_match = _START.fullmatch(fields["start"].strip())
    if start_match is None:
        return Rejection("bad_time", f"START {fields['start']!r} is not HH:MM")
    hour, minute = int(start_match[1]), int(start_match[2])
    if hour > 23 or minute > 59:
        return Rejection("bad_time", f"START {fields['start']!r} is not a time of day")
    elapsed = _elapsed_seconds(fields["elapsed"].strip())
    if elapsed is None:
        return Rejection("bad_elapsed", f"ELAPSED {fields['elapsed']!r} is not a duration")
    dialled = fields["dialed"].strip()
    truncated = dialled.endswith(TRUNCATED_MARK)
    return SmdrRecord(
        call_type=fields["typ"].strip(),
        extension=fields["ext"].strip(),
        trunk=fields["trunk"].strip(),
        dialled=dialled.rstrip(TRUNCATED_MARK).rstrip() if truncated else dialled,
        dialled_truncated=truncated,
        start=time(hour, minute),
        elapsed_seconds=elapsed,
        seconds_option=fields["elapsed"].strip().startswith("S="),
        cost=fields["cost"].strip(),
        account_code=fields["account"].strip(),
        trunk_disconnect=fields["flag"].strip() == DISCONNECT_MARK,
        layout=fields["layout"],
    )


def _elapsed_seconds(text: str) -> int | None:
    if seconds := _SECONDS.fullmatch(text):
        return int(seconds[1])
    hms = _HMS.fullmatch(text)
    if hms is None or int(hms[2]) > 59 or int(hms[3]) > 59:
        return None
    return int(hms[1]) * 3600 + int(hms[2]) * 60 + int(hms[3])


def start_time(record: SmdrRecord, received_local: datetime) -> datetime:
    """The naive local start: the receive date, or the day before when START is later.

    The PBX writes the record when the call ends, so a START later in the day than the receive
    time belongs to yesterday (formats.md §4.3).
    """
    candidate = datetime.combine(received_local.date(), record.start)
    if candidate - received_local.replace(tzinfo=None) > CLOCK_SKEW_TOLERANCE:
        candidate -= ONE_DAY
    return candidate


@dataclass(frozen=True, slots=True)
class RecordOrigin:
    """Where a record came from: enough to give it a stable id and provenance."""

    ctx: SourceContext
    kind: str
    parser_version: str
    seq: int
    received_at: datetime  # UTC
    raw: str
    extra: dict[str, str]


def record_to_icdr(record: SmdrRecord, origin: RecordOrigin) -> ICDR:
    """Date, convert and classify one record; the id is journal seq + SHA-256 of the line."""
    zone = origin.ctx.timezone
    start = to_utc(start_time(record, origin.received_at.astimezone(zone)), zone)
    end = start + timedelta(seconds=record.elapsed_seconds)
    direction = DIRECTIONS.get(record.call_type, Direction.UNKNOWN)
    unanswered = record.unanswered
    extension = "" if unanswered else record.extension
    line_hash = hashlib.sha256(origin.raw.encode("latin-1", "replace")).hexdigest()
    calling, called = _parties(direction, extension, record)
    return ICDR(
        record_id=make_record_id(
            origin.ctx.agent_id, origin.ctx.source_id, str(origin.seq), line_hash
        ),
        agent_id=origin.ctx.agent_id,
        source_id=origin.ctx.source_id,
        source_kind=origin.kind,
        start=start,
        end=end,
        utc_offset_minutes=offset_minutes(start, zone),
        ring_seconds=record.elapsed_seconds if unanswered else 0,
        talk_seconds=0 if unanswered else record.elapsed_seconds,
        direction=direction,
        calling=calling,
        called=called,
        dialled_digits=record.dialled,
        extension=extension,
        trunk=record.trunk,
        third_party=record.dialled if record.call_type == "CNF" else "",
        account_code=record.account_code,
        dnis=record.dialled if record.call_type == "DID" else "",
        answered=not unanswered,
        completion=Completion.NO_ANSWER if unanswered else Completion.ANSWERED,
        completion_source=UNANSWERED_EXTENSION if unanswered else "",
        conference=record.call_type == "CNF",
        flags=_flags(record),
        raw=origin.raw,
        parser_version=origin.parser_version,
        extra={
            "call_type": record.call_type,
            "pbx_cost": record.cost,
            "elapsed_format": "seconds" if record.seconds_option else "hms",
            "trunk_disconnect": "yes" if record.trunk_disconnect else "no",
            "layout": record.layout,
            "journal_seq": str(origin.seq),
            **origin.extra,
        },
    )


def _parties(direction: Direction, extension: str, record: SmdrRecord) -> tuple[str, str]:
    """(calling, called): the record has no caller id, so an incoming call's caller is blank."""
    if direction is Direction.IN:
        return "", extension
    return extension, record.dialled


def _flags(record: SmdrRecord) -> tuple[str, ...]:
    flags: list[str] = []
    if record.dialled_truncated:
        flags.append("dialled_digits_truncated")
    if record.elapsed_seconds >= ONE_DAY.total_seconds():
        flags.append("date_uncertain")  # a call of a day or more cannot be dated from START
    if record.call_type not in DIRECTIONS:
        flags.append("unknown_call_type")
    if not record.unanswered and not record.trunk_disconnect:
        flags.append("unsupervised")
    return tuple(flags)
