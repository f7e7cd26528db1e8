"""Enrolment without shared secrets: the agent's one-line request and the data centre's bundle.

1. ``edge-agent enroll`` prints a REQUEST, one line of ``key=value`` words::

       callcollect-request-1 tenant=acme agent=acme-london-1 fingerprint=sha256:...
           certificate=<base64 DER of agent.crt> ssh=ssh-ed25519:<base64>

   Everything in it is public (a certificate and an SSH public key). The technician confirms
   the fingerprint with the site by phone before approving it.
2. ``datacenter agent approve REQUEST`` checks that the fingerprint is the certificate's,
   pins the certificate, makes the agent's landing account, and writes a BUNDLE (JSON): the
   landing host, port and host key, the account name, the folders, the data centre's
   certificates. Also public.
3. ``edge-agent enroll --import BUNDLE`` installs it (known_hosts, certificates, account).

Both sides import this module; ``ValidationError`` names the bad field.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from shared.errors import ValidationError
from shared.keys import fingerprint

REQUEST_TAG = "callcollect-request-1"
BUNDLE_FORMAT = "callcollect-landing-bundle"
BUNDLE_VERSION = 1
REQUEST_FIELDS = ("tenant", "agent", "fingerprint", "certificate", "ssh")


@dataclass(frozen=True, slots=True)
class EnrolmentRequest:
    tenant: str
    agent_id: str
    certificate: x509.Certificate
    ssh_public_key: str  # an authorized_keys line: "ssh-ed25519 AAAA..."

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.certificate)

    def to_line(self) -> str:
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        kind, blob = self.ssh_public_key.split()[:2]
        return (
            f"{REQUEST_TAG} tenant={self.tenant} agent={self.agent_id} "
            f"fingerprint={self.fingerprint} certificate={base64.b64encode(der).decode()} "
            f"ssh={kind}:{blob}"
        )


def parse_request(line: str) -> EnrolmentRequest:
    """The request ``to_line`` wrote; the fingerprint must be the certificate's."""
    words = line.split()
    if not words or words[0] != REQUEST_TAG:
        raise ValidationError("request", f"does not start with {REQUEST_TAG}: paste the whole "
                              "line `edge-agent enroll` printed")  # fmt: skip
    values = dict(w.split("=", 1) for w in words[1:] if "=" in w)
    missing = [name for name in REQUEST_FIELDS if not values.get(name)]
    if missing:
        raise ValidationError("request", f"lacks {', '.join(missing)}")
    kind, _, blob = values["ssh"].partition(":")
    if not kind.startswith(("ssh-", "ecdsa-")) or not blob:
        raise ValidationError("request.ssh", "is not an SSH public key (TYPE:BASE64)")
    try:
        certificate = x509.load_der_x509_certificate(base64.b64decode(values["certificate"]))
    except (ValueError, binascii.Error) as exc:
        raise ValidationError("request.certificate", f"is not a certificate ({exc})") from None
    request = EnrolmentRequest(
        tenant=values["tenant"],
        agent_id=values["agent"],
        certificate=certificate,
        ssh_public_key=f"{kind} {blob}",
    )
    if request.fingerprint != values["fingerprint"]:
        raise ValidationError(
            "request.fingerprint", "does not match the certificate: the line was altered"
        )
    return request


@dataclass(frozen=True, slots=True)
class LandingBundle:
    """What the agent needs to reach its own landing account."""

    tenant: str
    agent_id: str
    account: str
    host: str
    port: int
    host_key: str  # "ssh-ed25519 AAAA...": the landing host's public key
    datacentre_certificates: str  # PEM: envelope then receipts certificate
    remote_dir: str = "/incoming"
    receipts_dir: str = "/receipts"

    @property
    def host_key_fingerprint(self) -> str:
        """As ``ssh-keygen -l`` prints it: ``SHA256:`` + unpadded base64."""
        blob = base64.b64decode(self.host_key.split()[1])
        return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")

    def known_hosts_line(self) -> str:
        host = self.host if self.port == 22 else f"[{self.host}]:{self.port}"
        kind, blob = self.host_key.split()[:2]
        return f"{host} {kind} {blob}"

    def to_json(self) -> str:
        document = {"format": BUNDLE_FORMAT, "version": BUNDLE_VERSION, **asdict(self)}
        document["host_key_fingerprint"] = self.host_key_fingerprint
        return json.dumps(document, indent=2, sort_keys=True) + "\n"


def parse_bundle(text: str) -> LandingBundle:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ValidationError("bundle", f"is not JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != BUNDLE_FORMAT:
        raise ValidationError("bundle", f"is not a {BUNDLE_FORMAT} document")
    if document.get("version") != BUNDLE_VERSION:
        raise ValidationError("bundle.version", f"{document.get('version')!r} is not supported")
    values: dict[str, Any] = {}
    for name in LandingBundle.__dataclass_fields__:
        if name not in document:
            raise ValidationError(f"bundle.{name}", "is missing")
        kind = int if name == "port" else str
        value = document[name]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValidationError(f"bundle.{name}", f"expected {kind.__name__}")
        values[name] = value
    bundle = LandingBundle(**values)
    if not 0 < bundle.port < 65536 or len(bundle.host_key.split()) < 2:
        raise ValidationError("bundle", "port or host_key is malformed")
    try:
        bundle.host_key_fingerprint  # noqa: B018  (the key must be base64)
    except (ValueError, binascii.Error):
        raise ValidationError("bundle.host_key", "is not an SSH public key") from None
    claimed = document.get("host_key_fingerprint")
    if claimed is not None and claimed != bundle.host_key_fingerprint:
        raise ValidationError("bundle.host_key_fingerprint", "does not match host_key")
    return bundle
