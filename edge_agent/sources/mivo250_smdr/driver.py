"""MiVoice Office 250 / Mitel 5000 / Inter-Tel Axxess SMDR socket source (formats.md §4).

Contract:

- The acquirer connects to the PBX (the PBX is the server; port 4000 by default), logs in with a
  length-prefixed packet of type 0x84 and the socket password, then reads length-prefixed
  records, whatever the TCP segmentation. Each record's payload (text + CR LF, exactly as sent)
  is one journal unit. A connection closed within 2 s of login is reported as a refused
  password; a length prefix outside 3..1024 is reported as a framing error, the bytes are
  journalled (and quarantined) and the agent reconnects and logs in again after a back-off.
- ``Mivo250SmdrParser.feed`` returns exactly one result per unit: an ICDR (record id = agent,
  source, journal seq and SHA-256 of the line) or a ``Quarantined`` unit. It never raises.
  Column headers (``TYP ...``) and blank lines are quarantined as ``header_line`` /
  ``blank_line`` (kept, never dropped); see ``mivo250_smdr_record`` for the record rules.
- `edge-agent parse mivo250-smdr FILE` reads a capture of the text lines (no length prefixes).

Options (``[sources.options]``): ``host`` (required to run), ``port`` (4000), ``password``
(empty; at most 15 ASCII characters), ``connect_timeout_seconds`` (10), ``reconnect_min_seconds``
(1), ``reconnect_max_seconds`` (60), ``idle_reconnect_seconds`` (0 = never; the PBX is silent
while no call ends).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from edge_agent.sources.base import ParseResult, ParserKit, RawUnit, Source, SourceContext
from edge_agent.sources.mivo250_smdr.record import (
    RecordOrigin,
    clean_text,
    read_record,
    record_to_icdr,
)
from edge_agent.sources.mivo250_socket.framing import (
    MAX_PASSWORD,
    MAX_SMDR_FRAME,
    MIN_SMDR_FRAME,
    SMDR_SOCKET_TYPE,
    FrameDecoder,
)
from edge_agent.sources.mivo250_socket.link import RestartingAcquirer, login_handshake
from edge_agent.sources.options import OptionReader, ReconnectOptions, read_reconnect_options
from edge_agent.sources.rejection import Rejection, quarantine
from edge_agent.sources.streams.lines import split_lines
from shared.errors import ConfigError, ICDRValidationError

KIND = "mivo250-smdr"
PARSER_VERSION = f"{KIND}/1"
DEFAULT_PORT = 4000


class Mivo250SmdrParser:
    """One SMDR record in, one ICDR or one quarantined unit out."""

    kind = KIND
    parser_version = PARSER_VERSION

    def __init__(self, ctx: SourceContext) -> None:
        self._ctx = ctx

    def feed(self, unit: RawUnit) -> list[ParseResult]:
        text = clean_text(unit.data)
        record = read_record(text)
        if isinstance(record, Rejection):
            return [quarantine(unit, record)]
        origin = RecordOrigin(
            ctx=self._ctx,
            kind=KIND,
            parser_version=PARSER_VERSION,
            seq=unit.seq,
            received_at=unit.received_at,
            raw=text,
            extra={},
        )
        try:
            return [record_to_icdr(record, origin)]
        except ICDRValidationError as exc:
            return [quarantine(unit, Rejection("invalid_record", str(exc)))]

    def flush(self, now: datetime) -> list[ParseResult]:
        return []  # one record per call: nothing is ever held back


@dataclass(frozen=True, slots=True)
class Settings:
    host: str
    port: int
    password: str
    reconnect: ReconnectOptions


def read_settings(ctx: SourceContext, options: Mapping[str, Any]) -> Settings:
    reader = OptionReader(ctx, options)
    settings = Settings(
        host=reader.string("host", ""),
        port=reader.integer("port", DEFAULT_PORT, minimum=1, maximum=65535),
        password=reader.string("password", "", max_length=MAX_PASSWORD),
        reconnect=read_reconnect_options(reader),
    )
    reader.finish()
    if not settings.password.isascii() or "\x00" in settings.password:
        raise ConfigError(
            reader.key("password"),
            "holds a character the login packet cannot carry",
            "use printable ASCII characters only, as programmed under System > Sockets",
        )
    return settings


def make_parser(ctx: SourceContext, options: Mapping[str, Any]) -> ParserKit:
    read_settings(ctx, options)
    return ParserKit(parser=Mivo250SmdrParser(ctx), file_framer=split_lines)


def make_source(ctx: SourceContext, options: Mapping[str, Any]) -> Source:
    settings = read_settings(ctx, options)
    if not settings.host:
        raise ConfigError(
            f"sources.{ctx.source_id}.host",
            "is missing",
            'set host = "ADDRESS" to the MiVoice Office 250 that serves SMDR (port 4000)',
        )
    backoff = settings.reconnect.backoff()
    tcp = settings.reconnect.client(
        host=settings.host,
        port=settings.port,
        framer_factory=partial(
            FrameDecoder, min_frame=MIN_SMDR_FRAME, max_frame=MAX_SMDR_FRAME, service="SMDR"
        ),
        handshake=login_handshake(
            service="SMDR", socket_type=SMDR_SOCKET_TYPE, password=settings.password
        ),
        backoff=backoff,
    )
    return Source(
        ctx=ctx,
        kind=KIND,
        parser=Mivo250SmdrParser(ctx),
        acquirer=RestartingAcquirer(tcp, backoff=backoff),
        file_framer=split_lines,
        description=f"MiVoice Office 250 SMDR socket at {settings.host}:{settings.port}",
        settings={
            "host": settings.host,
            "port": settings.port,
            "password_set": bool(settings.password),
        },
    )
