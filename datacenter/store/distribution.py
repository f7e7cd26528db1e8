"""Where each table would live on a Citus cluster distributed by ``tenant_id`` (docs/scale.md).

Contract:

- Every table is one of three kinds:
  - **distributed** by ``tenant_id`` (the default: tenant data, co-located, so one tenant's calls,
    costs, rollups and settings are on one node and a tenant's queries are pushed down whole);
  - **reference** (``REFERENCE_TABLES``): small, global, replicated to every node so distributed
    tables may join them and hold foreign keys to them;
  - **coordinator** (``COORDINATOR_TABLES``): global rows about people and sign-ins that are never
    joined to tenant data, kept as local tables on the coordinator.
- A distributed table's primary key, unique keys and unique indexes all lead with ``tenant_id``,
  and each of its foreign keys either leads with ``tenant_id`` into another distributed table or
  points at a reference table. Reference tables refer only to reference tables; coordinator
  tables to reference or coordinator tables. ``tests/unit/test_distribution_keys.py`` holds the
  schema to this, so a new table is distributable or listed here with its reason.
- Nothing here needs Citus: it is the plan the schema keeps possible. SQLite and plain
  PostgreSQL ignore it.
"""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa

Placement = Literal["distributed", "reference", "coordinator"]

REFERENCE_TABLES: dict[str, str] = {
    "tenants": "the distribution key's own table: every tenant table's foreign key points at it, "
    "and its slug is unique across tenants (it names the landing folder)",
    "agents": "its landing_account is unique across tenants (a system user name on the landing "
    "host), so no key can lead with tenant_id; small (one row per site) and read by every "
    "ingest worker",
    "users": "sign-in finds a user by email across tenants (unique email), staff users have no "
    "tenant, and user_scopes and technician_tenants (distributed) refer to it",
}

COORDINATOR_TABLES: dict[str, str] = {
    "user_sessions": "a browser session is found by its hash before its tenant is known",
    "login_attempts": "sign-in throttling by email and address, before any tenant is known",
    "recovery_codes": "a user's TOTP recovery codes; users are global",
    "api_tokens": "a token is found by its hash before its tenant is known",
    "technician_digests": "one row per technician (staff, no tenant)",
    "audit_log": "staff events have no tenant (tenant_id NULL); splitting tenant events into a "
    "distributed table is listed as remaining work in docs/scale.md",
    "saved_reports": "tenant data keyed by a global autoincrement saved_id; re-keying to "
    "(tenant_id, saved_id) is remaining work (docs/scale.md); few rows, never joined to calls",
    "report_schedules": "keyed by a global autoincrement schedule_id and referring to "
    "saved_reports by it alone; re-keying is remaining work (docs/scale.md)",
    "schedule_runs": "keyed by a global autoincrement run_id and referring to report_schedules "
    "by it alone; re-keying is remaining work (docs/scale.md)",
}


def placement(table: sa.Table) -> Placement:
    if table.name in REFERENCE_TABLES:
        return "reference"
    if table.name in COORDINATOR_TABLES:
        return "coordinator"
    return "distributed"
