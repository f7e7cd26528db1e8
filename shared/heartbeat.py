"""The heartbeat document: what an agent says about its own health on every uplink session.

Contract:

- One JSON object (UTF-8, at most ``MAX_HEARTBEAT_BYTES``), ``format`` = ``"callcollect-heartbeat"``
  and ``version`` = ``HEARTBEAT_VERSION``. docs/health.md describes every field.
- The agent uploads one per uplink session, records or not, as
  ``heartbeats/AGENT-YYYYMMDDTHHMMSSmmmZ.json`` (``heartbeat_file_name``) beside ``incoming/``,
  through ``NAME.part`` and a rename, so the data centre never reads a partial file. A heartbeat
  the agent could not send is kept and sent late with the next session; ``sent_at`` is when it
  was written, so the data centre can see it arrived late.
- ``parse_heartbeat`` accepts exactly what ``Heartbeat.to_json`` writes, and raises
  ``ValidationError`` naming the field for anything else (never another exception). Fields it
  does not know are ignored, so an agent may add fields within version 1; a higher version is
  refused, never guessed at.
- Times are timezone-aware UTC, written as ISO 8601 with ``Z``; counts are non-negative.

Both sides import this module: the agent writes documents, the data centre reads them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from shared.errors import ValidationError
from shared.icdr import format_time

FORMAT_NAME = "callcollect-heartbeat"
HEARTBEAT_VERSION = 1
HEARTBEAT_FOLDER = "heartbeats"  # beside incoming/ in the tenant's landing folder
SUFFIX = ".json"
MAX_HEARTBEAT_BYTES = 256 * 1024
MAX_SOURCES = 256
MAX_MESSAGE = 1000  # error messages are cut to this many characters
SPOOL_LEVELS = ("ok", "warning", "critical", "full")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # as shared.envelope's agent ids
_NAME_RE = re.compile(
    r"^(?P<agent>[A-Za-z0-9][A-Za-z0-9_.-]{0,63})-(?P<ts>\d{8}T\d{6}\d{3}Z)\.json$"
)
_NAME_TIME = "%Y%m%dT%H%M%S"


class AgentState(StrEnum):
    RUNNING = "running"
    STOPPING = "stopping"  # the last heartbeat of an orderly shutdown


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """One source's last poll or connection outcome and its counters since the agent started."""

    source_id: str
    kind: str
    ok: bool  # the last outcome
    message: str = ""  # the error of the last outcome, "" when ok
    at: datetime | None = None  # when the last outcome happened
    last_ok_at: datetime | None = None
    last_record_at: datetime | None = None  # start time of the newest record parsed
    records: int = 0  # records parsed since the agent started
    attempts: int = 0  # polls or connections since the agent started
    failures_in_a_row: int = 0
    reconnects: int = 0  # connections re-established after a failure


@dataclass(frozen=True, slots=True)
class SpoolStatus:
    used_bytes: int
    quota_bytes: int
    level: str  # one of SPOOL_LEVELS (edge_agent.spool.SpoolLevel)

    @property
    def percent(self) -> float:
        return 100.0 * self.used_bytes / self.quota_bytes if self.quota_bytes else 0.0


@dataclass(frozen=True, slots=True)
class UplinkStatus:
    """The uplink as the agent saw it before this session (failures are the ones before it)."""

    last_ok_at: datetime | None = None
    failures_in_a_row: int = 0
    last_error: str = ""
    last_sequence_sent: int | None = None  # highest batch number uploaded


@dataclass(frozen=True, slots=True)
class Heartbeat:
    agent_id: str
    tenant: str
    sent_at: datetime  # agent clock, when the document was written
    agent_version: str
    started_at: datetime
    interval_seconds: int  # seconds until the agent's next planned session: when to expect one
    state: AgentState = AgentState.RUNNING
    clock_offset_seconds: float | None = None  # server clock minus agent clock; None: unmeasured
    spool: SpoolStatus = SpoolStatus(used_bytes=0, quota_bytes=0, level="ok")
    disk_free_bytes: int = 0
    disk_total_bytes: int = 0
    unbatched_records: int = 0  # spooled ICDRs not yet sealed into a batch
    unsent_batches: int = 0  # sealed batches not yet uploaded
    oldest_unsent_at: datetime | None = None
    uplink: UplinkStatus = UplinkStatus()
    sources: tuple[SourceStatus, ...] = field(default_factory=tuple)

    @property
    def uptime_seconds(self) -> float:
        return max(0.0, (self.sent_at - self.started_at).total_seconds())

    def source(self, source_id: str) -> SourceStatus | None:
        return next((s for s in self.sources if s.source_id == source_id), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "version": HEARTBEAT_VERSION,
            "agent_id": self.agent_id,
            "tenant": self.tenant,
            "sent_at": format_time(self.sent_at),
            "state": self.state.value,
            "agent_version": self.agent_version,
            "started_at": format_time(self.started_at),
            "uptime_seconds": round(self.uptime_seconds, 3),
            "interval_seconds": self.interval_seconds,
            "clock_offset_seconds": self.clock_offset_seconds,
            "spool": {
                "used_bytes": self.spool.used_bytes,
                "quota_bytes": self.spool.quota_bytes,
                "percent": round(self.spool.percent, 2),
                "level": self.spool.level,
            },
            "disk": {"free_bytes": self.disk_free_bytes, "total_bytes": self.disk_total_bytes},
            "backlog": {
                "unbatched_records": self.unbatched_records,
                "unsent_batches": self.unsent_batches,
                "oldest_unsent_at": _time_or_none(self.oldest_unsent_at),
            },
            "uplink": {
                "last_ok_at": _time_or_none(self.uplink.last_ok_at),
                "failures_in_a_row": self.uplink.failures_in_a_row,
                "last_error": self.uplink.last_error,
                "last_sequence_sent": self.uplink.last_sequence_sent,
            },
            "sources": [_source_dict(s) for s in self.sources],
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), sort_keys=True).encode("ascii")


def heartbeat_file_name(agent_id: str, sent_at: datetime) -> str:
    """``AGENT-20260303T140000123Z.json``: sorts by time within an agent, never reused."""
    utc = sent_at.astimezone(UTC)
    name = f"{agent_id}-{utc.strftime(_NAME_TIME)}{utc.microsecond // 1000:03d}Z{SUFFIX}"
    if not _NAME_RE.match(name):
        raise ValueError(f"agent id {agent_id!r} cannot form a heartbeat file name")
    return name


def parse_heartbeat_file_name(name: str) -> tuple[str, datetime] | None:
    """(agent_id, sent_at to the millisecond) of a heartbeat file name, or None."""
    match = _NAME_RE.match(name)
    if not match:
        return None
    stamp = match["ts"]
    try:
        base = datetime.strptime(stamp[:15], _NAME_TIME).replace(tzinfo=UTC)
    except ValueError:
        return None
    return match["agent"], base.replace(microsecond=int(stamp[15:18]) * 1000)


def parse_heartbeat(data: bytes | str) -> Heartbeat:
    """Validate and decode one document; ``ValidationError`` names the first bad field."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if len(raw) > MAX_HEARTBEAT_BYTES:
        raise ValidationError("document", f"{len(raw)} bytes, more than {MAX_HEARTBEAT_BYTES}")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValidationError("document", f"not UTF-8 JSON: {exc}") from exc
    obj = _Reader(doc, "")
    if obj.get("format", str) != FORMAT_NAME:
        raise ValidationError("format", f"expected {FORMAT_NAME!r}")
    version = obj.get("version", int)
    if version != HEARTBEAT_VERSION:
        raise ValidationError(
            "version", f"{version} is not supported (this build reads {HEARTBEAT_VERSION})"
        )
    agent_id = obj.get("agent_id", str)
    if not _ID_RE.match(agent_id):
        raise ValidationError("agent_id", f"{agent_id!r} is not a valid agent id")
    state = obj.get("state", str)
    if state not in {s.value for s in AgentState}:
        raise ValidationError("state", f"{state!r} is not one of running, stopping")
    spool, disk, backlog, uplink = (
        obj.child(name) for name in ("spool", "disk", "backlog", "uplink")
    )
    level = spool.get("level", str)
    if level not in SPOOL_LEVELS:
        raise ValidationError("spool.level", f"{level!r} is not one of {', '.join(SPOOL_LEVELS)}")
    sources = obj.get("sources", list)
    if len(sources) > MAX_SOURCES:
        raise ValidationError("sources", f"more than {MAX_SOURCES} sources")
    parsed_sources = tuple(_source(_Reader(s, f"sources[{i}].")) for i, s in enumerate(sources))
    if len({s.source_id for s in parsed_sources}) != len(parsed_sources):
        raise ValidationError("sources", "a source id appears twice")
    return Heartbeat(
        agent_id=agent_id,
        tenant=obj.get("tenant", str),
        sent_at=obj.time("sent_at"),
        agent_version=obj.get("agent_version", str),
        started_at=obj.time("started_at"),
        interval_seconds=obj.count("interval_seconds"),
        state=AgentState(state),
        clock_offset_seconds=obj.number_or_none("clock_offset_seconds"),
        spool=SpoolStatus(
            used_bytes=spool.count("used_bytes"),
            quota_bytes=spool.count("quota_bytes"),
            level=level,
        ),
        disk_free_bytes=disk.count("free_bytes"),
        disk_total_bytes=disk.count("total_bytes"),
        unbatched_records=backlog.count("unbatched_records"),
        unsent_batches=backlog.count("unsent_batches"),
        oldest_unsent_at=backlog.time_or_none("oldest_unsent_at"),
        uplink=UplinkStatus(
            last_ok_at=uplink.time_or_none("last_ok_at"),
            failures_in_a_row=uplink.count("failures_in_a_row"),
            last_error=uplink.get("last_error", str),
            last_sequence_sent=uplink.count_or_none("last_sequence_sent"),
        ),
        sources=parsed_sources,
    )


def _source(obj: _Reader) -> SourceStatus:
    source_id = obj.get("source_id", str)
    if not source_id:
        raise ValidationError(obj.prefix + "source_id", "is empty")
    return SourceStatus(
        source_id=source_id,
        kind=obj.get("kind", str),
        ok=obj.get("ok", bool),
        message=obj.get("message", str),
        at=obj.time_or_none("at"),
        last_ok_at=obj.time_or_none("last_ok_at"),
        last_record_at=obj.time_or_none("last_record_at"),
        records=obj.count("records"),
        attempts=obj.count("attempts"),
        failures_in_a_row=obj.count("failures_in_a_row"),
        reconnects=obj.count("reconnects"),
    )


def _source_dict(s: SourceStatus) -> dict[str, Any]:
    return {
        "source_id": s.source_id,
        "kind": s.kind,
        "ok": s.ok,
        "message": s.message[:MAX_MESSAGE],
        "at": _time_or_none(s.at),
        "last_ok_at": _time_or_none(s.last_ok_at),
        "last_record_at": _time_or_none(s.last_record_at),
        "records": s.records,
        "attempts": s.attempts,
        "failures_in_a_row": s.failures_in_a_row,
        "reconnects": s.reconnects,
    }


def _time_or_none(value: datetime | None) -> str | None:
    return None if value is None else format_time(value)


class _Reader:
    """Typed access to one JSON object; every problem becomes a ValidationError on its path."""

    def __init__(self, doc: Any, prefix: str) -> None:
        if not isinstance(doc, dict):
            raise ValidationError(prefix.rstrip(".") or "document", "expected a JSON object")
        self.doc: Mapping[str, Any] = doc
        self.prefix = prefix

    def _raw(self, name: str) -> Any:
        if name not in self.doc:
            raise ValidationError(self.prefix + name, "is missing")
        return self.doc[name]

    def get(self, name: str, kind: type[Any]) -> Any:
        value = self._raw(name)
        # bool is an int in Python; JSON keeps them apart, and so do we.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ValidationError(
                self.prefix + name, f"expected {kind.__name__}, got {type(value).__name__}"
            )
        return value

    def child(self, name: str) -> _Reader:
        return _Reader(self._raw(name), f"{self.prefix}{name}.")

    def count(self, name: str) -> int:
        value: int = self.get(name, int)
        if value < 0:
            raise ValidationError(self.prefix + name, f"{value} is negative")
        return value

    def count_or_none(self, name: str) -> int | None:
        return None if self._raw(name) is None else self.count(name)

    def number_or_none(self, name: str) -> float | None:
        value = self._raw(name)
        if value is None:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ValidationError(self.prefix + name, f"expected a finite number, got {value!r}")
        return float(value)

    def time(self, name: str) -> datetime:
        text = self.get(name, str)
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValidationError(self.prefix + name, f"not an ISO 8601 time: {text!r}") from exc
        if parsed.tzinfo is None:
            raise ValidationError(self.prefix + name, "has no UTC offset")
        try:
            return parsed.astimezone(UTC)
        except OverflowError as exc:
            raise ValidationError(self.prefix + name, f"out of range: {text!r}") from exc

    def time_or_none(self, name: str) -> datetime | None:
        return None if self._raw(name) is None else self.time(name)
