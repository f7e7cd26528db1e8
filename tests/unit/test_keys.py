"""Keys and certificates: what enrolment writes, what the bundle must hold, never overwrite."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from shared import keys
from shared.keys import KeyFileError

AGENT = keys.new_agent_identity("acme-leeds-01")
DC = keys.new_datacentre_keys("dc.example")


def test_agent_certificate_names_the_agent_and_matches_openssl_fingerprint(tmp_path: Path) -> None:
    path = tmp_path / "agent.crt"
    keys.write_public_file(path, keys.certificate_pem(AGENT.certificate))
    done = subprocess.run(
        ["openssl", "x509", "-in", str(path), "-noout", "-fingerprint", "-sha256"],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    openssl_hex = done.stdout.strip().split("=", 1)[1].replace(":", "").lower()
    assert keys.fingerprint(AGENT.certificate) == "sha256:" + openssl_hex
    assert keys.common_name(AGENT.certificate) == "acme-leeds-01"
    assert isinstance(AGENT.private_key, ec.EllipticCurvePrivateKey)


def test_private_keys_are_0600_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "identity" / "agent.key"
    keys.write_private_key(path, AGENT.private_key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_bytes()
    with pytest.raises(KeyFileError, match="keys are never overwritten"):
        keys.write_private_key(path, keys.new_agent_identity("x").private_key)
    assert path.read_bytes() == before


def test_identity_round_trips_and_a_mismatched_pair_is_refused(tmp_path: Path) -> None:
    keys.write_private_key(tmp_path / "agent.key", AGENT.private_key)
    keys.write_public_file(tmp_path / "agent.crt", keys.certificate_pem(AGENT.certificate))
    loaded = keys.load_agent_identity(tmp_path / "agent.key", tmp_path / "agent.crt")
    assert keys.fingerprint(loaded.certificate) == keys.fingerprint(AGENT.certificate)
    other = keys.new_agent_identity("acme-leeds-01")
    keys.write_public_file(tmp_path / "other.crt", keys.certificate_pem(other.certificate))
    with pytest.raises(KeyFileError, match="is not the private key of the certificate"):
        keys.load_agent_identity(tmp_path / "agent.key", tmp_path / "other.crt")


def test_datacentre_keys_round_trip(tmp_path: Path) -> None:
    keys.write_private_key(tmp_path / "envelope.key", DC.envelope_key)
    keys.write_private_key(tmp_path / "receipts.key", DC.receipts_key)
    keys.write_public_file(tmp_path / "bundle.pem", DC.certificates.to_pem())
    loaded = keys.load_datacentre_keys(
        tmp_path / "envelope.key", tmp_path / "receipts.key", tmp_path / "bundle.pem"
    )
    assert loaded.certificates == DC.certificates
    with pytest.raises(KeyFileError, match="must be the RSA envelope key"):
        keys.load_datacentre_keys(
            tmp_path / "receipts.key", tmp_path / "receipts.key", tmp_path / "bundle.pem"
        )


@pytest.mark.parametrize(
    ("pem", "message"),
    [
        (keys.certificate_pem(DC.certificates.envelope), "found 1, of them 1 RSA and 0 Ed25519"),
        (
            keys.certificate_pem(DC.certificates.receipts) * 2,
            "found 2, of them 0 RSA and 2 Ed25519",
        ),
        (
            DC.certificates.to_pem() + keys.certificate_pem(AGENT.certificate),
            "found 3, of them 1 RSA and 1 Ed25519",
        ),
        (b"", "no readable PEM certificate"),
    ],
)
def test_bundle_must_hold_one_of_each(pem: bytes, message: str) -> None:
    with pytest.raises(KeyFileError, match=message):
        keys.DatacentreCertificates.from_pem(pem)


def test_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        keys.load_datacentre_certificates(tmp_path / "nope.pem")
