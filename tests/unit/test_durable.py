"""shared.durable.atomic_write: whole files or none, no temporary left, never-replace mode."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from shared.durable import TEMP_MARK, atomic_write, remove_temporaries


def test_replaces_the_whole_file_with_the_mode_asked(tmp_path: Path) -> None:
    path = tmp_path / "health.json"
    path.write_bytes(b"old contents, longer than the new")
    atomic_write(path, b"new", mode=0o600)
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 & ~_umask()
    assert [p.name for p in tmp_path.iterdir()] == ["health.json"]


def test_unsynced_write_is_still_whole(tmp_path: Path) -> None:
    path = tmp_path / "health.json"
    for text in (b"first", b"second"):
        atomic_write(path, text, sync=False)
    assert path.read_bytes() == b"second"
    assert [p.name for p in tmp_path.iterdir()] == ["health.json"]


def test_never_replace_refuses_an_existing_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "agent.key"
    atomic_write(path, b"key one", overwrite=False)
    with pytest.raises(FileExistsError):
        atomic_write(path, b"key two", overwrite=False)
    assert path.read_bytes() == b"key one"
    assert [p.name for p in tmp_path.iterdir()] == ["agent.key"]


def test_temporaries_left_by_a_crash_are_removed(tmp_path: Path) -> None:
    atomic_write(tmp_path / "batch", b"sealed")
    (tmp_path / f".batch{TEMP_MARK}dead").write_bytes(b"left by a crash")
    assert [p.name for p in remove_temporaries(tmp_path)] == [f".batch{TEMP_MARK}dead"]
    assert [p.name for p in tmp_path.iterdir()] == ["batch"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
