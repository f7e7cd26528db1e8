"""Saved reports: a catalogue report with its parameters, columns and title, kept by a user.

Contract:

- A saved report belongs to its owner's tenant. ``private`` ones are seen by the owner and the
  tenant's admins; ``shared`` ones by every user of the tenant. Only the owner and the tenant's
  admins rename, share, delete or schedule it (``can_manage``). Anyone else — another tenant,
  staff, a colleague for a private report — gets ``None`` from ``get_saved``, exactly like an id
  that does not exist, so ids cannot be probed.
- The parameters are the query string of ``datacenter.reports.query_string`` (dates, filters,
  sort, options); the scope is never stored. ``run_saved`` runs the report under the scope it
  is given — the viewer's on a page, the owner's at the time of a scheduled run — so sharing a
  report never shows anyone more than their own scope.
- Functions take a ``Connection`` in the caller's transaction; bad input raises
  ``ValidationError`` naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from datacenter.accounts.users import User
from datacenter.reports.catalog import REPORTS, ReportParams, ReportTable, report
from datacenter.reports.query_string import report_params
from datacenter.reports.user_scope import report_scope
from datacenter.store.call_scope import WHOLE, UserScope
from datacenter.store.tables.core import users
from datacenter.store.tables.saved_reports import QUERY_LENGTH, TITLE_LENGTH, saved_reports
from shared.errors import ValidationError

MAX_COLUMNS = 64
_COLUMN_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass(frozen=True)
class SavedReport:
    saved_id: int
    tenant_id: int
    owner_id: int
    owner_email: str
    report: str
    query: str
    columns: tuple[str, ...]  # empty: every column of the report
    title: str
    shared: bool
    created_at: datetime
    updated_at: datetime

    def args(self) -> dict[str, str]:
        return dict(parse_qsl(self.query, keep_blank_values=False))


def can_view(saved: SavedReport, user: User) -> bool:
    if user.tenant_id != saved.tenant_id:
        return False
    return saved.shared or saved.owner_id == user.user_id or user.is_tenant_admin


def can_manage(saved: SavedReport, user: User) -> bool:
    return user.tenant_id == saved.tenant_id and (
        saved.owner_id == user.user_id or user.is_tenant_admin
    )


def check_title(title: str) -> str:
    text = " ".join(title.split())
    if not text:
        raise ValidationError("title", "give the report a title")
    if len(text) > TITLE_LENGTH:
        raise ValidationError("title", f"at most {TITLE_LENGTH} characters")
    return text


def check_columns(columns: Iterable[str]) -> tuple[str, ...]:
    keys = tuple(dict.fromkeys(c.strip() for c in columns if c.strip()))
    if len(keys) > MAX_COLUMNS:
        raise ValidationError("columns", f"at most {MAX_COLUMNS} columns")
    for key in keys:
        if not _COLUMN_KEY.match(key):
            raise ValidationError("columns", f"{key!r} is not a column name")
    return keys


def report_args(
    query: str | dict[str, str], *, tenant_id: int, zone: ZoneInfo, today: date, scope: UserScope
) -> ReportParams:
    """The parameters in ``query`` under ``scope``; a bad value raises ``ValidationError``."""
    args = dict(parse_qsl(query)) if isinstance(query, str) else query
    return report_params(
        args, tenant_id=tenant_id, zone=zone, today=today, scope=report_scope(scope)
    )


def save_report(
    conn: sa.Connection,
    user: User,
    *,
    name: str,
    query: str,
    columns: Sequence[str],
    title: str,
    shared: bool,
    zone: ZoneInfo,
    now: datetime,
) -> SavedReport:
    """Keep a report for ``user`` (a tenant user); the query string is checked first."""
    if user.tenant_id is None:
        raise ValidationError("owner", "only a tenant's users save reports")
    if name not in REPORTS:
        raise ValidationError("report", f"no report {name!r}; reports: {', '.join(REPORTS)}")
    params = report_args(query, tenant_id=user.tenant_id, zone=zone, today=now.date(),
                         scope=WHOLE)  # fmt: skip
    del params  # parsed only to refuse a bad query now rather than at the first run
    normal = urlencode(sorted(parse_qsl(query)))
    if len(normal) > QUERY_LENGTH:
        raise ValidationError("query", f"the report's parameters exceed {QUERY_LENGTH} characters")
    saved_id = conn.execute(
        saved_reports.insert()
        .values(
            tenant_id=user.tenant_id, owner_id=user.user_id, report=name, query=normal,
            columns=list(check_columns(columns)), title=check_title(title), shared=shared,
            created_at=now, updated_at=now,
        )
        .returning(saved_reports.c.saved_id)
    ).scalar_one()  # fmt: skip
    found = _get(conn, saved_id)
    assert found is not None
    return found


def _select() -> sa.Select[Any]:
    return sa.select(saved_reports, users.c.email.label("owner_email")).join(
        users, users.c.user_id == saved_reports.c.owner_id
    )


def _saved(row: sa.Row[Any]) -> SavedReport:
    values = row._asdict()
    values["columns"] = tuple(values["columns"] or ())
    return SavedReport(**values)


def _get(conn: sa.Connection, saved_id: int) -> SavedReport | None:
    row = conn.execute(_select().where(saved_reports.c.saved_id == saved_id)).one_or_none()
    return None if row is None else _saved(row)


def get_saved(conn: sa.Connection, saved_id: int, user: User) -> SavedReport | None:
    """The saved report if ``user`` may see it, else None (as if it did not exist)."""
    found = _get(conn, saved_id)
    return found if found is not None and can_view(found, user) else None


def get_saved_for_owner(conn: sa.Connection, saved_id: int) -> SavedReport | None:
    """The saved report whatever the viewer: for the scheduler, which runs as its owner."""
    return _get(conn, saved_id)


def list_saved(conn: sa.Connection, user: User) -> list[SavedReport]:
    """What ``user`` may open: their own, the tenant's shared ones, all for a tenant admin."""
    if user.tenant_id is None:
        return []
    query = _select().where(saved_reports.c.tenant_id == user.tenant_id)
    if not user.is_tenant_admin:
        query = query.where(
            sa.or_(saved_reports.c.owner_id == user.user_id, saved_reports.c.shared.is_(True))
        )
    rows = conn.execute(query.order_by(saved_reports.c.title, saved_reports.c.saved_id))
    return [_saved(row) for row in rows]


def _change(conn: sa.Connection, saved: SavedReport, user: User, **values: Any) -> None:
    if not can_manage(saved, user):
        raise ValidationError("saved_report", "only its owner or a tenant admin may change it")
    conn.execute(
        saved_reports.update()
        .where(saved_reports.c.tenant_id == saved.tenant_id,
               saved_reports.c.saved_id == saved.saved_id)
        .values(**values)
    )  # fmt: skip


def rename(
    conn: sa.Connection, saved: SavedReport, user: User, title: str, *, now: datetime
) -> None:
    _change(conn, saved, user, title=check_title(title), updated_at=now)


def set_shared(
    conn: sa.Connection, saved: SavedReport, user: User, shared: bool, *, now: datetime
) -> None:
    _change(conn, saved, user, shared=shared, updated_at=now)


def delete(conn: sa.Connection, saved: SavedReport, user: User) -> None:
    """Delete the saved report with its schedules and their run history."""
    if not can_manage(saved, user):
        raise ValidationError("saved_report", "only its owner or a tenant admin may delete it")
    conn.execute(
        saved_reports.delete().where(
            saved_reports.c.tenant_id == saved.tenant_id,
            saved_reports.c.saved_id == saved.saved_id,
        )
    )


def saved_days(saved: SavedReport, *, zone: ZoneInfo, today: date) -> tuple[date, date]:
    """The dates saved with the report (its defaults where it saved none)."""
    params = report_args(saved.query, tenant_id=saved.tenant_id, zone=zone, today=today,
                         scope=WHOLE)  # fmt: skip
    return params.first_day, params.last_day


def select_columns(table: ReportTable, keys: Sequence[str]) -> ReportTable:
    """``table`` with only the columns ``keys`` (in that order); all of them when empty."""
    if not keys:
        return table
    index = {column.key: i for i, column in enumerate(table.columns)}
    unknown = [key for key in keys if key not in index]
    if unknown:
        raise ValidationError(
            "columns",
            f"{', '.join(unknown)} not in this report; its columns: {', '.join(index)}",
        )
    picks = [index[key] for key in keys]
    rows = (tuple(row[i] for i in picks) for row in table.rows)
    totals = tuple(table.totals[i] for i in picks) if table.totals is not None else None
    return replace(table, columns=tuple(table.columns[i] for i in picks), rows=rows,
                   totals=totals)  # fmt: skip


def run_saved(
    conn: sa.Connection,
    saved: SavedReport,
    *,
    zone: ZoneInfo,
    scope: UserScope,
    today: date,
    days: tuple[date, date] | None = None,
    mask_digits: int = 0,
) -> ReportTable:
    """Run ``saved`` under ``scope`` (never wider) and the number masking of whoever it runs
    for, over ``days`` instead of its own dates."""
    params = report_args(saved.query, tenant_id=saved.tenant_id, zone=zone, today=today,
                         scope=scope)  # fmt: skip
    if days is not None:
        params = replace(params, first_day=days[0], last_day=days[1])
    # The catalogue masks the numbers (and refuses a filter on them) for ``mask_digits``.
    table = report(saved.report).run(conn, replace(params, mask_digits=mask_digits))
    return select_columns(table, saved.columns)
