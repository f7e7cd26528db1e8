"""Recordings at rest: AES-GCM chunks that open only with the key, in place, in order, whole."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datacenter.recordings.vault import (
    CHUNK_BYTES,
    HEADER_BYTES,
    TAG_BYTES,
    VaultError,
    VaultKey,
    encrypt_stream,
    ensure_recordings_key,
    load_recordings_key,
    open_decrypted,
    write_encrypted,
)
from shared.errors import ConfigError

KEY = VaultKey(bytes(range(32)))
CONTEXT = {"tenant_id": 1, "recording_id": "rec-1", "kind": "wav"}


def stored(tmp_path: Path, plain: bytes) -> Path:
    path = tmp_path / "1" / "rec-1.wav"
    write_encrypted(path, io.BytesIO(plain), len(plain), key=KEY, **CONTEXT)  # type: ignore[arg-type]
    return path


@settings(max_examples=60, deadline=None)
@given(size=st.integers(0, 3 * CHUNK_BYTES + 5), start=st.integers(0, 4 * CHUNK_BYTES),
       length=st.integers(0, 2 * CHUNK_BYTES))  # fmt: skip
def test_any_range_reads_back_exactly(tmp_path_factory: pytest.TempPathFactory, size: int,
                                      start: int, length: int) -> None:  # fmt: skip
    plain = os.urandom(size)
    path = stored(tmp_path_factory.mktemp("vault"), plain)
    assert path.stat().st_size == HEADER_BYTES + max(1, -(-size // CHUNK_BYTES)) * TAG_BYTES + size
    with open_decrypted(path, key=KEY, **CONTEXT) as reader:  # type: ignore[arg-type]
        assert reader.size == size
        reader.seek(start)
        assert reader.read(length) == plain[start : start + length]


def test_the_file_opens_only_with_its_key_context_and_every_bit(tmp_path: Path) -> None:
    plain = b"RIFF" + os.urandom(CHUNK_BYTES * 2)
    path = stored(tmp_path, plain)
    assert b"RIFF" not in path.read_bytes()
    with pytest.raises(VaultError, match="another recordings key"):
        open_decrypted(path, key=VaultKey(bytes(32)), **CONTEXT)  # type: ignore[arg-type]
    moved = {**CONTEXT, "recording_id": "rec-2"}
    with pytest.raises(VaultError, match="does not authenticate"), \
            open_decrypted(path, key=KEY, **moved) as reader:  # type: ignore[arg-type]  # fmt: skip
        reader.read()
    data = path.read_bytes()
    for where in (HEADER_BYTES - 1, HEADER_BYTES + 10, len(data) - 1):
        flipped = bytearray(data)
        flipped[where] ^= 1
        path.write_bytes(bytes(flipped))
        with pytest.raises(VaultError), open_decrypted(path, key=KEY, **CONTEXT) as reader:  # type: ignore[arg-type]
            reader.read()
    # cut at a chunk boundary: the last remaining chunk is not marked last
    path.write_bytes(data[: HEADER_BYTES + CHUNK_BYTES + TAG_BYTES])
    with pytest.raises(VaultError), open_decrypted(path, key=KEY, **CONTEXT) as reader:  # type: ignore[arg-type]
        reader.read()


def test_a_short_source_is_refused(tmp_path: Path) -> None:
    with pytest.raises(VaultError, match="early"):
        encrypt_stream(io.BytesIO(b"abc"), 10, io.BytesIO(), key=KEY, **CONTEXT)  # type: ignore[arg-type]


def test_the_key_is_made_once_and_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "recordings.key"
    with pytest.raises(ConfigError, match=r"keys\.recordings_key"):
        load_recordings_key(path)
    assert ensure_recordings_key(path) is True
    first = path.read_bytes()
    assert ensure_recordings_key(path) is False and path.read_bytes() == first
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    path.write_bytes(b"short")
    with pytest.raises(ConfigError, match="restore the key"):
        load_recordings_key(path)
