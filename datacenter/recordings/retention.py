"""Retention: a tenant's recordings older than its ``retention_days`` lose their audio.

Contract:

- ``purge_expired(engine, settings, now=...)`` looks at every tenant with a retention period.
  A recording whose call started (else was stored) before ``now - retention_days`` becomes
  ``deleted`` (``deleted_at``) and one ``recordings_deleted`` audit event per tenant and pass
  says how many, the cut-off and the period, in the same transaction. Only then are the
  encrypted files removed and their paths cleared; a crash in between leaves rows marked
  ``deleted`` that still name files, and the next pass removes those first. The metadata row
  stays, so the call page can say the audio was deleted and when.
- Each pass also sweeps files no recording names (``orphans.sweep_orphans``: left by an ingest
  killed between writing audio and committing its row), once they are a day old.
- Run by `datacenter recordings purge` (cron or a systemd timer, e.g. daily) and by the alarm
  loop (`datacenter alarms run`) once per ``PURGE_EVERY``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from datacenter.accounts.audit import record
from datacenter.recordings.orphans import sweep_orphans
from datacenter.settings import Settings
from datacenter.store.engine import write_transaction
from datacenter.store.tables.core import tenants
from datacenter.store.tables.recordings import recording_policies, recordings

log = logging.getLogger(__name__)

ACTOR = "retention"
PURGE_EVERY = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Purged:
    tenant_slug: str
    recordings: int
    cutoff: datetime
    retention_days: int


def purge_expired(engine: sa.Engine, settings: Settings, *, now: datetime) -> list[Purged]:
    _remove_files_of_deleted(engine, settings)
    with engine.connect() as conn:
        policies = conn.execute(
            sa.select(tenants.c.tenant_id, tenants.c.slug, recording_policies.c.retention_days)
            .join(recording_policies, recording_policies.c.tenant_id == tenants.c.tenant_id)
            .where(recording_policies.c.retention_days.is_not(None))
            .order_by(tenants.c.slug)
        ).all()  # fmt: skip
    purged = []
    for tenant_id, slug, days in policies:
        cutoff = now - timedelta(days=days)
        count = _mark_expired(engine, tenant_id, cutoff, days, now=now)
        if count:
            log.info("retention: %s: %d recording(s) before %s deleted", slug, count, cutoff)
            purged.append(Purged(slug, count, cutoff, days))
    _remove_files_of_deleted(engine, settings)
    sweep_orphans(engine, settings, now=now)
    return purged


def _mark_expired(
    engine: sa.Engine, tenant_id: int, cutoff: datetime, days: int, *, now: datetime
) -> int:
    started = sa.func.coalesce(recordings.c.start_time, recordings.c.stored_at)
    with write_transaction(engine) as conn:
        done = conn.execute(
            recordings.update()
            .where(
                recordings.c.tenant_id == tenant_id,
                recordings.c.status != "deleted",
                started < cutoff,
            )
            .values(status="deleted", deleted_at=now)
        )
        count = int(done.rowcount)
        if count:
            record(
                conn, "recordings_deleted", at=now, tenant_id=tenant_id, actor=ACTOR,
                subject=f"{count} recording(s)",
                details={"recordings": count, "before": cutoff.isoformat(),
                         "retention_days": days},
            )  # fmt: skip
    return count


def _remove_files_of_deleted(engine: sa.Engine, settings: Settings) -> None:
    """Remove the files of rows already marked deleted, then clear their paths."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                recordings.c.tenant_id, recordings.c.recording_id, recordings.c.audio_path,
                recordings.c.sip_path,
            ).where(
                recordings.c.status == "deleted",
                sa.or_(recordings.c.audio_path.is_not(None), recordings.c.sip_path.is_not(None)),
            )
        ).all()  # fmt: skip
    for tenant_id, recording_id, *paths in rows:
        for relative in paths:
            if relative:
                (settings.recordings_root / relative).unlink(missing_ok=True)
        with write_transaction(engine) as conn:
            conn.execute(
                recordings.update()
                .where(
                    recordings.c.tenant_id == tenant_id,
                    recordings.c.recording_id == recording_id,
                )
                .values(audio_path=None, sip_path=None)
            )
