"""Lync Server 2010/2013 and Skype for Business 2015/2019 source: polls the LcsCDR database.

Contract (formats.md §1.13-§1.15, DESIGN.md "Delivery"):

- The poller reads ``LcsCDR`` over ODBC (pyodbc; FreeTDS or Microsoft's driver in production,
  psqlODBC against the PostgreSQL stand-in in tests) with autocommit and a read-only login. It
  never writes and never creates objects: on SQL Server it only sets READ UNCOMMITTED for its
  session (no reader blocks the Monitoring service); on PostgreSQL it makes the session read-only.
- At connect it probes ``INFORMATION_SCHEMA.COLUMNS`` and builds the query for the variant it
  finds (``lync_cdr_schema``); an unsupported schema is a ``SourceError`` that says what is wrong.
- Each poll reads ``[start, now - settle)`` in slices of ``slice_hours``, ordered by
  (SessionIdTime, SessionIdSeq). ``start`` is the watermark minus a short overlap, and every
  ``sweep_interval_seconds`` the window reaches back ``overlap_hours`` (default 24 h) so rows
  that appear or get their SessionEndTime late are read again. Rows are serialised to stable
  JSON and handed to ``sink.deliver`` a page at a time; only when ``deliver`` has returned (the
  rows are journalled, parsed and spooled) is the watermark - the greatest
  (SessionIdTime, SessionIdSeq) delivered - stored with ``sink.set_state("watermark", ...)``.
  A failed poll stores nothing, and the next one reads the same rows again.
- Re-reading is harmless: record ids come from the session key. Rows re-read unchanged within
  this process are not delivered again (a content hash per session key, kept for the overlap
  window); a changed row is delivered again and becomes a newer version of the same record.
- Every poll ends with ``sink.report``; pyodbc errors become ``SourceError`` with a sentence
  saying what to check (driver missing, refused, login timeout, login failed, query timeout),
  never a password. Failures back off (5 s doubling up to the poll interval).

- A session with no SessionEndTime is *open* unless its ResponseCode is a final error (3xx-6xx):
  a failed attempt is complete at once and delivered on the next poll. An open session is held
  back while a later sweep will still see it; an older one is delivered as it is (the parser
  flags an answered one ``end_pending``) and then *tracked*: every poll reads the tracked
  sessions again by key, beyond the overlap window, and delivers each once it has ended (the
  spool and the data centre let that version replace the incomplete one). Tracking stops after
  ``pending_max_hours`` from the session's start; the record then stays incomplete.

State kept with the spool: ``watermark`` = ``{"session_id_time": ISO, "session_id_seq": n}``;
``pending`` = ``[[ISO SessionIdTime, SessionIdSeq], ...]``, the tracked open sessions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyodbc

from edge_agent.sources.base import ParserKit, Source, SourceContext, UnitSink
from edge_agent.sources.lync_cdr.parser import (
    KIND,
    LyncCdrParser,
    RowError,
    decode_row,
    still_open,
)
from edge_agent.sources.lync_cdr.schema import (
    CSV_NULL_CONVENTIONS,
    KEY_COLUMNS,
    PROBE_PARAMS,
    PROBE_SQL,
    RETRY_LOOKAHEAD_MINUTES,
    RowSerialiser,
    SchemaVariant,
    build_query,
    csv_null_note,
    format_db_time,
    make_csv_framer,
    purge_query,
    serialise_row,
    variant_from_columns,
)
from edge_agent.sources.options import OptionReader
from shared.clock import Clock, utc_now
from shared.errors import CallCollectError, ConfigError, SourceError
from shared.icdr import ICDR

log = logging.getLogger(__name__)

WATERMARK_KEY = "watermark"
PENDING_KEY = "pending"

DEFAULT_POLL_INTERVAL_SECONDS = 300
DEFAULT_OVERLAP_HOURS = 24
DEFAULT_SHORT_OVERLAP_MINUTES = 30
DEFAULT_SETTLE_SECONDS = 120
DEFAULT_SWEEP_INTERVAL_SECONDS = 3600
DEFAULT_SLICE_HOURS = 1
DEFAULT_INITIAL_LOOKBACK_HOURS = 24
DEFAULT_PAGE_SIZE = 2000
DEFAULT_LOGIN_TIMEOUT_SECONDS = 15
DEFAULT_QUERY_TIMEOUT_SECONDS = 120
DEFAULT_RETENTION_MARGIN_DAYS = 15
DEFAULT_PENDING_MAX_HOURS = 72
MAX_PENDING_SESSIONS = 10_000  # the oldest tracked session is dropped beyond this
KEY_TOLERANCE = timedelta(milliseconds=5)  # SQL Server datetime ticks are 1/300 s
MIN_BACKOFF_SECONDS = 5.0
PREVIEW_RECORDS = 100_000  # calls test-source keeps to classify (the counts cover every row)


# --- options -----------------------------------------------------------------------------------

HOUR_LIMIT = 24 * 90  # no window option makes sense beyond LcsCDR's retention


@dataclass(frozen=True, slots=True)
class LyncOptions:
    """Validated options of one ``lync-cdr`` source (docs/sources/lync-cdr.md lists them)."""

    source_id: str
    connection_string: str = ""
    poll_interval: timedelta = timedelta(seconds=DEFAULT_POLL_INTERVAL_SECONDS)
    overlap: timedelta = timedelta(hours=DEFAULT_OVERLAP_HOURS)
    short_overlap: timedelta = timedelta(minutes=DEFAULT_SHORT_OVERLAP_MINUTES)
    settle: timedelta = timedelta(seconds=DEFAULT_SETTLE_SECONDS)
    sweep_interval: timedelta = timedelta(seconds=DEFAULT_SWEEP_INTERVAL_SECONDS)
    slice: timedelta = timedelta(hours=DEFAULT_SLICE_HOURS)
    initial_lookback: timedelta = timedelta(hours=DEFAULT_INITIAL_LOOKBACK_HOURS)
    include_internal: bool = False
    page_size: int = DEFAULT_PAGE_SIZE
    login_timeout_seconds: int = DEFAULT_LOGIN_TIMEOUT_SECONDS
    query_timeout_seconds: int = DEFAULT_QUERY_TIMEOUT_SECONDS
    retention_margin: timedelta = timedelta(days=DEFAULT_RETENTION_MARGIN_DAYS)
    pending_max: timedelta = timedelta(hours=DEFAULT_PENDING_MAX_HOURS)
    csv_null: str = "auto"

    @classmethod
    def from_mapping(
        cls, ctx: SourceContext, options: Mapping[str, Any], *, need_connection: bool = True
    ) -> LyncOptions:
        """Validate; a bad option is a ``ConfigError`` naming ``sources.<id>.<key>`` and the fix."""
        read = OptionReader(ctx, options)
        connection = read.string("connection_string", "", max_length=4096).strip()
        dsn = read.string("dsn", "").strip()
        password_file = read.string("password_file", "", max_length=4096).strip()
        day = 24 * 3600

        def seconds(name: str, default: int, minimum: int, maximum: int) -> timedelta:
            return timedelta(seconds=read.integer(name, default, minimum=minimum, maximum=maximum))

        settings = cls(
            source_id=ctx.source_id,
            poll_interval=seconds("poll_interval_seconds", DEFAULT_POLL_INTERVAL_SECONDS, 5, day),
            overlap=timedelta(
                hours=read.integer(
                    "overlap_hours", DEFAULT_OVERLAP_HOURS, minimum=1, maximum=HOUR_LIMIT
                )
            ),
            short_overlap=timedelta(
                minutes=read.integer(
                    "short_overlap_minutes", DEFAULT_SHORT_OVERLAP_MINUTES, minimum=0, maximum=1440
                )
            ),
            settle=seconds("settle_seconds", DEFAULT_SETTLE_SECONDS, 0, 3600),
            sweep_interval=seconds(
                "sweep_interval_seconds", DEFAULT_SWEEP_INTERVAL_SECONDS, 60, day
            ),
            slice=timedelta(
                hours=read.integer("slice_hours", DEFAULT_SLICE_HOURS, minimum=1, maximum=24)
            ),
            initial_lookback=timedelta(
                hours=read.integer(
                    "initial_lookback_hours",
                    DEFAULT_INITIAL_LOOKBACK_HOURS,
                    minimum=1,
                    maximum=HOUR_LIMIT,
                )
            ),
            include_internal=read.boolean("include_internal", False),
            page_size=read.integer("page_size", DEFAULT_PAGE_SIZE, minimum=1, maximum=100_000),
            login_timeout_seconds=read.integer(
                "login_timeout_seconds", DEFAULT_LOGIN_TIMEOUT_SECONDS, minimum=1, maximum=600
            ),
            query_timeout_seconds=read.integer(
                "query_timeout_seconds", DEFAULT_QUERY_TIMEOUT_SECONDS, minimum=1, maximum=3600
            ),
            retention_margin=timedelta(
                days=read.integer(
                    "retention_margin_days", DEFAULT_RETENTION_MARGIN_DAYS, minimum=0, maximum=90
                )
            ),
            pending_max=timedelta(
                hours=read.integer(
                    "pending_max_hours", DEFAULT_PENDING_MAX_HOURS, minimum=1, maximum=HOUR_LIMIT
                )
            ),
            csv_null=_csv_null(read),
        )
        read.finish()
        connection = _connection_string(
            read,
            connection=connection,
            dsn=dsn,
            password_file=password_file,
            need_connection=need_connection,
        )
        return dataclasses.replace(settings, connection_string=connection)


def _csv_null(read: OptionReader) -> str:
    value = read.string("csv_null", "auto").strip()
    if value not in CSV_NULL_CONVENTIONS:
        raise ConfigError(
            read.key("csv_null"),
            f"{value!r} is not a NULL convention",
            "use auto (an empty field or the text NULL), empty (psql, bcp) or NULL (SSMS)",
        )
    return value


def _connection_string(
    read: OptionReader, *, connection: str, dsn: str, password_file: str, need_connection: bool
) -> str:
    if connection and dsn:
        raise ConfigError(
            read.key("dsn"),
            "both dsn and connection_string are set",
            "keep one: connection_string for a driver, or dsn for an odbc.ini entry",
        )
    if dsn:
        connection = f"DSN={_odbc_escape(dsn)};"
    if not connection:
        if need_connection:
            raise ConfigError(
                read.key("connection_string"),
                "no database to poll",
                "set connection_string, e.g. "
                '"DRIVER={FreeTDS};SERVER=monitoring.example.com;PORT=1433;DATABASE=LcsCDR;'
                'UID=callcollect;TDS_Version=7.4;", or dsn',
            )
        return ""
    if password_file:
        path = Path(password_file)
        try:
            password = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                read.key("password_file"),
                f"cannot read {path}: {exc.strerror}",
                "create the file (mode 0600, owned by the agent's user) or remove the option",
            ) from exc
        connection = connection.rstrip(";") + f";PWD={_odbc_escape(password)};"
    return connection


def _odbc_escape(value: str) -> str:
    """Brace a connection-string value so ';', '{' or '}' in it cannot end it early."""
    return "{" + value.replace("}", "}}") + "}"


# --- the database connection ------------------------------------------------------------------

_SECRET = re.compile(r"(?i)(PWD|PASSWORD)\s*=\s*(\{(?:[^}]|\}\})*\}|[^;]*)")
_TARGET_KEYS = ("DSN", "SERVER", "PORT", "DATABASE")


def redact(connection_string: str) -> str:
    """The connection string with the password replaced, for messages and logs."""
    return _SECRET.sub(lambda m: f"{m.group(1)}=***", connection_string)


def describe_target(connection_string: str) -> str:
    """ "SERVER=x;PORT=y;DATABASE=z" (or the DSN) of a connection string, for messages."""
    parts = {
        k.strip().upper(): v.strip()
        for k, _, v in (item.partition("=") for item in redact(connection_string).split(";"))
        if k.strip()
    }
    shown = [f"{k}={parts[k]}" for k in _TARGET_KEYS if k in parts]
    return ";".join(shown) or "the configured database"


def map_odbc_error(exc: pyodbc.Error, *, phase: str, connection_string: str) -> SourceError:
    """A pyodbc error as a ``SourceError`` whose message says what failed and what to check."""
    state = str(exc.args[0]) if exc.args else ""
    text = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
    lowered = text.lower()
    target = describe_target(connection_string)
    if state == "IM002" or "can't open lib" in lowered or "file not found" in lowered:
        message = (
            f"the ODBC driver or DSN named in the connection is not installed ({target}): "
            "install tdsodbc (FreeTDS) or Microsoft's msodbcsql18 and use the name "
            "`odbcinst -q -d` lists, or define the DSN in /etc/odbc.ini"
        )
    elif state == "HYT00" or "timeout expired" in lowered or "statement timeout" in lowered:
        if phase == "login":
            message = (
                f"login to {target} timed out: something accepts TCP there but does not answer "
                "as SQL Server; check SERVER/PORT (a named instance needs its port), the "
                "firewall, and login_timeout_seconds"
            )
        else:
            message = (
                f"a query on {target} timed out: the Monitoring store is busy or the window is "
                "too large; lower slice_hours or raise query_timeout_seconds"
            )
    elif state == "28000" or "login failed" in lowered or "authentication failed" in lowered:
        message = (
            f"login refused by {target}: check UID and the password, that the SQL login is "
            "enabled and mapped to a user in LcsCDR with db_datareader"
        )
    elif "cannot open database" in lowered or (
        "database" in lowered and "does not exist" in lowered
    ):
        message = (
            f"the database named in the connection does not exist or the login may not open it "
            f"({target}): set DATABASE=LcsCDR and map the login to a user in it"
        )
    elif (
        "connection refused" in lowered
        or "unavailable or does not exist" in lowered
        or (phase == "login" and state in {"08001", "08S01"})
    ):
        message = (
            f"cannot connect to {target}: the connection was refused or the server is "
            "unreachable; check SERVER and PORT, that SQL Server accepts TCP/IP, and the firewall"
        )
    elif state.startswith("08"):
        message = f"the connection to {target} was lost during {phase}; the next poll reconnects"
    elif state in {"42S02", "42S22", "42P01", "42703"}:
        message = (
            f"the LcsCDR schema on {target} changed under the agent ({phase}); "
            "it is probed again at the next poll"
        )
    else:
        message = f"{phase} on {target} failed"
    return SourceError(f"{message} [ODBC {state}: {_first_line(text)}]")


def _first_line(text: str) -> str:
    return redact(text).strip().splitlines()[0] if text.strip() else "no detail"


@dataclass(frozen=True, slots=True)
class SessionKey:
    """(SessionIdTime, SessionIdSeq): the order of the poll and the watermark."""

    time: datetime  # naive UTC, as stored
    seq: int

    def encode(self) -> str:
        return json.dumps(
            {"session_id_time": format_db_time(self.time), "session_id_seq": self.seq},
            sort_keys=True,
        )

    @classmethod
    def decode(cls, text: str | None) -> SessionKey | None:
        if not text:
            return None
        try:
            data = json.loads(text)
            return cls(datetime.fromisoformat(data["session_id_time"]), int(data["session_id_seq"]))
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring an unreadable LcsCDR watermark %r; polling from scratch", text)
            return None

    def __lt__(self, other: SessionKey) -> bool:
        return (self.time, self.seq) < (other.time, other.seq)


class LcsCdrDatabase:
    """One ODBC connection to LcsCDR: connect, probe, read pages. Every error is a SourceError."""

    def __init__(
        self, connection_string: str, *, login_timeout_seconds: int, query_timeout_seconds: int
    ) -> None:
        self._connection_string = connection_string
        self._login_timeout = login_timeout_seconds
        self._query_timeout = query_timeout_seconds
        self._connection: pyodbc.Connection | None = None
        self.dbms = ""

    def connect(self) -> None:
        if self._connection is not None:
            return
        try:
            connection = pyodbc.connect(
                self._connection_string, autocommit=True, timeout=self._login_timeout
            )
        except pyodbc.Error as exc:
            raise map_odbc_error(
                exc, phase="login", connection_string=self._connection_string
            ) from exc
        try:
            self.dbms = str(connection.getinfo(pyodbc.SQL_DBMS_NAME))
            self._prepare_session(connection)
        except pyodbc.Error as exc:
            connection.close()
            raise map_odbc_error(
                exc, phase="session set-up", connection_string=self._connection_string
            ) from exc
        self._connection = connection

    def _prepare_session(self, connection: pyodbc.Connection) -> None:
        cursor = connection.cursor()
        try:
            if "postgres" in self.dbms.lower():
                # The test stand-in: no statement may write, and queries are bounded in time.
                # (psqlODBC does not support the ODBC query timeout attribute.)
                cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
                cursor.execute(f"SET statement_timeout = {int(self._query_timeout) * 1000}")
            else:
                connection.timeout = self._query_timeout
                # Never block the Monitoring service's writers (formats.md §1.13); the query
                # text stays free of table hints so it also runs on the stand-in.
                cursor.execute("SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED")
        finally:
            cursor.close()

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except pyodbc.Error:
                log.debug("closing a broken LcsCDR connection failed", exc_info=True)
            self._connection = None

    def probe(self) -> SchemaVariant:
        rows = self._fetch_all(PROBE_SQL, PROBE_PARAMS, phase="schema probe")
        return variant_from_columns((str(r[0]), str(r[1])) for r in rows)

    def retention_days(self, variant: SchemaVariant) -> int | None:
        sql = purge_query(variant)
        if sql is None:
            return None
        rows = self._fetch_all(sql, (), phase="reading PurgeSettings")
        values = [int(str(r[0])) for r in rows if r[0] is not None]
        return min(values) if values else None

    def pages(
        self, sql: str, params: Sequence[object], *, page_size: int, phase: str = "the poll query"
    ) -> Iterator[tuple[list[str], list[Sequence[object]]]]:
        """Run a query; yield (column names, rows) a page at a time."""
        cursor = self._cursor(phase)
        try:
            try:
                cursor.execute(sql, *params)
                names = [d[0] for d in cursor.description]
            except pyodbc.Error as exc:
                raise self._error(exc, phase) from exc
            while True:
                try:
                    rows = cursor.fetchmany(page_size)
                except pyodbc.Error as exc:
                    raise self._error(exc, phase) from exc
                if not rows:
                    return
                yield names, rows
        finally:
            with contextlib.suppress(pyodbc.Error):  # its connection may be closed already
                cursor.close()

    def _fetch_all(
        self, sql: str, params: Sequence[object], *, phase: str
    ) -> list[Sequence[object]]:
        rows: list[Sequence[object]] = []
        for _names, page in self.pages(sql, params, page_size=1000, phase=phase):
            rows += page
        return rows

    def _cursor(self, phase: str) -> pyodbc.Cursor:
        self.connect()
        assert self._connection is not None
        try:
            return self._connection.cursor()
        except pyodbc.Error as exc:
            raise self._error(exc, phase) from exc

    def _error(self, exc: pyodbc.Error, phase: str) -> SourceError:
        self.close()  # whatever went wrong, the next poll starts on a fresh connection
        return map_odbc_error(exc, phase=phase, connection_string=self._connection_string)


# --- the poller --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PollWindow:
    start: datetime  # naive UTC, like the stored values
    end: datetime
    sweep: bool

    def slices(self, size: timedelta) -> Iterator[tuple[datetime, datetime]]:
        lower = self.start
        while lower < self.end:
            upper = min(lower + size, self.end)
            yield lower, upper
            lower = upper


@dataclass(slots=True)
class PollResult:
    """What one poll read and delivered (also what ``test-source`` prints)."""

    window: PollWindow
    variant: str
    rows: int = 0
    delivered: int = 0
    held: int = 0  # open sessions left for a later sweep
    pending: int = 0  # open sessions delivered incomplete, still tracked until they end
    kinds: dict[str, int] = field(default_factory=dict)  # preview: direction -> rows
    records: list[ICDR] = field(default_factory=list)  # preview: the calls parsed (bounded)
    first: SessionKey | None = None
    last: SessionKey | None = None
    watermark: SessionKey | None = None
    complete: bool = True
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        kind = "sweep" if self.window.sweep else "poll"
        text = (
            f"{kind} {format_db_time(self.window.start)}..{format_db_time(self.window.end)} UTC: "
            f"{self.rows} rows, {self.delivered} new or changed, {self.held} still open"
        )
        if self.pending:
            text += f", {self.pending} delivered incomplete and tracked until they end"
        if not self.complete:
            text += " (stopped early: spool full or shutting down)"
        return "; ".join([text, *self.warnings])


class LcsCdrPoller:
    """The acquirer: polls LcsCDR on a schedule and delivers rows to the sink (see module doc)."""

    def __init__(
        self,
        options: LyncOptions,
        *,
        clock: Clock = utc_now,
        database: Callable[[], LcsCdrDatabase] | None = None,
    ) -> None:
        self.options = options
        self._clock = clock
        self._make_database = database or self._default_database
        self._db: LcsCdrDatabase | None = None
        self.variant: SchemaVariant | None = None
        self._query = ""
        self._retention_days: int | None = None
        self._covered_until: datetime | None = None
        self._last_sweep: datetime | None = None
        # session key -> content hash of the row last delivered; bounded to the overlap window
        self._seen: dict[tuple[datetime, int], bytes] = {}
        # open sessions delivered incomplete, read again by key until they end (or the cap)
        self._pending: set[tuple[datetime, int]] | None = None

    def _default_database(self) -> LcsCdrDatabase:
        return LcsCdrDatabase(
            self.options.connection_string,
            login_timeout_seconds=self.options.login_timeout_seconds,
            query_timeout_seconds=self.options.query_timeout_seconds,
        )

    # -- the loop

    def run(self, sink: UnitSink, stop: threading.Event) -> None:
        backoff = MIN_BACKOFF_SECONDS
        interval = self.options.poll_interval.total_seconds()
        try:
            while not stop.is_set():
                wait = interval
                if not sink.may_read():
                    sink.report(ok=True, message="spool full: polling paused, LcsCDR keeps rows")
                else:
                    try:
                        result = self.poll(sink, stop=stop)
                    except SourceError as exc:
                        self.close()
                        sink.report(ok=False, message=str(exc))
                        wait, backoff = min(backoff, interval), min(backoff * 2, interval)
                    except (CallCollectError, OSError) as exc:
                        # The sink could not store the rows: nothing advanced, read them again.
                        sink.report(ok=False, message=f"could not store LcsCDR rows: {exc}")
                        wait, backoff = min(backoff, interval), min(backoff * 2, interval)
                    else:
                        sink.report(ok=True, message=result.summary(), records=result.delivered)
                        backoff = MIN_BACKOFF_SECONDS
                stop.wait(wait)
        finally:
            self.close()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
        self._db, self.variant = None, None

    @property
    def retention_days(self) -> int | None:
        """KeepCallDetailForDays read from PurgeSettings at connection (None on Lync 2010)."""
        return self._retention_days

    # -- one poll

    def _database(self) -> tuple[LcsCdrDatabase, SchemaVariant]:
        if self._db is None or self.variant is None:
            db = self._make_database()
            try:
                variant = db.probe()
                self._retention_days = db.retention_days(variant)
            except SourceError:
                db.close()
                raise
            self._db, self.variant = db, variant
            self._query = build_query(variant, include_internal=self.options.include_internal)
            log.info("LcsCDR at %s: %s", db.dbms or "?", variant.describe())
        return self._db, self.variant

    def plan(self, watermark: SessionKey | None, now: datetime) -> PollWindow:
        """The window of the next poll (formats.md §1.14)."""
        naive_now = now.astimezone(UTC).replace(tzinfo=None)
        end = naive_now - self.options.settle
        anchors = [t for t in (watermark.time if watermark else None, self._covered_until) if t]
        if anchors:
            start = max(anchors) - self.options.short_overlap
        else:
            start = naive_now - self.options.initial_lookback
        sweep = self._last_sweep is None or now - self._last_sweep >= self.options.sweep_interval
        if sweep:
            start = min(start, naive_now - self.options.overlap)
        return PollWindow(start=start, end=end, sweep=sweep)

    def poll(self, sink: UnitSink, *, stop: threading.Event | None = None) -> PollResult:
        """Read one window and deliver it; the watermark advances after each delivered page."""
        db, variant = self._database()
        now = self._clock()
        watermark = SessionKey.decode(sink.get_state(WATERMARK_KEY))
        window = self.plan(watermark, now)
        result = PollResult(window=window, variant=variant.describe(), watermark=watermark)
        for lower, upper in window.slices(self.options.slice):
            if not self._read_slice(db, sink, lower, upper, result, stop):
                result.complete = False
                break
            self._covered_until = max(self._covered_until or upper, upper)
        if result.complete and window.sweep:
            self._last_sweep = now
        if result.complete and not (stop is not None and stop.is_set()):
            self._read_pending(db, sink, result, now)
        self._forget_before(self.cache_horizon(window))
        result.warnings += self._retention_warnings(result.watermark, now)
        return result

    def _read_slice(
        self,
        db: LcsCdrDatabase,
        sink: UnitSink,
        lower: datetime,
        upper: datetime,
        result: PollResult,
        stop: threading.Event | None,
    ) -> bool:
        hold_horizon = self.hold_horizon(result.window)
        cache_horizon = self.cache_horizon(result.window)
        for names, rows in db.pages(
            self._query, query_params(lower, upper), page_size=self.options.page_size
        ):
            at = names.index(KEY_COLUMNS[0]), names.index(KEY_COLUMNS[1])
            end_at, code_at = names.index("SessionEndTime"), names.index("ResponseCode")
            serialise = RowSerialiser(names)
            units: list[bytes] = []
            hashes: list[tuple[tuple[datetime, int], bytes]] = []
            opened: set[tuple[datetime, int]] = set()
            ended: set[tuple[datetime, int]] = set()
            for row in rows:
                key = _session_key(row, at)
                is_open = still_open(_code(row[code_at]), row[end_at])
                if is_open and key.time >= hold_horizon:
                    result.held += 1  # still open: a later sweep delivers it finished
                    continue
                unit = serialise(row)
                digest = hashlib.blake2b(unit, digest_size=16).digest()
                if self._seen.get((key.time, key.seq)) != digest:
                    units.append(unit)
                    if key.time >= cache_horizon:
                        hashes.append(((key.time, key.seq), digest))
                (opened if is_open else ended).add((key.time, key.seq))
            if units:
                sink.deliver(units, received_at=self._clock())
            self._seen.update(hashes)  # only once durable: a failed delivery is re-sent
            pending = self._pending_keys(sink)
            if opened - pending or ended & pending:
                self._store_pending(sink, (pending | opened) - ended)
            first, last = _session_key(rows[0], at), _session_key(rows[-1], at)
            result.rows += len(rows)
            result.delivered += len(units)
            result.first = result.first or first
            result.last = last
            if result.watermark is None or result.watermark < last:
                result.watermark = last
                sink.set_state(WATERMARK_KEY, last.encode())
            if (stop is not None and stop.is_set()) or not sink.may_read():
                return False
        return not (stop is not None and stop.is_set())

    # -- open sessions delivered incomplete

    def _pending_keys(self, sink: UnitSink) -> set[tuple[datetime, int]]:
        if self._pending is None:
            self._pending = decode_pending(sink.get_state(PENDING_KEY))
        return self._pending

    def _store_pending(self, sink: UnitSink, keys: set[tuple[datetime, int]]) -> None:
        kept = set(sorted(keys)[-MAX_PENDING_SESSIONS:])
        sink.set_state(PENDING_KEY, encode_pending(kept))
        self._pending = kept

    def _read_pending(
        self, db: LcsCdrDatabase, sink: UnitSink, result: PollResult, now: datetime
    ) -> None:
        """Read the tracked open sessions the window did not reach; deliver those that ended."""
        pending = self._pending_keys(sink)
        oldest = now.astimezone(UTC).replace(tzinfo=None) - self.options.pending_max
        expired = {key for key in pending if key[0] < oldest}  # given up: stays incomplete
        ended: set[tuple[datetime, int]] = set()
        for key in sorted(pending - expired):
            if key[0] >= result.window.start:
                continue  # this poll's window read it already
            lower, upper = key[0] - KEY_TOLERANCE, key[0] + KEY_TOLERANCE
            for names, rows in db.pages(self._query, query_params(lower, upper), page_size=10):
                at = names.index(KEY_COLUMNS[0]), names.index(KEY_COLUMNS[1])
                end_at, code_at = names.index("SessionEndTime"), names.index("ResponseCode")
                for row in rows:
                    found = _session_key(row, at)
                    if (found.time, found.seq) != key:
                        continue
                    if not still_open(_code(row[code_at]), row[end_at]):
                        sink.deliver([serialise_row(names, row)], received_at=self._clock())
                        ended.add(key)
                        result.delivered += 1
        result.pending = len(pending - expired - ended)
        if expired or ended:
            self._store_pending(sink, pending - expired - ended)

    def hold_horizon(self, window: PollWindow) -> datetime:
        """Open sessions (no SessionEndTime yet) that started after this are held back.

        A sweep will read them again before they leave the overlap window, so the first version
        delivered is normally the finished one (the spool keeps the first version of a record).
        Older open sessions are delivered as they are, flagged ``end_pending`` by the parser.
        """
        o = self.options
        return window.end + o.settle - o.overlap + o.sweep_interval + o.poll_interval

    def cache_horizon(self, window: PollWindow) -> datetime:
        """Rows older than this are not re-read by sweeps, so their hashes need not be kept.

        This bounds the memory to the overlap window even during a long catch-up.
        """
        o = self.options
        return window.end + o.settle - o.overlap - o.short_overlap

    def _forget_before(self, horizon: datetime) -> None:
        stale = [key for key in self._seen if key[0] < horizon]
        for key in stale:
            del self._seen[key]

    def _retention_warnings(self, watermark: SessionKey | None, now: datetime) -> list[str]:
        """CRITICAL when the watermark nears the LcsCDR purge: older rows are about to go."""
        if watermark is None or self._retention_days is None:
            return []
        limit = timedelta(days=self._retention_days) - self.options.retention_margin
        behind = now.astimezone(UTC).replace(tzinfo=None) - watermark.time
        if behind <= limit:
            return []
        return [
            f"CRITICAL: the watermark is {behind.days} days behind and LcsCDR purges rows after "
            f"{self._retention_days} days; catch up now or calls will be lost at the next purge"
        ]

    # -- test-source

    def export_query(self, watermark: SessionKey | None) -> tuple[str, PollWindow]:
        """The query the next poll runs, with the window's values in place of the markers (ISO
        8601 literals, which SQL Server and PostgreSQL read alike), ready to paste into SSMS.
        The poll itself reads the window in ``slice_hours`` slices of this same text."""
        self._database()
        window = self.plan(watermark, self._clock())
        values = iter(query_params(window.start, window.end))
        text = re.sub(r"\?", lambda _m: f"'{format_db_time(next(values))}'", self._query)
        return text, window

    def preview(
        self, watermark: SessionKey | None, *, parser: LyncCdrParser | None = None
    ) -> PollResult:
        """What a poll from ``watermark`` would read, without delivering or storing anything.

        With a parser, the rows are also parsed and counted by direction (and quarantine).
        """
        db, variant = self._database()
        now = self._clock()
        window = self.plan(watermark, now)
        horizon = self.hold_horizon(window)
        result = PollResult(window=window, variant=variant.describe(), watermark=watermark)
        for lower, upper in window.slices(self.options.slice):
            for names, rows in db.pages(
                self._query, query_params(lower, upper), page_size=self.options.page_size
            ):
                at = (names.index(KEY_COLUMNS[0]), names.index(KEY_COLUMNS[1]))
                end_at, code_at = names.index("SessionEndTime"), names.index("ResponseCode")
                for row in rows:
                    key = _session_key(row, at)
                    result.rows += 1
                    result.first = result.first or key
                    result.last = key
                    if still_open(_code(row[code_at]), row[end_at]) and key.time >= horizon:
                        result.held += 1
                    if parser is not None:
                        record = _count(result.kinds, parser, serialise_row(names, row))
                        if record is not None and len(result.records) < PREVIEW_RECORDS:
                            result.records.append(record)
        result.warnings += self._retention_warnings(watermark, now)
        return result


def _count(kinds: dict[str, int], parser: LyncCdrParser, unit: bytes) -> ICDR | None:
    try:
        record: ICDR | str = parser.parse_row(decode_row(unit), unit)
    except RowError as exc:
        record = f"quarantined ({exc.reason})"
    label = record if isinstance(record, str) else record.direction.value
    kinds[label] = kinds.get(label, 0) + 1
    return None if isinstance(record, str) else record


def query_params(lower: datetime, upper: datetime) -> tuple[datetime, ...]:
    """The query's markers (``schema.QUERY_MARKERS``) for the slice [lower, upper)."""
    return lower, upper + timedelta(minutes=RETRY_LOOKAHEAD_MINUTES), lower, upper


def encode_pending(keys: set[tuple[datetime, int]]) -> str:
    return json.dumps([[format_db_time(t), seq] for t, seq in sorted(keys)])


def decode_pending(text: str | None) -> set[tuple[datetime, int]]:
    if not text:
        return set()
    try:
        return {(datetime.fromisoformat(t), int(seq)) for t, seq in json.loads(text)}
    except (ValueError, TypeError):
        log.warning("ignoring an unreadable list of open LcsCDR sessions %r", text)
        return set()


def _code(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _session_key(row: Sequence[object], at: tuple[int, int]) -> SessionKey:
    time, seq = row[at[0]], row[at[1]]
    if not isinstance(time, datetime) or isinstance(seq, bool) or not isinstance(seq, int):
        raise SourceError(
            f"LcsCDR returned a session key of types {type(time).__name__}/{type(seq).__name__}, "
            "not datetime/int: SessionDetails is not the LcsCDR table this driver knows"
        )
    return SessionKey(time.replace(tzinfo=None), seq)


# --- the driver entry points --------------------------------------------------------------------


def make_parser(ctx: SourceContext, options: Mapping[str, Any]) -> ParserKit:
    """The parser and the CSV framer (a CSV export of the query's rows, header first)."""
    settings = LyncOptions.from_mapping(ctx, options, need_connection=False)
    return ParserKit(
        parser=LyncCdrParser(ctx),
        file_framer=make_csv_framer(settings.csv_null),
        notes=(csv_null_note(settings.csv_null),),
    )


def make_source(
    ctx: SourceContext, options: Mapping[str, Any], *, clock: Clock = utc_now
) -> Source:
    settings = LyncOptions.from_mapping(ctx, options)
    return Source(
        ctx=ctx,
        kind=KIND,
        parser=LyncCdrParser(ctx),
        acquirer=LcsCdrPoller(settings, clock=clock),
        file_framer=make_csv_framer(settings.csv_null),
        description=f"LcsCDR poll of {describe_target(settings.connection_string)}",
        settings={
            "target": describe_target(settings.connection_string),
            "poll_interval_seconds": int(settings.poll_interval.total_seconds()),
            "overlap_hours": int(settings.overlap.total_seconds() // 3600),
            "include_internal": settings.include_internal,
        },
    )
