"""The report filter syntax: parsing, round trips, and SQL built only from bound parameters."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql, sqlite

from datacenter.reports.filters import (
    Filter,
    FilterError,
    Term,
    Value,
    Wild,
    format_filter,
    number_condition,
    parse_filter,
    text_condition,
)

ALPHABET = st.characters(codec="utf-8")  # no lone surrogates
COLUMN = sa.table("t", sa.column("v", sa.String), sa.column("n", sa.Integer))


def _value(pieces: list[str | Wild]) -> Value:
    """Normalised: adjacent literal runs merged (what the parser builds)."""
    out: list[str | Wild] = []
    for piece in pieces:
        if isinstance(piece, str) and out and isinstance(out[-1], str):
            out[-1] += piece
        elif piece != "":
            out.append(piece)
    return tuple(out)


literal_runs = st.text(ALPHABET, min_size=1, max_size=6)
values = st.lists(st.one_of(literal_runs, st.sampled_from(Wild)), min_size=1, max_size=4).map(
    _value
)
plain = literal_runs.map(lambda text: (text,))
terms = st.one_of(
    st.builds(Term, st.booleans(), values),
    st.builds(Term, st.booleans(), plain, plain),
)
filters = st.lists(terms, min_size=1, max_size=5).map(lambda ts: Filter(tuple(ts)))


def test_the_syntax_users_know() -> None:
    assert parse_filter("2000, !2001 - 2005,20%,_9") == Filter((
        Term(False, ("2000",)),
        Term(True, ("2001",), ("2005",)),
        Term(False, ("20", Wild.ANY)),
        Term(False, (Wild.ONE, "9")),
    ))  # fmt: skip
    assert parse_filter(r"a\,b\-c\%\!\\") == Filter((Term(False, ("a,b-c%!\\",)),))
    assert parse_filter(r"\!x") == Filter((Term(False, ("!x",)),))


@pytest.mark.parametrize("text", ["", " ", "a,,b", "!", "1-", "-1", "1-2-3", "a%-b", "x\\"])
def test_malformed_filters_name_the_field(text: str) -> None:
    with pytest.raises(FilterError, match="extension"):
        parse_filter(text, field="extension")


@given(st.text(ALPHABET, max_size=30))
def test_parsing_never_crashes(text: str) -> None:
    try:
        parsed = parse_filter(text)
    except FilterError:
        return
    assert parse_filter(format_filter(parsed)) == parsed


@given(filters)
def test_format_then_parse_round_trips(given_filter: Filter) -> None:
    assert parse_filter(format_filter(given_filter)) == given_filter


def _blank(value: Value) -> Value:
    """Same shape, other characters: digits stay digits (the digit-range form depends on it)."""
    return tuple(
        p
        if isinstance(p, Wild)
        else "".join("7" if c.isascii() and c.isdigit() else "q" for c in p)
        for p in value
    )


@pytest.mark.parametrize("dialect", [sqlite.base.SQLiteDialect(), postgresql.base.PGDialect()])  # type: ignore[no-untyped-call]
@given(filters)
def test_sql_text_depends_only_on_the_shape_never_on_the_values(
    dialect: sa.Dialect, given_filter: Filter
) -> None:
    blanked = Filter(tuple(
        Term(t.negated, _blank(t.low), None if t.high is None else _blank(t.high))
        for t in given_filter.terms
    ))  # fmt: skip
    compiled = text_condition(COLUMN.c.v, given_filter).compile(dialect=dialect)
    other = text_condition(COLUMN.c.v, blanked).compile(dialect=dialect)
    assert str(compiled) == str(other)
    params = [str(v) for v in compiled.params.values()]
    for term in given_filter.terms:
        for piece in (*term.low, *(term.high or ())):
            if isinstance(piece, str):
                # every literal reaches the database as (part of) a bound parameter
                assert any(piece in p or _like_escaped(piece) in p for p in params)


def _like_escaped(text: str) -> str:
    return "".join("\\" + c if c in "%_\\" else c for c in text)


def test_a_hostile_value_is_data() -> None:
    engine = sa.create_engine("sqlite://")
    meta = sa.MetaData()
    table = sa.Table("calls", meta, sa.Column("v", sa.String))
    meta.create_all(engine)
    hostile = r"x'\); DROP TABLE calls; \-\-"
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"v": "x'); DROP TABLE calls; --"}, {"v": "2001"}])
        found = conn.execute(
            sa.select(table.c.v).where(text_condition(table.c.v, parse_filter(hostile)))
        ).scalars()
        assert list(found) == ["x'); DROP TABLE calls; --"]
        assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == 2


def test_matching_on_a_real_table() -> None:
    engine = sa.create_engine("sqlite://")
    meta = sa.MetaData()
    table = sa.Table("x", meta, sa.Column("v", sa.String), sa.Column("n", sa.Integer))
    meta.create_all(engine)
    rows = [{"v": v, "n": n} for n, v in enumerate(["2000", "2050", "2100", "205", "19999", "a_b",
                                                    "axb", "T061"])]  # fmt: skip

    def matching(text: str) -> list[str]:
        with engine.connect() as conn:
            query = sa.select(table.c.v).where(text_condition(table.c.v, parse_filter(text)))
            return sorted(conn.execute(query.order_by(table.c.v)).scalars())

    with engine.begin() as conn:
        conn.execute(table.insert(), rows)
    assert matching("2000-2099") == ["2000", "2050"]  # same-length digits: not 205 or 19999
    assert matching("!2000-2099") == ["19999", "205", "2100", "T061", "a_b", "axb"]
    assert matching("a_b") == ["a_b", "axb"]
    assert matching(r"a\_b") == ["a_b"]
    assert matching("T%,205") == ["205", "T061"]
    assert matching("20%,!2050") == ["2000", "205"]
    with engine.connect() as conn:
        numbers = number_condition(table.c.n, parse_filter("1-3,!2, 7"), name="n")
        assert list(conn.execute(sa.select(table.c.n).where(numbers).order_by(table.c.n))
                    .scalars()) == [1, 3, 7]  # fmt: skip


def test_numbers_refuse_text_and_wildcards() -> None:
    for text in ("abc", "1%", "NaN", "1-x"):
        with pytest.raises(FilterError, match="cost"):
            number_condition(COLUMN.c.n, parse_filter(text), name="cost")
    scaled = number_condition(
        COLUMN.c.n, parse_filter("1.5"), name="cost", scale=lambda d: int(d * Decimal(10) ** 6)
    ).compile()
    assert list(scaled.params.values()) == [1_500_000]
