"""The ingest worker: landed batch files -> verified, de-duplicated call rows, one file end to end.

Contract:

- Stateless: any number of workers (threads, processes, hosts) may scan the same landing area.
  A worker takes a file only by *claiming* it in the store: an insert into ``landed_files`` on
  the unique key ``(tenant_id, file_name)``. Exactly one claim wins; the others skip the file. A
  claim older than ``ingest.claim_timeout_seconds`` is from a dead worker and is taken over.
- The tenant is the landing folder (``<landing>/<slug>/incoming/NAME``), never the file: a
  manifest naming another tenant is quarantined. In an agent's own account
  (``<landing>/<account>/incoming/NAME``, docs/landing.md) the folder decides the agent too: a
  file naming another agent is quarantined before it is claimed. Only finished batch names
  (``shared.envelope.parse_batch_file_name``) are looked at; ``*.part`` uploads are left alone.
- The landing area is not trusted (``landing_io``): only regular files are read, no link is
  followed, nothing blocks; a file larger than ``ingest.max_file_bytes`` or not a regular file
  is quarantined unread. Only the SHA-256 is streamed before the claim; the file is read,
  decrypted and decompressed (within ``ingest.max_batch_*``) under it, so a file that kills its
  reader is quarantined after ``claim.MAX_READ_ATTEMPTS`` claims instead of stopping ingest.
- A file is opened with ``shared.cms.open_landed``: a CMS file must decrypt with the data
  centre's envelope key and be signed by exactly the certificate pinned for the agent its name
  names (``agents.certificate_fingerprint``); a plain CCB1 file is accepted only with
  ``ingest.accept_unprotected``. The keys are loaded once per worker (``datacenter.ingest.keys``).
- A file that fails verification (undecryptable, altered, signed by another key, unsigned, not a
  batch, wrong tenant, agent not enrolled, name and manifest disagree) is moved to
  ``quarantine/NAME`` with ``NAME.reason``
  beside it, and its ``landed_files`` row says why. Nothing of it is inserted. Moving it back to
  ``incoming/`` after fixing the cause (e.g. enrolling the agent) ingests it again.
- A good file's calls are inserted in ONE transaction with the claim's completion, the daily
  rollup (only rows actually inserted), their rating and the agent's last-seen sequence, in bulk
  (``datacenter.store.bulk``: COPY on PostgreSQL). Calls already stored
  (same ``(tenant_id, record_id)``) are counted as duplicates and change nothing, except that
  the complete version of a call stored incomplete (``end_pending``) replaces it and is rated
  (``datacenter.ingest.incomplete``). Only after the
  commit is a signed receipt written to ``receipts/NAME.receipt`` (``shared.receipts``: the
  agent may now delete the batch), and only after that is the file moved to
  ``archive/YYYY/MM/DD/NAME`` (UTC day of ingest). If the receipt cannot be written the file
  stays in ``incoming/`` and the next pass writes it (the ``resent`` case below).
- A crash anywhere is harmless: before the commit nothing is stored and the claim expires;
  after it, the file is still in ``incoming/`` and is recognised as already stored (same name and
  SHA-256), so it gets a receipt (``inserted`` 0, every record a duplicate), is archived and
  reported ``resent``. An identical file sent again is the same case. A *different* file under a name already stored is quarantined as ``NAME~SHA12``: it is
  kept for a technician, never merged silently.

Recordings batches (``recordings/AGENT-rec-N.ccr`` beside ``incoming/``) are taken in the same
pass, by ``datacenter.recordings.ingest`` through the same ``intake`` (docs/capture.md); and a
call batch's commit links recordings that were waiting for its calls.

- ``run_forever`` (``--watch``) also runs the store's jobs (``datacenter.jobs``: re-rate and
  rollup days) after a scan that found no file, one job per scan, so any idle worker helps.

The parts: ``claim`` (the claim protocol), ``intake`` (refuse, claim, read and decrypt any
landed file), ``files`` (finding and moving files), ``landing_io``
(file operations that trust nothing in the landing area), ``rows`` (the rows a batch stores),
``receipts`` (signing them); the command is ``datacenter.commands.ingest``.
"""

from __future__ import annotations

import functools
import gc
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import sqlalchemy as sa

from datacenter.accounts.agents import landing_accounts
from datacenter.accounts.tenants import list_tenants
from datacenter.health.heartbeats import QUARANTINED_HEARTBEATS, ingest_heartbeats
from datacenter.ingest.claim import LostClaim, our_claim
from datacenter.ingest.files import FileOutcome, Landed, archive, finished_batches
from datacenter.ingest.incomplete import complete_stored_calls
from datacenter.ingest.intake import check_attribution, open_file, quarantine, take_file
from datacenter.ingest.keys import load_ingest_keys
from datacenter.ingest.landing_io import linked_folders
from datacenter.ingest.receipts import write_batch_receipt
from datacenter.ingest.rows import CALL_COLUMNS, add_rollups, call_rows, call_values, unique_records
from datacenter.jobs.run import run_next_job
from datacenter.landing.layout import prune_receipts_now_and_then
from datacenter.rating.store import rate_batch, write_batch_rating
from datacenter.recordings.ingest import ingest_recordings_file, landed_recordings
from datacenter.recordings.linking import link_waiting
from datacenter.recordings.vault import VaultKey, load_recordings_key
from datacenter.settings import LANDING_FOLDERS, Settings
from datacenter.store.bulk import insert_new_rows
from datacenter.store.engine import write_transaction
from datacenter.store.tables.core import agents, calls, landed_files
from datacenter.store.tables.partitioning import call_keys
from shared.crashpoints import crash_point
from shared.envelope import Batch, BatchLimits, open_batch
from shared.errors import ConfigError, EnvelopeError
from shared.keys import DatacentreKeys

log = logging.getLogger(__name__)

FROM_SETTINGS: Literal["settings"] = "settings"  # ingest_once(keys=...): load them for this pass


@dataclass(frozen=True, slots=True)
class IngestReport:
    outcomes: tuple[FileOutcome, ...] = ()
    unknown_folders: tuple[str, ...] = ()  # landing folders with no tenant of that slug
    refused_folders: tuple[str, ...] = ()  # tenants skipped: a landing folder is not a directory

    def count(self, status: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    @property
    def inserted(self) -> int:
        return sum(outcome.inserted for outcome in self.outcomes)

    @property
    def duplicates(self) -> int:
        return sum(outcome.duplicates for outcome in self.outcomes)

    def summary(self) -> str:
        parts = [
            f"{len(self.outcomes)} file(s): {self.count('stored')} stored, "
            f"{self.count('duplicate')} duplicate, {self.count('resent')} re-sent, "
            f"{self.count('quarantined')} quarantined; "
            f"{self.inserted} call(s) inserted, {self.duplicates} already stored"
        ]
        if self.unknown_folders:
            parts.append(f"skipped unknown tenant folder(s): {', '.join(self.unknown_folders)}")
        if self.refused_folders:
            parts.append(f"refused linked folder(s): {'; '.join(self.refused_folders)}")
        return "; ".join(parts)


def new_worker_id() -> str:
    """Host, process and a random part: unique per worker, readable in ``landed_files``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def ingest_once(
    engine: sa.Engine,
    settings: Settings,
    *,
    worker_id: str | None = None,
    keys: DatacentreKeys | Literal["settings"] | None = FROM_SETTINGS,
) -> IngestReport:
    """One pass over every agent's and every tenant's ``incoming/`` folder (docs/landing.md).

    ``keys`` open files and sign receipts; by default they are loaded from ``settings.keys``
    (``datacenter.ingest.keys.load_ingest_keys``). None: no keys (only unprotected files, no receipts).
    """
    worker = worker_id or new_worker_id()
    opener = load_ingest_keys(settings) if keys == FROM_SETTINGS else keys
    with engine.connect() as conn:
        by_slug = {tenant.slug: tenant for tenant in list_tenants(conn)}
        accounts = landing_accounts(conn)
    by_id = {tenant.tenant_id: tenant for tenant in by_slug.values()}
    outcomes: list[FileOutcome] = []
    vault: VaultKey | None = None  # loaded when the first recordings batch is seen
    unknown: list[str] = []
    refused: list[str] = []
    root = settings.landing.root
    folders = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    for folder in folders:
        # Each agent's own account first (datacenter.landing), else a tenant's shared folder
        # (the layout before per-agent accounts, ingested while it exists: docs/landing.md).
        tenant, account_agent = by_slug.get(folder.name), None
        if folder.name in accounts:
            tenant_id, account_agent = accounts[folder.name]
            tenant = by_id[tenant_id]
        if tenant is None:
            if (folder / "incoming").is_dir():
                log.warning("landing folder %s has no tenant %r: skipped", folder, folder.name)
                unknown.append(folder.name)
            continue
        linked = linked_folders(folder, (*LANDING_FOLDERS, QUARANTINED_HEARTBEATS))
        if linked:
            log.error("tenant %s skipped, %s: ingest follows no links", tenant.slug, linked)
            refused.extend(linked)
            continue
        for landed in finished_batches(tenant, folder / "incoming", account_agent=account_agent):
            ingest = functools.partial(_ingest_file, engine, settings, landed, worker=worker,
                                       keys=opener)  # fmt: skip
            _take(ingest, landed, outcomes)
        for landed in landed_recordings(folder, tenant, account_agent=account_agent):
            vault = vault or _vault_key(settings)
            if vault is None:
                break
            ingest = functools.partial(ingest_recordings_file, engine, settings, landed,
                                       worker=worker, keys=opener, vault=vault)  # fmt: skip
            _take(ingest, landed, outcomes)
    _ingest_heartbeats(engine, settings)
    prune_receipts_now_and_then(root, sorted(accounts))  # agents cannot delete theirs
    return IngestReport(tuple(outcomes), tuple(unknown), tuple(refused))


def _take(
    ingest: Callable[[], FileOutcome | None], landed: Landed, outcomes: list[FileOutcome]
) -> None:
    """Ingest one file; an OS error is this file's only: the others must not wait for it."""
    try:
        with _collector_paused():
            outcome = ingest()
    except OSError as exc:
        log.error("%s/%s: %s; left where it is, retried next pass", landed.tenant.slug,
                  landed.name, exc)  # fmt: skip
        return
    if outcome is not None:
        log.info("%s/%s: %s %s", landed.tenant.slug, landed.name, outcome.status, outcome.reason)
        outcomes.append(outcome)


def _vault_key(settings: Settings) -> VaultKey | None:
    """The recordings key; without it recordings batches wait in the landing area (logged)."""
    try:
        return load_recordings_key(settings.keys.recordings_key)
    except ConfigError as exc:
        log.error("recordings batches left in the landing area: %s", exc)
        return None


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while one file is ingested.

    Why: a batch allocates tens of thousands of containers (records, rows, rating explanations)
    that all live until its commit, so the collector runs again and again over objects that are
    not garbage: 15 % of ingest's CPU time. A batch is bounded (its records are in memory anyway)
    and makes no reference cycles worth collecting early; the collector catches up after it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _ingest_heartbeats(engine: sa.Engine, settings: Settings) -> None:
    """Polling health's pass over ``<tenant>/heartbeats/``, after the batches of the same sessions."""
    report = ingest_heartbeats(engine, settings)
    if report.stored or report.rejected:
        log.info("%s", report.summary())


def run_forever(
    engine: sa.Engine,
    settings: Settings,
    *,
    stop_event: threading.Event,
    worker_id: str | None = None,
) -> None:
    """Scan every ``ingest.poll_seconds`` until ``stop_event`` is set; between scans that found
    no file, run the store's jobs (``datacenter.jobs.run``), one per scan.

    A store outage is logged and retried on the next pass; the files wait in ``incoming/``.
    """
    worker = worker_id or new_worker_id()
    keys = load_ingest_keys(settings)  # once: a bad key stops the worker at start, not mid-run
    log.info("ingest worker %s watching %s", worker, settings.landing.root)
    while not stop_event.is_set():
        try:
            report = ingest_once(engine, settings, worker_id=worker, keys=keys)
            # No file for us: help with the store's jobs (re-rate and rollup days), one at a
            # time, so a file landing meanwhile waits for one job at most.
            job = None if report.outcomes else run_next_job(
                engine, worker=worker, timeout=settings.ingest.job_claim_timeout_seconds
            )  # fmt: skip
        except sa.exc.OperationalError as exc:
            log.error("store unavailable, retrying in %s s: %s", settings.ingest.poll_seconds, exc)
        else:
            if report.outcomes:
                log.info("%s", report.summary())
            if job is not None:
                continue  # maybe more jobs: look again at once
        stop_event.wait(settings.ingest.poll_seconds)


def _ingest_file(
    engine: sa.Engine,
    settings: Settings,
    landed: Landed,
    *,
    worker: str,
    keys: DatacentreKeys | None,
) -> FileOutcome | None:
    """Claim, read, verify, store, receipt, archive one file; None if another worker has it."""
    return take_file(
        engine, settings, landed, worker=worker, keys=keys,
        store=lambda file: _store_batch(engine, settings, file, worker=worker, keys=keys),
    )  # fmt: skip


def _store_batch(
    engine: sa.Engine,
    settings: Settings,
    landed: Landed,
    *,
    worker: str,
    keys: DatacentreKeys | None,
) -> FileOutcome | None:
    """A claimed, read call batch: open it, store its calls, receipt and archive it."""
    try:
        batch = _open(engine, settings, landed, keys)
        _check_attribution(landed, batch)
    except EnvelopeError as exc:
        return quarantine(engine, settings, landed, str(exc), worker=worker)
    try:
        inserted, duplicates = _store(engine, landed, batch, worker=worker)
    except LostClaim:
        return None
    except sa.exc.DataError as exc:
        # A value the database cannot hold (PostgreSQL: NUL in text, a too-long code). Retrying
        # cannot help, so keep the file for a technician instead of failing on it forever.
        reason = f"the store refused a record in this batch: {exc.orig}; report it with the file"
        return quarantine(engine, settings, landed, reason, worker=worker)
    status = "stored" if inserted else "duplicate"
    receipted = write_batch_receipt(
        settings, keys, landed, records=len(batch.records), inserted=inserted,
        duplicates=duplicates, stored_at=datetime.now(UTC),
    )  # fmt: skip
    # None: another worker archived it, or the receipt must be retried from incoming/
    archived = archive(settings, landed, status=status) if receipted else None
    return FileOutcome(
        tenant=landed.tenant.slug,
        file_name=landed.name,
        status=status,
        records=len(batch.records),
        inserted=inserted,
        duplicates=duplicates,
        moved_to=archived.moved_to if archived else None,
    )


def _open(
    engine: sa.Engine, settings: Settings, landed: Landed, keys: DatacentreKeys | None
) -> Batch:
    """Decrypt and verify (``intake.open_file``), then open the CCB1 batch inside."""
    opened = open_file(engine, settings, landed, keys)
    limits = BatchLimits(settings.ingest.max_batch_records, settings.ingest.max_batch_bytes)
    return open_batch(opened.content, limits)


def _check_attribution(landed: Landed, batch: Batch) -> None:
    manifest = batch.manifest
    check_attribution(
        landed, tenant=manifest.tenant, agent_id=manifest.agent_id, sequence=manifest.sequence,
        senders=(rec.agent_id for rec in batch.records), items="records",
    )  # fmt: skip


def _store(engine: sa.Engine, landed: Landed, batch: Batch, *, worker: str) -> tuple[int, int]:
    """Insert the calls, rollups, agent state and claim completion in one transaction."""
    tenant = landed.tenant
    now = datetime.now(UTC)
    records = unique_records(batch.records)
    # Most of the CPU time (encoding rows, rating) is spent before the write lock is taken, so
    # concurrent workers overlap it; calls a re-sent batch already stored are rated for nothing.
    with engine.connect() as conn:
        rows = call_rows(conn, tenant.tenant_id, records, landed.name, now)
        rating = rate_batch(conn, tenant.tenant_id, records, now=now)
    with write_transaction(engine) as conn:
        inserted_ids = insert_new_rows(
            conn, calls, rows, key="record_id", scope=("tenant_id", tenant.tenant_id)
        )
        if conn.dialect.name == "postgresql":
            _analyze_keys_if_unsized(conn, len(inserted_ids))
        stored = [r for r in records if r.record_id in inserted_ids]
        add_rollups(conn, tenant, stored, rating.results)
        if stored:  # recordings that arrived before their calls
            link_waiting(conn, tenant.tenant_id, min(r.start for r in stored),
                         max(r.end for r in stored))  # fmt: skip
        write_batch_rating(conn, rating, inserted_ids)  # a cost or queue row per stored call
        complete_stored_calls(
            conn, tenant, records, inserted_ids, rating, now=now,
            row_of=lambda rec: dict(
                zip(CALL_COLUMNS, call_values(tenant.tenant_id, rec, landed.name, now), strict=True)
            ),
        )  # fmt: skip
        conn.execute(
            agents.update()
            .where(agents.c.tenant_id == tenant.tenant_id, agents.c.agent_id == landed.agent_id)
            .values(
                last_seen_at=now,
                last_sequence=sa.case(
                    (
                        sa.or_(
                            agents.c.last_sequence.is_(None),
                            agents.c.last_sequence < landed.sequence,
                        ),
                        landed.sequence,
                    ),
                    else_=agents.c.last_sequence,
                ),
            )
        )
        inserted = len(inserted_ids)
        duplicates = len(batch.records) - inserted
        done = conn.execute(
            landed_files.update()
            .where(*our_claim(landed, worker))
            .values(
                status="stored" if inserted else "duplicate",
                records=len(batch.records),
                inserted=inserted,
                duplicates=duplicates,
                finished_at=now,
            )
        )
        if done.rowcount != 1:
            raise LostClaim(landed.name)  # rolls the whole transaction back
        crash_point("ingest.before_commit")  # fault tests: killed with everything but COMMIT
    return inserted, duplicates


def _analyze_keys_if_unsized(conn: sa.Connection, inserted: int) -> None:
    """ANALYZE ``call_keys`` (PostgreSQL) while its statistics count fewer rows than this batch
    added.

    Why: each call_costs/unrated_calls row written by rating fires a foreign-key check, ``SELECT 1
    FROM call_keys WHERE tenant_id = $1 AND record_id = $2`` (``calls`` itself, partitioned, is
    referred to by nothing). Without statistics (a new store, before autovacuum's first pass)
    the planner sizes the table from its declared widths and may plan that check as a scan:
    every check then reads all the keys, so a batch costs O(batch x calls) and ingest crawls
    (it did, on ``calls``, before 0018). ANALYZE inside this transaction counts the rows just
    inserted (and rolls back with it), so the checks use ``pk_call_keys``. Once the statistics
    are realistic this is one catalogue read per batch; autovacuum keeps them so.
    """
    if inserted == 0:
        return
    counted = conn.execute(
        sa.text("SELECT reltuples FROM pg_class WHERE oid = CAST(:table AS regclass)"),
        {"table": call_keys.name},
    ).scalar_one()
    if counted < inserted:
        conn.execute(sa.text(f"ANALYZE {call_keys.name}"))
