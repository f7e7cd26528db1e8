"""Signed receipts for stored batches: ``receipts/NAME.receipt`` for the agent to collect.

Written only after the calls are committed (``shared.receipts``: the agent may then delete the
batch). If the receipt cannot be written the file stays in ``incoming/`` and the next pass
writes it (``receipt_again``: the file is recognised as stored and receipted as all duplicates).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import sqlalchemy as sa

from datacenter.ingest.claim import stored_file
from datacenter.ingest.files import FileOutcome, Landed, archive, receipts_folder
from datacenter.settings import Settings
from shared.keys import DatacentreKeys
from shared.receipts import make_receipt, write_receipt

log = logging.getLogger(__name__)


def write_batch_receipt(
    settings: Settings,
    keys: DatacentreKeys | None,
    landed: Landed,
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
    folder = receipts_folder(settings, landed)
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


def receipt_again(
    settings: Settings, engine: sa.Engine, landed: Landed, keys: DatacentreKeys | None
) -> FileOutcome | None:
    """This exact file is stored already (a re-send, or a crash before its receipt): receipt it.

    The receipt says every record was a duplicate; its ``stored_at`` is the original commit.
    """
    records, finished_at = stored_file(engine, landed)
    stored_at = finished_at or datetime.now(UTC)
    if not write_batch_receipt(settings, keys, landed, records=records, inserted=0,
                               duplicates=records, stored_at=stored_at):  # fmt: skip
        return FileOutcome(tenant=landed.tenant.slug, file_name=landed.name, status="resent")
    return archive(settings, landed, status="resent")
