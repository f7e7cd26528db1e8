"""Taking one landed file: refuse what is not a file, claim it, read it whole, then hand it on.

What every kind of landed file goes through (call batches ``.ccb``: ``worker``; recordings
batches ``.ccr``: ``datacenter.recordings.ingest``), so each kind writes only what it stores:

- ``take_file`` refuses a file from another agent's account, anything but a regular file and a
  file larger than ``ingest.max_file_bytes`` (quarantined unread and unclaimed), streams the
  SHA-256, claims the file (``claim``: ``busy`` → None, ``resent`` → receipted again,
  ``conflict`` → kept as ``NAME~SHA12``, ``crashed`` → quarantined unread), reads it under the
  claim (bounded, and checked against the digest), and calls ``store(landed)`` with
  ``landed.data`` filled. ``store`` returns the outcome; ``quarantine`` is what it calls for a
  file that fails its checks.
- ``open_file`` decrypts and verifies ``landed.data`` with ``shared.cms.open_protected``: a CMS
  file must decrypt with the data centre's envelope key (or a previous one during a rotation)
  and be signed by exactly the certificate pinned for the agent its name names; a plain file is
  accepted only with ``ingest.accept_unprotected``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from contextlib import ExitStack

import sqlalchemy as sa

from datacenter.accounts.agents import trusted_signers
from datacenter.ingest.claim import (
    claim_file,
    crash_reason,
    mark_quarantined,
    record_conflict,
)
from datacenter.ingest.envelope_rotation import previous_recipients
from datacenter.ingest.files import FileOutcome, Landed, foreign_agent_reason, move_to_quarantine
from datacenter.ingest.landing_io import (
    NotRegular,
    open_regular,
    read_whole,
    refusal,
    sha256_of,
    unreadable,
)
from datacenter.ingest.receipts import receipt_again
from datacenter.settings import Settings
from shared.cms import OpenedFile, Recipient, is_protected, open_protected
from shared.errors import EnvelopeError
from shared.keys import DatacentreKeys

log = logging.getLogger(__name__)

Store = Callable[[Landed], "FileOutcome | None"]


def take_file(
    engine: sa.Engine,
    settings: Settings,
    landed: Landed,
    *,
    worker: str,
    keys: DatacentreKeys | None,
    store: Store,
) -> FileOutcome | None:
    """Claim, read and ``store`` one file; None if another worker has it (module docstring)."""
    foreign = foreign_agent_reason(landed)
    if foreign is not None:  # before the claim: another agent's batch names stay unclaimed
        account = landed.folder.name if landed.folder else ""
        return move_to_quarantine(settings, landed, f"{account}~{landed.name}", foreign)
    with ExitStack() as stack:
        try:
            fd, info = stack.enter_context(open_regular(landed.path))
        except FileNotFoundError:
            return None  # another worker archived it while we listed
        except NotRegular as exc:
            return refuse(settings, landed, refusal(exc.kind))
        except PermissionError as exc:
            return refuse(settings, landed, unreadable(exc))
        if info.st_size > settings.ingest.max_file_bytes:
            return refuse(settings, landed, _too_large(info.st_size, settings))
        return _take_open_file(engine, settings, landed, fd, worker=worker, keys=keys, store=store)


def _take_open_file(
    engine: sa.Engine,
    settings: Settings,
    landed: Landed,
    fd: int,
    *,
    worker: str,
    keys: DatacentreKeys | None,
    store: Store,
) -> FileOutcome | None:
    """The file behind ``fd`` from its claim on; only its SHA-256 is streamed before the claim."""
    limit = settings.ingest.max_file_bytes
    landed.sha256, landed.size = sha256_of(fd)
    if landed.size > limit:  # grew since fstat
        return refuse(settings, landed, _too_large(landed.size, settings))
    claim = claim_file(engine, landed, worker=worker, timeout=settings.ingest.claim_timeout_seconds)
    if claim == "busy":
        return None
    if claim == "resent":
        return receipt_again(settings, engine, landed, keys)
    if claim == "conflict":
        return _quarantine_conflict(engine, settings, landed, worker=worker)
    if claim == "crashed":
        return move_to_quarantine(settings, landed, landed.name, crash_reason(engine, landed))
    # Claimed: from here on a crash leaves the claim, and the claim counts it.
    data = read_whole(fd, limit)
    if data is None or hashlib.sha256(data).hexdigest() != landed.sha256:
        reason = "the file changed while it was being read: a landed file must not be written to"
        return quarantine(engine, settings, landed, reason, worker=worker)
    landed.data = data
    return store(landed)


def _too_large(size: int, settings: Settings) -> str:
    return (
        f"the file is {size} bytes, more than ingest.max_file_bytes "
        f"({settings.ingest.max_file_bytes}): quarantined unread; no agent sends batches this "
        "large, so look at where it came from"
    )


def refuse(settings: Settings, landed: Landed, reason: str) -> FileOutcome | None:
    """Quarantine an entry unread and unclaimed (not a regular file, or too large).

    No ``landed_files`` row: nothing of it was read, so there is no digest to record; its
    reason is in ``NAME.reason`` and the log, and its batch number shows as missing.
    """
    log.warning("%s/%s refused unread: %s", landed.tenant.slug, landed.name, reason)
    return move_to_quarantine(settings, landed, landed.name, reason)


def quarantine(
    engine: sa.Engine, settings: Settings, landed: Landed, reason: str, *, worker: str
) -> FileOutcome | None:
    """End our claim as quarantined with ``reason`` and move the file; None if the claim was lost."""
    if not mark_quarantined(engine, landed, reason, worker=worker):
        return None
    return move_to_quarantine(settings, landed, landed.name, reason)


def _quarantine_conflict(
    engine: sa.Engine, settings: Settings, landed: Landed, *, worker: str
) -> FileOutcome | None:
    """A different file under a name already stored: keep it, under ``NAME~SHA12``."""
    name = f"{landed.name}~{landed.sha256[:12]}"
    reason = (
        f"a different file named {landed.name} was already stored for this tenant: the agent's "
        "batch sequence may have been reset (re-enrolled or restored); compare the two and "
        "re-send the records under a new sequence"
    )
    record_conflict(engine, landed, name, reason, worker=worker)
    return move_to_quarantine(settings, landed, name, reason)


def open_file(
    engine: sa.Engine, settings: Settings, landed: Landed, keys: DatacentreKeys | None
) -> OpenedFile:
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
    return open_protected(
        landed.data,
        recipient=recipient,
        trusted_signers=signers,
        accept_unprotected=settings.ingest.accept_unprotected,
        previous=previous_recipients(settings.keys) if keys else (),  # an envelope rotation
    )


def check_attribution(
    landed: Landed,
    *,
    tenant: str,
    agent_id: str,
    sequence: int,
    senders: Iterable[str],
    items: str,
) -> None:
    """The folder decides the tenant; the file's manifest must agree with it, with the file's
    own name, and every one of its ``items`` (records, recordings) must be its agent's own."""
    slug = landed.tenant.slug
    if tenant != slug:
        raise EnvelopeError(
            f"manifest names tenant {tenant!r} but the file landed in tenant {slug!r}'s "
            "folder: check the agent's configured tenant"
        )
    if (agent_id, sequence) != (landed.agent_id, landed.sequence):
        raise EnvelopeError(
            f"file name says agent {landed.agent_id} sequence {landed.sequence}, manifest says "
            f"agent {agent_id} sequence {sequence}: the file was renamed"
        )
    strangers = set(senders) - {agent_id}
    if strangers:
        raise EnvelopeError(
            f"{items} from agent(s) {', '.join(sorted(strangers))} in a batch from "
            f"{agent_id}: an agent sends only its own {items}"
        )
