"""Calls from mirrored packets: SIP dialogs and RTP streams grouped into recordable calls.

``CallTracker.feed(datagram, at)`` takes every decoded datagram with its capture time:

- SIP (on the configured signalling ports, UDP or TCP): an INVITE opens a call keyed by Call-ID
  and its SDP offer says where the caller receives media; the 200 OK's SDP answer says where the
  called party receives; re-INVITEs add addresses; BYE, CANCEL or a final 4xx-6xx end it.
- RTP: a packet sent *to* the called party's SDP address carries the caller's voice (left
  channel), one sent to the caller's address carries the called party's (right). Media with no
  visible signalling (MiNET sets, TLS) is grouped by address pair: the first sender is side A.

``CallTracker.expire(now)`` returns the calls that have ended as ``FinishedCall`` objects, ready
to be written: BYE, CANCEL or a final failure plus a linger for the jitter window; otherwise
nothing on the wire for ``idle_timeout`` (media without signalling), RINGING_TIMEOUT (an INVITE
not answered yet) or SIGNALLED_IDLE_TIMEOUT (an answered call on hold, or whose BYE was lost).
A compliance pause drops media at intake, so paused audio never reaches memory or disk.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.capture import sip
from edge_agent.capture.packets import TCP, Datagram
from edge_agent.capture.rtp import (
    CODECS_BY_NAME,
    DEFAULT_JITTER_WINDOW,
    DEFAULT_TELEPHONE_EVENT_PT,
    STATIC_CODECS,
    Codec,
    StreamAssembler,
    parse_rtp,
)
from edge_agent.capture.srtp import SrtpDetector

CALLER = "caller"
CALLED = "called"
DEFAULT_SIP_PORTS = (5060,)
DEFAULT_IDLE_TIMEOUT = 10.0
BYE_LINGER = 1.0
AUTH_CHALLENGES = (401, 407)  # the INVITE is sent again with credentials, same Call-ID
RINGING_TIMEOUT = 300.0  # an INVITE not yet answered (180 Ringing, then nothing until 200)
SIGNALLED_IDLE_TIMEOUT = 120.0  # an answered call without media (hold) or whose BYE was missed
MAX_SIP_MESSAGES = 200

Endpoint = tuple[str, int]


@dataclass
class Leg:
    """One direction of a call: its sub-streams by SSRC (a new SSRC appends) and SRTP evidence."""

    side: str
    streams: dict[int, StreamAssembler] = field(default_factory=dict)
    srtp: SrtpDetector = field(default_factory=SrtpDetector)
    paused_packets: int = 0


@dataclass
class Call:
    """What is known of one call while it is open."""

    key: str
    signalled: bool
    first_seen: float
    last_activity: float
    caller: str = ""
    called: str = ""
    invite_time: float | None = None
    answer_time: float | None = None
    end_time: float | None = None
    end_reason: str = ""
    sdp_encrypted: bool = False
    codecs: dict[int, Codec] = field(default_factory=lambda: dict(STATIC_CODECS))
    telephone_event_pt: int = DEFAULT_TELEPHONE_EVENT_PT
    media: dict[Endpoint, str] = field(default_factory=dict)
    legs: dict[str, Leg] = field(default_factory=dict)
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    sip_messages: list[bytes] = field(default_factory=list)

    def leg(self, side: str) -> Leg:
        return self.legs.setdefault(side, Leg(side))

    def close(self) -> None:
        """Release every stream's audio buffer (after the recording is written, or not)."""
        for leg in self.legs.values():
            for stream in leg.streams.values():
                stream.close()


@dataclass(frozen=True)
class FinishedCall:
    """An ended call, handed to the recorder."""

    call: Call


PauseCheck = Callable[[Call, float], bool]


def _never_paused(call: Call, at: float) -> bool:
    return False


class CallTracker:
    """Groups datagrams into calls; see the module docstring for the rules it follows."""

    def __init__(
        self,
        *,
        sip_ports: tuple[int, ...] = DEFAULT_SIP_PORTS,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        jitter_window: float = DEFAULT_JITTER_WINDOW,
        paused: PauseCheck = _never_paused,
        spill_dir: Path | None = None,
    ) -> None:
        self.spill_dir = spill_dir  # where long calls' audio waits for the end of the call
        self.sip_ports = frozenset(sip_ports)
        self.idle_timeout = idle_timeout
        self.jitter_window = jitter_window
        self.paused = paused
        self.calls: dict[str, Call] = {}
        self._by_media: dict[Endpoint, str] = {}
        self._by_pair: dict[frozenset[Endpoint], str] = {}
        self._framers: dict[tuple[Endpoint, Endpoint], sip.TcpSipFramer] = {}
        self._serial = itertools.count(1)
        self.not_rtp = 0

    def feed(self, datagram: Datagram, at: float) -> None:
        if datagram.sport in self.sip_ports or datagram.dport in self.sip_ports:
            for message in self._sip_messages(datagram):
                self._on_sip(message, at)
        elif datagram.transport != TCP:
            self._on_media(datagram, at)

    def expire(self, now: float) -> list[FinishedCall]:
        """Remove and return the calls that have ended by capture time ``now``."""
        done = [call for call in self.calls.values() if self._ended(call, now)]
        for call in done:
            self._forget(call)
        return [FinishedCall(call) for call in done]

    def drain(self) -> list[FinishedCall]:
        """Every open call, ended now (at shutdown)."""
        return self.expire(float("inf"))

    def _ended(self, call: Call, now: float) -> bool:
        if call.end_time is not None:
            linger = max(BYE_LINGER, self.jitter_window)
            return now - max(call.end_time, call.last_activity) > linger
        return now - call.last_activity > self._idle_limit(call)

    def _idle_limit(self, call: Call) -> float:
        """How long a call may be silent on the wire before it is taken as ended."""
        if not call.signalled:
            return self.idle_timeout
        if call.answer_time is None:
            return max(self.idle_timeout, RINGING_TIMEOUT)  # ringing sends nothing for a while
        return max(self.idle_timeout, SIGNALLED_IDLE_TIMEOUT)  # hold with a=inactive, lost BYE

    def _forget(self, call: Call) -> None:
        del self.calls[call.key]
        for endpoint in call.media:
            if self._by_media.get(endpoint) == call.key:
                del self._by_media[endpoint]
        for pair, key in list(self._by_pair.items()):
            if key == call.key:
                del self._by_pair[pair]

    # signalling

    def _sip_messages(self, datagram: Datagram) -> list[sip.SipMessage]:
        if datagram.transport != TCP:
            message = sip.parse_sip(datagram.payload)
            return [message] if message else []
        flow = ((datagram.src, datagram.sport), (datagram.dst, datagram.dport))
        return self._framers.setdefault(flow, sip.TcpSipFramer()).feed(datagram.payload)

    def _on_sip(self, message: sip.SipMessage, at: float) -> None:
        call_id = message.call_id
        if not call_id:
            return
        call = self.calls.get(call_id)
        if call is None:
            if message.method != "INVITE":
                return
            call = self.calls[call_id] = Call(call_id, True, at, at)
        call.last_activity = max(call.last_activity, at)
        if len(call.sip_messages) < MAX_SIP_MESSAGES:
            call.sip_messages.append(message.raw)
        if message.method is not None:
            self._on_request(call, message, at)
        else:
            self._on_response(call, message, at)

    def _on_request(self, call: Call, message: sip.SipMessage, at: float) -> None:
        if message.method == "INVITE":
            if call.end_reason.isdigit() and call.answer_time is None:
                call.end_time, call.end_reason = None, ""  # retried after a failure response
            if call.invite_time is None:
                call.invite_time = at
                call.caller = sip.user_part(
                    message.header("p-asserted-identity") or message.header("from")
                )
                call.called = sip.user_part(message.header("to")) or sip.user_part(
                    message.request_uri or ""
                )
            self._learn_sdp(call, message, receiver=CALLER)
        elif message.method in ("BYE", "CANCEL") and call.end_time is None:
            call.end_time = at
            call.end_reason = message.method

    def _on_response(self, call: Call, message: sip.SipMessage, at: float) -> None:
        if message.cseq_method != "INVITE" or message.status is None:
            return
        if message.status >= 180 and message.has_sdp:
            self._learn_sdp(call, message, receiver=CALLED)
        if 200 <= message.status < 300 and call.answer_time is None:
            call.answer_time = at
        elif (
            message.status >= 300
            and message.status not in AUTH_CHALLENGES
            and call.answer_time is None
            and call.end_time is None
        ):
            call.end_time = at
            call.end_reason = f"{message.status}"

    def _learn_sdp(self, call: Call, message: sip.SipMessage, *, receiver: str) -> None:
        if not message.has_sdp:
            return
        for media in sip.parse_sdp(message.body):
            if media.port == 0 or not media.address:
                continue
            endpoint = (media.address, media.port)
            call.sdp_encrypted = call.sdp_encrypted or media.encrypted
            # audio sent TO the receiver's address is spoken by the other party
            call.media[endpoint] = CALLED if receiver == CALLER else CALLER
            self._by_media[endpoint] = call.key
            for pt, mapping in media.rtpmap.items():
                name = mapping.partition("/")[0].upper()
                if name == "TELEPHONE-EVENT":
                    call.telephone_event_pt = pt
                elif pt >= 96:
                    call.codecs[pt] = CODECS_BY_NAME.get(name, Codec(name, None))

    # media

    def _on_media(self, datagram: Datagram, at: float) -> None:
        packet = parse_rtp(datagram.payload)
        if packet is None:
            self.not_rtp += 1
            return
        source, target = (datagram.src, datagram.sport), (datagram.dst, datagram.dport)
        call, side = self._media_owner(source, target, at)
        call.last_activity = max(call.last_activity, at)
        call.endpoints.setdefault(side, source)
        leg = call.leg(side)
        if self.paused(call, at):
            leg.paused_packets += 1
            return
        leg.srtp.observe(packet.payload_type, packet.payload)
        stream = leg.streams.get(packet.ssrc)
        if stream is None:
            stream = leg.streams[packet.ssrc] = StreamAssembler(
                codecs=call.codecs,
                telephone_event_pt=call.telephone_event_pt,
                jitter_window=self.jitter_window,
                spill_dir=self.spill_dir,
            )
        stream.push(packet, at)

    def _media_owner(self, source: Endpoint, target: Endpoint, at: float) -> tuple[Call, str]:
        key = self._by_media.get(target)
        if key is not None:
            call = self.calls[key]
            return call, call.media[target]
        pair = frozenset((source, target))
        key = self._by_pair.get(pair)
        if key is None:
            key = f"flow-{next(self._serial)}"
            self.calls[key] = Call(key, False, at, at)
            self._by_pair[pair] = key
            self.calls[key].media[source] = CALLER  # the first sender is side A
        call = self.calls[key]
        return call, call.media.get(source, CALLED)
