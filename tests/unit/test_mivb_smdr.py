"""MiVoice Business SMDR driver: tables of hand-built lines against formats.md §2."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from edge_agent.sources import registry
from edge_agent.sources.base import Quarantined, RawUnit, SourceContext
from edge_agent.sources.mivb_smdr import driver as mivb_smdr
from edge_agent.sources.mivb_smdr.layout import (
    LayoutFlags,
    candidate_layouts,
    column_map,
    format_record,
)
from edge_agent.sources.streams.lines import split_lines
from edge_agent.sources.streams.tcp import TcpClientAcquirer
from shared.errors import ConfigError
from shared.icdr import ICDR, Completion, Direction, make_line_record_id, make_record_id

LONDON = ZoneInfo("Europe/London")
TORONTO = ZoneInfo("America/Toronto")
# Summer in Toronto: local = UTC - 4 h. Receive times are given as Toronto wall-clock.
RECEIVED = datetime(2026, 5, 14, 20, 0, tzinfo=TORONTO)

# formats.md §2.6, constructed examples, verbatim
EXAMPLE_OUT = (
    "-05/14 09:31  00:06:12 2201      01632960123               A T061       880042       001  "
)
EXAMPLE_IN = (
    " 05/14 02:47P 00:02:05 T012  007 4455                        2201T 2230              001  "
)
EXAMPLE_UNANSWERED = (
    " 05/14 03:02P 00:00:00 T012  *** 4455                        2201                    001  "
)
EXAMPLE_EXTENDED = (
    "%12/31 23:48:09  0000:14:51 T3      0012 4455                        2201"
    "                          001  "
)


def parse(
    line: str | bytes,
    *,
    received: datetime = RECEIVED,
    zone: ZoneInfo = TORONTO,
    seq: int = 7,
    **options: Any,
) -> ICDR | Quarantined:
    ctx = SourceContext(agent_id="agent-1", source_id="pbx1", timezone=zone)
    kit = mivb_smdr.make_parser(ctx, options)
    data = line.encode("latin-1") if isinstance(line, str) else line
    results = kit.parser.feed(RawUnit("pbx1", seq, received.astimezone(UTC), data))
    assert len(results) == 1
    return results[0]


def call(line: str | bytes, **kwargs: Any) -> ICDR:
    result = parse(line, **kwargs)
    assert isinstance(result, ICDR), result
    return result


def quarantined(line: str | bytes, **kwargs: Any) -> Quarantined:
    result = parse(line, **kwargs)
    assert isinstance(result, Quarantined), result
    return result


def record(layout: str = "standard", **values: str) -> str:
    """A line built from field values; columns come from the map checked in the first test."""
    base = {
        "date": "05/14",
        "start_time": "09:31:00" if "L2" in layout else "09:31",
        "duration": "0000:01:00" if "A" in layout.split("+") else "00:01:00",
        "calling": "2201",
        "digits": "01632960123",
        "completion": "A",
        "called": "T061",
        "system_id": "001",
    }
    base.update(values)
    return format_record(LayoutFlags.parse(layout), base)


def local(value: datetime, zone: ZoneInfo = TORONTO) -> datetime:
    return value.astimezone(zone).replace(tzinfo=None)


# --- column maps: formats.md §2.5 table, typed in from the document ----------------------------

SPEC_MAPS = {
    "standard": {
        "long_call": (1, 1), "date": (2, 6), "start": (8, 13), "duration": (15, 22),
        "calling": (24, 27), "attendant": (29, 29), "tta": (30, 32), "digits": (34, 59),
        "completion": (60, 60), "speed_forward": (61, 61), "called": (62, 65),
        "transfer": (66, 66), "third_party": (68, 71), "account_code": (73, 84),
        "route_opt": (85, 85), "system_id": (86, 88),
    },
    "A": {
        "long_call": (1, 1), "date": (2, 6), "start": (8, 13), "duration": (15, 24),
        "calling": (26, 32), "attendant": (34, 34), "tta": (35, 37), "digits": (39, 64),
        "completion": (65, 65), "speed_forward": (66, 66), "called": (67, 73),
        "transfer": (74, 74), "third_party": (76, 82), "account_code": (84, 95),
        "route_opt": (96, 96), "system_id": (97, 99),
    },
    "L2": {
        "long_call": (1, 1), "date": (2, 6), "start": (8, 16), "duration": (18, 25),
        "calling": (27, 30), "attendant": (32, 32), "tta": (33, 35), "digits": (37, 62),
        "completion": (63, 63), "speed_forward": (64, 64), "called": (65, 68),
        "transfer": (69, 69), "third_party": (71, 74), "account_code": (76, 87),
        "route_opt": (88, 88), "system_id": (89, 91),
    },
    "X": {
        "long_call": (1, 1), "date": (2, 6), "start": (8, 13), "duration": (15, 22),
        "calling": (24, 27), "attendant": (28, 28), "tta": (29, 32), "digits": (34, 59),
        "completion": (60, 60), "speed_forward": (61, 61), "called": (62, 65),
        "transfer": (66, 66), "third_party": (68, 71), "account_code": (73, 84),
        "route_opt": (85, 85), "system_id": (86, 88),
    },
    "A+L2+X": {
        "long_call": (1, 1), "date": (2, 6), "start": (8, 16), "duration": (18, 27),
        "calling": (29, 35), "attendant": (36, 36), "tta": (37, 40), "digits": (42, 67),
        "completion": (68, 68), "speed_forward": (69, 69), "called": (70, 76),
        "transfer": (77, 77), "third_party": (79, 85), "account_code": (87, 98),
        "route_opt": (99, 99), "system_id": (100, 102),
    },
}  # fmt: skip


@pytest.mark.parametrize("layout", sorted(SPEC_MAPS))
def test_column_maps_match_the_spec_table(layout: str) -> None:
    columns = column_map(LayoutFlags.parse(layout)).by_name()
    generated = {name: (c.first, c.last) for name, c in columns.items()}
    generated["start"] = (columns["start_time"].first, columns["am_pm"].last)
    for name in ("start_time", "am_pm", "precedence"):
        generated.pop(name)
    assert generated == SPEC_MAPS[layout]


@pytest.mark.parametrize(
    ("layout", "length"),
    [
        ("standard", 90),
        ("A", 101),
        ("L2", 93),
        ("X", 90),
        ("A+L2+X", 104),
        ("ANI", 112),
        ("L2+ANI", 115),
        ("ANI+OLI", 131),
        ("M", 90),
    ],
)
def test_layout_lengths(layout: str, length: int) -> None:
    assert column_map(LayoutFlags.parse(layout)).length == length


def test_suffix_columns_follow_the_spec() -> None:
    columns = column_map(LayoutFlags.parse("OLI")).by_name()  # OLI implies ANI/DNIS
    assert (columns["ani"].first, columns["ani"].last) == (92, 101)
    assert (columns["dnis"].first, columns["dnis"].last) == (103, 112)
    assert (columns["oli_call_id"].first, columns["oli_call_id"].last) == (114, 122)
    assert (columns["oli_associated_call_id"].first, columns["oli_associated_call_id"].last) == (
        124,
        131,
    )
    meter = column_map(LayoutFlags.parse("M")).by_name()["meter_pulses"]
    assert (meter.first, meter.last) == (55, 59)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("standard", "standard"),
        ("x+a+l2", "A+L2+X"),
        ("L2, ANI", "L2+ANI"),
        ("OLI", "ANI+OLI"),
        ("A+L2+X+ANI+OLI+M", "A+L2+X+ANI+OLI+M"),
        ("meter", "M"),
    ],
)
def test_layout_names_are_canonical(text: str, name: str) -> None:
    assert LayoutFlags.parse(text).name == name


# --- the worked examples -------------------------------------------------------------------------


def test_example_outgoing_supervised_call() -> None:
    rec = call(EXAMPLE_OUT)
    assert rec.direction is Direction.OUT
    assert (rec.calling, rec.called, rec.dialled_digits) == ("2201", "T061", "01632960123")
    assert (rec.extension, rec.trunk, rec.account_code) == ("2201", "T061", "880042")
    assert rec.start == datetime(2026, 5, 14, 13, 31, tzinfo=UTC)
    assert rec.answer == rec.start
    assert rec.end == datetime(2026, 5, 14, 13, 37, 12, tzinfo=UTC)
    assert (rec.talk_seconds, rec.ring_seconds, rec.utc_offset_minutes) == (372, 0, -240)
    assert (rec.answered, rec.completion, rec.completion_source) == (
        True,
        Completion.ANSWERED,
        "A",
    )
    assert rec.extra["system_id"] == "001"
    assert rec.flags == ()


def test_example_incoming_transferred_call() -> None:
    rec = call(EXAMPLE_IN)
    assert rec.direction is Direction.IN
    assert (rec.calling, rec.called, rec.dialled_digits) == ("T012", "2201", "4455")
    assert (rec.trunk, rec.extension, rec.third_party) == ("T012", "2201", "2230")
    assert rec.transferred and not rec.conference
    assert rec.start == datetime(2026, 5, 14, 18, 47, tzinfo=UTC)  # 2:47 PM
    assert rec.answer == rec.start + timedelta(seconds=7)
    assert rec.end == rec.start + timedelta(seconds=7 + 125)
    assert (rec.ring_seconds, rec.talk_seconds) == (7, 125)
    assert rec.completion is Completion.ANSWERED


def test_example_incoming_never_answered() -> None:
    rec = call(EXAMPLE_UNANSWERED)
    assert rec.direction is Direction.IN
    assert not rec.answered and rec.answer is None
    assert rec.completion is Completion.NO_ANSWER
    assert rec.end == rec.start == datetime(2026, 5, 14, 19, 2, tzinfo=UTC)


def test_example_extended_layout_over_new_year() -> None:
    received = datetime(2027, 1, 1, 0, 10, tzinfo=TORONTO)
    rec = call(EXAMPLE_EXTENDED, received=received, layout="A+L2+X")
    assert rec.start == datetime(2027, 1, 1, 4, 48, 9, tzinfo=UTC)  # 2026-12-31 23:48:09 EST
    assert rec.answer == rec.start + timedelta(seconds=12)
    assert local(rec.end) == datetime(2027, 1, 1, 0, 3, 12)
    assert (rec.calling, rec.called, rec.talk_seconds) == ("T3", "2201", 891)
    assert rec.utc_offset_minutes == -300


@pytest.mark.parametrize(
    ("line", "layout"),
    [
        (EXAMPLE_OUT, "standard"),
        (EXAMPLE_IN, "standard"),
        (EXAMPLE_UNANSWERED, "standard"),
        (EXAMPLE_EXTENDED, "A+L2+X"),
    ],
)
def test_auto_detection_reads_the_examples_as_their_layout(line: str, layout: str) -> None:
    received = datetime(2027, 1, 1, 0, 10, tzinfo=TORONTO)
    detected = call(line, received=received)
    fixed = call(line, received=received, layout=layout)
    assert detected.extra["layout"] == layout
    assert detected.start == fixed.start and detected.end == fixed.end
    assert "layout" not in fixed.extra


# --- every layout variant, built from fields ---------------------------------------------------

LAYOUTS = ["standard", "A", "L2", "X", "A+L2+X", "ANI", "L2+ANI", "ANI+OLI", "A+X", "L2+X"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_parses_an_incoming_call(layout: str) -> None:
    flags = LayoutFlags.parse(layout)
    values = {
        "calling": "T0123" if flags.extended_digits else "T123",
        "called": "2201",
        "digits": "4455",
        "completion": "",
        "tta": "0012" if flags.extended_tta else "012",
        "start_time": "14:05:31" if flags.seconds else "14:05",
        "duration": ("0001:02:03" if flags.extended_digits else "01:02:03"),
        "account_code": "55",
        "third_party": "2230",
        "transfer": "X",
    }
    if flags.ani_dnis:
        values |= {"ani": "6135550142", "dnis": "6135554455"}
    if flags.oli:
        values |= {"oli_call_id": "100100421", "oli_associated_call_id": "10010041"}
    line = record(layout, **values)
    for options in ({"layout": layout}, {}):
        rec = call(line, **options)
        assert rec.direction is Direction.IN
        assert (rec.calling, rec.called, rec.dialled_digits) == (values["calling"], "2201", "4455")
        assert local(rec.start) == datetime(2026, 5, 14, 14, 5, 31 if flags.seconds else 0)
        assert (rec.ring_seconds, rec.talk_seconds) == (12, 3723)
        assert (rec.account_code, rec.third_party, rec.transferred) == ("55", "2230", True)
        assert rec.ani == values.get("ani", "") and rec.dnis == values.get("dnis", "")
        assert rec.call_id == values.get("oli_call_id", "")
        assert rec.parent_call_id == values.get("oli_associated_call_id", "")
    assert call(line).extra["layout"] == layout


@pytest.mark.parametrize(
    ("line_layout", "configured"),
    [
        ("L2", "standard"),
        ("standard", "L2"),
        ("A", "standard"),
        ("standard", "A"),
        ("A+L2+X", "L2+X"),
    ],
)
def test_fixed_layout_quarantines_lines_of_another_layout(
    line_layout: str, configured: str
) -> None:
    line = record(line_layout)
    q = quarantined(line, layout=configured)
    assert q.reason == "layout_mismatch"
    assert configured in q.detail or LayoutFlags.parse(configured).name in q.detail
    assert q.raw == line.encode()


def test_extended_tta_digits_do_not_fit_the_standard_layout() -> None:
    line = record("X", calling="T012", called="2201", tta="0012", completion="")
    assert quarantined(line, layout="standard").reason == "layout_mismatch"
    assert call(line, layout="X").ring_seconds == 12


def test_an_attendant_star_in_the_x_spacer_does_not_fit_standard() -> None:
    line = record("X", calling="T012", called="2201", attendant="*", tta="0007", completion="")
    assert quarantined(line, layout="standard").reason == "layout_mismatch"
    assert call(line, layout="X").extra["attendant"] == "*"


def test_candidate_layouts_tell_x_apart_only_when_the_line_does() -> None:
    assert candidate_layouts(record("X", tta="0012")) == {"X"}
    assert candidate_layouts(record("standard", tta="012")) == {"standard"}
    assert candidate_layouts(record("standard")) == {"standard", "X"}  # blank TTA fits both


def test_meter_pulses_overlay_the_end_of_the_digits_field() -> None:
    line = record("M", digits="01632960123", meter_pulses="00042")
    rec = call(line, layout="M")
    assert rec.dialled_digits == "01632960123"
    assert rec.extra["meter_pulses"] == "00042"


@pytest.mark.parametrize(
    "columns", [{"ani": "103-112", "dnis": "113-120"}, "ani=103-112, dnis=113-120"]
)
def test_a_hand_written_map_moves_text_fields(columns: dict[str, str] | str) -> None:
    # Mitel gives 120 characters for ANI/DNIS with Extended Digit Length; a site that finds the
    # real offsets on a capture writes them down.
    line = record("A", calling="T0123", called="2201", completion="", tta="012").ljust(102)
    line += "6135550142" + "61355544"
    rec = call(line, layout="A+ANI", columns=columns)
    assert (rec.ani, rec.dnis) == ("6135550142", "61355544")
    assert rec.dialled_digits == "01632960123" and rec.ring_seconds == 12
    assert "unparsed_suffix" not in rec.extra


@pytest.mark.parametrize(
    ("columns", "layout", "problem"),
    [
        ({"calling": "24-27"}, "standard", "not a movable field"),
        ({"ani": "112-103"}, "ANI", "not a column range"),
        ({"ani": "ninety"}, "ANI", "not FIRST-LAST"),
        ({"digits": "20-45"}, "standard", "overlap"),
        ({"ani": "92-101", "dnis": "100-109"}, "ANI", "overlap"),
        ({"ani": "92-101"}, "auto", "needs a fixed layout"),
        ("ani", "ANI", "not FIELD=FIRST-LAST"),
    ],
)
def test_bad_hand_written_maps(columns: dict[str, str] | str, layout: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        mivb_smdr.make_parser(
            SourceContext("a", "pbx1", TORONTO), {"layout": layout, "columns": columns}
        )
    assert caught.value.key == "sources.pbx1.columns"
    assert problem in caught.value.problem


# --- dates, years and clocks ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("date", "received_local", "year"),
    [
        ("05/14", datetime(2026, 5, 14, 20, 0), 2026),  # same day
        ("05/15", datetime(2026, 5, 14, 20, 0), 2026),  # PBX clock a little ahead: tolerance
        ("05/16", datetime(2026, 5, 14, 20, 0), 2025),  # beyond tolerance: last year's
        ("12/31", datetime(2027, 1, 1, 0, 5), 2026),  # New Year: previous year
        ("01/01", datetime(2027, 1, 1, 0, 5), 2027),
        ("02/29", datetime(2026, 3, 1, 9, 0), 2024),  # 29 Feb: the last leap year
        ("02/29", datetime(2028, 3, 1, 9, 0), 2028),
        ("02/29", datetime(2101, 3, 1, 9, 0), 2096),  # 2100 is not a leap year
        ("06/30", datetime(2026, 5, 14, 20, 0), 2025),  # replayed from the PBX buffer
    ],
)
def test_year_inference(date: str, received_local: datetime, year: int) -> None:
    rec = call(
        record(date=date, start_time="09:31"), received=received_local.replace(tzinfo=TORONTO)
    )
    assert local(rec.start).year == year
    assert local(rec.start).strftime("%m/%d") == date


def test_year_tolerance_is_an_option() -> None:
    line = record(date="05/15")
    received = RECEIVED
    assert local(call(line, received=received).start).year == 2026
    assert local(call(line, received=received, year_tolerance_days=0).start).year == 2025


def test_date_prefix_wins_over_the_receive_time() -> None:
    line = "@20240514@" + EXAMPLE_OUT
    rec = call(line, received=datetime(2026, 7, 1, 12, 0, tzinfo=TORONTO))
    assert local(rec.start) == datetime(2024, 5, 14, 9, 31)
    assert rec.raw == line
    # a prefix written just after midnight on 1 Jan still dates a 31 Dec record in the old year
    rec = call("@20270101@" + EXAMPLE_EXTENDED, received=datetime(2030, 1, 1, tzinfo=TORONTO))
    assert local(rec.start).year == 2026


def test_a_bad_date_prefix_is_flagged_and_ignored() -> None:
    rec = call("@20261399@" + EXAMPLE_OUT)
    assert "bad_date_prefix" in rec.flags
    assert local(rec.start) == datetime(2026, 5, 14, 9, 31)


def test_a_call_ending_after_its_receipt_is_flagged() -> None:
    line = record(start_time="19:58", duration="00:05:00")
    assert "ends_after_receipt" in call(line, year_tolerance_days=0).flags
    assert "ends_after_receipt" not in call(line).flags


@pytest.mark.parametrize(
    ("time", "am_pm", "clock", "hour", "minute"),
    [
        ("09:31", "", "auto", 9, 31),
        ("09:31", "P", "auto", 21, 31),
        ("09:31", "p", "12h", 21, 31),
        ("12:15", "P", "auto", 12, 15),  # hour 12 with PM is noon
        ("12:15", "", "12h", 0, 15),  # hour 12 without PM is midnight on the 12-hour clock
        ("12:15", "A", "auto", 0, 15),
        ("12:15", "a", "24h", 0, 15),  # an explicit marker wins over the configured clock
        ("12:15", "", "24h", 12, 15),
        ("12:15", "", "auto", 12, 15),  # flagged as ambiguous, read as printed
        ("00:05", "", "24h", 0, 5),
        ("23:59", "", "24h", 23, 59),
        ("11:59", "A", "12h", 11, 59),
        (" 7:05", "P", "12h", 19, 5),
    ],
)
def test_twelve_and_twenty_four_hour_clocks(
    time: str, am_pm: str, clock: str, hour: int, minute: int
) -> None:
    rec = call(record(start_time=time, am_pm=am_pm), clock=clock)
    assert (local(rec.start).hour, local(rec.start).minute) == (hour, minute)
    assert ("clock_ambiguous" in rec.flags) == (clock == "auto" and time == "12:15" and not am_pm)


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"date": "13/01"}, "bad_date"),
        ({"date": "02/30"}, "bad_date"),
        ({"date": "00/10"}, "bad_date"),
        ({"start_time": "24:00"}, "bad_time"),
        ({"start_time": "10:60"}, "bad_time"),
        ({"start_time": "13:00", "am_pm": "P"}, "bad_time"),
        ({"start_time": "00:10", "am_pm": "A"}, "bad_time"),
        ({"duration": "00:61:00"}, "bad_duration"),
        ({"duration": "00:00:75"}, "bad_duration"),
    ],
)
def test_impossible_values_are_quarantined(values: dict[str, str], reason: str) -> None:
    q = quarantined(record(**values))
    assert q.reason == reason
    assert q.detail


def test_a_duration_past_the_icdr_limit_is_quarantined() -> None:
    q = quarantined(record("A", duration="9000:00:00"), layout="A")
    assert q.reason == "bad_duration"


@pytest.mark.parametrize(
    ("layout", "duration"), [("standard", "99:99:99"), ("A", "9999:99:99"), ("A", "0099:99:99")]
)
def test_duration_overflow_sentinel(layout: str, duration: str) -> None:
    rec = call(record(layout, duration=duration, date="05/01"), layout=layout)
    assert "duration_overflow" in rec.flags
    assert rec.talk_seconds == 360_000
    assert rec.end - rec.start == timedelta(hours=100)


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [("00:00:00", 0), ("00:00:59", 59), ("01:00:00", 3600), ("99:59:59", 359_999)],
)
def test_durations(duration: str, seconds: int) -> None:
    assert call(record(duration=duration, date="04/01")).talk_seconds == seconds


def test_time_zone_conversion_and_offset() -> None:
    rec = call(record(date="01/15", start_time="09:00"), zone=LONDON)
    assert rec.start == datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
    assert rec.utc_offset_minutes == 0
    rec = call(record(date="05/14", start_time="09:00"), zone=LONDON)
    assert rec.start == datetime(2026, 5, 14, 8, 0, tzinfo=UTC)
    assert rec.utc_offset_minutes == 60


def test_the_autumn_hour_that_happens_twice_is_flagged() -> None:
    # Europe/London, 25 Oct 2026: 01:00-01:59 happens twice; the first (BST) reading is used.
    received = datetime(2026, 10, 25, 12, 0, tzinfo=LONDON)
    rec = call(record("L2", date="10/25", start_time="01:30:00"), zone=LONDON, received=received)
    assert rec.start == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert "local_time_ambiguous" in rec.flags
    rec = call(record("L2", date="10/25", start_time="02:30:00"), zone=LONDON, received=received)
    assert rec.start == datetime(2026, 10, 25, 2, 30, tzinfo=UTC)
    assert rec.flags == ()


def feed_one(parser: mivb_smdr.MivbSmdrParser, line: str, received: datetime) -> ICDR:
    result = parser.feed(RawUnit("pbx1", 1, received, line.encode("latin-1")))[0]
    assert isinstance(result, ICDR), result
    return result


@pytest.mark.parametrize(
    ("line", "first", "again"),
    [
        # Europe/London: 01:30 on 29 Mar 2026 falls in the spring gap (read with the offset
        # before it); on 29 Mar 2027 it is summer time.
        (
            record("L2", date="03/29", start_time="01:30:00"),
            (datetime(2026, 3, 30, tzinfo=UTC), datetime(2026, 3, 29, 1, 30, tzinfo=UTC), 0),
            (datetime(2027, 3, 30, tzinfo=UTC), datetime(2027, 3, 29, 0, 30, tzinfo=UTC), 60),
        ),
        # 31 Dec received on 1 Jan is last year's; the same text a year on is that year's
        (
            record("L2", date="12/31", start_time="23:30:00"),
            (datetime(2027, 1, 1, 0, 5, tzinfo=UTC), datetime(2026, 12, 31, 23, 30, tzinfo=UTC), 0),
            (datetime(2028, 1, 1, 0, 5, tzinfo=UTC), datetime(2027, 12, 31, 23, 30, tzinfo=UTC), 0),
        ),
        # summer time, then a receive time that puts the same printed hour in winter
        (
            record("L2", date="10/25", start_time="09:15:00"),
            (datetime(2025, 10, 25, 12, tzinfo=UTC), datetime(2025, 10, 25, 8, 15, tzinfo=UTC), 60),
            (datetime(2026, 10, 26, 12, tzinfo=UTC), datetime(2026, 10, 25, 9, 15, tzinfo=UTC), 0),
        ),
    ],
)
def test_a_printed_hour_is_converted_again_in_another_year(
    line: str, first: tuple[datetime, datetime, int], again: tuple[datetime, datetime, int]
) -> None:
    """One parser caches each printed hour's date and UTC start; a new year must not reuse it."""
    ctx = SourceContext(agent_id="agent-1", source_id="pbx1", timezone=LONDON)
    parser = mivb_smdr.MivbSmdrParser(
        ctx, mivb_smdr.ParserSettings(layout=LayoutFlags(seconds=True))
    )
    for received, start, offset in (first, again, first):
        rec = feed_one(parser, line, received)
        assert (rec.start, rec.utc_offset_minutes) == (start, offset)


def test_the_same_printed_hour_with_and_without_pm() -> None:
    ctx = SourceContext(agent_id="agent-1", source_id="pbx1", timezone=TORONTO)
    parser = mivb_smdr.MivbSmdrParser(
        ctx, mivb_smdr.ParserSettings(layout=LayoutFlags(), clock="12h")
    )
    hours = [
        local(feed_one(parser, record(start_time="09:31", am_pm=am_pm), RECEIVED).start).hour
        for am_pm in ("", "P", "", "p", "A")
    ]
    assert hours == [9, 21, 9, 21, 9]


def test_cached_columns_are_copied_into_each_record() -> None:
    """Records read from lines with the same columns share no mutable ``extra``."""
    ctx = SourceContext(agent_id="agent-1", source_id="pbx1", timezone=TORONTO)
    parser = mivb_smdr.MivbSmdrParser(ctx, mivb_smdr.ParserSettings(layout=LayoutFlags()))
    tandem = record(calling="T012", called="T061", system_id="042")
    outgoing = record(system_id="042")
    first = feed_one(parser, tandem, RECEIVED)
    second = feed_one(parser, outgoing, RECEIVED)
    assert first.extra == {"system_id": "042", "outgoing_trunk": "T061"}
    assert second.extra == {"system_id": "042"}
    assert first.extra is not second.extra


# --- parties, direction, completion, timing ----------------------------------------------------


@pytest.mark.parametrize(
    ("calling", "called", "direction", "extension", "trunk"),
    [
        ("2201", "T061", Direction.OUT, "2201", "T061"),
        ("2201", "X012", Direction.OUT, "2201", "X012"),
        ("ATT1", "T061", Direction.OUT, "ATT1", "T061"),
        ("T012", "2201", Direction.IN, "2201", "T012"),
        ("X012", "AT01", Direction.IN, "AT01", "X012"),
        ("T012", "", Direction.IN, "", "T012"),
        ("2201", "2230", Direction.INTERNAL, "2201", ""),
        ("*72#", "2230", Direction.INTERNAL, "*72#", ""),
        ("T012", "T061", Direction.TANDEM, "", "T012"),
        ("", "", Direction.UNKNOWN, "", ""),
        ("2201", "", Direction.UNKNOWN, "", ""),
        ("ZZ9", "2201", Direction.UNKNOWN, "", ""),
    ],
)
def test_direction_from_party_forms(
    calling: str, called: str, direction: Direction, extension: str, trunk: str
) -> None:
    rec = call(record(calling=calling, called=called, completion=""))
    assert (rec.direction, rec.extension, rec.trunk) == (direction, extension, trunk)
    assert (rec.calling, rec.called) == (calling, called)


@pytest.mark.parametrize(
    ("calling", "called", "letter", "tta", "duration", "completion", "answered"),
    [
        ("2201", "T061", "A", "", "00:01:00", Completion.ANSWERED, True),
        ("2201", "T061", "T", "", "00:01:00", Completion.ANSWERED, True),
        ("2201", "T061", "", "", "00:01:00", Completion.ANSWERED, True),  # unsupervised
        ("2201", "T061", "", "", "00:00:00", Completion.NO_ANSWER, False),
        ("T012", "2201", "", "007", "00:01:00", Completion.ANSWERED, True),
        ("T012", "2201", "", "***", "00:00:00", Completion.NO_ANSWER, False),
        ("T012", "2201", "B", "***", "00:00:00", Completion.BUSY, False),
        ("T012", "2201", "E", "", "00:00:00", Completion.INVALID, False),
        ("T012", "2201", "T", "", "00:01:00", Completion.ANSWERED, True),  # TAFAS
        ("T012", "2201", "O", "", "00:00:00", Completion.BUSY, False),
        ("T012", "2201", "D", "", "00:00:00", Completion.BUSY, False),
        ("T012", "2201", "S", "", "00:00:00", Completion.FAILED, False),
        ("T012", "2201", "U", "", "00:00:00", Completion.NO_ANSWER, False),
        ("T012", "2201", "C", "010", "00:01:00", Completion.ANSWERED, True),  # account code
        ("T012", "2201", "Q", "010", "00:01:00", Completion.ANSWERED, True),  # unknown letter
        ("2201", "2230", "I", "", "00:01:00", Completion.ANSWERED, True),
        ("2201", "2230", "", "", "00:00:00", Completion.NO_ANSWER, False),
        ("T012", "T061", "A", "", "00:01:00", Completion.ANSWERED, True),
        ("", "", "", "", "00:01:00", Completion.UNKNOWN, True),
    ],
)
def test_completion_codes(
    calling: str,
    called: str,
    letter: str,
    tta: str,
    duration: str,
    completion: Completion,
    answered: bool,
) -> None:
    rec = call(
        record(calling=calling, called=called, completion=letter, tta=tta, duration=duration)
    )
    assert (rec.completion, rec.answered, rec.completion_source) == (completion, answered, letter)
    assert (rec.answer is not None) == answered


@pytest.mark.parametrize(
    ("table", "calling", "called", "letter", "completion"),
    [
        ({"T": "failed"}, "2201", "T061", "T", Completion.FAILED),
        ({"out:T": "failed"}, "T012", "2201", "T", Completion.ANSWERED),  # only outgoing
        ({"out:T": "failed"}, "2201", "T061", "T", Completion.FAILED),
        ({"out:blank": "answered"}, "2201", "T061", "", Completion.ANSWERED),
        ("in:B=no_answer, E=failed", "T012", "2201", "B", Completion.NO_ANSWER),
        ("in:B=no_answer, E=failed", "T012", "2201", "E", Completion.FAILED),
    ],
)
def test_completion_map_overrides(
    table: Mapping[str, str] | str, calling: str, called: str, letter: str, completion: Completion
) -> None:
    line = record(calling=calling, called=called, completion=letter, duration="00:01:00")
    rec = call(line, completion_map=table)
    assert rec.completion is completion
    assert rec.completion_source == letter


def test_a_supervision_override_turns_off_the_unsupervised_allowance() -> None:
    line = record(completion="", duration="00:01:00")
    rec = call(line, completion_map={"out:blank": "answered"}, unsupervised_allowance_seconds=20)
    assert rec.talk_seconds == 60 and "unsupervised" not in rec.flags


@pytest.mark.parametrize(
    ("allowance", "duration", "answered", "talk", "ring"),
    [
        (0, 45, True, 45, 0),
        (20, 45, True, 25, 20),
        (20, 20, False, 0, 20),
        (20, 5, False, 0, 5),
    ],
)
def test_unsupervised_outgoing_calls_use_the_allowance(
    allowance: int, duration: int, answered: bool, talk: int, ring: int
) -> None:
    line = record(completion="", duration=f"00:00:{duration:02d}")
    rec = call(line, unsupervised_allowance_seconds=allowance)
    assert "unsupervised" in rec.flags
    assert (rec.answered, rec.talk_seconds, rec.ring_seconds) == (answered, talk, ring)
    assert rec.end - rec.start == timedelta(seconds=duration)
    if answered:
        assert rec.answer == rec.start + timedelta(seconds=allowance)


def test_incoming_timing_answer_is_start_plus_tta() -> None:
    line = record(calling="T012", called="2201", completion="", tta="025", duration="00:10:00")
    rec = call(line)
    assert rec.answer == rec.start + timedelta(seconds=25)
    assert rec.end == rec.answer + timedelta(minutes=10)
    assert (rec.ring_seconds, rec.talk_seconds) == (25, 600)


def test_busy_incoming_with_a_tta_ends_after_ringing() -> None:
    line = record(calling="T012", called="2201", completion="B", tta="009", duration="00:00:00")
    rec = call(line)
    assert not rec.answered and rec.ring_seconds == 9
    assert rec.end == rec.start + timedelta(seconds=9)


@pytest.mark.parametrize(
    ("flag", "transferred", "conference"),
    [
        ("T", True, False),
        ("X", True, False),
        ("C", False, True),
        ("U", False, False),
        ("", False, False),
    ],
)
def test_transfer_and_conference_flags(flag: str, transferred: bool, conference: bool) -> None:
    rec = call(record(transfer=flag, third_party="2230"))
    assert (rec.transferred, rec.conference, rec.third_party) == (transferred, conference, "2230")
    assert rec.extra.get("transfer_flag", "") == flag


def test_flags_and_identifiers_travel_in_extra() -> None:
    line = record(attendant="*", speed_forward="F", route_opt="R", system_id="042", precedence="3")
    extra = call(line).extra
    assert extra == {
        "layout": "standard",
        "attendant": "*",
        "speed_forward": "F",
        "route_optimisation": "R",
        "system_id": "042",
        "precedence": "3",
    }


def test_record_id_raw_and_version() -> None:
    rec = call(EXAMPLE_OUT, seq=42)
    digest = hashlib.sha256(EXAMPLE_OUT.encode()).hexdigest()
    assert rec.record_id == make_record_id("agent-1", "pbx1", "42", digest)
    assert rec.raw == EXAMPLE_OUT
    assert rec.parser_version == mivb_smdr.PARSER_VERSION
    assert (rec.agent_id, rec.source_id, rec.source_kind) == ("agent-1", "pbx1", "mivb-smdr")


def test_record_ids_use_scheme_2_from_the_journal_position_the_context_gives() -> None:
    ctx = SourceContext(agent_id="agent-1", source_id="pbx1", timezone=TORONTO, line_ids_from=42)
    parser = mivb_smdr.MivbSmdrParser(ctx, mivb_smdr.ParserSettings())
    data = EXAMPLE_OUT.encode("latin-1")
    ids = {}
    for seq in (41, 42, 43):
        result = parser.feed(RawUnit("pbx1", seq, RECEIVED.astimezone(UTC), data))[0]
        assert isinstance(result, ICDR)
        ids[seq] = result.record_id
    digest = hashlib.sha256(data).hexdigest()
    assert ids[41] == make_record_id("agent-1", "pbx1", "41", digest)  # scheme 1 before it
    assert ids[42] == make_line_record_id("agent-1", "pbx1", 42, data)
    assert ids[43] == make_line_record_id("agent-1", "pbx1", 43, data)
    assert ids[42] != make_record_id("agent-1", "pbx1", "42", digest)


def test_without_a_journal_position_every_record_id_is_scheme_1() -> None:
    assert call(EXAMPLE_OUT, seq=10**9).record_id == make_record_id(
        "agent-1", "pbx1", str(10**9), hashlib.sha256(EXAMPLE_OUT.encode()).hexdigest()
    )


def test_a_replayed_duplicate_keeps_its_id_only_at_the_same_journal_position() -> None:
    assert call(EXAMPLE_OUT, seq=5).record_id == call(EXAMPLE_OUT, seq=5).record_id
    assert call(EXAMPLE_OUT, seq=5).record_id != call(EXAMPLE_OUT, seq=6).record_id


# --- what a parser must tolerate (§2.7) ---------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        EXAMPLE_OUT.encode() + b"\r",  # CR CR LF, after the framer took LF
        b"\x00" + EXAMPLE_OUT.encode(),  # NUL before the line
        EXAMPLE_OUT.encode().replace(b"  00:06", b" \x07 00:06", 1) + b"\x00\x00",  # BEL inside
    ],
)
def test_control_bytes_are_stripped_but_kept_raw(data: bytes) -> None:
    rec = call(data)
    assert rec.dialled_digits == "01632960123" and rec.talk_seconds == 372
    assert rec.raw == data.decode("latin-1")


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r\r\n"])
def test_line_endings_from_a_capture_file(ending: bytes) -> None:
    data = ending.join(line.encode() for line in (EXAMPLE_OUT, EXAMPLE_IN)) + ending
    lines = list(split_lines(data))
    assert [call(line).dialled_digits for line in lines] == ["01632960123", "4455"]


@pytest.mark.parametrize("cut", [88, 84, 71, 66, 61])
def test_trailing_spaces_removed_by_a_tool(cut: int) -> None:
    trimmed = EXAMPLE_IN[:cut].rstrip()
    rec = call(trimmed, layout="standard")
    assert rec.raw == trimmed
    assert rec.direction is Direction.IN and rec.calling == "T012"
    assert rec.called == ("2201" if cut >= 65 else "")


def test_a_line_longer_than_its_map_keeps_the_rest() -> None:
    line = EXAMPLE_OUT + " EHDU01 LOC7"
    rec = call(line, layout="standard")
    assert rec.extra["unparsed_suffix"] == " EHDU01 LOC7"
    assert rec.dialled_digits == "01632960123" and rec.raw == line


@pytest.mark.parametrize(
    "line",
    [
        "",
        "    ",
        "SMDR CLOCK FAULT - CHECK SYSTEM TIME",
        "*** SMDR BUFFER 75% FULL ***",
        "Mitel MiVoice Business SMDR",
        "05/14 09:31  00:06:12 2201",  # shifted one column left: no anchors
    ],
)
def test_non_record_lines_are_quarantined(line: str) -> None:
    for options in ({}, {"layout": "standard"}):
        q = quarantined(line, **options)
        assert q.reason == "not_a_record"
        assert q.raw == line.encode()


def test_a_record_shaped_line_in_no_layout_is_a_mismatch() -> None:
    line = " 05/14 09:31  0:06:12  2201"
    assert quarantined(line).reason == "layout_mismatch"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"calling": "2201", "called": "T061", "tta": ""}, {"ring_seconds": 0}),
        ({"calling": "T012", "called": "2201", "tta": "***"}, {"answered": False}),
        ({"calling": "ATT1", "called": "T061"}, {"extension": "ATT1"}),
        ({"calling": "AT01", "called": "T061"}, {"extension": "AT01"}),
        ({"calling": "*61#", "digits": "*67#01632960123"}, {"dialled_digits": "*67#01632960123"}),
        ({"digits": "1001 2201 01632960123"}, {"dialled_digits": "1001 2201 01632960123"}),
        ({"completion": "Z"}, {"completion_source": "Z"}),
        ({"speed_forward": "?"}, {"extra_speed_forward": "?"}),
        ({"transfer": "R"}, {"transferred": False}),
    ],
)
def test_tolerated_contents(values: dict[str, str], expected: dict[str, Any]) -> None:
    rec = call(record(**values))
    for name, value in expected.items():
        if name.startswith("extra_"):
            assert rec.extra[name.removeprefix("extra_")] == value
        else:
            assert getattr(rec, name) == value


def test_x_layout_four_star_tta() -> None:
    line = record("X", calling="T012", called="2201", tta="****", completion="")
    rec = call(line, layout="X")
    assert not rec.answered and rec.direction is Direction.IN


def test_latin1_bytes_are_kept() -> None:
    line = record(account_code="CAFÉ").encode("latin-1")
    rec = call(line)
    assert rec.account_code == "CAFÉ" and rec.raw.encode("latin-1") == line


def test_an_oversized_unit_is_quarantined() -> None:
    q = quarantined(b"x" * (mivb_smdr.MAX_LINE_CHARS + 1))
    assert q.reason == "too_long"


def test_flush_has_nothing_to_close() -> None:
    kit = mivb_smdr.make_parser(SourceContext("a", "s", TORONTO), {})
    assert kit.parser.flush(datetime.now(UTC)) == []
    assert kit.parser.kind == "mivb-smdr"


# --- options and factories --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "key", "problem"),
    [
        ({"layout": "A+Q"}, "layout", "unknown layout option 'Q'"),
        ({"layout": ""}, "layout", "empty"),
        ({"clock": "36h"}, "clock", "is not a clock"),
        ({"port": 0}, "port", "between 1 and 65535"),
        ({"port": "http"}, "port", "between 1 and 65535"),
        ({"unsupervised_allowance_seconds": -1}, "unsupervised_allowance_seconds", "between"),
        ({"year_tolerance_days": "soon"}, "year_tolerance_days", "between"),
        ({"completion_map": {"T": "maybe"}}, "completion_map", "not a completion value"),
        ({"completion_map": {"TT": "busy"}}, "completion_map", "not one completion letter"),
        ({"completion_map": {"sideways:T": "busy"}}, "completion_map", "not a direction"),
        ({"completion_map": "T"}, "completion_map", "has no '='"),
        ({"completion_map": 5}, "completion_map", "expected a table"),
        ({"reconnect_min_seconds": 10, "reconnect_max_seconds": 5}, "reconnect_max_seconds", ""),
        ({"layuot": "A"}, "layuot", "not an option"),
    ],
)
def test_bad_options_name_the_key_and_the_fix(
    options: dict[str, Any], key: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        mivb_smdr.make_parser(SourceContext("a", "pbx1", TORONTO), options)
    assert caught.value.key == f"sources.pbx1.{key}"
    assert problem in caught.value.problem
    assert caught.value.fix


def test_make_source_needs_a_host() -> None:
    with pytest.raises(ConfigError) as caught:
        mivb_smdr.make_source(SourceContext("a", "pbx1", TORONTO), {})
    assert caught.value.key == "sources.pbx1.host"


def test_make_source_through_the_registry() -> None:
    ctx = SourceContext("a", "pbx1", TORONTO)
    options = {"host": "127.0.0.1", "port": "1752", "layout": "a+l2", "clock": "12h"}
    source = registry.make_source("mivb-smdr", ctx, options)
    assert source.kind == "mivb-smdr"
    assert isinstance(source.acquirer, TcpClientAcquirer)
    assert source.acquirer.address == "127.0.0.1:1752"
    assert source.settings["layout"] == "A+L2"
    assert "127.0.0.1:1752" in source.description
    assert list(source.file_framer(b"a\r\nb\n")) == [b"a", b"b"]
    rec = source.parser.feed(RawUnit("pbx1", 1, RECEIVED, record("A+L2").encode()))[0]
    assert isinstance(rec, ICDR)
