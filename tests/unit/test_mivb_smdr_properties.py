"""Properties of the MiVB SMDR parser: it never raises, and simulated calls round-trip."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.simulators.mivb_smdr import SCENARIOS, SimCall, generate_calls
from edge_agent.sources.base import Quarantined, RawUnit, SourceContext
from edge_agent.sources.mivb_smdr import driver as mivb_smdr
from shared.icdr import ICDR

RECEIVED = datetime(2026, 5, 14, 18, 0, tzinfo=UTC)
ZONES = ["UTC", "Europe/London", "America/Toronto", "Australia/Lord_Howe", "Asia/Kolkata"]
LAYOUTS = ["standard", "A", "L2", "X", "A+L2+X", "ANI", "L2+ANI", "A+X+ANI+OLI", "M", "L2+X+M"]
SAMPLE = generate_calls(
    count=60, seed=3, start=datetime(2026, 5, 14, 9, 0), layout="L2+ANI", tz="Europe/London"
)


def parser(zone: str = "Europe/London", **options: Any) -> mivb_smdr.MivbSmdrParser:
    kit = mivb_smdr.make_parser(SourceContext("agent-1", "pbx1", ZoneInfo(zone)), options)
    assert isinstance(kit.parser, mivb_smdr.MivbSmdrParser)
    return kit.parser


AUTO = parser()
FIXED = parser(layout="L2+ANI")


def check_one_result(results: list[ICDR | Quarantined], data: bytes) -> None:
    assert len(results) == 1
    result = results[0]
    if isinstance(result, Quarantined):
        assert result.raw == data and result.reason and result.detail
    else:
        assert result.raw == data.decode("latin-1")
        assert ICDR.from_json(result.to_json()) == result


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=300), seq=st.integers(0, 2**40))
def test_arbitrary_bytes_never_raise(data: bytes, seq: int) -> None:
    for each in (AUTO, FIXED):
        check_one_result(each.feed(RawUnit("pbx1", seq, RECEIVED, data)), data)


@settings(max_examples=400, deadline=None)
@given(
    index=st.integers(0, len(SAMPLE) - 1),
    edits=st.lists(
        st.tuples(st.integers(0, 130), st.sampled_from(list(" 0123456789:/*#@PATX\x00\r-%+é"))),
        max_size=6,
    ),
    cut=st.integers(0, 140),
)
def test_damaged_records_are_parsed_or_quarantined(
    index: int, edits: list[tuple[int, str]], cut: int
) -> None:
    chars = list(SAMPLE[index].line)
    for position, char in edits:
        if position < len(chars):
            chars[position] = char
    data = "".join(chars)[: max(cut, 1)].encode("latin-1")
    for each in (AUTO, FIXED):
        check_one_result(each.feed(RawUnit("pbx1", 1, SAMPLE[index].received_at, data)), data)


def assert_same_call(rec: ICDR, sim: SimCall, *, fixed: bool) -> None:
    assert (rec.start, rec.answer, rec.end) == (sim.start, sim.answer, sim.end), sim.line
    assert (rec.direction, rec.calling, rec.called) == (sim.direction, sim.calling, sim.called)
    assert (rec.dialled_digits, rec.extension, rec.trunk) == (
        sim.dialled_digits,
        sim.extension,
        sim.trunk,
    )
    assert (rec.ring_seconds, rec.talk_seconds) == (sim.ring_seconds, sim.talk_seconds)
    assert (rec.answered, rec.completion, rec.completion_source) == (
        sim.answered,
        sim.completion,
        sim.completion_letter,
    )
    assert (rec.transferred, rec.conference, rec.third_party, rec.account_code) == (
        sim.transferred,
        sim.conference,
        sim.third_party,
        sim.account_code,
    )
    assert (rec.ani, rec.dnis) == (sim.ani, sim.dnis)
    assert ("unsupervised" in rec.flags) == sim.unsupervised
    if fixed:
        assert ("attendant" in rec.extra) == sim.attendant


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    layout=st.sampled_from(LAYOUTS),
    clock=st.sampled_from(["24h", "12h"]),
    zone=st.sampled_from(ZONES),
    seed=st.integers(0, 10_000),
    start=st.datetimes(datetime(2020, 1, 1), datetime(2030, 12, 31)),
)
def test_simulated_calls_round_trip(
    layout: str, clock: str, zone: str, seed: int, start: datetime
) -> None:
    calls = generate_calls(count=40, seed=seed, start=start, layout=layout, tz=zone, clock=clock)
    fixed = parser(zone, layout=layout, clock=clock)
    detecting = parser(zone, clock=clock)  # auto: cannot know meter pulses
    for seq, sim in enumerate(calls):
        unit = RawUnit("pbx1", seq, sim.received_at, sim.line.encode("latin-1"))
        rec = fixed.feed(unit)[0]
        assert isinstance(rec, ICDR), (rec, sim.line)
        assert_same_call(rec, sim, fixed=True)
        if "M" not in layout:
            auto = detecting.feed(unit)[0]
            assert isinstance(auto, ICDR), (auto, sim.line)
            assert_same_call(auto, sim, fixed=False)


def test_the_simulated_mix_covers_every_scenario_and_midnight() -> None:
    calls = generate_calls(count=600, seed=11, start=datetime(2026, 5, 14, 20, 0), tz="UTC")
    assert {call.scenario for call in calls} == set(SCENARIOS)
    assert {call.line[0] for call in calls} >= {" ", "-", "%", "+"}
    assert any(call.start.date() != call.end.date() for call in calls)
    assert len({call.start.date() for call in calls}) > 1
    received = [call.received_at for call in calls]
    assert received == sorted(received)


def test_generation_is_deterministic() -> None:
    first = generate_calls(count=20, seed=5, start=datetime(2026, 1, 1), layout="A")
    again = generate_calls(count=20, seed=5, start=datetime(2026, 1, 1), layout="A")
    assert [c.line for c in first] == [c.line for c in again]
    assert all(len(c.line) == 101 for c in first)


@pytest.mark.parametrize(
    ("zone", "start"),
    [
        ("Europe/London", datetime(2026, 3, 29, 0, 15)),  # spring gap 01:00-02:00
        ("Europe/London", datetime(2026, 10, 25, 0, 15)),  # autumn: 01:00-02:00 twice
        ("Australia/Lord_Howe", datetime(2026, 4, 5, 0, 45)),  # half-hour change
        ("America/Toronto", datetime(2026, 11, 1, 0, 30)),
    ],
)
def test_calls_around_daylight_saving_changes_round_trip(zone: str, start: datetime) -> None:
    calls = generate_calls(
        count=150, seed=2, start=start, layout="L2", tz=zone, mean_gap_seconds=60
    )
    each = parser(zone, layout="L2")
    offsets = set()
    for seq, sim in enumerate(calls):
        rec = each.feed(RawUnit("pbx1", seq, sim.received_at, sim.line.encode()))[0]
        assert isinstance(rec, ICDR), rec
        assert_same_call(rec, sim, fixed=True)
        offsets.add(rec.utc_offset_minutes)
    assert len(offsets) == 2  # the window really crossed the change


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    layout=st.sampled_from(LAYOUTS),
    zone=st.sampled_from(ZONES),
    seed=st.integers(0, 10_000),
    start=st.sampled_from(
        [
            datetime(2026, 3, 28, 20, 0),  # spring change (Europe/London, Lord Howe: April)
            datetime(2026, 10, 24, 20, 0),  # autumn change
            datetime(2026, 4, 4, 20, 0),  # Lord Howe's half-hour change
            datetime(2026, 12, 31, 12, 0),  # New Year
            datetime(2028, 2, 28, 12, 0),  # a leap day
        ]
    ),
    clock=st.sampled_from(["24h", "12h"]),
    limit=st.sampled_from([1, 2, 20_000]),
)
def test_cached_and_fresh_parsers_agree(
    monkeypatch: pytest.MonkeyPatch,
    layout: str,
    zone: str,
    seed: int,
    start: datetime,
    clock: str,
    limit: int,
) -> None:
    """The parser's caches (printed hours, durations, parties, columns) change speed, never a
    result: one parser fed a run of calls across a clock change, New Year or a leap day, even
    with caches cleared every line or two, reads each line as a fresh parser does."""
    for name in (
        "_HOUR_CACHE_LIMIT",
        "_DURATION_CACHE_LIMIT",
        "_PARTY_CACHE_LIMIT",
        "_EXTRAS_CACHE_LIMIT",
    ):
        monkeypatch.setattr(mivb_smdr, name, limit)
    calls = generate_calls(
        count=50, seed=seed, start=start, layout=layout, tz=zone, clock=clock, mean_gap_seconds=1800
    )
    warm = parser(zone, layout=layout, clock=clock)
    detecting = parser(zone, clock=clock)
    for seq, sim in enumerate(calls):
        unit = RawUnit("pbx1", seq, sim.received_at, sim.line.encode("latin-1"))
        assert warm.feed(unit) == parser(zone, layout=layout, clock=clock).feed(unit), sim.line
        assert detecting.feed(unit) == parser(zone, clock=clock).feed(unit), sim.line
