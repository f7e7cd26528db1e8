"""LcsCDR row -> ICDR: the parsing half of the Lync / Skype for Business driver.

Contract: ``LyncCdrParser.feed`` takes one raw unit (a row in the JSON form of
``lync_cdr_schema.serialise_row``) and returns exactly one result: an ``ICDR`` or a
``Quarantined`` with a reason. It never raises on bad input and keeps no state, so a row parses
the same way however often it is re-read; the ``record_id`` comes from the session key
(agent, source, SessionIdTime, SessionIdSeq), so a re-read row that changed (its SessionEndTime
filled in late) is a newer version of the same record, never a second call.

The rules are formats.md §1.4-§1.9:

- PSTN side: gateway or mediation server on the From/To side (``extra.pstn_signal`` says which
  matched). Direction: To-side only -> out, From-side only -> in, both -> tandem, neither ->
  internal. The caller is SessionStartedBy, never "User1".
- Times are UTC already (§1.11). start = InviteTime (else SessionIdTime); answered = code 200
  with a ResponseTime; talk = SessionEndTime - ResponseTime, rounded up to whole seconds (the
  exact milliseconds travel in ``extra.talk_ms``); a negative talk time is 0 with flag
  ``negative_duration``; an answered row whose end has not been written yet ends at its answer
  with flag ``end_pending`` until the re-read brings the end.
- A session that failed with a final response (3xx-6xx) and has no end time is complete: it ends
  at its final response, and its ring time runs from the invite to that response.
- Billing once: legs that must not be billed although they may be answered PSTN legs carry the
  flag ``not_billed`` plus the reason: ``rgs_agent_leg`` (CallFlag 0x02; the caller's leg into
  the Response Group carries the gateway and is the billed one) and ``replaced_by_retry`` (an
  attempt that did not connect and was retried, CallFlag 0x01, through another gateway or route
  where the retry connected: the query's ``RetryConnected`` column says so). The retry that
  connected is the billed call, flagged ``retried_session``; the attempts it replaces share its
  ``call_id`` (the CorrelationId). Transfers: a session with ReferredBy or a
  Replace(s)DialogId is a ``transferred`` segment linked by ``parent_call_id``; segments do not
  overlap in time, so each bills its own talk time. Conference dial-in/out legs (a party with
  ClientType 2 AV-MCU, 256 announcement service, 512 conferencing auto-attendant) set
  ``conference``. ``call_id`` is the CorrelationId that links related legs.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from edge_agent.sources.base import ParseResult, Quarantined, RawUnit, SourceContext
from edge_agent.sources.lync_cdr.schema import COLUMN_KINDS, Kind, format_db_time
from shared.errors import ICDRValidationError
from shared.icdr import ICDR, Completion, Direction, make_record_id

KIND = "lync-cdr"
PARSER_VERSION = "lync-cdr/1"

AUDIO = 16  # MediaTypes bit 4 (§1.6)
CALL_FLAG_RETRIED = 0x01
FINAL_FAILURE = 300  # a final SIP response from here on ends a session that never connected
CALL_FLAG_RGS_AGENT = 0x02
CLIENT_AV_MCU = 2
CLIENT_ANNOUNCEMENT = 256
CLIENT_CONF_AUTO_ATTENDANT = 512
CLIENT_RESPONSE_GROUP = 1024
CLIENT_CALL_PARK = 1032
CLIENT_EXCHANGE_UM = 16393
CONFERENCE_CLIENTS = frozenset({CLIENT_AV_MCU, CLIENT_ANNOUNCEMENT, CLIENT_CONF_AUTO_ATTENDANT})

_BUSY = frozenset({486, 600})
_NO_ANSWER = frozenset({480, 408})
_INVALID = frozenset({404, 484, 485})
_DECLINED = 603
_CANCELLED = 487

_PHONE_USER = re.compile(r"^\+?[0-9*#][0-9*#\-.()]*$")
_SCHEMES = ("sip:", "sips:", "tel:")


def completion_for(code: int | None) -> Completion:
    """ResponseCode -> normalised completion (formats.md §1.8)."""
    if code is None:
        return Completion.UNKNOWN
    if code == 200:
        return Completion.ANSWERED
    if code in _BUSY:
        return Completion.BUSY
    if code in _NO_ANSWER or code == _DECLINED:
        return Completion.NO_ANSWER
    if code == _CANCELLED:
        return Completion.ABANDONED
    if code in _INVALID:
        return Completion.INVALID
    if 400 <= code <= 699:
        return Completion.FAILED
    return Completion.UNKNOWN


def failed_at_once(code: int | None) -> bool:
    """A final error response: the session is over even though no end time is written."""
    return code is not None and code >= FINAL_FAILURE


def still_open(code: int | None, end_time: object) -> bool:
    """A session the Monitoring service has not finished writing: no end and no final error."""
    return end_time is None and not failed_at_once(code)


@dataclass(frozen=True, slots=True)
class Party:
    """A URI from Users or Phones, split into what the ICDR shows."""

    uri: str  # as stored
    text: str  # scheme and parameters removed: "+441632960001" or "alice@example.com"
    is_phone: bool


def party(uri: str | None) -> Party | None:
    """Normalise a UserUri/PhoneUri: drop the scheme, ``;parameters`` and a phone's ``@domain``."""
    if uri is None or not uri.strip():
        return None  # a CSV export writes NULL as an empty field
    text = uri.strip()
    lowered = text.lower()
    for scheme in _SCHEMES:
        if lowered.startswith(scheme):
            text = text[len(scheme) :]
            break
    user_phone = ";user=phone" in lowered or lowered.startswith("tel:")
    text = text.split(";", 1)[0]
    local, _, _domain = text.partition("@")
    if _PHONE_USER.match(local) or (user_phone and local):
        return Party(uri=uri, text=local, is_phone=True)
    return Party(uri=uri, text=text, is_phone=False)


class RowError(ValueError):
    """A row that cannot become a call; carries the quarantine reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class LyncCdrParser:
    """Stateless: one row in, one ICDR or one quarantined unit out."""

    kind = KIND
    parser_version = PARSER_VERSION

    def __init__(self, ctx: SourceContext) -> None:
        self._ctx = ctx

    def feed(self, unit: RawUnit) -> list[ParseResult]:
        try:
            return [self.parse_row(decode_row(unit.data), unit.data)]
        except RowError as exc:
            return [Quarantined(unit.source_id, unit.seq, exc.reason, exc.detail, unit.data)]

    def flush(self, now: datetime) -> list[ParseResult]:
        return []

    def record_id(self, session_time: datetime, session_seq: int) -> str:
        """The stable id of a session (also the parent id of a session that replaced it)."""
        return make_record_id(
            self._ctx.agent_id, self._ctx.source_id, format_db_time(session_time), str(session_seq)
        )

    def parse_row(self, row: Mapping[str, Any], raw: bytes) -> ICDR:
        """Apply the §1.4-§1.9 rules to one typed row; ``RowError`` if it is not a call."""
        fields = _Row(row)
        session_time = fields.time("SessionIdTime", required=True)
        session_seq = fields.int("SessionIdSeq", required=True)
        assert session_time is not None and session_seq is not None  # required=True
        media = fields.int("MediaTypes")
        if media is not None and not media & AUDIO:
            raise RowError("not_audio", f"MediaTypes {media} has no audio bit (16)")
        try:
            return ICDR(
                record_id=self.record_id(session_time, session_seq),
                agent_id=self._ctx.agent_id,
                source_id=self._ctx.source_id,
                source_kind=KIND,
                raw=raw.decode("utf-8", errors="replace"),
                parser_version=PARSER_VERSION,
                **_call_fields(fields, session_time, self),
            )
        except ICDRValidationError as exc:
            raise RowError("invalid_record", f"the row gives an invalid call: {exc}") from exc


def decode_row(data: bytes) -> Mapping[str, Any]:
    try:
        row = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RowError("not_json", f"the unit is not a JSON row: {exc}") from exc
    if not isinstance(row, dict):
        raise RowError("not_a_row", "the unit is JSON but not an object of column values")
    if "_unparsed" in row:
        raise RowError("csv_error", str(row["_unparsed"]))
    return row


class _Row:
    """Typed access to a row's columns; a wrong type is a ``RowError`` naming the column."""

    def __init__(self, row: Mapping[str, Any]) -> None:
        self._row = row
        for name, kind in COLUMN_KINDS.items():
            if name in row and row[name] is not None:
                self._check(name, kind, row[name])

    def _check(self, name: str, kind: Kind, value: Any) -> None:
        ok = {
            Kind.TIME: isinstance(value, str),
            Kind.INT: isinstance(value, int) and not isinstance(value, bool),
            Kind.BOOL: isinstance(value, bool),
            Kind.GUID: isinstance(value, str),
            Kind.TEXT: isinstance(value, str),
        }[kind]
        if not ok:
            raise RowError("bad_value", f"column {name} holds {value!r}, expected {kind.value}")

    def time(self, name: str, *, required: bool = False) -> datetime | None:
        value = self._get(name, required=required)
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise RowError("bad_time", f"column {name} holds {value!r}, not a time") from exc
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        return parsed.replace(tzinfo=UTC)  # LcsCDR stores UTC (formats.md §1.11)

    def int(self, name: str, *, required: bool = False) -> int | None:
        value = self._get(name, required=required)
        return None if value is None else int(value)

    def text(self, name: str) -> str | None:
        value = self._get(name, required=False)
        return None if value is None else str(value)

    def _get(self, name: str, *, required: bool) -> Any:
        value = self._row.get(name)
        if value is None and required:
            raise RowError("missing_key", f"the row has no {name}: it cannot be identified")
        return value


def _call_fields(row: _Row, session_time: datetime, parser: LyncCdrParser) -> dict[str, Any]:
    """Everything of the ICDR except identity and provenance."""
    flags: list[str] = []
    extra: dict[str, str] = {}
    invite, response = row.time("InviteTime"), row.time("ResponseTime")
    end_time = row.time("SessionEndTime")
    code = row.int("ResponseCode")
    start = invite or session_time
    answered = code == 200 and response is not None
    answer = max(response, start) if answered and response is not None else None
    if answered and response is not None and response < start:
        flags.append("clock_skew")
    if end_time is None and not answered and failed_at_once(code) and response is not None:
        end_time = max(response, start)  # the final error response ends the attempt
    end, talk_ms = _end_and_talk(start, answer, end_time, flags)
    if talk_ms is not None:
        extra["talk_ms"] = str(talk_ms)
    ring = 0 if response is None else max(0, int((response - start).total_seconds()))
    fields: dict[str, Any] = {
        "start": start,
        "answer": answer,
        "end": end,
        "ring_seconds": min(ring, int((end - start).total_seconds())),
        "talk_seconds": 0 if talk_ms is None else math.ceil(talk_ms / 1000),
        "answered": answered,
        "completion": completion_for(code),
        "completion_source": "" if code is None else str(code),
        "call_id": row.text("CorrelationId") or "",
    }
    fields |= _parties(row, extra)
    fields |= _legs(row, flags, extra, parser)
    for column, key in _EXTRA_COLUMNS:
        value = row.text(column) if COLUMN_KINDS[column] is Kind.TEXT else row.int(column)
        if value is not None:
            extra[key] = str(value)
    fields["flags"] = tuple(dict.fromkeys(flags))
    fields["extra"] = extra
    return fields


_EXTRA_COLUMNS = (
    ("PoolFQDN", "pool"),
    ("DiagnosticId", "diagnostic_id"),
    ("MediaTypes", "media_types"),
    ("OnBehalfOfUri", "on_behalf_of"),
    ("DisconnectedByUri", "disconnected_by"),
    ("DisconnectedByPhoneUri", "disconnected_by_phone"),
    ("FromMediationServer", "from_mediation_server"),
    ("ToMediationServer", "to_mediation_server"),
)


def _end_and_talk(
    start: datetime, answer: datetime | None, end_time: datetime | None, flags: list[str]
) -> tuple[datetime, int | None]:
    """The end time and exact talk milliseconds, keeping start <= answer <= end."""
    floor = answer or start
    if end_time is None:
        if answer is not None:
            flags.append("end_pending")  # the Monitoring service writes the end later (§1.14)
        return floor, (0 if answer is not None else None)
    if end_time < floor:
        flags.append("negative_duration")  # clock skew between servers: clamp (§1.5)
        return floor, (0 if answer is not None else None)
    if answer is None:
        return end_time, None
    return end_time, round((end_time - answer).total_seconds() * 1000)


def _parties(row: _Row, extra: dict[str, str]) -> dict[str, Any]:
    """Direction, calling/called and trunk by the §1.4 table."""
    from_gateway, to_gateway = row.int("FromGatewayId"), row.int("ToGatewayId")
    from_mediation = row.int("FromMediationServerId")
    to_mediation = row.int("ToMediationServerId")
    from_pstn = from_gateway is not None or from_mediation is not None
    to_pstn = to_gateway is not None or to_mediation is not None
    signals = [
        "gateway" if gw is not None else "mediation"
        for gw, pstn in ((from_gateway, from_pstn), (to_gateway, to_pstn))
        if pstn
    ]
    if signals:
        extra["pstn_signal"] = "gateway" if "gateway" in signals else "mediation"
    started = party(row.text("StartedByUri"))
    target = party(row.text("TargetUri"))
    from_phone = party(row.text("FromPhoneUri"))
    connected = party(row.text("ConnectedPhoneUri"))
    other = _other_user(row, started)
    from_trunk = row.text("FromGateway") or row.text("FromMediationServer") or ""
    to_trunk = row.text("ToGateway") or row.text("ToMediationServer") or ""
    if to_pstn and not from_pstn:
        called = connected or (target if target and target.is_phone else None) or other
        dialled = target if target and target.is_phone else connected
        user = started if started and not started.is_phone else other
        return {
            "direction": Direction.OUT,
            "calling": _text(started),
            "called": _text(called),
            "dialled_digits": _text(dialled),
            "extension": _user_text(user),
            "trunk": to_trunk,
            "route": row.text("ToMediationServer") or "",
            "ani": _text(started),
            "dnis": _text(dialled),
        }
    if from_pstn and not to_pstn:
        caller = from_phone or started
        user = other if other is not None else (target if target and not target.is_phone else None)
        return {
            "direction": Direction.IN,
            "calling": _text(caller),
            "called": _text(user or target),
            "dialled_digits": _text(target),
            "extension": _user_text(user),
            "trunk": from_trunk,
            "route": row.text("FromMediationServer") or "",
            "ani": _text(caller),
            "dnis": _text(target),
        }
    if from_pstn and to_pstn:
        # PSTN -> Lync -> PSTN (forwarding or a transfer out): rated as outgoing from the user
        # who forwarded, on the outgoing trunk (§1.4). User1/User2 are the two external
        # parties here, so the cost belongs to the transferring user, else the user dialled
        # (their SIP URI), else the DID dialled (which the directory maps to its owner).
        forwarder = _forwarder(row, target, other)
        return {
            "direction": Direction.TANDEM,
            "calling": _text(from_phone or started),
            "called": _text(connected or (target if target and target.is_phone else None)),
            "extension": _text(forwarder),
            "third_party": _text(forwarder),
            "trunk": to_trunk,
            "route": row.text("ToMediationServer") or "",
            "ani": _text(from_phone or started),
            "dnis": _text(target),
        }
    return {
        "direction": Direction.INTERNAL,
        "calling": _text(started),
        "called": _text(other or target),
        "extension": _user_text(started),
    }


def _forwarder(row: _Row, target: Party | None, other: Party | None) -> Party | None:
    """Who a tandem call's cost belongs to: never one of the external (phone) parties."""
    candidates = (
        party(row.text("ReferredByUri")),
        party(row.text("OnBehalfOfUri")),
        target if target and not target.is_phone else None,
        other if other and not other.is_phone else None,
        target,  # the DID the forwarding user owns
    )
    return next((p for p in candidates if p is not None), None)


def _other_user(row: _Row, started: Party | None) -> Party | None:
    """The party of User1/User2 that did not start the session (User1 is not the caller)."""
    one, two = party(row.text("User1Uri")), party(row.text("User2Uri"))
    if started is None:
        return two or one
    if one is not None and one.uri == started.uri:
        return two
    if two is not None and two.uri == started.uri:
        return one
    return two or one


def _legs(
    row: _Row, flags: list[str], extra: dict[str, str], parser: LyncCdrParser
) -> dict[str, Any]:
    """Transfer, Response Group, retry and conference markers (§1.7, §1.9)."""
    out: dict[str, Any] = {"transferred": False, "conference": False}
    call_flag = row.int("CallFlag") or 0
    if call_flag:
        extra["call_flag"] = str(call_flag)  # undocumented bits travel raw
    if call_flag & CALL_FLAG_RGS_AGENT:
        flags += ["rgs_agent_leg", "not_billed"]
    if call_flag & CALL_FLAG_RETRIED:
        flags.append("retried_session")  # billed if it connected: it is the call that happened
    elif row.int("RetryConnected"):
        # A later retry of this session connected: that one is the billed call (§1.7).
        flags += ["replaced_by_retry", "not_billed"]
    client_types = {row.int("User1ClientType"), row.int("User2ClientType")} - {None}
    if client_types & CONFERENCE_CLIENTS:
        out["conference"] = True
    if CLIENT_RESPONSE_GROUP in client_types:
        flags.append("response_group")
    if CLIENT_CALL_PARK in client_types:
        flags.append("call_park")
    if CLIENT_EXCHANGE_UM in client_types:
        flags.append("voicemail")
    referrer = party(row.text("ReferredByUri"))
    if referrer is not None:
        out["transferred"] = True
        flags.append("referred")
        out["third_party"] = referrer.text
    replaced_time, replaced_seq = row.time("ReplaceDialogIdTime"), row.int("ReplaceDialogIdSeq")
    if replaced_time is not None and replaced_seq is not None:
        out["transferred"] = True
        flags.append("replaces")
        out["parent_call_id"] = parser.record_id(replaced_time, replaced_seq)
    return out


def _text(p: Party | None) -> str:
    return "" if p is None else p.text


def _user_text(p: Party | None) -> str:
    """The Lync user for ``extension``: a SIP address, mapped to an extension by the directory."""
    return "" if p is None or p.is_phone else p.text
