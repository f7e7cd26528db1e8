"""Open-call bookkeeping of the event-stream parsers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edge_agent.sources.streams.open_calls import OpenCalls, RecentlyClosed

T = datetime(2026, 5, 14, 9, 0, tzinfo=UTC)


def test_oldest_seq_follows_the_first_unit_of_the_calls_still_open() -> None:
    calls: OpenCalls[str] = OpenCalls(max_open=10)
    assert calls.oldest_seq() is None
    calls.open("a", "call a", seq=3, received_at=T)
    calls.open("b", "call b", seq=5, received_at=T)
    calls.touch("a", received_at=T + timedelta(seconds=9))
    assert calls.oldest_seq() == 3
    assert calls.pop("a") == "call a"
    assert (calls.oldest_seq(), len(calls), calls.get("a")) == (5, 1, None)


def test_idle_lists_calls_by_last_activity() -> None:
    calls: OpenCalls[int] = OpenCalls(max_open=10)
    for n, key in enumerate("abc"):
        calls.open(key, n, seq=n, received_at=T + timedelta(minutes=n))
    calls.touch("a", received_at=T + timedelta(minutes=30))
    timeout = timedelta(minutes=10)
    assert calls.idle(T + timedelta(minutes=11), timeout) == ["b"]
    assert calls.idle(T + timedelta(minutes=40), timeout) == ["b", "c", "a"]
    calls.touch("b", received_at=T)  # an older receive time never moves activity back
    assert calls.idle(T + timedelta(minutes=12), timeout) == ["c"]


def test_excess_names_the_oldest_calls_beyond_the_bound() -> None:
    calls: OpenCalls[int] = OpenCalls(max_open=2)
    for n, key in enumerate("abcd"):
        calls.open(key, n, seq=n, received_at=T)
    assert calls.excess() == ["a", "b"]
    assert list(calls) == ["a", "b", "c", "d"]


def test_recently_closed_is_bounded_and_keeps_the_newest() -> None:
    closed: RecentlyClosed[int] = RecentlyClosed(size=2)
    closed.add("a", 1)
    closed.add("b", 2)
    closed.add("a", 3)  # re-adding refreshes
    closed.add("c", 4)
    assert (closed.get("a"), closed.get("b"), closed.get("c")) == (3, None, 4)
    closed.discard("a")
    closed.discard("missing")
    assert closed.get("a") is None
