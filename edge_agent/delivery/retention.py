"""Retention and re-send: what happens to a batch after the data centre has acknowledged it.

Contract:

- ``Retention.purge(now)`` deletes acknowledged batches whose receipt is older than
  ``delivery.retention_days``: the spool rows (batch and ICDRs) in one transaction, then the
  file (``outbox/`` or ``sent/``). A crash between the two leaves a file ``Batcher.recover``
  removes on the next start. Only ``acknowledged`` batches are ever deleted; a sealed or
  uploaded batch stays whatever its age and whatever the disk pressure.
- Under disk pressure (the spool at ``critical`` or ``full``) the retention period is waived:
  every acknowledged batch goes, oldest first, because the data centre holds those records and
  the PBXs' new records do not wait anywhere else. The log says so.
- ``resend(since, until)`` re-queues acknowledged batches sealed in [since, until) that are
  still kept: status back to ``sealed``, file back to ``outbox/``. The next session uploads the
  same bytes under the same name; the data centre recognises the file (same name and SHA-256)
  or, if it lost it, stores it again without duplicating a call, and sends a new receipt.
- ``edge-agent resend --since DATE [--until DATE]`` (``edge_agent.commands.delivery``) drives
  ``resend`` (``resendable`` lists the same batches for ``--dry-run``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from edge_agent.delivery.batches import Batcher
from edge_agent.spool import BatchRow, BatchStatus, Spool
from shared.durable import fsync_dir
from shared.icdr import parse_time

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PurgeResult:
    batches: list[BatchRow]
    under_pressure: bool


class Retention:
    """Deletes acknowledged batches past their retention (see the module docstring)."""

    def __init__(self, spool: Spool, batcher: Batcher, *, keep: timedelta) -> None:
        self.spool = spool
        self.batcher = batcher
        self.keep = keep

    def purge(self, now: datetime, *, under_pressure: bool = False) -> PurgeResult:
        before = now if under_pressure else now - self.keep
        purged = self.spool.purge_acknowledged(before=before)
        touched: set[Path] = set()
        for batch in purged:
            path = self.batcher.path_of(batch)
            if path.exists():
                path.unlink()
                touched.add(path.parent)
        for directory in touched:
            fsync_dir(directory)
        self.batcher.ledger.forget(batch.file_name for batch in purged)
        if purged:
            log.log(
                logging.WARNING if under_pressure else logging.INFO,
                "retention: deleted %d acknowledged batches (%s to %s)%s",
                len(purged), purged[0].file_name, purged[-1].file_name,
                " early: the spool is nearly full" if under_pressure else "",
            )  # fmt: skip
        return PurgeResult(purged, under_pressure)


def resend(
    spool: Spool, batcher: Batcher, *, since: datetime, until: datetime | None
) -> list[BatchRow]:
    """Re-queue the sent batches (acknowledged or not) sealed in [since, until); returns them."""
    requeued = spool.requeue(since=since, until=until)
    batcher.back_to_outbox(requeued)
    return requeued


def resendable(spool: Spool, *, since: datetime, until: datetime | None) -> list[BatchRow]:
    """What ``resend`` would re-queue, changing nothing (``edge-agent resend --dry-run``)."""
    return [
        batch
        for status in (BatchStatus.ACKNOWLEDGED, BatchStatus.UPLOADED)
        for batch in spool.batches(status=status)
        if _sealed_in(batch, since, until)
    ]


def _sealed_in(batch: BatchRow, start: datetime, end: datetime | None) -> bool:
    created = parse_time("created", batch.created)
    return start <= created and (end is None or created < end)
