"""Attribute calls to directory entries: who had the call's extension when the call started.

``attribute_calls(query)`` takes a select over ``calls`` and returns it LEFT JOINed to
``directory_entries`` on tenant, extension and validity period (``valid_from <= start_utc <
valid_to``), adding ``person``, ``department``, ``cost_centre`` and ``site`` ('' when nobody
had the extension). The importers keep the periods of an extension from overlapping, so the join
matches at most one entry and never multiplies calls. The join is on the leading columns of
``directory_entries``' (tenant_id, extension, valid_from) index. Only ``TenantScope`` calls it:
the join follows the tenant filter the scope already put on ``calls``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from datacenter.store.tables.core import calls
from datacenter.store.tables.directory import directory_entries

ATTRIBUTION_COLUMNS = ("person", "department", "cost_centre", "site")


def attribution_join(base: sa.FromClause = calls) -> sa.Join:
    """``base`` (``calls``, or a join that starts from it) LEFT JOIN the entry that held the
    call's extension at its start."""
    d = directory_entries.c
    return base.outerjoin(
        directory_entries,
        sa.and_(
            d.tenant_id == calls.c.tenant_id,
            d.extension == calls.c.extension,
            d.valid_from <= calls.c.start_utc,
            sa.or_(d.valid_to.is_(None), calls.c.start_utc < d.valid_to),
        ),
    )


def attribute_calls(query: sa.Select[Any], *, base: sa.FromClause = calls) -> sa.Select[Any]:
    """``query`` (a select from ``base``: ``calls`` or a join from it) with the attribution
    columns added."""
    d = directory_entries.c
    return query.select_from(attribution_join(base)).add_columns(
        *(sa.func.coalesce(d[name], "").label(name) for name in ATTRIBUTION_COLUMNS)
    )
