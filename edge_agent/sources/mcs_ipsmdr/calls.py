"""Builds calls from MCS IP SMDR events: the per-CallID state machine (formats.md §3.5).

Contract: ``IpSmdrParser`` is a ``RecordParser``. ``feed`` takes one journalled event line and
returns the ICDRs of any call it completed (DISCONNECTED) or a ``Quarantined`` for a line that
is not an event, a repeated event, or an event after its call disconnected. ``flush(now)``
closes calls with no event for ``idle_timeout`` (end = last event time, flag ``timed_out``).
Every unit fed ends up in exactly one place: a Quarantined result, or ``extra["journal_seqs"]``
of the ICDRs of its call (after a final flush).

A call is emitted as one ICDR per segment. A TRANSFERRED or DIVERTED event, or a CONNECTED at a
different device, closes a segment and opens the next; segment ``n > 0`` has
``call_id = "<CallID>/<n>"`` and ``parent_call_id`` = the previous segment's call_id, and its
``record_id`` derives from (agent, source, CallID, n), so re-reading the same events gives the
same ids. Each segment carries its own ring, hold and talk seconds; all carry the call's last
account code and caller id (CALLMODIFIED updates them) and the event lines of the whole call in
``raw``.

Restart: the parser keeps no state on disk. ``oldest_needed_seq()`` is the lowest journal seq
still needed by an open call; the pipeline persists it with its cursor and, after a restart,
feeds the journal from there (discarding results for units at or below the cursor, which were
already spooled) to rebuild every open call. Timed-out calls depend only on their events, so a
call flushed before a crash and rebuilt afterwards is emitted again identically (same ids).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from edge_agent.sources.base import ParseResult, Quarantined, RawUnit, SourceContext
from edge_agent.sources.mcs_ipsmdr.line import DEFAULT_PAD, IpSmdrEvent, read_line
from edge_agent.sources.rejection import Rejection, quarantine
from edge_agent.sources.streams.open_calls import OpenCalls, RecentlyClosed
from edge_agent.sources.streams.wallclock import offset_minutes, to_utc
from shared.errors import ICDRValidationError
from shared.icdr import ICDR, MAX_RAW, Completion, Direction, make_record_id

KIND = "mcs-ipsmdr"
PARSER_VERSION = f"{KIND}/1"
DEFAULT_IDLE_TIMEOUT = timedelta(hours=4)
DEFAULT_MAX_OPEN_CALLS = 100_000
RECENTLY_CLOSED = 20_000
OPENING_EVENTS = frozenset({"RINGING", "QUEUED"})
_DIRECTIONS = {"IN": Direction.IN, "OUT": Direction.OUT}

EventKey = tuple[str, datetime, str]  # (event word, local time, endpoint): §3.5 duplicate test


@dataclass(slots=True)
class Segment:
    """The part of a call spent at one device, until a transfer or diversion moves it on."""

    start: datetime
    extension: str
    answer: datetime | None = None
    end: datetime | None = None
    hold_since: datetime | None = None
    hold_seconds: float = 0.0
    queued: bool = False
    moved_by: str = ""  # TRANSFERRED / DIVERTED / CONNECTED: what closed this segment
    third_party: str = ""  # where the call went when this segment closed
    arrived_from: str = ""  # Source Endpoint that moved the call here
    arrived_by: str = ""  # the event that opened this segment

    def close_hold(self, at: datetime) -> None:
        if self.hold_since is not None:
            self.hold_seconds += (at - self.hold_since).total_seconds()
            self.hold_since = None


@dataclass(slots=True)
class Call:
    """One CallID being built."""

    call_id: str
    direction: str
    trunk: str
    caller_id: str
    contact_name: str
    ddi: str
    dnis_name: str
    account_code: str
    partial: bool
    segments: list[Segment]
    last_time: datetime  # UTC of the latest event, for DST ordering and timeouts
    units: list[tuple[int, bytes]] = field(default_factory=list)
    seen: set[EventKey] = field(default_factory=set)
    layouts: set[str] = field(default_factory=set)
    unknown_events: list[str] = field(default_factory=list)
    ambiguous_numbers: bool = False
    clock_went_back: bool = False

    @property
    def segment(self) -> Segment:
        return self.segments[-1]


class IpSmdrParser:
    """RecordParser for the IP SMDR event stream (see the module docstring)."""

    kind = KIND
    parser_version = PARSER_VERSION

    def __init__(
        self,
        ctx: SourceContext,
        *,
        pad: str = DEFAULT_PAD,
        idle_timeout: timedelta = DEFAULT_IDLE_TIMEOUT,
        max_open_calls: int = DEFAULT_MAX_OPEN_CALLS,
    ) -> None:
        self._ctx = ctx
        self._pad = pad
        self._idle_timeout = idle_timeout
        self._open: OpenCalls[Call] = OpenCalls(max_open=max_open_calls)
        self._closed: RecentlyClosed[set[EventKey]] = RecentlyClosed(size=RECENTLY_CLOSED)

    @property
    def open_calls(self) -> int:
        return len(self._open)

    def oldest_needed_seq(self) -> int | None:
        """The lowest journal seq an open call still needs; None when no call is open."""
        return self._open.oldest_seq()

    def feed(self, unit: RawUnit) -> list[ParseResult]:
        text = unit.data.decode("latin-1").rstrip("\r\n")
        event = read_line(text, pad=self._pad)
        if isinstance(event, Rejection):
            return [quarantine(unit, event)]
        key: EventKey = (event.event, event.local_time, event.endpoint)
        call = self._open.get(event.call_id)
        if call is None:
            rejection = self._late_or_repeated(event, key)
            if rejection is not None:
                return [quarantine(unit, rejection)]
            call = self._open_call(event, unit)
        elif key in call.seen:
            return [quarantine(unit, _REPEATED)]
        else:
            self._open.touch(event.call_id, received_at=unit.received_at)
        call.seen.add(key)
        call.units.append((unit.seq, unit.data))
        call.layouts.add(event.layout)
        self._apply(call, event)
        results: list[ParseResult] = []
        if event.event == "DISCONNECTED":
            results.extend(self._close(event.call_id, timed_out=False))
        for call_id in self._open.excess():
            results.extend(self._close(call_id, timed_out=True))
        return results

    def flush(self, now: datetime) -> list[ParseResult]:
        results: list[ParseResult] = []
        for call_id in self._open.idle(now, self._idle_timeout):
            results.extend(self._close(call_id, timed_out=True))
        return results

    # --- the state machine ----------------------------------------------------------------

    def _late_or_repeated(self, event: IpSmdrEvent, key: EventKey) -> Rejection | None:
        seen = self._closed.get(event.call_id)
        if seen is None:
            return None
        if key in seen:
            return _REPEATED
        return Rejection(
            "late_event",
            f"{event.event} for CallID {event.call_id}, which already disconnected",
        )

    def _open_call(self, event: IpSmdrEvent, unit: RawUnit) -> Call:
        at = to_utc(event.local_time, self._ctx.timezone)
        call = Call(
            call_id=event.call_id,
            direction=event.direction,
            trunk=event.trunk,
            caller_id=event.caller_id,
            contact_name=event.contact_name,
            ddi=event.ddi,
            dnis_name=event.dnis_name,
            account_code=event.account_code,
            partial=event.event not in OPENING_EVENTS,
            segments=[Segment(start=at, extension=event.endpoint)],
            last_time=at,
        )
        self._open.open(event.call_id, call, seq=unit.seq, received_at=unit.received_at)
        return call

    def _apply(self, call: Call, event: IpSmdrEvent) -> None:
        at = to_utc(event.local_time, self._ctx.timezone, after=call.last_time)
        if at < call.last_time:
            call.clock_went_back = True  # keep segments ordered; the ICDR says so in flags
            at = call.last_time
        call.last_time = at
        _update_parties(call, event)
        segment = call.segment
        match event.event:
            case "RINGING" | "QUEUED":
                if segment.answer is None and event.endpoint:
                    segment.extension = event.endpoint
                segment.queued = segment.queued or event.event == "QUEUED"
            case "ANSWERED":
                if segment.answer is None:
                    segment.answer = at
                    segment.extension = event.endpoint or segment.extension
            case "HOLD":
                if segment.hold_since is None:
                    segment.hold_since = at
            case "CONNECTED":
                segment.close_hold(at)
                if segment.answer is None:
                    segment.answer = at
                    segment.extension = event.endpoint or segment.extension
                elif event.endpoint and event.endpoint != segment.extension:
                    _next_segment(call, at, event, moved_by="CONNECTED", answered=True)
            case "TRANSFERRED" | "DIVERTED":
                _next_segment(call, at, event, moved_by=event.event, answered=False)
            case "DISCONNECTED":
                segment.close_hold(at)
            case "CALLMODIFIED":
                pass  # the parties were updated above
            case _:
                call.unknown_events.append(event.event)

    def _close(self, call_id: str, *, timed_out: bool) -> list[ParseResult]:
        call = self._open.pop(call_id)
        self._closed.add(call_id, call.seen)
        segment = call.segment
        segment.close_hold(call.last_time)
        segment.end = call.last_time
        try:
            return list(_to_icdrs(self._ctx, call, timed_out=timed_out))
        except ICDRValidationError as exc:
            return [
                Quarantined(
                    source_id=self._ctx.source_id,
                    seq=seq,
                    reason="invalid_call",
                    detail=f"CallID {call.call_id} does not make a valid call: {exc}",
                    raw=data,
                )
                for seq, data in call.units
            ]


_REPEATED = Rejection("repeated_event", "the same event (type, time, endpoint) was seen already")


def _update_parties(call: Call, event: IpSmdrEvent) -> None:
    """Every event carries the call's current values; keep the latest non-empty ones."""
    call.caller_id = event.caller_id or call.caller_id
    call.contact_name = event.contact_name or call.contact_name
    call.account_code = event.account_code or call.account_code
    call.ddi = call.ddi or event.ddi
    call.dnis_name = call.dnis_name or event.dnis_name
    call.trunk = call.trunk or event.trunk
    call.ambiguous_numbers = call.ambiguous_numbers or event.ambiguous_numbers


def _next_segment(
    call: Call, at: datetime, event: IpSmdrEvent, *, moved_by: str, answered: bool
) -> None:
    old = call.segment
    old.close_hold(at)
    old.end = at
    old.moved_by = moved_by
    old.third_party = event.endpoint
    call.segments.append(
        Segment(
            start=at,
            extension=event.endpoint,
            answer=at if answered else None,
            arrived_from=event.source_endpoint or old.extension,
            arrived_by=moved_by,
        )
    )


def _to_icdrs(ctx: SourceContext, call: Call, *, timed_out: bool) -> list[ICDR]:
    raw = "\n".join(data.decode("latin-1").rstrip("\r\n") for _, data in call.units)
    call_flags = _call_flags(call, timed_out=timed_out, raw_truncated=len(raw) > MAX_RAW)
    direction = _DIRECTIONS.get(call.direction, Direction.UNKNOWN)
    seqs = ",".join(str(seq) for seq, _ in call.units)
    records: list[ICDR] = []
    for number, segment in enumerate(call.segments):
        end = segment.end or call.last_time
        answer = segment.answer
        ring_until = answer or end
        talk = 0.0 if answer is None else (end - answer).total_seconds() - segment.hold_seconds
        parent = _segment_id(call.call_id, number - 1) if number else ""
        extension = segment.extension
        records.append(
            ICDR(
                record_id=make_record_id(ctx.agent_id, ctx.source_id, call.call_id, str(number)),
                agent_id=ctx.agent_id,
                source_id=ctx.source_id,
                source_kind=KIND,
                start=segment.start,
                end=end,
                answer=answer,
                utc_offset_minutes=offset_minutes(segment.start, ctx.timezone),
                ring_seconds=round((ring_until - segment.start).total_seconds()),
                talk_seconds=max(0, round(talk)),
                hold_seconds=round(segment.hold_seconds),
                direction=direction,
                calling=call.caller_id if direction is Direction.IN else extension,
                called=(call.ddi or extension) if direction is Direction.IN else call.caller_id,
                dialled_digits=call.ddi if direction is Direction.IN else call.caller_id,
                extension=extension,
                trunk=call.trunk,
                third_party=segment.third_party,
                account_code=call.account_code,
                ani=call.caller_id if direction is Direction.IN else "",
                dnis=call.ddi if direction is Direction.IN else "",
                answered=answer is not None,
                completion=Completion.ANSWERED if answer is not None else Completion.NO_ANSWER,
                completion_source=segment.moved_by or ("TIMEOUT" if timed_out else "DISCONNECTED"),
                transferred="TRANSFERRED" in (segment.moved_by, segment.arrived_by),
                call_id=_segment_id(call.call_id, number),
                parent_call_id=parent,
                flags=call_flags + _segment_flags(segment),
                raw=raw[:MAX_RAW],
                parser_version=PARSER_VERSION,
                extra=_extra(call, segment, number, seqs),
            )
        )
    return records


def _segment_id(call_id: str, number: int) -> str:
    """Segment 0 is the CallID itself; later segments are ``CallID/n``."""
    return call_id if number == 0 else f"{call_id}/{number}"


def _call_flags(call: Call, *, timed_out: bool, raw_truncated: bool) -> tuple[str, ...]:
    flags = {
        "partial": call.partial,
        "timed_out": timed_out,
        "ambiguous_leading_zeros": call.ambiguous_numbers,
        "clock_went_back": call.clock_went_back,
        "unknown_events": bool(call.unknown_events),
        "raw_truncated": raw_truncated,
    }
    return tuple(name for name, present in flags.items() if present)


def _segment_flags(segment: Segment) -> tuple[str, ...]:
    flags = {
        "diverted": "DIVERTED" in (segment.moved_by, segment.arrived_by),
        "queued": segment.queued,
    }
    return tuple(name for name, present in flags.items() if present)


def _extra(call: Call, segment: Segment, number: int, seqs: str) -> dict[str, str]:
    extra = {
        "segment": f"{number + 1}/{len(call.segments)}",
        "journal_seqs": seqs,
        "layout": "+".join(sorted(call.layouts)),
    }
    optional = {
        "contact_name": call.contact_name,
        "dnis_name": call.dnis_name,
        "arrived_from": segment.arrived_from,
        "unknown_events": ",".join(call.unknown_events),
    }
    extra.update({name: value for name, value in optional.items() if value})
    return extra
