"""The data centre's keys: made once, published as a bundle, loaded by the ingest worker.

Contract:

- ``ensure_keys(paths)`` makes the data centre's two key pairs (``shared.keys``: RSA 3072 that
  batches are encrypted to, Ed25519 that signs receipts) when none of the three files exists,
  and otherwise only loads and checks them: a key is **never replaced** (``O_EXCL``), because a
  new envelope key makes every batch already sealed on the appliances unreadable. A partial set
  (a key lost) is refused with the fix rather than completed with a mismatched key.
- The recordings key (``datacenter.recordings.vault``: 32 random bytes, AES-256 for call
  recordings at rest) is made when it is missing, also where the other keys exist already (a
  data centre set up before recordings), and never replaced either.
- The private keys are written first (mode 0600, in a 0700 folder), the public bundle last, so
  a complete bundle means a complete set.
- ``load_ingest_keys(settings)`` is what an ingest worker calls at start. Without key files it
  returns None only when ``ingest.accept_unprotected`` is on (plain files can still be
  ingested, signed ones are quarantined and no receipts are written); otherwise it raises
  ``ConfigError`` naming `datacenter keys init`.

On disk (defaults, ``keys.*`` settings)::

    <data_dir>/keys/envelope.key                  RSA private key: decrypts batch files
    <data_dir>/keys/receipts.key                  Ed25519 private key: signs receipts
    <data_dir>/keys/datacentre-certificates.pem   both certificates: what every agent installs
    <data_dir>/keys/recordings.key                AES-256 key: call recordings at rest
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from datacenter.recordings.vault import ensure_recordings_key
from datacenter.settings import KeysSettings, Settings
from shared.errors import ConfigError
from shared.keys import (
    DatacentreCertificates,
    DatacentreKeys,
    KeyFileError,
    fingerprint,
    load_datacentre_keys,
    new_datacentre_keys,
    write_private_key,
    write_public_file,
)

log = logging.getLogger(__name__)

DEFAULT_NAME = "callcollect data centre"  # the certificates' organisation; names them for people
PRIVATE_DIR_MODE = 0o700


@dataclass(frozen=True, slots=True)
class KeysReport:
    """What ``ensure_keys`` found or made; everything in it is public."""

    certificates: DatacentreCertificates
    bundle: Path
    created: list[Path] = field(default_factory=list)

    def describe(self) -> list[str]:
        """Lines for an operator: what was made, where the bundle is, its fingerprints."""
        lines = [f"created {path}" for path in self.created]
        lines += [
            f"certificate bundle for agents: {self.bundle}",
            f"  envelope {fingerprint(self.certificates.envelope)}",
            f"  receipts {fingerprint(self.certificates.receipts)}",
            "Install the bundle on every appliance as delivery.datacentre_certificates and "
            "confirm these fingerprints with the site.",
        ]
        return lines


def ensure_keys(paths: KeysSettings, *, name: str = DEFAULT_NAME) -> KeysReport:
    """Make the keys if there are none; load and check them either way."""
    files = (paths.envelope_key, paths.receipts_key, paths.certificates)
    present = [path for path in files if path.exists()]
    created: list[Path] = []
    if not present:
        keys = new_datacentre_keys(name)
        for key_path in (paths.envelope_key, paths.receipts_key):
            key_path.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        write_private_key(paths.envelope_key, keys.envelope_key)
        write_private_key(paths.receipts_key, keys.receipts_key)
        write_public_file(paths.certificates, keys.certificates.to_pem())  # last: marks complete
        created = list(files)
    elif len(present) != len(files):
        missing = ", ".join(str(path) for path in files if path not in present)
        raise KeyFileError(
            f"the data centre's keys are incomplete: {missing} missing. Restore the set from a "
            "backup; only if it is lost, move the remaining files away and run `datacenter keys "
            "init` again (every agent must then install the new bundle, and batches sealed for "
            "the old key can no longer be read)"
        )
    if ensure_recordings_key(paths.recordings_key):  # also beside keys made before recordings
        created.append(paths.recordings_key)
    keys = load_datacentre_keys(paths.envelope_key, paths.receipts_key, paths.certificates)
    return KeysReport(certificates=keys.certificates, bundle=paths.certificates, created=created)


def load_ingest_keys(settings: Settings) -> DatacentreKeys | None:
    """The keys an ingest worker opens files and signs receipts with (see the module contract)."""
    paths = settings.keys
    if not any(p.exists() for p in (paths.envelope_key, paths.receipts_key, paths.certificates)):
        if settings.ingest.accept_unprotected:
            log.warning(
                "no data centre keys at %s: only unprotected batches can be ingested and no "
                "receipts are written; run `datacenter keys init`",
                paths.envelope_key.parent,
            )
            return None
        raise ConfigError(
            "keys.envelope_key",
            f"{paths.envelope_key} does not exist, so no batch can be opened",
            "run `datacenter keys init` (or `datacenter init`) and install its bundle on the "
            "agents, or point the keys.* settings at the data centre's keys",
        )
    return load_datacentre_keys(paths.envelope_key, paths.receipts_key, paths.certificates)
