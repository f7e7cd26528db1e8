"""The data-centre schema: one SQLAlchemy ``MetaData``, its tables grouped by concern.

    metadata.py   the MetaData, naming convention and column types every module shares
    icdr_columns.py  the calls table's record columns, built from shared.icdr's declaration
    core.py       tenants, agents, users, landed files, calls, daily rollups (v0001)
    rating.py     tariffs, dial plans, route maps, call costs, the unrated queue (v0002)
    alarms.py     alarms, notifications, technicians' tenants (v0004)
    cost_alarms.py  per-tenant cost and fraud alarm rules, marks, alarms and their calls (v0015)
    health.py     heartbeats (v0005)
    directory.py  who had which extension when (v0008)
    accounts.py   user scopes, sessions, sign-in attempts, audit log, recovery codes (v0012)
    api_tokens.py per-user API tokens, hashed (v0010)
    rollups.py    report rollups per tenant, local day and dimension (v0013)
    saved_reports.py  saved reports, their schedules and runs (v0014)
    recordings.py call recordings, recording policies, user permissions (v0016)
    jobs.py       store jobs: (tenant, kind, day) work any worker claims (v0019)

Importing this package imports every table module, so ``metadata`` holds the whole schema.
"""

from datacenter.store.tables import (
    accounts,
    alarms,
    api_tokens,
    core,
    cost_alarms,
    directory,
    health,
    jobs,
    rating,
    recordings,
    rollups,
    saved_reports,
)
from datacenter.store.tables.metadata import metadata

__all__ = [
    "accounts",
    "alarms",
    "api_tokens",
    "core",
    "cost_alarms",
    "directory",
    "health",
    "jobs",
    "metadata",
    "rating",
    "recordings",
    "rollups",
    "saved_reports",
]
