"""CMS protection of batch files: signed by the agent, encrypted to the data centre.

A protected batch file (protection ``cms``) is standard CMS (RFC 5652), DER-encoded, and holds
the unchanged CCB1 bytes of ``shared.envelope`` inside two layers::

    ContentInfo  EnvelopedData                 ← the file on disk; opaque without envelope.key
      recipient  RSA key transport (RSAES-OAEP, SHA-256, MGF1-SHA-256) to the data centre's
                 envelope certificate, named by issuer and serial number
      content    AES-256-CBC of:
        ContentInfo  SignedData
          content      the CCB1 bytes (magic, manifest line, gzip payload)
          certificate  the agent's certificate (ECDSA P-256)
          signer       SHA-256 digest; signed attributes content-type, message-digest,
                       signing-time; ECDSA signature over them

Sign-then-encrypt: the signature is inside, so the landing area learns nothing, not even the
agent's identity, and the data centre checks who signed *what it decrypted*. ``openssl cms``
reads it (docs/delivery.md shows the commands): ``-decrypt`` with the envelope key gives the
SignedData, ``-verify`` with the agent's certificate as ``-CAfile`` gives the CCB1 bytes.

Opening (``unprotect``) raises ``EnvelopeError`` naming the reason for every defect: not CMS,
not encrypted to this data centre, damaged (any changed bit: AES-CBC alone is malleable, so
the signature inside is what detects tampering, and every field outside it is checked against
the one value we write), signed by a certificate the data centre has not enrolled, or a bad
signature. Validity dates are not checked: agent certificates are pinned by fingerprint.

Key transport is OAEP. cryptography's CMS builder offers only PKCS #1 v1.5 (``add_recipient``
takes no padding), whose decryption is a padding oracle by design; so the outer layer is
assembled with asn1crypto's CMS types around cryptography's primitives (RSA-OAEP, AES-CBC,
PKCS #7 padding) and decrypted the same way, with one message for every failure. Files from
agents older than this (PKCS #1 v1.5) are still opened, by cryptography's own decryption, so a
fleet can be upgraded agent by agent; ``ENVELOPE_KEY_TRANSPORTS`` names both.

cryptography signs CMS but cannot verify a SignedData, so the verification is ours, on
asn1crypto's parse: exactly one signer, its certificate in the message and pinned, the
message-digest attribute equal to SHA-256 of the content, and the signature over the DER of the
signed attributes (re-tagged as SET OF, RFC 5652 §5.4) verified by cryptography.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asn1crypto import algos as asn1_algos
from asn1crypto import cms as asn1_cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import pkcs7

from shared.envelope import Batch, BatchLimits, open_batch
from shared.errors import EnvelopeError
from shared.keys import AgentIdentity, common_name, fingerprint

PROTECTION = "cms"
MAX_REASON_CHARS = 120
DER_SEQUENCE = 0x30  # every DER ContentInfo starts with it; CCB1 starts with "C"
_SIGNATURE_OPTIONS = [pkcs7.PKCS7Options.Binary, pkcs7.PKCS7Options.NoCapabilities]
OAEP = "rsaes_oaep"
LEGACY_PKCS1V15 = "rsaes_pkcs1v15"  # what agents before OAEP wrote; still opened
ENVELOPE_KEY_TRANSPORTS = (OAEP, LEGACY_PKCS1V15)
_CEK_BYTES = 32  # AES-256
_IV_BYTES = 16
_OAEP_PADDING = rsa_padding.OAEP(
    mgf=rsa_padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
)
_OAEP_PARAMETERS = {
    "hash_algorithm": {"algorithm": "sha256"},
    "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "sha256"}},
}


@dataclass(frozen=True, slots=True)
class Recipient:
    """The data centre's envelope certificate with its private key."""

    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey


@dataclass(frozen=True, slots=True)
class Unprotected:
    """What a verified envelope held, and who signed it."""

    content: bytes
    signer_fingerprint: str  # shared.keys.fingerprint of the signer's certificate
    signer_name: str  # its common name (the agent id it was issued for)
    signed_at: datetime | None  # the signing-time attribute: the agent's clock, for display only


@dataclass(frozen=True, slots=True)
class LandedBatch:
    """A landed batch file, opened: its records, and how it was protected and by whom."""

    batch: Batch
    protection: str  # "cms" or "none"
    signer_fingerprint: str | None  # None for an unprotected file


def open_landed(
    data: bytes,
    *,
    recipient: Recipient | None,
    trusted_signers: Collection[str],
    accept_unprotected: bool = False,
    limits: BatchLimits | None = None,
    previous: Sequence[Recipient] = (),
) -> LandedBatch:
    """Open a landed batch file of either protection; the data centre's one call.

    A CMS file is decrypted with ``recipient`` and must be signed by one of ``trusted_signers``
    (the fingerprints enrolled for the agent named in the file name). A plain CCB1 file is
    accepted only with ``accept_unprotected`` (an agent not yet switched to ``cms``); otherwise
    it is refused, so a stolen SFTP key alone cannot inject calls. ``limits``: as ``open_batch``.
    ``previous``: envelope keys still accepted during a rotation's overlap; the one the file
    names is used.
    """
    opened = open_protected(
        data, recipient=recipient, trusted_signers=trusted_signers,
        accept_unprotected=accept_unprotected, previous=previous,
    )  # fmt: skip
    return LandedBatch(open_batch(opened.content, limits), opened.protection, opened.signer)


@dataclass(frozen=True, slots=True)
class OpenedFile:
    """The content of a landed file, whatever it carries (a CCB1 batch, a recordings tar)."""

    content: bytes
    protection: str  # "cms" or "none"
    signer: str | None  # the signer's fingerprint; None for an unprotected file


def open_protected(
    data: bytes,
    *,
    recipient: Recipient | None,
    trusted_signers: Collection[str],
    accept_unprotected: bool = False,
    previous: Sequence[Recipient] = (),
) -> OpenedFile:
    """Decrypt and verify a landed file (see ``open_landed``) without reading its content."""
    if is_protected(data):
        if recipient is not None and previous:
            recipient = _addressed(data, [recipient, *previous])
        if recipient is None:
            raise EnvelopeError(
                "a CMS-protected file arrived but the data centre has no envelope key configured"
            )
        opened = unprotect(data, recipient=recipient, trusted_signers=trusted_signers)
        return OpenedFile(opened.content, PROTECTION, opened.signer_fingerprint)
    if not accept_unprotected:
        raise EnvelopeError(
            "unprotected batch refused: this data centre accepts only signed, encrypted (cms) "
            'batches; set delivery.protection = "cms" on the agent'
        )
    return OpenedFile(data, "none", None)


def _addressed(data: bytes, recipients: Sequence[Recipient]) -> Recipient:
    """The recipient whose certificate the envelope names; the first when none (or damaged)."""
    try:
        rid = asn1_cms.ContentInfo.load(data)["content"]["recipient_infos"][0].chosen["rid"]
        issuer, serial = rid.chosen["issuer"].dump(force=True), rid.chosen["serial_number"].native
    except Exception:  # asn1crypto parses lazily; the full checks report the damage
        return recipients[0]
    for candidate in recipients:
        cert = asn1_x509.Certificate.load(
            candidate.certificate.public_bytes(serialization.Encoding.DER)
        )
        if cert.issuer.dump(force=True) == issuer and cert.serial_number == serial:
            return candidate
    return recipients[0]


def is_protected(data: bytes) -> bool:
    """True when ``data`` looks like a CMS file rather than a plain CCB1 batch."""
    return bool(data) and data[0] == DER_SEQUENCE


def protect(content: bytes, *, signer: AgentIdentity, recipient: x509.Certificate) -> bytes:
    """Sign ``content`` with the agent's key, then encrypt it to the data centre's certificate."""
    return _envelope(sign(content, signer=signer), recipient)


def sign(content: bytes, *, signer: AgentIdentity) -> bytes:
    """CMS SignedData (DER) of ``content``, not encrypted: what heartbeats travel in.

    The inner layer of ``protect``; ``openssl cms -verify -inform DER -CAfile agent.crt``
    checks it and prints the content.
    """
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(content)
        .add_signer(signer.certificate, signer.private_key, hashes.SHA256())
        .sign(serialization.Encoding.DER, _SIGNATURE_OPTIONS)
    )


def verify_signed(data: bytes, *, trusted_signers: Collection[str]) -> Unprotected:
    """The content of a ``sign``-ed file, if signed by one of ``trusted_signers``."""
    signed_data = _signed_data(data)
    content = _content(signed_data)
    signer_info = _single_signer(signed_data)
    cert = _signer_certificate(signed_data, signer_info)
    signed_at = _verify_signer(signer_info, cert, content)
    print_ = fingerprint(cert)
    if print_ not in trusted_signers:
        raise EnvelopeError(
            f"signed by certificate {print_} (CN={common_name(cert)!r}), which is not enrolled "
            "for this agent"
        )
    return Unprotected(content, print_, common_name(cert), signed_at)


def _envelope(signed: bytes, recipient: x509.Certificate) -> bytes:
    """EnvelopedData (RFC 5652 §6) with one OAEP key-transport recipient (RFC 3560)."""
    public_key = recipient.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise EnvelopeError("the data centre's envelope certificate must hold an RSA key")
    cek, iv = os.urandom(_CEK_BYTES), os.urandom(_IV_BYTES)
    padder = padding.PKCS7(algorithms.AES.block_size).padder()
    encryptor = Cipher(algorithms.AES256(cek), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padder.update(signed) + padder.finalize()) + encryptor.finalize()
    issuer = asn1_x509.Certificate.load(recipient.public_bytes(serialization.Encoding.DER))
    ktri = asn1_cms.KeyTransRecipientInfo({
        "version": "v0",
        "rid": asn1_cms.RecipientIdentifier({"issuer_and_serial_number": {
            "issuer": issuer.issuer, "serial_number": issuer.serial_number}}),
        "key_encryption_algorithm": {"algorithm": OAEP, "parameters": _OAEP_PARAMETERS},
        "encrypted_key": public_key.encrypt(cek, _OAEP_PADDING),
    })  # fmt: skip
    enveloped = asn1_cms.EnvelopedData({
        "version": "v0",
        "recipient_infos": [asn1_cms.RecipientInfo({"ktri": ktri})],
        "encrypted_content_info": {
            "content_type": "data",
            "content_encryption_algorithm": {"algorithm": "aes256_cbc", "parameters": iv},
            "encrypted_content": ciphertext,
        },
    })  # fmt: skip
    return bytes(
        asn1_cms.ContentInfo({"content_type": "enveloped_data", "content": enveloped}).dump()
    )


def unprotect(
    data: bytes, *, recipient: Recipient, trusted_signers: Collection[str]
) -> Unprotected:
    """Decrypt and verify; ``trusted_signers`` are the fingerprints enrolled for the sender."""
    if not is_protected(data):
        raise EnvelopeError("not a CMS envelope (protection 'cms' files are DER)")
    transport = _check_enveloped_structure(data)
    signed = _decrypt_oaep(data, recipient) if transport == OAEP else _decrypt(data, recipient)
    signed_data = _signed_data(signed)
    content = _content(signed_data)
    signer_info = _single_signer(signed_data)
    cert = _signer_certificate(signed_data, signer_info)
    signed_at = _verify_signer(signer_info, cert, content)  # first: tampering is not "unknown"
    print_ = fingerprint(cert)
    if print_ not in trusted_signers:
        raise EnvelopeError(
            f"signed by certificate {print_} (CN={common_name(cert)!r}), which is not enrolled "
            "for this agent: enrol the agent's current certificate at the data centre, or the "
            "file is not from this agent"
        )
    return Unprotected(content, print_, common_name(cert), signed_at)


# --- the outer layer -------------------------------------------------------------------------


def _check_enveloped_structure(data: bytes) -> str:
    """Every field outside the ciphertext must be the one value ``protect`` writes.

    Returns the key transport (``OAEP``, or ``LEGACY_PKCS1V15`` from an older agent).

    Fields OpenSSL ignores (versions, parameters) are otherwise free to change, which would
    make a flipped bit pass unnoticed: the promise is that *any* change is detected.
    """
    info = _load(data, "envelope")
    try:
        if info["content_type"].native != "enveloped_data":
            raise EnvelopeError(f"CMS content is {info['content_type'].native}, not enveloped data")
        env = info["content"]
        recipients = env["recipient_infos"]
        encrypted = env["encrypted_content_info"]
        checks = (
            env["version"].native == "v0",
            env["originator_info"].native is None,
            env["unprotected_attrs"].native is None,
            len(recipients) == 1 and recipients[0].name == "ktri",
            encrypted["content_type"].native == "data",
            encrypted["content_encryption_algorithm"]["algorithm"].native == "aes256_cbc",
        )
        if not all(checks):
            raise EnvelopeError("envelope fields differ from what an agent writes (altered file)")
        ktri = recipients[0].chosen
        transport = ktri["key_encryption_algorithm"]["algorithm"].native
        parameters = ktri["key_encryption_algorithm"]["parameters"]
        if ktri["version"].native != "v0" or not _expected_parameters(transport, parameters):
            raise EnvelopeError("envelope recipient fields differ from what an agent writes")
        _strict_der(info, data, "envelope")
        return str(transport)
    except EnvelopeError:
        raise
    except Exception as exc:  # asn1crypto parses lazily: a bad inner field surfaces here
        raise EnvelopeError(f"envelope is damaged ({_reason(exc)})") from exc


def _expected_parameters(transport: str, parameters: Any) -> bool:
    if transport == LEGACY_PKCS1V15:
        return parameters.native is None
    if transport != OAEP:
        return False
    expected = asn1_algos.RSAESOAEPParams(_OAEP_PARAMETERS)
    return bool(parameters.dump(force=True) == expected.dump(force=True))


def _decrypt_oaep(data: bytes, recipient: Recipient) -> bytes:
    """Unwrap the content key with OAEP, then AES-256-CBC; every failure reads the same."""
    env = asn1_cms.ContentInfo.load(data)["content"]
    ktri = env["recipient_infos"][0].chosen
    ours = asn1_x509.Certificate.load(
        recipient.certificate.public_bytes(serialization.Encoding.DER)
    )
    rid = ktri["rid"]
    # Byte equality, not asn1crypto's Name comparison, which ignores case: any flipped bit counts
    if rid.name != "issuer_and_serial_number" or (
        rid.chosen["issuer"].dump(force=True) != ours.issuer.dump(force=True)
        or rid.chosen["serial_number"].native != ours.serial_number
    ):
        raise EnvelopeError(
            "not encrypted to this data centre's envelope certificate "
            f"({fingerprint(recipient.certificate)}): the agent has another data centre's "
            "certificates installed (delivery.datacentre_certificates)"
        )
    encrypted = env["encrypted_content_info"]
    try:
        cek = recipient.private_key.decrypt(ktri["encrypted_key"].native, _OAEP_PADDING)
        iv = encrypted["content_encryption_algorithm"]["parameters"].native
        if len(cek) != _CEK_BYTES or len(iv) != _IV_BYTES:
            raise ValueError("key or iv of the wrong size")
        decryptor = Cipher(algorithms.AES256(cek), modes.CBC(iv)).decryptor()
        padded = decryptor.update(encrypted["encrypted_content"].native) + decryptor.finalize()
        unpadder = padding.PKCS7(algorithms.AES.block_size).unpadder()
        return unpadder.update(padded) + unpadder.finalize()
    except (ValueError, TypeError) as exc:
        # One message for every decryption failure: distinct errors would be an oracle
        raise EnvelopeError("envelope does not decrypt (file damaged or altered)") from exc


def _decrypt(data: bytes, recipient: Recipient) -> bytes:
    """An older agent's PKCS #1 v1.5 envelope, through cryptography's CMS decryption."""
    try:
        return pkcs7.pkcs7_decrypt_der(data, recipient.certificate, recipient.private_key, [])
    except ValueError as exc:
        text = str(exc)
        if "recipient" in text.lower():
            raise EnvelopeError(
                "not encrypted to this data centre's envelope certificate "
                f"({fingerprint(recipient.certificate)}): the agent has another data centre's "
                "certificates installed (delivery.datacentre_certificates)"
            ) from exc
        # One message for every decryption failure: distinct padding errors would be an oracle
        raise EnvelopeError("envelope does not decrypt (file damaged or altered)") from exc


# --- the inner layer -------------------------------------------------------------------------


def _signed_data(signed: bytes) -> Any:
    if not is_protected(signed):
        raise EnvelopeError("encrypted content is not signed data (an unsigned file)")
    info = _load(signed, "signed content")
    try:
        if info["content_type"].native != "signed_data":
            raise EnvelopeError(
                f"encrypted content is {info['content_type'].native}, not signed data "
                "(an unsigned file)"
            )
        signed_data = info["content"]
        if (signed_data["version"].native != "v1"
                or [a["algorithm"].native for a in signed_data["digest_algorithms"]] != ["sha256"]
                or signed_data["crls"].native is not None):  # fmt: skip
            raise EnvelopeError("signed-data fields differ from what an agent writes")
        _strict_der(info, signed, "signed content")
    except EnvelopeError:
        raise
    except Exception as exc:
        raise EnvelopeError(f"signed content is damaged ({_reason(exc)})") from exc
    return signed_data


def _content(signed_data: Any) -> bytes:
    encap = signed_data["encap_content_info"]
    if encap["content_type"].native != "data" or encap["content"].native is None:
        raise EnvelopeError("signed content is detached or not data")
    content = encap["content"].native
    if not isinstance(content, bytes):
        raise EnvelopeError("signed content is not an octet string")
    return content


def _single_signer(signed_data: Any) -> Any:
    signers = signed_data["signer_infos"]
    if len(signers) != 1:
        raise EnvelopeError(f"signed by {len(signers)} signers, expected exactly 1")
    info = signers[0]
    if (info["version"].native != "v1" or info["sid"].name != "issuer_and_serial_number"
            or info["unsigned_attrs"].native is not None):  # fmt: skip
        raise EnvelopeError("signer fields differ from what an agent writes")
    return info


def _signer_certificate(signed_data: Any, signer_info: Any) -> x509.Certificate:
    sid = signer_info["sid"].chosen
    certificates = signed_data["certificates"]
    if certificates.native is None or len(certificates) != 1:
        raise EnvelopeError("the signer's certificate is missing from the signed content")
    choice = certificates[0]
    if choice.name != "certificate":
        raise EnvelopeError("the signed content carries an unsupported certificate type")
    cert = choice.chosen
    if (cert.issuer != sid["issuer"]
            or cert.serial_number != sid["serial_number"].native):  # fmt: skip
        raise EnvelopeError("the signer is not the certificate carried with the signature")
    try:
        loaded = x509.load_der_x509_certificate(cert.dump())
        loaded.public_key()  # parsed lazily: a damaged key surfaces here, not mid-verification
    except ValueError as exc:
        raise EnvelopeError(f"the signer's certificate is damaged ({_reason(exc)})") from exc
    return loaded


def _verify_signer(signer_info: Any, cert: x509.Certificate, content: bytes) -> datetime | None:
    if signer_info["digest_algorithm"]["algorithm"].native != "sha256":
        raise EnvelopeError("signature digest is not SHA-256")
    attrs = signer_info["signed_attrs"]
    if attrs.native is None:
        raise EnvelopeError("the signature has no signed attributes")
    values: dict[str, list[Any]] = {}
    for attr in attrs:
        name = attr["type"].native
        if name in values:
            raise EnvelopeError(f"signed attribute {name} appears twice")
        values[name] = list(attr["values"].native)
    if values.get("content_type") != ["data"]:
        raise EnvelopeError("signed content-type attribute is not data")
    digest = values.get("message_digest")
    if not digest or len(digest) != 1 or not isinstance(digest[0], bytes):
        raise EnvelopeError("the signature has no message-digest attribute")
    if not hmac.compare_digest(digest[0], hashlib.sha256(content).digest()):
        raise EnvelopeError("the content does not match its signed digest (altered)")
    # RFC 5652 §5.4: the signature covers the attributes DER-encoded with the SET OF tag
    signed_bytes = b"\x31" + attrs.dump()[1:]
    _verify_signature(signer_info, cert, signed_bytes)
    times = values.get("signing_time") or [None]
    return times[0] if isinstance(times[0], datetime) else None


def _verify_signature(signer_info: Any, cert: x509.Certificate, message: bytes) -> None:
    algorithm = signer_info["signature_algorithm"]["algorithm"].native
    key = cert.public_key()
    if algorithm != "sha256_ecdsa" or not isinstance(key, ec.EllipticCurvePublicKey):
        raise EnvelopeError(f"unsupported signature algorithm {algorithm}: agents sign with ECDSA")
    try:
        key.verify(signer_info["signature"].native, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise EnvelopeError("the signature does not verify (altered, or forged)") from exc


# --- DER helpers -----------------------------------------------------------------------------


def _load(data: bytes, what: str) -> Any:
    try:
        return asn1_cms.ContentInfo.load(data, strict=True)
    except Exception as exc:  # asn1crypto raises ValueError, TypeError or its own errors
        raise EnvelopeError(f"{what} is not valid CMS ({_reason(exc)})") from exc


def _strict_der(parsed: Any, data: bytes, what: str) -> None:
    """The bytes must be the one DER encoding of what they parse to (no BER slack to alter)."""
    if parsed.dump(force=True) != data:
        raise EnvelopeError(f"{what} is not canonical DER (altered file)")


def _reason(exc: Exception) -> str:
    """A parser's message for a reason line; decrypted garbage can echo binary, so cut that."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    if not text.isascii() or not text.isprintable() or len(text) > MAX_REASON_CHARS:
        return type(exc).__name__
    return text
