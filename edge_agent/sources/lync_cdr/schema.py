"""The LcsCDR side of the Lync / Skype for Business driver: schema probe, query text, row format.

Guarantees:

- ``probe_schema`` reads ``INFORMATION_SCHEMA.COLUMNS`` for schema ``dbo`` and returns a
  ``SchemaVariant``: the real spelling of every table and column the query needs, which optional
  columns exist (ClientVersions.ClientType from Lync 2013, LastModifiedTime from Skype for
  Business 2015, the Replace/Replaces dialog pair) and a version label. A database without the
  required columns (OCS 2007, the QoEMetrics database, a wrong DATABASE=) is an
  ``UnsupportedSchema`` error that lists what is missing.
- ``build_query`` returns the extraction query of formats.md §1.15, adapted to the variant. The
  text runs unchanged on SQL Server and PostgreSQL: double-quoted identifiers, ``?`` markers, no
  TOP/ISNULL/DATEDIFF/brackets/table hints. Result columns always carry the canonical names
  below, whatever spelling the database uses; absent optional columns are left out of the row.
- ``serialise_row`` turns one result row into the raw unit the journal keeps: stable JSON
  (sorted keys, no spaces, UTF-8) with typed values: datetimes as ISO 8601 text to the
  millisecond, exactly as stored (LcsCDR holds UTC without an offset), GUIDs in lower case,
  integers as numbers, bits as booleans, NULL as null. Re-reading an unchanged row gives the same
  bytes, so a content hash detects changed rows.
- ``csv_units`` turns a CSV export of the query's rows (header = result column names) into the
  same JSON units, so a capture file and a live poll feed the parser identically.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

from shared.errors import SourceError

SCHEMA = "dbo"


class Kind(StrEnum):
    """How a result column's value is typed in the row JSON."""

    TIME = "time"
    INT = "int"
    GUID = "guid"
    TEXT = "text"
    BOOL = "bool"


@dataclass(frozen=True, slots=True)
class _Column:
    alias: str  # table alias in the query
    table: str
    column: str  # canonical spelling (Microsoft's table pages)
    output: str  # result column name
    kind: Kind
    optional: bool = False  # absent in some versions: left out instead of failing


_SD, _VD = "SessionDetails", "VoipDetails"

# The SELECT list of formats.md §1.15 plus the optional columns, in output order.
_SELECT: tuple[_Column, ...] = (
    _Column("sd", _SD, "SessionIdTime", "SessionIdTime", Kind.TIME),
    _Column("sd", _SD, "SessionIdSeq", "SessionIdSeq", Kind.INT),
    _Column("sd", _SD, "CorrelationId", "CorrelationId", Kind.GUID),
    _Column("sd", _SD, "InviteTime", "InviteTime", Kind.TIME),
    _Column("sd", _SD, "ResponseTime", "ResponseTime", Kind.TIME),
    _Column("sd", _SD, "SessionEndTime", "SessionEndTime", Kind.TIME),
    _Column("sd", _SD, "ResponseCode", "ResponseCode", Kind.INT),
    _Column("sd", _SD, "DiagnosticId", "DiagnosticId", Kind.INT),
    _Column("sd", _SD, "MediaTypes", "MediaTypes", Kind.INT),
    _Column("sd", _SD, "CallFlag", "CallFlag", Kind.INT),
    # Resolved to the Replace/Replaces spelling the probe finds (formats.md §1.9).
    _Column("sd", _SD, "ReplaceDialogIdTime", "ReplaceDialogIdTime", Kind.TIME, optional=True),
    _Column("sd", _SD, "ReplaceDialogIdSeq", "ReplaceDialogIdSeq", Kind.INT, optional=True),
    _Column("sd", _SD, "LastModifiedTime", "LastModifiedTime", Kind.TIME, optional=True),
    _Column("u_start", "Users", "UserUri", "StartedByUri", Kind.TEXT),
    _Column("u_one", "Users", "UserUri", "User1Uri", Kind.TEXT),
    _Column("u_two", "Users", "UserUri", "User2Uri", Kind.TEXT),
    _Column("u_target", "Users", "UserUri", "TargetUri", Kind.TEXT),
    _Column("u_referrer", "Users", "UserUri", "ReferredByUri", Kind.TEXT),
    _Column("u_behalf", "Users", "UserUri", "OnBehalfOfUri", Kind.TEXT),
    _Column("cv_one", "ClientVersions", "ClientType", "User1ClientType", Kind.INT, optional=True),
    _Column("cv_two", "ClientVersions", "ClientType", "User2ClientType", Kind.INT, optional=True),
    _Column("vd", _VD, "FromGatewayId", "FromGatewayId", Kind.INT),
    _Column("vd", _VD, "ToGatewayId", "ToGatewayId", Kind.INT),
    _Column("vd", _VD, "FromMediationServerId", "FromMediationServerId", Kind.INT),
    _Column("vd", _VD, "ToMediationServerId", "ToMediationServerId", Kind.INT),
    _Column("ph_from", "Phones", "PhoneUri", "FromPhoneUri", Kind.TEXT),
    _Column("ph_conn", "Phones", "PhoneUri", "ConnectedPhoneUri", Kind.TEXT),
    _Column("gw_from", "Gateways", "Gateway", "FromGateway", Kind.TEXT),
    _Column("gw_to", "Gateways", "Gateway", "ToGateway", Kind.TEXT),
    _Column("ms_from", "MediationServers", "MediationServer", "FromMediationServer", Kind.TEXT),
    _Column("ms_to", "MediationServers", "MediationServer", "ToMediationServer", Kind.TEXT),
    _Column("u_disc", "Users", "UserUri", "DisconnectedByUri", Kind.TEXT),
    _Column("ph_disc", "Phones", "PhoneUri", "DisconnectedByPhoneUri", Kind.TEXT),
    _Column("pl", "Pools", "PoolFQDN", "PoolFQDN", Kind.TEXT),
)

# A computed column: 1 when a later retry of the session (CallFlag 0x01, same CorrelationId)
# connected, so this attempt is not the billed call (formats.md §1.7). Computed by the database
# so that the raw row says it, whichever slice or page the retry falls in.
RETRY_CONNECTED = "RetryConnected"
# How far after a slice's end the query looks for the retry of a session in it.
RETRY_LOOKAHEAD_MINUTES = 10

# Result column name -> kind: shared by the serialiser, the CSV reader and the parser.
COLUMN_KINDS: Mapping[str, Kind] = {c.output: c.kind for c in _SELECT} | {RETRY_CONNECTED: Kind.INT}
KEY_COLUMNS = ("SessionIdTime", "SessionIdSeq")

# (alias, table, [(column, = alias.column)]) for every join; the last element names the columns
# of the joined table and of the referring table, in canonical spelling.
_JOINS: tuple[tuple[str, str, str, str, str], ...] = (
    ("u_start", "Users", "UserId", "sd", "SessionStartedById"),
    ("u_one", "Users", "UserId", "sd", "User1Id"),
    ("u_two", "Users", "UserId", "sd", "User2Id"),
    ("u_target", "Users", "UserId", "sd", "TargetUserId"),
    ("u_referrer", "Users", "UserId", "sd", "ReferredById"),
    ("u_behalf", "Users", "UserId", "sd", "OnBehalfOfId"),
    ("u_disc", "Users", "UserId", "vd", "DisconnectedbyURIId"),
    ("cv_one", "ClientVersions", "VersionId", "sd", "User1ClientVerId"),
    ("cv_two", "ClientVersions", "VersionId", "sd", "User2ClientVerId"),
    ("ph_from", "Phones", "PhoneId", "vd", "FromNumberId"),
    ("ph_conn", "Phones", "PhoneId", "vd", "ConnectedNumberId"),
    ("ph_disc", "Phones", "PhoneId", "vd", "DisconnectedbyPhoneId"),
    ("gw_from", "Gateways", "GatewayId", "vd", "FromGatewayId"),
    ("gw_to", "Gateways", "GatewayId", "vd", "ToGatewayId"),
    ("ms_from", "MediationServers", "MediationServerId", "vd", "FromMediationServerId"),
    ("ms_to", "MediationServers", "MediationServerId", "vd", "ToMediationServerId"),
    ("pl", "Pools", "PoolId", "sd", "PoolId"),
)
_ALIAS_TABLE = {"sd": _SD, "vd": _VD} | {alias: table for alias, table, *_ in _JOINS}
_CLIENT_TYPE_ALIASES = frozenset({"cv_one", "cv_two"})

# Everything the query reads, by table; the optional columns are added when present.
_REQUIRED: dict[str, set[str]] = {}
for _c in _SELECT:
    if not _c.optional:
        _REQUIRED.setdefault(_c.table, set()).add(_c.column)
for _j_alias, _j_table, _j_key, _j_ref_alias, _j_ref in _JOINS:
    if _j_alias not in _CLIENT_TYPE_ALIASES:
        _REQUIRED.setdefault(_j_table, set()).add(_j_key)
        _REQUIRED.setdefault(_ALIAS_TABLE[_j_ref_alias], set()).add(_j_ref)
_REQUIRED[_VD] |= {"SessionIdTime", "SessionIdSeq"}
TABLES = tuple(sorted(set(_REQUIRED) | {"ClientVersions"}))
PURGE_TABLE = "PurgeSettings"  # Lync 2013 and later: the real retention (formats.md §1.12)

_REPLACE_SPELLINGS = (
    ("ReplaceDialogIdTime", "ReplaceDialogIdSeq"),  # Microsoft's table pages
    ("ReplacesDialogIdTime", "ReplacesDialogIdSeq"),  # views built on the internal base view
)

PROBE_SQL = (
    "SELECT TABLE_NAME, COLUMN_NAME FROM INFORMATION_SCHEMA.COLUMNS "
    f"WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN ({', '.join('?' for _ in range(len(TABLES) + 1))})"
)
PROBE_PARAMS: tuple[str, ...] = (SCHEMA, *TABLES, PURGE_TABLE)


class UnsupportedSchema(SourceError):
    """The database is not an LcsCDR database this driver can read."""

    exit_code = 5


@dataclass(frozen=True, slots=True)
class SchemaVariant:
    """What the probe found: real spellings and the optional columns present."""

    # table (canonical) -> {canonical-lower column name -> real spelling}; real table names too
    columns: Mapping[str, Mapping[str, str]]
    tables: Mapping[str, str]
    replace_columns: tuple[str, str] | None  # real spelling of the Replace(s)DialogId pair
    has_client_type: bool
    has_last_modified: bool
    has_purge_settings: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def label(self) -> str:
        """The product generation the columns point to (formats.md §1.10)."""
        if self.has_last_modified:
            return "Skype for Business 2015/2019"
        if self.has_client_type:
            return "Lync 2013"
        return "Lync 2010"

    def describe(self) -> str:
        replace = self.replace_columns[0].removesuffix("Time") if self.replace_columns else "none"
        return (
            f"{self.label} (ClientType {'yes' if self.has_client_type else 'no'}, "
            f"LastModifiedTime {'yes' if self.has_last_modified else 'no'}, "
            f"dialog replace columns: {replace})"
        )

    def column(self, table: str, name: str) -> str:
        return self.columns[table][name.lower()]


def variant_from_columns(rows: Iterable[tuple[str, str]]) -> SchemaVariant:
    """Decide the variant from (TABLE_NAME, COLUMN_NAME) pairs; raise if it cannot be read."""
    canonical = {t.lower(): t for t in (*TABLES, PURGE_TABLE)}
    tables: dict[str, str] = {}
    columns: dict[str, dict[str, str]] = {}
    for table_name, column_name in rows:
        table = canonical.get(str(table_name).lower())
        if table is None:
            continue
        tables[table] = str(table_name)
        columns.setdefault(table, {})[str(column_name).lower()] = str(column_name)
    if _SD not in columns or _VD not in columns:
        raise UnsupportedSchema(
            f"no {SCHEMA}.SessionDetails/{SCHEMA}.VoipDetails tables found: the connection does "
            "not point at an LcsCDR database. Set DATABASE=LcsCDR (not QoEMetrics) in the "
            "connection string and check that the login may read it"
        )
    missing = sorted(
        f"{SCHEMA}.{table}.{name}"
        for table, names in _REQUIRED.items()
        for name in names
        if name.lower() not in columns.get(table, {})
    )
    if missing:
        raise UnsupportedSchema(
            f"the LcsCDR schema lacks {', '.join(missing[:8])}"
            f"{' and more' if len(missing) > 8 else ''}: this is not a Lync 2010-2013 or Skype "
            "for Business 2015/2019 LcsCDR database (OCS 2007 is not supported), or the login "
            "cannot see those columns; grant db_datareader on LcsCDR"
        )
    sd = columns[_SD]
    replace = next(
        (
            (sd[time.lower()], sd[seq.lower()])
            for time, seq in _REPLACE_SPELLINGS
            if time.lower() in sd and seq.lower() in sd
        ),
        None,
    )
    return SchemaVariant(
        columns=columns,
        tables=tables,
        replace_columns=replace,
        has_client_type="clienttype" in columns.get("ClientVersions", {})
        and "versionid" in columns.get("ClientVersions", {})
        and {"user1clientverid", "user2clientverid"} <= sd.keys(),
        has_last_modified="lastmodifiedtime" in sd,
        has_purge_settings="keepcalldetailfordays" in columns.get(PURGE_TABLE, {}),
    )


QUERY_MARKERS = (
    "retries looked for from (the slice's start)",
    "retries looked for until (the slice's end plus a few minutes)",
    "sessions from (SessionIdTime >=)",
    "sessions until (SessionIdTime <)",
)


def build_query(variant: SchemaVariant, *, include_internal: bool) -> str:
    """The §1.15 extraction query for this variant, plus the ``RetryConnected`` column.

    Four ``?`` markers, in order (``QUERY_MARKERS``): [from, until) of the retries looked for,
    then [from, to) SessionIdTime of the sessions read.
    """
    select: list[str] = []
    for col in _SELECT:
        real = _real_column(variant, col)
        if real is None:
            continue
        select.append(f'    {col.alias}."{real}" AS "{col.output}"')
    sd_table, vd_table = _table(variant, _SD), _table(variant, _VD)
    flag, corr = variant.column(_SD, "CallFlag"), variant.column(_SD, "CorrelationId")
    select.append(
        f'    CASE WHEN (sd."{flag}" & 1) = 0 AND rt."{corr}" IS NOT NULL THEN 1 ELSE 0 END'
        f' AS "{RETRY_CONNECTED}"'
    )
    vd_time, vd_seq = variant.column(_VD, "SessionIdTime"), variant.column(_VD, "SessionIdSeq")
    sd_time, sd_seq = variant.column(_SD, "SessionIdTime"), variant.column(_SD, "SessionIdSeq")
    lines = [
        "SELECT",
        ",\n".join(select),
        f"FROM {sd_table} sd",
        f"INNER JOIN {vd_table} vd",
        f'        ON vd."{vd_time}" = sd."{sd_time}"',
        f'       AND vd."{vd_seq}"  = sd."{sd_seq}"',
    ]
    for alias, table, key, ref_alias, ref in _JOINS:
        if alias in _CLIENT_TYPE_ALIASES and not variant.has_client_type:
            continue
        ref_table = _ALIAS_TABLE[ref_alias]
        lines.append(
            f'LEFT JOIN {_table(variant, table)} {alias} ON {alias}."{variant.column(table, key)}"'
            f' = {ref_alias}."{variant.column(ref_table, ref)}"'
        )
    lines.append(_connected_retries(variant, sd_table))
    media = variant.column(_SD, "MediaTypes")
    lines += [
        f'WHERE sd."{sd_time}" >= ?',
        f'  AND sd."{sd_time}" <  ?',
        # Audio is bit 4; "= 16" would drop audio+video (48) and audio+IM (17) calls (§1.6).
        f'  AND (sd."{media}" & 16) = 16',
    ]
    if not include_internal:
        pstn = [
            f'vd."{variant.column(_VD, name)}" IS NOT NULL'
            for name in (
                "FromGatewayId",
                "ToGatewayId",
                "FromMediationServerId",
                "ToMediationServerId",
            )
        ]
        lines.append("  AND (" + "\n       OR ".join(pstn) + ")")
    lines.append(f'ORDER BY sd."{sd_time}", sd."{sd_seq}"')
    return "\n".join(lines)


def _connected_retries(variant: SchemaVariant, sd_table: str) -> str:
    """The retries (CallFlag 0x01) answered (200) in the look-ahead window, by CorrelationId,
    caller and number dialled: a session that is no retry and matches one was replaced by it
    (``RetryConnected``; formats.md §1.7 "CorrelationId + parties"). Response Group legs and
    transfers share CorrelationIds too, but not the caller *and* the target; a Response Group
    agent leg (0x02) never replaces the caller's leg, retried or not. One range read on
    SessionIdTime, joined by hash: no per-row lookup, whatever the window's size."""
    time, flag = variant.column(_SD, "SessionIdTime"), variant.column(_SD, "CallFlag")
    corr, code = variant.column(_SD, "CorrelationId"), variant.column(_SD, "ResponseCode")
    caller, target = variant.column(_SD, "SessionStartedById"), variant.column(_SD, "TargetUserId")
    return (
        f'LEFT JOIN (SELECT DISTINCT r."{corr}", r."{caller}", r."{target}" FROM {sd_table} r\n'
        f'           WHERE r."{time}" >= ? AND r."{time}" < ?\n'
        f'             AND (r."{flag}" & 3) = 1 AND r."{code}" = 200) rt\n'
        f'       ON rt."{corr}" = sd."{corr}" AND rt."{caller}" = sd."{caller}"\n'
        f'      AND rt."{target}" = sd."{target}"'
    )


def result_columns(variant: SchemaVariant) -> list[str]:
    """The result column names the variant's query returns (the CSV export header)."""
    return [c.output for c in _SELECT if _real_column(variant, c) is not None] + [RETRY_CONNECTED]


def _real_column(variant: SchemaVariant, col: _Column) -> str | None:
    if col.output == "ReplaceDialogIdTime":
        return variant.replace_columns[0] if variant.replace_columns else None
    if col.output == "ReplaceDialogIdSeq":
        return variant.replace_columns[1] if variant.replace_columns else None
    if col.alias in _CLIENT_TYPE_ALIASES:
        return variant.column(col.table, col.column) if variant.has_client_type else None
    return variant.columns.get(col.table, {}).get(col.column.lower())


def _table(variant: SchemaVariant, table: str) -> str:
    return f'"{SCHEMA}"."{variant.tables[table]}"'


# --- the row format ----------------------------------------------------------------------------


def serialise_row(names: Sequence[str], values: Sequence[object]) -> bytes:
    """One result row -> the journal's raw unit (stable, typed JSON)."""
    return RowSerialiser(names)(values)


class RowSerialiser:
    """``serialise_row`` for many rows of one result: the per-column work is done once."""

    def __init__(self, names: Sequence[str]) -> None:
        # Columns in sorted order, so the JSON object comes out with sorted keys as built.
        order = sorted(range(len(names)), key=lambda i: names[i])
        self._width = len(names)
        self._columns = [(names[i], i, COLUMN_KINDS.get(names[i], Kind.TEXT)) for i in order]
        self._encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)

    def __call__(self, values: Sequence[object]) -> bytes:
        if len(values) != self._width:
            raise ValueError(f"a row of {len(values)} values for {self._width} columns")
        row: dict[str, object] = {}
        for name, index, kind in self._columns:
            value = values[index]
            # The common types need no conversion; everything else goes through _json_value.
            if value is None or (type(value) in _PLAIN and kind is not Kind.GUID):
                row[name] = value
            else:
                row[name] = _json_value(kind, value)
        return self._encoder.encode(row).encode()


_PLAIN = frozenset({int, str, bool})


def dump_row(row: Mapping[str, object]) -> bytes:
    return json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def format_db_time(value: datetime) -> str:
    """A stored LcsCDR datetime as text: naive UTC, milliseconds (SQL Server's datetime precision)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="milliseconds")


def _json_value(kind: Kind, value: object) -> object:
    if value is None or (isinstance(value, bool | int | str) and kind is not Kind.GUID):
        return value
    if isinstance(value, datetime):
        return format_db_time(value)
    if isinstance(value, uuid.UUID | str):
        return str(value).lower()
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


_NULL_TEXT = "NULL"  # how SQL Server Management Studio writes NULL in a CSV export

# How a CSV export writes NULL (option ``csv_null``): every result column but the session key
# may be NULL (LEFT JOINs, open sessions), so the convention applies to all of them.
CSV_NULL_CONVENTIONS: Mapping[str, str] = {
    "auto": "an empty field and the text NULL are both NULL",
    "empty": "an empty field is NULL; the text NULL is kept as text (psql, bcp)",
    "NULL": "the text NULL is NULL; an empty text field is an empty string (SSMS)",
}
DEFAULT_CSV_NULL = "auto"


def csv_null_note(convention: str) -> str:
    """The sentence ``edge-agent parse`` prints on stderr: which NULL convention it assumed."""
    others = ", ".join(f"csv_null={name}" for name in CSV_NULL_CONVENTIONS if name != convention)
    return (
        f"lync-cdr CSV: {CSV_NULL_CONVENTIONS[convention]} (csv_null={convention}; "
        f"--option {others} to change)"
    )


@dataclass(frozen=True, slots=True)
class CsvFramer:
    """``csv_units`` with a NULL convention fixed (a driver's file framer takes bytes only)."""

    null: str = DEFAULT_CSV_NULL

    def __call__(self, data: bytes) -> Iterator[bytes]:
        return csv_units(data, null=self.null)


def make_csv_framer(convention: str = DEFAULT_CSV_NULL) -> CsvFramer:
    return CsvFramer(convention)


def csv_units(data: bytes, *, null: str = DEFAULT_CSV_NULL) -> Iterator[bytes]:
    """Frame a CSV export of the query's rows: header line, then one unit per row.

    Values are typed by column; what is NULL follows ``null`` (``CSV_NULL_CONVENTIONS``); an empty
    typed field (a number, a time) is NULL whatever the convention. A value that does not
    convert is kept as text, and the parser quarantines the row naming the column.
    """
    empty_is_null = null in ("auto", "empty")
    text_is_null = null in ("auto", "NULL")
    text = _decode_export(data)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            return
        header = [name.strip() for name in header]
        for fields in reader:
            if not any(f.strip() for f in fields):
                continue
            yield dump_row(_csv_row(header, fields, empty_is_null, text_is_null))
    except csv.Error as exc:
        # The rest of the file cannot be framed; hand it on so it is quarantined, not dropped.
        yield dump_row({"_unparsed": f"CSV error at line {reader.line_num}: {exc}"})


def _decode_export(data: bytes) -> str:
    """UTF-8 (with or without BOM) or UTF-16 with BOM, as SQL Server tools write; else Latin-1.

    Latin-1 decodes any byte, so an export in a Windows code page still frames into rows.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _csv_row(
    header: Sequence[str], fields: Sequence[str], empty_is_null: bool, text_is_null: bool
) -> dict[str, object]:
    row: dict[str, object] = {}
    for name, text in zip(header, fields, strict=False):
        kind = COLUMN_KINDS.get(name, Kind.TEXT)
        stripped = text.strip()
        if (stripped == _NULL_TEXT and (text_is_null or kind is not Kind.TEXT)) or (
            not stripped and (empty_is_null or kind is not Kind.TEXT)
        ):
            row[name] = None
        else:
            row[name] = _csv_value(kind, text)
    if len(fields) > len(header):
        row["_extra_fields"] = list(fields[len(header) :])
    if len(fields) < len(header):
        row["_missing_fields"] = list(header[len(fields) :])
    return row


def _csv_value(kind: Kind, text: str) -> object:
    stripped = text.strip()
    try:
        match kind:
            case Kind.TIME:
                return format_db_time(datetime.fromisoformat(stripped))
            case Kind.INT:
                return int(stripped)
            case Kind.BOOL:
                return {"1": True, "0": False, "true": True, "false": False}[stripped.lower()]
            case Kind.GUID:
                return str(uuid.UUID(stripped))
            case Kind.TEXT:
                return text
    except (ValueError, KeyError):
        return text
    raise AssertionError(kind)  # pragma: no cover - the match is exhaustive


def purge_query(variant: SchemaVariant) -> str | None:
    """The query reading the retention in days (Lync 2013 and later), or None on Lync 2010."""
    if not variant.has_purge_settings:
        return None
    keep = variant.column(PURGE_TABLE, "KeepCallDetailForDays")
    return f'SELECT "{keep}" FROM "{SCHEMA}"."{variant.tables[PURGE_TABLE]}"'
