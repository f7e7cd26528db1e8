"""MiVoice Office 250 SMDR simulator: 80-column records with their expected facts, and the PBX.

Contract: ``generate_records(count=..., seed=...)`` returns ``SimulatedRecord`` values cycling
through every call type and marker of formats.md §4.2 (unanswered ``*****``, ``>`` overflow,
``S=`` seconds option, ``*`` trunk disconnect), each with the facts a correct parser must
derive (computed from the chosen values, not by parsing). ``Mivo250SmdrServer`` plays the PBX
socket: it reads the client's login packet (type 0x84, password, NUL), closes the connection at
once on a wrong type or password (the PBX's undocumented reply is modelled as a close), and
otherwise sends each record as a 4-byte little-endian length + text + CR LF. Like the PBX it
serves one SMDR client at a time.

`edge-agent simulate mivo250-smdr` runs it from the command line.
"""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import time as clock_time

from edge_agent.simulators.pbx_server import PbxServer, recv_exactly
from edge_agent.sources.mivo250_socket.framing import (
    LENGTH_BYTES,
    MAX_SMDR_FRAME,
    SMDR_SOCKET_TYPE,
    encode_frame,
    read_login_packet,
)

DEFAULT_PORT = 4000
LOGIN_TIMEOUT_SECONDS = 5.0
SEND_TIMEOUT_SECONDS = 5.0
CALL_TYPES = ("TLD", "IN", "LOC", "DID", "TLC", "O/I", "NET", "CNF", "DSA", "000", "IN")
EXTENSIONS = ("1001", "1207", "1234", "2201")
TRUNKS = ("92001", "92002", "92003")
NUMBERS = ("13125550147", "5550123", "01632960123", "02079460321", "442079460999")


def format_record(
    *,
    call_type: str,
    extension: str,
    trunk: str,
    dialled: str,
    start: clock_time,
    elapsed_seconds: int,
    seconds_option: bool = False,
    cost: str = "$00.00",
    account_code: str = "",
    disconnect: bool = False,
) -> str:
    """One record, exactly 80 characters, in the column template of formats.md §4.2."""
    if seconds_option:
        elapsed = f"S={elapsed_seconds:06d}"
    else:
        hours, rest = divmod(elapsed_seconds, 3600)
        elapsed = f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
    return (
        f"{call_type:<3} {extension:<5} {trunk:<5} {dialled[:28]:<28} "
        f"{start:%H:%M} {elapsed} {cost:<6} {account_code[:12]:<12}{'*' if disconnect else ' '}"
    )


@dataclass(frozen=True, slots=True)
class SimulatedRecord:
    text: str
    call_type: str
    extension: str  # "" for an unanswered ring-in
    trunk: str
    dialled: str  # as it must come out (without a ">")
    start: clock_time
    elapsed_seconds: int
    answered: bool
    account_code: str
    flags: frozenset[str]


def generate_records(
    *, count: int, seed: int = 1, start: clock_time = clock_time(9, 0)
) -> list[SimulatedRecord]:
    rng = random.Random(seed)
    records: list[SimulatedRecord] = []
    for number in range(count):
        call_type = CALL_TYPES[number % len(CALL_TYPES)]
        minute = (start.hour * 60 + start.minute + number) % (24 * 60)
        begin = clock_time(minute // 60, minute % 60)
        unanswered = call_type == "IN" and number % 2 == 0
        overflow = call_type == "TLD" and number % 3 == 0
        seconds_option = number % 4 == 1
        disconnect = not unanswered and number % 2 == 1
        # An overflowing number fills the 28 columns and ends in ">"; the parser drops the mark.
        dialled = "9" * 27 if overflow else ("" if call_type == "IN" else rng.choice(NUMBERS))
        extension = "" if unanswered else rng.choice(EXTENSIONS)
        account = rng.choice(("", "4711", "880042"))
        elapsed = rng.randint(1, 3600)
        text = format_record(
            call_type=call_type,
            extension="*****" if unanswered else extension,
            trunk=rng.choice(TRUNKS),
            dialled=dialled + ">" if overflow else dialled,
            start=begin,
            elapsed_seconds=elapsed,
            seconds_option=seconds_option,
            account_code=account,
            disconnect=disconnect,
        )
        flags = {"unsupervised"} if not unanswered and not disconnect else set()
        if overflow:
            flags.add("dialled_digits_truncated")
        records.append(
            SimulatedRecord(
                text=text,
                call_type=call_type,
                extension=extension,
                trunk=text[10:15].strip(),
                dialled=dialled,
                start=begin,
                elapsed_seconds=elapsed,
                answered=not unanswered,
                account_code=account,
                flags=frozenset(flags),
            )
        )
    return records


class Mivo250SmdrServer:
    """The PBX's SMDR socket: login 0x84 + password, then length-prefixed records."""

    def __init__(
        self,
        texts: Sequence[str],
        *,
        password: str = "",
        host: str = "127.0.0.1",
        port: int = 0,
        interval: float = 0.0,
        split_writes: bool = False,
    ) -> None:
        self._frames = [encode_frame(text.encode("latin-1") + b"\r\n") for text in texts]
        self._password = password
        self._interval = interval
        self._split_writes = split_writes
        self._busy = threading.Lock()  # one SMDR client at a time, as the PBX allows
        self.logins: list[tuple[str, bool]] = []  # (password tried, accepted)
        self.server = PbxServer(self._handle, host=host, port=port)

    def _handle(self, conn: socket.socket, stop: threading.Event) -> None:
        if not self._busy.acquire(blocking=False):
            return  # a second client is refused by closing, as a busy PBX would
        try:
            if self._login(conn, stop):
                self._send(conn, stop)
        finally:
            self._busy.release()

    def _login(self, conn: socket.socket, stop: threading.Event) -> bool:
        conn.settimeout(LOGIN_TIMEOUT_SECONDS)
        header = recv_exactly(conn, LENGTH_BYTES, stop)
        if header is None:
            return False
        length = int.from_bytes(header, "little")
        if not 2 <= length <= MAX_SMDR_FRAME:
            return False
        body = recv_exactly(conn, length, stop)
        if body is None:
            return False
        try:
            login = read_login_packet(body)
        except ValueError:
            return False
        accepted = login.socket_type == SMDR_SOCKET_TYPE and login.password == self._password
        self.logins.append((login.password, accepted))
        return accepted

    def _send(self, conn: socket.socket, stop: threading.Event) -> None:
        conn.settimeout(SEND_TIMEOUT_SECONDS)
        for frame in self._frames:
            if stop.is_set():
                return
            if self._split_writes:  # the worst case for a reader: one byte per segment
                for index in range(len(frame)):
                    conn.sendall(frame[index : index + 1])
            else:
                conn.sendall(frame)
            if self._interval:
                stop.wait(self._interval)
        stop.wait()  # the PBX keeps the socket open and sends records as calls end
