"""The batch file: how ICDRs travel from the appliance to the data centre.

A batch file (``AGENT-SEQUENCE.ccb``) is, byte for byte::

    b"CCB1\\n"                     magic and format version
    MANIFEST-JSON b"\\n"           one line, UTF-8, keys sorted
    PAYLOAD                       gzip of the ICDRs as JSON Lines

The manifest names the agent, the tenant it believes it belongs to, the batch sequence number,
the record count, first and last record ids, and the SHA-256 and length of the payload, so a
truncated or altered file is detected before a single record is read. ``protection`` says how
the payload is protected: ``"none"`` in format 1. Signing and encryption to the data centre's
certificate (CMS) wrap these same bytes in a later protection mode, so the inner layout does not
change when they arrive.

The data centre never trusts ``tenant`` for attribution: the landing folder decides (a mismatch
is quarantined). ``open_batch`` decompresses in chunks and stops at ``BatchLimits`` (records and
decompressed bytes), so a gzip bomb costs the reader no more than the limit.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from shared.clock import utc_now
from shared.errors import EnvelopeError, ICDRValidationError
from shared.icdr import ICDR, ICDR_VERSION, format_time, loads_lines, parse_time

MAGIC = b"CCB1\n"
FORMAT_NAME = "callcollect-batch"
FORMAT_VERSION = 1
SUFFIX = ".ccb"
MAX_MANIFEST_BYTES = 64 * 1024
INFLATE_CHUNK = 1024 * 1024  # decompressed bytes per step: the limit is checked this often
GZIP_WBITS = 16 + zlib.MAX_WBITS  # zlib reads the gzip framing itself
_NAME_RE = re.compile(r"^(?P<agent>[A-Za-z0-9][A-Za-z0-9_.-]{0,63})-(?P<seq>\d{10})\.ccb$")
RECORDINGS_SUFFIX = ".ccr"  # call recordings travel in their own numbered series
_RECORDINGS_NAME_RE = re.compile(
    r"^(?P<agent>[A-Za-z0-9][A-Za-z0-9_.-]{0,63})-rec-(?P<seq>\d{10})\.ccr$"
)


@dataclass(frozen=True, slots=True)
class Manifest:
    agent_id: str
    tenant: str
    sequence: int
    record_count: int
    first_record_id: str
    last_record_id: str
    payload_sha256: str
    payload_bytes: int
    created_at: str
    icdr_version: int = ICDR_VERSION
    compression: str = "gzip"
    protection: str = "none"
    format: str = FORMAT_NAME
    version: int = FORMAT_VERSION


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """The most one batch may hold; the data centre's are ``ingest.max_batch_*``."""

    max_records: int = 100_000
    max_bytes: int = 256 * 1024 * 1024  # the decompressed payload


@dataclass(frozen=True, slots=True)
class Batch:
    manifest: Manifest
    records: list[ICDR]


def batch_file_name(agent_id: str, sequence: int) -> str:
    """``AGENT-0000000042.ccb``: sorts by sequence, and names the agent for technicians."""
    name = f"{agent_id}-{sequence:010d}{SUFFIX}"
    if not _NAME_RE.match(name):
        raise ValueError(
            f"agent id {agent_id!r} or sequence {sequence} cannot form a batch file name"
        )
    return name


def parse_batch_file_name(name: str) -> tuple[str, int] | None:
    """(agent_id, sequence) of a batch file name, or None if it is not one."""
    match = _NAME_RE.match(name)
    if not match:
        return None
    return match["agent"], int(match["seq"])


def parse_recordings_file_name(name: str) -> tuple[str, int] | None:
    """(agent_id, sequence) of a recordings batch name (``AGENT-rec-0000000001.ccr``), or None."""
    match = _RECORDINGS_NAME_RE.match(name)
    if not match:
        return None
    return match["agent"], int(match["seq"])


def parse_delivered_file_name(name: str) -> tuple[str, int] | None:
    """A call batch's or a recordings batch's (agent_id, sequence): what receipts name."""
    return parse_batch_file_name(name) or parse_recordings_file_name(name)


def seal(
    records: Sequence[ICDR],
    *,
    agent_id: str,
    tenant: str,
    sequence: int,
    created_at: datetime | None = None,
    compresslevel: int = 6,
) -> bytes:
    """Serialise records into batch-file bytes."""
    if not records:
        raise ValueError("a batch holds at least one record")
    return seal_json(
        [rec.to_json() for rec in records],
        first_record_id=records[0].record_id,
        last_record_id=records[-1].record_id,
        agent_id=agent_id,
        tenant=tenant,
        sequence=sequence,
        created_at=created_at,
        compresslevel=compresslevel,
    )


def seal_json(
    bodies: Sequence[str],
    *,
    first_record_id: str,
    last_record_id: str,
    agent_id: str,
    tenant: str,
    sequence: int,
    created_at: datetime | None = None,
    compresslevel: int = 6,
) -> bytes:
    """Seal records already serialised by ``ICDR.to_json``, as the agent's spool keeps them.

    Why: decoding each spooled record only to encode it again was two thirds of sealing's time.
    """
    if not bodies:
        raise ValueError("a batch holds at least one record")
    body = ("\n".join(bodies) + "\n").encode("utf-8")
    payload = gzip.compress(body, compresslevel=compresslevel, mtime=0)
    manifest = Manifest(
        agent_id=agent_id,
        tenant=tenant,
        sequence=sequence,
        record_count=len(bodies),
        first_record_id=first_record_id,
        last_record_id=last_record_id,
        payload_sha256=hashlib.sha256(payload).hexdigest(),
        payload_bytes=len(payload),
        created_at=format_time(created_at or utc_now()),
    )
    head = json.dumps(asdict(manifest), sort_keys=True, separators=(",", ":")).encode()
    return MAGIC + head + b"\n" + payload


def read_manifest(data: bytes) -> tuple[Manifest, bytes]:
    """Check the framing and the payload digest; return the manifest and the payload."""
    if not data.startswith(MAGIC):
        raise EnvelopeError("not a callcollect batch file (bad magic)")
    end = data.find(b"\n", len(MAGIC), len(MAGIC) + MAX_MANIFEST_BYTES)
    if end < 0:
        raise EnvelopeError("manifest line is missing or too long (file truncated?)")
    try:
        raw_manifest = json.loads(data[len(MAGIC) : end])
    except ValueError as exc:
        raise EnvelopeError(f"manifest is not valid JSON: {exc}") from exc
    manifest = _manifest_from(raw_manifest)
    payload = data[end + 1 :]
    if len(payload) != manifest.payload_bytes:
        raise EnvelopeError(
            f"payload is {len(payload)} bytes, manifest says {manifest.payload_bytes} (file truncated?)"
        )
    if hashlib.sha256(payload).hexdigest() != manifest.payload_sha256:
        raise EnvelopeError("payload SHA-256 does not match the manifest (file altered or corrupt)")
    return manifest, payload


def open_batch(data: bytes, limits: BatchLimits | None = None) -> Batch:
    """Verify and decode a batch file; any defect raises ``EnvelopeError`` with the reason.

    Beyond ``limits`` (default ``BatchLimits()``) the batch is refused, and decompression stops
    there: memory is bounded by the limit, not by what the payload claims to expand to.
    """
    limits = limits or BatchLimits()
    manifest, payload = read_manifest(data)
    if manifest.record_count > limits.max_records:
        raise EnvelopeError(
            f"manifest says {manifest.record_count} records, more than the {limits.max_records} "
            "a batch may hold here (ingest.max_batch_records)"
        )
    text = _inflate(payload, limits)
    try:
        records = list(loads_lines(text))
    except ICDRValidationError as exc:
        raise EnvelopeError(f"invalid record in payload: {exc}") from exc
    if len(records) != manifest.record_count:
        raise EnvelopeError(
            f"payload holds {len(records)} records, manifest says {manifest.record_count}"
        )
    if records[0].record_id != manifest.first_record_id or (
        records[-1].record_id != manifest.last_record_id
    ):
        raise EnvelopeError("first or last record id does not match the manifest")
    return Batch(manifest=manifest, records=records)


def _inflate(payload: bytes, limits: BatchLimits) -> str:
    """The gzip payload decompressed and decoded, refused as soon as it passes a limit."""
    inflater = zlib.decompressobj(GZIP_WBITS)
    out = bytearray()
    pending, lines = payload, 0
    try:
        while not inflater.eof:
            room = limits.max_bytes + 1 - len(out)
            chunk = inflater.decompress(pending, min(INFLATE_CHUNK, room))
            pending = inflater.unconsumed_tail
            if not chunk and not pending:
                raise EnvelopeError("payload does not decompress: the gzip stream is truncated")
            out += chunk
            lines += chunk.count(b"\n")
            _check_inflated(len(out), lines, limits)
        if inflater.unused_data:
            raise EnvelopeError("payload does not decompress: data after the gzip stream")
        return out.decode("utf-8")
    except (zlib.error, UnicodeDecodeError) as exc:
        raise EnvelopeError(f"payload does not decompress: {exc}") from exc


def _check_inflated(size: int, lines: int, limits: BatchLimits) -> None:
    if size > limits.max_bytes:
        raise EnvelopeError(
            f"payload expands beyond {limits.max_bytes} bytes (ingest.max_batch_bytes): a "
            "compression bomb, or a batch larger than this data centre accepts; decompression "
            "stopped there"
        )
    if lines > limits.max_records:
        raise EnvelopeError(
            f"payload holds more than {limits.max_records} records (ingest.max_batch_records); "
            "decompression stopped there"
        )


def _manifest_from(raw: Any) -> Manifest:
    if not isinstance(raw, dict):
        raise EnvelopeError("manifest is not a JSON object")
    if raw.get("format") != FORMAT_NAME or raw.get("version") != FORMAT_VERSION:
        raise EnvelopeError(
            f"unsupported batch format {raw.get('format')!r} version {raw.get('version')!r}"
        )
    if raw.get("protection") != "none" or raw.get("compression") != "gzip":
        raise EnvelopeError(
            f"unsupported protection {raw.get('protection')!r} / compression {raw.get('compression')!r}"
        )
    expected = {
        "agent_id": str, "tenant": str, "sequence": int, "record_count": int,
        "first_record_id": str, "last_record_id": str, "payload_sha256": str,
        "payload_bytes": int, "created_at": str, "icdr_version": int,
    }  # fmt: skip
    for key, kind in expected.items():
        value = raw.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise EnvelopeError(f"manifest field '{key}' is missing or not a {kind.__name__}")
    if raw["record_count"] < 1 or raw["sequence"] < 0:
        raise EnvelopeError("manifest record_count or sequence is out of range")
    try:
        parse_time("created_at", raw["created_at"])
    except ICDRValidationError as exc:
        raise EnvelopeError(f"manifest {exc}") from exc
    known = set(Manifest.__dataclass_fields__)
    return Manifest(**{k: v for k, v in raw.items() if k in known})
