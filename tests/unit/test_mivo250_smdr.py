"""MiVoice Office 250 SMDR: framing, login packet, record fields, dating, ICDR mapping, settings."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from edge_agent.sources.base import Quarantined, RawUnit, SourceContext
from edge_agent.sources.mivo250_smdr.driver import Mivo250SmdrParser, make_parser, make_source
from edge_agent.sources.mivo250_smdr.record import SmdrRecord, read_record, start_time
from edge_agent.sources.mivo250_socket.framing import (
    SMDR_SOCKET_TYPE,
    FrameDecoder,
    StreamFault,
    encode_frame,
    login_packet,
    read_login_packet,
)
from edge_agent.sources.mivo250_socket.link import RestartingAcquirer
from edge_agent.sources.rejection import Rejection
from shared.errors import ConfigError
from shared.icdr import ICDR, Completion, Direction

CHICAGO = ZoneInfo("America/Chicago")
CTX = SourceContext(agent_id="agent-1", source_id="pbx250", timezone=CHICAGO)
# formats.md §4.2 constructed records, 80 columns each
TLD = "TLD 1234  92001 13125550147                  14:05 00:03:27 $00.00 4711        *"
IN_UNANSWERED = "IN  ***** 92002                              09:12 00:00:41 $00.00              "
LOC_SECONDS = "LOC 1207  92001 5550123                      16:40 S=000095 $00.00              "
# 2026-05-14 21:00 UTC is 16:00 in Chicago (CDT, UTC-5)
RECEIVED = datetime(2026, 5, 14, 21, 0, tzinfo=UTC)


def unit(text: str | bytes, *, seq: int = 7, received_at: datetime = RECEIVED) -> RawUnit:
    data = text.encode("latin-1") if isinstance(text, str) else text
    return RawUnit(source_id="pbx250", seq=seq, received_at=received_at, data=data)


def parse_one(text: str | bytes, **kwargs: object) -> ICDR | Quarantined:
    results = Mivo250SmdrParser(CTX).feed(unit(text, **kwargs))  # type: ignore[arg-type]
    assert len(results) == 1
    return results[0]


# --- login and framing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "expected"),
    [("", "02 00 00 00 84 00"), ("pw", "04 00 00 00 84 70 77 00")],
)
def test_login_packet_matches_the_constructed_examples(password: str, expected: str) -> None:
    packet = login_packet(SMDR_SOCKET_TYPE, password)
    assert packet.hex(" ") == expected
    login = read_login_packet(packet[4:])
    assert (login.socket_type, login.password, login.app_name) == (0x84, password, None)


def test_oai_login_packet_carries_an_application_name() -> None:
    packet = login_packet(0x87, "", app_name="callcollect")
    assert packet == b"\x0e\x00\x00\x00\x87\x00callcollect\x00"
    assert read_login_packet(packet[4:]).app_name == "callcollect"


@pytest.mark.parametrize("payload", [b"", b"\x84", b"\x84pw", b"\x84a\x00b\x00c\x00"])
def test_read_login_packet_rejects_what_is_not_one(payload: bytes) -> None:
    with pytest.raises(ValueError, match="login packet"):
        read_login_packet(payload)


def test_frame_decoder_gives_the_same_frames_for_every_split() -> None:
    records = [TLD + "\r\n", IN_UNANSWERED + "\r\n", LOC_SECONDS]
    stream = b"".join(encode_frame(r.encode()) for r in records)
    expected = [r.encode() for r in records]
    for size in (1, 2, 3, 5, 81, 85, 86, len(stream)):
        decoder = FrameDecoder(min_frame=3, max_frame=1024, service="SMDR")
        frames = []
        for offset in range(0, len(stream), size):
            frames += decoder.feed(stream[offset : offset + size])
        assert frames == expected, size
        assert decoder.pending == b""


def test_frame_decoder_keeps_an_unfinished_frame_pending() -> None:
    decoder = FrameDecoder(min_frame=3, max_frame=1024, service="SMDR")
    assert decoder.feed(encode_frame(b"abcdef")[:7]) == []
    assert decoder.pending == b"\x06\x00\x00\x00abc"


@pytest.mark.parametrize("length", [0, 2, 1025, 0x0A0D0A0D])
def test_a_length_out_of_range_is_a_stream_fault_that_keeps_the_bytes(length: int) -> None:
    good = encode_frame(b"TLD record\r\n")
    bad = length.to_bytes(4, "little") + b"junk"
    decoder = FrameDecoder(min_frame=3, max_frame=1024, service="SMDR")
    with pytest.raises(StreamFault, match=rf"SMDR framing error: length prefix {length} ") as info:
        decoder.feed(good + bad)
    assert info.value.units == [b"TLD record\r\n", bad]
    assert "logged in again" in str(info.value)


# --- record fields ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            TLD,
            SmdrRecord("TLD", "1234", "92001", "13125550147", False, time(14, 5), 207, False,
                       "$00.00", "4711", True, "fixed"),
        ),
        (
            IN_UNANSWERED,
            SmdrRecord("IN", "*****", "92002", "", False, time(9, 12), 41, False, "$00.00", "",
                       False, "fixed"),
        ),
        (
            LOC_SECONDS,
            SmdrRecord("LOC", "1207", "92001", "5550123", False, time(16, 40), 95, True, "$00.00",
                       "", False, "fixed"),
        ),
        (  # trailing blanks trimmed by the PBX or a capture tool
            LOC_SECONDS.rstrip(),
            SmdrRecord("LOC", "1207", "92001", "5550123", False, time(16, 40), 95, True, "$00.00",
                       "", False, "fixed"),
        ),
        (  # 28 digits and the overflow mark
            "TLD 1234  92001 9999999999999999999999999999>",
            None,
        ),
        (  # fields left at other alignments: read by the tolerant pattern
            "O/I  1001 92003  442079460999  08:05 01:02:03 $01.25 880042 *",
            SmdrRecord("O/I", "1001", "92003", "442079460999", False, time(8, 5), 3723, False,
                       "$01.25", "880042", True, "tokenised"),
        ),
        (
            "CNF 1001  92001 1207                         23:59 00:10:00 $00.00",
            SmdrRecord("CNF", "1001", "92001", "1207", False, time(23, 59), 600, False, "$00.00",
                       "", False, "fixed"),
        ),
    ],
)  # fmt: skip
def test_record_fields(text: str, expected: SmdrRecord | None) -> None:
    record = read_record(text)
    if expected is None:
        assert isinstance(record, Rejection)
    else:
        assert record == expected


def test_overflow_mark_is_removed_and_flagged() -> None:
    text = "TLD 1234  92001 999999999999999999999999999> 14:05 00:03:27 $00.00 4711        *"
    record = read_record(text)
    assert isinstance(record, SmdrRecord)
    assert (record.dialled, record.dialled_truncated) == ("9" * 27, True)
    icdr = parse_one(text)
    assert isinstance(icdr, ICDR)
    assert "dialled_digits_truncated" in icdr.flags


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "blank_line"),
        ("      ", "blank_line"),
        ("TYP EXT# TRUNK DIALED DIGITS START ELAPSED COST ACCOUNT CODE", "header_line"),
        ("*** SMDR REPORT ***", "layout_mismatch"),
        ("TLD 1234  92001 13125550147                  25:05 00:03:27 $00.00", "bad_time"),
        ("TLD 1234  92001 13125550147                  14:75 00:03:27 $00.00", "bad_time"),
        ("TLD 1234  92001 13125550147                  14:05 00:63:27 $00.00", "bad_elapsed"),
        ("TLD 1234\x0192001 13125550147", "control_characters"),
    ],
)
def test_lines_that_are_not_records_are_quarantined_with_a_reason(text: str, reason: str) -> None:
    result = parse_one(text + "\r\n")
    assert isinstance(result, Quarantined)
    assert result.reason == reason
    assert result.raw == (text + "\r\n").encode("latin-1")
    assert result.seq == 7


def test_nul_padding_and_missing_line_end_are_tolerated() -> None:
    with_nul = parse_one(TLD.encode() + b"\r\n\x00\x00")
    without_crlf = parse_one(TLD.encode())
    assert isinstance(with_nul, ICDR) and isinstance(without_crlf, ICDR)
    assert with_nul.raw == without_crlf.raw == TLD
    assert with_nul.record_id == without_crlf.record_id


# --- dating and ICDR mapping ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "received_local", "expected_day"),
    [
        (time(14, 5), datetime(2026, 5, 14, 16, 0), 14),  # earlier today
        (time(23, 50), datetime(2026, 5, 15, 0, 10), 14),  # before midnight, received after
        (time(16, 5), datetime(2026, 5, 14, 16, 0), 14),  # PBX clock 5 min ahead: still today
        (time(16, 30), datetime(2026, 5, 14, 16, 0), 13),  # beyond the skew tolerance: yesterday
    ],
)
def test_start_date_is_the_receive_date_or_the_day_before(
    start: time, received_local: datetime, expected_day: int
) -> None:
    record = read_record(TLD)
    assert isinstance(record, SmdrRecord)
    record = dataclasses.replace(record, start=start)
    assert start_time(record, received_local) == datetime.combine(
        received_local.date().replace(day=expected_day), start
    )


def test_long_distance_record_maps_to_an_outgoing_icdr() -> None:
    icdr = parse_one(TLD + "\r\n")
    assert isinstance(icdr, ICDR)
    assert icdr.start == datetime(2026, 5, 14, 19, 5, tzinfo=UTC)  # 14:05 CDT
    assert icdr.end == datetime(2026, 5, 14, 19, 8, 27, tzinfo=UTC)
    assert icdr.utc_offset_minutes == -300
    assert (icdr.direction, icdr.calling, icdr.called, icdr.dialled_digits) == (
        Direction.OUT, "1234", "13125550147", "13125550147",
    )  # fmt: skip
    assert (icdr.extension, icdr.trunk, icdr.account_code) == ("1234", "92001", "4711")
    assert (icdr.talk_seconds, icdr.ring_seconds, icdr.answered) == (207, 0, True)
    assert icdr.completion is Completion.ANSWERED
    assert icdr.flags == ()  # the trunk disconnect was supervised
    assert icdr.extra["trunk_disconnect"] == "yes"
    assert icdr.extra["pbx_cost"] == "$00.00"
    assert icdr.extra["journal_seq"] == "7"
    assert icdr.source_kind == "mivo250-smdr"
    assert icdr.raw == TLD


def test_unanswered_ring_in_counts_ring_time_not_talk() -> None:
    icdr = parse_one(IN_UNANSWERED)
    assert isinstance(icdr, ICDR)
    assert (icdr.direction, icdr.answered, icdr.completion) == (
        Direction.IN, False, Completion.NO_ANSWER,
    )  # fmt: skip
    assert (icdr.ring_seconds, icdr.talk_seconds, icdr.extension) == (41, 0, "")
    assert icdr.completion_source == "*****"
    assert "unsupervised" not in icdr.flags


def test_seconds_option_and_missing_disconnect_mark() -> None:
    icdr = parse_one(LOC_SECONDS)
    assert isinstance(icdr, ICDR)
    assert icdr.talk_seconds == 95
    assert icdr.extra["elapsed_format"] == "seconds"
    assert icdr.flags == ("unsupervised",)


@pytest.mark.parametrize(
    ("typ", "direction"),
    [
        ("000", Direction.OUT), ("LOC", Direction.OUT), ("TLC", Direction.OUT),
        ("TLD", Direction.OUT), ("O/I", Direction.OUT), ("OP", Direction.OUT),
        ("INT", Direction.OUT), ("DSA", Direction.IN), ("DID", Direction.IN),
        ("IN", Direction.IN), ("NET", Direction.INTERNAL), ("CNF", Direction.UNKNOWN),
        ("XYZ", Direction.UNKNOWN),
    ],
)  # fmt: skip
def test_direction_comes_from_the_call_type(typ: str, direction: Direction) -> None:
    icdr = parse_one(f"{typ:<3}" + TLD[3:])
    assert isinstance(icdr, ICDR)
    assert icdr.direction is direction
    assert icdr.extra["call_type"] == typ
    assert ("unknown_call_type" in icdr.flags) == (typ == "XYZ")
    assert icdr.conference == (typ == "CNF")


def test_a_call_of_a_day_or_more_is_flagged_as_uncertain() -> None:
    icdr = parse_one(TLD.replace("00:03:27", "S=090000"))
    assert isinstance(icdr, ICDR)
    assert "date_uncertain" in icdr.flags


def test_record_id_is_stable_and_depends_on_the_journal_position() -> None:
    first = parse_one(TLD, seq=1)
    again = parse_one(TLD, seq=1)
    later = parse_one(TLD, seq=2)
    assert isinstance(first, ICDR) and isinstance(again, ICDR) and isinstance(later, ICDR)
    assert first.record_id == again.record_id != later.record_id


# --- settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "key", "message"),
    [
        ({"password": "p" * 16}, "password", "longer than 15"),
        ({"password": "pässword"}, "password", "cannot carry"),
        ({"port": 70000}, "port", "between 1 and 65535"),
        ({"colour": "red"}, "colour", "not an option"),
    ],
)
def test_bad_options_name_the_key(options: dict[str, object], key: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        make_parser(CTX, options)
    assert info.value.key == f"sources.pbx250.{key}"


def test_make_source_needs_a_host_and_wraps_the_tcp_client() -> None:
    with pytest.raises(ConfigError, match="host"):
        make_source(CTX, {})
    source = make_source(CTX, {"host": "127.0.0.1", "password": "pw"})
    assert isinstance(source.acquirer, RestartingAcquirer)
    assert source.settings == {"host": "127.0.0.1", "port": 4000, "password_set": True}
    assert "pw" not in source.description


def test_capture_files_are_split_into_lines() -> None:
    kit = make_parser(CTX, {})
    lines = list(kit.file_framer((TLD + "\r\n" + IN_UNANSWERED + "\n").encode()))
    assert [line.decode() for line in lines] == [TLD, IN_UNANSWERED]
