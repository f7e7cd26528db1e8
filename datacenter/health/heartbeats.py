"""Heartbeat ingest: landed heartbeat documents into the store, with their quarantine.

- Heartbeats live in ``agent_heartbeats`` (datacenter/store/tables/health.py): one row per
  document, keyed ``(tenant_id, agent_id, sent_at)``. ``ingest_heartbeats`` takes them from
  each agent's ``<landing>/<account>/heartbeats/*.json`` and each tenant's older shared
  ``<landing>/<tenant>/heartbeats/`` (the agent uploads them through ``.part`` + rename),
  stores each once and deletes the file.
- An agent with a pinned certificate signs its heartbeats (CMS SignedData, ``shared.cms.sign``)
  and only a heartbeat verified against that certificate (or the previous one during a
  rotation's overlap) is accepted; a plain JSON one is accepted only from an agent with no
  certificate pinned, as its batches are. A document that is unsigned or forged, fails
  validation, names another tenant, or another agent than the account it landed in, or comes
  from an agent not enrolled goes to
  ``<landing>/<tenant>/quarantine/heartbeats/NAME`` with ``NAME.reason``. ``ingest_once`` runs
  it after the batch files, so a session's batches are stored before its heartbeat is judged.
- The landing rules of batch files hold here too (``datacenter.ingest.landing_io``): an entry
  is opened without following links or blocking and read only if it is a regular file of at
  most ``MAX_HEARTBEAT_BYTES``; anything else is quarantined unread. Quarantine never replaces
  an entry and never writes ``NAME.reason`` through one already there.
- ``record_heartbeat`` stores one validated heartbeat; ``prune_heartbeats`` drops old ones after
  ``health.heartbeat_retention_days``. ``from_document`` reads a stored document back.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from datacenter.accounts.agents import landing_accounts, trusted_signers
from datacenter.accounts.tenants import list_tenants
from datacenter.ingest.landing_io import (
    NotRegular,
    linked_folders,
    move_entry,
    open_regular,
    read_whole,
    refusal,
    unreadable,
    write_note,
)
from datacenter.settings import Settings
from datacenter.store.dialect import dialect_insert
from datacenter.store.engine import write_transaction
from datacenter.store.tables.health import agent_heartbeats
from shared.cms import is_protected, verify_signed
from shared.errors import EnvelopeError, ValidationError
from shared.heartbeat import (
    HEARTBEAT_FOLDER,
    Heartbeat,
    heartbeat_file_name,
    parse_heartbeat,
    parse_heartbeat_file_name,
)

log = logging.getLogger(__name__)

PART_SUFFIX = ".part"
REASON_SUFFIX = ".reason"
QUARANTINED_HEARTBEATS = f"quarantine/{HEARTBEAT_FOLDER}"
MAX_HEARTBEAT_BYTES = 1024 * 1024  # a heartbeat is a few kB; this is ample and still bounded


def from_document(document: Any) -> Heartbeat:
    """A heartbeat stored as its JSON document, parsed and validated again."""
    return parse_heartbeat(json.dumps(document))


@dataclass(frozen=True, slots=True)
class HeartbeatReport:
    stored: int = 0
    duplicates: int = 0
    rejected: tuple[tuple[str, str], ...] = ()  # (tenant/file name, reason)
    pruned: int = 0

    def summary(self) -> str:
        return (
            f"{self.stored} heartbeat(s) stored, {self.duplicates} already stored, "
            f"{len(self.rejected)} rejected, {self.pruned} pruned"
        )


def record_heartbeat(
    conn: sa.Connection,
    *,
    tenant_id: int,
    heartbeat: Heartbeat,
    file_name: str,
    received_at: datetime,
    stored_at: datetime | None = None,
) -> bool:
    """Store one validated heartbeat; False if this (agent, sent_at) was stored before."""
    delay = (received_at - heartbeat.sent_at).total_seconds() - (
        heartbeat.clock_offset_seconds or 0
    )
    values = {
        "tenant_id": tenant_id,
        "agent_id": heartbeat.agent_id,
        "sent_at": heartbeat.sent_at,
        "received_at": received_at,
        "stored_at": stored_at or datetime.now(UTC),
        "file_name": file_name,
        "agent_state": heartbeat.state.value,
        "agent_version": heartbeat.agent_version[:64],
        "delay_seconds": max(0.0, delay),
        "uplink_failures": heartbeat.uplink.failures_in_a_row,
        "document": heartbeat.to_dict(),
    }
    insert = dialect_insert(conn, agent_heartbeats).values(**values).on_conflict_do_nothing()
    return conn.execute(insert.returning(agent_heartbeats.c.agent_id)).first() is not None


@dataclass(frozen=True, slots=True)
class HeartbeatFolder:
    """A ``heartbeats/`` folder and whose it is: one agent's account, or a tenant's shared one."""

    tenant_id: int
    slug: str
    path: Path
    agent_id: str | None = None  # the account's agent; None: the tenant's shared folder


def heartbeat_folders(conn: sa.Connection, root: Path) -> list[HeartbeatFolder]:
    """Each agent's ``<account>/heartbeats`` and each tenant's older shared folder."""
    slugs = {t.tenant_id: t.slug for t in list_tenants(conn)}
    folders = [
        HeartbeatFolder(tenant_id, slugs[tenant_id], root / account / HEARTBEAT_FOLDER, agent_id)
        for account, (tenant_id, agent_id) in sorted(landing_accounts(conn).items())
    ]
    shared = [HeartbeatFolder(i, slug, root / slug / HEARTBEAT_FOLDER) for i, slug in slugs.items()]
    return folders + shared


def ingest_heartbeats(
    engine: sa.Engine, settings: Settings, *, now: datetime | None = None
) -> HeartbeatReport:
    """Store every heartbeat in each agent's and each tenant's ``heartbeats/``; prune old ones.

    Safe with any number of workers: the insert is idempotent and a file already taken by
    another worker is simply gone.
    """
    root = settings.landing.root
    stored = duplicates = pruned = 0
    rejected: list[tuple[str, str]] = []
    with engine.connect() as conn:
        tenant_list = list_tenants(conn)
        folders = heartbeat_folders(conn, root)
    for folder in folders:
        linked = linked_folders(root / folder.slug, ("quarantine", QUARANTINED_HEARTBEATS))
        if linked or folder.path.is_symlink():
            log.error("%s heartbeats skipped, %s: no links followed", folder.slug,
                      linked or folder.path)  # fmt: skip
            continue
        if not folder.path.is_dir():
            continue
        for path in sorted(folder.path.iterdir()):
            if path.name.endswith(PART_SUFFIX):
                continue
            outcome = _ingest_heartbeat(engine, folder, path)
            if outcome == "stored":
                stored += 1
            elif outcome == "duplicate":
                duplicates += 1
            elif outcome is not None:
                _quarantine_heartbeat(root / folder.slug, path, outcome)
                rejected.append((f"{folder.slug}/{path.name}", outcome))
    cutoff = (now or datetime.now(UTC)) - timedelta(days=settings.health.heartbeat_retention_days)
    with write_transaction(engine) as conn:
        for tenant in tenant_list:
            pruned += prune_heartbeats(conn, tenant_id=tenant.tenant_id, before=cutoff)
    return HeartbeatReport(stored, duplicates, tuple(rejected), pruned)


def prune_heartbeats(conn: sa.Connection, *, tenant_id: int, before: datetime) -> int:
    """Delete a tenant's heartbeats that landed before ``before``; how many went."""
    t = agent_heartbeats
    result = conn.execute(t.delete().where(t.c.tenant_id == tenant_id, t.c.received_at < before))
    return int(result.rowcount or 0)


def _ingest_heartbeat(engine: sa.Engine, folder: HeartbeatFolder, path: Path) -> str | None:
    """``stored``, ``duplicate``, None (gone: another worker took it), or a rejection reason."""
    try:
        with open_regular(path) as (fd, info):
            data = read_whole(fd, MAX_HEARTBEAT_BYTES)
    except FileNotFoundError:
        return None
    except NotRegular as exc:
        return refusal(exc.kind)
    except PermissionError as exc:
        return unreadable(exc)
    if data is None:
        return f"the file is larger than {MAX_HEARTBEAT_BYTES} bytes: not a heartbeat, not read"
    received_at = datetime.fromtimestamp(info.st_mtime, UTC)
    reason = _reject_reason(engine, folder, path.name, data)
    if isinstance(reason, str):
        return reason
    with write_transaction(engine) as conn:
        fresh = record_heartbeat(
            conn,
            tenant_id=folder.tenant_id,
            heartbeat=reason,
            file_name=path.name,
            received_at=received_at,
        )
    path.unlink(missing_ok=True)
    return "stored" if fresh else "duplicate"


def _reject_reason(
    engine: sa.Engine, folder: HeartbeatFolder, name: str, data: bytes
) -> Heartbeat | str:
    """The heartbeat, or why it cannot be accepted."""
    slug = folder.slug
    parsed_name = parse_heartbeat_file_name(name)
    if parsed_name is None:
        return f"{name} is not a heartbeat file name (AGENT-YYYYMMDDTHHMMSSmmmZ.json)"
    if folder.agent_id is not None and parsed_name[0] != folder.agent_id:
        return (
            f"the heartbeat names agent {parsed_name[0]} but landed in agent {folder.agent_id}'s "
            "landing account: an agent reports only its own health"
        )
    with engine.connect() as conn:
        signers = trusted_signers(conn, folder.tenant_id, parsed_name[0])
    if signers is None:
        return (
            f"agent {parsed_name[0]} is not enrolled for tenant {slug}: run "
            f"`datacenter agent approve` with the request its `edge-agent enroll` printed"
        )
    try:
        document = _verified_document(data, signers)
    except EnvelopeError as exc:
        return f"the heartbeat's signature is refused: {exc}"
    if document is None:
        return (
            f"agent {parsed_name[0]} has a pinned certificate, so its heartbeats must be signed "
            "with it; this one is unsigned (forged, or from an agent older than signed heartbeats)"
        )
    try:
        heartbeat = parse_heartbeat(document)
    except ValidationError as exc:
        return f"not a valid heartbeat document: {exc}"
    if (
        heartbeat.agent_id != parsed_name[0]
        or heartbeat_file_name(heartbeat.agent_id, heartbeat.sent_at) != name
    ):
        return (
            f"the file name says agent {parsed_name[0]} at {parsed_name[1]:%Y-%m-%d %H:%M:%S}, "
            f"the document agent {heartbeat.agent_id} at {heartbeat.sent_at:%Y-%m-%d %H:%M:%S}: "
            "the file was renamed"
        )
    if heartbeat.tenant != slug:
        return (
            f"the heartbeat names tenant {heartbeat.tenant!r} but landed in tenant {slug!r}'s "
            "folder: check the agent's configured tenant"
        )
    return heartbeat


def _verified_document(data: bytes, signers: frozenset[str]) -> bytes | None:
    """The JSON inside a signed heartbeat (``EnvelopeError`` if the signature fails); a plain
    document only from an agent with no certificate pinned (None otherwise)."""
    if is_protected(data):
        return verify_signed(data, trusted_signers=signers).content
    return None if signers else data


def _quarantine_heartbeat(tenant_dir: Path, path: Path, reason: str) -> None:
    folder = tenant_dir / QUARANTINED_HEARTBEATS
    target = move_entry(path, folder, path.name, note_suffix=REASON_SUFFIX)
    if target is None:
        return  # another worker took it
    try:
        write_note(target.with_name(target.name + REASON_SUFFIX), reason + "\n")
    except FileExistsError:  # planted after the move chose a free name: never written through
        log.error("a %s%s appeared beside the quarantined heartbeat", target, REASON_SUFFIX)
    log.warning("heartbeat %s quarantined: %s", path.name, reason)
