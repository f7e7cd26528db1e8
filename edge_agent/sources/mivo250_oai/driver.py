"""MiVoice Office 250 System OAI source: call events (or SMR SMDR text) over the OAI socket.

Contract (formats.md §5):

- The acquirer connects to the PBX (port 4000 by default), logs in (length-prefixed packet type
  0x87, password, NUL, application name, NUL), starts a Call Termination monitor
  (``_MS,1,,8``), a trunk monitor (``_MS,2,,4``, for ring/answer/hold events) unless
  ``monitor_trunks = false``, and with ``calls_from = "smr"`` a system monitor (``_MS,3,,11``
  plus ``system_monitor_filter``) for SMR events. It sends ``_NO`` every ``keepalive_seconds``;
  ``keepalive_missed_limit`` unanswered keep-alives in a row drop the connection as dead.
- Every frame the PBX sends is one journal unit (payload without its length prefix), except the
  confirmations of the agent's own keep-alives, which are link traffic. A ``PE`` (ports
  exceeded: too many OAI clients) frame is journalled, reported, and the agent backs off and
  reconnects; so does an out-of-range length prefix. A close within 2 s of login is reported as
  a refused password.
- Parsing is ``mivo250_oai_calls.OaiParser`` on top of the one decoding layer
  ``mivo250_oai_wire``: unknown events are quarantined as ``unknown_event`` with their raw bytes
  and counted, never dropped.
- `edge-agent parse mivo250-oai FILE` reads captured frames as text lines (no length prefixes)
  and prints the calls built from them.

Options: ``host`` (required to run), ``port`` (4000), ``password`` (empty), ``app_name``
(callcollect), ``calls_from`` (events | smr), ``monitor_trunks`` (true),
``system_monitor_filter`` (empty), ``keepalive_seconds`` (30), ``keepalive_missed_limit`` (3),
``idle_timeout_seconds`` (14400), ``max_open_calls`` (100000), ``connect_timeout_seconds``
(10), ``reconnect_min_seconds`` (1), ``reconnect_max_seconds`` (60).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from edge_agent.sources.base import ParserKit, Source, SourceContext
from edge_agent.sources.mivo250_oai.calls import (
    CALLS_FROM,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_OPEN_CALLS,
    KIND,
    OaiParser,
)
from edge_agent.sources.mivo250_oai.wire import (
    CONFIRMATION,
    MONITOR_ALL_TRUNKS,
    MONITOR_CALL_TERMINATION,
    MONITOR_SYSTEM,
    PORTS_EXCEEDED,
    OaiEvent,
    decode_event,
    monitor_start,
    no_operation,
)
from edge_agent.sources.mivo250_socket.framing import (
    MAX_OAI_FRAME,
    MAX_PASSWORD,
    MIN_OAI_FRAME,
    OAI_SOCKET_TYPE,
    FrameDecoder,
    StreamFault,
    encode_frame,
)
from edge_agent.sources.mivo250_socket.link import RestartingAcquirer, login_handshake
from edge_agent.sources.options import OptionReader, ReconnectOptions, read_reconnect_options
from edge_agent.sources.streams.lines import split_lines
from shared.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_PORT = 4000
DEFAULT_APP_NAME = "callcollect"
DEFAULT_KEEPALIVE_SECONDS = 30.0
DEFAULT_KEEPALIVE_MISSED_LIMIT = 3
KEEPALIVE_POLL_SECONDS = 1.0  # how soon the keep-alive thread sees its link closed; idle wake-ups
FIRST_KEEPALIVE_INVOKE_ID = 100


@dataclass(frozen=True, slots=True)
class Settings:
    host: str
    port: int
    password: str
    app_name: str
    calls_from: str
    monitor_trunks: bool
    system_monitor_filter: str
    keepalive_seconds: float
    keepalive_missed_limit: int
    idle_timeout: timedelta
    max_open_calls: int
    reconnect: ReconnectOptions

    def monitors(self) -> list[bytes]:
        """The Monitor Start commands sent right after login."""
        commands = [monitor_start(1, MONITOR_CALL_TERMINATION)]
        if self.monitor_trunks:
            commands.append(monitor_start(2, MONITOR_ALL_TRUNKS))
        if self.calls_from == "smr":
            commands.append(monitor_start(3, MONITOR_SYSTEM, filters=self.system_monitor_filter))
        return commands


def read_settings(ctx: SourceContext, options: Mapping[str, Any]) -> Settings:
    reader = OptionReader(ctx, options)
    calls_from = reader.string("calls_from", "events")
    if calls_from not in CALLS_FROM:
        raise ConfigError(
            reader.key("calls_from"),
            f"{calls_from!r} is not a call path",
            'use "events" (calls built from call events) or "smr" (SMDR text in SMR events)',
        )
    settings = Settings(
        host=reader.string("host", ""),
        port=reader.integer("port", DEFAULT_PORT, minimum=1, maximum=65535),
        password=reader.string("password", "", max_length=MAX_PASSWORD),
        app_name=reader.string("app_name", DEFAULT_APP_NAME, max_length=32),
        calls_from=calls_from,
        monitor_trunks=reader.boolean("monitor_trunks", True),
        system_monitor_filter=reader.string("system_monitor_filter", "", max_length=64),
        keepalive_seconds=reader.number(
            "keepalive_seconds", DEFAULT_KEEPALIVE_SECONDS, minimum=0.05, maximum=3600
        ),
        keepalive_missed_limit=reader.integer(
            "keepalive_missed_limit", DEFAULT_KEEPALIVE_MISSED_LIMIT, minimum=1, maximum=100
        ),
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
        reconnect=read_reconnect_options(reader, idle_reconnect=None),
    )
    reader.finish()
    for name in ("password", "app_name"):
        value = getattr(settings, name)
        if not value.isascii() or "\x00" in value:
            raise ConfigError(
                reader.key(name),
                "holds a character the login packet cannot carry",
                "use printable ASCII characters only",
            )
    return settings


# --- the link: keep-alives out, their confirmations in ----------------------------------------


@dataclass(slots=True)
class _Session:
    """One connection's keep-alive bookkeeping, shared by the framer and the keep-alive thread."""

    sock: socket.socket
    outstanding: set[str] = field(default_factory=set)  # invoke ids of unanswered _NO
    lock: threading.Lock = field(default_factory=threading.Lock)


class OaiLink:
    """Builds, per connection, the login hook, the framer and the keep-alive thread.

    ``TcpClientAcquirer`` calls the handshake and then the framer factory for each connection in
    turn, in its own thread, so the framer can find the session the handshake just opened.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._session: _Session | None = None
        self._invoke_ids = itertools.count(FIRST_KEEPALIVE_INVOKE_ID)
        self.handshake = login_handshake(
            service="OAI",
            socket_type=OAI_SOCKET_TYPE,
            password=settings.password,
            app_name=settings.app_name,
            after_login=self._after_login,
        )

    def _after_login(self, sock: socket.socket) -> None:
        for command in self._settings.monitors():
            sock.sendall(encode_frame(command))
        session = _Session(sock=sock)
        self._session = session
        threading.Thread(
            target=self._keepalive, args=(session,), name="oai-keepalive", daemon=True
        ).start()

    def framer(self) -> OaiFramer:
        if self._session is None:
            raise RuntimeError("the OAI framer is made after a login")  # pragma: no cover
        return OaiFramer(self._session)

    def _keepalive(self, session: _Session) -> None:
        """Send _NO every interval until the socket is closed; drop a link that stopped answering."""
        interval = self._settings.keepalive_seconds
        next_at = time.monotonic() + interval
        while session.sock.fileno() >= 0:
            time.sleep(min(KEEPALIVE_POLL_SECONDS, interval))
            if time.monotonic() < next_at:
                continue
            next_at += interval
            with session.lock:
                missed = len(session.outstanding)
            if missed >= self._settings.keepalive_missed_limit:
                log.warning("OAI link dead: %d keep-alives unanswered; reconnecting", missed)
                with contextlib.suppress(OSError):
                    session.sock.shutdown(socket.SHUT_RDWR)
                return
            invoke_id = str(next(self._invoke_ids))
            with session.lock:
                session.outstanding.add(invoke_id)
            try:
                session.sock.sendall(encode_frame(no_operation(int(invoke_id))))
            except OSError:
                return  # closed under us: the acquirer is reconnecting or stopping


class OaiFramer:
    """Length-prefixed frames in; keep-alive confirmations consumed; ``PE`` ends the session."""

    def __init__(self, session: _Session) -> None:
        self._session = session
        self._decoder = FrameDecoder(
            min_frame=MIN_OAI_FRAME, max_frame=MAX_OAI_FRAME, service="OAI"
        )

    def feed(self, chunk: bytes) -> list[bytes]:
        units: list[bytes] = []
        for frame in self._decoder.feed(chunk):
            event = decode_event(frame)
            if isinstance(event, OaiEvent) and self._is_keepalive_reply(event):
                continue
            units.append(frame)
            if isinstance(event, OaiEvent) and event.code == PORTS_EXCEEDED:
                raise StreamFault(
                    "the PBX refused the OAI session with PE (ports exceeded): too many OAI "
                    "clients are connected; close another OAI application (MCS, CTI) or raise "
                    "the PBX's OAI session limit",
                    units=units,
                )
        return units

    def _is_keepalive_reply(self, event: OaiEvent) -> bool:
        if event.code != CONFIRMATION or event.fields.get("command", "").lstrip("_") != "NO":
            return False
        with self._session.lock:
            invoke_id = event.fields.get("invoke_id", "")
            if invoke_id not in self._session.outstanding:
                return False
            self._session.outstanding.clear()  # an answer proves the link is alive
            return True

    @property
    def pending(self) -> bytes:
        return self._decoder.pending


# --- factories ------------------------------------------------------------------------------------


def _parser(ctx: SourceContext, settings: Settings) -> OaiParser:
    return OaiParser(
        ctx,
        calls_from=settings.calls_from,
        idle_timeout=settings.idle_timeout,
        max_open_calls=settings.max_open_calls,
    )


def make_parser(ctx: SourceContext, options: Mapping[str, Any]) -> ParserKit:
    return ParserKit(parser=_parser(ctx, read_settings(ctx, options)), file_framer=split_lines)


def make_source(ctx: SourceContext, options: Mapping[str, Any]) -> Source:
    settings = read_settings(ctx, options)
    if not settings.host:
        raise ConfigError(
            f"sources.{ctx.source_id}.host",
            "is missing",
            'set host = "ADDRESS" to the MiVoice Office 250 (System OAI, port 4000)',
        )
    backoff = settings.reconnect.backoff()
    link = OaiLink(settings)
    tcp = settings.reconnect.client(
        host=settings.host,
        port=settings.port,
        framer_factory=link.framer,
        handshake=link.handshake,
        backoff=backoff,
    )
    return Source(
        ctx=ctx,
        kind=KIND,
        parser=_parser(ctx, settings),
        acquirer=RestartingAcquirer(tcp, backoff=backoff),
        file_framer=split_lines,
        description=f"MiVoice Office 250 System OAI at {settings.host}:{settings.port} "
        f"(calls from {settings.calls_from})",
        settings={
            "host": settings.host,
            "port": settings.port,
            "calls_from": settings.calls_from,
            "monitor_trunks": settings.monitor_trunks,
            "keepalive_seconds": settings.keepalive_seconds,
        },
    )
