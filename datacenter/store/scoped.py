"""``TenantScope``: the only way to read a tenant's calls.

Contract:

- A scope is built from a connection and a tenant id and cannot be built without one; every
  query it runs is filtered on that ``tenant_id`` (the leading column of every index it uses).
  Views, reports and the API call these methods; none of them builds a call query itself, so
  there is nowhere to forget the tenant.
- ``list_calls`` pages newest first (``start_utc`` then ``record_id``, descending, so paging is
  stable). ``CallFilter`` days are whole days in the tenant's time zone, or in UTC if asked.
- ``day_summary`` reads the ``call_days`` rollup that ingest maintains, never raw call rows.
- A scope may be narrowed to a viewer's ``UserScope`` (``datacenter.store.call_scope``): every
  call query (list, count, one call, hourly and per-source counts) then also requires the call's
  extension to be one of the scope's extensions, or to have belonged, in ``directory_entries``
  at the call's start, to one of its sites, departments or cost centres. A call outside the
  scope is "not found", exactly like another tenant's. ``day_summary`` reads a rollup of the
  whole tenant, so a narrowed scope refuses it (``StoreError``).
- ``mask_digits`` hides the last N digits of every external number in what the scope returns
  (the call's fields, its raw record and extras); while numbers are masked the ``number``
  filter matches nothing, so it cannot be used to probe the hidden digits.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from datacenter.store.call_scope import WHOLE, UserScope, mask_number
from datacenter.store.tables.core import call_days, calls, landed_files, tenants
from datacenter.store.tables.directory import directory_entries
from shared.errors import StoreError, ValidationError
from shared.icdr import ICDR, Completion, Direction

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 500
# Characters people type inside phone numbers that stored numbers do not carry.
_NUMBER_PUNCTUATION = re.compile(r"[\s().\-]")

_SUMMARY_COLUMNS = (
    "record_id", "agent_id", "source_id", "source_kind", "start_utc", "answer_utc", "end_utc",
    "utc_offset_minutes", "ring_seconds", "talk_seconds", "hold_seconds", "direction", "calling",
    "called", "dialled_digits", "extension", "trunk", "route", "third_party", "account_code",
    "ani", "dnis", "answered", "completion", "completion_source", "transferred", "conference",
    "call_id", "parent_call_id",
)  # fmt: skip
_NUMBER_COLUMNS = ("calling", "called", "dialled_digits", "third_party", "ani", "dnis")


@dataclass(frozen=True, slots=True)
class CallFilter:
    """What to list. Empty fields do not filter.

    ``date_from``/``date_to`` are inclusive days, in the tenant's time zone unless ``utc`` is set.
    ``number`` matches anywhere in the calling, called or dialled number (spaces, dots, dashes
    and brackets in it are ignored).
    """

    date_from: date | None = None
    date_to: date | None = None
    utc: bool = False
    extension: str | None = None
    number: str | None = None
    direction: Direction | None = None


@dataclass(frozen=True, slots=True)
class Call:
    """One stored call, as lists show it."""

    record_id: str
    agent_id: str
    source_id: str
    source_kind: str
    start_utc: datetime
    answer_utc: datetime | None
    end_utc: datetime
    utc_offset_minutes: int
    ring_seconds: int
    talk_seconds: int
    hold_seconds: int
    direction: str
    calling: str
    called: str
    dialled_digits: str
    extension: str
    trunk: str
    route: str
    third_party: str
    account_code: str
    ani: str
    dnis: str
    answered: bool
    completion: str
    completion_source: str
    transferred: bool
    conference: bool
    call_id: str
    parent_call_id: str

    @property
    def start_site(self) -> datetime:
        """Start on the site's wall clock (the PBX's offset when the call began)."""
        return self.start_utc.astimezone(timezone(timedelta(minutes=self.utc_offset_minutes)))


@dataclass(frozen=True, slots=True)
class CallDetail:
    """One call with its provenance: the raw source record and the full ICDR."""

    call: Call
    flags: tuple[str, ...]
    raw: str
    parser_version: str
    record: ICDR
    landed_file: str
    ingested_at: datetime

    def to_icdr(self) -> ICDR:
        return self.record


@dataclass(frozen=True, slots=True)
class CallPage:
    calls: list[Call]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def has_prev(self) -> bool:
        return self.page > 1


@dataclass(frozen=True, slots=True)
class DayCount:
    day: date  # the tenant's local day
    direction: str
    calls: int
    answered: int
    talk_seconds: int


@dataclass(frozen=True, slots=True)
class LandedFile:
    file_name: str
    agent_id: str
    sequence: int
    status: str
    reason: str | None
    records: int | None
    inserted: int | None
    duplicates: int | None
    claimed_at: datetime
    finished_at: datetime | None


class TenantScope:
    """Read access to one tenant's calls, rollups and landed files (within ``user_scope``)."""

    def __init__(
        self,
        conn: sa.Connection,
        tenant_id: int,
        *,
        user_scope: UserScope = WHOLE,
        mask_digits: int = 0,
    ) -> None:
        if not isinstance(tenant_id, int) or isinstance(tenant_id, bool):
            raise TypeError(f"TenantScope needs an integer tenant id, got {tenant_id!r}")
        row = conn.execute(
            sa.select(tenants.c.slug, tenants.c.timezone).where(tenants.c.tenant_id == tenant_id)
        ).one_or_none()
        if row is None:
            raise StoreError(f"no tenant with id {tenant_id}")
        self._conn = conn
        self.tenant_id = tenant_id
        self.slug: str = row.slug
        self.zone = ZoneInfo(row.timezone)
        self.user_scope = user_scope
        self.mask_digits = mask_digits

    def list_calls(
        self, filter: CallFilter, *, page: int = 1, per_page: int = DEFAULT_PER_PAGE
    ) -> CallPage:
        if page < 1:
            raise ValidationError("page", "pages start at 1")
        if not 1 <= per_page <= MAX_PER_PAGE:
            raise ValidationError("per_page", f"must be between 1 and {MAX_PER_PAGE}")
        columns = [calls.c[name] for name in _SUMMARY_COLUMNS]
        query = (
            sa.select(*columns)
            .where(*self._conditions(filter))
            .order_by(calls.c.start_utc.desc(), calls.c.record_id.desc())
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
        rows = self._conn.execute(query).all()
        return CallPage(
            calls=[self._call(row) for row in rows],
            page=page,
            per_page=per_page,
            total=self.count_calls(filter),
        )

    def count_calls(self, filter: CallFilter) -> int:
        query = sa.select(sa.func.count()).select_from(calls).where(*self._conditions(filter))
        return int(self._conn.execute(query).scalar_one())

    def get_call(self, record_id: str) -> CallDetail | None:
        row = self._conn.execute(
            calls.select().where(*self._in_scope(), calls.c.record_id == record_id)
        ).one_or_none()
        if row is None:
            return None
        detail = CallDetail(
            call=_call(row),
            flags=tuple(row.flags),
            raw=row.raw,
            parser_version=row.parser_version,
            record=icdr_from_row(row),
            landed_file=row.landed_file,
            ingested_at=row.ingested_at,
        )
        return self._masked_detail(detail) if self.mask_digits else detail

    def day_summary(
        self,
        *,
        date_from: date | None = None,
        date_to: date | None = None,
        direction: Direction | None = None,
    ) -> list[DayCount]:
        """Per local day and direction, oldest first, from the rollup."""
        if not self.user_scope.whole:
            raise StoreError("the daily rollup covers the whole tenant, not a narrowed scope")
        query = sa.select(call_days).where(call_days.c.tenant_id == self.tenant_id)
        if date_from is not None:
            query = query.where(call_days.c.day >= date_from)
        if date_to is not None:
            query = query.where(call_days.c.day <= date_to)
        if direction is not None:
            query = query.where(call_days.c.direction == direction.value)
        query = query.order_by(call_days.c.day, call_days.c.direction)
        return [
            DayCount(
                day=row.day,
                direction=row.direction,
                calls=row.calls,
                answered=row.answered,
                talk_seconds=row.talk_seconds,
            )
            for row in self._conn.execute(query)
        ]

    def count_calls_by_source(
        self, start: datetime, end: datetime, *, agent_id: str
    ) -> dict[str, int]:
        """Calls of one agent started in [start, end), per source (polling health's volume)."""
        query = (
            sa.select(calls.c.source_id, sa.func.count())
            .where(
                *self._in_scope(),
                calls.c.start_utc >= start,
                calls.c.start_utc < end,
                calls.c.agent_id == agent_id,
            )
            .group_by(calls.c.source_id)
        )
        return {row[0]: int(row[1]) for row in self._conn.execute(query)}

    def hourly_counts(
        self, start: datetime, end: datetime, *, agent_id: str | None = None
    ) -> list[tuple[datetime, int]]:
        """Calls started per UTC hour in [start, end), oldest first; hours without calls omitted."""
        if self._conn.dialect.name == "postgresql":
            hour: sa.ColumnElement[Any] = sa.func.date_trunc("hour", calls.c.start_utc)
        else:  # SQLite stores naive UTC text: cut it at the hour
            hour = sa.func.strftime("%Y-%m-%d %H:00:00", calls.c.start_utc)
        query = sa.select(hour.label("hour"), sa.func.count()).where(
            *self._in_scope(),
            calls.c.start_utc >= start,
            calls.c.start_utc < end,
        )
        if agent_id is not None:
            query = query.where(calls.c.agent_id == agent_id)
        out: list[tuple[datetime, int]] = []
        for value, count in self._conn.execute(query.group_by("hour").order_by("hour")):
            when = value if isinstance(value, datetime) else datetime.fromisoformat(value)
            out.append(
                (
                    when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC),
                    int(count),
                )
            )
        return out

    def recent_files(self, *, limit: int = 50) -> list[LandedFile]:
        """The tenant's most recently claimed batch files, newest first."""
        query = (
            sa.select(*(landed_files.c[f] for f in LandedFile.__dataclass_fields__))
            .where(landed_files.c.tenant_id == self.tenant_id)
            .order_by(landed_files.c.claimed_at.desc())
            .limit(limit)
        )
        return [LandedFile(**row._asdict()) for row in self._conn.execute(query)]

    def day_bounds(self, day: date, *, utc: bool = False) -> tuple[datetime, datetime]:
        """[start, end) of a day in the tenant's zone (or UTC), as UTC instants."""
        zone = UTC if utc else self.zone
        start = datetime.combine(day, time(), tzinfo=zone)
        end = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)
        return start.astimezone(UTC), end.astimezone(UTC)

    def _in_scope(self) -> list[sa.ColumnElement[bool]]:
        """The tenant, and the viewer's part of it: what every call query starts from."""
        conditions: list[sa.ColumnElement[bool]] = [calls.c.tenant_id == self.tenant_id]
        scope = self.user_scope
        if scope.whole:
            return conditions
        either: list[sa.ColumnElement[bool]] = []
        if scope.extensions:
            either.append(calls.c.extension.in_(sorted(scope.extensions)))
        grouped = [
            column.in_(sorted(values))
            for column, values in (
                (directory_entries.c.site, scope.sites),
                (directory_entries.c.department, scope.departments),
                (directory_entries.c.cost_centre, scope.cost_centres),
            )
            if values
        ]
        if grouped:
            # The IN list narrows the calls through the (tenant_id, extension, start_utc) index
            # to the extensions that were ever in scope; EXISTS then checks the period.
            ever = sa.select(directory_entries.c.extension).where(
                directory_entries.c.tenant_id == self.tenant_id, sa.or_(*grouped)
            )
            held = sa.exists().where(
                directory_entries.c.tenant_id == self.tenant_id,
                directory_entries.c.extension == calls.c.extension,
                directory_entries.c.valid_from <= calls.c.start_utc,
                sa.or_(
                    directory_entries.c.valid_to.is_(None),
                    calls.c.start_utc < directory_entries.c.valid_to,
                ),
                sa.or_(*grouped),
            )
            either.append(sa.and_(calls.c.extension.in_(ever), held))
        conditions.append(sa.or_(*either))
        return conditions

    def _call(self, row: sa.Row[Any]) -> Call:
        call = _call(row)
        return self._call_masked(call) if self.mask_digits else call

    def _masked_detail(self, detail: CallDetail) -> CallDetail:
        """The detail with every external number hidden, in the fields, raw record and extras."""
        hidden = {
            number: mask_number(number, self.mask_digits)
            for name in _NUMBER_COLUMNS
            if (number := getattr(detail.call, name))
        }

        def scrub(text: str) -> str:
            for number in sorted(hidden, key=len, reverse=True):
                text = text.replace(number, hidden[number])
            return text

        record = detail.record
        changes: dict[str, Any] = {name: scrub(getattr(record, name)) for name in _NUMBER_COLUMNS}
        changes["raw"] = scrub(record.raw)
        changes["extra"] = {key: scrub(value) for key, value in record.extra.items()}
        masked_record = dataclasses.replace(record, **changes)
        return dataclasses.replace(
            detail,
            call=self._call_masked(detail.call),
            raw=scrub(detail.raw),
            record=masked_record,
        )

    def _call_masked(self, call: Call) -> Call:
        masked: dict[str, Any] = {
            name: mask_number(getattr(call, name), self.mask_digits) for name in _NUMBER_COLUMNS
        }
        return dataclasses.replace(call, **masked)

    def _conditions(self, filter: CallFilter) -> list[sa.ColumnElement[bool]]:
        conditions = self._in_scope()
        if filter.date_from is not None:
            conditions.append(
                calls.c.start_utc >= self.day_bounds(filter.date_from, utc=filter.utc)[0]
            )
        if filter.date_to is not None:
            conditions.append(
                calls.c.start_utc < self.day_bounds(filter.date_to, utc=filter.utc)[1]
            )
        if filter.extension:
            conditions.append(calls.c.extension == filter.extension.strip())
        if filter.direction is not None:
            conditions.append(calls.c.direction == Direction(filter.direction).value)
        number = _NUMBER_PUNCTUATION.sub("", filter.number or "")
        if number and self.mask_digits:
            conditions.append(sa.false())  # searching would reveal the hidden digits
        elif number:
            conditions.append(
                sa.or_(
                    calls.c.calling.contains(number, autoescape=True),
                    calls.c.called.contains(number, autoescape=True),
                    calls.c.dialled_digits.contains(number, autoescape=True),
                )
            )
        return conditions


def icdr_from_row(row: sa.Row[Any]) -> ICDR:
    """The ICDR a ``calls`` row holds (every column of the table), validated again on the way."""
    return ICDR(
        record_id=row.record_id, agent_id=row.agent_id, source_id=row.source_id,
        source_kind=row.source_kind, start=row.start_utc, end=row.end_utc, answer=row.answer_utc,
        utc_offset_minutes=row.utc_offset_minutes, ring_seconds=row.ring_seconds,
        talk_seconds=row.talk_seconds, hold_seconds=row.hold_seconds,
        direction=Direction(row.direction), calling=row.calling, called=row.called,
        dialled_digits=row.dialled_digits, extension=row.extension, trunk=row.trunk,
        route=row.route, third_party=row.third_party, account_code=row.account_code,
        ani=row.ani, dnis=row.dnis, answered=bool(row.answered),
        completion=Completion(row.completion), completion_source=row.completion_source,
        transferred=bool(row.transferred), conference=bool(row.conference), call_id=row.call_id,
        parent_call_id=row.parent_call_id, flags=tuple(row.flags), raw=row.raw,
        parser_version=row.parser_version, icdr_version=row.icdr_version, extra=dict(row.extra),
    )  # fmt: skip


def _call(row: sa.Row[Any]) -> Call:
    values = {name: getattr(row, name) for name in _SUMMARY_COLUMNS}
    for name in ("answered", "transferred", "conference"):
        values[name] = bool(values[name])
    return Call(**values)
