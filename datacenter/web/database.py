"""The store as a Flask extension: one engine per app, one connection per request.

``store.init_app(app, engine)`` binds an engine (made by ``datacenter.store.engine.open_store``,
which connects lazily, so binding touches no database). A view asks ``store.connection()`` and
gets the request's connection, opened on first use and closed when the app context ends; work
a view did not ``commit()`` is rolled back then. Views never build call queries on it directly:
they hand it to ``TenantScope`` or ``accounts``. ``store.report_connection()`` is the same for
reports' reads, on ``store.read_url`` (a streaming replica) when it is set, else the same
connection: never write through it, and expect it to lag the primary by the replication delay.
Every report read goes through it: the report pages and the dashboard, saved reports' previews,
and exports, whose streams open their own connection on ``store.report_engine``.
"""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy import Connection, Engine, make_url

from datacenter.store.engine import open_store

# PostgreSQL compiles a query to machine code (JIT) once its estimated cost is high enough; a
# page's totals over a month of a large tenant cross that line, and the compiling took 140 ms
# of a 350 ms query on 5,000,000 calls (benchmarks/portal.py). The portal's queries are short
# and never run long enough to win it back, so its connections turn JIT off.
POSTGRES_OPTIONS = "-c jit=off"
_EXTENSION_KEY = "callcollect.store"
_READ_EXTENSION_KEY = "callcollect.store.reports"
_G_KEY = "store_connection"
_G_READ_KEY = "store_report_connection"


def web_engine(url: str) -> Engine:
    """The store's engine as the web app uses it (``open_store``, JIT off on PostgreSQL)."""
    if make_url(url).get_backend_name() == "postgresql":
        return open_store(url, connect_args={"options": POSTGRES_OPTIONS})
    return open_store(url)


class StoreBinding:
    """The extension object; a single module-level instance serves every app."""

    def init_app(self, app: Flask, engine: Engine, reports: Engine | None = None) -> None:
        """Bind the store's engine, and ``reports`` (a replica's) for report reads if given."""
        app.extensions[_EXTENSION_KEY] = engine
        app.extensions[_READ_EXTENSION_KEY] = reports
        app.teardown_appcontext(_close_connection)

    @property
    def engine(self) -> Engine:
        engine = current_app.extensions.get(_EXTENSION_KEY)
        if engine is None:
            raise RuntimeError("no store bound to this app: call store.init_app(app, engine)")
        return engine  # type: ignore[no-any-return]

    def connection(self) -> Connection:
        """The request's connection, opened on first use."""
        conn: Connection | None = g.get(_G_KEY)
        if conn is None:
            conn = self.engine.connect()
            setattr(g, _G_KEY, conn)
        return conn

    @property
    def report_engine(self) -> Engine:
        """The engine of report reads: the replica's when ``store.read_url`` is set, else the
        store's (for a streamed export, which needs a connection that outlives the request)."""
        reports: Engine | None = current_app.extensions.get(_READ_EXTENSION_KEY)
        return self.engine if reports is None else reports

    def report_connection(self) -> Connection:
        """The request's connection for reports: on the replica if one is set, else ``connection``."""
        reports: Engine | None = current_app.extensions.get(_READ_EXTENSION_KEY)
        if reports is None:
            return self.connection()
        conn: Connection | None = g.get(_G_READ_KEY)
        if conn is None:
            conn = reports.connect()
            setattr(g, _G_READ_KEY, conn)
        return conn


def _close_connection(_exc: BaseException | None) -> None:
    for key in (_G_KEY, _G_READ_KEY):
        conn: Connection | None = g.pop(key, None)
        if conn is not None:
            conn.close()


store = StoreBinding()
