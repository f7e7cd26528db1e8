"""Rotating the appliance's batch-signing key without a gap: `edge-agent enroll --new-key`.

1. ``prepare_next_key`` makes ``STATE/identity/next/agent.key`` + ``agent.crt`` (once; again
   only reports) while the agent keeps signing with its current key.
2. The data centre pins the new certificate with `datacenter agent rotate`, which keeps
   accepting the current one for an overlap.
3. ``switch_to_next_key`` (`edge-agent enroll --use-new-key`, then restart the agent) moves the
   current pair to ``identity/previous/`` and the next pair into place. Batches still in the
   outbox were signed with the previous key and are accepted during the overlap.

A switch interrupted half way (current pair moved, next not yet) is finished by running it
again; the previous pair is kept for support, never used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge_agent.config import AgentSettings
from edge_agent.delivery.enrollment import AGENT_CERT_FILE, AGENT_KEY_FILE, identity_paths
from shared import keys
from shared.keys import KeyFileError

NEXT_DIR = "next"
PREVIOUS_DIR = "previous"


@dataclass(frozen=True, slots=True)
class NextKey:
    certificate_path: Path
    certificate_pem: str
    fingerprint: str
    created: bool


def _pair(folder: Path) -> tuple[Path, Path]:
    return folder / AGENT_KEY_FILE, folder / AGENT_CERT_FILE


def prepare_next_key(settings: AgentSettings) -> NextKey:
    key_path, _cert = identity_paths(settings.agent.state_dir)
    next_key, next_cert = _pair(key_path.parent / NEXT_DIR)
    created = not next_key.exists()
    if created:
        next_key.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        identity = keys.new_agent_identity(settings.agent.id)
        keys.write_private_key(next_key, identity.private_key)
        keys.write_public_file(next_cert, keys.certificate_pem(identity.certificate))
    identity = keys.load_agent_identity(next_key, next_cert)
    return NextKey(
        certificate_path=next_cert,
        certificate_pem=keys.certificate_pem(identity.certificate).decode(),
        fingerprint=keys.fingerprint(identity.certificate),
        created=created,
    )


def switch_to_next_key(settings: AgentSettings) -> tuple[str, str]:
    """Make the prepared key current; (previous, new) certificate fingerprints."""
    key_path, cert_path = identity_paths(settings.agent.state_dir)
    next_key, next_cert = _pair(key_path.parent / NEXT_DIR)
    old_key, old_cert = _pair(key_path.parent / PREVIOUS_DIR)
    if not (next_key.exists() or next_cert.exists()):
        raise KeyFileError(
            f"no new key prepared ({next_key}): run `edge-agent enroll --new-key` first and "
            "have the data centre pin its certificate with `datacenter agent rotate`"
        )
    if next_key.exists() and next_cert.exists() and key_path.exists():
        old_key.parent.mkdir(mode=0o700, exist_ok=True)
        key_path.replace(old_key)
        cert_path.replace(old_cert)
    # Each step is a rename, and a step already done is skipped: an interrupted switch is
    # finished by running it again.
    for prepared, current in ((next_cert, cert_path), (next_key, key_path)):
        if prepared.exists():
            prepared.replace(current)
    previous = keys.fingerprint(keys.load_agent_identity(old_key, old_cert).certificate)
    new = keys.fingerprint(keys.load_agent_identity(key_path, cert_path).certificate)
    return previous, new
