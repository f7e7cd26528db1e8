"""Column maps of the MiVoice Business / 3300 SMDR record, generated from the SMDR option flags.

Contract: ``column_map(flags)`` returns the fixed-width map (field, first column, last column;
1-based and inclusive, as formats.md §2.2 and §2.5 print them) for any combination of the
options that move columns. Every offset comes from the rules in ``_build``; nothing else in the
driver knows a column number. ``CompiledLayout`` turns a map into what the parser runs per line:

- ``head``: one regular expression over the fixed head of the record (date, start time,
  duration, calling party, attendant flag, time to answer) that both checks the anchors
  (``/`` in the date, ``:`` in the times, spacers) and captures the numbers;
- ``text``: one ``itemgetter`` of ``slice`` objects that cuts the remaining text fields.

A site may move text fields with a hand-written map (``check_overrides``), e.g. the ANI/DNIS
suffix with Extended Digit Length, whose offsets Mitel does not document.

``match_layout(line)`` finds the layout whose anchors a line satisfies (auto-detection,
§2.7.2), and ``format_record`` is the slicer's inverse, used by the simulator and the tests.

Flags (formats.md §2.5): ``A`` Extended Digit Length, ``L2`` start time with seconds,
``X`` Extended Time To Answer, ``ANI`` the ANI/DNIS suffix, ``OLI`` the Standardized Network OLI
suffix (implies ANI), ``M`` meter pulses (overlays the last five columns of the digits field).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

STANDARD = "standard"
AUTO = "auto"
FLAG_ORDER = ("A", "L2", "X", "ANI", "OLI", "M")
_FLAG_ALIASES = {
    "A": "A",
    "EXT": "A",
    "L2": "L2",
    "L1+L2": "L2",
    "X": "X",
    "TTA": "X",
    "ANI": "ANI",
    "DNIS": "ANI",
    "ANI/DNIS": "ANI",
    "OLI": "OLI",
    "M": "M",
    "METER": "M",
}
PARTY_WIDTH = 4
PARTY_WIDTH_EXTENDED = 7
DIGITS_WIDTH = 26
METER_WIDTH = 5
ACCOUNT_WIDTH = 12
SUFFIX_NUMBER_WIDTH = 10  # ANI and DNIS
MAX_COLUMN = 400
OLI_CALL_ID_WIDTH = 9
OLI_ASSOCIATED_WIDTH = 8

# Fields of the fixed head, checked by one pattern per layout; the rest are plain slices.
HEAD_FIELDS = (
    "long_call",
    "date",
    "start_time",
    "am_pm",
    "duration",
    "calling",
    "attendant",
    "tta",
)
TEXT_FIELDS = (
    "digits",
    "meter_pulses",
    "completion",
    "speed_forward",
    "called",
    "transfer",
    "third_party",
    "account_code",
    "route_opt",
    "system_id",
    "precedence",
    "ani",
    "dnis",
    "oli_call_id",
    "oli_associated_call_id",
)


@dataclass(frozen=True, slots=True, order=True)
class LayoutFlags:
    """Which SMDR options that move columns are on."""

    extended_digits: bool = False  # A
    seconds: bool = False  # L2
    extended_tta: bool = False  # X
    ani_dnis: bool = False
    oli: bool = False
    meter_pulses: bool = False

    @property
    def name(self) -> str:
        """Canonical name: ``standard`` or the flags joined by ``+`` in a fixed order."""
        on = [
            token
            for token, flag in zip(
                FLAG_ORDER,
                (
                    self.extended_digits,
                    self.seconds,
                    self.extended_tta,
                    self.ani_dnis,
                    self.oli,
                    self.meter_pulses,
                ),
                strict=True,
            )
            if flag
        ]
        return "+".join(on) if on else STANDARD

    @classmethod
    def parse(cls, text: str) -> LayoutFlags:
        """Read ``standard``, ``A``, ``L2+X``, ``A+L2+X+ANI`` ...; ValueError names a bad token."""
        tokens = [t.strip().upper() for t in text.replace(",", "+").split("+") if t.strip()]
        if not tokens:
            raise ValueError("the layout is empty")
        flags: set[str] = set()
        for token in tokens:
            if token == STANDARD.upper():
                continue
            canonical = _FLAG_ALIASES.get(token)
            if canonical is None:
                raise ValueError(f"unknown layout option {token!r}")
            flags.add(canonical)
        return cls(
            extended_digits="A" in flags,
            seconds="L2" in flags,
            extended_tta="X" in flags,
            ani_dnis="ANI" in flags or "OLI" in flags,
            oli="OLI" in flags,
            meter_pulses="M" in flags,
        )


@dataclass(frozen=True, slots=True)
class Column:
    """One field: first and last column, 1-based and inclusive."""

    name: str
    first: int
    last: int

    @property
    def width(self) -> int:
        return self.last - self.first + 1

    @property
    def slice(self) -> slice:
        return slice(self.first - 1, self.last)


@dataclass(frozen=True, slots=True)
class ColumnMap:
    flags: LayoutFlags
    columns: tuple[Column, ...]
    length: int  # the record's full width, spacers included

    def by_name(self) -> dict[str, Column]:
        return {column.name: column for column in self.columns}


def column_map(flags: LayoutFlags) -> ColumnMap:
    """The column map of a layout (cached: maps are immutable)."""
    return _build(flags)


@functools.lru_cache(maxsize=128)
def _build(flags: LayoutFlags) -> ColumnMap:
    columns: list[Column] = []
    position = 1

    def put(name: str, width: int) -> None:
        nonlocal position
        columns.append(Column(name, position, position + width - 1))
        position += width

    def spacer() -> None:
        nonlocal position
        position += 1

    party = PARTY_WIDTH_EXTENDED if flags.extended_digits else PARTY_WIDTH
    put("long_call", 1)
    put("date", 5)  # mm/dd
    spacer()
    put("start_time", 8 if flags.seconds else 5)  # hh:mm[:ss]
    put("am_pm", 1)
    spacer()
    put("duration", 10 if flags.extended_digits else 8)  # [hh]hh:mm:ss
    spacer()
    put("calling", party)
    if flags.extended_tta:
        # Extended TTA: the attendant flag moves into the spacer and TTA takes four digits.
        put("attendant", 1)
        put("tta", 4)
    else:
        spacer()
        put("attendant", 1)
        put("tta", 3)
    spacer()
    if flags.meter_pulses:
        put("digits", DIGITS_WIDTH - METER_WIDTH)
        put("meter_pulses", METER_WIDTH)
    else:
        put("digits", DIGITS_WIDTH)
    put("completion", 1)
    put("speed_forward", 1)
    put("called", party)
    put("transfer", 1)
    spacer()
    put("third_party", party)
    spacer()
    put("account_code", ACCOUNT_WIDTH)
    put("route_opt", 1)
    put("system_id", 3)
    spacer()
    put("precedence", 1)  # MLPP level, where the PBX writes one [third-party]
    if flags.ani_dnis:
        spacer()
        put("ani", SUFFIX_NUMBER_WIDTH)
        spacer()
        put("dnis", SUFFIX_NUMBER_WIDTH)
    if flags.oli:
        spacer()
        put("oli_call_id", OLI_CALL_ID_WIDTH)
        spacer()
        put("oli_associated_call_id", OLI_ASSOCIATED_WIDTH)
    return ColumnMap(flags=flags, columns=tuple(columns), length=position - 1)


# --- compiled layouts: what the parser runs on every line -------------------------------------

# The head pattern captures exactly these groups, in this order, for every layout (a layout
# without seconds captures an empty string), so the parser unpacks them without branching.
# ``date_hour`` is ``mm/dd hh`` with the spacer between them: the parser reads each printed hour
# once and keys its per-hour cache on this text; ``duration`` is whole (``[hh]hh:mm:ss``) for the
# same reason.
HEAD_GROUPS = (
    "long_call",
    "date_hour",
    "minute",
    "second",
    "am_pm",
    "duration",
    "calling",
    "attendant",
    "tta",
)


def _field_pattern(column: Column) -> str:
    width = column.width
    match column.name:
        case "am_pm":
            return "([ APap])"
        case "duration":
            return f"([0-9]{{{width - 6}}}:[0-9]{{2}}:[0-9]{{2}})"
        case "attendant":
            return "([^0-9])"
        case "tta":
            # zero-padded seconds, all stars (never answered) or blank (outgoing)
            return f"([0-9]{{{width}}}|[*]{{{width}}}| {{{width}}})"
        case _:
            return f"(.{{{width}}})"


def _date_time_pattern(date: Column, start_time: Column) -> str:
    """``mm/dd hh`` as one group, then the minutes and (empty without ``L2``) the seconds."""
    spacer = " " * (start_time.first - date.last - 1)
    seconds = ":([0-9]{2})" if start_time.width == 8 else "()"
    return f"([0-9]{{2}}/[0-9]{{2}}{spacer}[0-9 ][0-9]):([0-9]{{2}}){seconds}"


def _pattern_through(cmap: ColumnMap, last: str) -> str:
    """The anchors and captures of the head's columns, from the first through ``last``."""
    columns = cmap.by_name()
    parts: list[str] = []
    position = 1
    for column in cmap.columns:
        if column.name == "start_time":
            continue  # read with the date
        parts.append(" " * (column.first - position))  # spacers must be spaces
        if column.name == "date":
            parts.append(_date_time_pattern(column, columns["start_time"]))
            column = columns["start_time"]
        else:
            parts.append(_field_pattern(column))
        position = column.last + 1
        if column.name == last:
            break
    return "".join(parts)


def _head_pattern(cmap: ColumnMap) -> re.Pattern[str]:
    # the closing spacer after the TTA belongs to the head
    return re.compile(_pattern_through(cmap, HEAD_FIELDS[-1]) + " ", re.DOTALL)


@dataclass(frozen=True, slots=True)
class CompiledLayout:
    """A column map made ready for the hot path."""

    cmap: ColumnMap
    name: str
    head: re.Pattern[str]
    text: Callable[[str], tuple[str, ...]]  # the TEXT_FIELDS of a padded line, in order
    length: int
    widest_text: int  # the widest text field: what bounds every text value the layout yields


Override = tuple[str, int, int]  # (text field, first column, last column)


@functools.lru_cache(maxsize=128)
def compile_layout(flags: LayoutFlags, overrides: tuple[Override, ...] = ()) -> CompiledLayout:
    """Compile a layout; ``overrides`` move text fields (a site's hand-written columns)."""
    cmap = column_map(flags)
    if overrides:
        cmap = _override(cmap, overrides)
    slices = {c.name: c.slice for c in cmap.columns if c.name in TEXT_FIELDS}
    empty = slice(0, 0)
    name = flags.name + ("+custom" if overrides else "")
    return CompiledLayout(
        cmap=cmap,
        name=name,
        head=_head_pattern(cmap),
        text=operator.itemgetter(*[slices.get(field, empty) for field in TEXT_FIELDS]),
        length=cmap.length,
        widest_text=max(c.width for c in cmap.columns if c.name in TEXT_FIELDS),
    )


def _override(cmap: ColumnMap, overrides: tuple[Override, ...]) -> ColumnMap:
    moved = {name: Column(name, first, last) for name, first, last in overrides}
    columns = [moved.pop(c.name, c) for c in cmap.columns]
    columns += moved.values()  # suffix fields the layout did not have
    columns.sort(key=lambda c: c.first)
    return ColumnMap(cmap.flags, tuple(columns), max(cmap.length, *(c.last for c in columns)))


def check_overrides(flags: LayoutFlags, overrides: Mapping[str, str]) -> tuple[Override, ...]:
    """Validate ``{field: "first-last"}``; ValueError says what is wrong.

    Only text fields move (the head, checked by anchors, is fixed by the flags), columns are
    1-based and inclusive, and no field may overlap another.
    """
    parsed: list[Override] = []
    for name, text in sorted(overrides.items()):
        if name not in TEXT_FIELDS:
            raise ValueError(f"{name!r} is not a movable field (one of {', '.join(TEXT_FIELDS)})")
        first_text, sep, last_text = str(text).partition("-")
        if not sep or not first_text.strip().isdecimal() or not last_text.strip().isdecimal():
            raise ValueError(f'{name} = {text!r} is not FIRST-LAST, e.g. "103-112"')
        first, last = int(first_text), int(last_text)
        if not 1 <= first <= last <= MAX_COLUMN:
            raise ValueError(f"{name} = {text!r} is not a column range within 1-{MAX_COLUMN}")
        parsed.append((name, first, last))
    cmap = _override(column_map(flags), tuple(parsed))
    for before, after in itertools.pairwise(cmap.columns):
        if after.first <= before.last:
            raise ValueError(f"{before.name} and {after.name} overlap")
    return tuple(parsed)


# --- auto-detection -----------------------------------------------------------------------------

# Base layouts in order of preference. X is tried after its plain counterpart: an outgoing line
# (blank TTA) fits both and reads the same either way.
_BASE_FLAGS = tuple(
    LayoutFlags(extended_digits=a, seconds=l2, extended_tta=x)
    for a in (False, True)
    for l2 in (False, True)
    for x in (False, True)
)


def looks_like_record(line: str) -> bool:
    """True when the line has the date and start-time anchors every layout shares."""
    return _RECORD_SHAPE.match(line) is not None


def _record_shape() -> re.Pattern[str]:
    return re.compile(_pattern_through(column_map(LayoutFlags()), "start_time"), re.DOTALL)


_RECORD_SHAPE = _record_shape()


@dataclass(frozen=True, slots=True)
class _Candidate:
    """A base layout as auto-detection sees it: its head groups and its suffix variants."""

    groups: tuple[int, ...]  # the head's groups within the detection pattern
    layout: CompiledLayout
    with_ani: CompiledLayout
    with_oli: CompiledLayout


def _detector() -> tuple[re.Pattern[str], dict[int, _Candidate]]:
    """One pattern with the base layouts' heads as alternatives, in order of preference.

    The regex engine tries alternatives in order and takes the first that fits, as a loop over
    the layouts would, without coming back to Python between them. Each alternative is wrapped
    in a group that closes last, so ``Match.lastindex`` names the layout that fitted.
    """
    alternatives: list[str] = []
    candidates: dict[int, _Candidate] = {}
    group = 1
    for base in _BASE_FLAGS:
        layout = compile_layout(base)
        alternatives.append(f"({layout.head.pattern})")
        candidates[group] = _Candidate(
            groups=tuple(range(group + 1, group + 1 + layout.head.groups)),
            layout=layout,
            with_ani=compile_layout(dataclasses.replace(base, ani_dnis=True)),
            with_oli=compile_layout(dataclasses.replace(base, ani_dnis=True, oli=True)),
        )
        group += 1 + layout.head.groups
    return re.compile("|".join(alternatives), re.DOTALL), candidates


_DETECT, _CANDIDATES = _detector()
# A head pattern reads a fixed number of columns (through the spacer after the TTA), so padding
# a short line to the widest head shows each head what padding to its own layout's length would.
_DETECT_WIDTH = max(
    candidate.layout.cmap.by_name()[HEAD_FIELDS[-1]].last + 1 for candidate in _CANDIDATES.values()
)


def match_layout(line: str) -> tuple[CompiledLayout, tuple[str, ...]] | None:
    """The first base layout whose head anchors the line satisfies, with suffixes it carries.

    Returns the layout and the head's captures (``HEAD_GROUPS``). Suffixes are recognised by
    content beyond the base record: text past the base width means ANI/DNIS, text past the
    ANI/DNIS suffix means OLI. Meter pulses cannot be told from digits, so auto-detection never
    assumes them.
    """
    found = _DETECT.match(line if len(line) >= _DETECT_WIDTH else line.ljust(_DETECT_WIDTH))
    if found is None or found.lastindex is None:
        return None
    candidate = _CANDIDATES[found.lastindex]
    head: tuple[str, ...] = found.group(*candidate.groups)
    if not line[candidate.layout.length :].strip():
        return candidate.layout, head
    if line[candidate.with_ani.length :].strip():
        return candidate.with_oli, head
    return candidate.with_ani, head


def candidate_layouts(line: str) -> set[str]:
    """Every base layout whose anchors the line satisfies (for proposing a site's layout)."""
    names: set[str] = set()
    for base in _BASE_FLAGS:
        layout = compile_layout(base)
        if layout.head.match(line.ljust(layout.length)) is not None:
            names.add(layout.name)
    return names


def format_record(flags: LayoutFlags, values: Mapping[str, str]) -> str:
    """Place each value in its columns, left-aligned and space-padded (the slicer's inverse).

    ``start_time`` is ``hh:mm`` or ``hh:mm:ss`` per the layout; a value wider than its column
    is a programming error, not something to truncate silently.
    """
    cmap = column_map(flags)
    columns = cmap.by_name()
    line = [" "] * cmap.length
    for name, value in values.items():
        column = columns.get(name)
        if column is None:
            raise KeyError(f"layout {flags.name} has no field {name!r}")
        if len(value) > column.width:
            raise ValueError(f"{name}={value!r} is wider than {column.width} columns")
        line[column.first - 1 : column.first - 1 + len(value)] = value
    return "".join(line)
