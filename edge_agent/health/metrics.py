"""The agent's Prometheus ``/metrics`` endpoint (prometheus-client), on when ``metrics.listen`` is set.

Contract:

- Off unless ``metrics.listen`` (``HOST:PORT``) is set; the appliance ships it empty and the demo
  turns it on. On loopback (a local node exporter or an SSH tunnel) it may serve without
  authentication; any other address needs ``metrics.token_file`` (the config refuses it
  otherwise). With a token every request must carry ``Authorization: Bearer TOKEN`` (compared
  in constant time); anything else gets 401 and no numbers.
- Every value comes from the agent's latest health snapshot (``SnapshotSource.current()``, rebuilt
  each supervisor cycle and on each heartbeat), so a scrape never touches the spool or the
  network and costs the agent nothing. Before the first snapshot only ``callcollect_agent_info``
  is served.
- Its own ``CollectorRegistry`` (not the process-global one); ``MetricsServer.close()`` stops
  the listener. docs/health.md lists every metric.
"""

from __future__ import annotations

import hmac
import socket
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector, CollectorRegistry

from edge_agent.config import AgentSettings
from shared.errors import ConfigError
from shared.heartbeat import Heartbeat

PREFIX = "callcollect_agent_"
SHUTDOWN_JOIN_SECONDS = 5.0
MIN_TOKEN_CHARS = 16


class SnapshotSource(Protocol):
    """What the collector reads (``edge_agent.health.status.AgentHealth`` is one).

    A protocol rather than an import: the health module starts this server, so importing it
    back would make the two modules a circle.
    """

    @property
    def settings(self) -> AgentSettings: ...

    @property
    def version(self) -> str: ...

    @property
    def heartbeats_sent(self) -> int: ...

    def current(self) -> Heartbeat | None: ...


class AgentCollector(Collector):
    """Turns the latest heartbeat snapshot into metric families at scrape time."""

    def __init__(self, health: SnapshotSource) -> None:
        self.health = health

    def collect(self) -> Iterator[Metric]:
        settings = self.health.settings
        info = GaugeMetricFamily(
            PREFIX + "info", "The agent: id, tenant and version (value 1).",
            labels=["agent_id", "tenant", "version"],
        )  # fmt: skip
        info.add_metric([settings.agent.id, settings.agent.tenant, self.health.version], 1)
        yield info
        hb = self.health.current()
        if hb is None:
            return
        yield _gauge("uptime_seconds", "Seconds since the agent started.", hb.uptime_seconds)
        yield _gauge("start_time_seconds", "Unix time the agent started.",
                     hb.started_at.timestamp())  # fmt: skip
        yield _gauge("spool_used_bytes", "Bytes the spool uses.", hb.spool.used_bytes)
        yield _gauge("spool_quota_bytes", "The spool's quota.", hb.spool.quota_bytes)
        yield _gauge("spool_usage_ratio", "Spool use as a share of its quota (0-1).",
                     hb.spool.percent / 100)  # fmt: skip
        yield _gauge("disk_free_bytes", "Free bytes on the state directory's file system.",
                     hb.disk_free_bytes)  # fmt: skip
        yield _gauge("unbatched_records", "Spooled records not yet sealed into a batch.",
                     hb.unbatched_records)  # fmt: skip
        yield _gauge("unsent_batches", "Sealed batches waiting to be sent.", hb.unsent_batches)
        if hb.clock_offset_seconds is not None:
            yield _gauge("clock_offset_seconds", "Landing host's clock minus the agent's.",
                         hb.clock_offset_seconds)  # fmt: skip
        yield _gauge("uplink_failures_in_a_row", "Uplink sessions failed since the last good one.",
                     hb.uplink.failures_in_a_row)  # fmt: skip
        if hb.uplink.last_ok_at is not None:
            yield _gauge("uplink_last_success_timestamp_seconds",
                         "Unix time of the last good uplink session.",
                         hb.uplink.last_ok_at.timestamp())  # fmt: skip
        sent = CounterMetricFamily(PREFIX + "heartbeats_sent", "Heartbeats uploaded since start.")
        sent.add_metric([], self.health.heartbeats_sent)
        yield sent
        yield from self._sources()

    def _sources(self) -> Iterator[Metric]:
        hb = self.health.current()
        assert hb is not None
        up = GaugeMetricFamily(PREFIX + "source_up", "1 if the source's last poll or "
                               "connection succeeded.", labels=["source", "kind"])  # fmt: skip
        records = CounterMetricFamily(PREFIX + "source_records", "Records parsed since start.",
                                      labels=["source"])  # fmt: skip
        failures = GaugeMetricFamily(PREFIX + "source_failures_in_a_row",
                                     "Failed polls/connections since the last good one.",
                                     labels=["source"])  # fmt: skip
        reconnects = CounterMetricFamily(PREFIX + "source_reconnects",
                                         "Times the source recovered after failing.",
                                         labels=["source"])  # fmt: skip
        last_ok = GaugeMetricFamily(PREFIX + "source_last_success_timestamp_seconds",
                                    "Unix time of the source's last good poll or connection.",
                                    labels=["source"])  # fmt: skip
        last_record = GaugeMetricFamily(PREFIX + "source_last_record_timestamp_seconds",
                                        "Unix time the source's newest record was spooled.",
                                        labels=["source"])  # fmt: skip
        for s in hb.sources:
            up.add_metric([s.source_id, s.kind], 1 if s.ok else 0)
            records.add_metric([s.source_id], s.records)
            failures.add_metric([s.source_id], s.failures_in_a_row)
            reconnects.add_metric([s.source_id], s.reconnects)
            if s.last_ok_at is not None:
                last_ok.add_metric([s.source_id], s.last_ok_at.timestamp())
            if s.last_record_at is not None:
                last_record.add_metric([s.source_id], s.last_record_at.timestamp())
        yield from (up, records, failures, reconnects, last_ok, last_record)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, documentation, value=value)


class MetricsServer:
    """A running ``/metrics`` listener; ``close()`` stops it."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(SHUTDOWN_JOIN_SECONDS)


def start_metrics(
    listen: str, health: SnapshotSource, *, token_file: Path | None = None
) -> MetricsServer:
    """Serve ``/metrics`` on ``listen`` (``HOST:PORT``; port 0 picks a free one)."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(health))
    try:
        if token_file is None:
            server, thread = start_http_server(int(port), addr=host, registry=registry)
        else:
            server, thread = _serve_with_token(host, int(port), registry, read_token(token_file))
    except OSError as exc:
        raise ConfigError(
            "metrics.listen", f"cannot listen on {listen}: {exc.strerror or exc}",
            "choose a free port, or set it to '' to turn metrics off",
        ) from exc  # fmt: skip
    return MetricsServer(server, thread)


def read_token(path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("metrics.token_file", f"cannot read {path}: {exc}",
                          "create it (one line: the token), readable by the agent") from exc  # fmt: skip
    if len(token) < MIN_TOKEN_CHARS:
        raise ConfigError("metrics.token_file", f"{path} holds fewer than {MIN_TOKEN_CHARS} "
                          "characters", "write a long random token there, e.g. "
                          "`openssl rand -hex 32`")  # fmt: skip
    return token


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not worth a log line each."""


def _serve_with_token(
    host: str, port: int, registry: CollectorRegistry, token: str
) -> tuple[WSGIServer, threading.Thread]:
    app = make_wsgi_app(registry)
    expected = f"Bearer {token}".encode()

    def guarded(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        given = str(environ.get("HTTP_AUTHORIZATION", "")).encode()
        if not hmac.compare_digest(given, expected):
            start_response("401 Unauthorized", [("Content-Type", "text/plain"),
                                                ("WWW-Authenticate", "Bearer")])  # fmt: skip
            return [b"a bearer token is required\n"]
        return app(environ, start_response)  # type: ignore[no-any-return]

    server_class = type("MetricsHttpServer", (ThreadingWSGIServer,), {
        "address_family": socket.AF_INET6 if ":" in host else socket.AF_INET})  # fmt: skip
    server: WSGIServer = make_server(host, port, guarded, server_class, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    return server, thread
