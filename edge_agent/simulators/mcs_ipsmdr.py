"""MCS IP SMDR simulator: event lines with the call facts they should produce, and the MCS side.

Contract: ``generate_calls(count=..., seed=...)`` returns ``SimulatedCall`` values, each with its
162-character event lines (formats.md §3.2, any pad character) and the facts a correct parser
must derive from them (per segment: extension, answered, ring/talk/hold seconds, transfer or
diversion), computed from the scenario's chosen durations, not by parsing. ``interleave``
merges the calls' events in time order, as MCS sends them. Two servers play MCS:
``IpSmdrServer`` for local mode (MCS listens, the agent connects, port 2007 by default) and
``IpSmdrPusher`` for push mode (MCS connects out to the agent's listener). ``IpSmdrServer`` with
``due_at`` (each line's event time, MCS's local wall clock) is live: a line is sent when the
clock reaches its event, as MCS sends an event when it happens.

`edge-agent simulate mcs-ipsmdr` runs either from the command line.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from edge_agent.simulators.pbx_server import PbxServer

DEFAULT_PORT = 2007
DEFAULT_START = datetime(2026, 5, 14, 9, 0, 0)  # local wall clock of the simulated MCS
SEND_TIMEOUT_SECONDS = 5.0
LIVE_POLL_SECONDS = 0.2
WIDTHS = (19, 5, 22, 7, 7, 7, 15, 14, 15, 14, 12, 14)
PIPED = frozenset({1, 7, 9, 11})
SCENARIOS = ("inbound", "outbound", "held", "transferred", "unanswered", "diverted", "queued")
EXTENSIONS = ("2201", "2202", "2203", "2204", "2301")
TRUNKS = ("90001", "90002", "92001")
CALLERS = ("07700900123", "07700900456", "01632960321", "02079460999")
DDIS = ("02079460321", "02079460322")


def format_line(
    *,
    when: datetime,
    direction: str,
    call_id: str,
    trunk: str,
    endpoint: str,
    event: str,
    source_endpoint: str = "",
    caller_id: str = "",
    contact_name: str = "",
    ddi: str = "",
    dnis_name: str = "",
    account_code: str = "",
    pad: str = "0",
) -> str:
    """One event line, exactly 162 characters: numbers right-aligned and left-filled with pad."""
    values = (
        when.strftime("%Y-%m-%d %H:%M:%S"),
        direction,
        call_id,
        trunk,
        endpoint,
        source_endpoint,
        caller_id,
        contact_name,
        ddi,
        dnis_name,
        account_code,
        event,
    )
    parts: list[str] = []
    for index, (value, width) in enumerate(zip(values, WIDTHS, strict=True)):
        if index in PIPED:
            parts.append("|" + value[: width - 2].ljust(width - 2) + "|")
        elif index == 0:
            parts.append(value)
        else:
            parts.append(value[-width:].rjust(width, pad))
    return " ".join(parts)


@dataclass(frozen=True, slots=True)
class ExpectedSegment:
    """What one segment of a call must come out as."""

    extension: str
    answered: bool
    ring_seconds: int
    talk_seconds: int
    hold_seconds: int
    moved_by: str = ""  # TRANSFERRED / DIVERTED when this segment handed the call on


@dataclass(frozen=True, slots=True)
class SimulatedCall:
    call_id: str
    scenario: str
    direction: str  # IN / OUT
    caller_id: str  # the external party (caller for IN, called number for OUT)
    ddi: str
    account_code: str
    start: datetime  # local wall clock
    segments: tuple[ExpectedSegment, ...]
    events: tuple[tuple[datetime, str], ...] = field(default=())  # (local time, line)

    @property
    def lines(self) -> list[str]:
        return [line for _, line in self.events]


class _CallWriter:
    """Accumulates the lines of one call; ``at`` advances its local clock."""

    def __init__(self, call_id: str, direction: str, trunk: str, pad: str, start: datetime) -> None:
        self.call_id = call_id
        self.direction = direction
        self.trunk = trunk
        self.pad = pad
        self.now = start
        self.caller_id = ""
        self.ddi = ""
        self.account_code = ""
        self.events: list[tuple[datetime, str]] = []

    def at(self, seconds: int) -> _CallWriter:
        self.now += timedelta(seconds=seconds)
        return self

    def emit(self, event: str, endpoint: str, *, source: str = "") -> None:
        line = format_line(
            when=self.now,
            direction=self.direction,
            call_id=self.call_id,
            trunk=self.trunk,
            endpoint=endpoint,
            source_endpoint=source,
            caller_id=self.caller_id,
            contact_name="A N OTHER" if self.direction == "IN" else "",
            ddi=self.ddi,
            dnis_name="SALES LINE" if self.ddi else "",
            account_code=self.account_code,
            event=event,
            pad=self.pad,
        )
        self.events.append((self.now, line))


def generate_calls(
    *, count: int, seed: int = 1, start: datetime = DEFAULT_START, pad: str = " "
) -> list[SimulatedCall]:
    """``count`` calls cycling through every scenario, starting 7 s apart (they overlap)."""
    rng = random.Random(seed)
    calls: list[SimulatedCall] = []
    for number in range(count):
        scenario = SCENARIOS[number % len(SCENARIOS)]
        begin = start + timedelta(seconds=7 * number)
        call_id = begin.strftime("%Y%m%d%H%M%S") + f"{number:08d}"
        calls.append(_scenario(scenario, call_id, begin, rng, pad))
    return calls


def _scenario(
    scenario: str, call_id: str, begin: datetime, rng: random.Random, pad: str
) -> SimulatedCall:
    direction = "OUT" if scenario == "outbound" else "IN"
    w = _CallWriter(call_id, direction, rng.choice(TRUNKS), pad, begin)
    w.caller_id = rng.choice(CALLERS)
    w.ddi = rng.choice(DDIS) if direction == "IN" else ""
    first, second = rng.sample(EXTENSIONS, 2)
    ring, talk, hold, talk2 = (
        rng.randint(2, 30),
        rng.randint(5, 600),
        rng.randint(3, 90),
        rng.randint(5, 300),
    )
    segments: list[ExpectedSegment]
    if scenario == "queued":
        w.emit("QUEUED", "7001")
        w.at(rng.randint(1, 20)).emit("RINGING", first)
        wait = (w.now - begin).seconds
        w.at(ring).emit("ANSWERED", first)
        w.at(talk).emit("DISCONNECTED", first)
        segments = [ExpectedSegment(first, True, wait + ring, talk, 0)]
    else:
        w.emit("RINGING", first)
        if scenario == "unanswered":
            w.at(ring).emit("DISCONNECTED", first)
            segments = [ExpectedSegment(first, False, ring, 0, 0)]
        elif scenario == "diverted":
            w.at(ring).emit("DIVERTED", second, source=first)
            w.emit("RINGING", second)
            ring2 = rng.randint(2, 20)
            w.at(ring2).emit("ANSWERED", second)
            w.at(talk).emit("DISCONNECTED", second)
            segments = [
                ExpectedSegment(first, False, ring, 0, 0, moved_by="DIVERTED"),
                ExpectedSegment(second, True, ring2, talk, 0),
            ]
        else:
            w.at(ring).emit("ANSWERED", first)
            segments = _after_answer(scenario, w, first, second, talk, hold, talk2, ring)
    return SimulatedCall(
        call_id=call_id,
        scenario=scenario,
        direction=direction,
        caller_id=w.caller_id,
        ddi=w.ddi,
        account_code=w.account_code,
        start=begin,
        segments=tuple(segments),
        events=tuple(w.events),
    )


def _after_answer(
    scenario: str,
    w: _CallWriter,
    first: str,
    second: str,
    talk: int,
    hold: int,
    talk2: int,
    ring: int,
) -> list[ExpectedSegment]:
    if scenario == "outbound":
        w.at(talk).emit("DISCONNECTED", first)
        return [ExpectedSegment(first, True, ring, talk, 0)]
    w.account_code = "4711"
    w.at(1).emit("CALLMODIFIED", first)
    if scenario == "inbound":
        w.at(talk - 1).emit("DISCONNECTED", first)  # talk >= 5: the CALLMODIFIED took 1 s
        return [ExpectedSegment(first, True, ring, talk, 0)]
    w.at(talk).emit("HOLD", first)
    if scenario == "held":
        w.at(hold).emit("CONNECTED", first)
        w.at(talk2).emit("DISCONNECTED", first)
        return [ExpectedSegment(first, True, ring, 1 + talk + talk2, hold)]
    # transferred: held, then handed to the second extension, which rings and connects
    w.at(hold).emit("TRANSFERRED", second, source=first)
    w.emit("RINGING", second)
    ring2 = 4
    w.at(ring2).emit("CONNECTED", second)
    w.at(talk2).emit("DISCONNECTED", second)
    return [
        ExpectedSegment(first, True, ring, 1 + talk, hold, moved_by="TRANSFERRED"),
        ExpectedSegment(second, True, ring2, talk2, 0),
    ]


def interleave(calls: Sequence[SimulatedCall]) -> list[str]:
    """Every event of every call in time order (stable for equal times), as MCS sends them."""
    return [line for _, line in interleave_timed(calls)]


def interleave_timed(calls: Sequence[SimulatedCall]) -> list[tuple[datetime, str]]:
    """``interleave`` with each line's event time (MCS's local wall clock)."""
    timed = [
        (when, index, line) for call in calls for index, (when, line) in enumerate(call.events)
    ]
    timed.sort(key=lambda item: item[0])
    return [(when, line) for when, _, line in timed]


# --- the MCS side over TCP ----------------------------------------------------------------------


class IpSmdrServer:
    """Local mode: MCS listens; every client that connects receives the lines (CR LF ended)."""

    def __init__(
        self,
        lines: Sequence[str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        interval: float = 0.0,
        due_at: Sequence[datetime] | None = None,
        clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        self._payload = [line.encode("latin-1") + b"\r\n" for line in lines]
        self._interval = interval
        if due_at is not None and len(due_at) != len(lines):
            raise ValueError("due_at needs one time per line")
        self._due_at = due_at
        self._clock = clock
        self.server = PbxServer(self._handle, host=host, port=port)

    def _handle(self, conn: socket.socket, stop: threading.Event) -> None:
        conn.settimeout(SEND_TIMEOUT_SECONDS)
        for index, data in enumerate(self._payload):
            if self._due_at is not None:
                while not stop.is_set() and self._clock() < self._due_at[index]:
                    stop.wait(LIVE_POLL_SECONDS)  # the event has not happened yet
            if stop.is_set():
                return
            conn.sendall(data)
            if self._interval:
                stop.wait(self._interval)
        stop.wait()  # MCS keeps the connection open; the agent sees no end of stream


class IpSmdrPusher:
    """Push mode: connects to the agent's listener and sends the lines, then closes."""

    def __init__(
        self, lines: Sequence[str], *, host: str, port: int, interval: float = 0.0
    ) -> None:
        self._payload = [line.encode("latin-1") + b"\r\n" for line in lines]
        self._address = (host, port)
        self._interval = interval

    def push(self, *, stop: threading.Event | None = None, chunk: int = 0) -> int:
        """Send every line (in ``chunk``-byte writes when given); returns the lines sent."""
        stop = stop or threading.Event()
        with socket.create_connection(self._address, timeout=SEND_TIMEOUT_SECONDS) as conn:
            for sent, data in enumerate(self._payload):
                if stop.is_set():
                    return sent
                if chunk:
                    for offset in range(0, len(data), chunk):
                        conn.sendall(data[offset : offset + chunk])
                else:
                    conn.sendall(data)
                if self._interval:
                    stop.wait(self._interval)
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_WR)
        return len(self._payload)
