"""Rotating the data centre's envelope key with an overlap: `datacenter keys rotate-envelope`.

A new envelope key pair replaces ``keys.envelope_key`` and the envelope certificate in the
bundle (``keys.certificates``; the receipts certificate is kept). The current key is kept
beside it as ``previous-envelope.key`` / ``previous-envelope.pem`` with the end of the overlap
in ``previous-envelope.until`` (ISO 8601 UTC). Until then ingest also opens batches sealed for
the previous certificate (``previous_recipients``): those already sealed in the appliances'
outboxes, and those of agents that have not imported the new bundle yet. After it they are
quarantined like any batch for a foreign key. One rotation at a time: a second one is refused
while an overlap runs.

Crash window: the new key is written before the bundle that names it; if the process dies
between the two, ``datacenter keys show`` reports the mismatch and the rotation is repeated
from ``previous-envelope.key`` by hand (docs/operations.md).
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from datacenter.ingest.keys import DEFAULT_NAME
from datacenter.settings import KeysSettings
from shared.cms import Recipient
from shared.durable import atomic_write
from shared.errors import ConfigError
from shared.keys import (
    DatacentreCertificates,
    KeyFileError,
    certificate_pem,
    load_certificates,
    load_datacentre_keys,
    load_private_key,
    new_datacentre_keys,
    write_new_file,
)

PREVIOUS_KEY = "previous-envelope.key"
PREVIOUS_CERT = "previous-envelope.pem"
PREVIOUS_UNTIL = "previous-envelope.until"


def _paths(keys: KeysSettings) -> tuple[Path, Path, Path]:
    folder = keys.envelope_key.parent
    return folder / PREVIOUS_KEY, folder / PREVIOUS_CERT, folder / PREVIOUS_UNTIL


def rotate_envelope(
    keys: KeysSettings, *, overlap: timedelta, now: datetime | None = None
) -> DatacentreCertificates:
    """Make the new envelope key, keep the current one for ``overlap``; the new bundle."""
    now = now or datetime.now(UTC)
    key_path, cert_path, until_path = _paths(keys)
    running = overlap_end(keys)
    if running is not None and running > now:
        raise ConfigError(
            "keys.envelope_key",
            f"a rotation's overlap runs until {until_path.read_text().strip()}",
            "wait for it to end (or delete the previous-envelope.* files once every agent "
            "has sent what it sealed before) and rotate again",
        )
    for stale in (key_path, cert_path, until_path):
        stale.unlink(missing_ok=True)
    current = load_datacentre_keys(keys.envelope_key, keys.receipts_key, keys.certificates)
    fresh = new_datacentre_keys(DEFAULT_NAME)
    write_new_file(key_path, keys.envelope_key.read_bytes(), mode=0o600)
    write_new_file(cert_path, certificate_pem(current.certificates.envelope), mode=0o644)
    atomic_write(until_path, (now + overlap).isoformat().encode() + b"\n", mode=0o644)
    atomic_write(keys.envelope_key, _pem(fresh.envelope_key), mode=0o600)
    bundle = DatacentreCertificates(
        envelope=fresh.certificates.envelope, receipts=current.certificates.receipts
    )
    atomic_write(keys.certificates, bundle.to_pem(), mode=0o644)
    return bundle


def overlap_end(keys: KeysSettings) -> datetime | None:
    _key, _cert, until_path = _paths(keys)
    try:
        return datetime.fromisoformat(until_path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def previous_recipients(
    keys: KeysSettings, *, now: datetime | None = None
) -> tuple[Recipient, ...]:
    """The previous envelope key while its overlap runs; () otherwise."""
    end = overlap_end(keys)
    if end is None or (now or datetime.now(UTC)) >= end:
        return ()
    key_path, cert_path, _until = _paths(keys)
    return (_load_recipient(key_path, cert_path, key_path.stat().st_mtime),)


@functools.lru_cache(maxsize=4)
def _load_recipient(key_path: Path, cert_path: Path, _mtime: float) -> Recipient:
    """Loaded once per file version (``_mtime`` is the cache key), not once per batch."""
    key = load_private_key(key_path)
    (certificate,) = load_certificates(cert_path)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyFileError(f"{key_path} is not an RSA key: restore the previous envelope key")
    return Recipient(certificate, key)


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
