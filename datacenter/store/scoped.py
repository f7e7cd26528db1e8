"""``TenantScope``: the only way to read a tenant's calls.

Contract:

- A scope is built from a connection and a tenant id and cannot be built without one; every
  query it runs is filtered on that ``tenant_id`` (the leading column of every index it uses).
  Views, reports and the API call these methods; none of them builds a call query itself, so
  there is nowhere to forget the tenant.
- ``list_calls`` pages newest first (``start_utc`` then ``record_id``, descending, so paging is
  stable). ``CallFilter`` days are whole days in the tenant's time zone, or in UTC if asked.
- Listed and opened calls carry the person, department, cost centre and site of whoever had
  the call's extension when it started (``datacenter.store.attribution``: one LEFT JOIN on the
  directory; '' when nobody is known).
- ``list_calls_after`` pages by cursor for the API: the ``(start_utc, record_id)`` of the last
  call seen, so a page never repeats or skips a call when new ones arrive.
- ``day_summary`` reads the ``call_days`` rollup that ingest maintains, never raw call rows.
- Each listed call carries its rating (``Call.cost``, or ``Call.unrated_reason``), and a page
  carries the totals of the whole filtered set (``CallTotals``): read from a report rollup when
  one answers the filter exactly (whole local days, dimensions the rollup has, a whole-tenant or
  extension-only scope: ``datacenter.store.rollup_totals``), else one ``GROUP BY currency``
  query over the raw calls with the list's own conditions. ``get_call`` adds the stored cost explanation, the unrated
  queue's reason and the cost's change history (``datacenter.store.costs``).
- ``country`` is the tenant's country for showing numbers: the region of its default dial plan
  (agent ``*``), else the one region all its sites' dial plans share, else None.
- A scope may be narrowed to a viewer's ``UserScope`` (``datacenter.store.call_scope``): every
  call query (list, count, one call, hourly and per-source counts) then also requires the call's
  extension to be one of the scope's extensions, or to have belonged, in ``directory_entries``
  at the call's start, to one of its sites, departments or cost centres. A call outside the
  scope is "not found", exactly like another tenant's. ``day_summary`` reads a rollup of the
  whole tenant, so a narrowed scope refuses it (``StoreError``).
- ``mask_digits`` hides the last N digits of every external number in what the scope returns
  (the call's fields, its raw record and extras, the rating's E.164 number, and every number
  inside the cost explanation and the unrated queue's detail and explanation); while numbers are masked the ``number``
  filter matches nothing, so it cannot be used to probe the hidden digits.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from datacenter.recordings.stored import StoredRecording, recordings_of_call
from datacenter.store import costs, probe_plan, rollup_totals
from datacenter.store.attribution import ATTRIBUTION_COLUMNS, attribute_calls
from datacenter.store.call_rows import icdr_from_row
from datacenter.store.call_scope import (
    WHOLE,
    UserScope,
    mask_document,
    mask_number,
    mask_text,
)
from datacenter.store.costs import CallCost, CallTotals, CostChange, CostFilter, UnratedInfo
from datacenter.store.scope_sql import scope_condition
from datacenter.store.tables.core import call_days, calls, landed_files, tenants
from datacenter.store.tables.icdr_columns import column_name
from datacenter.store.tables.rating import (
    TENANT_DEFAULT_SITE,
    call_costs,
    dial_plans,
    tariff_versions,
)
from shared.errors import StoreError, ValidationError
from shared.icdr import FIELDS, ICDR, Direction

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 500
# Characters people type inside phone numbers that stored numbers do not carry.
_NUMBER_PUNCTUATION = re.compile(r"[\s().\-]")

# What a list shows of a call: every declared field but these, by column name.
_DETAIL_ONLY = frozenset({"flags", "raw", "parser_version", "extra", "icdr_version"})
_SUMMARY = tuple(each for each in FIELDS if each.name not in _DETAIL_ONLY)
_SUMMARY_COLUMNS = tuple(column_name(each.name) for each in _SUMMARY)
_FLAG_COLUMNS = tuple(column_name(each.name) for each in _SUMMARY if each.kind == "bool")
# How each kind is held in the read model (enums as their stored text).
_READ_TYPES = {
    "time": "datetime",
    "time?": "datetime | None",
    "direction": "str",
    "completion": "str",
}
TotalsSource = Literal["auto", "raw"]
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
    answered: bool | None = None
    number_class: str | None = None  # the rated destination class, e.g. "mobile"
    carrier: str | None = None
    cost_min: Decimal | None = None  # inclusive, in the call's currency
    cost_max: Decimal | None = None

    @property
    def cost_filter(self) -> CostFilter:
        return CostFilter(self.number_class, self.carrier, self.cost_min, self.cost_max)

    @property
    def dated(self) -> bool:
        """Whether a period bounds the calls (a first or a last day)."""
        return self.date_from is not None or self.date_to is not None


def _start_site(call: Any) -> datetime:
    """Start on the site's wall clock (the PBX's offset when the call began)."""
    start: datetime = call.start_utc
    return start.astimezone(timezone(timedelta(minutes=call.utc_offset_minutes)))


def _read_model() -> type:
    """``Call``: a frozen dataclass of the summary columns, generated from the declaration."""
    model = dataclasses.make_dataclass(
        "Call",
        [
            *((column_name(each.name), _READ_TYPES.get(each.kind, each.type)) for each in _SUMMARY),
            # Who had the extension at the call's start (the directory); '' when not known.
            *((name, str, dataclasses.field(default="")) for name in ATTRIBUTION_COLUMNS),
            # the list's cost columns: None when not rated (see unrated_reason)
            ("cost", CallCost | None, dataclasses.field(default=None)),
            ("unrated_reason", str | None, dataclasses.field(default=None)),
        ],
        namespace={
            "start_site": property(_start_site),
            "__doc__": "One stored call, as lists show it.",
        },
        frozen=True,
        slots=True,
    )
    model.__module__ = __name__
    return model


if TYPE_CHECKING:

    class Call:
        """What the type checker sees of the generated read model: its columns, and start_site."""

        def __getattr__(self, name: str) -> Any: ...

        @property
        def start_site(self) -> datetime: ...

else:
    Call = _read_model()


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
    cost: CallCost | None = None
    explanation: dict[str, Any] | None = None  # the stored rating explanation (docs/rating.md)
    unrated: UnratedInfo | None = None
    history: tuple[CostChange, ...] = ()  # newest first

    def to_icdr(self) -> ICDR:
        return self.record


@dataclass(frozen=True, slots=True)
class CallPage:
    calls: list[Call]
    page: int
    per_page: int
    totals: CallTotals

    @property
    def total(self) -> int:
        return self.totals.calls

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
        self._tariffs: list[tuple[str, str, int]] | None = None

    def list_calls(
        self, filter: CallFilter, *, page: int = 1, per_page: int = DEFAULT_PER_PAGE
    ) -> CallPage:
        if page < 1:
            raise ValidationError("page", "pages start at 1")
        if not 1 <= per_page <= MAX_PER_PAGE:
            raise ValidationError("per_page", f"must be between 1 and {MAX_PER_PAGE}")
        query = (
            self._listing(filter, self._conditions(filter))
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
        rows = self._conn.execute(query).all()
        return CallPage(
            calls=[self._call(row, listed=True) for row in rows],
            page=page,
            per_page=per_page,
            totals=self.call_totals(filter),
        )

    def list_calls_after(
        self,
        filter: CallFilter,
        *,
        after: tuple[datetime, str] | None = None,
        limit: int = DEFAULT_PER_PAGE,
    ) -> list[Call]:
        """Up to ``limit`` calls older than the cursor ``after`` (newest first); the API's pages."""
        if not 1 <= limit <= MAX_PER_PAGE:
            raise ValidationError("limit", f"must be between 1 and {MAX_PER_PAGE}")
        conditions = self._conditions(filter)
        if after is not None:
            start, record_id = after
            start_column = costs.start_column(filter.cost_filter)
            record_column = costs.record_column(filter.cost_filter)
            conditions.append(
                sa.or_(
                    start_column < start,
                    sa.and_(start_column == start, record_column < record_id),
                )
            )
        query = self._listing(filter, conditions).limit(limit)
        return [self._call(row, listed=True) for row in self._conn.execute(query)]

    def _listing(
        self, filter: CallFilter, conditions: list[sa.ColumnElement[bool]]
    ) -> sa.Select[Any]:
        """The list's rows for ``conditions``, newest first, before paging (a cost range reads
        ``call_costs`` first: ``datacenter.store.costs``)."""
        wanted = filter.cost_filter
        columns = [calls.c[name] for name in _SUMMARY_COLUMNS]
        return (
            attribute_calls(
                sa.select(*columns, *costs.list_columns(wanted)),
                base=costs.list_base(wanted, costs_dated=self._period_on_costs(filter)),
            )
            .where(*conditions)
            .order_by(costs.start_column(wanted).desc(), costs.record_column(wanted).desc())
        )

    def count_calls(self, filter: CallFilter) -> int:
        source: sa.FromClause = calls
        if not filter.cost_filter.empty:
            source = costs.source(filter.cost_filter, costs_dated=self._period_on_costs(filter))
        query = sa.select(sa.func.count()).select_from(source).where(*self._conditions(filter))
        return int(self._conn.execute(query).scalar_one())

    def call_totals(self, filter: CallFilter, *, source: TotalsSource = "auto") -> CallTotals:
        """Count, talk and billed time and cost per currency of every call ``filter`` matches.

        From a report rollup when one answers the filter exactly (``totals_source``), else from
        the raw calls; ``source="raw"`` always reads the raw calls (the tests' cross-check).
        """
        decimals: dict[str, int] = {}
        for _carrier, currency, places in self._tariff_names():
            decimals[currency] = min(places, decimals.get(currency, places))
        found = self._totals_plan(filter) if source == "auto" else None
        if found is not None:
            query = rollup_totals.totals_query(found, self.tenant_id, self.user_scope)
            rows = self._conn.execute(query).all()
            return rollup_totals.totals_from_rollup_rows(rows, decimals)
        probing = self._probes_costs(filter)
        read = costs.source(
            filter.cost_filter, probing=probing, costs_dated=self._period_on_costs(filter)
        )
        query = costs.totals_query(self._conditions(filter), source=read)
        with probe_plan.probing_joins(self._conn, probing):
            rows = self._conn.execute(query).all()
        return rollup_totals.canonical(costs.totals_from_rows(list(rows)), decimals)

    @staticmethod
    def _period_on_costs(filter: CallFilter) -> bool:
        """Whether ``_conditions`` puts the period on the cost row's start as well."""
        return filter.dated and costs.only_rated(filter.cost_filter)

    def _probes_costs(self, filter: CallFilter) -> bool:
        """A cost range without dates whose few matches are cheaper probed (``probe_plan``)."""
        if filter.dated or not costs.has_cost_range(filter.cost_filter):
            return False
        return probe_plan.worth_probing(
            self._conn, self.tenant_id, costs.cost_conditions(filter.cost_filter)
        )

    def totals_source(self, filter: CallFilter) -> str:
        """The table ``call_totals`` reads for ``filter``: a rollup's name, or "calls"."""
        found = self._totals_plan(filter)
        return "calls" if found is None else found.source

    def _totals_plan(self, filter: CallFilter) -> rollup_totals.RollupPlan | None:
        equals: dict[str, Any] = {}
        if filter.extension:
            equals["extension"] = filter.extension.strip()
        if filter.direction is not None:
            equals["direction"] = Direction(filter.direction).value
        if filter.answered is not None:
            equals["answered"] = filter.answered
        if filter.number_class:
            equals["number_class"] = filter.number_class
        if filter.carrier:
            equals["carrier"] = filter.carrier
        number = _NUMBER_PUNCTUATION.sub("", filter.number or "")
        return rollup_totals.plan(
            whole_local_days=not (filter.utc and filter.dated),
            first_day=filter.date_from,
            last_day=filter.date_to,
            equals=equals,
            other_conditions=bool(number)
            or filter.cost_min is not None
            or filter.cost_max is not None,
            user_scope=self.user_scope,
        )

    def get_call(self, record_id: str) -> CallDetail | None:
        row = self._conn.execute(
            attribute_calls(sa.select(calls)).where(
                *self._in_scope(), calls.c.record_id == record_id
            )
        ).one_or_none()
        if row is None:
            return None
        cost_row = self._conn.execute(costs.cost_select(self.tenant_id, record_id)).one_or_none()
        queued = self._conn.execute(costs.queue_select(self.tenant_id, record_id)).one_or_none()
        history = self._conn.execute(costs.history_select(self.tenant_id, record_id)).all()
        cost = None
        if cost_row is not None:
            cost = CallCost(**{name: cost_row._mapping[name] for name in costs.COST_COLUMNS})
        detail = CallDetail(
            call=_call(row),
            flags=tuple(row.flags),
            raw=row.raw,
            parser_version=row.parser_version,
            record=icdr_from_row(row),
            landed_file=row.landed_file,
            ingested_at=row.ingested_at,
            cost=cost,
            explanation=None if cost_row is None else dict(cost_row.explanation),
            unrated=None if queued is None else UnratedInfo(**queued._asdict()),
            history=tuple(CostChange(**change._asdict()) for change in history),
        )
        return self._masked_detail(detail) if self.mask_digits else detail

    def recordings(self, record_id: str) -> list[StoredRecording]:
        """The call's recordings, if the call is in the viewer's scope; else none."""
        in_scope = self._conn.execute(
            attribute_calls(sa.select(calls.c.record_id)).where(
                *self._in_scope(), calls.c.record_id == record_id
            )
        ).first()
        if in_scope is None:
            return []
        return recordings_of_call(self._conn, self.tenant_id, record_id)

    def country(self) -> str | None:
        """The tenant's country (ISO 3166 alpha-2) for showing numbers (see module docstring)."""
        region = dial_plans.c.plan["region"].as_string()  # not the whole plan: one field
        rows = self._conn.execute(
            sa.select(dial_plans.c.agent_id, region.label("region")).where(
                dial_plans.c.tenant_id == self.tenant_id
            )
        ).all()
        regions = {row.agent_id: str(row.region or "").upper() for row in rows}
        if regions.get(TENANT_DEFAULT_SITE):
            return regions[TENANT_DEFAULT_SITE]
        distinct = {region for region in regions.values() if region}
        return distinct.pop() if len(distinct) == 1 else None

    def carriers(self) -> list[str]:
        """The carriers the tenant has tariffs for, by name (the carrier filter's choices)."""
        return sorted({carrier for carrier, _currency, _decimals in self._tariff_names()})

    def _tariff_names(self) -> list[tuple[str, str, int]]:
        """(carrier, currency, decimals) of the tenant's tariff versions, read once per scope:
        the carrier filter and the totals' decimals both need them on every list page."""
        if self._tariffs is None:
            query = sa.select(
                tariff_versions.c.carrier, tariff_versions.c.currency, tariff_versions.c.decimals
            ).where(tariff_versions.c.tenant_id == self.tenant_id)
            self._tariffs = sorted({(r[0], r[1], int(r[2])) for r in self._conn.execute(query)})
        return self._tariffs

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
        scoped = scope_condition(
            self.user_scope, self.tenant_id, calls.c.extension, calls.c.start_utc
        )
        return conditions if scoped is None else [*conditions, scoped]

    def _call(self, row: sa.Row[Any], *, listed: bool = False) -> Call:
        call = _call(row, listed=listed)
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

        if detail.cost is not None and detail.cost.e164:
            hidden[detail.cost.e164] = mask_number(detail.cost.e164, self.mask_digits)
        record = detail.record
        changes: dict[str, Any] = {name: scrub(getattr(record, name)) for name in _NUMBER_COLUMNS}
        changes["raw"] = scrub(record.raw)
        changes["extra"] = {key: scrub(value) for key, value in record.extra.items()}
        masked_record = dataclasses.replace(record, **changes)
        unrated = detail.unrated
        if unrated is not None:  # the engine's detail and explanation name the number
            unrated = dataclasses.replace(
                unrated,
                detail=mask_text(unrated.detail, self.mask_digits),
                explanation=mask_document(unrated.explanation, self.mask_digits),
            )
        explanation = detail.explanation
        return dataclasses.replace(
            detail,
            call=self._call_masked(detail.call),
            raw=scrub(detail.raw),
            record=masked_record,
            cost=self._cost_masked(detail.cost),
            explanation=None
            if explanation is None
            else mask_document(explanation, self.mask_digits),
            unrated=unrated,
        )

    def _call_masked(self, call: Call) -> Call:
        masked: dict[str, Any] = {
            name: mask_number(getattr(call, name), self.mask_digits) for name in _NUMBER_COLUMNS
        }
        masked["cost"] = self._cost_masked(call.cost)
        replaced: Call = dataclasses.replace(call, **masked)  # type: ignore[type-var]  # generated
        return replaced

    def _cost_masked(self, cost: CallCost | None) -> CallCost | None:
        """The cost with its E.164 number masked (the rating's reading of the external party)."""
        if cost is None or not cost.e164:
            return cost
        return dataclasses.replace(cost, e164=mask_number(cost.e164, self.mask_digits))

    def _conditions(self, filter: CallFilter) -> list[sa.ColumnElement[bool]]:
        conditions = self._in_scope()
        if costs.has_cost_range(filter.cost_filter):  # read by call_costs' own index
            conditions.append(call_costs.c.tenant_id == self.tenant_id)
        # The period is on the call's start and, where a cost condition makes every listed call
        # a rated one, on its cost row's start too (the same value: a cost range reads by it).
        # On PostgreSQL each side is then read from the period's monthly partitions only: named
        # on one side, the other was read whole (a week of one carrier read all the tenant's
        # costs of that carrier, every month: 381 ms instead of a few).
        starts = [calls.c.start_utc]
        if self._period_on_costs(filter):
            starts.append(call_costs.c.start_utc)
        for start in starts:
            if filter.date_from is not None:
                conditions.append(start >= self.day_bounds(filter.date_from, utc=filter.utc)[0])
            if filter.date_to is not None:
                conditions.append(start < self.day_bounds(filter.date_to, utc=filter.utc)[1])
        if filter.extension:
            conditions.append(calls.c.extension == filter.extension.strip())
        if filter.direction is not None:
            conditions.append(calls.c.direction == Direction(filter.direction).value)
        if filter.answered is not None:
            conditions.append(calls.c.answered == filter.answered)
        conditions.extend(costs.cost_conditions(filter.cost_filter))
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


def _call(row: sa.Row[Any], *, listed: bool = False) -> Call:
    """A ``Call`` from a calls row; ``listed``: the row also has the list's cost columns."""
    values: dict[str, Any] = {name: getattr(row, name) for name in _SUMMARY_COLUMNS}
    for name in ATTRIBUTION_COLUMNS:  # present when the query went through attribute_calls
        values[name] = getattr(row, name, "")
    for name in _FLAG_COLUMNS:
        values[name] = bool(values[name])
    if listed:
        values["cost"] = costs.cost_from_row(row)
        values["unrated_reason"] = row.unrated_reason
    return Call(**values)
