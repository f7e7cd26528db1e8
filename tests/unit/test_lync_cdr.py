"""The lync-cdr driver's options, poll windows and error messages (no database needed)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyodbc
import pytest

from edge_agent.sources import registry
from edge_agent.sources.base import SourceContext
from edge_agent.sources.lync_cdr.driver import (
    LcsCdrPoller,
    LyncOptions,
    SessionKey,
    decode_pending,
    describe_target,
    encode_pending,
    map_odbc_error,
    query_params,
    redact,
)
from shared.errors import ConfigError

CTX = SourceContext(agent_id="agent-1", source_id="lync", timezone=ZoneInfo("UTC"))
DSN = "DRIVER={FreeTDS};SERVER=mon.example.com;PORT=1433;DATABASE=LcsCDR;UID=cdr;PWD={p;w}}d};"


@pytest.mark.parametrize(
    ("options", "key", "words"),
    [
        ({}, "connection_string", "no database to poll"),
        ({"connection_string": DSN, "dsn": "LcsCDR"}, "dsn", "both"),
        ({"connection_string": DSN, "poll_interval_seconds": 1}, "poll_interval_seconds", "5"),
        ({"connection_string": DSN, "page_size": "many"}, "page_size", "whole number"),
        ({"connection_string": DSN, "include_internal": "maybe"}, "include_internal", "true"),
        ({"connection_string": DSN, "overlap_hours": 0}, "overlap_hours", "between 1"),
        ({"connection_string": DSN, "polling": 5}, "polling", "not an option"),
        ({"connection_string": DSN, "password_file": "/nonexistent/pw"}, "password_file",
         "cannot read"),
        ({"connection_string": DSN, "pending_max_hours": 0}, "pending_max_hours", "between 1"),
        ({"connection_string": DSN, "csv_null": "blank"}, "csv_null", "not a NULL convention"),
    ],
)  # fmt: skip
def test_bad_options_name_the_key(options: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        registry.make_source("lync-cdr", CTX, options)
    assert info.value.key == f"sources.lync.{key}"
    assert words in str(info.value) and info.value.fix


def test_options_from_text_and_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("se;cr}et\n")
    options = LyncOptions.from_mapping(
        CTX,
        {"dsn": "LcsCDR", "password_file": str(secret), "include_internal": "yes",
         "overlap_hours": "12", "page_size": 500},
    )  # fmt: skip
    assert options.connection_string == "DSN={LcsCDR};PWD={se;cr}}et};"
    assert (options.include_internal, options.overlap, options.page_size) == (
        True, timedelta(hours=12), 500,
    )  # fmt: skip


def test_make_parser_needs_no_connection() -> None:
    kit = registry.make_parser("lync-cdr", CTX, {})
    assert kit.parser.kind == "lync-cdr"


def test_passwords_never_show() -> None:
    assert "w}}d" not in redact(DSN) and "PWD=***" in redact(DSN)
    assert redact("Password=abc;UID=x") == "Password=***;UID=x"
    assert describe_target(DSN) == "SERVER=mon.example.com;PORT=1433;DATABASE=LcsCDR"
    assert describe_target("DSN=LcsCDR;PWD=x") == "DSN=LcsCDR"


@pytest.mark.parametrize(
    ("state", "text", "phase", "words"),
    [
        ("IM002", "Data source name not found", "login", "not installed"),
        ("01000", "Can't open lib 'ODBC Driver 18 for SQL Server' : file not found", "login",
         "not installed"),
        ("08S01", "Unable to connect: Adaptive Server is unavailable or does not exist", "login",
         "cannot connect"),
        ("HYT00", "Timeout expired", "login", "login to SERVER=mon.example.com"),
        ("HYT00", "Timeout expired", "the poll query", "query_timeout_seconds"),
        ("28000", "Login failed for user 'cdr'", "login", "db_datareader"),
        ("42000", "Cannot open database \"LcsCDR\" requested by the login", "login",
         "DATABASE=LcsCDR"),
        ("08S01", "Communication link failure", "the poll query", "next poll reconnects"),
        ("42S22", "Invalid column name 'CallFlag'", "the poll query", "probed again"),
        ("HY000", "something else", "the poll query", "the poll query on SERVER="),
    ],
)  # fmt: skip
def test_odbc_errors_become_sentences(state: str, text: str, phase: str, words: str) -> None:
    error = map_odbc_error(pyodbc.Error(state, f"[{state}] {text} PWD={{p;w}}d}}"), phase=phase,
                           connection_string=DSN)  # fmt: skip
    assert words in str(error)
    assert f"ODBC {state}" in str(error) and "w}}d" not in str(error)


NOW = datetime(2024, 3, 2, 12, 0, tzinfo=UTC)
NAIVE_NOW = NOW.replace(tzinfo=None)


def test_poll_windows() -> None:
    poller = LcsCdrPoller(LyncOptions.from_mapping(CTX, {"connection_string": DSN}))
    first = poller.plan(None, NOW)
    assert (first.start, first.end, first.sweep) == (
        NAIVE_NOW - timedelta(hours=24), NAIVE_NOW - timedelta(minutes=2), True,
    )  # fmt: skip
    poller._last_sweep = NOW  # as a completed sweep leaves it
    mark = SessionKey(NAIVE_NOW - timedelta(hours=3), 1)
    frequent = poller.plan(mark, NOW + timedelta(minutes=5))
    assert (frequent.start, frequent.sweep) == (mark.time - timedelta(minutes=30), False)
    far_behind = SessionKey(NAIVE_NOW - timedelta(days=3), 1)
    assert poller.plan(far_behind, NOW + timedelta(hours=1)).start == far_behind.time - timedelta(
        minutes=30
    )  # a sweep never skips what the watermark has not reached
    slices = list(first.slices(timedelta(hours=1)))
    assert len(slices) == 24 and slices[0][0] == first.start and slices[-1][1] == first.end
    assert all(a[1] == b[0] for a, b in itertools.pairwise(slices))


def test_tracked_open_sessions_round_trip() -> None:
    keys = {(datetime(2024, 3, 1, 9, 0, 0, 3000), 2), (datetime(2024, 3, 1, 9, 28), 1)}
    assert decode_pending(encode_pending(keys)) == keys
    assert decode_pending("garbage") == set() and decode_pending(None) == set()


def test_query_markers_cover_the_slice_and_the_retry_lookahead() -> None:
    lower, upper = datetime(2024, 3, 1, 9), datetime(2024, 3, 1, 10)
    assert query_params(lower, upper) == (lower, datetime(2024, 3, 1, 10, 10), lower, upper)


def test_watermark_round_trip() -> None:
    key = SessionKey(datetime(2024, 3, 1, 9, 0, 0, 3000), 2)
    assert SessionKey.decode(key.encode()) == key
    assert SessionKey.decode("garbage") is None and SessionKey.decode(None) is None
    assert SessionKey(key.time, 1) < key < SessionKey(key.time + timedelta(milliseconds=3), 1)


@pytest.mark.parametrize(("days_behind", "critical"), [(1, False), (44, False), (46, True)])
def test_watermark_near_the_purge_is_critical(days_behind: int, critical: bool) -> None:
    poller = LcsCdrPoller(LyncOptions.from_mapping(CTX, {"connection_string": DSN}))
    poller._retention_days = 60  # as read from PurgeSettings; the default margin is 15 days
    mark = SessionKey(NAIVE_NOW - timedelta(days=days_behind), 1)
    warnings = poller._retention_warnings(mark, NOW)
    assert bool(warnings) is critical
    if critical:
        assert warnings[0].startswith("CRITICAL") and "60 days" in warnings[0]
