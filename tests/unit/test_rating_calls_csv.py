"""The plain calls CSV `datacenter rate` reads: columns, local times, errors by line, properties."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datacenter.rating.calls_csv import CallRow, CallRowError, CallsHeaderError, read_calls_csv
from shared.icdr import Direction

LONDON = ZoneInfo("Europe/London")


def read(text: str, zone: ZoneInfo | None = LONDON) -> list[CallRow | CallRowError]:
    return list(read_calls_csv(io.StringIO(text), zone=zone))


def test_a_row_becomes_an_answered_call_of_its_duration() -> None:
    (row,) = read(
        "number,start,duration,direction,cost,trunk\n+33612345678,2025-07-01T10:00:00Z,95,out,0.24,T1\n"
    )
    assert isinstance(row, CallRow)
    call = row.icdr
    assert (call.start, call.answer, call.end - call.start, call.talk_seconds) == (
        datetime(2025, 7, 1, 10, tzinfo=UTC), datetime(2025, 7, 1, 10, tzinfo=UTC),
        timedelta(seconds=95), 95,
    )  # fmt: skip
    assert (call.answered, call.direction, call.dialled_digits, call.trunk) == (
        True, Direction.OUT, "+33612345678", "T1",
    )  # fmt: skip
    assert (row.line, row.carrier_cost, call.record_id) == (2, Decimal("0.24"), "line-2")


def test_a_start_without_offset_is_the_sites_local_time() -> None:
    # 11:00 in London in July is 10:00 UTC (BST)
    (row,) = read("number,start,duration\n0207946012,2025-07-01 11:00:00,60\n")
    assert isinstance(row, CallRow)
    assert row.icdr.start == datetime(2025, 7, 1, 10, tzinfo=UTC)
    (utc,) = read("number,start,duration\n0207946012,2025-07-01 11:00:00,60\n", zone=None)
    assert isinstance(utc, CallRow) and utc.icdr.start.hour == 11


def test_an_inbound_row_rates_its_ddi_and_zero_seconds_is_unanswered() -> None:
    (row,) = read("number,start,duration,direction\n02079460123,2025-07-01T10:00:00Z,0,in\n")
    assert isinstance(row, CallRow)
    assert (row.icdr.dnis, row.icdr.dialled_digits, row.icdr.answered) == ("02079460123", "", False)


@pytest.mark.parametrize(
    ("cells", "column"),
    [
        ("+331,2025-07-01T10:00:00Z,-5,out", "duration"),
        ("+331,2025-07-01T10:00:00Z,1.5,out", "duration"),
        ("+331,2025-07-01T10:00:00Z,²,out", "duration"),
        ("+331,2025-07-01T10:00:00Z,99999999999999999999,out", "duration"),
        ("+331,01/07/2025,5,out", "start"),
        ("+331,2025-07-01T10:00:00Z,5,sideways", "direction"),
        (",2025-07-01T10:00:00Z,5,out", "number"),
        ("+331,2025-07-01T10:00:00Z,5", "-"),
    ],
)
def test_each_bad_row_is_reported_with_its_line_and_column(cells: str, column: str) -> None:
    rows = read(f"number,start,duration,direction\n+331,2025-07-01T10:00:00Z,5,out\n{cells}\n")
    assert isinstance(rows[0], CallRow)
    assert isinstance(rows[1], CallRowError)
    assert (rows[1].line, rows[1].column) == (3, column)


@pytest.mark.parametrize(
    "header",
    ["", "number,start\n", "number,start,duration,price\n", "number,number,start,duration\n"],
)
def test_a_bad_header_is_one_error(header: str) -> None:
    with pytest.raises(CallsHeaderError):
        read(header + "1,2,3\n")


# --- properties --------------------------------------------------------------------------------

numbers = st.from_regex(r"\+?[0-9]{3,15}", fullmatch=True)
starts = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
)


@settings(max_examples=100, deadline=None)
@given(
    rows=st.lists(
        st.tuples(numbers, starts, st.integers(0, 86_400), st.sampled_from(["out", "in"]),
                  st.decimals(min_value=0, max_value=1000, places=4)),
        max_size=20,
    )
)  # fmt: skip
def test_written_rows_read_back_as_the_same_calls(
    rows: list[tuple[str, datetime, int, str, Decimal]],
) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["number", "start", "duration", "direction", "cost"])
    for number, start, seconds, direction, cost in rows:
        writer.writerow([number, start.isoformat(), seconds, direction, cost])
    parsed = read(out.getvalue())
    assert len(parsed) == len(rows)
    for row, (number, start, seconds, direction, cost) in zip(parsed, rows, strict=True):
        assert isinstance(row, CallRow), row
        call = row.icdr
        assert (call.start, call.talk_seconds, call.direction.value, row.carrier_cost) == (
            start, seconds, direction, cost,
        )  # fmt: skip
        assert (call.dialled_digits or call.dnis) == number


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=300))
def test_any_text_is_rows_or_errors_never_a_crash(text: str) -> None:
    try:
        parsed = read("number,start,duration,direction,cost\n" + text)
    except CallsHeaderError:  # pragma: no cover - the header is fixed here
        raise AssertionError("the header is valid") from None
    assert all(isinstance(r, CallRow | CallRowError) for r in parsed)
    lines = [r.line for r in parsed]
    assert lines == sorted(lines)
