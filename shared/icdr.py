"""The intermediate call detail record (ICDR): the one call format that leaves the appliance.

Every source driver, whatever the PBX, produces ``ICDR`` values; the data centre ingests nothing
else. The record is immutable, versioned (``icdr_version``) and serialised as one JSON object per
line (JSON Lines). ``ICDR.from_dict(rec.to_dict()) == rec`` for every valid record, and
``from_dict`` rejects a bad record with an ``ICDRValidationError`` that names the field.

Times are timezone-aware and stored in UTC; ``utc_offset_minutes`` keeps the source's local
offset at the start of the call so reports can show the site's wall clock. The field reference
is docs/icdr.md (a test checks that every field is documented there).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from shared.errors import ICDRValidationError

ICDR_VERSION = 1
_E = TypeVar("_E", bound=StrEnum)
RECORD_ID_LENGTH = 32
MAX_CALL_SECONDS = 400 * 3600  # a call longer than this is a clock or parser fault, not a call
MAX_TEXT = 256  # party fields, codes
MAX_RAW = 64 * 1024


class Direction(StrEnum):
    IN = "in"
    OUT = "out"
    INTERNAL = "internal"
    TANDEM = "tandem"
    UNKNOWN = "unknown"


class Completion(StrEnum):
    """Normalised call outcome; the source's own code travels in ``completion_source``."""

    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    INVALID = "invalid"
    FAILED = "failed"
    ABANDONED = "abandoned"
    UNKNOWN = "unknown"


def make_record_id(*key_parts: str) -> str:
    """A stable id from the source's own key: re-reading the same source row gives the same id.

    The parts are joined with a separator that cannot occur in them (ASCII unit separator), so
    ("ab", "c") and ("a", "bc") never collide.
    """
    if not key_parts:
        raise ValueError("make_record_id needs at least one key part")
    joined = "\x1f".join(key_parts).encode("utf-8", "surrogateescape")
    return hashlib.sha256(joined).hexdigest()[:RECORD_ID_LENGTH]


@dataclass(frozen=True, slots=True)
class ICDR:
    """One call (or one segment of a transferred call), as the data centre receives it."""

    # identity
    record_id: str
    agent_id: str
    source_id: str
    source_kind: str
    # timing, UTC
    start: datetime
    end: datetime
    answer: datetime | None = None
    utc_offset_minutes: int = 0
    ring_seconds: int = 0
    talk_seconds: int = 0
    hold_seconds: int = 0
    # parties
    direction: Direction = Direction.UNKNOWN
    calling: str = ""
    called: str = ""
    dialled_digits: str = ""
    extension: str = ""
    trunk: str = ""
    route: str = ""
    third_party: str = ""
    account_code: str = ""
    ani: str = ""
    dnis: str = ""
    # outcome
    answered: bool = False
    completion: Completion = Completion.UNKNOWN
    completion_source: str = ""
    transferred: bool = False
    conference: bool = False
    call_id: str = ""
    parent_call_id: str = ""
    # markers a driver sets for unusual records, e.g. "duration_overflow", "unsupervised"
    flags: tuple[str, ...] = ()
    # provenance
    raw: str = ""
    parser_version: str = ""
    icdr_version: int = ICDR_VERSION
    # driver-specific extras that do not fit the common fields (kept, never interpreted)
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _validate(self)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form: datetimes as ISO 8601 UTC strings, enums as their values."""
        out = {name: getattr(self, name) for name in _FIELD_ORDER}
        for name in _TIME_FIELDS:
            value = out[name]
            if value is not None:
                out[name] = format_time(value)
        out["direction"] = self.direction.value
        out["completion"] = self.completion.value
        out["flags"] = list(self.flags)
        out["extra"] = dict(self.extra)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ICDR:
        """Build and validate an ICDR; the error names the first bad field."""
        if not isinstance(data, Mapping):
            raise ICDRValidationError("<record>", "expected a JSON object")
        version = data.get("icdr_version", ICDR_VERSION)
        if version != ICDR_VERSION:
            raise ICDRValidationError(
                "icdr_version",
                f"version {version!r} is not supported (this build reads {ICDR_VERSION})",
            )
        unknown = set(data) - _FIELD_NAMES
        if unknown:
            raise ICDRValidationError(sorted(unknown)[0], "unknown field")
        kwargs: dict[str, Any] = {}
        for name, kind in _FIELD_KINDS.items():
            if name not in data:
                if name in _REQUIRED:
                    raise ICDRValidationError(name, "missing")
                continue
            kwargs[name] = _coerce(name, kind, data[name])
        return cls(**kwargs)

    @classmethod
    def from_json(cls, line: str | bytes) -> ICDR:
        try:
            data = json.loads(line)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ICDRValidationError("<record>", f"not valid JSON: {exc}") from exc
        return cls.from_dict(data)


def format_time(value: datetime) -> str:
    """ISO 8601 in UTC with a 'Z'; microseconds only when present, so LcsCDR's milliseconds survive."""
    text = value.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


def parse_time(name: str, value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ICDRValidationError(name, f"not an ISO 8601 time: {value!r}") from exc
    else:
        raise ICDRValidationError(name, f"expected an ISO 8601 string, got {type(value).__name__}")
    if parsed.tzinfo is None:
        raise ICDRValidationError(name, "time has no UTC offset; ICDR times must be UTC ('Z')")
    return parsed.astimezone(UTC)


def dumps_lines(records: Iterable[ICDR]) -> str:
    """JSON Lines: one record per line, each line ending in LF."""
    return "".join(rec.to_json() + "\n" for rec in records)


def loads_lines(text: str) -> Iterator[ICDR]:
    """Parse JSON Lines; the error says which line failed."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield ICDR.from_json(line)
        except ICDRValidationError as exc:
            raise ICDRValidationError(exc.field, f"line {number}: {exc.problem}") from exc


# --- validation -------------------------------------------------------------------------------

_FIELD_KINDS: dict[str, str] = {
    "record_id": "str", "agent_id": "str", "source_id": "str", "source_kind": "str",
    "start": "time", "end": "time", "answer": "time?", "utc_offset_minutes": "int",
    "ring_seconds": "int", "talk_seconds": "int", "hold_seconds": "int",
    "direction": "direction", "calling": "str", "called": "str", "dialled_digits": "str",
    "extension": "str", "trunk": "str", "route": "str", "third_party": "str",
    "account_code": "str", "ani": "str", "dnis": "str", "answered": "bool",
    "completion": "completion", "completion_source": "str", "transferred": "bool",
    "conference": "bool", "call_id": "str", "parent_call_id": "str", "flags": "strs",
    "raw": "str", "parser_version": "str", "icdr_version": "int", "extra": "strmap",
}  # fmt: skip
_FIELD_NAMES = frozenset(_FIELD_KINDS)
_FIELD_ORDER = tuple(_FIELD_KINDS)
_TIME_FIELDS = ("start", "end", "answer")
_REQUIRED = frozenset({"record_id", "agent_id", "source_id", "source_kind", "start", "end"})


def _coerce(name: str, kind: str, value: Any) -> Any:
    match kind:
        case "str":
            if not isinstance(value, str):
                raise ICDRValidationError(name, f"expected a string, got {type(value).__name__}")
            return value
        case "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ICDRValidationError(name, f"expected an integer, got {type(value).__name__}")
            return value
        case "bool":
            if not isinstance(value, bool):
                raise ICDRValidationError(name, f"expected true or false, got {value!r}")
            return value
        case "time":
            return parse_time(name, value)
        case "time?":
            return None if value is None else parse_time(name, value)
        case "direction":
            return _enum(name, Direction, value)
        case "completion":
            return _enum(name, Completion, value)
        case "strs":
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise ICDRValidationError(name, "expected a list of strings")
            return tuple(value)
        case "strmap":
            if not isinstance(value, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()
            ):
                raise ICDRValidationError(name, "expected an object of string values")
            return dict(value)
    raise AssertionError(f"no coercion for {kind}")  # pragma: no cover - table is static


def _enum(name: str, enum: type[_E], value: Any) -> _E:
    try:
        return enum(value)
    except ValueError as exc:
        allowed = ", ".join(m.value for m in enum)
        raise ICDRValidationError(name, f"{value!r} is not one of: {allowed}") from exc


def _validate(rec: ICDR) -> None:
    for name in ("record_id", "agent_id", "source_id", "source_kind"):
        if not getattr(rec, name):
            raise ICDRValidationError(name, "must not be empty")
    if len(rec.record_id) > 128:
        raise ICDRValidationError("record_id", "longer than 128 characters")
    for name in ("start", "end", "answer"):
        value = getattr(rec, name)
        if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
            raise ICDRValidationError(name, "must be a timezone-aware datetime")
    if rec.end < rec.start:
        raise ICDRValidationError("end", "is before start")
    if (rec.end - rec.start).total_seconds() > MAX_CALL_SECONDS:
        raise ICDRValidationError("end", f"call lasts more than {MAX_CALL_SECONDS // 3600} hours")
    if rec.answer is not None and not rec.start <= rec.answer <= rec.end:
        raise ICDRValidationError("answer", "is not between start and end")
    for name in ("ring_seconds", "talk_seconds", "hold_seconds"):
        value = getattr(rec, name)
        if not 0 <= value <= MAX_CALL_SECONDS:
            raise ICDRValidationError(name, f"must be between 0 and {MAX_CALL_SECONDS}")
    if not -18 * 60 <= rec.utc_offset_minutes <= 18 * 60:
        raise ICDRValidationError("utc_offset_minutes", "must be between -1080 and 1080")
    for name in _TEXT_FIELDS:
        if len(getattr(rec, name)) > MAX_TEXT:
            raise ICDRValidationError(name, f"longer than {MAX_TEXT} characters")
    if len(rec.raw) > MAX_RAW:
        raise ICDRValidationError("raw", f"longer than {MAX_RAW} characters")
    if not isinstance(rec.direction, Direction):
        raise ICDRValidationError("direction", "must be a Direction")
    if not isinstance(rec.completion, Completion):
        raise ICDRValidationError("completion", "must be a Completion")


_TEXT_FIELDS = (
    "calling", "called", "dialled_digits", "extension", "trunk", "route", "third_party",
    "account_code", "ani", "dnis", "completion_source", "call_id", "parent_call_id",
)  # fmt: skip
