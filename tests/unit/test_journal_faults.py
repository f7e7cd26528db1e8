"""The journal under a failing disk: a short write or ENOSPC is rolled back, no number reused.

The disk is faked at the ``os.write``/``os.fsync`` boundary the journal uses (a real full file
system is tests/faults/test_disk_full.py). Each failure pattern (bytes accepted before the
error, and whether the error comes from ``write`` or ``fsync``) is drawn by hypothesis.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.journal import Journal, JournalWriteError
from edge_agent.sources.base import SinkUnavailable

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@contextmanager
def failing_disk(monkeypatch: pytest.MonkeyPatch, *, accept: int, at_fsync: bool) -> Iterator[None]:
    """``os.write`` accepts ``accept`` more bytes (short writes), then raises ENOSPC; or, with
    ``at_fsync``, every write succeeds and ``fsync`` raises EIO (the data never reached disk)."""
    real_write, real_fsync = os.write, os.fsync
    left = [accept]

    def write(fd: int, data: bytes | memoryview) -> int:
        if at_fsync:
            return real_write(fd, data)
        if left[0] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = real_write(fd, bytes(data)[: left[0]])
        left[0] -= n
        return n

    def fsync(fd: int) -> None:
        if at_fsync:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_fsync(fd)

    with monkeypatch.context() as patch:
        patch.setattr(os, "write", write)
        patch.setattr(os, "fsync", fsync)
        yield


def units_on_disk(directory: Path) -> list[tuple[int, bytes]]:
    with Journal.open(directory, source_id="pbx-1") as journal:
        return [(u.seq, u.data) for u in journal.read_from(1)]


def test_a_short_write_then_enospc_is_rolled_back_and_seq_2_is_not_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The defect: a short write left unit 2 on disk, and the retry wrote another unit 2."""
    journal = Journal.open(tmp_path / "j", source_id="pbx-1")
    journal.append(b"one", received_at=T0)
    with failing_disk(monkeypatch, accept=40, at_fsync=False), pytest.raises(JournalWriteError):
        journal.append_many([b"two", b"three" * 20], received_at=T0)  # unit 2 whole, 3 torn
    assert journal.stats.failed_appends == 1 and journal.last_seq == 1
    again = journal.append_many([b"two", b"three" * 20], received_at=T0)
    journal.close()
    assert [u.seq for u in again] == [2, 3]
    assert units_on_disk(tmp_path / "j") == [(1, b"one"), (2, b"two"), (3, b"three" * 20)]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    accept=st.integers(min_value=0, max_value=400),
    at_fsync=st.booleans(),
    data=st.lists(st.binary(max_size=60), min_size=1, max_size=5),
)
def test_any_failed_append_leaves_exactly_the_good_units(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    accept: int,
    at_fsync: bool,
    data: list[bytes],
) -> None:
    directory = tmp_path_factory.mktemp("j")
    journal = Journal.open(directory, source_id="pbx-1")
    journal.append(b"good", received_at=T0)
    size = os.stat(journal.segments[-1]).st_size
    failed = False
    with failing_disk(monkeypatch, accept=accept, at_fsync=at_fsync):
        try:
            journal.append_many(data, received_at=T0)
        except SinkUnavailable:  # what acquirers catch: keep the units, retry
            failed = True
    if failed:
        assert os.stat(journal.segments[-1]).st_size == size, "the failed append left bytes"
        journal.append_many(data, received_at=T0)
    journal.close()
    expected = [(1, b"good"), *((2 + i, d) for i, d in enumerate(data))]
    assert units_on_disk(directory) == expected


def test_a_new_segment_that_cannot_be_created_fails_the_append_not_the_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal.open(tmp_path / "j", source_id="pbx-1", segment_bytes=64)
    journal.append(b"x" * 64, received_at=T0)  # the segment is full: the next append rolls
    with failing_disk(monkeypatch, accept=0, at_fsync=False), pytest.raises(JournalWriteError):
        journal.append(b"y", received_at=T0)
    assert len(journal.segments) == 1, "a half-made segment was left behind"
    assert journal.append(b"y", received_at=T0).seq == 2
    journal.close()
    assert units_on_disk(tmp_path / "j") == [(1, b"x" * 64), (2, b"y")]


def test_segments_and_their_directory_are_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        with Journal.open(tmp_path / "state" / "j", source_id="pbx-1") as journal:
            journal.append(b"call", received_at=T0)
            segment = journal.segments[-1]
    finally:
        os.umask(old)
    modes: Callable[[Path], int] = lambda p: stat.S_IMODE(os.stat(p).st_mode)  # noqa: E731
    assert (modes(segment), modes(tmp_path / "state" / "j"), modes(tmp_path / "state")) == (
        0o600,
        0o700,
        0o700,
    )
