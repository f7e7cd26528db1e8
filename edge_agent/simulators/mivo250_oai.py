"""MiVoice Office 250 System OAI simulator: call event frames with expected facts, and the PBX.

Contract: ``generate_calls(count=..., seed=...)`` returns ``SimulatedOaiCall`` values (inbound,
outbound, held, unanswered, busy, transferred), each with its event payloads at time offsets
from the start and the facts a correct call builder must derive (ring, talk and hold seconds
from the offsets, parties, cause, the transfer link). OAI events carry no time: the agent
stamps them on receipt, so a unit test gives each payload ``received_at = base + offset``.
``interleave`` merges calls in time order and can add noise the parser must keep and count
(unknown event codes, confirmations, SMR frames). The wire format is built with the agent's
own ``mivo250_oai_wire`` helpers, so both sides agree by construction on the one unpublished
part, and the tests pin that format with literal frames.

``Mivo250OaiServer`` plays the PBX: login packet type 0x87 + password + NUL + application name
+ NUL (a wrong type or password closes the connection), ``CF`` confirmations for every command
(``_MS``, ``_NO``), events after the first Monitor Start, ``PE`` (ports exceeded) and a close
for clients beyond ``max_clients``.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from edge_agent.simulators.pbx_server import PbxServer, recv_exactly
from edge_agent.sources.mivo250_oai.wire import join_fields, read_command
from edge_agent.sources.mivo250_socket.framing import (
    LENGTH_BYTES,
    MAX_OAI_FRAME,
    OAI_SOCKET_TYPE,
    encode_frame,
    read_login_packet,
)

DEFAULT_PORT = 4000
LOGIN_TIMEOUT_SECONDS = 5.0
SCENARIOS = ("inbound", "outbound", "held", "unanswered", "busy", "transferred")
EXTENSIONS = ("1001", "1002", "1207", "2201")
TRUNKS = ("92001", "92002")
CALLERS = ("07700900123", "01632960321", "5550147")
DIALLED = ("01632960123", "02079460321", "13125550147")
DIDS = ("02079460300", "02079460301")
MONITOR = "1"


@dataclass(frozen=True, slots=True)
class SimulatedOaiCall:
    call_id: str
    scenario: str
    direction: str  # in / out / unknown (no ES, so no device types)
    answered: bool
    ring_seconds: int
    talk_seconds: int
    hold_seconds: int
    calling: str
    called: str
    extension: str
    trunk: str
    cause: int
    transferred: bool = False
    parent_call_id: str = ""
    frames: tuple[tuple[float, bytes], ...] = field(default=())  # (offset seconds, payload)


def event(code: str, *values: str, piped: frozenset[int] = frozenset()) -> bytes:
    """One live event payload: code, blank resync code, monitor reference, then ``values``."""
    shifted = frozenset(i + 3 for i in piped)
    return join_fields([code, "", MONITOR, *values], piped=shifted).encode("latin-1") + b"\r\n"


def established(
    call_id: str,
    *,
    answering: str,
    answering_outside: str,
    answering_type: str,
    calling: str,
    outside_caller: str,
    trunk_number: str,
    calling_type: str,
) -> bytes:
    return event(
        "ES",
        call_id,
        answering,
        answering_outside,
        answering_type,
        calling,
        outside_caller,
        trunk_number,
        calling_type,
        answering,
        "",
        "C",
        "35",
    )


class _Builder:
    def __init__(self, offset: float) -> None:
        self.now = offset
        self.frames: list[tuple[float, bytes]] = []

    def at(self, seconds: int) -> _Builder:
        self.now += seconds
        return self

    def add(self, payload: bytes) -> None:
        self.frames.append((self.now, payload))


def generate_calls(*, count: int, seed: int = 1) -> list[SimulatedOaiCall]:
    """``count`` scenarios cycling through ``SCENARIOS``, starting 5 s apart.

    A transfer makes two calls (the one cleared with cause 32 and the one that continues), so
    the list can be longer than ``count``.
    """
    rng = random.Random(seed)
    calls: list[SimulatedOaiCall] = []
    for number in range(count):
        calls.extend(_scenario(SCENARIOS[number % len(SCENARIOS)], number, rng))
    return calls


def _scenario(scenario: str, number: int, rng: random.Random) -> list[SimulatedOaiCall]:
    call_id = f"{1000 + number * 2}"
    b = _Builder(offset=5.0 * number)
    ext, ext2 = rng.sample(EXTENSIONS, 2)
    trunk = rng.choice(TRUNKS)
    ring, talk, hold = rng.randint(1, 20), rng.randint(5, 400), rng.randint(2, 60)
    if scenario in ("outbound", "busy"):
        dialled = rng.choice(DIALLED)
        b.add(event("OR", call_id, ext))
        if scenario == "busy":
            b.at(ring).add(event("CC", call_id, "3"))
            return [_call(call_id, scenario, "unknown", b, ring=ring, cause=3)]
        b.at(ring).add(
            established(
                call_id,
                answering=trunk,
                answering_outside=dialled,
                answering_type="E",
                calling=ext,
                outside_caller="",
                trunk_number="",
                calling_type="I",
            )
        )
        b.at(talk).add(event("CC", call_id, "36"))
        return [
            _call(
                call_id,
                scenario,
                "out",
                b,
                ring=ring,
                talk=talk,
                parties=(ext, dialled, ext, trunk),
            )
        ]
    caller, did = rng.choice(CALLERS), rng.choice(DIDS)
    b.add(event("DE", call_id, ext))
    if scenario == "unanswered":
        b.at(ring).add(event("CC", call_id, "10"))
        return [_call(call_id, scenario, "unknown", b, ring=ring, cause=10)]
    inbound = {
        "answering_outside": "",
        "answering_type": "I",
        "calling": trunk,
        "outside_caller": caller,
        "trunk_number": did,
        "calling_type": "E",
    }
    b.at(ring).add(established(call_id, answering=ext, **inbound))
    parties = (caller, did, ext, trunk)
    if scenario == "inbound":
        b.at(talk).add(event("CC", call_id, "36"))
        return [_call(call_id, scenario, "in", b, ring=ring, talk=talk, parties=parties)]
    b.at(talk).add(event("HE", call_id, ext))
    if scenario == "held":
        b.at(hold).add(event("RE", call_id, ext))
        b.at(talk).add(event("CC", call_id, "36"))
        return [
            _call(call_id, scenario, "in", b, ring=ring, talk=2 * talk, hold=hold, parties=parties)
        ]
    # transferred: the first call clears with cause 32 naming the call that continues at ext2
    next_id = f"{1000 + number * 2 + 1}"
    b.at(hold).add(event("TR", call_id, ext2))
    b.add(event("CC", call_id, "32", next_id, ext2))
    first = _call(
        call_id,
        scenario,
        "in",
        b,
        ring=ring,
        talk=talk,
        hold=hold,
        parties=parties,
        transferred=True,
    )
    second = _Builder(offset=b.now)
    second.add(event("DE", next_id, ext2))
    ring2 = 3
    second.at(ring2).add(established(next_id, answering=ext2, **inbound))
    second.at(talk).add(event("CC", next_id, "36"))
    follow = _call(
        next_id,
        scenario,
        "in",
        second,
        ring=ring2,
        talk=talk,
        parties=(caller, did, ext2, trunk),
        parent=call_id,
    )
    return [first, follow]


def _call(
    call_id: str,
    scenario: str,
    direction: str,
    b: _Builder,
    *,
    ring: int,
    talk: int = 0,
    hold: int = 0,
    cause: int = 36,
    parties: tuple[str, str, str, str] = ("", "", "", ""),
    transferred: bool = False,
    parent: str = "",
) -> SimulatedOaiCall:
    calling, called, extension, trunk = parties
    return SimulatedOaiCall(
        call_id=call_id,
        scenario=scenario,
        direction=direction,
        answered=bool(talk),
        ring_seconds=ring,
        talk_seconds=talk,
        hold_seconds=hold,
        calling=calling,
        called=called,
        extension=extension,
        trunk=trunk,
        cause=32 if transferred else cause,
        transferred=transferred,
        parent_call_id=parent,
        frames=tuple(b.frames),
    )


NOISE = (
    b"ZZQ,,1,something new\r\n",  # an event code this build does not know
    b"NM,,1,1\r\n",  # night mode: a known system event, not a call
)


def interleave(
    calls: Sequence[SimulatedOaiCall], *, noise_every: int = 0, sequence: bool = False
) -> list[tuple[float, bytes]]:
    """All frames in time order; ``noise_every`` adds a non-call frame after every N frames;
    ``sequence`` prefixes each frame with a running sequence number (§5.2's open point)."""
    timed = sorted(
        (
            (offset, order, payload)
            for order, (offset, payload) in enumerate(
                frame for call in calls for frame in call.frames
            )
        ),
        key=lambda item: (item[0], item[1]),
    )
    frames: list[tuple[float, bytes]] = []
    for index, (offset, _, payload) in enumerate(timed):
        frames.append((offset, payload))
        if noise_every and index % noise_every == noise_every - 1:
            frames.append((offset, NOISE[(index // noise_every) % len(NOISE)]))
    if sequence:
        frames = [
            (offset, b"%d," % (n + 1) + payload) for n, (offset, payload) in enumerate(frames)
        ]
    return frames


def smr_event(text: str, *, node: str = "1") -> bytes:
    """An SMR frame carrying one SMDR record's text (a system monitor must be running)."""
    return event("SMR", node, text, piped=frozenset({1}))


# --- the PBX side over TCP ------------------------------------------------------------------------


class Mivo250OaiServer:
    """The PBX's OAI socket (see the module docstring)."""

    def __init__(
        self,
        frames: Sequence[tuple[float, bytes]],
        *,
        password: str = "",
        host: str = "127.0.0.1",
        port: int = 0,
        speed: float = 0.0,
        max_clients: int = 4,
    ) -> None:
        self._frames = list(frames)
        self._password = password
        self._speed = speed  # 0: send as fast as possible; 1.0: real time
        self._max_clients = max_clients
        self._clients = 0
        self._lock = threading.Lock()
        self.commands: list[str] = []  # every command received, e.g. "_MS,1,,8"
        self.logins: list[tuple[str, str | None, bool]] = []  # (password, app name, accepted)
        self.server = PbxServer(self._handle, host=host, port=port)

    def _handle(self, conn: socket.socket, stop: threading.Event) -> None:
        with self._lock:
            self._clients += 1
            over = self._clients > self._max_clients
        try:
            if not self._login(conn, stop):
                return
            if over:
                conn.sendall(encode_frame(event("PE")))
                return
            self._session(conn, stop)
        finally:
            with self._lock:
                self._clients -= 1

    def _login(self, conn: socket.socket, stop: threading.Event) -> bool:
        conn.settimeout(LOGIN_TIMEOUT_SECONDS)
        body = _read_frame(conn, stop)
        if body is None:
            return False
        try:
            login = read_login_packet(body)
        except ValueError:
            return False
        accepted = login.socket_type == OAI_SOCKET_TYPE and login.password == self._password
        self.logins.append((login.password, login.app_name, accepted))
        return accepted

    def _session(self, conn: socket.socket, stop: threading.Event) -> None:
        conn.settimeout(0.2)
        monitoring = threading.Event()
        done = threading.Event()
        send_lock = threading.Lock()  # the reader answers commands while the sender streams
        sender = threading.Thread(
            target=self._send_events, args=(conn, send_lock, stop, monitoring, done), daemon=True
        )
        sender.start()
        try:
            while not stop.is_set():
                body = _read_frame(conn, stop)
                if body is None:
                    return
                command = read_command(body)
                if command is None:
                    continue
                with self._lock:
                    self.commands.append(body.decode("latin-1").rstrip("\r"))
                reply = join_fields(["CF", command.name, command.invoke_id, "0"]) + "\r\n"
                with send_lock:
                    conn.sendall(encode_frame(reply.encode("latin-1")))
                if command.name == "MS":
                    monitoring.set()
        finally:
            done.set()
            sender.join(5.0)

    def _send_events(
        self,
        conn: socket.socket,
        send_lock: threading.Lock,
        stop: threading.Event,
        monitoring: threading.Event,
        done: threading.Event,
    ) -> None:
        while not monitoring.wait(0.05):
            if stop.is_set() or done.is_set():
                return
        began = time.monotonic()
        for offset, payload in self._frames:
            if stop.is_set() or done.is_set():
                return
            if self._speed:
                delay = began + offset / self._speed - time.monotonic()
                if delay > 0 and done.wait(delay):
                    return
            try:
                with send_lock:
                    conn.sendall(encode_frame(payload))
            except OSError:
                return


def _read_frame(conn: socket.socket, stop: threading.Event) -> bytes | None:
    header = recv_exactly(conn, LENGTH_BYTES, stop)
    if header is None:
        return None
    length = int.from_bytes(header, "little")
    if not 1 <= length <= MAX_OAI_FRAME:
        return None
    return recv_exactly(conn, length, stop)
