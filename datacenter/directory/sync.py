"""Scheduled LDAP re-sync: one pass, or a loop every ``interval_minutes`` until stopped.

A failed pass (server down, bind refused) is logged and retried at the next interval; the
directory keeps what the last good pass wrote, so an outage never empties it.
"""

from __future__ import annotations

import logging
import threading

import sqlalchemy as sa

from datacenter.directory.entries import ApplyReport
from datacenter.directory.ldap_config import LdapConfig
from datacenter.directory.ldap_import import fetch_ldap_entries, sync_ldap
from datacenter.store.engine import write_transaction
from shared.errors import CallCollectError

log = logging.getLogger(__name__)


def sync_once(engine: sa.Engine, tenant_id: int, config: LdapConfig) -> ApplyReport:
    """Fetch (outside any transaction: the server may be slow) then write in one transaction."""
    fetch = fetch_ldap_entries(config)
    with write_transaction(engine) as conn:
        report = sync_ldap(conn, tenant_id, fetch)
    log.info("directory sync of tenant %d: %s, %d skipped (no name or number)",
             tenant_id, report.summary(), fetch.skipped)  # fmt: skip
    return report


def sync_forever(
    engine: sa.Engine, tenant_id: int, config: LdapConfig, *, stop_event: threading.Event
) -> None:
    while not stop_event.is_set():
        try:
            sync_once(engine, tenant_id, config)
        except CallCollectError as exc:
            log.error("directory sync of tenant %d failed, retrying in %d min: %s",
                      tenant_id, config.interval_minutes, exc)  # fmt: skip
        stop_event.wait(config.interval_minutes * 60)
