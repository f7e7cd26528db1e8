"""Report parameters in a query string: parsed with errors that name the key, and round-tripped."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datacenter.reports.catalog import ReportParams
from datacenter.reports.query_string import query_args, report_params
from shared.errors import ValidationError

LONDON = ZoneInfo("Europe/London")
TODAY = date(2025, 3, 17)


def _params(args: dict[str, str]) -> ReportParams:
    return report_params(args, tenant_id=7, zone=LONDON, today=TODAY, scope=None)


def test_defaults_are_this_month_so_far_in_the_reports_own_order() -> None:
    params = _params({})
    assert (params.first_day, params.last_day) == (date(2025, 3, 1), TODAY)
    assert (params.sort, params.descending, dict(params.filters)) == (None, True, {})


def test_filters_and_options_are_read_from_their_prefixes() -> None:
    params = _params({"from": "2025-02-01", "to": "2025-02-28", "sort": "cost", "order": "asc",
                      "f.extension": "20%,!2002", "f.carrier": " ", "o.by": "trunk"})  # fmt: skip
    assert (params.first_day, params.last_day) == (date(2025, 2, 1), date(2025, 2, 28))
    assert (params.sort, params.descending) == ("cost", False)
    assert dict(params.filters) == {"extension": "20%,!2002"}  # blank filters are dropped
    assert dict(params.options) == {"by": "trunk"}


@pytest.mark.parametrize(
    ("args", "key"),
    [
        ({"from": "March"}, "from"),
        ({"from": "2025-03-10", "to": "2025-03-01"}, "to"),
        ({"from": "2000-01-01", "to": "2025-01-01"}, "to"),
        ({"order": "sideways"}, "order"),
        ({"f.called": "1" * 501}, "f.called"),
    ],
)
def test_a_bad_value_names_its_key(args: dict[str, str], key: str) -> None:
    with pytest.raises(ValidationError) as raised:
        _params(args)
    assert raised.value.field == key


_text = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=20).filter(str.strip)


@given(
    first=st.dates(date(2020, 1, 1), date(2030, 1, 1)),
    span=st.integers(0, 400),
    filters=st.dictionaries(st.sampled_from(["extension", "trunk", "cost"]), _text),
    options=st.dictionaries(st.sampled_from(["by", "top"]), _text),
    sort=st.sampled_from([None, "cost", "start"]),
    descending=st.booleans(),
)
def test_query_args_round_trip(
    first: date,
    span: int,
    filters: dict[str, str],
    options: dict[str, str],
    sort: str | None,
    descending: bool,
) -> None:
    last = date.fromordinal(first.toordinal() + span)
    args = {"from": first.isoformat(), "to": last.isoformat(),
            **{f"f.{k}": v for k, v in filters.items()},
            **{f"o.{k}": v for k, v in options.items()}}  # fmt: skip
    if sort:
        args |= {"sort": sort, "order": "desc" if descending else "asc"}
    params = _params(args)
    assert _params(query_args(params)) == params
