"""Mitel Communication Service (MCS) IP SMDR source: 162-character call events (formats.md §3).

Contract:

- Two ways in, usable together (``mode = "both"``): local mode, where the agent connects to
  MCS's listener (``host``, port 2007 by default), and push mode, where the agent listens
  (``listen_host``:``listen_port``) and MCS connects out; pushed connections are accepted only
  from ``push_allowed_peers`` (default: ``host``), several at once, repeatedly. Each line (CR LF
  or LF) is one journal unit, delivered and journalled before it is parsed.
- Parsing (``mcs_ipsmdr_line``) reads fixed offsets first and tokenises lines that do not fit,
  with the configured pad character; calls are built per CallID (``mcs_ipsmdr_calls``) and
  emitted as one ICDR per segment when DISCONNECTED arrives, or when ``idle_timeout_seconds``
  pass without an event (flag ``timed_out``). With both modes on, MCS sends every event on each
  connection: the second copy is recognised and quarantined as ``repeated_event``.
- `edge-agent parse mcs-ipsmdr [--option pad_character=" "] FILE` reads captured lines and
  prints the calls built from them.

Options: ``mode`` (local | push | both; local), ``host``, ``port`` (2007), ``listen_host``
(127.0.0.1: loopback unless configured otherwise; set the address of the interface MCS reaches,
or 0.0.0.0, to accept pushes from the network), ``listen_port`` (2007), ``push_allowed_peers`` (list of IP addresses; default
``[host]``), ``pad_character`` ("0", the MCS default), ``idle_timeout_seconds`` (14400),
``max_open_calls`` (100000), ``connect_timeout_seconds`` (10), ``reconnect_min_seconds`` (1),
``reconnect_max_seconds`` (60), ``idle_reconnect_seconds`` (0 = never).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from edge_agent.sources.base import Acquirer, ParserKit, Source, SourceContext
from edge_agent.sources.mcs_ipsmdr.calls import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_OPEN_CALLS,
    KIND,
    IpSmdrParser,
)
from edge_agent.sources.mcs_ipsmdr.line import DEFAULT_PAD, PIPE
from edge_agent.sources.options import OptionReader, ReconnectOptions, read_reconnect_options
from edge_agent.sources.streams.acquirer_group import AcquirerGroup
from edge_agent.sources.streams.lines import split_lines
from edge_agent.sources.streams.tcp import TcpListenerAcquirer
from shared.errors import ConfigError

MODES = ("local", "push", "both")
DEFAULT_PORT = 2007
DEFAULT_LISTEN_HOST = "127.0.0.1"  # loopback unless configured: a listener is opened on purpose
DEFAULT_LISTEN_PORT = 2007


@dataclass(frozen=True, slots=True)
class Settings:
    mode: str
    host: str
    port: int
    listen_host: str
    listen_port: int
    push_allowed_peers: frozenset[str]
    pad: str
    idle_timeout: timedelta
    max_open_calls: int
    reconnect: ReconnectOptions


def read_settings(ctx: SourceContext, options: Mapping[str, Any]) -> Settings:
    reader = OptionReader(ctx, options)
    mode = reader.string("mode", "local")
    if mode not in MODES:
        raise ConfigError(
            reader.key("mode"), f"{mode!r} is not a mode", f"use one of: {', '.join(MODES)}"
        )
    host = reader.string("host", "")
    pad = reader.string("pad_character", DEFAULT_PAD)
    if len(pad) != 1 or pad == PIPE or not pad.isprintable():
        raise ConfigError(
            reader.key("pad_character"),
            f"{pad!r} is not one printable character other than '|'",
            'set it to the item padding character configured in MCS (default "0"; a space is best)',
        )
    peers = _peers(reader, host)
    settings = Settings(
        mode=mode,
        host=host,
        port=reader.integer("port", DEFAULT_PORT, minimum=1, maximum=65535),
        listen_host=reader.string("listen_host", DEFAULT_LISTEN_HOST),
        listen_port=reader.integer("listen_port", DEFAULT_LISTEN_PORT, minimum=0, maximum=65535),
        push_allowed_peers=peers,
        pad=pad,
        idle_timeout=timedelta(
            seconds=reader.integer(
                "idle_timeout_seconds",
                int(DEFAULT_IDLE_TIMEOUT.total_seconds()),
                minimum=60,
                maximum=7 * 86400,
            )
        ),
        max_open_calls=reader.integer(
            "max_open_calls", DEFAULT_MAX_OPEN_CALLS, minimum=100, maximum=10_000_000
        ),
        reconnect=read_reconnect_options(reader),
    )
    reader.finish()
    return settings


def _peers(reader: OptionReader, host: str) -> frozenset[str]:
    """IP addresses allowed to push; a host name cannot be checked against a peer address."""
    items = reader.string_list("push_allowed_peers", [host] if host else [])
    peers: set[str] = set()
    for item in items:
        try:
            peers.add(str(ipaddress.ip_address(item)))
        except ValueError as exc:
            raise ConfigError(
                reader.key("push_allowed_peers"),
                f"{item!r} is not an IP address (push connections are checked by address)",
                'list the MCS server\'s IP addresses, e.g. push_allowed_peers = ["192.0.2.10"]',
            ) from exc
    return frozenset(peers)


def make_parser(ctx: SourceContext, options: Mapping[str, Any]) -> ParserKit:
    settings = read_settings(ctx, options)
    return ParserKit(parser=_parser(ctx, settings), file_framer=split_lines)


def _parser(ctx: SourceContext, settings: Settings) -> IpSmdrParser:
    return IpSmdrParser(
        ctx,
        pad=settings.pad,
        idle_timeout=settings.idle_timeout,
        max_open_calls=settings.max_open_calls,
    )


def make_source(ctx: SourceContext, options: Mapping[str, Any]) -> Source:
    settings = read_settings(ctx, options)
    backoff = settings.reconnect.backoff()
    members: list[Acquirer] = []
    names: list[str] = []
    if settings.mode in ("local", "both"):
        if not settings.host:
            raise ConfigError(
                f"sources.{ctx.source_id}.host",
                "is missing (local mode connects to MCS)",
                'set host = "ADDRESS" to the MCS server, or mode = "push"',
            )
        members.append(
            settings.reconnect.client(host=settings.host, port=settings.port, backoff=backoff)
        )
        names.append(f"{ctx.source_id}-local")
    if settings.mode in ("push", "both"):
        if not settings.push_allowed_peers:
            raise ConfigError(
                f"sources.{ctx.source_id}.push_allowed_peers",
                "is empty, so no MCS could push to the agent",
                "set host or push_allowed_peers to the MCS server's IP address",
            )
        members.append(
            TcpListenerAcquirer(
                host=settings.listen_host,
                port=settings.listen_port,
                allowed_peers=settings.push_allowed_peers,
                idle_timeout=settings.reconnect.idle_timeout,
                backoff=backoff,
            )
        )
        names.append(f"{ctx.source_id}-push")
    acquirer: Acquirer = members[0] if len(members) == 1 else AcquirerGroup(members, names=names)
    return Source(
        ctx=ctx,
        kind=KIND,
        parser=_parser(ctx, settings),
        acquirer=acquirer,
        file_framer=split_lines,
        description=_describe(settings),
        settings={
            "mode": settings.mode,
            "host": settings.host,
            "port": settings.port,
            "listen": f"{settings.listen_host}:{settings.listen_port}",
            "pad_character": settings.pad,
            "idle_timeout_seconds": int(settings.idle_timeout.total_seconds()),
        },
    )


def _describe(settings: Settings) -> str:
    parts = []
    if settings.mode in ("local", "both"):
        parts.append(f"connects to {settings.host}:{settings.port}")
    if settings.mode in ("push", "both"):
        parts.append(f"listens on {settings.listen_host}:{settings.listen_port}")
    return f"MCS IP SMDR ({' and '.join(parts)})"
