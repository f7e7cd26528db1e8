"""The agent's Prometheus ``/metrics`` endpoint (prometheus-client), on when ``metrics.listen`` is set.

Contract:

- Off unless ``metrics.listen`` (``HOST:PORT``) is set; the appliance ships it empty and the demo
  turns it on. The listener is meant for loopback (a local node exporter or an SSH tunnel):
  it serves read-only numbers, without authentication.
- Every value comes from the agent's latest health snapshot (``SnapshotSource.current()``, rebuilt
  each supervisor cycle and on each heartbeat), so a scrape never touches the spool or the
  network and costs the agent nothing. Before the first snapshot only ``callcollect_agent_info``
  is served.
- Its own ``CollectorRegistry`` (not the process-global one); ``MetricsServer.close()`` stops
  the listener. docs/health.md lists every metric.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Protocol
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from edge_agent.config import AgentSettings
from shared.errors import ConfigError
from shared.heartbeat import Heartbeat

PREFIX = "callcollect_agent_"
SHUTDOWN_JOIN_SECONDS = 5.0


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


def start_metrics(listen: str, health: SnapshotSource) -> MetricsServer:
    """Serve ``/metrics`` on ``listen`` (``HOST:PORT``; port 0 picks a free one)."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(health))
    try:
        server, thread = start_http_server(int(port), addr=host, registry=registry)
    except OSError as exc:
        raise ConfigError(
            "metrics.listen", f"cannot listen on {listen}: {exc.strerror or exc}",
            "choose a free port, or set it to '' to turn metrics off",
        ) from exc  # fmt: skip
    return MetricsServer(server, thread)
