"""The raw journal: durable appends, reading back, torn tails and damage never misread."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.journal import (
    HEADER_BYTES,
    LINE_IDS_FILE,
    SEGMENT_MAGIC,
    Journal,
    segment_name,
)
from shared.errors import AgentStateError

T0 = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=UTC)


def open_journal(path: Path, **kwargs: object) -> Journal:
    return Journal.open(path, source_id="pbx-1", **kwargs)  # type: ignore[arg-type]


def test_append_and_read_back(tmp_path: Path) -> None:
    with open_journal(tmp_path / "j") as journal:
        first = journal.append(b"line one", received_at=T0)
        rest = journal.append_many([b"two", b"", b"\x00\xff three"], received_at=T0)
    assert [first.seq, *[u.seq for u in rest]] == [1, 2, 3, 4]
    with open_journal(tmp_path / "j") as journal:
        units = list(journal.read_from(1))
        assert journal.last_seq == 4
        assert [u.data for u in journal.read_from(3)] == [b"", b"\x00\xff three"]
    assert [u.data for u in units] == [b"line one", b"two", b"", b"\x00\xff three"]
    assert all(u.received_at == T0 and u.source_id == "pbx-1" for u in units)


def test_sequence_continues_after_reopen(tmp_path: Path) -> None:
    with open_journal(tmp_path / "j") as journal:
        journal.append_many([b"a", b"b"], received_at=T0)
    with open_journal(tmp_path / "j") as journal:
        assert journal.append(b"c", received_at=T0).seq == 3


def test_a_new_journal_uses_record_id_scheme_2_from_its_first_unit(tmp_path: Path) -> None:
    with open_journal(tmp_path / "j") as journal:
        assert journal.line_ids_from == 1
        journal.append_many([b"a", b"b"], received_at=T0)
    assert (tmp_path / "j" / LINE_IDS_FILE).read_text() == "1\n"
    with open_journal(tmp_path / "j") as journal:
        assert journal.line_ids_from == 1  # read back, not moved to the next unit


def test_an_upgraded_journal_keeps_scheme_1_for_every_unit_it_already_holds(
    tmp_path: Path,
) -> None:
    with open_journal(tmp_path / "j") as journal:
        journal.append_many([b"a", b"b", b"c"], received_at=T0)
    (tmp_path / "j" / LINE_IDS_FILE).unlink()  # as an agent older than scheme 2 left it
    with open_journal(tmp_path / "j") as journal:
        assert journal.line_ids_from == 4
        assert journal.append(b"d", received_at=T0).seq == 4
    with open_journal(tmp_path / "j") as journal:
        assert journal.line_ids_from == 4
    assert (tmp_path / "j" / LINE_IDS_FILE).read_text() == "4\n"


@pytest.mark.parametrize("text", ["", "x\n", "0\n", "-3\n", "\xff"])
def test_a_damaged_scheme_position_is_refused_with_the_fix(tmp_path: Path, text: str) -> None:
    with open_journal(tmp_path / "j") as journal:
        journal.append(b"a", received_at=T0)
    (tmp_path / "j" / LINE_IDS_FILE).write_bytes(text.encode("latin-1"))
    with pytest.raises(AgentStateError, match="never a lower one"):
        open_journal(tmp_path / "j")


def test_naive_time_is_refused(tmp_path: Path) -> None:
    with open_journal(tmp_path / "j") as journal, pytest.raises(ValueError, match="aware"):
        journal.append(b"x", received_at=datetime(2026, 1, 1))


def test_many_units_take_one_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_journal(tmp_path / "j") as journal:
        calls: list[int] = []
        real = os.fsync

        def counting_fsync(fd: int) -> None:
            calls.append(fd)
            real(fd)

        monkeypatch.setattr(os, "fsync", counting_fsync)
        journal.append_many([b"x"] * 500, received_at=T0)
        monkeypatch.undo()
    assert len(calls) == 1


def write_three(path: Path) -> tuple[int, int]:
    """Three units; returns (offset of the last unit, file size)."""
    with open_journal(path) as journal:
        journal.append_many([b"first record", b"second record"], received_at=T0)
        seg = journal.segments[-1]
        before = seg.stat().st_size
        journal.append(b"third record, torn by the crash", received_at=T0)
    return before, seg.stat().st_size


def test_truncation_at_every_byte_of_the_last_unit_never_yields_a_corrupt_unit(
    tmp_path: Path,
) -> None:
    """A crash between write and fsync leaves any prefix of the last unit on disk."""
    start, end = write_three(tmp_path / "orig")
    original = (tmp_path / "orig" / segment_name(1)).read_bytes()
    for cut in range(start, end + 1):
        directory = tmp_path / f"cut{cut}"
        directory.mkdir()
        (directory / segment_name(1)).write_bytes(original[:cut])
        with open_journal(directory) as journal:
            units = list(journal.read_from(1))
            expected = [b"first record", b"second record"]
            if cut == end:
                expected.append(b"third record, torn by the crash")
            assert [u.data for u in units] == expected, cut
            assert journal.stats.torn_tail_bytes == (0 if cut in (start, end) else cut - start)
            # the torn unit was never acknowledged, so its number is given again
            assert journal.append(b"after", received_at=T0).seq == len(expected) + 1
        with open_journal(directory) as journal:
            assert [u.data for u in journal.read_from(1)][-1] == b"after"
            assert journal.stats.torn_tail_bytes == 0


def test_crc_mismatch_in_the_tail_is_truncated(tmp_path: Path) -> None:
    start, end = write_three(tmp_path / "j")
    seg = tmp_path / "j" / segment_name(1)
    data = bytearray(seg.read_bytes())
    data[end - 3] ^= 0x01  # a flipped bit in the last unit's data
    seg.write_bytes(bytes(data))
    with open_journal(tmp_path / "j") as journal:
        assert [u.data for u in journal.read_from(1)] == [b"first record", b"second record"]
        assert journal.stats.torn_tail_bytes == end - start
    assert seg.stat().st_size == start


def test_damage_in_the_middle_is_skipped_and_counted(tmp_path: Path) -> None:
    write_three(tmp_path / "j")
    seg = tmp_path / "j" / segment_name(1)
    data = bytearray(seg.read_bytes())
    data[len(SEGMENT_MAGIC) + HEADER_BYTES + 2] ^= 0xFF  # inside the first unit's data
    seg.write_bytes(bytes(data))
    with open_journal(tmp_path / "j") as journal:
        units = list(journal.read_from(1))
        assert [u.seq for u in units] == [2, 3]
        assert journal.stats.corrupt_bytes == HEADER_BYTES + len(b"first record")
        assert journal.stats.torn_tail_bytes == 0  # the intact units after it stay


def test_a_segment_torn_while_being_created_is_reset(tmp_path: Path) -> None:
    with open_journal(tmp_path / "j", segment_bytes=64) as journal:
        journal.append_many([b"x" * 60], received_at=T0)
    (tmp_path / "j" / segment_name(2)).write_bytes(b"CC")  # crash before the magic was written
    with open_journal(tmp_path / "j", segment_bytes=64) as journal:
        assert journal.append(b"y", received_at=T0).seq == 2
        assert [u.data for u in journal.read_from(1)] == [b"x" * 60, b"y"]


def test_segments_rotate_and_reading_spans_them(tmp_path: Path) -> None:
    with open_journal(tmp_path / "j", segment_bytes=100) as journal:
        for n in range(1, 21):
            journal.append(f"unit {n}".encode(), received_at=T0)
        assert len(journal.segments) > 3
        assert [u.seq for u in journal.read_from(7)] == list(range(7, 21))
    with open_journal(tmp_path / "j", segment_bytes=100) as journal:
        assert journal.append(b"next", received_at=T0).seq == 21


def test_prune_needs_both_the_cursor_and_the_retention(tmp_path: Path) -> None:
    now = T0 + timedelta(days=30)
    with open_journal(tmp_path / "j", segment_bytes=100, retention=timedelta(days=7)) as journal:
        for n in range(1, 21):
            journal.append(f"unit {n}".encode(), received_at=T0)
        segments = journal.segments
        firsts = [int(p.stem) for p in segments]
        assert journal.prune(below=20, now=now) == []  # written just now: too young
        old = (now - timedelta(days=8)).timestamp()
        for path in segments:
            os.utime(path, (old, old))
        cursor = firsts[2]  # units up to seq firsts[2] are spooled
        removed = journal.prune(below=cursor, now=now)
        # segment 0 ends at firsts[1]-1 <= cursor; segment 1 ends at firsts[2]-1 <= cursor
        assert removed == segments[:2]
        assert [u.seq for u in journal.read_from(1)] == list(range(firsts[2], 21))
        journal.prune(below=10**9, now=now)
        assert journal.segments == segments[-1:]  # the newest segment always stays
    with open_journal(tmp_path / "j", segment_bytes=100) as journal:
        assert journal.append(b"next", received_at=T0).seq == 21


@settings(max_examples=40, deadline=None)
@given(units=st.lists(st.binary(max_size=300), min_size=1, max_size=20), data=st.data())
def test_property_any_tear_yields_a_prefix(
    tmp_path_factory: pytest.TempPathFactory, units: list[bytes], data: st.DataObject
) -> None:
    directory = tmp_path_factory.mktemp("j")
    with open_journal(directory) as journal:
        journal.append_many(units, received_at=T0)
    seg = directory / segment_name(1)
    blob = seg.read_bytes()
    cut = data.draw(st.integers(min_value=0, max_value=len(blob)))
    seg.write_bytes(blob[:cut])
    with open_journal(directory) as journal:
        got = [u.data for u in journal.read_from(1)]
    assert got == units[: len(got)]


@settings(max_examples=60)
@given(content=st.binary(max_size=24))
def test_property_the_scheme_position_is_a_number_or_refused(
    tmp_path_factory: pytest.TempPathFactory, content: bytes
) -> None:
    """Whatever bytes the file holds, the journal reads the positive number they spell or refuses
    to open: it never guesses a position."""
    directory = tmp_path_factory.mktemp("j")
    with open_journal(directory) as journal:
        journal.append(b"a", received_at=T0)
    (directory / LINE_IDS_FILE).write_bytes(content)
    text = content.decode("ascii", "replace")
    if text.strip().isdecimal() and int(text) >= 1:
        with open_journal(directory) as journal:
            assert journal.line_ids_from == int(text)
    else:
        with pytest.raises(AgentStateError):
            open_journal(directory)
