"""Length-prefixed framing of the MiVoice Office 250 sockets (SMDR 0x84 and System OAI 0x87).

Contract: every packet in both directions is a 4-byte little-endian byte count followed by that
many bytes (formats.md §4.1, §5.2). ``FrameDecoder`` turns any split of the TCP byte stream into
the same list of payloads (partial reads, several frames in one read, a frame split across reads)
and raises ``SourceError`` naming the bad length as soon as the stream is out of step, so the
acquirer can reconnect and log in again. ``login_packet`` builds the first packet a client sends;
``read_login_packet`` is its inverse, used by the simulators to play the PBX.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from shared.errors import SourceError

SMDR_SOCKET_TYPE = 0x84
OAI_SOCKET_TYPE = 0x87
LENGTH_BYTES = 4
MIN_SMDR_FRAME = (
    3  # formats.md §4.1: anything shorter cannot be a record; the stream is out of step
)
MIN_OAI_FRAME = 2  # the shortest OAI frame is a bare two-letter event code
MAX_SMDR_FRAME = 1024
MAX_OAI_FRAME = 8192  # OAI events are longer than SMDR lines; still far below any real frame
MAX_PASSWORD = 15  # the PBX's programming field holds at most 15 characters
_LENGTH = struct.Struct("<I")


def encode_frame(payload: bytes) -> bytes:
    """Prefix ``payload`` with its 4-byte little-endian length."""
    return _LENGTH.pack(len(payload)) + payload


def login_packet(socket_type: int, password: str, *, app_name: str | None = None) -> bytes:
    """The client's first packet: type byte, password, NUL (and for OAI an application name, NUL).

    >>> login_packet(SMDR_SOCKET_TYPE, "pw").hex(" ")
    '04 00 00 00 84 70 77 00'
    """
    body = bytes([socket_type]) + password.encode("ascii") + b"\x00"
    if app_name is not None:
        body += app_name.encode("ascii") + b"\x00"
    return encode_frame(body)


@dataclass(frozen=True, slots=True)
class Login:
    """A decoded login packet (what the PBX side sees)."""

    socket_type: int
    password: str
    app_name: str | None


def read_login_packet(payload: bytes) -> Login:
    """Decode a login payload (without its length prefix); ``ValueError`` if it is not one."""
    if len(payload) < 2 or payload[-1:] != b"\x00":
        raise ValueError("a login packet is a type byte, a password and a NUL")
    parts = payload[1:-1].split(b"\x00")
    if len(parts) > 2:
        raise ValueError("a login packet has at most a password and an application name")
    password = parts[0].decode("ascii", "replace")
    app_name = parts[1].decode("ascii", "replace") if len(parts) == 2 else None
    return Login(socket_type=payload[0], password=password, app_name=app_name)


class StreamFault(SourceError):
    """The stream cannot go on; ``units`` are the bytes read so far that must still be journalled.

    Raised from a framer's ``feed``: the acquirer delivers ``units`` (nothing read is lost), reports
    the message, drops the connection and logs in again after a back-off.
    """

    exit_code = 5

    def __init__(self, message: str, *, units: list[bytes]) -> None:
        super().__init__(message)
        self.units = units


class FrameDecoder:
    """Incremental decoder: feed TCP chunks, get complete payloads in order.

    A length outside ``min_frame..max_frame`` raises ``StreamFault`` carrying the frames decoded
    from the same chunk and then every byte not yet framed (as one unit), so the journal keeps
    them; the decoder is then spent (a new connection gets a new decoder).
    """

    def __init__(self, *, min_frame: int, max_frame: int, service: str) -> None:
        self._buffer = bytearray()
        self._min_frame = min_frame
        self._max_frame = max_frame
        self._service = service

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buffer += chunk
        frames: list[bytes] = []
        while len(self._buffer) >= LENGTH_BYTES:
            (length,) = _LENGTH.unpack_from(self._buffer)
            if not self._min_frame <= length <= self._max_frame:
                unread = bytes(self._buffer)
                self._buffer.clear()
                raise StreamFault(
                    f"{self._service} framing error: length prefix {length} "
                    f"(bytes {unread[:LENGTH_BYTES].hex(' ')}) is outside "
                    f"{self._min_frame}..{self._max_frame}; the stream is out of step, so the "
                    "connection is dropped and logged in again",
                    units=[*frames, unread],
                )
            end = LENGTH_BYTES + length
            if len(self._buffer) < end:
                break
            frames.append(bytes(self._buffer[LENGTH_BYTES:end]))
            del self._buffer[:end]
        return frames

    @property
    def pending(self) -> bytes:
        """Bytes of an unfinished frame (length prefix included), as received."""
        return bytes(self._buffer)
