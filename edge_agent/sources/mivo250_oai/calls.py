"""Builds calls from System OAI events, per Call_ID (formats.md §5.5), or reads SMR SMDR text.

Contract: ``OaiParser`` is a ``RecordParser``. Each unit is one OAI frame payload. With
``calls_from="events"`` (default) call events build calls: the first event opens a call at its
receive time (OAI events carry no time, §5.5), ``ES`` answers it, ``HE``/``RE`` time the holds,
``TR``/``DI``/``CO`` mark transfers, diversions and conferences, ``CC`` ends it and emits one
ICDR; ``flush(now)`` closes calls idle for ``idle_timeout`` (flag ``timed_out``). With
``calls_from="smr"`` each ``SMR`` event's SMDR text is parsed by the MiVoice Office 250 SMDR
record parser (one ICDR per SMR). Only one of the two paths makes calls, so no call is billed
twice; units of the other path are quarantined with a reason saying so.

Every other frame is quarantined with a reason: ``not_a_call_event`` (a known agent, feature,
system or confirmation event), ``unknown_event`` (a code this build does not know, kept raw and
counted in ``counts``), ``undecodable``, ``repeated_event`` (a resync repeat) or ``late_event``
(after the call's ``CC``).

Ids: ``record_id`` derives from (agent, source, Call_ID, first-event receive time); replaying
the journal gives the same receive times, so the same ids. Restart: as for IP SMDR,
``oldest_needed_seq()`` is where a replay must start to rebuild the open calls.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from edge_agent.sources.base import ParseResult, Quarantined, RawUnit, SourceContext
from edge_agent.sources.mivo250_oai.wire import (
    CAUSE_TRANSFER,
    CAUSES,
    OaiEvent,
    decode_event,
)
from edge_agent.sources.mivo250_smdr.record import (
    RecordOrigin,
    clean_text,
    read_record,
    record_to_icdr,
)
from edge_agent.sources.rejection import Rejection, quarantine
from edge_agent.sources.streams.open_calls import OpenCalls, RecentlyClosed
from edge_agent.sources.streams.wallclock import offset_minutes
from shared.errors import ICDRValidationError
from shared.icdr import ICDR, MAX_RAW, Completion, Direction, format_time, make_record_id

KIND = "mivo250-oai"
PARSER_VERSION = f"{KIND}/1"
CALLS_FROM = ("events", "smr")
DEFAULT_IDLE_TIMEOUT = timedelta(hours=4)
DEFAULT_MAX_OPEN_CALLS = 100_000
RECENTLY_CLOSED = 20_000
OPENING_EVENTS = frozenset({"OR", "DE", "SI", "OF", "QU", "NT"})
_COMPLETIONS = {
    3: Completion.BUSY,
    10: Completion.NO_ANSWER,
    13: Completion.FAILED,
    29: Completion.FAILED,
    33: Completion.BUSY,
}
_DIRECTIONS = {
    ("E", "I"): Direction.IN,
    ("I", "E"): Direction.OUT,
    ("I", "I"): Direction.INTERNAL,
    ("E", "E"): Direction.TANDEM,
}

EventKey = tuple[str, tuple[tuple[str, str], ...], tuple[str, ...]]


@dataclass(slots=True)
class OaiCall:
    """One Call_ID being built; times are receive times (UTC)."""

    call_id: str
    start: datetime
    last_time: datetime
    first_code: str
    answer: datetime | None = None
    hold_since: datetime | None = None
    hold_seconds: float = 0.0
    parties: dict[str, str] = field(default_factory=dict)  # the first ES's named fields
    cause: int | None = None
    failed: bool = False
    transferred: bool = False
    diverted: bool = False
    conference: bool = False
    queued: bool = False
    resynced: bool = False
    transfer_destination: str = ""
    transferred_call_id: str = ""
    codes: list[str] = field(default_factory=list)
    units: list[tuple[int, bytes]] = field(default_factory=list)
    seen: set[EventKey] = field(default_factory=set)

    def close_hold(self, at: datetime) -> None:
        if self.hold_since is not None:
            self.hold_seconds += (at - self.hold_since).total_seconds()
            self.hold_since = None


class OaiParser:
    """RecordParser for System OAI frames (see the module docstring)."""

    kind = KIND
    parser_version = PARSER_VERSION

    def __init__(
        self,
        ctx: SourceContext,
        *,
        calls_from: str = "events",
        idle_timeout: timedelta = DEFAULT_IDLE_TIMEOUT,
        max_open_calls: int = DEFAULT_MAX_OPEN_CALLS,
    ) -> None:
        if calls_from not in CALLS_FROM:
            raise ValueError(f"calls_from must be one of {CALLS_FROM}")
        self._ctx = ctx
        self._calls_from = calls_from
        self._idle_timeout = idle_timeout
        self._open: OpenCalls[OaiCall] = OpenCalls(max_open=max_open_calls)
        self._closed: RecentlyClosed[set[EventKey]] = RecentlyClosed(size=RECENTLY_CLOSED)
        self._parents: RecentlyClosed[str] = RecentlyClosed(size=RECENTLY_CLOSED)
        self.counts: Counter[str] = Counter()  # frames by event code; "?" for undecodable

    @property
    def open_calls(self) -> int:
        return len(self._open)

    def oldest_needed_seq(self) -> int | None:
        """The lowest journal seq an open call still needs; None when no call is open."""
        return self._open.oldest_seq()

    def feed(self, unit: RawUnit) -> list[ParseResult]:
        event = decode_event(unit.data)
        if isinstance(event, Rejection):
            self.counts["?"] += 1
            return [quarantine(unit, event)]
        self.counts[event.code] += 1
        if event.code == "SMR":
            return [self._smr(unit, event)]
        if event.category != "call":
            return [quarantine(unit, _not_a_call(event))]
        if self._calls_from != "events":
            return [quarantine(unit, _UNUSED_CALL_EVENT)]
        if not event.call_id:
            return [quarantine(unit, Rejection("undecodable", f"{event.code} without a Call_ID"))]
        return self._call_event(unit, event)

    def flush(self, now: datetime) -> list[ParseResult]:
        results: list[ParseResult] = []
        for call_id in self._open.idle(now, self._idle_timeout):
            results.extend(self._close(call_id, timed_out=True))
        return results

    # --- SMR: SMDR text carried by OAI ----------------------------------------------------------

    def _smr(self, unit: RawUnit, event: OaiEvent) -> ParseResult:
        if self._calls_from != "smr":
            return quarantine(unit, _UNUSED_SMR)
        text = clean_text(event.fields.get("smdr_text", "").encode("latin-1"))
        record = read_record(text)
        if isinstance(record, Rejection):
            return quarantine(unit, Rejection(record.reason, f"SMR text: {record.detail}"))
        origin = RecordOrigin(
            ctx=self._ctx,
            kind=KIND,
            parser_version=PARSER_VERSION,
            seq=unit.seq,
            received_at=unit.received_at,
            raw=text,
            extra={"transport": "oai-smr", "node": event.fields.get("node", "")},
        )
        try:
            return record_to_icdr(record, origin)
        except ICDRValidationError as exc:
            return quarantine(unit, Rejection("invalid_record", str(exc)))

    # --- call events -------------------------------------------------------------------

    def _call_event(self, unit: RawUnit, event: OaiEvent) -> list[ParseResult]:
        key: EventKey = (
            event.code,
            tuple(sorted((k, v) for k, v in event.fields.items() if k not in _VOLATILE)),
            event.extra_fields,
        )
        call = self._open.get(event.call_id)
        if call is None:
            rejection = self._late_or_repeated(event, key)
            if rejection is not None:
                return [quarantine(unit, rejection)]
            call = OaiCall(
                call_id=event.call_id,
                start=unit.received_at,
                last_time=unit.received_at,
                first_code=event.code,
            )
            self._open.open(event.call_id, call, seq=unit.seq, received_at=unit.received_at)
        elif event.resync and key in call.seen:
            return [quarantine(unit, _REPEATED)]
        else:
            self._open.touch(event.call_id, received_at=unit.received_at)
        call.seen.add(key)
        call.units.append((unit.seq, unit.data))
        call.codes.append(event.code)
        call.last_time = max(call.last_time, unit.received_at)
        call.resynced = call.resynced or bool(event.resync)
        _apply(call, event, call.last_time)
        results: list[ParseResult] = []
        if event.code == "CC":
            results.extend(self._close(event.call_id, timed_out=False))
        for call_id in self._open.excess():
            results.extend(self._close(call_id, timed_out=True))
        return results

    def _late_or_repeated(self, event: OaiEvent, key: EventKey) -> Rejection | None:
        seen = self._closed.get(event.call_id)
        if seen is None:
            return None
        if key in seen:
            return _REPEATED
        if event.code in OPENING_EVENTS:  # the PBX reused the Call_ID for a new call
            self._closed.discard(event.call_id)
            return None
        return Rejection("late_event", f"{event.code} for Call_ID {event.call_id} after its CC")

    def _close(self, call_id: str, *, timed_out: bool) -> list[ParseResult]:
        call = self._open.pop(call_id)
        self._closed.add(call_id, call.seen)
        call.close_hold(call.last_time)
        if call.transferred_call_id:
            self._parents.add(call.transferred_call_id, call.call_id)
        parent = self._parents.get(call.call_id) or ""
        try:
            return [_to_icdr(self._ctx, call, timed_out=timed_out, parent=parent)]
        except ICDRValidationError as exc:
            return [
                Quarantined(
                    source_id=self._ctx.source_id,
                    seq=seq,
                    reason="invalid_call",
                    detail=f"Call_ID {call.call_id} does not make a valid call: {exc}",
                    raw=data,
                )
                for seq, data in call.units
            ]


_VOLATILE = frozenset({"resync", "monitor"})  # differ between a live event and its resync copy
_REPEATED = Rejection("repeated_event", "a resync repeated an event this call already had")
_UNUSED_SMR = Rejection(
    "smr_not_used", "an SMR event, but calls_from is 'events': calls are built from call events"
)
_UNUSED_CALL_EVENT = Rejection(
    "call_event_not_used", "a call event, but calls_from is 'smr': calls come from SMR text"
)


def _not_a_call(event: OaiEvent) -> Rejection:
    if event.category == "unknown":
        return Rejection("unknown_event", f"event code {event.code} is not in this build's table")
    return Rejection("not_a_call_event", f"{event.category} event {event.code}")


def _apply(call: OaiCall, event: OaiEvent, at: datetime) -> None:
    match event.code:
        case "ES":
            if call.answer is None:
                call.answer = at
                call.parties = dict(event.fields)
            call.close_hold(at)
        case "HE":
            if call.hold_since is None:
                call.hold_since = at
        case "RE":
            call.close_hold(at)
        case "TR":
            call.transferred = True
        case "DI":
            call.diverted = True
        case "CO":
            call.conference = True
        case "QU":
            call.queued = True
        case "FA":
            call.failed = True
            call.cause = event.cause
        case "CC":
            call.cause = event.cause
            if event.cause == CAUSE_TRANSFER:
                call.transferred = True
                call.transferred_call_id = event.fields.get("transferred_call_id", "")
                call.transfer_destination = event.fields.get("transfer_destination", "")


def _to_icdr(ctx: SourceContext, call: OaiCall, *, timed_out: bool, parent: str) -> ICDR:
    raw = "\n".join(clean_text(data) for _, data in call.units)
    p = call.parties
    direction = _DIRECTIONS.get(
        (p.get("calling_device_type", ""), p.get("answering_device_type", "")), Direction.UNKNOWN
    )
    parties = _parties(direction, p)
    end = call.last_time
    talk = 0.0 if call.answer is None else (end - call.answer).total_seconds() - call.hold_seconds
    flags = {
        "partial": call.first_code not in OPENING_EVENTS and call.first_code != "CC",
        "termination_only": call.codes == ["CC"],
        "timed_out": timed_out,
        "diverted": call.diverted,
        "queued": call.queued,
        "resync": call.resynced,
        "raw_truncated": len(raw) > MAX_RAW,
    }
    extra = {
        "journal_seqs": ",".join(str(seq) for seq, _ in call.units),
        "events": ",".join(call.codes),
        "cause_name": CAUSES.get(call.cause, "") if call.cause is not None else "",
        "transferred_call_id": call.transferred_call_id,
        "originally_called": p.get("originally_called", ""),
    }
    return ICDR(
        record_id=make_record_id(
            ctx.agent_id, ctx.source_id, call.call_id, format_time(call.start)
        ),
        agent_id=ctx.agent_id,
        source_id=ctx.source_id,
        source_kind=KIND,
        start=call.start,
        end=end,
        answer=call.answer,
        utc_offset_minutes=offset_minutes(call.start, ctx.timezone),
        ring_seconds=round(((call.answer or end) - call.start).total_seconds()),
        talk_seconds=max(0, round(talk)),
        hold_seconds=round(call.hold_seconds),
        direction=direction,
        third_party=call.transfer_destination or p.get("last_redirecting_extension", ""),
        answered=call.answer is not None,
        completion=_completion(call),
        completion_source="" if call.cause is None else str(call.cause),
        transferred=call.transferred,
        conference=call.conference,
        call_id=call.call_id,
        parent_call_id=parent,
        flags=tuple(name for name, present in flags.items() if present),
        raw=raw[:MAX_RAW],
        parser_version=PARSER_VERSION,
        extra={name: value for name, value in extra.items() if value},
        calling=parties.calling,
        called=parties.called,
        dialled_digits=parties.dialled_digits,
        extension=parties.extension,
        trunk=parties.trunk,
        ani=parties.ani,
        dnis=parties.dnis,
    )


@dataclass(frozen=True, slots=True)
class Parties:
    calling: str = ""
    called: str = ""
    dialled_digits: str = ""
    extension: str = ""
    trunk: str = ""
    ani: str = ""
    dnis: str = ""


def _parties(direction: Direction, p: dict[str, str]) -> Parties:
    """Calling, called and trunk from the first ES (formats.md §5.4 field meanings)."""
    answering = p.get("answering_extension", "")
    calling_ext = p.get("calling_extension", "")
    if direction is Direction.IN:
        did = p.get("trunk_outside_number", "")
        caller = p.get("outside_caller_number", "")
        return Parties(
            calling=caller,
            called=did or answering,
            dialled_digits=did,
            extension=answering,
            trunk=calling_ext,  # on incoming CO calls the "calling extension" is the trunk's
            ani=caller,
            dnis=did,
        )
    if direction is Direction.OUT:
        dialled = p.get("answering_outside_number", "")
        return Parties(
            calling=calling_ext,
            called=dialled,
            dialled_digits=dialled,
            extension=calling_ext,
            trunk=answering,  # [inferred] the answering device of an outgoing CO call
        )
    return Parties(calling=calling_ext, called=answering, extension=calling_ext)


def _completion(call: OaiCall) -> Completion:
    if call.failed:
        return Completion.FAILED
    if call.cause in _COMPLETIONS and call.answer is None:
        return _COMPLETIONS[call.cause]
    return Completion.ANSWERED if call.answer is not None else Completion.NO_ANSWER
