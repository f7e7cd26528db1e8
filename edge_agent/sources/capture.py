"""A driver's parser over a capture file, exactly as the running agent would parse it.

``edge-agent parse`` (``edge_agent.commands.parse``) uses it before a source goes live: every
unit of the file, as the driver's file framer cuts it, is fed to the parser with one receive
time; at the end, event-stream parsers close their open calls as if ``END_OF_FILE_HORIZON``
had passed, so no call is left waiting for an event the file does not hold.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from edge_agent.sources.base import ParseResult, ParserKit, RawUnit

# At the end of the file, event-stream parsers close open calls as if this much time had passed.
END_OF_FILE_HORIZON = timedelta(days=366)


def parse_capture(
    kit: ParserKit, data: bytes, *, source_id: str, received_at: datetime
) -> list[ParseResult]:
    """Every ICDR and quarantined unit of ``data``, in the order the parser produced them."""
    results: list[ParseResult] = []
    for seq, unit_data in enumerate(kit.file_framer(data), start=1):
        results.extend(kit.parser.feed(RawUnit(source_id, seq, received_at, unit_data)))
    results.extend(kit.parser.flush(received_at + END_OF_FILE_HORIZON))
    return results
