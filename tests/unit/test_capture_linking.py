"""Linking recordings to ICDRs by numbers and times."""

from __future__ import annotations

from datetime import timedelta

from edge_agent.capture.linking import RecordingKey, match_record, same_number
from tests.factories import gen_outgoing_call

WINDOW = timedelta(seconds=5)


def key_for(n: int, *, shift: float = 0.0, numbers: tuple[str, ...] | None = None) -> RecordingKey:
    record = gen_outgoing_call(n)
    assert record.answer is not None
    return RecordingKey(
        numbers if numbers is not None else (record.calling, "+44" + record.called.lstrip("0")),
        record.answer + timedelta(seconds=shift),
        record.end + timedelta(seconds=shift),
    )


def test_numbers_compare_on_their_last_digits() -> None:
    assert same_number("+44 1632 960123", "01632960123")
    assert not same_number("01632960123", "01632960124")
    assert not same_number("", "1") and not same_number("1", "1")


def test_matches_the_right_record_within_the_window() -> None:
    records = [gen_outgoing_call(n) for n in range(5)]
    assert match_record(key_for(3, shift=4), records, window=WINDOW) == records[3]
    assert match_record(key_for(3, shift=7), records, window=WINDOW) is None


def test_numbers_must_agree() -> None:
    records = [gen_outgoing_call(3)]
    assert match_record(key_for(3, numbers=("2999", "0999")), records, window=WINDOW) is None
    assert match_record(key_for(3, numbers=("2003",)), records, window=WINDOW) == records[0]
    assert match_record(key_for(3, numbers=()), records, window=WINDOW) is None


def test_the_closest_in_time_wins() -> None:
    start = gen_outgoing_call(1).start
    near = gen_outgoing_call(1, start=start + timedelta(seconds=1))
    far = gen_outgoing_call(1, start=start + timedelta(seconds=3))
    assert match_record(key_for(1, shift=0.5), [far, near], window=WINDOW) == near
    assert match_record(key_for(1, shift=3.5), [far, near], window=WINDOW) == far
