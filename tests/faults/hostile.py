"""Hostile landed files for the ingest fault tests, and an ingest worker run as its own process.

``write_gzip_bomb_batch`` writes a well-formed batch (magic, manifest with the right digest)
whose payload is one gzip member expanding to ``expands_to`` zero bytes, built block by block:
one raw-deflate block of a MiB of zeros, ended by a full flush, is byte-aligned and independent
of what came before, so the same bytes repeated are a valid stream and nothing of the expansion
is ever held (a 4 GiB bomb is about 4 MB on disk). ``run_ingest_process`` runs ``datacenter
ingest --once`` under an address-space limit (a worker that tries to hold the bomb dies instead
of taking the machine's memory) and reports its exit code, output and peak RSS (``VmHWM``).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

from shared.envelope import MAGIC

BIN = Path(sys.executable).parent
MIB = 1024 * 1024
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, mtime 0, OS unknown
ADDRESS_SPACE_LIMIT = 3 * 1024 * MIB  # far above a bounded worker, far below the bomb


def _zero_block() -> tuple[bytes, bytes]:
    """(one MiB of zeros as a raw deflate block ending in a full flush, the final empty block)."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = deflate.compress(bytes(MIB)) + deflate.flush(zlib.Z_FULL_FLUSH)
    return block, deflate.flush(zlib.Z_FINISH)


def write_gzip_bomb_batch(
    path: Path, *, expands_to: int, agent_id: str, tenant: str, sequence: int
) -> int:
    """Write the bomb batch to ``path``; its size in bytes. ``expands_to`` is in whole MiB."""
    block, final = _zero_block()
    mebibytes = expands_to // MIB
    crc = 0
    zeros = bytes(MIB)
    for _ in range(mebibytes):
        crc = zlib.crc32(zeros, crc)
    trailer = struct.pack("<II", crc, (mebibytes * MIB) & 0xFFFFFFFF)
    payload_parts = [GZIP_HEADER, *([block] * mebibytes), final, trailer]
    digest = hashlib.sha256()
    for part in payload_parts:
        digest.update(part)
    manifest = {
        "agent_id": agent_id, "tenant": tenant, "sequence": sequence, "record_count": 1,
        "first_record_id": "r1", "last_record_id": "r1",
        "payload_sha256": digest.hexdigest(), "payload_bytes": sum(map(len, payload_parts)),
        "created_at": "2026-03-02T09:00:00Z", "icdr_version": 1, "compression": "gzip",
        "protection": "none", "format": "callcollect-batch", "version": 1,
    }  # fmt: skip
    with path.open("wb") as out:
        out.write(MAGIC + json.dumps(manifest, sort_keys=True).encode() + b"\n")
        for part in payload_parts:
            out.write(part)
    return path.stat().st_size


def write_sparse(path: Path, size: int) -> None:
    """A file of ``size`` bytes that takes no disk space (a hole): stat says large, reading works."""
    with path.open("wb") as out:
        out.truncate(size)


@dataclass(frozen=True, slots=True)
class IngestRun:
    returncode: int
    output: str
    peak_rss_bytes: int


def write_worker_config(path: Path, *, data_dir: Path, store_url: str, **ingest: object) -> Path:
    """A data-centre TOML config for ``run_ingest_process``; ``ingest`` keys go under [ingest]."""
    lines = [f"data_dir = {json.dumps(str(data_dir))}", "[store]", f"url = {json.dumps(store_url)}"]
    lines += ["[ingest]", "accept_unprotected = true"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in ingest.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# The worker reports its own high-water RSS (``VmHWM``) as it exits. Not ``wait4``'s ru_maxrss:
# that keeps the high-water mark of the forked copy of the test process from before exec.
WORKER = """
import atexit, sys
from pathlib import Path

PEAK_FILE = Path(sys.argv[1])

def report_peak():
    status = Path("/proc/self/status").read_text()
    peak = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    PEAK_FILE.write_text(peak)

atexit.register(report_peak)
from datacenter.cli import main
sys.argv = ["datacenter", "ingest", "--once", "--config", sys.argv[2]]
main()
"""


# Root reads any file whatever its mode; without these capabilities a mode-000 file is refused
# to root as to anyone (the test suite runs as root; an ingest worker in production does not).
NO_DAC_OVERRIDE = ("setpriv", "--bounding-set=-dac_override,-dac_read_search", "--")


def run_ingest_process(
    config: Path, *, timeout: float = 240, modes_apply: bool = False
) -> IngestRun:
    """``datacenter ingest --once`` as a child under ``prlimit``; its peak RSS as it reported.

    ``modes_apply``: file modes bind the worker even when the tests run as root.
    """
    peak_file = config.with_suffix(".peak")
    peak_file.unlink(missing_ok=True)
    command = [*NO_DAC_OVERRIDE] if modes_apply and os.geteuid() == 0 else []
    command += ["prlimit", f"--as={ADDRESS_SPACE_LIMIT}", "--", sys.executable, "-c", WORKER]
    child = subprocess.run(
        [*command, str(peak_file), str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    peak_kib = int(peak_file.read_text()) if peak_file.exists() else 0
    return IngestRun(child.returncode, child.stdout, peak_kib * 1024)
