"""Delivery throughput: sealing (CMS) + SFTP upload + verification, against OpenSSH's own sftp.

    .venv/bin/python benchmarks/delivery.py [--quick] [--batches N] [--per-batch N]

Spools N batches of fictional calls, then times each stage on this machine:

1. seal: ``Batcher.seal_ready`` with protection ``cms`` (gzip, ECDSA P-256 signature, AES-256
   envelope to an RSA 3072 certificate), files written durably to the outbox;
2. sftp: ``Uplink.send_sealed`` to a real OpenSSH sshd on loopback (pinned host key, ``.part``
   then ``posix_rename``, spool updated per batch);
3. verify (for reference, not added to the total): the data centre's opener
   ``shared.cms.open_landed`` alone (decrypt, verify the signature, check the manifest, parse
   every ICDR) plus a signed receipt per batch;
4. ingest: ``datacenter.ingest.worker.ingest_once`` over the landing area into a migrated SQLite
   store: claim, open (step 3 again, for real), store every call once, rate, write the signed
   receipt, archive. This is what the data centre spends per batch.

Baseline, in the same run: OpenSSH's ``sftp -b`` uploading the same sealed files to the same
sshd (one session, ``put`` each). The ratios say what our SFTP client costs against OpenSSH's,
and what the whole pipeline (seal + upload + ingest) costs against a bare upload of its output.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datacenter.accounts.agents import enroll_agent
from datacenter.accounts.tenants import create_tenant
from datacenter.ingest.worker import ingest_once
from datacenter.settings import settings_for_data_dir
from datacenter.store.engine import open_store, upgrade, write_transaction
from edge_agent.config import UplinkSettings
from edge_agent.delivery.batches import Batcher
from edge_agent.delivery.uplink import Uplink
from edge_agent.spool import Spool
from shared import cms, keys
from shared.icdr import ICDR, Completion, Direction, make_record_id
from shared.receipts import make_receipt
from tests.fixtures.sshd import SshdServer, make_sshd

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def make_record(n: int) -> ICDR:
    start = T0 + timedelta(seconds=7 * n)
    return ICDR(
        record_id=make_record_id("pbx", str(n)), agent_id="bench-1", source_id="pbx",
        source_kind="mivb-smdr", start=start, answer=start + timedelta(seconds=4),
        end=start + timedelta(seconds=4 + n % 300), ring_seconds=4, talk_seconds=n % 300,
        direction=Direction.OUT if n % 3 else Direction.IN, calling=f"2{n % 100:03d}",
        called=f"01632960{n % 1000:03d}", dialled_digits=f"901632960{n % 1000:03d}",
        extension=f"2{n % 100:03d}", trunk="T1", answered=True, completion=Completion.ANSWERED,
        raw=f"03/02 08:00:00 0000:01:00 2{n % 100:03d} 901632960{n % 1000:03d} T1 line {n}",
        parser_version="bench-1",
    )  # fmt: skip


def timed(step: Callable[[], object]) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def openssh_upload(sshd: SshdServer, files: list[Path], work: Path) -> float:
    """Seconds for OpenSSH's sftp to put ``files`` into baseline/ in one session."""
    (sshd.landing / "baseline").mkdir(exist_ok=True)
    script = work / "sftp-batch"
    script.write_text("".join(f"put {f} baseline/{f.name}\n" for f in files))
    argv = ["sftp", "-q", "-b", str(script), "-i", str(sshd.client_key), "-P", str(sshd.port),
            "-o", f"UserKnownHostsFile={sshd.known_hosts}", "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes", f"{sshd.username}@127.0.0.1"]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, timeout=600)
    return time.perf_counter() - started


def ingest(
    work: Path, landing: Path, dc: keys.DatacentreKeys, agent: keys.AgentIdentity
) -> tuple[float, int]:
    """Seconds for the real ingest of everything landed, and the calls it stored."""
    settings = settings_for_data_dir(work / "dc")
    settings = dataclasses.replace(
        settings, landing=dataclasses.replace(settings.landing, root=landing)
    )
    engine = open_store(settings.store.url)
    try:
        upgrade(engine)
        with write_transaction(engine) as conn:
            create_tenant(conn, "demo", "Bench Ltd", "UTC")
            enroll_agent(conn, "demo", "bench-1", certificate=agent.certificate)
        started = time.perf_counter()
        report = ingest_once(engine, settings, keys=dc)
        seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    if report.count("stored") != len(report.outcomes):
        raise SystemExit(f"ingest did not store every batch: {report.summary()}")
    return seconds, report.inserted


def run(batches: int, per_batch: int) -> None:
    agent = keys.new_agent_identity("bench-1")
    dc = keys.new_datacentre_keys("bench-dc")
    recipient = cms.Recipient(dc.certificates.envelope, dc.envelope_key)
    trusted = {keys.fingerprint(agent.certificate)}
    with tempfile.TemporaryDirectory(prefix="cc-delivery-") as tmp:
        work = Path(tmp)
        sshd = make_sshd(work / "sshd")
        sshd.start()
        try:
            with Spool.open(work / "state", quota_bytes=2**34) as spool:
                for b in range(batches):
                    numbers = range(b * per_batch, (b + 1) * per_batch)
                    spool.store("pbx", [(n, make_record(n)) for n in numbers], [], cursor=None,
                                now=T0)  # fmt: skip
                batcher = Batcher(
                    spool, state_dir=work / "state", agent_id="bench-1", tenant="demo",
                    max_records=per_batch,
                    protect=lambda c: cms.protect(c, signer=agent,
                                                  recipient=dc.certificates.envelope),
                )  # fmt: skip
                settings = UplinkSettings(
                    host="127.0.0.1", port=sshd.port, username=sshd.username,
                    private_key=sshd.client_key, known_hosts=sshd.known_hosts,
                )  # fmt: skip
                uplink = Uplink(settings, spool=spool, batcher=batcher, clock=lambda: T0)
                seal_s = timed(lambda: batcher.seal_ready(T0))
                files = sorted((work / "state" / "outbox").iterdir())
                total_bytes = sum(f.stat().st_size for f in files)
                copies = work / "copies"  # the baseline uploads the very same bytes
                copies.mkdir()
                for f in files:
                    shutil.copy(f, copies / f.name)
                sftp_s = timed(uplink.send_sealed)
            landed = sorted((sshd.landing / "incoming").iterdir())

            def verify() -> None:
                for path in landed:
                    data = path.read_bytes()
                    opened = cms.open_landed(data, recipient=recipient, trusted_signers=trusted)
                    make_receipt(batch_name=path.name, sha256="0" * 64,
                                 records=len(opened.batch.records),
                                 inserted=len(opened.batch.records), duplicates=0, stored_at=T0,
                                 key=dc.receipts_key, certificate=dc.certificates.receipts)  # fmt: skip

            verify_s = timed(verify)
            ingest_s, stored = ingest(work, sshd.landing.parent, dc, agent)
            if stored != batches * per_batch:
                raise SystemExit(f"ingest stored {stored} calls, expected {batches * per_batch}")
            baseline_s = openssh_upload(sshd, sorted(copies.iterdir()), work)
        finally:
            sshd.stop()
    records = batches * per_batch
    mb = total_bytes / 1e6
    total_s = seal_s + sftp_s + ingest_s  # ingest opens every file itself: verify is inside
    print(f"{batches} batches x {per_batch} records = {records} records, {mb:.2f} MB sealed (cms)")
    for name, seconds in (("seal (cms)", seal_s), ("sftp upload", sftp_s),
                          ("(verify + receipt)", verify_s), ("ingest (SQLite)", ingest_s)):  # fmt: skip
        print(
            f"  {name:18s} {seconds:7.3f} s  {batches / seconds:8.1f} batches/s  "
            f"{mb / seconds:7.2f} MB/s  {records / seconds:9.0f} records/s"
        )
    print(
        f"  pipeline total     {total_s:7.3f} s  {batches / total_s:8.1f} batches/s  "
        f"{mb / total_s:7.2f} MB/s  {records / total_s:9.0f} records/s"
    )
    print(f"baseline: OpenSSH sftp -b, same files: {baseline_s:.3f} s, {mb / baseline_s:.2f} MB/s")
    print(f"ratio sftp upload / OpenSSH:            {baseline_s / sftp_s:.2f} (1.0 = as fast)")
    print(f"ratio pipeline / OpenSSH upload alone:  {baseline_s / total_s:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds: 4 x 500 records")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--per-batch", type=int, default=5000)
    args = parser.parse_args()
    if args.quick:
        args.batches, args.per_batch = 4, 500
    run(args.batches, args.per_batch)


if __name__ == "__main__":
    main()
