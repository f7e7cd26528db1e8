"""System OAI: the wire decoding layer, call building per Call_ID, SMR text, the link framer."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from edge_agent.cli import main
from edge_agent.simulators.mivo250_oai import established, event, smr_event
from edge_agent.sources.base import ParseResult, Quarantined, RawUnit, SourceContext
from edge_agent.sources.mivo250_oai.calls import OaiParser
from edge_agent.sources.mivo250_oai.driver import (
    OaiFramer,
    Settings,
    _Session,
    make_parser,
    read_settings,
)
from edge_agent.sources.mivo250_oai.wire import (
    OaiEvent,
    decode_event,
    join_fields,
    monitor_start,
    no_operation,
    read_command,
    split_fields,
)
from edge_agent.sources.mivo250_socket.framing import StreamFault, encode_frame
from edge_agent.sources.rejection import Rejection
from shared.errors import ConfigError
from shared.icdr import ICDR, Completion, Direction, format_time, make_record_id

CTX = SourceContext(agent_id="agent-1", source_id="oai", timezone=ZoneInfo("America/Chicago"))
BASE = datetime(2026, 5, 14, 15, 0, tzinfo=UTC)
TLD = "TLD 1234  92001 13125550147                  09:55 00:03:27 $00.00 4711        *"

# --- the wire layer ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("a,b,c", ["a", "b", "c"]),
        ("a,,c,", ["a", "", "c", ""]),
        ("SMR,,1,2,|TLD 1234, x|", ["SMR", "", "1", "2", "TLD 1234, x"]),
        ("x,||,y", ["x", "", "y"]),
        ("x,|a|b|c|,y", ["x", "abc", "y"]),
        ("x,|open", None),
    ],
)
def test_split_fields_honours_pipe_quoting(text: str, fields: list[str] | None) -> None:
    assert split_fields(text) == fields
    if fields is not None and "|a|" not in text:
        assert split_fields(join_fields(fields, piped=frozenset(range(len(fields))))) == fields


ES_FIELDS = {
    "resync": "",
    "monitor": "1",
    "call_id": "1042",
    "answering_extension": "1207",
    "answering_outside_number": "",
    "answering_device_type": "I",
    "calling_extension": "92001",
    "outside_caller_number": "07700900123",
    "trunk_outside_number": "02079460300",
    "calling_device_type": "E",
    "originally_called": "1207",
    "last_redirecting_extension": "",
    "connection_state": "C",
    "cause": "35",
}
ES_TEXT = "ES,,1,1042,1207,,I,92001,07700900123,02079460300,E,1207,,C,35"


@pytest.mark.parametrize(
    ("payload", "sequence"),
    [
        (ES_TEXT.encode() + b"\r\n", None),
        (b"17," + ES_TEXT.encode(), 17),  # the library's leading sequence field
        (ES_TEXT.encode() + b"\x00\x00", None),
    ],
)
def test_decode_established_with_or_without_a_sequence_field(
    payload: bytes, sequence: int | None
) -> None:
    decoded = decode_event(payload)
    assert decoded == OaiEvent(
        code="ES", category="call", sequence=sequence, fields=ES_FIELDS, extra_fields=()
    )
    assert (decoded.call_id, decoded.cause, decoded.resync) == ("1042", 35, "")


def test_the_simulator_builds_the_literal_wire_text() -> None:
    frame = established(
        "1042",
        answering="1207",
        answering_outside="",
        answering_type="I",
        calling="92001",
        outside_caller="07700900123",
        trunk_number="02079460300",
        calling_type="E",
    )
    assert frame == ES_TEXT.encode() + b"\r\n"
    assert smr_event("TLD 1, x") == b"SMR,,1,1,|TLD 1, x|\r\n"


@pytest.mark.parametrize(
    ("payload", "code", "category", "fields", "extra"),
    [
        (b"CC,,1,1042,32,1043,1208", "CC", "call",
         {"resync": "", "monitor": "1", "call_id": "1042", "cause": "32",
          "transferred_call_id": "1043", "transfer_destination": "1208"}, ()),
        (b"CC,0,1,1042,36,,,NEW,FIELDS", "CC", "call",
         {"resync": "0", "monitor": "1", "call_id": "1042", "cause": "36",
          "transferred_call_id": "", "transfer_destination": ""}, ("NEW", "FIELDS")),
        (b"HE,,1,1042,1207", "HE", "call",
         {"resync": "", "monitor": "1", "call_id": "1042"}, ("1207",)),
        (b"SMR,,3,1,|" + TLD.encode() + b"|", "SMR", "misc",
         {"resync": "", "monitor": "3", "node": "1", "smdr_text": TLD}, ()),
        (b"CF,_NO,100,0", "CF", "confirmation", {"command": "_NO", "invoke_id": "100"}, ("0",)),
        (b"NM,,1,1", "NM", "system", {"resync": "", "monitor": "1"}, ("1",)),
        (b"LN,,1,4001", "LN", "agent", {"resync": "", "monitor": "1"}, ("4001",)),
        (b"ZZQ,,1,a,b", "ZZQ", "unknown", {}, ("", "1", "a", "b")),
        (b"PE", "PE", "misc", {}, ()),
    ],
)  # fmt: skip
def test_event_layouts(
    payload: bytes, code: str, category: str, fields: dict[str, str], extra: tuple[str, ...]
) -> None:
    decoded = decode_event(payload)
    assert isinstance(decoded, OaiEvent)
    assert (decoded.code, decoded.category, dict(decoded.fields), decoded.extra_fields) == (
        code, category, fields, extra,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "empty_frame"),
        (b"\r\n", "empty_frame"),
        (b"es,,1,1", "undecodable"),
        (b"12345", "undecodable"),
        (b"ES,,1,|1042", "undecodable"),
        (b"ES,\x01,1", "undecodable"),
    ],
)
def test_frames_that_do_not_decode(payload: bytes, reason: str) -> None:
    result = decode_event(payload)
    assert isinstance(result, Rejection)
    assert result.reason == reason


def test_commands_on_the_wire() -> None:
    assert monitor_start(1, 8) == b"_MS,1,,8\r"
    assert monitor_start(3, 11, filters="FFFF") == b"_MS,3,,11,FFFF\r"
    assert no_operation(100) == b"_NO,100\r"
    command = read_command(b"_MS,1,,8\r")
    assert command is not None
    assert (command.name, command.invoke_id, command.args) == ("MS", "1", ("", "8"))
    assert read_command(b"MS,1") is None


# --- call building -----------------------------------------------------------------------------


def feed(parser: OaiParser, frames: list[tuple[int, bytes]]) -> list[ParseResult]:
    results: list[ParseResult] = []
    for seq, (offset, payload) in enumerate(frames, start=1):
        results += parser.feed(RawUnit("oai", seq, BASE + timedelta(seconds=offset), payload))
    return results


def only_icdrs(results: list[ParseResult]) -> list[ICDR]:
    return [r for r in results if isinstance(r, ICDR)]


INBOUND = {
    "answering_outside": "", "answering_type": "I", "calling": "92001", "outside_caller": "07700900123",
    "trunk_number": "02079460300", "calling_type": "E",
}  # fmt: skip
OUTBOUND = {
    "answering_outside": "01632960123", "answering_type": "E", "calling": "1207", "outside_caller": "",
    "trunk_number": "", "calling_type": "I",
}  # fmt: skip


def test_inbound_call_with_hold() -> None:
    frames = [
        (0, event("DE", "1042", "1207")),
        (8, established("1042", answering="1207", **INBOUND)),
        (68, event("HE", "1042", "1207")),
        (98, event("RE", "1042", "1207")),
        (128, event("CC", "1042", "36")),
    ]
    (call,) = only_icdrs(feed(OaiParser(CTX), frames))
    assert (call.start, call.answer, call.end) == (
        BASE, BASE + timedelta(seconds=8), BASE + timedelta(seconds=128),
    )  # fmt: skip
    assert (call.ring_seconds, call.talk_seconds, call.hold_seconds) == (8, 90, 30)
    assert (call.direction, call.calling, call.called, call.extension, call.trunk) == (
        Direction.IN, "07700900123", "02079460300", "1207", "92001",
    )  # fmt: skip
    assert (call.ani, call.dnis, call.completion, call.completion_source) == (
        "07700900123", "02079460300", Completion.ANSWERED, "36",
    )  # fmt: skip
    assert call.record_id == make_record_id("agent-1", "oai", "1042", format_time(BASE))
    assert call.extra["events"] == "DE,ES,HE,RE,CC"
    assert call.extra["cause_name"] == "normal_clear"
    assert call.utc_offset_minutes == -300
    assert call.flags == ()


def test_outbound_call() -> None:
    frames = [
        (0, event("OR", "2001", "1207")),
        (5, established("2001", answering="92002", **OUTBOUND)),
        (65, event("CC", "2001", "36")),
    ]
    (call,) = only_icdrs(feed(OaiParser(CTX), frames))
    assert (call.direction, call.calling, call.called, call.dialled_digits) == (
        Direction.OUT, "1207", "01632960123", "01632960123",
    )  # fmt: skip
    assert (call.extension, call.trunk, call.talk_seconds, call.ring_seconds) == (
        "1207", "92002", 60, 5,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("cause", "completion"),
    [("10", Completion.NO_ANSWER), ("3", Completion.BUSY), ("33", Completion.BUSY),
     ("29", Completion.FAILED), ("36", Completion.NO_ANSWER), ("", Completion.NO_ANSWER)],
)  # fmt: skip
def test_unanswered_calls_take_their_outcome_from_the_cause(
    cause: str, completion: Completion
) -> None:
    frames = [(0, event("DE", "7", "1207")), (20, event("CC", "7", cause))]
    (call,) = only_icdrs(feed(OaiParser(CTX), frames))
    assert (call.answered, call.completion, call.ring_seconds, call.talk_seconds) == (
        False, completion, 20, 0,
    )  # fmt: skip


def test_a_failed_event_marks_the_call_failed() -> None:
    frames = [(0, event("OR", "7", "1207")), (1, event("FA", "7")), (2, event("CC", "7", "36"))]
    (call,) = only_icdrs(feed(OaiParser(CTX), frames))
    assert call.completion is Completion.FAILED


def test_a_transfer_links_the_continuing_call_to_its_parent() -> None:
    frames = [
        (0, event("DE", "1042", "1207")),
        (3, established("1042", answering="1207", **INBOUND)),
        (40, event("HE", "1042", "1207")),
        (50, event("TR", "1042", "1208")),
        (50, event("CC", "1042", "32", "1043", "1208")),
        (50, event("DE", "1043", "1208")),
        (54, established("1043", answering="1208", **INBOUND)),
        (154, event("CC", "1043", "36")),
    ]
    first, second = only_icdrs(feed(OaiParser(CTX), frames))
    assert (first.call_id, first.transferred, first.third_party, first.completion_source) == (
        "1042", True, "1208", "32",
    )  # fmt: skip
    assert (first.talk_seconds, first.hold_seconds) == (37, 10)
    assert first.extra["transferred_call_id"] == "1043"
    assert (second.call_id, second.parent_call_id, second.extension, second.talk_seconds) == (
        "1043", "1042", "1208", 100,
    )  # fmt: skip


def test_termination_only_and_partial_calls_are_flagged() -> None:
    frames = [
        (0, event("CC", "5", "36")),
        (1, established("6", answering="1207", **INBOUND)),
        (31, event("CC", "6", "36")),
    ]
    only_cc, partial = only_icdrs(feed(OaiParser(CTX), frames))
    assert (only_cc.flags, only_cc.start, only_cc.end) == (("termination_only",), BASE, BASE)
    assert partial.flags == ("partial",)
    assert partial.talk_seconds == 30


def test_resync_repeats_late_events_and_reused_ids() -> None:
    frames = [
        (0, event("DE", "9", "1207")),
        (2, established("9", answering="1207", **INBOUND)),
        # a resync burst (resync code 1) repeats the ES
        (3, b"ES,1,1," + established("9", answering="1207", **INBOUND)[6:]),
        (10, event("CC", "9", "36")),
        (11, event("CC", "9", "36")),  # repeated after the call cleared
        (12, event("HE", "9")),  # late: the call already cleared
        (20, event("DE", "9", "1208")),  # the PBX reuses the Call_ID for a new call
        (25, event("CC", "9", "10")),
    ]
    results = feed(OaiParser(CTX), frames)
    reasons = [(r.seq, r.reason) for r in results if isinstance(r, Quarantined)]
    assert reasons == [(3, "repeated_event"), (5, "repeated_event"), (6, "late_event")]
    first, reused = only_icdrs(results)
    assert (first.talk_seconds, first.extra["journal_seqs"]) == (8, "1,2,4")
    assert (reused.start, reused.answered) == (BASE + timedelta(seconds=20), False)
    assert first.record_id != reused.record_id


def test_non_call_frames_are_kept_with_a_reason_and_counted() -> None:
    frames = [(0, b"ZZQ,,1,x"), (0, b"NM,,1,1"), (0, b"CF,_MS,1,0"), (0, b"\x01\x02"), (0, b"ZZQ")]
    parser = OaiParser(CTX)
    results = feed(parser, frames)
    assert [(r.reason, r.raw) for r in results if isinstance(r, Quarantined)] == [
        ("unknown_event", b"ZZQ,,1,x"),
        ("not_a_call_event", b"NM,,1,1"),
        ("not_a_call_event", b"CF,_MS,1,0"),
        ("undecodable", b"\x01\x02"),
        ("unknown_event", b"ZZQ"),
    ]
    assert parser.counts == {"ZZQ": 2, "NM": 1, "CF": 1, "?": 1}


def test_calls_time_out_and_oldest_needed_seq_follows_the_open_calls() -> None:
    parser = OaiParser(CTX, idle_timeout=timedelta(minutes=10))
    feed(parser, [(0, event("DE", "1", "1207")), (5, event("DE", "2", "1208"))])
    assert parser.oldest_needed_seq() == 1
    (timed_out,) = only_icdrs(parser.flush(BASE + timedelta(minutes=10)))
    assert (timed_out.call_id, timed_out.flags) == ("1", ("timed_out",))
    assert parser.oldest_needed_seq() == 2
    assert parser.flush(BASE + timedelta(minutes=10)) == []


def test_smr_text_is_parsed_by_the_smdr_record_parser() -> None:
    parser = OaiParser(CTX, calls_from="smr")
    frames = [(0, smr_event(TLD)), (0, smr_event("TYP EXT#")), (0, event("DE", "1", "1207"))]
    results = feed(parser, frames)
    call = results[0]
    assert isinstance(call, ICDR)
    assert (call.source_kind, call.direction, call.talk_seconds, call.account_code) == (
        "mivo250-oai", Direction.OUT, 207, "4711",
    )  # fmt: skip
    assert call.start == datetime(2026, 5, 14, 14, 55, tzinfo=UTC)  # 09:55 CDT
    assert (call.extra["transport"], call.extra["node"], call.raw) == ("oai-smr", "1", TLD)
    assert [(r.reason) for r in results[1:] if isinstance(r, Quarantined)] == [
        "header_line",
        "call_event_not_used",
    ]


def test_smr_frames_are_not_billed_twice_in_events_mode() -> None:
    (result,) = feed(OaiParser(CTX), [(0, smr_event(TLD))])
    assert isinstance(result, Quarantined)
    assert result.reason == "smr_not_used"


# --- the link framer ------------------------------------------------------------------------------


def test_framer_consumes_only_its_own_keepalive_confirmations() -> None:
    left, right = socket.socketpair()
    with left, right:
        session = _Session(sock=left, outstanding={"100", "101"})
        framer = OaiFramer(session)
        stream = b"".join(
            encode_frame(p) for p in (b"CF,NO,101,0", b"CF,NO,555,0", b"CF,MS,1,0", b"DE,,1,9,1207")
        )
        assert framer.feed(stream) == [b"CF,NO,555,0", b"CF,MS,1,0", b"DE,,1,9,1207"]
        assert session.outstanding == set()


def test_ports_exceeded_is_a_stream_fault_that_keeps_the_frames() -> None:
    left, right = socket.socketpair()
    with left, right:
        framer = OaiFramer(_Session(sock=left))
        with pytest.raises(StreamFault, match="ports exceeded") as info:
            framer.feed(encode_frame(b"NM,,1,1") + encode_frame(b"PE"))
        assert info.value.units == [b"NM,,1,1", b"PE"]


def test_settings_and_monitors() -> None:
    settings = read_settings(CTX, {"host": "127.0.0.1"})
    assert isinstance(settings, Settings)
    assert settings.monitors() == [b"_MS,1,,8\r", b"_MS,2,,4\r"]
    smr = read_settings(CTX, {"calls_from": "smr", "monitor_trunks": "false"})
    assert smr.monitors() == [b"_MS,1,,8\r", b"_MS,3,,11\r"]


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"calls_from": "both"}, "calls_from"),
        ({"keepalive_seconds": 0}, "keepalive_seconds"),
        ({"monitor_trunks": "maybe"}, "monitor_trunks"),
        ({"app_name": "caf\u00e9"}, "app_name"),
    ],
)
def test_bad_options_name_the_key(options: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_parser(CTX, options)
    assert info.value.key == f"sources.oai.{key}"


def test_edge_agent_parse_reads_captured_frames_as_lines(tmp_path: Path) -> None:
    capture = tmp_path / "oai.txt"
    capture.write_bytes(
        event("DE", "1", "1207") + established("1", answering="1207", **INBOUND)
        + b"ZZQ,,1,x\r\n" + event("CC", "1", "36")
    )  # fmt: skip
    result = CliRunner().invoke(main, ["parse", "mivo250-oai", str(capture)])
    assert result.exit_code == 0, result.output
    (record,) = [ICDR.from_json(line) for line in result.stdout.splitlines()]
    assert (record.call_id, record.direction, record.extension) == ("1", Direction.IN, "1207")
    assert "unknown_event" in result.stderr
