"""CMS batch protection: round trip, openssl interoperability, every defect named, no crash."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from asn1crypto import cms as asn1_cms
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import pkcs7
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import cms, keys
from shared.envelope import seal
from shared.errors import EnvelopeError
from tests.factories import gen_icdr

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
AGENT = keys.new_agent_identity("agent-1")
STRANGER = keys.new_agent_identity("agent-1")  # same name, another key
DC = keys.new_datacentre_keys("dc.example")
OTHER_DC = keys.new_datacentre_keys("other.example")
RECIPIENT = cms.Recipient(DC.certificates.envelope, DC.envelope_key)
TRUSTED = frozenset({keys.fingerprint(AGENT.certificate)})


CONTENT = seal([gen_icdr(n) for n in range(3)], agent_id="agent-1", tenant="demo", sequence=7,
               created_at=T0)  # fmt: skip
SEALED = cms.protect(CONTENT, signer=AGENT, recipient=DC.certificates.envelope)


def test_round_trip_names_the_signer() -> None:
    opened = cms.unprotect(SEALED, recipient=RECIPIENT, trusted_signers=TRUSTED)
    assert opened.content == CONTENT
    assert opened.signer_fingerprint == keys.fingerprint(AGENT.certificate)
    assert opened.signer_name == "agent-1"
    assert opened.signed_at is not None
    assert CONTENT not in SEALED and b"CCB1" not in SEALED  # unreadable at rest


def test_key_transport_is_oaep_with_sha256() -> None:
    ktri = asn1_cms.ContentInfo.load(SEALED)["content"]["recipient_infos"][0].chosen
    algorithm = ktri["key_encryption_algorithm"]
    assert algorithm["algorithm"].native == "rsaes_oaep"
    assert algorithm["parameters"]["hash_algorithm"]["algorithm"].native == "sha256"
    assert algorithm["parameters"]["mask_gen_algorithm"]["parameters"]["algorithm"].native == (
        "sha256"
    )


def _legacy_protect(content: bytes) -> bytes:
    """What agents before OAEP wrote: cryptography's builder, PKCS #1 v1.5 key transport."""
    return (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(_signed_only(content, [pkcs7.PKCS7Options.NoCapabilities]))
        .add_recipient(DC.certificates.envelope)
        .set_content_encryption_algorithm(algorithms.AES256)
        .encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )


def test_an_older_agents_pkcs1v15_envelope_still_opens() -> None:
    legacy = _legacy_protect(CONTENT)
    ktri = asn1_cms.ContentInfo.load(legacy)["content"]["recipient_infos"][0].chosen
    assert ktri["key_encryption_algorithm"]["algorithm"].native == "rsaes_pkcs1v15"
    opened = cms.unprotect(legacy, recipient=RECIPIENT, trusted_signers=TRUSTED)
    assert opened.content == CONTENT


def test_oaep_with_other_parameters_is_refused() -> None:
    info = asn1_cms.ContentInfo.load(SEALED)
    ktri = info["content"]["recipient_infos"][0].chosen
    ktri["key_encryption_algorithm"] = {"algorithm": "rsaes_oaep", "parameters": {
        "hash_algorithm": {"algorithm": "sha384"},
        "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "sha384"}},
    }}  # fmt: skip
    with pytest.raises(EnvelopeError, match="recipient fields differ"):
        cms.unprotect(info.dump(force=True), recipient=RECIPIENT, trusted_signers=TRUSTED)


def test_open_landed_returns_the_records() -> None:
    landed = cms.open_landed(SEALED, recipient=RECIPIENT, trusted_signers=TRUSTED)
    assert landed.protection == "cms"
    assert [r.record_id for r in landed.batch.records] == [gen_icdr(n).record_id for n in range(3)]
    assert landed.batch.manifest.sequence == 7


def test_openssl_cms_decrypts_and_verifies(tmp_path: Path) -> None:
    (tmp_path / "batch.ccb").write_bytes(SEALED)
    (tmp_path / "envelope.crt").write_bytes(keys.certificate_pem(DC.certificates.envelope))
    keys.write_private_key(tmp_path / "envelope.key", DC.envelope_key)
    (tmp_path / "agent.crt").write_bytes(keys.certificate_pem(AGENT.certificate))
    decrypt = ["openssl", "cms", "-decrypt", "-binary", "-inform", "DER", "-in", "batch.ccb",
               "-recip", "envelope.crt", "-inkey", "envelope.key", "-out", "signed.der"]  # fmt: skip
    verify = ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", "signed.der",
              "-CAfile", "agent.crt", "-out", "content.ccb"]  # fmt: skip
    for argv in (decrypt, verify):
        done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
    assert "Verification successful" in done.stderr
    assert (tmp_path / "content.ccb").read_bytes() == CONTENT
    # and openssl refuses the same signature against a certificate it was not made with
    (tmp_path / "stranger.crt").write_bytes(keys.certificate_pem(STRANGER.certificate))
    wrong = [*verify[:-4], "-CAfile", "stranger.crt", "-out", "x"]
    assert subprocess.run(wrong, cwd=tmp_path, capture_output=True, timeout=30).returncode != 0


def _signed_only(content: bytes, options: list[pkcs7.PKCS7Options] | None = None) -> bytes:
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(content)
        .add_signer(AGENT.certificate, AGENT.private_key, hashes.SHA256())
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary, *(options or [])])
    )


def _encrypted_only(content: bytes) -> bytes:
    return (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(content)
        .add_recipient(DC.certificates.envelope)
        .set_content_encryption_algorithm(algorithms.AES256)
        .encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )


@pytest.mark.parametrize(
    ("data", "trusted", "message"),
    [
        (cms.protect(CONTENT, signer=AGENT, recipient=OTHER_DC.certificates.envelope), TRUSTED,
         "not encrypted to this data centre's envelope certificate"),
        (cms.protect(CONTENT, signer=STRANGER, recipient=DC.certificates.envelope), TRUSTED,
         "which is not enrolled for this agent"),
        (SEALED, frozenset(), "which is not enrolled for this agent"),
        (_encrypted_only(CONTENT), TRUSTED, "not signed data (an unsigned file)"),
        (_signed_only(CONTENT), TRUSTED, "CMS content is signed_data, not enveloped data"),
        (SEALED[:-1], TRUSTED, "envelope is not valid CMS"),
        (SEALED + b"\x00", TRUSTED, "envelope is not valid CMS"),
        (CONTENT, TRUSTED, "not a CMS envelope"),
        (b"", TRUSTED, "not a CMS envelope"),
    ],
    ids=["wrong-recipient", "wrong-signer", "nobody-enrolled", "unsigned", "unencrypted",
         "truncated", "trailing-byte", "plain-ccb1", "empty"],
)  # fmt: skip
def test_every_defect_is_named(data: bytes, trusted: frozenset[str], message: str) -> None:
    with pytest.raises(EnvelopeError, match=re.escape(message)):
        cms.unprotect(data, recipient=RECIPIENT, trusted_signers=trusted)


def test_unprotected_files_are_refused_unless_accepted() -> None:
    with pytest.raises(EnvelopeError, match="unprotected batch refused"):
        cms.open_landed(CONTENT, recipient=RECIPIENT, trusted_signers=TRUSTED)
    landed = cms.open_landed(CONTENT, recipient=None, trusted_signers=(), accept_unprotected=True)
    assert (landed.protection, landed.signer_fingerprint) == ("none", None)
    with pytest.raises(EnvelopeError, match="no envelope key configured"):
        cms.open_landed(SEALED, recipient=None, trusted_signers=TRUSTED)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(position=st.integers(min_value=0, max_value=len(SEALED) - 1),
       bit=st.integers(min_value=0, max_value=7))  # fmt: skip
def test_any_bit_flip_is_detected(position: int, bit: int) -> None:
    flipped = bytearray(SEALED)
    flipped[position] ^= 1 << bit
    with pytest.raises(EnvelopeError):
        cms.unprotect(bytes(flipped), recipient=RECIPIENT, trusted_signers=TRUSTED)


@settings(max_examples=200, deadline=None)
@given(data=st.one_of(
    st.binary(max_size=600),
    st.binary(max_size=600).map(lambda b: b"\x30" + b),
    st.tuples(st.integers(0, len(SEALED)), st.binary(max_size=40)).map(
        lambda cut: SEALED[: cut[0]] + cut[1] + SEALED[cut[0] + len(cut[1]) :]),
))  # fmt: skip
def test_arbitrary_bytes_never_crash_the_opener(data: bytes) -> None:
    try:
        cms.open_landed(data, recipient=RECIPIENT, trusted_signers=TRUSTED)
    except EnvelopeError as exc:
        assert str(exc).isprintable()
    else:
        assert data == SEALED  # only the genuine file opens
