"""The ingest worker: landed batch files -> verified, de-duplicated call rows.

Contract:

- Stateless: any number of workers (threads, processes, hosts) may scan the same landing area.
  A worker takes a file only by *claiming* it in the store: an insert into ``landed_files`` on
  the unique key ``(tenant_id, file_name)``. Exactly one claim wins; the others skip the file. A
  claim older than ``ingest.claim_timeout_seconds`` is from a dead worker and is taken over.
- The tenant is the landing folder (``<landing>/<slug>/incoming/NAME``), never the file: a
  manifest naming another tenant is quarantined. Only finished batch names
  (``shared.envelope.parse_batch_file_name``) are looked at; ``*.part`` uploads are left alone.
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
"""

from __future__ import annotations

import errno
import gc
import hashlib
import logging
import os
import signal
import socket
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, Literal

import click
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from datacenter.accounts.model import Tenant, list_tenants, trusted_signers
from datacenter.commands.init import config_option, open_configured_store
from datacenter.health.model import ingest_heartbeats
from datacenter.ingest.incomplete import complete_stored_calls
from datacenter.ingest.keys import load_ingest_keys
from datacenter.rating.store import rate_batch, write_batch_rating
from datacenter.settings import Settings
from datacenter.store.bulk import insert_new_rows, json_text, time_encoder
from datacenter.store.engine import write_transaction
from datacenter.store.tables.core import agents, call_days, calls, landed_files
from shared.cms import Recipient, is_protected, open_landed
from shared.envelope import Batch, parse_batch_file_name
from shared.errors import EnvelopeError
from shared.icdr import ICDR
from shared.keys import DatacentreKeys
from shared.receipts import make_receipt, write_receipt

log = logging.getLogger(__name__)

PART_SUFFIX = ".part"
REASON_SUFFIX = ".reason"
MAX_MOVE_SUFFIX = 1000
FROM_SETTINGS: Literal["settings"] = "settings"  # ingest_once(keys=...): load them for this pass


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What happened to one landed file.

    ``status``: ``stored`` (new calls inserted), ``duplicate`` (valid, but every call was already
    stored), ``resent`` (this exact file was ingested before; archived, nothing changed) or
    ``quarantined`` (``reason`` says why).
    """

    tenant: str
    file_name: str
    status: str
    records: int = 0
    inserted: int = 0
    duplicates: int = 0
    reason: str = ""
    moved_to: Path | None = None


@dataclass(frozen=True, slots=True)
class IngestReport:
    outcomes: tuple[FileOutcome, ...] = ()
    unknown_folders: tuple[str, ...] = ()  # landing folders with no tenant of that slug

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
        return "; ".join(parts)


class _LostClaim(Exception):
    """Another worker took over this file's claim (ours had expired); leave the file to it."""


@dataclass(slots=True)
class _Landed:
    tenant: Tenant
    path: Path
    agent_id: str
    sequence: int
    data: bytes = b""
    sha256: str = ""

    @property
    def name(self) -> str:
        return self.path.name


# --- the worker loop ----------------------------------------------------------------------------


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
    """One pass over every tenant's ``incoming/`` folder.

    ``keys`` open files and sign receipts; by default they are loaded from ``settings.keys``
    (``datacenter.ingest.keys.load_ingest_keys``). None: no keys (only unprotected files, no receipts).
    """
    worker = worker_id or new_worker_id()
    opener = load_ingest_keys(settings) if keys == FROM_SETTINGS else keys
    with engine.connect() as conn:
        by_slug = {tenant.slug: tenant for tenant in list_tenants(conn)}
    outcomes: list[FileOutcome] = []
    unknown: list[str] = []
    root = settings.landing.root
    folders = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    for folder in folders:
        tenant = by_slug.get(folder.name)
        if tenant is None:
            if (folder / "incoming").is_dir():
                log.warning("landing folder %s has no tenant %r: skipped", folder, folder.name)
                unknown.append(folder.name)
            continue
        for landed in _finished_batches(tenant, folder / "incoming"):
            with _collector_paused():
                outcome = _ingest_file(engine, settings, landed, worker=worker, keys=opener)
            if outcome is not None:
                log.info("%s/%s: %s %s", tenant.slug, landed.name, outcome.status, outcome.reason)
                outcomes.append(outcome)
    _ingest_heartbeats(engine, settings)
    return IngestReport(outcomes=tuple(outcomes), unknown_folders=tuple(unknown))


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
    """Scan every ``ingest.poll_seconds`` until ``stop_event`` is set.

    A store outage is logged and retried on the next pass; the files wait in ``incoming/``.
    """
    worker = worker_id or new_worker_id()
    keys = load_ingest_keys(settings)  # once: a bad key stops the worker at start, not mid-run
    log.info("ingest worker %s watching %s", worker, settings.landing.root)
    while not stop_event.is_set():
        try:
            report = ingest_once(engine, settings, worker_id=worker, keys=keys)
        except sa.exc.OperationalError as exc:
            log.error("store unavailable, retrying in %s s: %s", settings.ingest.poll_seconds, exc)
        else:
            if report.outcomes:
                log.info("%s", report.summary())
        stop_event.wait(settings.ingest.poll_seconds)


def _finished_batches(tenant: Tenant, incoming: Path) -> Iterator[_Landed]:
    if not incoming.is_dir():
        return
    for path in sorted(incoming.iterdir()):
        if path.name.endswith(PART_SUFFIX) or not path.is_file():
            continue
        parsed = parse_batch_file_name(path.name)
        if parsed is None:
            continue
        yield _Landed(tenant=tenant, path=path, agent_id=parsed[0], sequence=parsed[1])


# --- one file -----------------------------------------------------------------------------------


def _ingest_file(
    engine: sa.Engine,
    settings: Settings,
    landed: _Landed,
    *,
    worker: str,
    keys: DatacentreKeys | None,
) -> FileOutcome | None:
    """Claim, verify, store, receipt, archive one file; None if another worker has it."""
    try:
        landed.data = landed.path.read_bytes()
    except FileNotFoundError:
        return None  # another worker archived it while we listed
    landed.sha256 = hashlib.sha256(landed.data).hexdigest()
    claim = _claim(engine, landed, worker=worker, timeout=settings.ingest.claim_timeout_seconds)
    if claim == "busy":
        return None
    if claim == "resent":
        return _receipt_again(engine, settings, landed, keys)
    if claim == "conflict":
        return _quarantine_conflict(engine, settings, landed, worker=worker)
    try:
        batch = _open(engine, settings, landed, keys)
        _check_attribution(landed, batch)
    except EnvelopeError as exc:
        return _quarantine(engine, settings, landed, str(exc), worker=worker)
    try:
        inserted, duplicates = _store(engine, landed, batch, worker=worker)
    except _LostClaim:
        return None
    except sa.exc.DataError as exc:
        # A value the database cannot hold (PostgreSQL: NUL in text, a too-long code). Retrying
        # cannot help, so keep the file for a technician instead of failing on it forever.
        reason = f"the store refused a record in this batch: {exc.orig}; report it with the file"
        return _quarantine(engine, settings, landed, reason, worker=worker)
    status = "stored" if inserted else "duplicate"
    receipted = _write_receipt(
        settings, keys, landed, records=len(batch.records), inserted=inserted,
        duplicates=duplicates, stored_at=datetime.now(UTC),
    )  # fmt: skip
    # None: another worker archived it, or the receipt must be retried from incoming/
    archived = _archive(settings, landed, status=status) if receipted else None
    return FileOutcome(
        tenant=landed.tenant.slug,
        file_name=landed.name,
        status=status,
        records=len(batch.records),
        inserted=inserted,
        duplicates=duplicates,
        moved_to=archived.moved_to if archived else None,
    )


def _claim(engine: sa.Engine, landed: _Landed, *, worker: str, timeout: float) -> str:
    """``claimed`` (ours), ``busy`` (another worker's live claim), ``resent`` or ``conflict``."""
    now = datetime.now(UTC)
    key = (landed_files.c.tenant_id == landed.tenant.tenant_id) & (
        landed_files.c.file_name == landed.name
    )
    values = {
        "tenant_id": landed.tenant.tenant_id,
        "file_name": landed.name,
        "agent_id": landed.agent_id,
        "sequence": landed.sequence,
        "sha256": landed.sha256,
        "size": len(landed.data),
        "status": "claimed",
        "claimed_by": worker,
        "claimed_at": now,
    }
    with write_transaction(engine) as conn:
        # RETURNING says whether the row went in (rowcount of an INSERT is not portable).
        insert = (
            _dialect_insert(conn, landed_files)
            .values(**values)
            .on_conflict_do_nothing()
            .returning(landed_files.c.file_name)
        )
        if conn.execute(insert).first() is not None:
            return "claimed"
        # SKIP LOCKED: on PostgreSQL a row another worker is busy taking over is not waited for.
        row = conn.execute(
            sa.select(landed_files).where(key).with_for_update(skip_locked=True)
        ).one_or_none()
        if row is None:
            return "busy"
        if row.status in ("stored", "duplicate"):
            return "resent" if row.sha256 == landed.sha256 else "conflict"
        expired = row.status == "claimed" and row.claimed_at < now - timedelta(seconds=timeout)
        if row.status == "quarantined" or expired:
            # Compare-and-set on the old claim, so two workers cannot both take it over.
            takeover = (
                landed_files.update()
                .where(key, landed_files.c.status == row.status)
                .where(landed_files.c.claimed_by == row.claimed_by)
                .where(landed_files.c.claimed_at == row.claimed_at)
                .values(**values, reason=None, records=None, inserted=None, duplicates=None)
            )
            if conn.execute(takeover).rowcount == 1:
                log.info("%s: took over claim from %s", landed.name, row.claimed_by)
                return "claimed"
        return "busy"


def _open(
    engine: sa.Engine, settings: Settings, landed: _Landed, keys: DatacentreKeys | None
) -> Batch:
    """Decrypt and verify against the certificate pinned for the agent the file name names."""
    slug, agent_id = landed.tenant.slug, landed.agent_id
    with engine.connect() as conn:
        signers = trusted_signers(conn, landed.tenant.tenant_id, agent_id)
    if signers is None:
        raise EnvelopeError(
            f"agent {agent_id} is not enrolled for tenant {slug}: run "
            f"`datacenter agent add --tenant {slug} {agent_id}` with --certificate (the "
            "agent.crt its `edge-agent enroll` printed), then move the file back to incoming/"
        )
    if not signers and is_protected(landed.data):
        raise EnvelopeError(
            f"agent {agent_id} has no certificate pinned, so its signed batches cannot be "
            f"checked: run `datacenter agent certificate --tenant {slug} {agent_id} agent.crt` "
            "with the certificate its `edge-agent enroll` printed, then move the file back to "
            "incoming/"
        )
    recipient = Recipient(keys.certificates.envelope, keys.envelope_key) if keys else None
    landed_batch = open_landed(
        landed.data,
        recipient=recipient,
        trusted_signers=signers,
        accept_unprotected=settings.ingest.accept_unprotected,
    )
    return landed_batch.batch


def _check_attribution(landed: _Landed, batch: Batch) -> None:
    """The folder decides the tenant; the file must agree with it and with its own name."""
    manifest, slug = batch.manifest, landed.tenant.slug
    if manifest.tenant != slug:
        raise EnvelopeError(
            f"manifest names tenant {manifest.tenant!r} but the file landed in tenant {slug!r}'s "
            "folder: check the agent's configured tenant"
        )
    if (manifest.agent_id, manifest.sequence) != (landed.agent_id, landed.sequence):
        raise EnvelopeError(
            f"file name says agent {landed.agent_id} sequence {landed.sequence}, manifest says "
            f"agent {manifest.agent_id} sequence {manifest.sequence}: the file was renamed"
        )
    strangers = {rec.agent_id for rec in batch.records} - {manifest.agent_id}
    if strangers:
        raise EnvelopeError(
            f"records from agent(s) {', '.join(sorted(strangers))} in a batch from "
            f"{manifest.agent_id}: an agent sends only its own records"
        )


def _store(engine: sa.Engine, landed: _Landed, batch: Batch, *, worker: str) -> tuple[int, int]:
    """Insert the calls, rollups, agent state and claim completion in one transaction."""
    tenant = landed.tenant
    now = datetime.now(UTC)
    records = _unique(batch.records)
    # Most of the CPU time (encoding rows, rating) is spent before the write lock is taken, so
    # concurrent workers overlap it; calls a re-sent batch already stored are rated for nothing.
    with engine.connect() as conn:
        rows = _call_rows(conn, tenant.tenant_id, records, landed.name, now)
        rating = rate_batch(conn, tenant.tenant_id, records, now=now)
    with write_transaction(engine) as conn:
        inserted_ids = insert_new_rows(
            conn, calls, rows, key="record_id", scope=("tenant_id", tenant.tenant_id)
        )
        if conn.dialect.name == "postgresql":
            _analyze_calls_if_unsized(conn, len(inserted_ids))
        _add_rollups(conn, tenant, [r for r in records if r.record_id in inserted_ids])
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
            .where(*_our_claim(landed, worker))
            .values(
                status="stored" if inserted else "duplicate",
                records=len(batch.records),
                inserted=inserted,
                duplicates=duplicates,
                finished_at=now,
            )
        )
        if done.rowcount != 1:
            raise _LostClaim(landed.name)  # rolls the whole transaction back
    return inserted, duplicates


def _call_rows(
    conn: sa.Connection, tenant_id: int, records: Sequence[ICDR], landed_file: str, now: datetime
) -> list[tuple[Any, ...]]:
    encode_time = time_encoder(conn)
    ingested_at = encode_time(now)
    return [
        call_values(
            tenant_id,
            rec,
            landed_file,
            ingested_at,
            encode_time=encode_time,
            encode_json=json_text,
        )
        for rec in records
    ]


def _analyze_calls_if_unsized(conn: sa.Connection, inserted: int) -> None:
    """ANALYZE ``calls`` (PostgreSQL) while its statistics count fewer rows than this batch added.

    Why: each call_costs/unrated_calls row written by rating fires a foreign-key check, ``SELECT 1
    FROM calls WHERE tenant_id = $1 AND record_id = $2``. Without statistics (a new store, before
    autovacuum's first pass) the planner sizes ``calls`` from its declared column widths, expects
    about one row per tenant and may plan that check as a scan of a ``(tenant_id, ...)`` secondary
    index filtered on ``record_id``: every check then reads all the tenant's calls, so a batch
    costs O(batch x calls) and ingest crawls. ANALYZE inside this transaction counts the rows just
    inserted (and rolls back with it), so the checks use ``pk_calls``. Once the statistics are
    realistic this is one catalogue read per batch; autovacuum keeps them so.
    """
    if inserted == 0:
        return
    counted = conn.execute(
        sa.text("SELECT reltuples FROM pg_class WHERE oid = CAST(:table AS regclass)"),
        {"table": calls.name},
    ).scalar_one()
    if counted < inserted:
        conn.execute(sa.text(f"ANALYZE {calls.name}"))


CALL_COLUMNS = tuple(column.name for column in calls.columns)


def _same(value: Any) -> Any:
    return value


def call_values(
    tenant_id: int,
    rec: ICDR,
    landed_file: str,
    ingested_at: Any,
    *,
    encode_time: Callable[[datetime], Any] = _same,
    encode_json: Callable[[Any], Any] = _same,
) -> tuple[Any, ...]:
    """One ``calls`` row, in ``CALL_COLUMNS`` order (a test pins the order to the table)."""
    return (
        tenant_id,
        rec.record_id,
        rec.agent_id,
        rec.source_id,
        rec.source_kind,
        encode_time(rec.start),
        None if rec.answer is None else encode_time(rec.answer),
        encode_time(rec.end),
        rec.utc_offset_minutes,
        rec.ring_seconds,
        rec.talk_seconds,
        rec.hold_seconds,
        rec.direction.value,
        rec.calling,
        rec.called,
        rec.dialled_digits,
        rec.extension,
        rec.trunk,
        rec.route,
        rec.third_party,
        rec.account_code,
        rec.ani,
        rec.dnis,
        rec.answered,
        rec.completion.value,
        rec.completion_source,
        rec.transferred,
        rec.conference,
        rec.call_id,
        rec.parent_call_id,
        encode_json(list(rec.flags)),
        rec.raw,
        rec.parser_version,
        landed_file,
        ingested_at,
        encode_json(dict(rec.extra)),
        rec.icdr_version,
    )


def _unique(records: Sequence[ICDR]) -> list[ICDR]:
    """First occurrence of each record id (a batch could repeat one; it is stored once)."""
    seen: dict[str, ICDR] = {}
    for rec in records:
        seen.setdefault(rec.record_id, rec)
    return list(seen.values())


def _add_rollups(conn: sa.Connection, tenant: Tenant, records: Sequence[ICDR]) -> None:
    totals: dict[tuple[Any, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    zone = tenant.zone
    for rec in records:
        total = totals[(rec.start.astimezone(zone).date(), rec.direction.value)]
        total[0] += 1
        total[1] += int(rec.answered)
        total[2] += rec.talk_seconds
    if not totals:
        return
    insert = _dialect_insert(conn, call_days)
    upsert = insert.on_conflict_do_update(
        index_elements=["tenant_id", "day", "direction"],
        set_={
            "calls": call_days.c.calls + insert.excluded.calls,
            "answered": call_days.c.answered + insert.excluded.answered,
            "talk_seconds": call_days.c.talk_seconds + insert.excluded.talk_seconds,
        },
    )
    conn.execute(
        upsert,
        [
            {
                "tenant_id": tenant.tenant_id,
                "day": day,
                "direction": direction,
                "calls": n,
                "answered": answered,
                "talk_seconds": talk,
            }
            for (day, direction), (n, answered, talk) in sorted(totals.items())
        ],
    )


def _our_claim(landed: _Landed, worker: str) -> tuple[sa.ColumnElement[bool], ...]:
    return (
        landed_files.c.tenant_id == landed.tenant.tenant_id,
        landed_files.c.file_name == landed.name,
        landed_files.c.status == "claimed",
        landed_files.c.claimed_by == worker,
    )


def _dialect_insert(conn: sa.Connection, table: sa.Table) -> Any:
    """INSERT with ON CONFLICT support for the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


# --- receipts -----------------------------------------------------------------------------------


def _write_receipt(
    settings: Settings,
    keys: DatacentreKeys | None,
    landed: _Landed,
    *,
    records: int,
    inserted: int,
    duplicates: int,
    stored_at: datetime,
) -> bool:
    """Sign and write ``receipts/NAME.receipt``; False if the file must wait for a retry.

    Called only after the calls are committed. Without keys (``ingest.accept_unprotected`` and
    no ``datacenter keys init`` yet) there is nothing to sign with and nothing an agent could
    verify, so the file is archived without one.
    """
    if keys is None:
        return True
    receipt = make_receipt(
        batch_name=landed.name, sha256=landed.sha256, records=records, inserted=inserted,
        duplicates=duplicates, stored_at=stored_at, key=keys.receipts_key,
        certificate=keys.certificates.receipts,
    )  # fmt: skip
    folder = settings.landing.tenant_dir(landed.tenant.slug, "receipts")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_receipt(folder, receipt, batch_name=landed.name)
    except OSError as exc:
        log.error(
            "%s/%s: calls stored, but the receipt cannot be written to %s (%s); the file stays "
            "in incoming/ and the receipt is retried on the next pass",
            landed.tenant.slug, landed.name, folder, exc,
        )  # fmt: skip
        return False
    return True


def _receipt_again(
    engine: sa.Engine, settings: Settings, landed: _Landed, keys: DatacentreKeys | None
) -> FileOutcome | None:
    """This exact file is stored already (a re-send, or a crash before its receipt): receipt it.

    The receipt says every record was a duplicate; its ``stored_at`` is the original commit.
    """
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(landed_files.c.records, landed_files.c.finished_at).where(
                landed_files.c.tenant_id == landed.tenant.tenant_id,
                landed_files.c.file_name == landed.name,
            )
        ).one()
    records = row.records or 0
    stored_at = row.finished_at or datetime.now(UTC)
    if not _write_receipt(settings, keys, landed, records=records, inserted=0,
                          duplicates=records, stored_at=stored_at):  # fmt: skip
        return FileOutcome(tenant=landed.tenant.slug, file_name=landed.name, status="resent")
    return _archive(settings, landed, status="resent")


# --- moving files -------------------------------------------------------------------------------


def _quarantine(
    engine: sa.Engine, settings: Settings, landed: _Landed, reason: str, *, worker: str
) -> FileOutcome | None:
    with write_transaction(engine) as conn:
        done = conn.execute(
            landed_files.update()
            .where(*_our_claim(landed, worker))
            .values(status="quarantined", reason=reason, finished_at=datetime.now(UTC))
        )
        if done.rowcount != 1:
            return None
    return _move_to_quarantine(settings, landed, landed.name, reason)


def _quarantine_conflict(
    engine: sa.Engine, settings: Settings, landed: _Landed, *, worker: str
) -> FileOutcome | None:
    """A different file under a name already stored: keep it, under ``NAME~SHA12``."""
    name = f"{landed.name}~{landed.sha256[:12]}"
    reason = (
        f"a different file named {landed.name} was already stored for this tenant: the agent's "
        "batch sequence may have been reset (re-enrolled or restored); compare the two and "
        "re-send the records under a new sequence"
    )
    now = datetime.now(UTC)
    with write_transaction(engine) as conn:
        conn.execute(
            _dialect_insert(conn, landed_files)
            .values(
                tenant_id=landed.tenant.tenant_id,
                file_name=name,
                agent_id=landed.agent_id,
                sequence=landed.sequence,
                sha256=landed.sha256,
                size=len(landed.data),
                status="quarantined",
                reason=reason,
                claimed_by=worker,
                claimed_at=now,
                finished_at=now,
            )
            .on_conflict_do_nothing()
        )
    return _move_to_quarantine(settings, landed, name, reason)


def _move_to_quarantine(
    settings: Settings, landed: _Landed, name: str, reason: str
) -> FileOutcome | None:
    folder = settings.landing.tenant_dir(landed.tenant.slug, "quarantine")
    moved = _move(landed.path, folder, name)
    if moved is None:
        return None
    moved.with_name(moved.name + REASON_SUFFIX).write_text(reason + "\n", encoding="utf-8")
    return FileOutcome(
        tenant=landed.tenant.slug,
        file_name=landed.name,
        status="quarantined",
        reason=reason,
        moved_to=moved,
    )


def _archive(settings: Settings, landed: _Landed, *, status: str) -> FileOutcome | None:
    day = datetime.now(UTC)
    folder = settings.landing.tenant_dir(landed.tenant.slug, "archive") / day.strftime("%Y/%m/%d")
    moved = _move(landed.path, folder, landed.name)
    if moved is None:
        return None
    return FileOutcome(
        tenant=landed.tenant.slug, file_name=landed.name, status=status, moved_to=moved
    )


def _move(source: Path, folder: Path, name: str) -> Path | None:
    """Move ``source`` into ``folder`` without overwriting; None if the source is gone.

    A hard link claims the target name atomically (``os.replace`` would overwrite a file another
    worker just put there). An identical file already at the target just absorbs the source.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(MAX_MOVE_SUFFIX):
        target = folder / (name if n == 0 else f"{name}.{n}")
        try:
            os.link(source, target)
        except FileExistsError:
            try:
                if not _same_content(source, target):
                    continue
            except FileNotFoundError:
                return None
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP):
                raise
            if target.exists():
                continue
            source.replace(target)  # no hard links here: accept the tiny race
            return target
        source.unlink(missing_ok=True)
        return target
    raise OSError(f"{folder} already holds {MAX_MOVE_SUFFIX} different files named {name}")


def _same_content(a: Path, b: Path) -> bool:
    if a.samefile(b):
        return True
    return a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes()


# --- command ------------------------------------------------------------------------------------


@click.command("ingest")
@config_option
@click.option(
    "--watch", is_flag=True, help="Keep scanning every ingest.poll_seconds until stopped."
)
@click.option("--once", is_flag=True, help="One pass, then exit (the default).")
def ingest_command(config_path: Path | None, watch: bool, once: bool) -> None:
    """Ingest landed batch files into the store.

    Scans <landing.root>/<tenant>/incoming/ for finished batch files, verifies each (decrypts
    it with the data centre's key, checks the agent's pinned signature), stores its calls once,
    writes a signed receipt to receipts/ for the agent, and moves it to archive/YYYY/MM/DD/ (or
    to quarantine/ with a .reason file). Needs the keys `datacenter init` makes.

    \b
    Example:
      datacenter ingest --config /etc/callcollect/datacenter.toml --watch

    --watch runs until SIGTERM or Ctrl-C (systemd runs it this way); any number of workers may
    run at once. Without it, one pass is made and a summary printed.
    """
    if watch and once:
        raise click.UsageError("choose --watch or --once, not both")
    settings, engine = open_configured_store(config_path)
    try:
        if not watch:
            report = ingest_once(engine, settings)
            click.echo(report.summary())
            for outcome in report.outcomes:
                if outcome.status == "quarantined":
                    click.echo(
                        f"quarantined {outcome.tenant}/{outcome.file_name}: {outcome.reason}"
                    )
            return
        if not logging.getLogger().handlers:  # journald under systemd, stderr otherwise
            logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        stop = threading.Event()

        def _stop(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %s: stopping after this pass", signum)
            stop.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        run_forever(engine, settings, stop_event=stop)
    finally:
        engine.dispose()
