"""Durable file operations: the one place that knows how to make a file or a rename survive a crash.

- ``atomic_write(path, data)``: readers see the old file or the whole new one, never a part. The
  bytes go to a temporary file in the same directory, are fsynced, renamed over ``path`` with
  ``os.replace``, and the directory is fsynced so the rename itself is durable. The temporary
  file is removed if anything fails. ``overwrite=False`` links the temporary file into place
  instead, so an existing ``path`` is an error (``FileExistsError``) and never replaced (keys);
  ``sync=False`` skips both fsyncs, for a file rewritten every few seconds whose loss in a
  crash costs nothing (the agent's ``health.json``).
- The file gets exactly ``mode`` (set with ``fchmod`` after creation, whatever the umask).
- ``durable_move(src, dst)``: a rename made durable in both directories.
- Temporary files are named ``.NAME.tmp-RANDOM``; ``remove_temporaries(dir)`` deletes leftovers
  of a crash.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from shared.crashpoints import crash_point

TEMP_MARK = ".tmp-"


def fsync_dir(path: Path) -> None:
    """Make a directory entry (a new, renamed or deleted file) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(
    path: Path, data: bytes, *, mode: int = 0o640, overwrite: bool = True, sync: bool = True
) -> None:
    temp = path.with_name(f".{path.name}{TEMP_MARK}{secrets.token_hex(4)}")
    try:
        _write_new(temp, data, mode=mode, sync=sync)
        if overwrite:
            temp.replace(path)
            crash_point("durable.renamed")
        else:
            os.link(temp, path)  # FileExistsError if path exists: never replaced
            temp.unlink()
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    if sync:
        fsync_dir(path.parent)


def _write_new(path: Path, data: bytes, *, mode: int, sync: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # exactly ``mode``: the umask may have masked bits the caller wants
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def durable_move(src: Path, dst: Path) -> None:
    src.replace(dst)
    fsync_dir(dst.parent)
    if src.parent != dst.parent:
        fsync_dir(src.parent)


def remove_temporaries(directory: Path) -> list[Path]:
    removed = [p for p in directory.glob(f".*{TEMP_MARK}*") if p.is_file()]
    for path in removed:
        path.unlink()
    if removed:
        fsync_dir(directory)
    return removed
