"""Calls per second from the agent's spool to the data centre's store, over real SFTP.

    .venv/bin/python benchmarks/end_to_end.py [--quick] [--calls N] [--per-batch N]

Issue 2's delivery benchmark: N ICDRs already in the agent's spool are sealed into batches as in
production (CMS: signed by the agent, encrypted to the data centre), uploaded by the agent's
uplink to a real OpenSSH sshd on loopback, and ingested (decrypt, verify, validate, insert once,
rate, receipt) into a SQLite store and then, from the same landed files, a PostgreSQL store. The
tenant has the demo tariff and a London dial plan, so every call is priced (the run checks it).

``--workers N`` runs N ingest workers side by side (separate processes claiming files through
the store, as production scales ingest). Printed: each stage's time and rate, the end-to-end rate per store (N / (seal + upload +
ingest), the stages run one after another on this one machine), and the pipelined rate (the
slowest stage: on a real deployment the agent and the data centre are different machines).
Baselines, measured in the same run: the rows ingest stored in SQLite, rewritten by plain
sqlite3 ``executemany`` into a new store of the same schema, one transaction per batch (the
store's floor: what SQLite itself costs); the same number of calls as narrow 7-column rows
(SQLite without the schema); and OpenSSH's own `sftp -b` uploading the same files (the
transport's floor).
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datacenter.accounts.agents import enroll_agent
from datacenter.accounts.tenants import create_tenant
from datacenter.ingest.keys import ensure_keys, load_ingest_keys
from datacenter.ingest.worker import ingest_once
from datacenter.rating.carriers import load_carrier_rules
from datacenter.rating.numbering import load_dial_plan
from datacenter.rating.store import import_tariff_plan, set_site
from datacenter.rating.tariffs import load_tariff
from datacenter.settings import Settings, settings_for_data_dir
from datacenter.store.engine import open_store, upgrade, write_transaction
from datacenter.store.tables.rating import call_costs, unrated_calls
from edge_agent.config import UplinkSettings
from edge_agent.delivery.batches import Batcher
from edge_agent.delivery.uplink import Uplink
from edge_agent.spool import Spool
from shared import cms
from shared.icdr import ICDR, Completion, Direction, make_record_id
from shared.keys import new_agent_identity
from tests.fixtures.postgres import server_memory, throwaway_cluster
from tests.fixtures.sshd import SshdServer, make_sshd

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
DEMO = Path(__file__).resolve().parents[1] / "datacenter" / "rating" / "demo"
AGENT, TENANT = "bench-site", "demo"  # make_sshd's landing folder is <root>/demo
T = TypeVar("T")


def timed(what: Callable[[], T]) -> tuple[T, float]:
    began = time.perf_counter()
    result = what()
    return result, time.perf_counter() - began


# What a London site dials (access digit 9; fictional Ofcom drama ranges and a French mobile), so
# every call is rated against the demo tariff as in production.
DIALLED = (
    "9 020 7946 0{:03d}",
    "9 01632 960{:03d}",
    "9 07700 900{:03d}",
    "9 00 33 6 12 34 5{:03d}",
)


def gen_call(n: int) -> ICDR:
    start = T0 + timedelta(seconds=7 * n)
    talk = n % 600
    dialled = DIALLED[n % len(DIALLED)].format(n % 1000)
    return ICDR(
        record_id=make_record_id(AGENT, "pbx1", str(n)), agent_id=AGENT, source_id="pbx1",
        source_kind="mivb-smdr", start=start, answer=start + timedelta(seconds=5),
        end=start + timedelta(seconds=5 + talk), ring_seconds=5, talk_seconds=talk,
        direction=Direction.OUT, calling=f"2{n % 400:03d}", called="T061",
        dialled_digits=dialled, extension=f"2{n % 400:03d}", trunk="T061",
        answered=True, completion=Completion.ANSWERED, completion_source="A",
        raw=f" 03/02 08:00  00:{talk // 60:02d}:{talk % 60:02d} 2{n % 400:03d}      "
        f"{dialled.replace(' ', ''):26}A T061                    001  ",
        parser_version="mivb-smdr/1",
    )  # fmt: skip


def fill_spool(spool: Spool, calls: int) -> None:
    chunk = 10_000
    for first in range(0, calls, chunk):
        rows = [(n + 1, gen_call(n)) for n in range(first, min(calls, first + chunk))]
        spool.store("pbx1", rows, [], cursor=rows[-1][0], now=T0)


def store_for(settings: Settings, url: str, cert_pem: object) -> Settings:
    engine = open_store(url)
    upgrade(engine)
    with write_transaction(engine) as conn:
        tenant = create_tenant(conn, TENANT, "Bench", "Europe/London")
        enroll_agent(conn, TENANT, AGENT, certificate=cert_pem)  # type: ignore[arg-type]
        import_tariff_plan(conn, tenant.tenant_id, load_tariff(DEMO / "britline.toml"), now=T0)
        set_site(conn, tenant.tenant_id, AGENT, dial_plan=load_dial_plan(DEMO / "london.toml"),
                 carriers=load_carrier_rules(DEMO / "london-routes.toml"), now=T0)  # fmt: skip
    engine.dispose()
    return replace(settings, store=replace(settings.store, url=url))


class Worker:
    """A running ingest worker: its engine and keys are ready before the clock starts, as in a
    long-running ``datacenter ingest --watch``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = open_store(settings.store.url)
        self.keys = load_ingest_keys(settings)
        with self.engine.connect():
            pass  # the pool's first connection, and SQLite's pragmas, before the clock starts

    def ingest(self) -> int:
        """One pass over incoming/: the calls this worker inserted."""
        return ingest_once(self.engine, self.settings, keys=self.keys).inserted


_worker: Worker | None = None  # one per pool process


def _start_worker(settings: Settings) -> None:
    global _worker
    _worker = Worker(settings)


def _ingest_in_worker(_index: int) -> int:
    assert _worker is not None
    return _worker.ingest()


def ingest_from(
    settings: Settings, landed: Path, incoming: Path, calls: int, *, workers: int
) -> float:
    """Put the landed batch files into incoming/ and let ready workers ingest them all; seconds.

    With several workers (processes), each claims files through the store as production workers
    do, so decryption, validation and rating run in parallel while the store serialises the
    writes. Worker start-up (imports, keys, connection) is outside the measured time."""
    if workers == 1:
        worker = Worker(settings)
        _place(landed, incoming)
        inserted, seconds = timed(lambda: [worker.ingest()])
    else:
        context = multiprocessing.get_context("spawn")
        with context.Pool(workers, initializer=_start_worker, initargs=(settings,)) as pool:
            pool.map(_ingest_in_worker, range(workers))  # all started, nothing to do yet
            _place(landed, incoming)
            inserted, seconds = timed(lambda: pool.map(_ingest_in_worker, range(workers)))
    assert sum(inserted) == calls, f"{sum(inserted)} of {calls} calls inserted"
    engine = open_store(settings.store.url)
    with engine.connect() as conn:
        priced = conn.execute(sa.select(sa.func.count()).select_from(call_costs)).scalar_one()
        queued = conn.execute(sa.select(sa.func.count()).select_from(unrated_calls)).scalar_one()
    engine.dispose()
    assert (priced, queued) == (calls, 0), f"{priced} calls priced, {queued} unrated"
    return seconds


def _place(landed: Path, incoming: Path) -> None:
    for path in sorted(landed.iterdir()):
        shutil.copy(path, incoming / path.name)


def sqlite_floor(calls: int, per_batch: int, path: Path) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(
        "CREATE TABLE calls (tenant_id INT, record_id TEXT, start TEXT, talk INT, "
        "calling TEXT, dialled TEXT, raw TEXT, PRIMARY KEY (tenant_id, record_id))"
    )
    rows = [(1, c.record_id, c.start.isoformat(), c.talk_seconds, c.calling, c.dialled_digits,
             c.raw) for c in map(gen_call, range(calls))]  # fmt: skip
    began = time.perf_counter()
    for first in range(0, calls, per_batch):
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "INSERT INTO calls VALUES (?, ?, ?, ?, ?, ?, ?)", rows[first : first + per_batch]
        )
        db.execute("COMMIT")
    seconds = time.perf_counter() - began
    db.close()
    return seconds


def store_floor(stored: Path, per_batch: int, path: Path) -> float:
    """Seconds for plain sqlite3 to write the very rows ingest stored into a new store.

    The store's own schema (indexes, foreign keys) and pragmas, the calls and call_costs rows
    read back from the SQLite run, committed ``per_batch`` at a time in the order ingest wrote
    them; only BEGIN, ``executemany`` and COMMIT are timed. What is left is SQLite's own work, so
    ingest / this floor says how much of ingest is not the database.
    """
    upgrade(open_store(f"sqlite:///{path}"))
    db = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode = WAL", "synchronous = FULL", "foreign_keys = ON"):
        db.execute(f"PRAGMA {pragma}")
    db.execute("ATTACH DATABASE ? AS stored", (f"file:{stored}?mode=ro",))
    for table in ("tenants", "agents"):
        db.execute(f"INSERT INTO main.{table} SELECT * FROM stored.{table}")
    last = db.execute("SELECT max(rowid) FROM stored.calls").fetchone()[0]
    seconds = 0.0
    for first in range(0, last, per_batch):
        batch = []
        for table in ("calls", "call_costs"):
            rows = db.execute(
                f"SELECT * FROM stored.{table} WHERE rowid > ? AND rowid <= ? ORDER BY rowid",
                (first, first + per_batch),
            ).fetchall()
            marks = ", ".join("?" * len(rows[0])) if rows else ""
            batch.append((f"INSERT INTO main.{table} VALUES ({marks})", rows))
        began = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        for statement, rows in batch:
            if rows:
                db.executemany(statement, rows)
        db.execute("COMMIT")
        seconds += time.perf_counter() - began
    db.close()
    return seconds


def sftp_floor(files: Path, sshd_port: int, key: Path, known_hosts: Path, user: str) -> float:
    batch = "".join(f"put {p} incoming/floor-{p.name}\n" for p in sorted(files.iterdir()))
    began = time.perf_counter()
    subprocess.run(
        ["sftp", "-q", "-b", "-", "-i", str(key), "-o", f"UserKnownHostsFile={known_hosts}",
         "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-P", str(sshd_port),
         f"{user}@127.0.0.1"],
        input=batch, text=True, check=True, capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - began


def run(calls: int, per_batch: int, workers: int) -> None:
    with tempfile.TemporaryDirectory(prefix="cc-e2e-") as tmp:
        root = Path(tmp)
        sshd = make_sshd(root / "sshd")
        sshd.start()
        try:
            measure(root, sshd, calls, per_batch, workers)
        finally:
            sshd.stop()


def measure(root: Path, sshd: SshdServer, calls: int, per_batch: int, workers: int) -> None:
    dc = settings_for_data_dir(root / "dc")
    bundle = ensure_keys(dc.keys).certificates
    identity = new_agent_identity(AGENT)
    protect = partial(cms.protect, signer=identity, recipient=bundle.envelope)
    with Spool.open(root / "agent", quota_bytes=64 * 2**30) as spool:
        fill_spool(spool, calls)
        batcher = Batcher(spool, state_dir=root / "agent", agent_id=AGENT, tenant=TENANT,
                          max_records=per_batch, protect=protect)  # fmt: skip
        sealed, seal_s = timed(lambda: batcher.seal_ready(T0, force=True))
        uplink = Uplink(
            UplinkSettings(host="127.0.0.1", port=sshd.port, username=sshd.username,
                           private_key=sshd.client_key, known_hosts=sshd.known_hosts,
                           connect_timeout_seconds=10, transfer_timeout_seconds=600),
            spool=spool, batcher=batcher, clock=lambda: T0,
        )  # fmt: skip
        uploaded, upload_s = timed(uplink.send_sealed)
    assert len(uploaded) == len(sealed)
    landed = root / "landed"
    shutil.move(sshd.landing / "incoming", landed)
    (sshd.landing / "incoming").mkdir()
    megabytes = sum(p.stat().st_size for p in landed.iterdir()) / 1e6
    incoming = dc.landing.tenant_dir(TENANT, "incoming")
    incoming.mkdir(parents=True)

    sqlite = store_for(dc, f"sqlite:///{root / 'dc' / 'bench.db'}", identity.certificate)
    sqlite_s = ingest_from(sqlite, landed, incoming, calls, workers=workers)
    with throwaway_cluster(server_memory()) as cluster:
        postgres = store_for(
            dc, cluster.url(cluster.create_database("bench")), identity.certificate
        )
        pg_s = ingest_from(postgres, landed, incoming, calls, workers=workers)

    floor_db = sqlite_floor(calls, per_batch, root / "floor.db")
    floor_store = store_floor(root / "dc" / "bench.db", per_batch, root / "store-floor.db")
    floor_sftp = sftp_floor(landed, sshd.port, sshd.client_key, sshd.known_hosts, sshd.username)

    def rate(seconds: float) -> str:
        return f"{calls / seconds:>10,.0f} calls/s"

    print(f"calls: {calls:,} in {len(sealed)} batches of {per_batch:,} ({megabytes:.1f} MB sealed)")
    print(f"seal (gzip + CMS sign + encrypt):   {seal_s:7.2f} s {rate(seal_s)}")
    print(f"upload (paramiko SFTP):             {upload_s:7.2f} s {rate(upload_s)} "
          f"{megabytes / upload_s:6.1f} MB/s")  # fmt: skip
    print(f"ingest into SQLite ({workers} worker(s)):     {sqlite_s:7.2f} s {rate(sqlite_s)}")
    print(f"ingest into PostgreSQL ({workers} worker(s)): {pg_s:7.2f} s {rate(pg_s)}")
    for name, ingest_s in (("SQLite", sqlite_s), ("PostgreSQL", pg_s)):
        serial = seal_s + upload_s + ingest_s
        pipelined = max(seal_s, upload_s, ingest_s)
        print(
            f"end to end, {name:10}: one machine, stages in turn {rate(serial)}; "
            f"pipelined (agent and data centre apart) {rate(pipelined)}"
        )
    print(
        f"baseline: plain sqlite3 executemany {rate(floor_db)}; "
        f"OpenSSH sftp -b {megabytes / floor_sftp:6.1f} MB/s"
    )
    print(f"baseline: the stored rows rewritten by plain sqlite3 into the store's schema "
          f"{rate(floor_store)}")  # fmt: skip
    print(
        f"ratio: SQLite ingest / the store's floor = {floor_store / sqlite_s:.2f}; "
        f"SQLite ingest / plain sqlite3 = {floor_db / sqlite_s:.2f}; "
        f"paramiko upload / sftp -b = {floor_sftp / upload_s:.2f}"
    )
    target = 15_000
    best = calls / max(seal_s, upload_s, min(sqlite_s, pg_s))
    print(
        f"target {target:,} calls/s end to end: {'met' if best >= target else 'NOT met'} "
        f"(pipelined, best store: {best:,.0f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 calls, well under a minute")
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--per-batch", type=int, default=5_000)
    parser.add_argument(
        "--workers", type=int, default=1, help="ingest workers (stateless; claim files)"
    )
    args = parser.parse_args()
    run(20_000 if args.quick else args.calls, args.per_batch, args.workers)


if __name__ == "__main__":
    main()
