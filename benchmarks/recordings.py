"""Data-centre ingest of call recordings: recordings/s and MB/s of audio through `ingest_once`.

    .venv/bin/python benchmarks/recordings.py [--quick] [--recordings N] [--seconds S]

The agent's own ``RecordingOutbox`` seals N recordings of S seconds (stereo 8 kHz 16-bit WAV,
32 kB/s) into CMS-protected ``.ccr`` batches of at most 16 MB (signed by an enrolled agent,
encrypted to the data centre); they land in the tenant's ``recordings/`` folder and one
``ingest_once`` pass stores them (claim, decrypt, verify, stream the tar, AES-GCM the audio to
disk with fsync, rows, receipt, archive) on SQLite.

Baseline, measured in the same run on the same files: the bare minimum any ingest must do with
them, ``shared.cms.unprotect`` (decrypt + verify the signature) and write the decrypted bytes
to one file with fsync. The ratio says what the rest (tar reading, encryption at rest, rows,
receipts, moves) costs. Peak RSS is the benchmark process's (the batches are built in it too).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import shutil
import sys
import tempfile
import time
import uuid
import wave
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography import x509

from datacenter.accounts.agents import enroll_agent
from datacenter.accounts.tenants import create_tenant
from datacenter.ingest.keys import ensure_keys
from datacenter.ingest.worker import ingest_once
from datacenter.settings import settings_for_data_dir
from datacenter.store.engine import open_store, upgrade, write_transaction
from edge_agent.delivery.recordings import OutboxSettings, RecordingOutbox
from shared import cms, keys
from shared.keys import load_datacentre_keys
from tests.fixtures.recordings import Recording, metadata

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
TENANT, AGENT = "bench", "edge-1"
BATCH_BYTES = 16 * 1024 * 1024
RATE, CHANNELS, WIDTH = 8000, 2, 2


def wav_bytes(path: Path, seconds: float) -> None:
    """A WAV of noise (random samples: incompressible, as real audio nearly is)."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(CHANNELS)
        out.setsampwidth(WIDTH)
        out.setframerate(RATE)
        out.writeframes(os.urandom(int(seconds * RATE) * CHANNELS * WIDTH))


def seal_batches(state: Path, count: int, seconds: float, identity: keys.AgentIdentity,
                 envelope: x509.Certificate) -> list[Path]:  # fmt: skip
    protect = functools.partial(cms.protect, signer=identity, recipient=envelope)
    settings = OutboxSettings(state_dir=state, agent_id=AGENT, tenant=TENANT, protect=protect,
                              max_bytes=BATCH_BYTES)  # fmt: skip
    outbox = RecordingOutbox(settings, recent=lambda since: [])
    for i in range(count):
        rec = Recording(start=T0 + timedelta(minutes=i), seconds=seconds,
                        recording_id=str(uuid.uuid4()))  # fmt: skip
        wav_bytes(settings.recordings / f"{rec.recording_id}.wav", seconds)
        (settings.recordings / f"{rec.recording_id}.sip").write_bytes(b"INVITE sip:x SIP/2.0\r\n")
        meta = metadata(rec, agent_id=AGENT)
        (settings.recordings / f"{rec.recording_id}.json").write_text(json.dumps(meta))
    return outbox.seal_ready(datetime.now(UTC), force=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 recordings of 30 s")
    parser.add_argument("--recordings", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    count, seconds = (20, 30.0) if args.quick else (args.recordings, args.seconds)

    with tempfile.TemporaryDirectory(prefix="bench-recordings-") as tmp:
        base = Path(tmp)
        settings = settings_for_data_dir(base / "data")
        settings = replace(settings, ingest=replace(settings.ingest, max_file_bytes=64 << 20))
        ensure_keys(settings.keys)
        dc = load_datacentre_keys(settings.keys.envelope_key, settings.keys.receipts_key,
                                  settings.keys.certificates)  # fmt: skip
        identity = keys.new_agent_identity(AGENT)
        engine = open_store(settings.store.url)
        upgrade(engine)
        with write_transaction(engine) as conn:
            create_tenant(conn, TENANT, "Bench", "Europe/London")
            enroll_agent(conn, TENANT, AGENT, certificate=identity.certificate)

        batches = seal_batches(base / "agent", count, seconds, identity, dc.certificates.envelope)
        landed_bytes = sum(p.stat().st_size for p in batches)
        audio_mb = count * int(seconds * RATE) * CHANNELS * WIDTH / 1e6

        # baseline: decrypt + verify + write the decrypted bytes, fsynced
        recipient = cms.Recipient(dc.certificates.envelope, dc.envelope_key)
        trusted = {keys.fingerprint(identity.certificate)}
        out = base / "baseline"
        out.mkdir()
        started = time.perf_counter()
        for path in batches:
            opened = cms.unprotect(path.read_bytes(), recipient=recipient, trusted_signers=trusted)
            with (out / path.name).open("wb") as fh:
                fh.write(opened.content)
                fh.flush()
                os.fsync(fh.fileno())
        baseline = time.perf_counter() - started

        folder = settings.landing.tenant_dir(TENANT, "recordings")
        folder.mkdir(parents=True)
        for path in batches:
            shutil.copyfile(path, folder / path.name)
        started = time.perf_counter()
        report = ingest_once(engine, settings)
        elapsed = time.perf_counter() - started
        engine.dispose()
        stored = sum(o.inserted for o in report.outcomes)
        assert stored == count, report.summary()

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"recordings: {count} x {seconds:.0f} s ({audio_mb:.1f} MB of WAV) in {len(batches)} "
          f".ccr batches ({landed_bytes / 1e6:.1f} MB landed)")  # fmt: skip
    print(f"ingest_once:        {elapsed:7.2f} s  {count / elapsed:8.1f} recordings/s  "
          f"{audio_mb / elapsed:7.1f} MB/s")  # fmt: skip
    print(f"baseline (decrypt+verify+write, fsync): {baseline:7.2f} s  "
          f"{audio_mb / baseline:7.1f} MB/s")  # fmt: skip
    print(f"ratio ingest / baseline: {elapsed / baseline:.2f}x the time")
    print(f"peak RSS of this process: {peak_mb:.0f} MB (batches of at most "
          f"{BATCH_BYTES >> 20} MB)")  # fmt: skip


if __name__ == "__main__":
    main()
