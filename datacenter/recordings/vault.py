"""Recordings at rest: audio encrypted with AES-256-GCM in chunks, readable at any byte offset.

A stored file (``<recordings.root>/<tenant_id>/<YYYY>/<MM>/<recording_id>.<kind>``) is::

    HEADER (36 bytes)   b"CCRA\x01\0\0\0" | key id (8) | nonce prefix (8) |
                        chunk size (4, big-endian) | plaintext size (8, big-endian)
    CHUNK 0..n-1        AES-GCM(key, nonce = prefix || index (4 bytes), chunk,
                        aad = HEADER || context || index || last-flag) + 16-byte tag

Why chunks: the portal serves HTTP Range requests (seeking in the player), and a chunk can be
decrypted alone, so a range costs the chunks it touches, not the whole file. Each chunk's tag
covers the header, the file's context (tenant and recording id: a file copied under another
recording or tenant does not open), its index (chunks cannot be reordered) and whether it is
the last (a file cut at a chunk boundary does not open). AES-GCM is ``cryptography``'s; only
the framing is ours. The nonce prefix is random per file, so a key encrypts at most 2^32
chunks per file under distinct nonces.

The key: 32 random bytes in ``keys.recordings_key`` (0600), made by ``ensure_recordings_key``
(`datacenter keys init`) and never replaced; the key id (first 8 bytes of its SHA-256) is in
every header, so a file encrypted under another key says so instead of failing as "damaged".
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.durable import fsync_dir
from shared.errors import ConfigError

MAGIC = b"CCRA\x01\x00\x00\x00"
KEY_BYTES = 32
CHUNK_BYTES = 64 * 1024
TAG_BYTES = 16
_HEADER = struct.Struct(">8s8s8sIQ")  # magic, key id, nonce prefix, chunk size, plaintext size
HEADER_BYTES = _HEADER.size
KEY_MODE = 0o600


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class VaultError(Exception):
    """A stored recording does not open: damaged, altered, moved, or under another key."""


@dataclass(frozen=True, slots=True)
class VaultKey:
    key: bytes

    @property
    def key_id(self) -> bytes:
        return hashlib.sha256(self.key).digest()[:8]


def ensure_recordings_key(path: Path) -> bool:
    """Make the key file if it does not exist (True); never replace one (O_EXCL)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_MODE)
    except FileExistsError:
        load_recordings_key(path)  # checks it
        return False
    with os.fdopen(fd, "wb") as fh:
        fh.write(os.urandom(KEY_BYTES))
        fh.flush()
        os.fsync(fh.fileno())
    fsync_dir(path.parent)
    return True


def load_recordings_key(path: Path) -> VaultKey:
    """The key in ``path``; a missing or malformed file is a ``ConfigError`` with the fix."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            "keys.recordings_key", f"{path} does not exist, so recordings cannot be stored or played",
            "run `datacenter keys init` (it adds the recordings key beside existing keys), or "
            "point keys.recordings_key at the data centre's recordings key",
        ) from None  # fmt: skip
    except OSError as exc:
        raise ConfigError("keys.recordings_key", f"cannot read {path}: {exc.strerror}",
                          "make it readable by the service user") from exc  # fmt: skip
    if len(data) != KEY_BYTES:
        raise ConfigError(
            "keys.recordings_key", f"{path} holds {len(data)} bytes, not a {KEY_BYTES}-byte key",
            "restore the key from a backup; a new key cannot open the recordings already stored",
        )  # fmt: skip
    return VaultKey(data)


def _context(tenant_id: int, recording_id: str, kind: str) -> bytes:
    return f"{tenant_id}/{recording_id}/{kind}".encode()


def _chunk_aad(header: bytes, context: bytes, index: int, last: bool) -> bytes:
    return header + context + struct.pack(">I?", index, last)


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + struct.pack(">I", index)


def encrypt_stream(
    source: Readable,
    size: int,
    target: BinaryIO,
    *,
    key: VaultKey,
    tenant_id: int,
    recording_id: str,
    kind: str,
) -> int:
    """Encrypt exactly ``size`` bytes read from ``source`` into ``target``; returns bytes written.

    Memory: one chunk. A source shorter than ``size`` raises ``VaultError``.
    """
    header = _HEADER.pack(MAGIC, key.key_id, os.urandom(8), CHUNK_BYTES, size)
    context = _context(tenant_id, recording_id, kind)
    aead = AESGCM(key.key)
    target.write(header)
    written, index, left = len(header), 0, size
    count = max(1, -(-size // CHUNK_BYTES))
    while index < count:
        chunk = source.read(min(CHUNK_BYTES, left))
        if len(chunk) != min(CHUNK_BYTES, left):
            raise VaultError(f"the source ended {left - len(chunk)} bytes early")
        left -= len(chunk)
        last = index == count - 1
        sealed = aead.encrypt(
            _nonce(header[16:24], index), chunk, _chunk_aad(header, context, index, last)
        )
        target.write(sealed)
        written += len(sealed)
        index += 1
    return written


def write_encrypted(
    path: Path,
    source: Readable,
    size: int,
    *,
    key: VaultKey,
    tenant_id: int,
    recording_id: str,
    kind: str,
) -> int:
    """``encrypt_stream`` into ``path`` atomically (temp file, fsync, rename, fsync the folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")  # never another writer's
    try:
        with temp.open("wb") as fh:
            written = encrypt_stream(source, size, fh, key=key, tenant_id=tenant_id,
                                     recording_id=recording_id, kind=kind)  # fmt: skip
            fh.flush()
            os.fsync(fh.fileno())
        temp.replace(path)
    finally:
        temp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return written


class DecryptingReader(io.RawIOBase):
    """The plaintext of a stored file, seekable: a read decrypts only the chunks it touches."""

    def __init__(
        self, fh: BinaryIO, *, key: VaultKey, tenant_id: int, recording_id: str, kind: str
    ) -> None:
        super().__init__()
        self._fh = fh
        self._header = fh.read(HEADER_BYTES)
        if len(self._header) != HEADER_BYTES:
            raise VaultError("the stored file is shorter than its header")
        magic, key_id, self._prefix, self._chunk, self.size = _HEADER.unpack(self._header)
        if magic != MAGIC:
            raise VaultError("not a stored recording (bad magic)")
        if key_id != key.key_id:
            raise VaultError(
                f"encrypted under another recordings key (id {key_id.hex()}, ours "
                f"{key.key_id.hex()}): keys.recordings_key is not the key it was stored with"
            )
        if self._chunk < 1:
            raise VaultError("the stored file's header is damaged")
        self._aead = AESGCM(key.key)
        self._context = _context(tenant_id, recording_id, kind)
        self._count = max(1, -(-self.size // self._chunk))
        self._position = 0
        self._cached: tuple[int, bytes] | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def _chunk_at(self, index: int) -> bytes:
        if self._cached is not None and self._cached[0] == index:
            return self._cached[1]
        self._fh.seek(HEADER_BYTES + index * (self._chunk + TAG_BYTES))
        sealed = self._fh.read(self._chunk + TAG_BYTES)
        last = index == self._count - 1
        try:
            plain = self._aead.decrypt(
                _nonce(self._prefix, index), sealed, _chunk_aad(self._header, self._context,
                                                                index, last),
            )  # fmt: skip
        except InvalidTag:
            raise VaultError(
                f"chunk {index} does not authenticate: the stored file is damaged, altered, "
                "or belongs to another recording"
            ) from None
        expected = self._chunk if not last else self.size - index * self._chunk
        if len(plain) != expected:
            raise VaultError(f"chunk {index} has {len(plain)} bytes, expected {expected}")
        self._cached = (index, plain)
        return plain

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        """Fill ``buffer`` across chunks as far as the plaintext goes (short only at the end)."""
        filled = 0
        while filled < len(buffer) and self._position < self.size:
            index, offset = divmod(self._position, self._chunk)
            piece = self._chunk_at(index)[offset : offset + len(buffer) - filled]
            buffer[filled : filled + len(piece)] = piece
            filled += len(piece)
            self._position += len(piece)
        return filled

    def close(self) -> None:
        self._fh.close()
        super().close()


def open_decrypted(
    path: Path, *, key: VaultKey, tenant_id: int, recording_id: str, kind: str
) -> DecryptingReader:
    fh = path.open("rb")
    try:
        return DecryptingReader(
            fh, key=key, tenant_id=tenant_id, recording_id=recording_id, kind=kind
        )
    except BaseException:
        fh.close()
        raise
