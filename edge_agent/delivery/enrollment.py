"""The appliance's credentials: made once by ``edge-agent enroll``, loaded by the service.

Contract:

- ``enroll(settings)`` creates whatever is missing and never replaces what exists (keys are
  written with ``O_EXCL``): the SSH key of the SFTP login (``uplink.private_key``, OpenSSH
  Ed25519, and its ``.pub``), and the batch-signing identity in ``STATE/identity/``
  (``agent.key``, ECDSA P-256, mode 0600; ``agent.crt``, self-signed, CN = agent id). Running it
  again only reports. What the data centre needs (the SSH public key and the certificate, both
  public) is returned for printing.
- ``load_delivery(settings)`` gives the service what sealing and receipts need: the ``protect``
  function for protection ``cms`` (sign with the agent's identity, encrypt to the data centre's
  envelope certificate) and the data centre's receipts certificate, whenever
  ``delivery.datacentre_certificates`` is set. A missing or wrong file is a ``KeyFileError``
  naming the file and the fix.

On disk::

    STATE/identity/agent.key     private, 0600: signs batches; never leaves the appliance
    STATE/identity/agent.crt     public: the data centre pins its fingerprint at enrolment
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from edge_agent.config import AgentSettings
from edge_agent.delivery.batches import Protect
from shared import cms, keys
from shared.enrolment import EnrolmentRequest
from shared.keys import KeyFileError

IDENTITY_DIR = "identity"
AGENT_KEY_FILE = "agent.key"
AGENT_CERT_FILE = "agent.crt"


@dataclass(frozen=True, slots=True)
class Enrolment:
    """What ``enroll`` found or made; everything in it is public."""

    agent_id: str
    tenant: str
    ssh_public_key: str  # one authorized_keys line
    certificate_path: Path
    certificate_pem: str
    certificate_fingerprint: str
    created: list[Path] = field(default_factory=list)
    datacentre: keys.DatacentreCertificates | None = None  # when already installed


@dataclass(frozen=True, slots=True)
class DeliveryKeys:
    protect: Protect | None  # None: protection "none"
    receipts_certificate: x509.Certificate | None  # None: receipts cannot be verified, not read


def identity_paths(state_dir: Path) -> tuple[Path, Path]:
    directory = state_dir / IDENTITY_DIR
    return directory / AGENT_KEY_FILE, directory / AGENT_CERT_FILE


def enroll(settings: AgentSettings) -> Enrolment:
    created: list[Path] = []
    ssh_key = settings.uplink.private_key
    if not ssh_key.exists():
        _write_ssh_key(ssh_key, comment=settings.agent.id)
        created += [ssh_key, _pub(ssh_key)]
    key_path, cert_path = identity_paths(settings.agent.state_dir)
    if not key_path.exists():
        if cert_path.exists():
            raise KeyFileError(
                f"{cert_path} exists without its key {key_path}: move the certificate away and "
                "enrol again (the data centre must then enrol the new certificate)"
            )
        identity = keys.new_agent_identity(settings.agent.id)
        keys.write_private_key(key_path, identity.private_key)
        keys.write_public_file(cert_path, keys.certificate_pem(identity.certificate))
        created += [key_path, cert_path]
    identity = keys.load_agent_identity(key_path, cert_path)
    bundle = settings.delivery.datacentre_certificates
    return Enrolment(
        agent_id=settings.agent.id,
        tenant=settings.agent.tenant,
        ssh_public_key=_ssh_public_line(ssh_key, comment=settings.agent.id),
        certificate_path=cert_path,
        certificate_pem=keys.certificate_pem(identity.certificate).decode(),
        certificate_fingerprint=keys.fingerprint(identity.certificate),
        created=created,
        datacentre=keys.load_datacentre_certificates(bundle)
        if bundle and bundle.exists()
        else None,
    )


def request_line(enrolment: Enrolment) -> str:
    """The one-line request `datacenter agent approve` takes (``shared.enrolment``)."""
    return EnrolmentRequest(
        tenant=enrolment.tenant,
        agent_id=enrolment.agent_id,
        certificate=x509.load_pem_x509_certificate(enrolment.certificate_pem.encode("ascii")),
        ssh_public_key=enrolment.ssh_public_key,
    ).to_line()


def load_delivery(settings: AgentSettings) -> DeliveryKeys:
    bundle_path = settings.delivery.datacentre_certificates
    bundle = keys.load_datacentre_certificates(bundle_path) if bundle_path else None
    protect: Protect | None = None
    if settings.delivery.protection == cms.PROTECTION:
        assert bundle is not None, "config validation requires the bundle for cms"
        key_path, cert_path = identity_paths(settings.agent.state_dir)
        if not key_path.exists():
            raise KeyFileError(
                f'delivery.protection is "cms" but this appliance has no signing key '
                f"({key_path}): run `edge-agent enroll` and have the data centre enrol the "
                "certificate it prints"
            )
        identity = keys.load_agent_identity(key_path, cert_path)
        protect = functools.partial(cms.protect, signer=identity, recipient=bundle.envelope)
    return DeliveryKeys(protect, bundle.receipts if bundle else None)


def _write_ssh_key(path: Path, *, comment: str) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),  # unattended: the file mode protects it (as ssh-keygen -N '')
    )
    keys.write_new_file(path, private, mode=0o600)
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    keys.write_public_file(_pub(path), public + f" {comment}\n".encode())


def _ssh_public_line(private_key: Path, *, comment: str) -> str:
    pub = _pub(private_key)
    if pub.exists():
        return pub.read_text().strip()
    try:
        key = serialization.load_ssh_private_key(private_key.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise KeyFileError(
            f"cannot read the uplink private key {private_key}: {exc}; use an OpenSSH key "
            "without a passphrase, or move it away and enrol again to make one"
        ) from exc
    line = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return f"{line.decode()} {comment}"


def _pub(private_key: Path) -> Path:
    return private_key.with_name(private_key.name + ".pub")
