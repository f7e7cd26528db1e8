"""The LcsCDR schema probe, the portable query text and the row format."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from edge_agent.simulators.lcscdr import Generation, Variant, schema_ddl
from edge_agent.sources.lync_cdr.schema import (
    QUERY_MARKERS,
    UnsupportedSchema,
    build_query,
    purge_query,
    result_columns,
    serialise_row,
    variant_from_columns,
)

_CREATE = re.compile(r'CREATE TABLE dbo\."(\w+)" \((.*)\)', re.S)
_COLUMN = re.compile(r'"(\w+)" (?:timestamp|uuid|integer|smallint|boolean|varchar|bytea)')


def columns_of(variant: Variant) -> list[tuple[str, str]]:
    """(TABLE_NAME, COLUMN_NAME) pairs as INFORMATION_SCHEMA lists them for the simulator's DDL."""
    pairs: list[tuple[str, str]] = []
    for statement in schema_ddl(variant):
        match = _CREATE.match(statement)
        if match:
            pairs += [(match.group(1), col) for col in _COLUMN.findall(match.group(2))]
    return pairs


@pytest.mark.parametrize(
    ("variant", "label", "client_type", "replace", "purge"),
    [
        (Variant(Generation.LYNC_2010), "Lync 2010", False, "ReplaceDialogIdTime", False),
        (Variant(Generation.LYNC_2013, replaces_spelling=True), "Lync 2013", True,
         "ReplacesDialogIdTime", True),
        (Variant(Generation.SFB_2015), "Skype for Business 2015/2019", True,
         "ReplaceDialogIdTime", True),
    ],
)  # fmt: skip
def test_variant_detection(
    variant: Variant, label: str, client_type: bool, replace: str, purge: bool
) -> None:
    found = variant_from_columns(columns_of(variant))
    assert (found.label, found.has_client_type) == (label, client_type)
    assert found.replace_columns is not None and found.replace_columns[0] == replace
    assert (purge_query(found) is not None) is purge
    query = build_query(found, include_internal=False)
    assert f'sd."{replace}" AS "ReplaceDialogIdTime"' in query
    assert ('"ClientVersions" cv_one' in query) is client_type
    assert ("User1ClientType" in result_columns(found)) is client_type
    assert ('sd."LastModifiedTime"' in query) is (variant.generation is Generation.SFB_2015)


def test_query_text_is_portable() -> None:
    found = variant_from_columns(columns_of(Variant()))
    for include_internal in (False, True):
        query = build_query(found, include_internal=include_internal)
        assert query.count("?") == len(QUERY_MARKERS) == 4
        assert 'AS "RetryConnected"' in query
        for forbidden in ("TOP ", "ISNULL", "DATEDIFF", "NOLOCK", "[", "]", "LIMIT"):
            assert forbidden not in query.upper()
        assert '(sd."MediaTypes" & 16) = 16' in query
        assert ('vd."ToGatewayId" IS NOT NULL' in query) is not include_internal


def test_real_spelling_is_used_whatever_the_case() -> None:
    pairs = [(t.upper(), c.lower()) for t, c in columns_of(Variant())]
    query = build_query(variant_from_columns(pairs), include_internal=False)
    assert '"dbo"."SESSIONDETAILS" sd' in query and 'sd."sessionidtime" AS "SessionIdTime"' in query


def test_a_view_without_replace_columns_still_works() -> None:
    pairs = [p for p in columns_of(Variant()) if "DialogId" not in p[1]]
    found = variant_from_columns(pairs)
    assert found.replace_columns is None
    assert "ReplaceDialogIdTime" not in build_query(found, include_internal=False)


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        ({"SessionDetails"}, "DATABASE=LcsCDR"),
        ({"VoipDetails"}, "DATABASE=LcsCDR"),
        ({"Phones"}, "dbo.Phones.PhoneId"),
        ({"SessionDetails.SessionStartedById"}, "dbo.SessionDetails.SessionStartedById"),
    ],
)
def test_unsupported_schema_names_what_is_missing(drop: set[str], message: str) -> None:
    pairs = [(t, c) for t, c in columns_of(Variant()) if t not in drop and f"{t}.{c}" not in drop]
    with pytest.raises(UnsupportedSchema, match=re.escape(message)):
        variant_from_columns(pairs)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("SessionIdTime", datetime(2024, 3, 1, 9, 0, 0, 3333), "2024-03-01T09:00:00.003"),
        ("InviteTime", datetime(2024, 3, 1, 10, 0, tzinfo=timezone(timedelta(hours=1))),
         "2024-03-01T09:00:00.000"),
        ("CorrelationId", uuid.UUID("6F9619FF-8B86-D011-B42D-00C04FC964FF"),
         "6f9619ff-8b86-d011-b42d-00c04fc964ff"),
        ("CorrelationId", "6F9619FF-8B86-D011-B42D-00C04FC964FF",
         "6f9619ff-8b86-d011-b42d-00c04fc964ff"),
        ("ResponseCode", Decimal(200), 200),
        ("CallFlag", 3, 3),
        ("UnknownColumn", b"\x01\xff", "01ff"),
        ("PoolFQDN", None, None),
        ("StartedByUri", "sip:zoë@example.com", "sip:zoë@example.com"),
    ],
)  # fmt: skip
def test_row_values_are_typed(name: str, value: object, expected: object) -> None:
    assert json.loads(serialise_row([name], [value])) == {name: expected}


def test_serialised_rows_are_stable() -> None:
    names = ["SessionIdTime", "SessionIdSeq", "PoolFQDN"]
    first = serialise_row(names, [datetime(2024, 3, 1, tzinfo=UTC), 1, "pool"])
    again = serialise_row(list(reversed(names)), ["pool", 1, datetime(2024, 3, 1)])
    assert (
        first
        == again
        == b'{"PoolFQDN":"pool","SessionIdSeq":1,"SessionIdTime":"2024-03-01T00:00:00.000"}'
    )
