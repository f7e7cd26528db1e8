"""Directory entries: list, add, edit, and apply a batch of imported entries.

Contract:

- ``apply_entries`` writes a batch (from CSV or LDAP) in the caller's transaction. An entry
  updates the row of its extension whose period holds its start when that row is the same
  person (or the same ``external_id``); otherwise it closes that row at its start and opens a new
  one, so the periods of one extension never overlap. An entry that would overlap a later period
  is refused with its line, and nothing of it is written.
- ``close_missing`` ends the open periods of one source whose ``external_id`` a full sync did not
  see (a person who left Active Directory keeps their past calls).
- Every function takes the tenant id: no read or write crosses tenants.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from datacenter.store.tables.directory import DIRECTORY_SOURCES, directory_entries
from shared.errors import ValidationError

EDITABLE_FIELDS = ("person", "email", "department", "cost_centre", "site")
MAX_LIST = 1000


@dataclass(frozen=True, slots=True)
class EntryInput:
    """One entry to write; ``line`` is where it came from (CSV line, or 0)."""

    extension: str
    person: str
    email: str = ""
    department: str = ""
    cost_centre: str = ""
    site: str = ""
    valid_from: datetime | None = None  # None: from now (or the current period, if the same)
    valid_to: datetime | None = None
    external_id: str = ""
    line: int = 0


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    tenant_id: int
    entry_id: str
    extension: str
    person: str
    email: str
    department: str
    cost_centre: str
    site: str
    valid_from: datetime
    valid_to: datetime | None
    source: str
    external_id: str
    updated_at: datetime

    @property
    def current(self) -> bool:
        return self.valid_to is None or self.valid_to > datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class EntryProblem:
    line: int
    message: str


@dataclass
class ApplyReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    closed: int = 0
    problems: list[EntryProblem] = field(default_factory=list)

    def summary(self) -> str:
        text = (
            f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.closed} periods closed"
        )
        return f"{text}, {len(self.problems)} refused" if self.problems else text


@dataclass(frozen=True, slots=True)
class EntryFilter:
    text: str = ""  # part of the extension, person, email, department, cost centre or site
    department: str = ""
    current_only: bool = False


def list_entries(
    conn: sa.Connection, tenant_id: int, filter: EntryFilter | None = None, *, limit: int = MAX_LIST
) -> list[DirectoryEntry]:
    """The tenant's entries by extension, newest period first within an extension."""
    filter = filter or EntryFilter()
    t = directory_entries.c
    query = sa.select(directory_entries).where(t.tenant_id == tenant_id)
    if filter.text.strip():
        needle = filter.text.strip()
        query = query.where(
            sa.or_(*(t[name].contains(needle, autoescape=True)
                     for name in ("extension", *EDITABLE_FIELDS)))
        )  # fmt: skip
    if filter.department:
        query = query.where(t.department == filter.department)
    if filter.current_only:
        query = query.where(sa.or_(t.valid_to.is_(None), t.valid_to > datetime.now(UTC)))
    query = query.order_by(t.extension, t.valid_from.desc(), t.entry_id).limit(limit)
    return [_entry(row) for row in conn.execute(query)]


def get_entry(conn: sa.Connection, tenant_id: int, entry_id: str) -> DirectoryEntry | None:
    row = conn.execute(
        sa.select(directory_entries).where(
            directory_entries.c.tenant_id == tenant_id, directory_entries.c.entry_id == entry_id
        )
    ).one_or_none()
    return _entry(row) if row is not None else None


def update_entry(
    conn: sa.Connection, tenant_id: int, entry_id: str, changes: dict[str, str]
) -> DirectoryEntry:
    """Edit the descriptive fields of one entry (extension and period stay: add a new entry)."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError(sorted(unknown)[0], "cannot be edited here")
    values = {name: value.strip() for name, value in changes.items()}
    if "person" in values and not values["person"]:
        raise ValidationError("person", "a name is required")
    result = conn.execute(
        directory_entries.update()
        .where(directory_entries.c.tenant_id == tenant_id, directory_entries.c.entry_id == entry_id)
        .values(**values, updated_at=datetime.now(UTC))
    )
    if result.rowcount != 1:
        raise ValidationError("entry", "no such entry in this directory")
    entry = get_entry(conn, tenant_id, entry_id)
    assert entry is not None
    return entry


def add_entry(conn: sa.Connection, tenant_id: int, entry: EntryInput) -> ApplyReport:
    """Add one entry by hand (closing the current holder of the extension, as an import does)."""
    return apply_entries(conn, tenant_id, [entry], source="manual")


def apply_entries(
    conn: sa.Connection,
    tenant_id: int,
    entries: list[EntryInput],
    *,
    source: str,
    now: datetime | None = None,
) -> ApplyReport:
    """Write ``entries`` (see the module contract); returns what changed and what was refused."""
    if source not in DIRECTORY_SOURCES:
        raise ValidationError("source", f"must be one of {', '.join(DIRECTORY_SOURCES)}")
    now = now or datetime.now(UTC)
    report = ApplyReport()
    for entry in entries:
        problem = _apply_one(conn, tenant_id, entry, source, now, report)
        if problem is not None:
            report.problems.append(EntryProblem(entry.line, problem))
    return report


def close_missing(
    conn: sa.Connection, tenant_id: int, source: str, seen: set[str], *, now: datetime
) -> int:
    """End the open periods of ``source`` whose external id is not in ``seen``."""
    t = directory_entries.c
    open_rows = conn.execute(
        sa.select(t.entry_id, t.external_id).where(
            t.tenant_id == tenant_id,
            t.source == source,
            sa.or_(t.valid_to.is_(None), t.valid_to > now),
            t.valid_from < now,
        )
    ).all()
    gone = [row.entry_id for row in open_rows if row.external_id not in seen]
    for entry_id in gone:
        _close(conn, tenant_id, entry_id, now)
    return len(gone)


def current_holders(conn: sa.Connection, tenant_id: int, now: datetime) -> dict[str, str]:
    """Extension -> external id of the entry holding it at ``now``."""
    t = directory_entries.c
    rows = conn.execute(
        sa.select(t.extension, t.external_id).where(
            t.tenant_id == tenant_id,
            t.valid_from <= now,
            sa.or_(t.valid_to.is_(None), t.valid_to > now),
        )
    )
    return {row.extension: row.external_id for row in rows}


def _apply_one(
    conn: sa.Connection,
    tenant_id: int,
    entry: EntryInput,
    source: str,
    now: datetime,
    report: ApplyReport,
) -> str | None:
    start = entry.valid_from or now
    if entry.valid_to is not None and entry.valid_to <= start:
        return "valid_to must be after valid_from"
    periods = _periods(conn, tenant_id, entry.extension)
    holder = next((p for p in periods if _holds(p, start)), None)
    if entry.valid_from is None:  # no date given: the current holder is the one to compare
        holder = next((p for p in periods if _holds(p, now)), holder)
    if holder is not None and _same_person(holder, entry):
        _update(conn, holder, entry, report)
        return None
    if entry.external_id:  # the same person moved to another extension: end their old period
        report.closed += _close_moved(conn, tenant_id, entry, start)
    end = entry.valid_to
    for other in periods:
        if other is holder:
            continue
        if other.valid_from >= start and (end is None or other.valid_from < end):
            return (
                f"extension {entry.extension} already has a period from "
                f"{other.valid_from:%Y-%m-%d %H:%M} UTC; give this one a valid_to before that"
            )
    if holder is not None:
        if holder.valid_from >= start:
            return f"extension {entry.extension} has a period starting at the same time"
        _close(conn, tenant_id, holder.entry_id, start)
        report.closed += 1
    _insert(conn, tenant_id, entry, start, source, now)
    report.added += 1
    return None


def _same_person(holder: DirectoryEntry, entry: EntryInput) -> bool:
    if entry.external_id and holder.external_id:
        return holder.external_id == entry.external_id
    return holder.person.casefold() == entry.person.casefold()


def _update(
    conn: sa.Connection, holder: DirectoryEntry, entry: EntryInput, report: ApplyReport
) -> None:
    values: dict[str, Any] = {name: getattr(entry, name) for name in EDITABLE_FIELDS}
    if entry.external_id:
        values["external_id"] = entry.external_id
    if entry.valid_to is not None:
        values["valid_to"] = entry.valid_to
    if all(getattr(holder, name) == value for name, value in values.items()):
        report.unchanged += 1
        return
    conn.execute(
        directory_entries.update()
        .where(
            directory_entries.c.tenant_id == holder.tenant_id,
            directory_entries.c.entry_id == holder.entry_id,
        )
        .values(**values, updated_at=datetime.now(UTC))
    )
    report.updated += 1


def _close_moved(conn: sa.Connection, tenant_id: int, entry: EntryInput, at: datetime) -> int:
    t = directory_entries.c
    rows = conn.execute(
        sa.select(t.entry_id).where(
            t.tenant_id == tenant_id,
            t.external_id == entry.external_id,
            t.extension != entry.extension,
            t.valid_from < at,
            sa.or_(t.valid_to.is_(None), t.valid_to > at),
        )
    ).all()
    for row in rows:
        _close(conn, tenant_id, row.entry_id, at)
    return len(rows)


def _periods(conn: sa.Connection, tenant_id: int, extension: str) -> list[DirectoryEntry]:
    t = directory_entries.c
    query = (
        sa.select(directory_entries)
        .where(t.tenant_id == tenant_id, t.extension == extension)
        .order_by(t.valid_from)
    )
    return [_entry(row) for row in conn.execute(query)]


def _holds(entry: DirectoryEntry, when: datetime) -> bool:
    return entry.valid_from <= when and (entry.valid_to is None or when < entry.valid_to)


def _close(conn: sa.Connection, tenant_id: int, entry_id: str, at: datetime) -> None:
    conn.execute(
        directory_entries.update()
        .where(directory_entries.c.tenant_id == tenant_id, directory_entries.c.entry_id == entry_id)
        .values(valid_to=at, updated_at=datetime.now(UTC))
    )


def _insert(
    conn: sa.Connection,
    tenant_id: int,
    entry: EntryInput,
    start: datetime,
    source: str,
    now: datetime,
) -> None:
    conn.execute(
        directory_entries.insert().values(
            tenant_id=tenant_id,
            entry_id=uuid.uuid4().hex,
            extension=entry.extension,
            person=entry.person,
            email=entry.email,
            department=entry.department,
            cost_centre=entry.cost_centre,
            site=entry.site,
            valid_from=start,
            valid_to=entry.valid_to,
            source=source,
            external_id=entry.external_id,
            updated_at=now,
        )
    )


def _entry(row: sa.Row[Any]) -> DirectoryEntry:
    return DirectoryEntry(**{name: getattr(row, name) for name in DirectoryEntry.__slots__})
