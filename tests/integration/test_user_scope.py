"""``TenantScope`` narrowed to a user's scope, on both backends, and number masking.

Extension 2001 belongs to Sales until 10:00 UTC on 1 March 2026 and to Support from then on;
2002 is Sales throughout. A call stays with the department that had its extension when it
started, whatever the directory says now.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from datacenter.ingest.worker import ingest_once
from datacenter.settings import Settings
from datacenter.store.call_scope import (
    MAX_EXTENSION_DIGITS,
    WHOLE,
    mask_number,
    mask_text,
    scope_from,
)
from datacenter.store.engine import write_transaction
from datacenter.store.scoped import CallFilter, TenantScope
from datacenter.store.tables.directory import directory_entries
from shared.errors import StoreError
from tests.factories import gen_outgoing_call
from tests.fixtures.store import gen_agent, gen_batch, gen_tenant, land

MOVE = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
START = MOVE - timedelta(hours=4)  # calls every hour from 06:00 to 13:00


@pytest.fixture
def directory_tenant(store: sa.Engine, dc_settings: Settings) -> tuple[sa.Engine, int]:
    tenant = gen_tenant(store, "acme")
    gen_tenant(store, "globex")
    gen_agent(store, "acme", "edge-1")
    calls = [
        gen_outgoing_call(
            n * 3 + i,
            start=START + timedelta(hours=n),
            extension=ext,
            called=f"0207946{n:02d}{ext}",
        )
        for n in range(8)
        for i, ext in enumerate(("2001", "2002", "2003"))
    ]
    land(dc_settings, "acme", *gen_batch(calls))
    assert ingest_once(store, dc_settings).inserted == 24
    entries = [("2001", "Sales", "London", START - timedelta(days=30), MOVE),
               ("2001", "Support", "Leeds", MOVE, None),
               ("2002", "Sales", "London", START - timedelta(days=30), None)]  # fmt: skip
    with write_transaction(store) as conn:
        conn.execute(
            directory_entries.insert(),
            [
                {
                    "tenant_id": tenant.tenant_id,
                    "entry_id": uuid.uuid4().hex,
                    "extension": ext,
                    "person": f"P{ext}",
                    "department": dept,
                    "cost_centre": f"CC-{dept}",
                    "site": site,
                    "valid_from": start,
                    "valid_to": end,
                    "source": "manual",
                    "updated_at": START,
                }
                for ext, dept, site, start, end in entries
            ],
        )
    return store, tenant.tenant_id


def _extensions_and_hours(scope: TenantScope) -> list[tuple[str, int]]:
    page = scope.list_calls(CallFilter(), per_page=500)
    assert scope.count_calls(CallFilter()) == len(page.calls)
    return sorted((c.extension, c.start_utc.hour) for c in page.calls)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # Sales: 2001 before the move (06:00-09:00), 2002 all day
        ({"department": ["Sales"]},
         [("2001", h) for h in range(6, 10)] + [("2002", h) for h in range(6, 14)]),
        ({"department": ["Support"]}, [("2001", h) for h in range(10, 14)]),
        ({"site": ["Leeds"]}, [("2001", h) for h in range(10, 14)]),
        ({"cost_centre": ["CC-Support"]}, [("2001", h) for h in range(10, 14)]),
        ({"extension": ["2003"]}, [("2003", h) for h in range(6, 14)]),
        # kinds add up: Support's calls and extension 2003's
        ({"department": ["Support"], "extension": ["2003"]},
         [("2001", h) for h in range(10, 14)] + [("2003", h) for h in range(6, 14)]),
        ({"department": ["Nobody"]}, []),
    ],
)  # fmt: skip
def test_a_scope_holds_the_calls_of_whoever_had_the_extension_then(
    directory_tenant: tuple[sa.Engine, int],
    values: dict[str, list[str]],
    expected: list[tuple[str, int]],
) -> None:
    engine, tenant_id = directory_tenant
    with engine.connect() as conn:
        scope = TenantScope(conn, tenant_id, user_scope=scope_from(values))
        assert _extensions_and_hours(scope) == sorted(expected)
        whole = TenantScope(conn, tenant_id, user_scope=WHOLE)
        outside = {c.record_id for c in whole.list_calls(CallFilter(), per_page=500).calls} - {
            c.record_id for c in scope.list_calls(CallFilter(), per_page=500).calls
        }
        for record_id in outside:
            assert scope.get_call(record_id) is None
        hourly = sum(n for _, n in scope.hourly_counts(START, START + timedelta(days=1)))
        assert hourly == len(expected)


def test_a_narrowed_scope_refuses_the_whole_tenant_rollup(
    directory_tenant: tuple[sa.Engine, int],
) -> None:
    engine, tenant_id = directory_tenant
    with engine.connect() as conn:
        scope = TenantScope(conn, tenant_id, user_scope=scope_from({"extension": ["2003"]}))
        with pytest.raises(StoreError, match="whole tenant"):
            scope.day_summary()


def test_masking_hides_numbers_everywhere_and_disables_number_search(
    directory_tenant: tuple[sa.Engine, int],
) -> None:
    engine, tenant_id = directory_tenant
    with engine.connect() as conn:
        plain = TenantScope(conn, tenant_id)
        masked = TenantScope(conn, tenant_id, mask_digits=4)
        call = plain.list_calls(CallFilter(), per_page=1).calls[0]
        detail = masked.get_call(call.record_id)
        assert detail is not None
        assert detail.call.called == call.called[:-4] + "xxxx"
        assert call.called not in detail.raw and call.called not in str(detail.record.extra)
        assert detail.record.called == detail.call.called
        assert masked.count_calls(CallFilter(number=call.called[-4:])) == 0
        assert plain.count_calls(CallFilter(number=call.called)) == 1


@given(st.text(alphabet="0123456789 +-()", max_size=30), st.integers(0, 20))
def test_mask_number_hides_exactly_the_last_digits(number: str, digits: int) -> None:
    masked = mask_number(number, digits)
    assert len(masked) == len(number)
    count = sum(c.isdigit() for c in number)
    if count <= MAX_EXTENSION_DIGITS:
        assert masked == number
        return
    hidden = min(digits, count)
    assert masked.count("x") == hidden
    kept = [c for c in masked if c.isdigit()]
    assert kept == [c for c in number if c.isdigit()][: count - hidden]
    assert [c for c in masked if not c.isdigit() and c != "x"] == [
        c for c in number if not c.isdigit()
    ]


@given(
    st.lists(
        st.one_of(
            st.from_regex(r"\+?[0-9]{7,15}", fullmatch=True),  # a phone number
            st.sampled_from(["cleaned to ", ": mobile (GB)", " x 125/60 = ", ", prefix "]),
            st.from_regex(r"[0-9]{1,6}", fullmatch=True),  # an extension, seconds, a prefix
            st.from_regex(r"[0-9]{1,3}\.[0-9]{1,12}", fullmatch=True),  # an amount
            st.from_regex(r"20[0-9]{2}-[01][0-9]-[0-3][0-9]", fullmatch=True),  # a date
        ),
        max_size=8,
    ),
    st.integers(1, 6),
)
def test_mask_text_hides_every_long_number_and_keeps_amounts_and_dates(
    parts: list[str], digits: int
) -> None:
    text = " ".join(parts)
    masked = mask_text(text, digits)
    assert len(masked) == len(text)
    for run in re.finditer(
        r"(?<![\d.])\+?\d{7,}(?![\d.])", text
    ):  # each number: last digits hidden
        assert masked[run.start() : run.end()] == mask_number(run.group(), digits)
        assert masked[run.end() - 1] == "x"
    for part in parts:
        if "." in part or "-" in part or len(part.lstrip("+")) <= MAX_EXTENSION_DIGITS:
            assert part in masked or not part.strip()  # amounts, dates, short runs stay
    assert mask_text(text, 0) == text
