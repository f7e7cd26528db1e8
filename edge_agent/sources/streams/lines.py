"""Line framing for text streams (SMDR, IP SMDR): CR LF, LF-only, CR CR LF all end a line.

The framer returns each line's bytes exactly as received minus the terminator, so the journal
keeps trailing spaces and stray control bytes; parsers clean their own copy.
"""

from __future__ import annotations

from collections.abc import Iterator

MAX_LINE_BYTES = 4096  # a longer "line" is a framing fault; it is cut and quarantined downstream


class LineFramer:
    """Incremental splitter: feed socket chunks, get complete lines."""

    def __init__(self, *, max_line: int = MAX_LINE_BYTES) -> None:
        self._buffer = bytearray()
        self._max_line = max_line

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buffer += chunk
        lines: list[bytes] = []
        while True:
            index = self._buffer.find(b"\n")
            if index < 0:
                break
            lines.append(bytes(self._buffer[:index]).rstrip(b"\r"))
            del self._buffer[: index + 1]
        while len(self._buffer) > self._max_line:
            lines.append(bytes(self._buffer[: self._max_line]))
            del self._buffer[: self._max_line]
        return lines

    @property
    def pending(self) -> bytes:
        """Bytes of an unfinished line (kept across reconnects is wrong: callers drop it)."""
        return bytes(self._buffer)


def split_lines(data: bytes) -> Iterator[bytes]:
    """Frame a whole captured file; a last line without a terminator still counts."""
    framer = LineFramer()
    yield from framer.feed(data)
    if framer.pending.strip(b"\r\x00 "):
        yield framer.pending.rstrip(b"\r")
