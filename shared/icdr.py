"""The intermediate call detail record (ICDR): the one call format that leaves the appliance.

Every source driver, whatever the PBX, produces ``ICDR`` values; the data centre ingests nothing
else. The record is immutable, versioned (``icdr_version``) and serialised as one JSON object per
line (JSON Lines). ``ICDR.from_dict(rec.to_dict()) == rec`` for every valid record, and
``from_dict`` rejects a bad record with an ``ICDRValidationError`` that names the field.

Times are timezone-aware and stored in UTC; ``utc_offset_minutes`` keeps the source's local
offset at the start of the call so reports can show the site's wall clock.

The class body is the record's one declaration: each field once, with its Python type, default
and ``spec`` (doc and constraints). Everything else is derived from ``FIELDS``: the constructor
and its validation (generated at import time, see ``_init_source``), ``to_dict``/``from_dict``,
the data centre's ``calls`` columns, ingest's row builder and the web's read model, and the field
reference in docs/icdr.md (tests fail when any of them drifts from the declaration).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any, ParamSpec, TypeVar, final

import orjson

from shared.codegen import compile_function, indent
from shared.errors import ICDRValidationError

ICDR_VERSION = 1
_E = TypeVar("_E", bound=StrEnum)
RECORD_ID_LENGTH = 32
MAX_CALL_SECONDS = 400 * 3600  # a call longer than this is a clock or parser fault, not a call
MAX_TEXT = 256  # party fields, codes
MAX_NAME = 64  # agent ids (as batch file names allow), driver kinds, parser versions
MAX_RAW = 64 * 1024
MAX_RECORD_ID = 128
MAX_OFFSET_MINUTES = 18 * 60
_MAX_CALL = timedelta(seconds=MAX_CALL_SECONDS)


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


# Record-id scheme 2 for a record that is one journalled unit (MiVB SMDR): one BLAKE2b, its
# personalisation keeping these ids a domain of their own. Scheme 1 (make_record_id of agent,
# source, sequence and the SHA-256 of the unit) stays for units journalled before a source
# switched: the journal records where (edge_agent.journal, ``line_ids_from``).
LINE_ID_PERSON = b"callcollect-id/2"


def line_id_head(agent_id: str, source_id: str) -> bytes:
    """The fixed start of what ``make_line_record_id`` hashes, for callers that hash many units."""
    return f"{agent_id}\x1f{source_id}\x1f".encode("utf-8", "surrogateescape")


def make_line_record_id(agent_id: str, source_id: str, seq: int, data: bytes) -> str:
    """Record-id scheme 2: BLAKE2b of agent, source, journal sequence and the unit's bytes.

    The ids cannot contain the separator, the sequence is digits, and the unit's bytes come last,
    so two different (agent, source, seq, data) never hash the same input.
    """
    hashed = b"%s%d\x1f%s" % (line_id_head(agent_id, source_id), seq, data)
    return hashlib.blake2b(
        hashed, digest_size=RECORD_ID_LENGTH // 2, person=LINE_ID_PERSON
    ).hexdigest()


@dataclass(frozen=True, slots=True)
class Spec:
    """What the declaration says of a field besides its name, type and default."""

    doc: str  # the field's meaning, as docs/icdr.md prints it
    non_empty: bool = False
    max_length: int | None = None  # text fields
    minimum: int | None = None  # integer fields: the inclusive range
    maximum: int | None = None


def spec(doc: str, **constraints: Any) -> Mapping[str, Spec]:
    """A field's ``metadata``: its doc and constraints (``Spec``'s keywords)."""
    return MappingProxyType({"icdr": Spec(doc, **constraints)})


def _text(doc: str) -> Mapping[str, Spec]:
    return spec(doc, max_length=MAX_TEXT)


def _seconds(doc: str) -> Mapping[str, Spec]:
    return spec(doc, minimum=0, maximum=MAX_CALL_SECONDS)


@final
@dataclass(frozen=True, slots=True)
class ICDR:
    """One call (or one segment of a transferred call), as the data centre receives it.

    Building one validates it (``ICDRValidationError`` names the first bad field); once built it
    cannot be changed (``FrozenInstanceError``). The constructor is generated from these fields
    at import time (``_install_init``), replacing the one ``dataclass`` writes.
    """

    # identity
    record_id: str = field(
        metadata=spec(
            "Stable id from the source key: MiVB SMDR `agent, source, journal seq, line`, one "
            "BLAKE2b of them from the journal position where the source switched to scheme 2, "
            "`SHA-256(line)` then SHA-256 before it "
            "([agent.md](agent.md#journal-edge_agentjournalpy)); LcsCDR `SessionIdTime + SessionIdSeq`; IP SMDR `CallID + segment`; OAI `Call_ID + "
            "first-event time`.",
            non_empty=True,
            max_length=MAX_RECORD_ID,
        )
    )
    agent_id: str = field(
        metadata=spec(
            "The appliance that collected the record.", non_empty=True, max_length=MAX_NAME
        )
    )
    source_id: str = field(
        metadata=spec(
            "The source's id in the agent configuration (`[[sources]] id`).",
            non_empty=True,
            max_length=MAX_TEXT,
        )
    )
    source_kind: str = field(
        metadata=spec(
            "Driver kind: `mivb-smdr`, `mcs-ipsmdr`, `mivo250-smdr`, `mivo250-oai`, `lync-cdr`.",
            non_empty=True,
            max_length=MAX_NAME,
        )
    )
    # timing, UTC
    start: datetime = field(metadata=spec("When the call began (seizure, ring or INVITE)."))
    end: datetime = field(
        metadata=spec(
            "When it ended. Never before `start`; a call longer than 400 h is refused as a fault."
        )
    )
    answer: datetime | None = field(
        default=None,
        metadata=spec("When it was answered; null if never answered or the source does not say."),
    )
    utc_offset_minutes: int = field(
        default=0,
        metadata=spec(
            "The site's local UTC offset at `start` (Mitel sources record local wall-clock time; "
            "reports show it).",
            minimum=-MAX_OFFSET_MINUTES,
            maximum=MAX_OFFSET_MINUTES,
        ),
    )
    ring_seconds: int = field(
        default=0, metadata=_seconds("Seconds ringing before answer (time to answer).")
    )
    talk_seconds: int = field(default=0, metadata=_seconds("Seconds connected. What rating bills."))
    hold_seconds: int = field(
        default=0, metadata=_seconds("Seconds on hold, where the source reports it.")
    )
    # parties
    direction: Direction = field(
        default=Direction.UNKNOWN,
        metadata=spec(
            "From the source's party forms or direction field. `tandem`: trunk to trunk."
        ),
    )
    calling: str = field(
        default="",
        metadata=_text("Calling party as the source names it (extension, `T012` trunk, URI)."),
    )
    called: str = field(default="", metadata=_text("Called party as the source names it."))
    dialled_digits: str = field(
        default="",
        metadata=_text(
            "Digits dialled on the trunk (outgoing) or received (incoming DID), as recorded; rating "
            "normalises them with the site's dial plan."
        ),
    )
    extension: str = field(
        default="",
        metadata=_text("The site's own station involved (the one billed for outgoing calls)."),
    )
    trunk: str = field(
        default="", metadata=_text("Trunk or trunk group (`T061`, `X012`, gateway).")
    )
    route: str = field(
        default="",
        metadata=_text(
            "Route, gateway or mediation server, where the source has one; carrier rules may use "
            "it."
        ),
    )
    third_party: str = field(
        default="", metadata=_text("Second station in a transfer or conference.")
    )
    account_code: str = field(default="", metadata=_text("Account code entered for the call."))
    ani: str = field(
        default="", metadata=_text("Calling number delivered by the network (ISDN/CLASS).")
    )
    dnis: str = field(
        default="", metadata=_text("Dialled number delivered by the network (DDI/DID).")
    )
    # outcome
    answered: bool = field(
        default=False, metadata=spec("The call was answered (answer supervision, TTA, SIP 200).")
    )
    completion: Completion = field(
        default=Completion.UNKNOWN,
        metadata=spec(
            "Normalised outcome, mapped per site because source codes are ambiguous (MiVB `T`)."
        ),
    )
    completion_source: str = field(
        default="",
        metadata=_text("The source's own code, kept verbatim (`A`, `B`, `***`, SIP `486`)."),
    )
    transferred: bool = field(default=False, metadata=spec("The call was transferred."))
    conference: bool = field(default=False, metadata=spec("The call was part of a conference."))
    call_id: str = field(
        default="",
        metadata=_text(
            "The source's call identifier, when it has one (IP SMDR CallID, OAI Call_ID, OLI)."
        ),
    )
    parent_call_id: str = field(
        default="", metadata=_text("For a segment of a transferred call: the call it continues.")
    )
    flags: tuple[str, ...] = field(
        default=(),
        metadata=spec(
            "Markers for unusual records, e.g. `duration_overflow` (MiVB `99:99:99`), "
            "`unsupervised` (no answer supervision), `timed_out` (an event-stream call closed "
            "without its end event), `end_pending` (see below), `not_billed` (a real record the "
            "source says must not be charged, with its reason beside it: `replaced_by_retry`, "
            "`rgs_agent_leg`)."
        ),
    )
    # provenance
    raw: str = field(
        default="",
        metadata=spec(
            "The exact source line or row (Latin-1 decoded for byte streams, trailing spaces kept), "
            "so the data centre can re-parse.",
            max_length=MAX_RAW,
        ),
    )
    parser_version: str = field(
        default="",
        metadata=spec(
            "Driver and parser version that produced the record, e.g. `mivb-smdr/1`.",
            max_length=MAX_NAME,
        ),
    )
    extra: Mapping[str, str] = field(
        default_factory=dict,
        metadata=spec(
            "Driver-specific values with no common field (meter pulses, system id, OLI). Kept, "
            "never interpreted by the data centre."
        ),
    )
    icdr_version: int = field(default=ICDR_VERSION, metadata=spec("The ICDR format version: `1`."))

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form: datetimes as ISO 8601 UTC strings, enums as their values."""
        return _to_dict(self)

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
        if not _FIELD_NAMES.issuperset(data):
            raise ICDRValidationError(sorted(set(data) - _FIELD_NAMES)[0], "unknown field")
        kwargs: dict[str, Any] = {}
        # Ingest's hot path: one look-up per field; strings (most fields) need no call at all.
        for name, coerce, required in _FIELD_COERCION:
            value = data.get(name, _ABSENT)
            if value is _ABSENT:
                if required:
                    raise ICDRValidationError(name, "missing")
            elif coerce is None and type(value) is str:
                kwargs[name] = value
            else:
                kwargs[name] = (coerce or _coerce_str)(name, value)
        return cls(**kwargs)

    @classmethod
    def from_json(cls, line: str | bytes) -> ICDR:
        try:
            data = orjson.loads(line)  # strict RFC 8259 (no NaN, valid UTF-8), 2x json's speed
        except (ValueError, UnicodeDecodeError) as exc:
            raise ICDRValidationError("<record>", f"not valid JSON: {exc}") from exc
        return cls.from_dict(data)


# --- what the declaration says, field by field --------------------------------------------------

# The kind of each declared Python type: what validation, JSON, columns and docs go by.
KINDS: Mapping[str, str] = {
    "str": "str",
    "int": "int",
    "bool": "bool",
    "datetime": "time",
    "datetime | None": "time?",
    "Direction": "direction",
    "Completion": "completion",
    "tuple[str, ...]": "strs",
    "Mapping[str, str]": "strmap",
}
ENUMS: Mapping[str, type[StrEnum]] = {"direction": Direction, "completion": Completion}


@dataclass(frozen=True, slots=True)
class FieldInfo:
    """One declared field, as every consumer of the declaration reads it."""

    name: str
    type: str  # the annotation, e.g. "datetime | None"
    kind: str  # KINDS[type]
    required: bool
    default: Any  # MISSING when required or made by a factory
    spec: Spec


def _declared() -> tuple[FieldInfo, ...]:
    declared = []
    for each in fields(ICDR):
        annotation = str(each.type)
        if annotation not in KINDS:
            raise TypeError(f"ICDR.{each.name}: no kind for type {annotation!r}; add it to KINDS")
        required = each.default is MISSING and each.default_factory is MISSING
        declared.append(
            FieldInfo(
                each.name,
                annotation,
                KINDS[annotation],
                required,
                each.default,
                each.metadata["icdr"],
            )
        )
    return tuple(declared)


FIELDS = _declared()


# --- the constructor, generated from the declaration ----------------------------------------------
#
# `dataclass`'s own `__init__` for a frozen class stores each field with `object.__setattr__`,
# which was half the cost of a record (parsers build one per call). The generated one re-classes
# the instance as `_UnfrozenICDR` (the same slots, no frozen `__setattr__`; CPython refuses the
# assignment unless the layouts are identical), fills it with plain slot stores, gives it its
# class back and only then validates it, straight-line on the parameters (a loop over the fields
# would cost several times as much). Nothing else can see the record meanwhile.

# `extra`'s default: a new dict per record, like the field's `default_factory`.
_NEW_DICT: Mapping[str, str] = MappingProxyType({})


class _UnfrozenICDR:
    """ICDR's slots without its frozen ``__setattr__``: ``ICDR.__init__`` fills records through it."""

    __slots__ = tuple(f.name for f in FIELDS)


def _parameter(each: FieldInfo) -> str:
    """The field as a parameter with its default (also a statement giving a local its default)."""
    if each.required:
        return each.name
    if each.default is MISSING:  # made by a factory: a marker, then a new value per record
        return f"{each.name}=_NEW_DICT"
    return f"{each.name}=_default_{each.name}"


def _fill(each: FieldInfo) -> str:
    if each.default is MISSING and not each.required:
        return f"self.{each.name} = {{}} if {each.name} is _NEW_DICT else {each.name}"
    return f"self.{each.name} = {each.name}"


def _type_checks(each: FieldInfo) -> list[str]:
    """What the kind needs beyond Python's own typing: aware times, enum members."""
    name = each.name
    if each.kind == "time":
        test = f"not isinstance({name}, _datetime) or {name}.tzinfo is None"
    elif each.kind == "time?":
        test = (
            f"{name} is not None and (not isinstance({name}, _datetime) or {name}.tzinfo is None)"
        )
    elif each.kind in ENUMS:
        enum = ENUMS[each.kind].__name__
        return [
            f"if not isinstance({name}, _{enum}):",
            f"    raise _Error({name!r}, 'must be a {enum}')",
        ]
    else:
        return []
    return [f"if {test}:", f"    raise _Error({name!r}, 'must be a timezone-aware datetime')"]


def _range_check(each: FieldInfo) -> list[str]:
    low, high = each.spec.minimum, each.spec.maximum
    if low is None or high is None:
        return []
    return [
        f"if not {low} <= {each.name} <= {high}:",
        f"    raise _Error({each.name!r}, 'must be between {low} and {high}')",
    ]


def _length_checks(declared: tuple[FieldInfo, ...]) -> list[str]:
    """Per maximum: the total bounds each field, so only a long total needs the field-by-field check."""
    groups: dict[int, list[str]] = {}
    for each in declared:
        if each.spec.max_length is not None:
            groups.setdefault(each.spec.max_length, []).append(each.name)
    lines = []
    for limit, names in groups.items():
        message = f"longer than {limit} characters"
        if len(names) == 1:
            lines += [
                f"if len({names[0]}) > {limit}:",
                f"    raise _Error({names[0]!r}, {message!r})",
            ]
            continue
        lines += [
            f"if {' + '.join(f'len({name})' for name in names)} > {limit}:",
            f"    for _name in {tuple(names)!r}:",
            f"        if len(_getattr(self, _name)) > {limit}:",
            f"            raise _Error(_name, {message!r})",
        ]
    return lines


def _checks(declared: tuple[FieldInfo, ...], *, trusted: bool) -> list[str]:
    """Validation in the contract's order (docs/icdr.md): presence, times, ranges, lengths, enums.

    ``trusted`` leaves out what a trusting caller's own types guarantee (``source_checked``).
    """
    lines = []
    for each in declared:
        if each.spec.non_empty:
            lines += [
                f"if not {each.name}:",
                f"    raise _Error({each.name!r}, 'must not be empty')",
            ]
    for each in declared:
        if each.kind.startswith("time") and not trusted:
            lines += _type_checks(each)
    lines += _SPAN_CHECKS
    for each in declared:
        lines += _range_check(each)
    if not trusted:
        lines += _length_checks(declared)
        for each in declared:
            if each.kind in ENUMS:
                lines += _type_checks(each)
    return lines


def _init_source(declared: tuple[FieldInfo, ...]) -> str:
    lines = [
        f"def __init__(self, {', '.join(_parameter(each) for each in declared)}):",
        "    _setattr(self, '__class__', _Unfrozen)",
        *indent([_fill(each) for each in declared]),
        "    _setattr(self, '__class__', _ICDR)",
        *indent(_checks(declared, trusted=False)),
    ]
    return "\n".join(lines) + "\n"


def _trusted_source(declared: tuple[FieldInfo, ...], names: tuple[str, ...] | None = None) -> str:
    """A constructor that makes the record directly in the unfrozen layout, then re-classes it.

    With ``names``, its parameters are those fields only, positional, in that order; the other
    fields take their defaults.
    """
    if names is None:
        head = f"def source_checked({', '.join(_parameter(each) for each in declared)}):"
        defaults: list[str] = []
    else:
        head = f"def source_checked({', '.join(names)}):"
        missing = [each.name for each in declared if each.required and each.name not in names]
        if missing or not set(names) <= {each.name for each in declared}:
            raise ValueError(f"{names} must name ICDR fields, the required ones included")
        defaults = [_parameter(each) for each in declared if each.name not in names]
    lines = [
        head,
        *indent(defaults),
        "    self = _new(_Unfrozen)",
        *indent([_fill(each) for each in declared]),
        "    _setattr(self, '__class__', _ICDR)",
        *indent(_checks(declared, trusted=True)),
        "    return self",
    ]
    return "\n".join(lines) + "\n"


# The rules between the times (not one field's): end after start, not too long, answer within.
_SPAN_CHECKS = [
    "if end < start:",
    "    raise _Error('end', 'is before start')",
    "if end - start > _MAX_CALL:",
    f"    raise _Error('end', 'call lasts more than {MAX_CALL_SECONDS // 3600} hours')",
    "if answer is not None and not start <= answer <= end:",
    "    raise _Error('answer', 'is not between start and end')",
]


def _namespace() -> dict[str, Any]:
    """What the generated constructors refer to."""
    return {
        "_setattr": object.__setattr__,
        "_new": object.__new__,
        "_Unfrozen": _UnfrozenICDR,
        "_ICDR": ICDR,
        "_NEW_DICT": _NEW_DICT,
        "_Error": ICDRValidationError,
        "_datetime": datetime,
        "_getattr": getattr,
        "_MAX_CALL": _MAX_CALL,
        **{f"_{enum.__name__}": enum for enum in ENUMS.values()},
        **{f"_default_{each.name}": each.default for each in FIELDS if each.default is not MISSING},
    }


def _install_init() -> None:
    init = compile_function("__init__", _init_source(FIELDS), _namespace())
    init.__qualname__ = "ICDR.__init__"
    init.__doc__ = "Build and validate a record; the error names the first bad field."
    type.__setattr__(ICDR, "__init__", init)


_install_init()
_P = ParamSpec("_P")


def _signature_of(_: Callable[_P, ICDR]) -> Callable[[Callable[..., ICDR]], Callable[_P, ICDR]]:
    """Give a generated constructor ICDR's own parameters, for the type checker."""
    return lambda function: function


source_checked = _signature_of(ICDR)(
    compile_function("source_checked", _trusted_source(FIELDS), _namespace())
)
"""Build an ICDR whose source's own types already guarantee part of what ``ICDR()`` checks.

For a parser whose times are timezone-aware datetimes by construction, whose ``direction`` and
``completion`` are enum members, and whose every text field is bounded by its own column widths
to at most the field's maximum length (the caller must know this, e.g. from its layout). It skips
exactly those checks: presence, the rules between the times and every integer range are checked
as ``ICDR()`` checks them, with the same errors. Anything else must call ``ICDR()``.
"""


def source_checked_builder(names: tuple[str, ...]) -> Callable[..., ICDR]:
    """``source_checked`` taking exactly ``names``, positionally, in that order (others default).

    For a parser's hot path: matching some thirty keyword arguments to parameters costs about as
    much as building the record. The parser keeps ``names`` beside its one call.
    """
    return compile_function("source_checked", _trusted_source(FIELDS, names), _namespace())


def checked_builder(names: tuple[str, ...]) -> Callable[..., ICDR]:
    """``ICDR()`` taking exactly ``names`` positionally: the full checks, for the same callers."""
    arguments = ", ".join(f"{name}={name}" for name in names)
    source = f"def build({', '.join(names)}):\n    return _ICDR({arguments})\n"
    return compile_function("build", source, {"_ICDR": ICDR})


# --- JSON, derived from the declaration -------------------------------------------------------------

# How each kind reads in `to_dict`, as an expression of the record's attribute `{v}`.
_JSON_VALUE: Mapping[str, str] = {
    "str": "{v}",
    "int": "{v}",
    "bool": "{v}",
    "time": "_format_time({v})",
    "time?": "(None if {v} is None else _format_time({v}))",
    "direction": "{v}.value",
    "completion": "{v}.value",
    "strs": "list({v})",
    "strmap": "dict({v})",
}


def _to_dict_source(declared: tuple[FieldInfo, ...]) -> str:
    items = [
        f"{each.name!r}: {_JSON_VALUE[each.kind].format(v=f'rec.{each.name}')},"
        for each in declared
    ]
    return "\n".join(["def _to_dict(rec):", "    return {", *indent(items, 2), "    }"]) + "\n"


def lone_surrogate_field(rec: ICDR) -> str | None:
    """The first field holding a lone surrogate (U+D800-U+DFFF), or None.

    Such text is a valid Python ``str`` but no UTF-8 file can carry it, so the record could be
    neither spooled nor delivered. Validation does not look for it (every record would pay for a
    fault no driver makes: they decode Latin-1 or strict UTF-16); the spool asks only when a
    record's JSON is not ASCII, and quarantines the record instead of failing its whole store.
    """
    for name in _STRING_FIELDS:
        if not _utf8_safe(getattr(rec, name)):
            return name
    if not all(map(_utf8_safe, rec.flags)):
        return "flags"
    if not all(_utf8_safe(k) and _utf8_safe(v) for k, v in rec.extra.items()):
        return "extra"
    return None


def _utf8_safe(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def format_time(value: datetime) -> str:
    """ISO 8601 in UTC with a 'Z'; microseconds only when present, so LcsCDR's milliseconds survive."""
    text = value.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


_to_dict: Callable[[ICDR], dict[str, Any]] = compile_function(
    "_to_dict", _to_dict_source(FIELDS), {"_format_time": format_time}
)


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
    """Parse JSON Lines; the error says which line failed.

    Lines end at LF only. ``str.splitlines`` would also break at U+0085, U+2028 and U+2029, which
    ``to_json`` leaves unescaped (``ensure_ascii=False``): one SMDR byte 0x85 in a ``raw`` would
    split its record in two and make the whole batch unreadable.
    """
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            yield ICDR.from_json(line)
        except ICDRValidationError as exc:
            raise ICDRValidationError(exc.field, f"line {number}: {exc.problem}") from exc


# --- from_dict's coercion of JSON values, per kind --------------------------------------------------

_FIELD_NAMES = frozenset(each.name for each in FIELDS)
_STRING_FIELDS = tuple(each.name for each in FIELDS if each.kind == "str")


def _coerce_str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ICDRValidationError(name, f"expected a string, got {type(value).__name__}")
    return value


def _coerce_int(name: str, value: Any) -> int:
    # bool is an int subclass, and not a count
    if type(value) is not int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ICDRValidationError(name, f"expected an integer, got {type(value).__name__}")
    return value


def _coerce_bool(name: str, value: Any) -> bool:
    if value is not True and value is not False:
        raise ICDRValidationError(name, f"expected true or false, got {value!r}")
    return value


def _coerce_time(name: str, value: Any) -> datetime:
    if type(value) is str:  # the usual case, without parse_time's general checks
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return parse_time(name, value)  # raises, with the message
        if parsed.tzinfo is UTC:
            return parsed
    return parse_time(name, value)


def _coerce_optional_time(name: str, value: Any) -> datetime | None:
    return None if value is None else _coerce_time(name, value)


def _coerce_direction(name: str, value: Any) -> Direction:
    member = _DIRECTIONS.get(value) if type(value) is str else None
    return member if member is not None else _enum(name, Direction, value)


def _coerce_completion(name: str, value: Any) -> Completion:
    member = _COMPLETIONS.get(value) if type(value) is str else None
    return member if member is not None else _enum(name, Completion, value)


def _coerce_strs(name: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ICDRValidationError(name, "expected a list of strings")
    return tuple(value)


def _coerce_strmap(name: str, value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ICDRValidationError(name, "expected an object of string values")
    return dict(value)


_DIRECTIONS = {member.value: member for member in Direction}
_COMPLETIONS = {member.value: member for member in Completion}
_ABSENT = object()
_COERCERS: dict[str, Callable[[str, Any], Any] | None] = {
    "str": None,
    "int": _coerce_int,
    "bool": _coerce_bool,
    "time": _coerce_time,
    "time?": _coerce_optional_time,
    "direction": _coerce_direction,
    "completion": _coerce_completion,
    "strs": _coerce_strs,
    "strmap": _coerce_strmap,
}
_FIELD_COERCION = tuple((each.name, _COERCERS[each.kind], each.required) for each in FIELDS)


def _enum(name: str, enum: type[_E], value: Any) -> _E:
    try:
        return enum(value)
    except ValueError as exc:
        allowed = ", ".join(m.value for m in enum)
        raise ICDRValidationError(name, f"{value!r} is not one of: {allowed}") from exc
