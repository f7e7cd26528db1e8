"""Landed batch files on disk: finding finished ones, archiving and quarantining them.

- ``finished_batches`` lists a tenant's ``incoming/`` entries with finished batch names
  (``shared.envelope.parse_batch_file_name``; ``*.part`` uploads are left alone), whatever they
  are: the worker opens them with ``landing_io.open_regular`` and refuses anything but a regular
  file.
- ``archive`` moves a file to ``archive/YYYY/MM/DD/NAME`` (UTC day of ingest);
  ``move_to_quarantine`` to ``quarantine/NAME`` with the reason in ``NAME.reason`` beside it.
- Moves never overwrite and never follow a link (``landing_io.move_entry``); ``NAME.reason`` is
  created exclusively, never written through an entry already there. None means another worker
  moved the file first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from datacenter.accounts.tenants import Tenant
from datacenter.ingest.landing_io import move_entry, write_note
from datacenter.settings import Settings
from shared.envelope import parse_batch_file_name

PART_SUFFIX = ".part"
REASON_SUFFIX = ".reason"

log = logging.getLogger(__name__)


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


@dataclass(slots=True)
class Landed:
    """One finished batch file in a tenant's ``incoming/`` and what was read of it."""

    tenant: Tenant
    path: Path
    agent_id: str
    sequence: int
    data: bytes = b""
    sha256: str = ""
    size: int = 0  # bytes, from fstat/hashing: known before ``data`` is read
    # --- per-agent landing (datacenter.landing): None for the tenant's older shared folder
    folder: Path | None = None  # the agent's <landing.root>/<account>/
    account_agent: str | None = None  # the agent that account belongs to

    @property
    def name(self) -> str:
        return self.path.name


def finished_batches(
    tenant: Tenant,
    incoming: Path,
    *,
    account_agent: str | None = None,
    parse: Callable[[str], tuple[str, int] | None] = parse_batch_file_name,
) -> Iterator[Landed]:
    """The finished batch files in ``incoming``, by name; not yet read.

    ``account_agent``: ``incoming`` is that agent's own account's (``Landed.folder``).
    ``parse``: which names are finished files (call batches; recordings batches pass
    ``shared.envelope.parse_recordings_file_name``).
    """
    if not incoming.is_dir() or incoming.is_symlink():
        return
    for path in sorted(incoming.iterdir()):
        if path.name.endswith(PART_SUFFIX):
            continue
        parsed = parse(path.name)
        if parsed is None:
            continue
        yield Landed(
            tenant=tenant, path=path, agent_id=parsed[0], sequence=parsed[1],
            folder=incoming.parent if account_agent else None, account_agent=account_agent,
        )  # fmt: skip


def receipts_folder(settings: Settings, landed: Landed) -> Path:
    """``receipts/`` beside the ``incoming/`` the file landed in (agent's account or tenant's)."""
    if landed.folder is not None:
        return landed.folder / "receipts"
    return settings.landing.tenant_dir(landed.tenant.slug, "receipts")


def foreign_agent_reason(landed: Landed) -> str | None:
    """Why a file in an agent's account names another agent, or None when it does not."""
    if landed.account_agent is None or landed.agent_id == landed.account_agent:
        return None
    return (
        f"the file names agent {landed.agent_id} but landed in agent {landed.account_agent}'s "
        "landing account: an agent delivers only its own batches"
    )


def move_to_quarantine(
    settings: Settings, landed: Landed, name: str, reason: str
) -> FileOutcome | None:
    """Move the file to ``quarantine/NAME`` and write ``NAME.reason``; None if it is gone."""
    folder = settings.landing.tenant_dir(landed.tenant.slug, "quarantine")
    moved = move_entry(landed.path, folder, name, note_suffix=REASON_SUFFIX)
    if moved is None:
        return None
    note = moved.with_name(moved.name + REASON_SUFFIX)
    try:
        write_note(note, reason + "\n")
    except FileExistsError:  # planted after the move chose a free name: never written through
        log.error("%s appeared while %s was quarantined; the reason is: %s", note, moved, reason)
    return FileOutcome(
        tenant=landed.tenant.slug,
        file_name=landed.name,
        status="quarantined",
        reason=reason,
        moved_to=moved,
    )


def archive(settings: Settings, landed: Landed, *, status: str) -> FileOutcome | None:
    """Move the file to ``archive/YYYY/MM/DD/`` (UTC today); None if it is gone."""
    day = datetime.now(UTC)
    folder = settings.landing.tenant_dir(landed.tenant.slug, "archive") / day.strftime("%Y/%m/%d")
    moved = move_entry(landed.path, folder, landed.name)
    if moved is None:
        return None
    return FileOutcome(
        tenant=landed.tenant.slug, file_name=landed.name, status=status, moved_to=moved
    )
