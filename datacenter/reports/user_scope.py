"""A portal viewer's ``UserScope`` as the reports' ``Scope`` hook (``reports.scope``).

On raw calls the hook returns the same condition as the call list (``store.scope_sql``). On a
rollup grouped by extension (target with ``day`` but no ``start_utc``) it can carry an
extension-only scope; a site, department or cost-centre scope depends on who held the extension
at the call's start, which a daily rollup cannot tell, so it returns None and the report reads
the raw calls: a scoped viewer never gets a total that counts a call outside the scope.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from datacenter.reports.scope import Scope, ScopeTarget
from datacenter.store.call_scope import UserScope
from datacenter.store.scope_sql import needs_start_time, scope_condition


def report_scope(user_scope: UserScope) -> Scope | None:
    """The hook for ``user_scope``; None for the whole organisation (no restriction)."""
    if user_scope.whole:
        return None

    def conditions(target: ScopeTarget) -> Sequence[sa.ColumnElement[bool]] | None:
        if target.extension is None:
            return None
        if target.start_utc is None and needs_start_time(user_scope):
            return None
        found = scope_condition(user_scope, target.tenant_id, target.extension, target.start_utc)
        return [] if found is None else [found]

    return conditions
