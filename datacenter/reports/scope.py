"""The viewer's scope as a report query sees it: a hook that adds WHERE clauses.

Every report query takes ``scope: Scope | None`` (None: the whole tenant). A scope is a callable
given the ``ScopeTarget`` of the query being built — the columns it can restrict, as that query
names them — and returning the conditions to AND into the query's WHERE clause, or ``None`` when
it cannot be expressed on that target. The roles-and-scopes work (issue #12) supplies the
callables (a user's extensions, departments, sites through ``directory_entries``); this module
only fixes the contract:

- On raw calls the target has ``extension`` and ``start_utc`` (the directory's validity periods
  are times, so a department scope joins ``directory_entries`` on extension and start).
- On a rollup that groups by extension the target has ``extension`` and ``day`` (the tenant-local
  day) and no ``start_utc``. A scope that needs the exact time returns None there.
- A rollup that does not group by extension (trunk, carrier, destination class) cannot be
  scoped at all: the target's ``extension`` is None, and the scope is not asked.

Whenever a scope is given and the rollup cannot carry it (no extension, or the scope returned
None), the report reads the raw calls instead, so a scoped viewer never sees a total that
includes calls outside the scope.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa


@dataclass(frozen=True)
class ScopeTarget:
    """The columns of the query being built that a scope may restrict."""

    tenant_id: int
    extension: sa.ColumnElement[Any] | None
    start_utc: sa.ColumnElement[datetime] | None = None  # raw calls
    day: sa.ColumnElement[date] | None = None  # rollups: the tenant-local day


Scope = Callable[[ScopeTarget], Sequence[sa.ColumnElement[bool]] | None]


def scope_conditions(
    scope: Scope | None, target: ScopeTarget
) -> list[sa.ColumnElement[bool]] | None:
    """The scope's conditions on ``target``: [] without a scope, None when it cannot apply."""
    if scope is None:
        return []
    if target.extension is None:
        return None
    found = scope(target)
    return None if found is None else list(found)
