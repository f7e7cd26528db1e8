"""Receipts: the data centre's signed statement that a batch file is durably stored.

After ingest commits a batch's calls (``stored``, ``duplicate`` or ``resent``: in every case the
data centre now holds every record of the file), it writes ``receipts/NAME.receipt`` beside
``incoming/`` in the tenant's landing folder. The agent reads it on its next session, verifies
it against the pinned receipts certificate, marks the batch acknowledged, and deletes it. Only
an acknowledged batch may ever be deleted from the appliance.

A receipt file (``AGENT-0000000042.ccb.receipt``) is, byte for byte::

    b"CCR1\\n"                  magic and format version
    BODY-JSON b"\\n"            one line, UTF-8, keys sorted (``Receipt``)
    SIGNATURE b"\\n"            base64 of the Ed25519 signature over b"CCR1\\n" + BODY-JSON

The signature covers the exact bytes on disk, so no JSON canonicalisation is needed to verify
it. ``sha256`` is of the batch file as it landed (the CMS file for protection ``cms``): the
agent acknowledges only the exact file it sent, so a receipt for a different file under the
same name (someone else's, or a corrupted upload) acknowledges nothing.

DC side: ``make_receipt(...)`` then ``write_receipt(receipts_dir, data)`` after the commit.
Agent side: ``verify_receipt(data, certificate=...)``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from shared.durable import atomic_write
from shared.envelope import parse_batch_file_name, parse_delivered_file_name
from shared.errors import EnvelopeError, ICDRValidationError
from shared.icdr import format_time, parse_time
from shared.keys import fingerprint

MAGIC = b"CCR1\n"
FORMAT_NAME = "callcollect-receipt"
FORMAT_VERSION = 1
SUFFIX = ".receipt"
RECEIPTS_DIR = "receipts"
MAX_RECEIPT_BYTES = 8192
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class ReceiptError(EnvelopeError):
    """A receipt is malformed, altered, or not signed by the pinned data centre key."""

    exit_code = 4


@dataclass(frozen=True, slots=True)
class Receipt:
    batch: str  # the batch file name, e.g. "acme-leeds-01-0000000042.ccb" or "acme-leeds-01-rec-0000000001.ccr"
    agent_id: str
    sequence: int
    sha256: str  # of the batch file as landed (hex)
    records: int  # calls, or recordings for a .ccr file
    inserted: int
    duplicates: int
    stored_at: str  # ISO 8601 UTC: when the data centre committed the calls
    signer: str  # fingerprint of the receipts certificate (for messages; the key decides)
    format: str = FORMAT_NAME
    version: int = FORMAT_VERSION


def receipt_file_name(batch_name: str) -> str:
    return batch_name + SUFFIX


def batch_name_of(receipt_name: str) -> str | None:
    """The call batch a receipt file name is for, or None (temporary files, strangers, and
    receipts for recordings batches: ``recordings_name_of``)."""
    if not receipt_name.endswith(SUFFIX):
        return None
    batch = receipt_name.removesuffix(SUFFIX)
    return batch if parse_batch_file_name(batch) is not None else None


def recordings_name_of(receipt_name: str) -> str | None:
    """The recordings batch (``AGENT-rec-N.ccr``) a receipt file name is for, or None."""
    batch = receipt_name.removesuffix(SUFFIX)
    if batch == receipt_name or parse_delivered_file_name(batch) is None:
        return None
    return batch if parse_batch_file_name(batch) is None else None


def make_receipt(
    *,
    batch_name: str,
    sha256: str,
    records: int,
    inserted: int,
    duplicates: int,
    stored_at: datetime,
    key: ed25519.Ed25519PrivateKey,
    certificate: x509.Certificate,
) -> bytes:
    """The signed receipt bytes for one stored batch file."""
    parsed = parse_delivered_file_name(batch_name)
    if parsed is None:
        raise ValueError(f"{batch_name!r} is not a batch file name")
    receipt = Receipt(
        batch=batch_name, agent_id=parsed[0], sequence=parsed[1], sha256=sha256,
        records=records, inserted=inserted, duplicates=duplicates,
        stored_at=format_time(stored_at), signer=fingerprint(certificate),
    )  # fmt: skip
    _check(asdict(receipt))
    body = json.dumps(asdict(receipt), sort_keys=True, separators=(",", ":")).encode()
    signature = key.sign(MAGIC + body)
    return MAGIC + body + b"\n" + base64.b64encode(signature) + b"\n"


def verify_receipt(data: bytes, *, certificate: x509.Certificate) -> Receipt:
    """Check framing, signature and fields; any defect raises ``ReceiptError`` with the reason."""
    public_key = certificate.public_key()
    if not isinstance(public_key, ed25519.Ed25519PublicKey):
        raise ReceiptError("the pinned receipts certificate is not an Ed25519 certificate")
    if len(data) > MAX_RECEIPT_BYTES:
        raise ReceiptError(f"receipt is {len(data)} bytes, more than a receipt can be")
    if not data.startswith(MAGIC):
        raise ReceiptError("not a callcollect receipt (bad magic)")
    lines = data[len(MAGIC) :].split(b"\n")
    if len(lines) != 3 or lines[2] != b"":
        raise ReceiptError("receipt must be the magic, a body line and a signature line")
    body, encoded = lines[0], lines[1]
    try:
        signature = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ReceiptError("receipt signature is not base64") from exc
    if base64.b64encode(signature) != encoded:  # unused low bits of the last digit were altered
        raise ReceiptError("receipt signature is not canonical base64 (altered)")
    try:
        public_key.verify(signature, MAGIC + body)
    except InvalidSignature as exc:
        raise ReceiptError(
            "receipt signature does not verify against the pinned data centre receipts "
            f"certificate {fingerprint(certificate)} (altered, or another data centre's)"
        ) from exc
    try:
        raw = json.loads(body)
    except ValueError as exc:
        raise ReceiptError(f"receipt body is not JSON: {exc}") from exc
    return _check(raw)


def write_receipt(receipts_dir: Path, data: bytes, *, batch_name: str) -> Path:
    """DC side: write ``receipts_dir/NAME.receipt`` atomically (a reader never sees half).

    The temporary name does not end in ``.receipt``, so an agent listing the folder mid-write
    ignores it (``batch_name_of``).
    """
    final = receipts_dir / receipt_file_name(batch_name)
    atomic_write(final, data, mode=0o640)
    return final


def _check(raw: Any) -> Receipt:
    if not isinstance(raw, dict):
        raise ReceiptError("receipt body is not a JSON object")
    if raw.get("format") != FORMAT_NAME or raw.get("version") != FORMAT_VERSION:
        raise ReceiptError(
            f"unsupported receipt format {raw.get('format')!r} version {raw.get('version')!r}"
        )
    fields = Receipt.__dataclass_fields__
    if set(raw) != set(fields):
        raise ReceiptError(f"receipt fields are {sorted(raw)}, expected {sorted(fields)}")
    for name in ("batch", "agent_id", "sha256", "stored_at", "signer"):
        if not isinstance(raw[name], str):
            raise ReceiptError(f"receipt field '{name}' is not a string")
    for name in ("sequence", "records", "inserted", "duplicates"):
        if not isinstance(raw[name], int) or isinstance(raw[name], bool) or raw[name] < 0:
            raise ReceiptError(f"receipt field '{name}' is not a count")
    if parse_delivered_file_name(raw["batch"]) != (raw["agent_id"], raw["sequence"]):
        raise ReceiptError("receipt batch name disagrees with its agent id and sequence")
    if not _SHA256_RE.match(raw["sha256"]):
        raise ReceiptError("receipt sha256 is not 64 lower-case hex digits")
    if raw["inserted"] + raw["duplicates"] != raw["records"]:
        raise ReceiptError("receipt inserted + duplicates does not equal records")
    try:
        parse_time("stored_at", raw["stored_at"])
    except ICDRValidationError as exc:
        raise ReceiptError(f"receipt {exc}") from exc
    return Receipt(**raw)
