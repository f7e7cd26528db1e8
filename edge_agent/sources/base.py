"""The small interface every PBX source driver implements.

A driver is two halves, kept apart so parsing is testable from bytes alone:

- an ``Acquirer`` talks to the PBX (TCP client or listener, ODBC poll) and hands every raw unit
  (SMDR line, IP SMDR event line, OAI frame, LcsCDR row) to a ``UnitSink``. The sink journals
  the unit and fsyncs it *before* returning; only then may the acquirer acknowledge upstream or
  advance a watermark. The acquirer never touches the spool or the clock directly: the sink and
  ``clock`` are passed in.
- a ``RecordParser`` turns raw units into ``ICDR`` values or ``Quarantined`` results. It is a pure
  function of the bytes and the site settings (event-stream parsers keep per-call state, which
  ``flush`` closes out). It never raises on bad input: every unit ends up parsed or quarantined.

Drivers register in ``edge_agent.sources.registry``; each module exposes
``make_source(ctx, options) -> Source`` (everything, connection included) and
``make_parser(ctx, options) -> ParserKit`` (parsing only: `edge-agent parse` uses it on capture
files, so connection options are not needed). Both raise ``ConfigError`` naming
``sources.<id>.<key>`` for a bad option.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from shared.errors import AgentStateError
from shared.icdr import ICDR


@dataclass(frozen=True, slots=True)
class SourceContext:
    """What a driver may know about where it runs."""

    agent_id: str
    source_id: str
    timezone: ZoneInfo
    # The journal position from which this source's records use record-id scheme 2 (the
    # journal's ``line_ids_from``); None: scheme 1 for every unit, what a parser not fed from the
    # source's journal (a capture preview) uses. Only drivers whose record is one journalled
    # unit (MiVB SMDR) read it.
    line_ids_from: int | None = None


@dataclass(frozen=True, slots=True)
class RawUnit:
    """One unit exactly as the PBX delivered it, with its journal position."""

    source_id: str
    seq: int  # journal sequence number: monotonic per source, stable across restarts
    received_at: datetime  # UTC
    data: bytes


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A unit that did not parse. Never dropped: it is stored with its reason and raw bytes."""

    source_id: str
    seq: int
    reason: str  # short machine code, e.g. "not_a_record", "layout_mismatch", "bad_time"
    detail: str  # one sentence for a person
    raw: bytes


ParseResult = ICDR | Quarantined


class RecordParser(Protocol):
    """Raw units in, ICDRs or quarantined units out."""

    kind: str
    parser_version: str

    def feed(self, unit: RawUnit) -> list[ParseResult]:
        """Parse one unit. Stateless formats return at most one result per unit."""
        ...

    def flush(self, now: datetime) -> list[ParseResult]:
        """Emit whatever open state is complete or timed out by ``now`` (event streams)."""
        ...

    # Optional, for parsers that hold calls open across units (event streams):
    #     def oldest_needed_seq(self) -> int | None
    # the lowest journal seq an open call still needs. The pipeline replays the journal from
    # there on restart (results discarded up to its cursor) and never prunes above it.


class SinkUnavailable(AgentStateError):
    """The sink could not make the units durable (the journal's disk is full or failing).

    Nothing of them was kept: the acquirer holds the units it read and delivers them again
    (``edge_agent.sources.streams.tcp``), instead of dropping them with the connection.
    """

    exit_code = 9


class UnitSink(Protocol):
    """Where an acquirer delivers raw units: the journal, then the parser and the spool."""

    def deliver(self, data: Sequence[bytes], *, received_at: datetime) -> None:
        """Journal and fsync every unit, then parse and spool them; returns once durable."""
        ...

    def report(self, *, ok: bool, message: str = "", records: int = 0) -> None:
        """Record the outcome of one poll or connection attempt for health reporting (best
        effort: a report the spool cannot take is logged, never raised)."""
        ...

    def get_state(self, key: str) -> str | None:
        """A small value the driver persisted with the spool (e.g. a poll watermark)."""
        ...

    def set_state(self, key: str, value: str) -> None:
        """Persist a small value durably, in the same store as the spooled records."""
        ...

    def may_read(self) -> bool:
        """False when the spool is full: stop reading and let the PBX buffer."""
        ...


class Acquirer(Protocol):
    """Talks to the PBX and delivers raw units until ``stop`` is set."""

    def run(self, sink: UnitSink, stop: threading.Event) -> None: ...


class FileFramer(Protocol):
    """Splits a captured file (as the PBX sends it, without socket framing) into raw units."""

    def __call__(self, data: bytes) -> Iterable[bytes]: ...


@dataclass(frozen=True, slots=True)
class ParserKit:
    """What `edge-agent parse` needs: a parser and how to split a capture file into units."""

    parser: RecordParser
    file_framer: FileFramer
    notes: tuple[str, ...] = ()  # what the framer assumes, printed on stderr by `parse`


@dataclass(slots=True)
class Source:
    """A configured source: its parser, how it acquires units, and how to read a capture file."""

    ctx: SourceContext
    kind: str
    parser: RecordParser
    acquirer: Acquirer | None
    file_framer: FileFramer
    description: str = ""
    settings: dict[str, object] = field(default_factory=dict)
