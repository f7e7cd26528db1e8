"""The store as a Flask extension: one engine per app, one connection per request.

``store.init_app(app, engine)`` binds an engine (made by ``datacenter.store.engine.open_store``,
which connects lazily, so binding touches no database). A view asks ``store.connection()`` and
gets the request's connection, opened on first use and closed when the app context ends; work
a view did not ``commit()`` is rolled back then. Views never build call queries on it directly:
they hand it to ``TenantScope`` or ``accounts``.
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
_G_KEY = "store_connection"


def web_engine(url: str) -> Engine:
    """The store's engine as the web app uses it (``open_store``, JIT off on PostgreSQL)."""
    if make_url(url).get_backend_name() == "postgresql":
        return open_store(url, connect_args={"options": POSTGRES_OPTIONS})
    return open_store(url)


class StoreBinding:
    """The extension object; a single module-level instance serves every app."""

    def init_app(self, app: Flask, engine: Engine) -> None:
        app.extensions[_EXTENSION_KEY] = engine
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


def _close_connection(_exc: BaseException | None) -> None:
    conn: Connection | None = g.pop(_G_KEY, None)
    if conn is not None:
        conn.close()


store = StoreBinding()
