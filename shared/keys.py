"""Keys and certificates for sealed batches and receipts: make them, store them, name them.

Who holds what (docs/delivery.md has the full picture)::

    agent (appliance)                      data centre
    ─────────────────                      ───────────
    agent.key     ECDSA P-256, private     envelope.key  RSA 3072, private: decrypts batches
    agent.crt     self-signed, public ───► stored per agent at enrolment (fingerprint pinned)
                                    ◄───── envelope.crt  RSA 3072, keyEncipherment: batches are
                                                         encrypted to it
                                    ◄───── receipts.crt  Ed25519, digitalSignature: receipts are
                                                         verified against it
                                           receipts.key  Ed25519, private: signs receipts

The two data-centre certificates travel to the agent as one PEM bundle
(``DatacentreCertificates``); each is recognised by its key type, so one key never both
decrypts and signs. Certificates are self-signed and trusted by pinning (an exact SHA-256
fingerprint), not by a CA chain, and their validity dates are not enforced when batches are
opened: an appliance clock that is hours off must not make a batch unreadable.

Private keys are written once, mode 0600, never overwritten (``O_EXCL``): losing a key to a
typo'd command would make batches unreadable or orphan an enrolled agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from shared.clock import utc_now
from shared.durable import atomic_write
from shared.errors import CallCollectError, ConfigError

AGENT_CURVE = ec.SECP256R1()
ENVELOPE_RSA_BITS = 3072  # NIST SP 800-57: 128-bit security, like AES-128 and P-256
CERTIFICATE_YEARS = 25  # pinned by fingerprint; rotation is a re-enrolment, not an expiry
CLOCK_SLACK = timedelta(days=1)  # not_valid_before: an appliance clock slightly behind is fine
FINGERPRINT_PREFIX = "sha256:"

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


class KeyFileError(ConfigError):
    """A key or certificate file is missing, unreadable or of the wrong kind.

    The message names the file and what is wrong with it; the setting that names the file is
    the key to fix (``key`` says which, when the raiser knows it).
    """

    exit_code = 2

    def __init__(self, message: str, *, key: str = "") -> None:
        self.key = key
        self.problem = message
        self.fix = ""
        CallCollectError.__init__(self, message)  # the message already says what to do


@dataclass(frozen=True, slots=True)
class AgentIdentity:
    """The agent's batch-signing key and its self-signed certificate."""

    private_key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate


@dataclass(frozen=True, slots=True)
class DatacentreCertificates:
    """What an agent pins of the data centre: whom to encrypt to, whose receipts to believe."""

    envelope: x509.Certificate  # RSA: batches are encrypted to it
    receipts: x509.Certificate  # Ed25519: receipts are signed with its key

    @classmethod
    def from_pem(cls, data: bytes, *, where: str = "the bundle") -> DatacentreCertificates:
        try:
            certificates = x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            raise KeyFileError(f"{where} holds no readable PEM certificate: {exc}") from exc
        envelope = [c for c in certificates if isinstance(c.public_key(), rsa.RSAPublicKey)]
        receipts = [c for c in certificates if isinstance(c.public_key(), ed25519.Ed25519PublicKey)]
        if len(certificates) != 2 or len(envelope) != 1 or len(receipts) != 1:
            raise KeyFileError(
                f"{where} must hold exactly two certificates, one RSA (batch encryption) and one "
                f"Ed25519 (receipts); found {len(certificates)}, of them {len(envelope)} RSA and "
                f"{len(receipts)} Ed25519: "
                "install the file the data centre published (`datacentre-certificates.pem`)"
            )
        return cls(envelope=envelope[0], receipts=receipts[0])

    def to_pem(self) -> bytes:
        return certificate_pem(self.envelope) + certificate_pem(self.receipts)


@dataclass(frozen=True, slots=True)
class DatacentreKeys:
    """The data centre's private halves with their certificates."""

    envelope_key: rsa.RSAPrivateKey
    receipts_key: ed25519.Ed25519PrivateKey
    certificates: DatacentreCertificates


# --- naming ----------------------------------------------------------------------------------


def fingerprint(certificate: x509.Certificate) -> str:
    """``sha256:`` and the lower-case hex SHA-256 of the DER certificate (as openssl shows it)."""
    return FINGERPRINT_PREFIX + certificate.fingerprint(hashes.SHA256()).hex()


def certificate_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def common_name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = names[0].value if names else ""
    return value if isinstance(value, str) else value.decode(errors="replace")


# --- making ----------------------------------------------------------------------------------


def new_agent_identity(agent_id: str, *, now: datetime | None = None) -> AgentIdentity:
    """A fresh P-256 key and a self-signed certificate naming the agent (CN=agent_id)."""
    key = ec.generate_private_key(AGENT_CURVE)
    cert = _self_signed(key, agent_id, "callcollect agent", signing=True, now=now)
    return AgentIdentity(private_key=key, certificate=cert)


def new_datacentre_keys(name: str, *, now: datetime | None = None) -> DatacentreKeys:
    """A fresh RSA envelope key and Ed25519 receipts key, each with a self-signed certificate."""
    envelope_key = rsa.generate_private_key(public_exponent=65537, key_size=ENVELOPE_RSA_BITS)
    receipts_key = ed25519.Ed25519PrivateKey.generate()
    return DatacentreKeys(
        envelope_key=envelope_key,
        receipts_key=receipts_key,
        certificates=DatacentreCertificates(
            envelope=_self_signed(envelope_key, f"{name} batch envelope", name, signing=False,
                                  now=now),
            receipts=_self_signed(receipts_key, f"{name} receipts", name, signing=True, now=now),
        ),
    )  # fmt: skip


def _self_signed(
    key: PrivateKey,
    cn: str,
    organisation: str,
    *,
    signing: bool,
    now: datetime | None,
) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        ]
    )
    start = (now or utc_now()) - CLOCK_SLACK
    usage = x509.KeyUsage(
        digital_signature=signing, content_commitment=False, key_encipherment=not signing,
        data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=365 * CERTIFICATE_YEARS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    # Ed25519 signs the message itself: no separate hash algorithm
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm)


# --- files -----------------------------------------------------------------------------------


def write_private_key(path: Path, key: PrivateKey) -> None:
    """PKCS#8 PEM, mode 0600, refusing to replace an existing file."""
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),  # unattended service; the file mode protects it
    )
    write_new_file(path, data, mode=0o600)


def write_public_file(path: Path, data: bytes) -> None:
    """A certificate or bundle: world-readable, refusing to replace an existing file."""
    write_new_file(path, data, mode=0o644)


def write_new_file(path: Path, data: bytes, *, mode: int) -> None:
    """Create ``path`` with ``data`` durably; an existing file is an error, never replaced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        atomic_write(path, data, mode=mode, overwrite=False)
    except FileExistsError as exc:
        raise KeyFileError(
            f"{path} already exists; keys are never overwritten (move it away first if you "
            "really mean to replace it, and re-enrol)"
        ) from exc


def load_private_key(path: Path) -> PrivateKey:
    data = _read(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path} is not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey |
                      ed25519.Ed25519PrivateKey):  # fmt: skip
        raise KeyFileError(f"{path} holds a {type(key).__name__}; expected EC, RSA or Ed25519")
    return key


def load_certificates(path: Path) -> list[x509.Certificate]:
    data = _read(path, "certificate")
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise KeyFileError(f"{path} holds no readable PEM certificate: {exc}") from exc


def load_agent_identity(key_path: Path, certificate_path: Path) -> AgentIdentity:
    key = load_private_key(key_path)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyFileError(f"{key_path} is not an EC key; the agent signs batches with ECDSA")
    (cert, *_) = load_certificates(certificate_path)
    _check_pair(key, cert, key_path, certificate_path)
    return AgentIdentity(private_key=key, certificate=cert)


def load_datacentre_certificates(path: Path) -> DatacentreCertificates:
    return DatacentreCertificates.from_pem(_read(path, "certificate bundle"), where=str(path))


def load_datacentre_keys(
    envelope_key: Path, receipts_key: Path, certificates: Path
) -> DatacentreKeys:
    bundle = load_datacentre_certificates(certificates)
    env, rec = load_private_key(envelope_key), load_private_key(receipts_key)
    if not isinstance(env, rsa.RSAPrivateKey):
        raise KeyFileError(f"{envelope_key} must be the RSA envelope key")
    if not isinstance(rec, ed25519.Ed25519PrivateKey):
        raise KeyFileError(f"{receipts_key} must be the Ed25519 receipts key")
    _check_pair(env, bundle.envelope, envelope_key, certificates)
    _check_pair(rec, bundle.receipts, receipts_key, certificates)
    return DatacentreKeys(envelope_key=env, receipts_key=rec, certificates=bundle)


def _check_pair(
    key: PrivateKey,
    cert: x509.Certificate,
    key_path: Path,
    cert_path: Path,
) -> None:
    raw = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, raw) != cert.public_key().public_bytes(der, raw):
        raise KeyFileError(f"{key_path} is not the private key of the certificate in {cert_path}")


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise KeyFileError(f"the {what} {path} does not exist") from exc
    except OSError as exc:
        raise KeyFileError(f"cannot read the {what} {path}: {exc.strerror or exc}") from exc
