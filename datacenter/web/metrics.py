"""``/metrics``: Prometheus metrics of the web workers and of the store.

Contract:

- Under gunicorn (`datacenter serve`) the per-request metrics are in prometheus-client's
  multiprocess mode: ``prepare_multiprocess_dir`` empties ``PROMETHEUS_MULTIPROC_DIR`` before
  the workers start, every worker writes its counters to files there, each scrape builds a
  fresh registry with a ``MultiProcessCollector`` that sums them, and gunicorn's
  ``child_exit`` hook (``child_exit`` here) marks a dead worker's files. Without that variable
  (the Flask test client, a single process) the counters live in the app's own registry.
- Values derived from the store (ingest, quarantine, unrated calls, site states, alarms) are
  read at scrape time by ``StoreCollector``; nothing is cached between scrapes. A store that
  cannot be read gives ``callcollect_store_up 0`` and the process metrics, not an error.
- Only loopback clients may scrape, unless ``metrics.token_file`` names a token: then every
  client must send ``Authorization: Bearer <token>`` (loopback included, because a reverse
  proxy on the same machine makes every client look local). Anyone else gets 403. Behind a
  proxy (``web.proxy_hops`` above 0) the loopback rule is off: without a token file every
  request is refused (``create_app`` logs why at start).
- Metric names are listed in docs/console.md.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, abort, current_app, g, request
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    multiprocess,
    values,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from datacenter.health.facts import site_health
from datacenter.health.model import iter_states, policy_from_settings
from datacenter.settings import Settings
from datacenter.store.tables import metadata
from datacenter.store.tables.alarms import alarms
from datacenter.store.tables.core import landed_files
from datacenter.web.database import store
from shared.envelope import parse_batch_file_name

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
PREFIX = "callcollect"
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_EXTENSION_KEY = "callcollect.metrics"

bp = Blueprint("metrics", __name__)


# --- multiprocess set-up (called by `datacenter serve`) --------------------------------------


def multiprocess_dir(settings: Settings) -> Path:
    """``$PROMETHEUS_MULTIPROC_DIR`` if set (systemd: a RuntimeDirectory), else
    ``<data_dir>/prometheus``."""
    from_env = os.environ.get(MULTIPROC_ENV)
    return Path(from_env) if from_env else settings.data_dir / "prometheus"


def prepare_multiprocess_dir(path: Path) -> None:
    """Make ``path`` the empty multiprocess folder of this server, before workers start.

    Only the ``*.db`` files prometheus-client writes are removed (the folder may be one an
    operator chose, holding other things). The value class is chosen again because
    prometheus-client picks it when first imported, and this process imported it before the
    variable was set; the workers forked from here then create their metrics in files.
    """
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(path)
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def child_exit(_server: Any, worker: Any) -> None:
    """gunicorn ``child_exit`` hook: a dead worker's live gauges no longer count."""
    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def _multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


# --- per-request metrics ---------------------------------------------------------------------


class RequestMetrics:
    """Counters for the requests this app serves; in files under multiprocess mode."""

    def __init__(self) -> None:
        # Multiprocess: not registered anywhere (the files are the registry). Otherwise: a
        # registry per app, so tests that build many apps never collide on names.
        self.registry = None if _multiprocess() else CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            f"{PREFIX}_web_requests",
            "Web requests answered, by endpoint, method and status.",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.seconds = Histogram(
            f"{PREFIX}_web_request_seconds",
            "Time to answer a web request, by endpoint.",
            ["endpoint"],
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )

    def registry_for_scrape(self, extra: Collector) -> CollectorRegistry:
        """A fresh registry: the workers' files (or this app's counters) plus ``extra``."""
        registry = CollectorRegistry()
        if self.registry is None:
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        else:
            registry.register(_Forward(self.registry))
        registry.register(extra)
        return registry


class _Forward(Collector):
    """Yields another registry's metrics (a registry cannot be registered in another)."""

    def __init__(self, source: CollectorRegistry) -> None:
        self._source = source

    def collect(self) -> Iterator[Any]:
        yield from self._source.collect()


def init_app(app: Flask) -> None:
    app.extensions[_EXTENSION_KEY] = RequestMetrics()
    app.before_request(_start_timer)
    app.after_request(_count)
    app.register_blueprint(bp)


def _start_timer() -> None:
    g.metrics_started = time.perf_counter()


def _count(response: Response) -> Response:
    metrics: RequestMetrics = current_app.extensions[_EXTENSION_KEY]
    endpoint = request.endpoint or "unmatched"  # a 404 has no endpoint: one label for all
    metrics.requests.labels(endpoint, request.method, str(response.status_code)).inc()
    started = g.get("metrics_started")
    if started is not None:
        metrics.seconds.labels(endpoint).observe(time.perf_counter() - started)
    return response


# --- the endpoint ----------------------------------------------------------------------------


@bp.route("/metrics")
def scrape() -> Response:
    settings: Settings = current_app.config["CALLCOLLECT_SETTINGS"]
    if not _allowed(settings):
        abort(403)
    metrics: RequestMetrics = current_app.extensions[_EXTENSION_KEY]
    collector = StoreCollector(store.engine, settings, now=datetime.now(UTC))
    # The format the scraper asks for (OpenMetrics or the classic text format).
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encode(metrics.registry_for_scrape(collector))
    response = Response(body, content_type=content_type)
    response.headers["Cache-Control"] = "no-store"
    return response


def _allowed(settings: Settings) -> bool:
    token_file = settings.metrics.token_file
    if token_file is not None:
        expected = _read_token(token_file)
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        return (
            bool(expected)
            and scheme.lower() == "bearer"
            and hmac.compare_digest(given.strip().encode(), expected.encode())
        )
    if settings.web.proxy_hops > 0:
        return False  # every client looks local behind a proxy: only a token can tell
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


def _read_token(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        current_app.logger.error("metrics.token_file %s cannot be read: /metrics refuses all", path)
        return ""


# --- values from the store -------------------------------------------------------------------


class StoreCollector(Collector):
    """Reads ingest, quarantine, rating, site and alarm figures at scrape time."""

    def __init__(self, engine: sa.Engine, settings: Settings, *, now: datetime) -> None:
        self._engine = engine
        self._settings = settings
        self._now = now

    def collect(self) -> Iterator[Any]:
        up = GaugeMetricFamily(f"{PREFIX}_store_up", "1 if the store could be read at scrape.")
        try:
            with self._engine.connect() as conn:
                families = list(self._from_store(conn))
        except sa.exc.SQLAlchemyError as exc:
            current_app.logger.warning("/metrics could not read the store: %s", exc)
            up.add_metric([], 0)
            yield up
        else:
            up.add_metric([], 1)
            yield up
            yield from families
        yield from self._from_landing()

    def _from_store(self, conn: sa.Connection) -> Iterator[Any]:
        files = CounterMetricFamily(
            f"{PREFIX}_landed_files",
            "Batch files taken by ingest, by outcome (claimed = being ingested now).",
            labels=["status"],
        )
        counts = dict.fromkeys(("claimed", "stored", "duplicate", "quarantined"), 0)
        query = sa.select(landed_files.c.status, sa.func.count()).group_by(landed_files.c.status)
        counts.update({row[0]: int(row[1]) for row in conn.execute(query)})
        for status, count in sorted(counts.items()):
            files.add_metric([status], count)
        yield files
        inserted = conn.scalar(sa.select(sa.func.coalesce(sa.func.sum(landed_files.c.inserted), 0)))
        yield CounterMetricFamily(
            f"{PREFIX}_ingested_calls", "Calls stored by ingest (duplicates not counted).",
            value=int(inserted or 0),
        )  # fmt: skip
        unrated = metadata.tables.get("unrated_calls")
        if unrated is not None and sa.inspect(conn).has_table("unrated_calls"):
            yield GaugeMetricFamily(
                f"{PREFIX}_unrated_calls", "Calls in the unrated queue (no tariff or dial plan).",
                value=conn.scalar(sa.select(sa.func.count()).select_from(unrated)) or 0,
            )  # fmt: skip
        sites = GaugeMetricFamily(
            f"{PREFIX}_sites", "Sites by polling-health state.", labels=["state"]
        )
        per_state = dict.fromkeys(iter_states(), 0)
        policy = policy_from_settings(self._settings.health)
        for site in site_health(conn, now=self._now, policy=policy):
            per_state[site.state] += 1
        for state, count in per_state.items():
            sites.add_metric([state.value], count)
        yield sites
        open_alarms = GaugeMetricFamily(
            f"{PREFIX}_alarms_open", "Open alarms by state (acknowledged included).",
            labels=["state"],
        )  # fmt: skip
        query = (
            sa.select(alarms.c.state, sa.func.count())
            .where(alarms.c.cleared_at.is_(None))
            .group_by(alarms.c.state)
        )
        for state, count in sorted((row[0], int(row[1])) for row in conn.execute(query)):
            open_alarms.add_metric([state], count)
        yield open_alarms

    def _from_landing(self) -> Iterator[Any]:
        waiting, oldest, quarantined = 0, None, 0
        root = self._settings.landing.root
        for tenant_dir in sorted(root.iterdir()) if root.is_dir() else ():
            for mtime in _batch_files(tenant_dir / "incoming"):
                waiting += 1
                oldest = mtime if oldest is None else min(oldest, mtime)
            quarantined += sum(1 for _ in _batch_files(tenant_dir / "quarantine", any_name=True))
        yield GaugeMetricFamily(
            f"{PREFIX}_ingest_waiting_files", "Finished uploads in incoming/ not yet ingested.",
            value=waiting,
        )  # fmt: skip
        age = max(0.0, self._now.timestamp() - oldest) if oldest is not None else 0.0
        yield GaugeMetricFamily(
            f"{PREFIX}_ingest_oldest_waiting_seconds",
            "Age of the oldest upload waiting in incoming/ (0 when none): the ingest lag.",
            value=age,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_quarantine_files", "Files in the quarantine folders, waiting for a person.",
            value=quarantined,
        )  # fmt: skip


def _batch_files(folder: Path, *, any_name: bool = False) -> Iterator[float]:
    """Modification times of the finished batch files in ``folder`` (``any_name``: of every
    file but ``.reason`` notes and ``.part`` uploads, as quarantine holds more than batches)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:  # no such folder yet: nothing waiting
        return
    for entry in entries:
        name = entry.name
        if any_name:
            wanted = not name.endswith((".reason", ".part"))
        else:
            wanted = parse_batch_file_name(name) is not None
        try:
            if wanted and entry.is_file():
                yield entry.stat().st_mtime
        except OSError:  # ingest moved it away while we looked
            continue
