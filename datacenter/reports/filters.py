"""The report filter syntax (as Mitel Communication Service users know it) and its SQL.

Syntax of one filter (a text box for one column):

    filter := term ("," term)*           any positive term matches, no negative one does
    term   := ["!"] value ["-" value]    "!" negates; "a-b" is a range, both ends included
    value  := characters; "%" any run of characters, "_" exactly one (text columns only)

``\\`` takes the next character literally (``\\,`` ``\\-`` ``\\%`` ``\\_`` ``\\!`` ``\\\\``,
``\\`` + space). Unescaped spaces around a term, its ``!`` and a range's ``-`` are ignored, so
``2000, !2001 - 2005`` is ``2000`` or not 2001-2005. A range's ends take no wildcards. On a
number column every value is a decimal number (``1.5``; ``-`` is the range, so a negative
number is written ``\\-5``); ``scale`` turns it into the stored unit and must give an integer.
On a text column a range of two digit strings of the same length (``2000-2099``) matches the
digit strings of that length between them (how extensions are numbered); any other text range
compares text.

``parse_filter`` returns a ``Filter`` or raises ``FilterError`` (a ``ValidationError``, naming
the filter and the position); ``format_filter`` writes a ``Filter`` back (``parse_filter`` of
it gives the same ``Filter``). ``text_condition`` / ``number_condition`` turn a ``Filter`` into a
SQLAlchemy expression on a column: every value is a bound parameter, never SQL text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

import sqlalchemy as sa

from shared.errors import ValidationError

ESCAPE = "\\"
SPECIAL = frozenset(",-%_!" + ESCAPE)


class Wild(Enum):
    ANY = "%"
    ONE = "_"


Piece = str | Wild  # a run of literal characters, or a wildcard
Value = tuple[Piece, ...]  # no two literal runs adjacent, no empty run


@dataclass(frozen=True, slots=True)
class Term:
    negated: bool
    low: Value
    high: Value | None = None  # a range's upper end (``low`` is its lower)


@dataclass(frozen=True, slots=True)
class Filter:
    terms: tuple[Term, ...]


class FilterError(ValidationError):
    """A report filter that does not follow the syntax (docs/reports.md)."""

    exit_code = 3


# --- parsing ----------------------------------------------------------------------------------

Char = tuple[str, bool]  # (character, escaped)


def parse_filter(text: str, *, field: str = "filter") -> Filter:
    """The ``Filter`` ``text`` says (module doc); ``FilterError`` names the field (the report
    column filtered) and what is wrong."""
    chars = _characters(text, field)
    terms = tuple(_term(text, field, part) for part in _split(chars, ","))
    return Filter(terms)


def _characters(text: str, field: str) -> list[Char]:
    out: list[Char] = []
    escaped = False
    for ch in text:
        if escaped:
            out.append((ch, True))
            escaped = False
        elif ch == ESCAPE:
            escaped = True
        else:
            out.append((ch, False))
    if escaped:
        raise FilterError(field, f"{text!r} ends in a lone {ESCAPE!r}; write {ESCAPE * 2!r}")
    return out


def _split(chars: list[Char], separator: str) -> list[list[Char]]:
    parts: list[list[Char]] = [[]]
    for ch, escaped in chars:
        if ch == separator and not escaped:
            parts.append([])
        else:
            parts[-1].append((ch, escaped))
    return parts


def _strip(chars: list[Char]) -> list[Char]:
    start, end = 0, len(chars)
    while start < end and chars[start][0].isspace() and not chars[start][1]:
        start += 1
    while end > start and chars[end - 1][0].isspace() and not chars[end - 1][1]:
        end -= 1
    return chars[start:end]


def _term(text: str, field: str, chars: list[Char]) -> Term:
    chars = _strip(chars)
    negated = bool(chars) and chars[0] == ("!", False)
    if negated:
        chars = _strip(chars[1:])
    ends = [_strip(part) for part in _split(chars, "-")]
    if any(not end for end in ends):
        raise FilterError(
            field,
            f"{text!r} has an empty value (two commas, a lone '!' or a range without an end); "
            f"write a literal comma, dash or '!' as {ESCAPE},  {ESCAPE}-  {ESCAPE}!",
        )
    if len(ends) > 2:
        raise FilterError(field, f"{text!r}: a range has one '-' (write a literal dash as \\-)")
    low = _value(ends[0])
    if len(ends) == 1:
        return Term(negated, low)
    high = _value(ends[1])
    if any(isinstance(p, Wild) for p in (*low, *high)):
        raise FilterError(field, f"{text!r}: a range's ends take no '%' or '_' wildcards")
    return Term(negated, low, high)


def _value(chars: list[Char]) -> Value:
    pieces: list[Piece] = []
    for ch, escaped in chars:
        if not escaped and ch in ("%", "_"):
            pieces.append(Wild(ch))
        elif pieces and isinstance(pieces[-1], str):
            pieces[-1] += ch
        else:
            pieces.append(ch)
    return tuple(pieces)


# --- formatting -------------------------------------------------------------------------------


def format_filter(given: Filter) -> str:
    """The text of a ``Filter`` (``parse_filter`` reads it back as the same ``Filter``)."""
    return ",".join(_format_term(term) for term in given.terms)


def _format_term(term: Term) -> str:
    text = ("!" if term.negated else "") + _format_value(term.low)
    return text if term.high is None else f"{text}-{_format_value(term.high)}"


def _format_value(value: Value) -> str:
    return "".join(
        piece.value if isinstance(piece, Wild) else "".join(_escaped(ch) for ch in piece)
        for piece in value
    )


def _escaped(ch: str) -> str:
    return ESCAPE + ch if ch in SPECIAL or ch.isspace() else ch


def literal(value: Value) -> str | None:
    """The value's text when it has no wildcard, else None."""
    if any(isinstance(piece, Wild) for piece in value):
        return None
    return "".join(piece for piece in value if isinstance(piece, str))


# --- SQL --------------------------------------------------------------------------------------


def text_condition(column: sa.ColumnElement[Any], given: Filter) -> sa.ColumnElement[bool]:
    """``column`` (text) matches ``given``: values are bound parameters."""
    return _combine([(term.negated, _text_term(column, term)) for term in given.terms])


def number_condition(
    column: sa.ColumnElement[Any],
    given: Filter,
    *,
    name: str,
    scale: Callable[[Decimal], int] = lambda number: int(number),
) -> sa.ColumnElement[bool]:
    """``column`` (a number in the stored unit) matches ``given``; ``scale`` maps a typed number
    to the stored unit (an integer) and raises ``FilterError`` when it cannot."""

    def bound(value: Value) -> int:
        return _scaled(value, name, scale)

    return _combine([
        (term.negated, column == bound(term.low) if term.high is None
         else column.between(bound(term.low), bound(term.high)))
        for term in given.terms
    ])  # fmt: skip


def _scaled(value: Value, name: str, scale: Callable[[Decimal], int]) -> int:
    text = literal(value)
    try:
        number = Decimal(text or "x")
        if not number.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        raise FilterError(
            name, f"{_format_value(value)!r} is not a number (no wildcards on numbers)"
        ) from None
    return scale(number)


def _text_term(column: sa.ColumnElement[Any], term: Term) -> sa.ColumnElement[bool]:
    low = literal(term.low)
    if term.high is not None:
        high = literal(term.high)
        assert low is not None and high is not None  # the parser refuses wildcards in ranges
        if _digits(low) and _digits(high) and len(low) == len(high):
            return sa.and_(sa.func.length(column) == len(low), column.between(low, high))
        return column.between(low, high)
    if low is not None:
        return column == low
    return column.like(_like_pattern(term.low), escape=ESCAPE)


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _like_pattern(value: Value) -> str:
    return "".join(
        piece.value if isinstance(piece, Wild)
        else "".join(ESCAPE + ch if ch in "%_" + ESCAPE else ch for ch in piece)
        for piece in value
    )  # fmt: skip


def _combine(terms: list[tuple[bool, sa.ColumnElement[bool]]]) -> sa.ColumnElement[bool]:
    wanted = [condition for negated, condition in terms if not negated]
    refused = [condition for negated, condition in terms if negated]
    parts: list[sa.ColumnElement[bool]] = []
    if wanted:
        parts.append(sa.or_(*wanted))
    if refused:
        parts.append(sa.not_(sa.or_(*refused)))
    return sa.and_(*parts)
