"""Ingest throughput on SQLite: calls stored per second through `ingest_once`.

    .venv/bin/python benchmarks/ingest.py [--quick] [--files N] [--per-file N]

Seals N batch files of fictional calls into a fresh landing area, ingests them in one pass and
prints calls/s. Baseline, measured in the same run on the same machine: the same rows, already encoded,
written by plain sqlite3 ``executemany`` (INSERT OR IGNORE, one transaction per file) into the same
migrated schema, with no envelope, validation, rollups or file moves. The ratio says what the
rest of the pipeline costs. Target: well over 15,000 calls/s.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datacenter.accounts.agents import enroll_agent
from datacenter.accounts.tenants import create_tenant
from datacenter.ingest.rows import CALL_COLUMNS, call_values
from datacenter.ingest.worker import ingest_once
from datacenter.settings import settings_for_data_dir
from datacenter.store.engine import open_store, upgrade, write_transaction
from shared.envelope import batch_file_name, seal
from shared.icdr import ICDR, Completion, Direction, make_record_id

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def make_records(file_no: int, per_file: int) -> list[ICDR]:
    out = []
    for i in range(per_file):
        n = file_no * per_file + i
        start = T0 + timedelta(seconds=7 * n)
        out.append(
            ICDR(
                record_id=make_record_id("bench", str(n)),
                agent_id="edge-1",
                source_id="pbx",
                source_kind="mitel_smdr",
                start=start,
                answer=start + timedelta(seconds=4),
                end=start + timedelta(seconds=4 + n % 300),
                ring_seconds=4,
                talk_seconds=n % 300,
                direction=Direction.OUT if n % 3 else Direction.IN,
                calling=f"2{n % 100:03d}",
                called=f"01632960{n % 1000:03d}",
                dialled_digits=f"901632960{n % 1000:03d}",
                extension=f"2{n % 100:03d}",
                trunk="T1",
                answered=True,
                completion=Completion.ANSWERED,
                raw=f"03/02 08:00:00 0000:01:00 2{n % 100:03d} 901632960{n % 1000:03d} T1 line {n}",
                parser_version="bench-1",
            )
        )
    return out


def run(files: int, per_file: int) -> None:
    with tempfile.TemporaryDirectory(prefix="cc-bench-") as tmp:
        base = Path(tmp)
        batches = [make_records(f, per_file) for f in range(files)]
        total = files * per_file

        # Pipeline under test.
        settings = settings_for_data_dir(base / "data")
        # Plain CCB1 files: the store side of ingest; benchmarks/delivery.py times it with CMS
        settings = replace(settings, ingest=replace(settings.ingest, accept_unprotected=True))
        engine = open_store(settings.store.url)
        upgrade(engine)
        with write_transaction(engine) as conn:
            tenant = create_tenant(conn, "acme", "Acme", "Europe/London")
            enroll_agent(conn, "acme", "edge-1")
        incoming = settings.landing.tenant_dir("acme", "incoming")
        incoming.mkdir(parents=True)
        for seq, records in enumerate(batches):
            data = seal(records, agent_id="edge-1", tenant="acme", sequence=seq)
            (incoming / batch_file_name("edge-1", seq)).write_bytes(data)
        began = time.perf_counter()
        report = ingest_once(engine, settings)
        pipeline = time.perf_counter() - began
        engine.dispose()
        assert report.inserted == total, report.summary()

        # Baseline: the same rows, plain sqlite3, same schema.
        url = f"sqlite:///{base / 'baseline.db'}"
        baseline_engine = open_store(url)
        upgrade(baseline_engine)
        with write_transaction(baseline_engine) as conn:
            create_tenant(conn, "acme", "Acme", "Europe/London")
        baseline_engine.dispose()
        now = datetime.now(UTC)
        # Encoded before the clock starts: the baseline is the database's own cost.
        encoded = [
            [_plain(call_values(tenant.tenant_id, rec, "x.ccb", now)) for rec in records]
            for records in batches
        ]
        sql = (
            f"INSERT OR IGNORE INTO calls ({', '.join(CALL_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(CALL_COLUMNS))})"
        )
        db = sqlite3.connect(base / "baseline.db", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        began = time.perf_counter()
        for rows in encoded:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(sql, rows)
            db.execute("COMMIT")
        baseline = time.perf_counter() - began
        db.close()

    rate, base_rate = total / pipeline, total / baseline
    print(f"calls: {total} in {files} files of {per_file}")
    print(f"ingest_once (SQLite): {pipeline:.2f} s, {rate:,.0f} calls/s")
    print(f"baseline (plain sqlite3 executemany): {baseline:.2f} s, {base_rate:,.0f} calls/s")
    print(f"ratio ingest/baseline: {rate / base_rate:.2f}")


def _plain(values: tuple[object, ...]) -> tuple[object, ...]:
    out: list[object] = []
    for value in values:
        if isinstance(value, datetime):
            value = value.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
        elif isinstance(value, dict | list):
            value = json.dumps(value)
        out.append(value)
    return tuple(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run, a few seconds")
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--per-file", type=int, default=2000)
    args = parser.parse_args()
    if args.quick:
        args = replace_args(args, files=5, per_file=500)
    run(args.files, args.per_file)


def replace_args(args: argparse.Namespace, **changes: int) -> argparse.Namespace:
    values = vars(args) | changes
    return argparse.Namespace(**values)


if __name__ == "__main__":
    main()
