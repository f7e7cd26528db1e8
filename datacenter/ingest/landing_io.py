"""File operations on the landing area that trust nothing an SFTP user can put there.

Whoever holds a landing key can plant symlinks, FIFOs, sockets, directories and huge files under
any name the worker looks at. So, in the landing area:

- An entry is opened with ``O_NOFOLLOW | O_NONBLOCK`` (``open_regular``) and judged by ``fstat``
  of what was opened: a symlink fails to open (ELOOP), a FIFO opens at once instead of waiting
  for a writer, and anything but a regular file is refused (``NotRegular``) before a byte is read.
- Reading is bounded: ``sha256_of`` streams, ``read_whole`` refuses more than it was told.
- ``move_entry`` moves the entry itself, never what it points to (``link`` without following,
  or ``rename``, which does not follow the last component), and never onto an existing name: a
  hard link claims the target name atomically; a directory (which cannot be linked) is renamed
  only to a name that does not exist (``rename`` can replace nothing but an empty directory).
- ``write_note`` creates a file with ``O_CREAT | O_EXCL | O_NOFOLLOW``: a planted
  ``NAME.reason`` (a symlink to a victim file, or anything else) is never written through.
- ``linked_folders`` names a tenant's landing folders that are not real directories (a
  symlinked ``quarantine/`` would send moves and notes elsewhere); the tenant is then skipped.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

READ_CHUNK = 1024 * 1024
MAX_MOVE_SUFFIX = 1000
NOTE_MODE = 0o640
OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
NOTE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class NotRegular(Exception):
    """A landing entry that is not a regular file; ``kind`` says what it is."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def kind_of(mode: int) -> str:
    """What an ``st_mode`` is, in words for a ``.reason`` file."""
    kinds = (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    )
    return next((word for test, word in kinds if test(mode)), "not a regular file")


def refusal(kind: str) -> str:
    """The reason an entry that is not a regular file is quarantined unread."""
    return (
        f"this is {kind}, not a regular file: ingest reads only regular files and follows no "
        "links in the landing area; nothing was read from it"
    )


def unreadable(exc: OSError) -> str:
    """The reason an entry that cannot be opened (permissions) is quarantined."""
    return (
        f"the file cannot be opened ({exc.strerror}): the ingest worker must be able to read "
        "what agents upload; check the landing area's ownership and modes, then move it back"
    )


@contextmanager
def open_regular(path: Path) -> Iterator[tuple[int, os.stat_result]]:
    """``(fd, fstat)`` of a regular file at ``path``, never following or blocking.

    Raises ``NotRegular`` for anything else, ``FileNotFoundError`` if it is gone. ``lstat``
    first, so a device or a FIFO is never even opened; the ``fstat`` of what was opened decides,
    in case the entry was swapped in between.
    """
    mode = os.lstat(path).st_mode
    if not stat.S_ISREG(mode):
        raise NotRegular(kind_of(mode))
    try:
        fd = os.open(path, OPEN_FLAGS)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR):
            raise NotRegular(kind_of(os.lstat(path).st_mode)) from exc
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegular(kind_of(info.st_mode))
        os.set_blocking(fd, True)
        yield fd, info
    finally:
        os.close(fd)


def sha256_of(fd: int) -> tuple[str, int]:
    """SHA-256 and length of the whole file behind ``fd``, in constant memory."""
    digest, size, offset = hashlib.sha256(), 0, 0
    while chunk := os.pread(fd, READ_CHUNK, offset):
        digest.update(chunk)
        size += len(chunk)
        offset += len(chunk)
    return digest.hexdigest(), size


def read_whole(fd: int, limit: int) -> bytes | None:
    """The file behind ``fd``; None if it holds more than ``limit`` bytes (not read further)."""
    parts: list[bytes] = []
    size = 0
    while chunk := os.pread(fd, min(READ_CHUNK, limit + 1 - size), size):
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            return None
    return b"".join(parts)


def linked_folders(tenant_dir: Path, folders: tuple[str, ...]) -> list[str]:
    """The tenant folder and those of ``folders`` under it that exist but are not directories.

    ``lstat``, so a symlink to a directory counts as what it is: a link.
    """
    bad: list[str] = []
    for path in (tenant_dir, *(tenant_dir / name for name in folders)):
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(mode):
            bad.append(f"{path} is {kind_of(mode)}")
    return bad


def write_note(path: Path, text: str) -> None:
    """Create ``path`` holding ``text``; ``FileExistsError`` if any entry has that name."""
    fd = os.open(path, NOTE_FLAGS, NOTE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


def move_entry(source: Path, folder: Path, name: str, *, note_suffix: str = "") -> Path | None:
    """Move the entry ``source`` into ``folder`` as ``name`` (or ``name.N``); None if it is gone.

    Neither the target nor, with ``note_suffix``, the target's note name may exist, so the note
    can be created beside the moved entry. An identical regular file already at the target
    absorbs the source (another worker moved it first).
    """
    folder.mkdir(parents=True, exist_ok=True)
    try:
        is_dir = stat.S_ISDIR(os.lstat(source).st_mode)
    except FileNotFoundError:
        return None
    for n in range(MAX_MOVE_SUFFIX):
        target = folder / (name if n == 0 else f"{name}.{n}")
        if note_suffix and os.path.lexists(target.with_name(target.name + note_suffix)):
            continue
        try:
            moved = _rename_new(source, target) if is_dir else _link_new(source, target)
        except FileNotFoundError:
            return None
        if moved:
            return target
    raise OSError(f"{folder} already holds {MAX_MOVE_SUFFIX} different entries named {name}")


def _link_new(source: Path, target: Path) -> bool:
    """Hard-link the entry itself (not what a symlink points to) to ``target``, drop ``source``.

    False if ``target`` is taken by something else.
    """
    try:
        os.link(source, target, follow_symlinks=False)
    except FileExistsError:
        if not same_file_content(source, target):
            return False
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP):
            raise
        return _rename_new(source, target)  # no hard links here: accept the tiny race
    source.unlink(missing_ok=True)
    return True


def _rename_new(source: Path, target: Path) -> bool:
    """``rename`` to a name that does not exist; False if it does."""
    if os.path.lexists(target):
        return False
    source.rename(target)  # rename does not follow a link in its last component
    return True


def same_file_content(a: Path, b: Path) -> bool:
    """Whether two regular files hold the same bytes (or are one file); compared in chunks."""
    try:
        with open_regular(a) as (fd_a, info_a), open_regular(b) as (fd_b, info_b):
            if (info_a.st_dev, info_a.st_ino) == (info_b.st_dev, info_b.st_ino):
                return True
            if info_a.st_size != info_b.st_size:
                return False
            offset = 0
            while chunk := os.pread(fd_a, READ_CHUNK, offset):
                if os.pread(fd_b, len(chunk), offset) != chunk:
                    return False
                offset += len(chunk)
            return True
    except NotRegular:
        return False
