"""The audit log: who signed in, who failed, who was locked out, what admins changed.

Contract: ``record`` adds one row in the caller's transaction; ``events`` reads a tenant's rows
newest first (``tenant_id=None`` reads staff events). Event names are ``EVENTS``; details are a
small JSON object (never a password, a code or a session id).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from datacenter.store.tables.accounts import audit_log

EVENTS = (
    "sign_in", "sign_in_failed", "sign_in_refused", "locked_out", "unlocked", "sign_out",
    "password_changed", "password_reset", "user_added", "user_disabled", "user_enabled",
    "role_changed", "scope_changed", "totp_enabled", "totp_disabled", "recovery_code_used",
    "tenant_added", "tenant_admin_assigned", "masking_changed", "export",
    "report_saved", "report_changed", "report_deleted", "schedule_added", "schedule_changed",
    "schedule_deleted", "schedule_run_requested", "report_link_fetched", "report_link_refused",
    "recording_played", "recording_downloaded", "recordings_deleted", "recording_policy_changed",
    "permission_changed",
    "cost_alarm_acknowledged", "cost_alarm_rules_changed",
)  # fmt: skip
DEFAULT_LIMIT = 200


@dataclass(frozen=True, slots=True)
class AuditEvent:
    audit_id: int
    tenant_id: int | None
    at: datetime
    actor: str
    event: str
    subject: str
    address: str
    details: dict[str, Any]


def record(
    conn: sa.Connection,
    event: str,
    *,
    at: datetime,
    tenant_id: int | None,
    actor: str,
    subject: str = "",
    address: str = "",
    details: Mapping[str, Any] | None = None,
) -> None:
    if event not in EVENTS:
        raise ValueError(f"unknown audit event {event!r}")
    conn.execute(
        audit_log.insert().values(
            tenant_id=tenant_id,
            at=at,
            actor=actor[:254],
            event=event,
            subject=subject[:254],
            address=address[:64],
            details=dict(details or {}),
        )
    )


def events(
    conn: sa.Connection, tenant_id: int | None, *, limit: int = DEFAULT_LIMIT
) -> list[AuditEvent]:
    owner = (
        audit_log.c.tenant_id.is_(None)
        if tenant_id is None
        else (audit_log.c.tenant_id == tenant_id)
    )
    query = (
        sa.select(audit_log)
        .where(owner)
        .order_by(audit_log.c.at.desc(), audit_log.c.audit_id.desc())
        .limit(limit)
    )
    return [AuditEvent(**row._asdict()) for row in conn.execute(query)]
