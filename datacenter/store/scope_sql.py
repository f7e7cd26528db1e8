"""A viewer's ``UserScope`` as SQL conditions on any query's extension and call-start columns.

One definition for the portal's call list (``TenantScope``) and the reports
(``datacenter.reports.user_scope``): a call is in scope when its extension is one of the
scope's extensions, or when, at the call's start, the directory had that extension in one of
the scope's sites, departments or cost centres (validity periods are times, so a past call
stays with whoever had the extension then).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from datacenter.store.call_scope import UserScope
from datacenter.store.tables.directory import directory_entries


def needs_start_time(scope: UserScope) -> bool:
    """Whether the scope needs each call's start (any site/department/cost-centre value)."""
    return bool(scope.sites or scope.departments or scope.cost_centres)


def scope_condition(
    scope: UserScope,
    tenant_id: int,
    extension: sa.ColumnElement[Any],
    start_utc: sa.ColumnElement[datetime] | None,
) -> sa.ColumnElement[bool] | None:
    """The condition for ``scope`` (None: the whole tenant, no condition needed).

    Raises ValueError when the scope needs ``start_utc`` and the query has none.
    """
    if scope.whole:
        return None
    either: list[sa.ColumnElement[bool]] = []
    if scope.extensions:
        either.append(extension.in_(sorted(scope.extensions)))
    # An alias: a query's own join to directory_entries (who had the extension) must not be
    # correlated into these subqueries.
    entries = directory_entries.alias("scope_entries")
    grouped = [
        column.in_(sorted(values))
        for column, values in (
            (entries.c.site, scope.sites),
            (entries.c.department, scope.departments),
            (entries.c.cost_centre, scope.cost_centres),
        )
        if values
    ]
    if grouped:
        if start_utc is None:
            raise ValueError("a site, department or cost-centre scope needs the call's start")
        # The IN list narrows the calls through the (tenant_id, extension, start_utc) index to
        # the extensions that were ever in scope; EXISTS then checks the period.
        ever = sa.select(entries.c.extension).where(
            entries.c.tenant_id == tenant_id, sa.or_(*grouped)
        )
        held = sa.exists().where(
            entries.c.tenant_id == tenant_id,
            entries.c.extension == extension,
            entries.c.valid_from <= start_utc,
            sa.or_(entries.c.valid_to.is_(None), start_utc < entries.c.valid_to),
            sa.or_(*grouped),
        )
        either.append(sa.and_(extension.in_(ever), held))
    return sa.or_(*either)
