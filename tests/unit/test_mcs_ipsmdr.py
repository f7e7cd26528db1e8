"""MCS IP SMDR: line decoding (fixed and tokenised), the per-CallID state machine, settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from edge_agent.cli import main
from edge_agent.simulators.mcs_ipsmdr import format_line, generate_calls, interleave
from edge_agent.sources.base import ParseResult, Quarantined, RawUnit, SourceContext
from edge_agent.sources.mcs_ipsmdr.calls import IpSmdrParser
from edge_agent.sources.mcs_ipsmdr.driver import make_parser, make_source
from edge_agent.sources.mcs_ipsmdr.line import IpSmdrEvent, read_line
from edge_agent.sources.rejection import Rejection
from edge_agent.sources.streams.acquirer_group import AcquirerGroup
from edge_agent.sources.streams.tcp import TcpClientAcquirer, TcpListenerAcquirer
from shared.errors import ConfigError
from shared.icdr import ICDR, Completion, Direction, make_record_id

LONDON = ZoneInfo("Europe/London")
CTX = SourceContext(agent_id="agent-1", source_id="mcs", timezone=LONDON)
CALL = "2024051409310700000417"
# formats.md §3.4, constructed, default "0" padding, 162 characters each
RINGING = (
    "2024-05-14 09:31:07 |IN | 2024051409310700000417 0090001 0002201 0000000 000007700900123 "
    "|A N OTHER   | 000002079460321 |SALES LINE  | 000000000000 |RINGING     |"
)
ANSWERED = RINGING.replace("09:31:07 |IN", "09:31:19 |IN").replace("RINGING ", "ANSWERED")
T0 = datetime(2024, 5, 14, 9, 31, 7)  # local wall clock of the first event
RECEIVED = datetime(2024, 5, 14, 8, 31, 30, tzinfo=UTC)


def test_the_constructed_example_is_162_characters_and_reads_by_fixed_offsets() -> None:
    assert len(RINGING) == len(ANSWERED) == 162
    event = read_line(RINGING)
    assert event == IpSmdrEvent(
        local_time=T0,
        direction="IN",
        call_id=CALL,
        trunk="90001",
        endpoint="2201",
        source_endpoint="",
        caller_id="000007700900123",  # a digit pad cannot be told from real zeros: kept raw
        contact_name="A N OTHER",
        ddi="000002079460321",
        dnis_name="SALES LINE",
        account_code="",
        event="RINGING",
        layout="fixed",
        ambiguous_numbers=True,
    )


@pytest.mark.parametrize(
    ("pad", "caller", "ddi", "ambiguous"),
    [
        ("0", "000007700900123", "000002079460321", True),
        (" ", "07700900123", "02079460321", False),
        ("#", "07700900123", "02079460321", False),
    ],
)
def test_pad_character(pad: str, caller: str, ddi: str, ambiguous: bool) -> None:
    line = event_line("RINGING", endpoint="2201", pad=pad)
    event = read_line(line, pad=pad)
    assert isinstance(event, IpSmdrEvent)
    assert (event.trunk, event.endpoint, event.source_endpoint) == ("90001", "2201", "")
    assert (event.caller_id, event.ddi, event.ambiguous_numbers) == (caller, ddi, ambiguous)
    assert (event.account_code, event.contact_name, event.layout) == ("", "A N OTHER", "fixed")


def test_an_account_code_is_read_without_its_padding() -> None:
    event = read_line(event_line("CALLMODIFIED", endpoint="2201", account="4711", pad="0"))
    assert isinstance(event, IpSmdrEvent)
    assert event.account_code == "4711"


def _widen(line: str, column: int) -> str:
    """Insert one pad character at ``column`` (an element one wider than specified)."""
    return line[:column] + "0" + line[column:]


@pytest.mark.parametrize(
    ("name", "line", "changes"),
    [
        # with a digit pad the extra column stays in the (ambiguous) number
        ("caller id 16 wide", _widen(RINGING, 73), {"caller_id": "0000007700900123"}),
        ("ddi 16 wide", _widen(RINGING, 104), {"ddi": "0000002079460321"}),
        ("empty contact as ||", RINGING.replace("|A N OTHER   |", "||"), {"contact_name": ""}),
        ("empty contact as | |", RINGING.replace("|A N OTHER   |", "| |"), {"contact_name": ""}),
        (
            "contact 16 wide",
            RINGING.replace("|A N OTHER   |", "|A N OTHER LTD |"),
            {"contact_name": "A N OTHER LTD"},
        ),
        ("line end kept", RINGING + "\r\n", {"layout": "fixed"}),
        ("trailing blanks", RINGING + "   ", {}),
        (
            "CALLCONNECTED",
            RINGING.replace("|RINGING     |", "|CALLCONNECTED|"),
            {"event": "CONNECTED"},
        ),
        (
            "unknown word kept",
            RINGING.replace("RINGING ", "PARKED  "),
            {"event": "PARKED", "layout": "fixed"},
        ),
    ],
)
def test_tolerated_width_inconsistencies(name: str, line: str, changes: dict[str, str]) -> None:
    expected = read_line(RINGING)
    assert isinstance(expected, IpSmdrEvent)
    event = read_line(line)
    assert isinstance(event, IpSmdrEvent), name
    wanted = {"layout": "tokenised", **changes}
    for field_name in ("call_id", "trunk", "endpoint", "caller_id", "ddi", "event", "dnis_name"):
        wanted.setdefault(field_name, getattr(expected, field_name))
    got = {key: getattr(event, key) for key in wanted}
    assert got == wanted, name


def test_outbound_line_without_dnis_is_tokenised() -> None:
    line = (
        "2024-05-14 10:02:00 |OUT| 2024051410020000000420 0090002 0002203 0000000 "
        "000001632960123 |            | 000000000000000 000000004711 |ANSWERED    |"
    )
    event = read_line(line)
    assert isinstance(event, IpSmdrEvent)
    assert (event.direction, event.endpoint, event.caller_id, event.dnis_name) == (
        "OUT", "2203", "000001632960123", "",
    )  # fmt: skip
    assert (event.account_code, event.event, event.layout) == ("4711", "ANSWERED", "tokenised")


def test_space_padding_with_empty_fields_is_matched_by_column() -> None:
    line = event_line("TRANSFERRED", endpoint="", source="2201", pad=" ")
    wider = line[:26] + " " + line[26:]  # every later element shifted by one column
    event = read_line(wider, pad=" ")
    assert isinstance(event, IpSmdrEvent)
    assert (event.endpoint, event.source_endpoint, event.caller_id) == ("", "2201", "07700900123")
    assert event.layout == "tokenised"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("", "blank_line"),
        ("   ", "blank_line"),
        ("x" * 2000, "line_too_long"),
        (RINGING.replace("2024-05-14", "2024-13-14"), "bad_time"),
        (RINGING.replace("|IN |", "|UP |"), "bad_direction"),
        (RINGING.replace("2024051409310700000417", "20240514093107000004XX"), "bad_call_id"),
        (RINGING.replace("0002201", "00022A1"), "bad_device"),
        (RINGING.replace("|RINGING     |", "|ringing 123 |"), "bad_event"),
        (RINGING.replace("|SALES LINE  |", "SALES LINE   "), "layout_mismatch"),
        (RINGING.replace("|SALES LINE  |", " SALES LINE  "), "layout_mismatch"),  # IN needs DNIS
        (RINGING.replace(" 000000000000 ", " 0000 00 00000 "), "layout_mismatch"),  # 3 words
        ("garbage |" + RINGING[19:], "layout_mismatch"),
        (RINGING[:60] + "\x07" + RINGING[61:], "control_characters"),
    ],
)
def test_lines_that_are_not_events_are_rejected_with_a_reason(line: str, reason: str) -> None:
    result = read_line(line)
    assert isinstance(result, Rejection)
    assert result.reason == reason


# --- the state machine ---------------------------------------------------------------------------


def event_line(
    event: str,
    *,
    endpoint: str,
    at: int = 0,
    call_id: str = CALL,
    source: str = "",
    account: str = "",
    caller: str = "07700900123",
    direction: str = "IN",
    pad: str = " ",
) -> str:
    return format_line(
        when=T0 + timedelta(seconds=at),
        direction=direction,
        call_id=call_id,
        trunk="90001",
        endpoint=endpoint,
        source_endpoint=source,
        caller_id=caller,
        contact_name="A N OTHER",
        ddi="02079460321" if direction == "IN" else "",
        dnis_name="SALES LINE" if direction == "IN" else "",
        account_code=account,
        event=event,
        pad=pad,
    )


def feed_all(parser: IpSmdrParser, lines: list[str], *, first_seq: int = 1) -> list[ParseResult]:
    results: list[ParseResult] = []
    for seq, line in enumerate(lines, start=first_seq):
        received = RECEIVED + timedelta(seconds=seq)
        results += parser.feed(RawUnit("mcs", seq, received, line.encode("latin-1") + b"\r\n"))
    return results


def icdrs(results: list[ParseResult]) -> list[ICDR]:
    return [r for r in results if isinstance(r, ICDR)]


Segment = tuple[str, bool, int, int, int]  # extension, answered, ring, talk, hold

SEQUENCES: list[tuple[str, list[tuple[str, str, int, str]], list[Segment]]] = [
    (
        "inbound",
        [("RINGING", "2201", 0, ""), ("ANSWERED", "2201", 12, ""),
         ("CALLMODIFIED", "2201", 20, ""), ("DISCONNECTED", "2201", 100, "")],
        [("2201", True, 12, 88, 0)],
    ),
    (
        "held and retrieved",
        [("RINGING", "2201", 0, ""), ("ANSWERED", "2201", 5, ""), ("HOLD", "2201", 65, ""),
         ("CONNECTED", "2201", 95, ""), ("DISCONNECTED", "2201", 125, "")],
        [("2201", True, 5, 90, 30)],
    ),
    (
        "transferred",
        [("RINGING", "2201", 0, ""), ("ANSWERED", "2201", 4, ""), ("HOLD", "2201", 64, ""),
         ("TRANSFERRED", "2202", 74, "2201"), ("RINGING", "2202", 74, ""),
         ("CONNECTED", "2202", 80, ""), ("DISCONNECTED", "2202", 200, "")],
        [("2201", True, 4, 60, 10), ("2202", True, 6, 120, 0)],
    ),
    (
        "diverted on no answer",
        [("RINGING", "2201", 0, ""), ("DIVERTED", "2301", 15, "2201"),
         ("RINGING", "2301", 15, ""), ("ANSWERED", "2301", 18, ""),
         ("DISCONNECTED", "2301", 48, "")],
        [("2201", False, 15, 0, 0), ("2301", True, 3, 30, 0)],
    ),
    (
        "queued at a hunt group",
        [("QUEUED", "7001", 0, ""), ("RINGING", "2203", 20, ""), ("ANSWERED", "2203", 26, ""),
         ("DISCONNECTED", "2203", 56, "")],
        [("2203", True, 26, 30, 0)],
    ),
    (
        "unanswered",
        [("RINGING", "2201", 0, ""), ("DISCONNECTED", "2201", 30, "")],
        [("2201", False, 30, 0, 0)],
    ),
    (
        "connected elsewhere without a transfer event",
        [("RINGING", "2201", 0, ""), ("ANSWERED", "2201", 2, ""), ("CONNECTED", "2204", 42, ""),
         ("DISCONNECTED", "2204", 52, "")],
        [("2201", True, 2, 40, 0), ("2204", True, 0, 10, 0)],
    ),
    (
        "hold still open at disconnect",
        [("RINGING", "2201", 0, ""), ("ANSWERED", "2201", 1, ""), ("HOLD", "2201", 11, ""),
         ("DISCONNECTED", "2201", 41, "")],
        [("2201", True, 1, 10, 30)],
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "events", "segments"), SEQUENCES, ids=[name for name, _, _ in SEQUENCES]
)
def test_event_sequences_build_the_expected_segments(
    name: str, events: list[tuple[str, str, int, str]], segments: list[Segment]
) -> None:
    lines = [event_line(ev, endpoint=ep, at=at, source=src) for ev, ep, at, src in events]
    results = feed_all(IpSmdrParser(CTX, pad=" "), lines)
    records = icdrs(results)
    assert len(records) == len(results)  # nothing quarantined
    assert [
        (r.extension, r.answered, r.ring_seconds, r.talk_seconds, r.hold_seconds) for r in records
    ] == segments
    start = T0.replace(tzinfo=LONDON)
    assert records[0].start == start
    assert records[-1].end == start + timedelta(seconds=events[-1][2])
    for number, record in enumerate(records):
        assert record.record_id == make_record_id("agent-1", "mcs", CALL, str(number))
        assert record.call_id == (CALL if number == 0 else f"{CALL}/{number}")
        assert record.parent_call_id == ("" if number == 0 else records[number - 1].call_id)
        assert record.extra["segment"] == f"{number + 1}/{len(records)}"
        assert record.extra["journal_seqs"] == ",".join(str(i + 1) for i in range(len(lines)))
        assert record.raw.splitlines() == lines
        if number:
            assert record.start == records[number - 1].end


def test_inbound_call_parties_and_times() -> None:
    lines = [
        event_line("RINGING", endpoint="2201", at=0),
        event_line("ANSWERED", endpoint="2201", at=12),
        event_line("DISCONNECTED", endpoint="2201", at=70),
    ]
    (record,) = icdrs(feed_all(IpSmdrParser(CTX, pad=" "), lines))
    assert record.start == datetime(2024, 5, 14, 8, 31, 7, tzinfo=UTC)  # BST
    assert record.answer == datetime(2024, 5, 14, 8, 31, 19, tzinfo=UTC)
    assert record.utc_offset_minutes == 60
    assert (record.direction, record.calling, record.called) == (
        Direction.IN, "07700900123", "02079460321",
    )  # fmt: skip
    assert (record.ani, record.dnis, record.trunk) == ("07700900123", "02079460321", "90001")
    assert (record.completion, record.completion_source) == (Completion.ANSWERED, "DISCONNECTED")
    assert record.extra["contact_name"] == "A N OTHER"
    assert record.extra["dnis_name"] == "SALES LINE"
    assert record.flags == ()


def test_outbound_call_parties() -> None:
    lines = [
        event_line(e, endpoint="2203", at=at, direction="OUT", caller="01632960123")
        for e, at in (("RINGING", 0), ("ANSWERED", 9), ("DISCONNECTED", 39))
    ]
    (record,) = icdrs(feed_all(IpSmdrParser(CTX, pad=" "), lines))
    assert (record.direction, record.calling, record.called, record.dialled_digits) == (
        Direction.OUT, "2203", "01632960123", "01632960123",
    )  # fmt: skip
    assert (record.ani, record.dnis, record.talk_seconds) == ("", "", 30)


def test_callmodified_updates_account_code_and_caller_id() -> None:
    lines = [
        event_line("RINGING", endpoint="2201", at=0, caller=""),
        event_line("ANSWERED", endpoint="2201", at=3, caller=""),
        event_line("CALLMODIFIED", endpoint="2201", at=5, account="1111", caller="07700900456"),
        event_line("CALLMODIFIED", endpoint="2201", at=9, account="2222", caller="07700900456"),
        event_line("DISCONNECTED", endpoint="2201", at=20, account="", caller="07700900456"),
    ]
    (record,) = icdrs(feed_all(IpSmdrParser(CTX, pad=" "), lines))
    assert (record.account_code, record.calling) == ("2222", "07700900456")


def test_zero_padding_marks_ambiguous_leading_zeros() -> None:
    lines = [
        event_line("RINGING", endpoint="2201", at=0, pad="0"),
        event_line("DISCONNECTED", endpoint="2201", at=9, pad="0"),
    ]
    (record,) = icdrs(feed_all(IpSmdrParser(CTX, pad="0"), lines))
    assert record.calling == "000007700900123"
    assert "ambiguous_leading_zeros" in record.flags


def test_a_call_joined_mid_way_is_flagged_partial() -> None:
    lines = [
        event_line("CONNECTED", endpoint="2201", at=0),
        event_line("DISCONNECTED", endpoint="2201", at=60),
    ]
    (record,) = icdrs(feed_all(IpSmdrParser(CTX, pad=" "), lines))
    assert record.flags == ("partial",)
    assert (record.answered, record.talk_seconds, record.ring_seconds) == (True, 60, 0)


def test_repeated_and_late_events_are_quarantined_not_counted_twice() -> None:
    ring = event_line("RINGING", endpoint="2201", at=0)
    answer = event_line("ANSWERED", endpoint="2201", at=4)
    hang_up = event_line("DISCONNECTED", endpoint="2201", at=10)
    late = event_line("HOLD", endpoint="2201", at=12)
    results = feed_all(IpSmdrParser(CTX, pad=" "), [ring, answer, answer, hang_up, hang_up, late])
    reasons = [(r.seq, r.reason) for r in results if isinstance(r, Quarantined)]
    assert reasons == [(3, "repeated_event"), (5, "repeated_event"), (6, "late_event")]
    (record,) = icdrs(results)
    assert record.talk_seconds == 6
    assert record.extra["journal_seqs"] == "1,2,4"


def test_unknown_event_words_are_kept_on_the_call() -> None:
    lines = [
        event_line("RINGING", endpoint="2201", at=0),
        event_line("PARKED", endpoint="2201", at=3),
        event_line("DISCONNECTED", endpoint="2201", at=8),
    ]
    (record,) = icdrs(feed_all(IpSmdrParser(CTX, pad=" "), lines))
    assert "unknown_events" in record.flags
    assert record.extra["unknown_events"] == "PARKED"
    assert record.extra["journal_seqs"] == "1,2,3"


def test_interleaved_calls_are_kept_apart() -> None:
    other = "2024051409310800000418"
    lines = [
        event_line("RINGING", endpoint="2201", at=0),
        event_line("RINGING", endpoint="2202", at=1, call_id=other),
        event_line("ANSWERED", endpoint="2202", at=2, call_id=other),
        event_line("ANSWERED", endpoint="2201", at=3),
        event_line("DISCONNECTED", endpoint="2202", at=10, call_id=other),
        event_line("DISCONNECTED", endpoint="2201", at=30),
    ]
    records = icdrs(feed_all(IpSmdrParser(CTX, pad=" "), lines))
    assert [(r.call_id, r.talk_seconds, r.extra["journal_seqs"]) for r in records] == [
        (other, 8, "2,3,5"),
        (CALL, 27, "1,4,6"),
    ]


def test_calls_without_disconnect_time_out_and_are_marked() -> None:
    parser = IpSmdrParser(CTX, pad=" ", idle_timeout=timedelta(hours=1))
    lines = [
        event_line("RINGING", endpoint="2201", at=0),
        event_line("ANSWERED", endpoint="2201", at=5),
    ]
    assert feed_all(parser, lines) == []
    assert parser.open_calls == 1
    last_received = RECEIVED + timedelta(seconds=2)
    assert parser.flush(last_received + timedelta(minutes=59)) == []
    (record,) = icdrs(parser.flush(last_received + timedelta(hours=1)))
    assert record.flags == ("timed_out",)
    assert record.completion_source == "TIMEOUT"
    assert record.end == record.answer  # the last event seen
    assert parser.open_calls == 0


def test_the_open_call_bound_closes_the_oldest_call() -> None:
    parser = IpSmdrParser(CTX, pad=" ", max_open_calls=2)
    ids = [f"20240514093107000004{n:02d}" for n in range(3)]
    results = feed_all(parser, [event_line("RINGING", endpoint="2201", call_id=c) for c in ids])
    (record,) = icdrs(results)
    assert (record.call_id, record.flags) == (ids[0], ("timed_out",))
    assert parser.open_calls == 2


def test_oldest_needed_seq_lets_a_replay_rebuild_open_calls() -> None:
    """Replaying the journal from oldest_needed_seq (results up to the cursor discarded)
    gives exactly the results an uninterrupted parser gives after the cursor."""
    other = "2024051409310800000418"
    lines = [
        event_line("RINGING", endpoint="2201", at=0),  # 1
        event_line("RINGING", endpoint="2202", at=1, call_id=other),  # 2
        event_line("ANSWERED", endpoint="2202", at=2, call_id=other),  # 3
        event_line("DISCONNECTED", endpoint="2202", at=5, call_id=other),  # 4
        event_line("ANSWERED", endpoint="2201", at=6),  # 5
        event_line("DISCONNECTED", endpoint="2201", at=66),  # 6
    ]
    cursor = 5
    before_crash = IpSmdrParser(CTX, pad=" ")
    feed_all(before_crash, lines[:cursor])
    replay_from = before_crash.oldest_needed_seq()
    assert replay_from == 1
    uninterrupted = IpSmdrParser(CTX, pad=" ")
    expected = feed_all(uninterrupted, lines)[-1:]
    restarted = IpSmdrParser(CTX, pad=" ")
    feed_all(restarted, lines[replay_from - 1 : cursor], first_seq=replay_from)  # discarded
    assert feed_all(restarted, lines[cursor:], first_seq=cursor + 1) == expected
    assert restarted.oldest_needed_seq() is None


def test_dst_fall_back_hour_is_ordered_within_a_call() -> None:
    """27 Oct 2024: 01:00-01:59 happens twice in London. A call that starts at 01:50 BST and
    ends at 01:10 GMT lasted 20 minutes, not minus 40."""
    start = datetime(2024, 10, 27, 1, 50)
    lines = [
        format_line(when=when, direction="IN", call_id=CALL, trunk="90001", endpoint="2201",
                    caller_id="07700900123", event=event, pad=" ")
        for when, event in (
            (start, "RINGING"),
            (start + timedelta(seconds=10), "ANSWERED"),
            (datetime(2024, 10, 27, 1, 10), "DISCONNECTED"),
        )
    ]  # fmt: skip
    (record,) = icdrs(feed_all(IpSmdrParser(CTX, pad=" "), lines))
    assert record.start == datetime(2024, 10, 27, 0, 50, tzinfo=UTC)
    assert record.end == datetime(2024, 10, 27, 1, 10, tzinfo=UTC)
    assert record.talk_seconds == 20 * 60 - 10
    assert "clock_went_back" not in record.flags


def test_a_clock_going_back_within_a_call_is_clamped_and_flagged() -> None:
    lines = [
        event_line("RINGING", endpoint="2201", at=100),
        event_line("ANSWERED", endpoint="2201", at=50),
        event_line("DISCONNECTED", endpoint="2201", at=160),
    ]
    (record,) = icdrs(feed_all(IpSmdrParser(CTX, pad=" "), lines))
    assert (record.ring_seconds, record.talk_seconds) == (0, 60)
    assert "clock_went_back" in record.flags


# --- settings and factories -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "key", "message"),
    [
        ({"mode": "both-ways"}, "mode", "not a mode"),
        ({"pad_character": "00"}, "pad_character", "one printable character"),
        ({"pad_character": "|"}, "pad_character", "other than"),
        ({"push_allowed_peers": ["mcs.example"]}, "push_allowed_peers", "not an IP address"),
        ({"idle_timeout_seconds": 5}, "idle_timeout_seconds", "between 60"),
        ({"pad": " "}, "pad", "not an option"),
    ],
)
def test_bad_options_name_the_key(options: dict[str, object], key: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        make_parser(CTX, options)
    assert info.value.key == f"sources.mcs.{key}"


def test_parse_options_arrive_as_text() -> None:
    kit = make_parser(CTX, {"pad_character": " ", "idle_timeout_seconds": "600"})
    lines = [event_line("RINGING", endpoint="2201"), event_line("DISCONNECTED", endpoint="2201")]
    units = list(kit.file_framer(("\n".join(lines) + "\n").encode()))
    results = [
        r for seq, u in enumerate(units) for r in kit.parser.feed(RawUnit("mcs", seq, RECEIVED, u))
    ]
    assert [type(r) for r in results] == [ICDR]


@pytest.mark.parametrize(
    ("options", "kinds"),
    [
        ({"host": "127.0.0.1"}, [TcpClientAcquirer]),
        ({"mode": "push", "host": "127.0.0.1"}, [TcpListenerAcquirer]),
        ({"mode": "both", "host": "127.0.0.1"}, [TcpClientAcquirer, TcpListenerAcquirer]),
    ],
)
def test_modes_build_their_acquirers(options: dict[str, object], kinds: list[type]) -> None:
    source = make_source(CTX, options)
    members = (
        source.acquirer.members if isinstance(source.acquirer, AcquirerGroup) else [source.acquirer]
    )
    assert [type(m) for m in members] == kinds


@pytest.mark.parametrize(
    ("options", "key"),
    [({}, "host"), ({"mode": "push"}, "push_allowed_peers")],
)
def test_modes_need_their_addresses(options: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_source(CTX, options)
    assert info.value.key == f"sources.mcs.{key}"


def test_edge_agent_parse_prints_the_calls_built_from_a_capture(tmp_path: Path) -> None:
    calls = generate_calls(count=7, seed=2, pad="0")
    capture = tmp_path / "ipsmdr.txt"
    capture.write_text("\n".join(interleave(calls)) + "\nnot an event\n", encoding="latin-1")
    result = CliRunner().invoke(
        main, ["parse", "mcs-ipsmdr", "--timezone", "Europe/London", str(capture)]
    )
    assert result.exit_code == 0, result.output
    records = [ICDR.from_json(line) for line in result.stdout.splitlines()]
    assert {r.call_id.split("/")[0] for r in records} == {c.call_id for c in calls}
    assert len(records) == sum(len(c.segments) for c in calls)
    assert "layout_mismatch" in result.stderr
