"""Plain SIP (RFC 3261) and its SDP bodies (RFC 4566), parsed tolerantly.

- ``parse_sip(data)`` reads one message: start line, headers (case-insensitive, compact forms,
  folded lines), and the body cut at Content-Length. Anything that is not SIP returns ``None``;
  it never raises.
- ``parse_sdp(body)`` reads what a recorder needs from SDP: each audio stream's connection
  address, port, payload types with their rtpmap names, direction, and whether it is SRTP
  (``RTP/SAVP``/``SAVPF`` profile or ``a=crypto``).
- ``TcpSipFramer`` cuts a TCP byte stream into messages by Content-Length (several messages per
  segment, or one message split over segments).

One small line-oriented parser, no regular expressions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SIP_VERSION = "SIP/2.0"
COMPACT = {
    "i": "call-id",
    "f": "from",
    "t": "to",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
    "v": "via",
}
MAX_TCP_BUFFER = 256 * 1024
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


@dataclass(frozen=True)
class SipMessage:
    """One SIP request (``method`` set) or response (``status`` set)."""

    method: str | None
    request_uri: str | None
    status: int | None
    headers: dict[str, str]
    body: bytes
    raw: bytes

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    @property
    def call_id(self) -> str:
        return self.header("call-id").strip()

    @property
    def cseq_method(self) -> str:
        parts = self.header("cseq").split()
        return parts[1].upper() if len(parts) == 2 else ""

    @property
    def has_sdp(self) -> bool:
        return "application/sdp" in self.header("content-type").lower() and bool(self.body)


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _start_line(line: str) -> tuple[str | None, str | None, int | None] | None:
    parts = line.split(" ", 2)
    if len(parts) < 2:
        return None
    if parts[0] == SIP_VERSION:
        code = parts[1]
        if len(code) == 3 and code.isdigit():
            return None, None, int(code)
        return None
    if len(parts) == 3 and parts[2].strip() == SIP_VERSION and parts[0].isalpha():
        return parts[0].upper(), parts[1], None
    return None


def _headers(lines: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    last = ""
    for line in lines:
        if line[:1] in (" ", "\t") and last:
            headers[last] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        key = COMPACT.get(key, key)
        last = key
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return headers


def split_head(data: bytes) -> tuple[bytes, bytes] | None:
    """The header block and the rest, split at the first blank line (CRLF or bare LF)."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        head, sep, rest = data.partition(separator)
        if sep:
            return head, rest
    return None


def content_length(headers: dict[str, str]) -> int | None:
    value = headers.get("content-length", "").strip()
    return int(value) if value.isdigit() else None


def parse_sip(data: bytes) -> SipMessage | None:
    """The SIP message in ``data``, or None if it is not one (never raises)."""
    parts = split_head(data) or (data, b"")
    head, rest = parts
    lines = _decode(head).replace("\r\n", "\n").split("\n")
    start = _start_line(lines[0].strip()) if lines else None
    if start is None:
        return None
    method, uri, status = start
    headers = _headers(lines[1:])
    length = content_length(headers)
    body = rest if length is None else rest[:length]
    return SipMessage(method, uri, status, headers, bytes(body), bytes(data))


def user_part(header_value: str) -> str:
    """The user of a From/To/P-Asserted-Identity value: ``"Bob" <sip:2001@pbx>;tag=x`` → 2001."""
    inside = header_value.partition("<")[2].partition(">")[0]
    value = (inside if "<" in header_value else header_value.partition(";")[0]).strip()
    for scheme in ("sips:", "sip:", "tel:"):
        if value.lower().startswith(scheme):
            value = value[len(scheme) :]
            break
    user, at, _host = value.partition("@")
    return user.partition(";")[0] if at or not value.count(".") else ""


def tag(header_value: str) -> str:
    """The ``tag`` parameter of a From/To value ('' when there is none)."""
    tail = header_value.rpartition(">")[2] if ">" in header_value else header_value
    for param in tail.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "tag":
            return value.strip()
    return ""


@dataclass
class SdpMedia:
    """One ``m=audio`` stream of an SDP body."""

    address: str
    port: int
    profile: str
    payload_types: list[int]
    rtpmap: dict[int, str] = field(default_factory=dict)
    direction: str = "sendrecv"
    crypto: bool = False

    @property
    def encrypted(self) -> bool:
        return self.crypto or "SAVP" in self.profile.upper()

    def codec_name(self, payload_type: int) -> str:
        return self.rtpmap.get(payload_type, "").partition("/")[0].upper()


def _connection(value: str) -> str:
    parts = value.split()
    return parts[2].partition("/")[0] if len(parts) >= 3 else ""


def _media(value: str, address: str) -> SdpMedia | None:
    parts = value.split()
    if len(parts) < 3 or parts[0] != "audio" or not parts[1].partition("/")[0].isdigit():
        return None
    types = [int(pt) for pt in parts[3:] if pt.isdigit() and int(pt) < 128]
    return SdpMedia(address, int(parts[1].partition("/")[0]), parts[2], types)


def _attribute(media: SdpMedia, value: str) -> None:
    name, _, rest = value.partition(":")
    if name == "rtpmap":
        pt, _, encoding = rest.partition(" ")
        if pt.isdigit():
            media.rtpmap[int(pt)] = encoding.strip()
    elif name == "crypto":
        media.crypto = True
    elif name in DIRECTIONS:
        media.direction = name


def parse_sdp(body: bytes) -> list[SdpMedia]:
    """The audio streams an SDP body describes (media-level ``c=`` wins over session-level)."""
    session_address = ""
    streams: list[SdpMedia] = []
    current: SdpMedia | None = None
    in_other_media = False
    for raw in _decode(body).replace("\r\n", "\n").split("\n"):
        kind, sep, value = raw.strip().partition("=")
        if not sep or len(kind) != 1:
            continue
        if kind == "m":
            current = _media(value, session_address)
            in_other_media = current is None
            if current is not None:
                streams.append(current)
        elif kind == "c":
            if current is not None:
                current.address = _connection(value)
            elif not in_other_media:
                session_address = _connection(value)
        elif kind == "a" and current is not None:
            _attribute(current, value)
    return streams


class TcpSipFramer:
    """Cuts one TCP direction's bytes into SIP messages by Content-Length."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[SipMessage]:
        self._buffer.extend(data)
        if len(self._buffer) > MAX_TCP_BUFFER:
            self._buffer.clear()  # not SIP, or lost sync: start again with the next segment
            return []
        messages: list[SipMessage] = []
        while True:
            while self._buffer[:2] == b"\r\n":
                del self._buffer[:2]  # keep-alive CRLFs between messages
            parts = split_head(bytes(self._buffer))
            if parts is None:
                return messages
            head, rest = parts
            headers = _headers(_decode(head).replace("\r\n", "\n").split("\n")[1:])
            length = content_length(headers) or 0
            if len(rest) < length:
                return messages
            size = len(self._buffer) - len(rest) + length
            message = parse_sip(bytes(self._buffer[:size]))
            del self._buffer[:size]
            if message is not None:
                messages.append(message)
