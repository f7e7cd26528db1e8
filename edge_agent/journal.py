"""The raw journal: what each source delivered, byte for byte, on disk before anything parses it.

Contract:

- ``append_many(units, received_at)`` gives every unit the next sequence number (monotonic per
  source, starting at 1, never reused once ``append_many`` has returned), writes them with ONE
  write and ONE ``fsync``, and returns only when they are durable. A new segment file is fsynced
  together with its directory before its first unit counts as written.
- A failed append (``ENOSPC``, a short write, ``EIO`` from ``fsync``) is rolled back: the segment
  is truncated to its length before the append and fsynced, and ``JournalWriteError`` (a
  ``SinkUnavailable``) is raised; the numbers it would have used are handed out again, so no
  number is ever on disk twice. The caller keeps the units and retries. If even the truncate
  fails it is retried before the next append, which fails until it succeeded.
- ``read_from(seq)`` yields every unit with a sequence number >= ``seq``, in order, exactly as
  appended. A unit whose length or CRC does not check out is never yielded.
- ``Journal.open`` scans the newest segment and truncates a torn tail (a crash between ``write``
  and ``fsync``); ``stats.torn_tail_bytes`` counts what was cut and a warning is logged. The
  sequence counter continues from the last intact unit, so a unit that was torn before
  ``append_many`` returned gets its number again: no caller ever saw it.
- A damaged segment header (its first 4 bytes) is rewritten; the units after it are kept (each
  has its own magic and CRC), so the newest segment is never emptied by it.
- Damage in the middle of a segment (a flipped bit on disk) is skipped on read by searching for
  the next intact unit; ``stats.corrupt_bytes`` counts it and a warning names the segment.
- ``line_ids_from``: the first sequence number whose records use record-id scheme 2 (one BLAKE2b,
  ``shared.icdr.make_line_record_id``); units before it keep scheme 1 whenever they are parsed
  again, so a record already delivered keeps its id (the data centre stores each id once). It is
  fixed the first time a journal is opened by an agent that knows scheme 2: the next sequence
  number then (1 for a new source), written durably in ``LINE_IDS_FILE`` before any unit
  after it is appended, and read from there ever after. A file that does not read as a number is
  refused (``AgentStateError``): guessing the position could give delivered calls new ids.
- ``prune(below=cursor, now=...)`` deletes segments whose units are all <= ``cursor`` (parsed and
  spooled) AND whose last write is older than the retention period. The newest segment is kept.

On disk, one directory per source (``STATE/journal/SOURCE_ID/``) of segment files named by their
first sequence number (``00000000000000000001.seg``), and ``LINE_IDS_FILE`` (the decimal
``line_ids_from``, then a newline). A segment is ``b"CCJ1"`` then units::

    MAGIC  b"\\xcc\\x01"   2 bytes
    seq    u64 BE         8
    time   i64 BE         8   received_at, microseconds since the Unix epoch, UTC
    length u32 BE         4
    crc    u32 BE         4   CRC-32 of the 22 header bytes before it and of the data
    data   length bytes

A ``Journal`` is safe to share between the acquirer thread and the supervisor (one lock).
"""

from __future__ import annotations

import errno
import logging
import os
import struct
import threading
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge_agent.sources.base import RawUnit, SinkUnavailable
from shared.crashpoints import crash_point
from shared.durable import atomic_write, fsync_dir
from shared.errors import AgentStateError
from shared.modes import FILE_MODE, make_private_dir

log = logging.getLogger(__name__)

SEGMENT_MAGIC = b"CCJ1"
UNIT_MAGIC = b"\xcc\x01"
_HEADER = struct.Struct(">2sQqI")  # magic, seq, time, length
_CRC = struct.Struct(">I")
HEADER_BYTES = _HEADER.size + _CRC.size  # 26
MAX_UNIT_BYTES = 16 * 1024 * 1024  # far above any PBX record; a larger length is damage
DEFAULT_SEGMENT_BYTES = 16 * 1024 * 1024
DEFAULT_RETENTION = timedelta(days=7)
SEGMENT_SUFFIX = ".seg"
LINE_IDS_FILE = "line-ids-v2.from"  # see line_ids_from in the module docstring
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class JournalWriteError(SinkUnavailable):
    """An append failed and was rolled back: nothing of it is in the journal."""

    exit_code = 9


@dataclass(slots=True)
class JournalStats:
    torn_tail_bytes: int = 0  # cut off the newest segment on open
    corrupt_bytes: int = 0  # skipped over while reading
    pruned_segments: int = 0
    failed_appends: int = 0  # rolled back (disk full, I/O error)


@dataclass(frozen=True, slots=True)
class _Decoded:
    unit: RawUnit
    end: int  # offset just past the unit


def encode_unit(source_id: str, seq: int, received_at: datetime, data: bytes) -> bytes:
    micros = (received_at - _EPOCH) // timedelta(microseconds=1)
    head = _HEADER.pack(UNIT_MAGIC, seq, micros, len(data))
    crc = zlib.crc32(data, zlib.crc32(head))
    return head + _CRC.pack(crc) + data


def _decode_at(buf: bytes | memoryview, pos: int, source_id: str) -> _Decoded | None:
    """The unit starting at ``pos``, or None if there is no intact unit there."""
    if len(buf) - pos < HEADER_BYTES:
        return None
    magic, seq, micros, length = _HEADER.unpack_from(buf, pos)
    if magic != UNIT_MAGIC or length > MAX_UNIT_BYTES:
        return None
    end = pos + HEADER_BYTES + length
    if end > len(buf):
        return None
    (crc,) = _CRC.unpack_from(buf, pos + _HEADER.size)
    data = bytes(buf[pos + HEADER_BYTES : end])
    if zlib.crc32(data, zlib.crc32(buf[pos : pos + _HEADER.size])) != crc:
        return None
    received_at = _EPOCH + timedelta(microseconds=micros)
    return _Decoded(RawUnit(source_id=source_id, seq=seq, received_at=received_at, data=data), end)


def _scan(buf: bytes, source_id: str) -> Iterator[_Decoded | tuple[int, int]]:
    """Intact units in order; a damaged span comes out as (start, end) so callers can count it."""
    pos = len(SEGMENT_MAGIC)
    while pos < len(buf):
        decoded = _decode_at(buf, pos, source_id)
        if decoded is not None:
            yield decoded
            pos = decoded.end
            continue
        resume = _next_intact(buf, pos + 1, source_id)
        yield (pos, resume)
        pos = resume


def _next_intact(buf: bytes, start: int, source_id: str) -> int:
    pos = buf.find(UNIT_MAGIC, start)
    while pos >= 0:
        if _decode_at(buf, pos, source_id) is not None:
            return pos
        pos = buf.find(UNIT_MAGIC, pos + 1)
    return len(buf)


def segment_name(first_seq: int) -> str:
    return f"{first_seq:020d}{SEGMENT_SUFFIX}"


class Journal:
    """Append-only, fsynced, per-source journal of raw units (see the module docstring)."""

    def __init__(
        self,
        directory: Path,
        *,
        source_id: str,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        retention: timedelta = DEFAULT_RETENTION,
    ) -> None:
        self.directory = directory
        self.source_id = source_id
        self.segment_bytes = segment_bytes
        self.retention = retention
        self.stats = JournalStats()
        self._lock = threading.Lock()
        self._file: int | None = None  # fd of the newest segment, opened for append
        self._segments: list[int] = []  # first sequence numbers, ascending
        self._size = 0  # bytes in the newest segment
        self._next_seq = 1
        self._needs_truncate = False  # a failed append's bytes are not cut off yet
        self.line_ids_from = 1  # read or fixed by open(): see the module docstring

    @classmethod
    def open(
        cls,
        directory: Path,
        *,
        source_id: str,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        retention: timedelta = DEFAULT_RETENTION,
    ) -> Journal:
        journal = cls(
            directory, source_id=source_id, segment_bytes=segment_bytes, retention=retention
        )
        journal._recover()
        try:
            journal.line_ids_from = journal._read_or_fix_line_ids_from()
        except BaseException:
            journal.close()
            raise
        return journal

    # --- writing --------------------------------------------------------------------------

    def append(self, data: bytes, *, received_at: datetime) -> RawUnit:
        return self.append_many([data], received_at=received_at)[0]

    def append_many(self, units: Sequence[bytes], *, received_at: datetime) -> list[RawUnit]:
        """Journal units durably (one write, one fsync); returns them with their numbers."""
        if received_at.tzinfo is None:
            raise ValueError("received_at must be timezone-aware")
        for data in units:
            if len(data) > MAX_UNIT_BYTES:
                raise ValueError(f"a unit of {len(data)} bytes exceeds {MAX_UNIT_BYTES}")
        with self._lock:
            if self._file is None:
                raise RuntimeError("journal is closed")
            if self._needs_truncate:
                self._truncate_to_good_length()
                if self._needs_truncate:
                    raise JournalWriteError(f"journal {self.source_id}: cannot roll back a failed "
                                            "append yet (disk refusing writes)")  # fmt: skip
            if self._size >= self.segment_bytes:
                self._roll_or_fail(self._next_seq)
            out = [
                RawUnit(self.source_id, self._next_seq + i, received_at.astimezone(UTC), data)
                for i, data in enumerate(units)
            ]
            blob = b"".join(encode_unit(self.source_id, u.seq, u.received_at, u.data) for u in out)
            try:
                self._write_all(blob)
                crash_point("journal.written")
                os.fsync(self._file)
            except OSError as exc:
                self._roll_back(exc)
            crash_point("journal.synced")
            self._size += len(blob)
            self._next_seq += len(out)
            return out

    def _roll_or_fail(self, first_seq: int) -> None:
        try:
            self._start_segment(first_seq)
        except OSError as exc:
            self.stats.failed_appends += 1
            raise JournalWriteError(
                f"journal {self.source_id}: cannot start a segment: {exc.strerror or exc}"
            ) from exc

    def _roll_back(self, exc: OSError) -> None:
        """Cut the segment back to its last good length; then raise ``JournalWriteError``."""
        self.stats.failed_appends += 1
        log.error(
            "journal %s: append failed, rolling back to %d bytes: %s",
            self.source_id, self._size, exc.strerror or exc,
        )  # fmt: skip
        self._needs_truncate = True
        self._truncate_to_good_length()
        raise JournalWriteError(
            f"journal {self.source_id}: write failed: {exc.strerror or exc} (rolled back; "
            "the units are kept for a retry)"
        ) from exc

    def _truncate_to_good_length(self) -> None:
        """Cut whatever a failed append left after the last good unit (its bytes must never be
        read as units: their numbers are handed out again). Retried before the next append
        while the disk refuses even a truncate."""
        assert self._file is not None
        try:
            os.ftruncate(self._file, self._size)
            os.lseek(self._file, self._size, os.SEEK_SET)
            os.fsync(self._file)
        except OSError as exc:
            log.error("journal %s: rollback failed, retried before the next append: %s",
                      self.source_id, exc.strerror or exc)  # fmt: skip
            return
        self._needs_truncate = False

    def _write_all(self, blob: bytes) -> None:
        assert self._file is not None
        view = memoryview(blob)
        while view:
            written = os.write(self._file, view)
            view = view[written:]

    # --- reading --------------------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        """Sequence number of the newest durable unit (0 when none was ever written)."""
        return self._next_seq - 1

    def read_from(self, seq: int) -> Iterator[RawUnit]:
        """Every intact unit with a sequence number >= ``seq``, oldest first."""
        with self._lock:
            segments = list(self._segments)
            limit_seq = self._next_seq
        for index, first in enumerate(segments):
            following = segments[index + 1] if index + 1 < len(segments) else None
            if following is not None and following <= seq:
                continue
            path = self.directory / segment_name(first)
            try:
                buf = path.read_bytes()
            except FileNotFoundError:
                continue  # pruned meanwhile: it held only parsed units
            for item in _scan(buf, self.source_id):
                if isinstance(item, tuple):
                    self._count_corrupt(path, *item)
                elif seq <= item.unit.seq < limit_seq:
                    yield item.unit

    def _count_corrupt(self, path: Path, start: int, end: int) -> None:
        self.stats.corrupt_bytes += end - start
        log.warning(
            "journal %s: %d damaged bytes at offset %d skipped (disk fault?)",
            path,
            end - start,
            start,
        )

    # --- maintenance ----------------------------------------------------------------------

    def prune(self, *, below: int, now: datetime) -> list[Path]:
        """Delete segments holding only units <= ``below`` and last written before the retention."""
        removed: list[Path] = []
        with self._lock:
            while len(self._segments) > 1 and self._segments[1] - 1 <= below:
                path = self.directory / segment_name(self._segments[0])
                mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
                if now - mtime < self.retention:
                    break
                path.unlink()
                removed.append(path)
                self._segments.pop(0)
            if removed:
                fsync_dir(self.directory)
                self.stats.pruned_segments += len(removed)
        for path in removed:
            log.info("journal %s: pruned %s", self.source_id, path.name)
        return removed

    @property
    def segments(self) -> list[Path]:
        with self._lock:
            return [self.directory / segment_name(first) for first in self._segments]

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                os.fsync(self._file)
                os.close(self._file)
                self._file = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- opening --------------------------------------------------------------------------

    def _recover(self) -> None:
        if make_private_dir(self.directory):
            fsync_dir(self.directory.parent)
        self._segments = sorted(
            int(p.name.removesuffix(SEGMENT_SUFFIX))
            for p in self.directory.glob("*" + SEGMENT_SUFFIX)
            if p.name.removesuffix(SEGMENT_SUFFIX).isdigit()
        )
        if not self._segments:
            self._start_segment(1)
            return
        first = self._segments[-1]
        path = self.directory / segment_name(first)
        buf = path.read_bytes()
        self._next_seq = first
        valid_end = len(SEGMENT_MAGIC)
        # units carry their own magic and CRC: a damaged segment header loses none of them
        for item in _scan(buf, self.source_id):
            if isinstance(item, _Decoded):
                valid_end = item.end
                self._next_seq = item.unit.seq + 1
        self._file = os.open(path, os.O_RDWR)
        if len(buf) != valid_end or not buf.startswith(SEGMENT_MAGIC):
            self._truncate_tail(path, buf, valid_end)
        os.lseek(self._file, 0, os.SEEK_END)
        self._size = valid_end

    def _read_or_fix_line_ids_from(self) -> int:
        """``line_ids_from`` as recorded; else the next sequence number, recorded durably now."""
        path = self.directory / LINE_IDS_FILE
        try:
            text = path.read_text("ascii")
        except FileNotFoundError:
            atomic_write(path, f"{self._next_seq}\n".encode("ascii"), mode=FILE_MODE)
            return self._next_seq
        except (OSError, UnicodeDecodeError) as exc:
            raise AgentStateError(self._line_ids_problem(path, f"cannot be read ({exc})")) from exc
        if not text.strip().isdecimal() or int(text) < 1:
            raise AgentStateError(self._line_ids_problem(path, f"holds {text[:40]!r}"))
        return int(text)

    def _line_ids_problem(self, path: Path, what: str) -> str:
        return (
            f"journal {self.source_id}: {path} {what}, not the journal position from which "
            "records use record-id scheme 2. Fix: restore the file from a backup, or write the "
            "sequence number the agent was upgraded at (the first unit journalled after the "
            "upgrade); never a lower one, or calls already delivered get new ids"
        )

    def _truncate_tail(self, path: Path, buf: bytes, valid_end: int) -> None:
        """Cut what follows the last intact unit: a crash tore it before ``fsync`` returned."""
        assert self._file is not None
        cut = max(len(buf) - valid_end, 0)
        self.stats.torn_tail_bytes += cut
        log.warning(
            "journal %s: torn tail of %d bytes truncated in %s (crash during a write)",
            self.source_id,
            cut,
            path.name,
        )
        if not buf.startswith(SEGMENT_MAGIC):  # torn while created, or a damaged header
            if len(buf) < len(SEGMENT_MAGIC):
                os.ftruncate(self._file, 0)
            os.pwrite(self._file, SEGMENT_MAGIC, 0)
        os.ftruncate(self._file, valid_end)
        os.fsync(self._file)

    def _start_segment(self, first_seq: int) -> None:
        """Create and fsync the next segment; the current one stays open until that worked."""
        path = self.directory / segment_name(first_seq)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)  # exact, whatever the umask
            if os.write(fd, SEGMENT_MAGIC) != len(SEGMENT_MAGIC):
                raise OSError(errno.ENOSPC, "short write of the segment header")
            os.fsync(fd)
            fsync_dir(self.directory)
        except BaseException:
            os.close(fd)
            if first_seq not in self._segments:  # never counted: nothing of it may remain
                path.unlink(missing_ok=True)
            raise
        if self._file is not None:
            os.close(self._file)
        self._file = fd
        self._size = len(SEGMENT_MAGIC)
        self._next_seq = first_seq
        if first_seq not in self._segments:
            self._segments.append(first_seq)
