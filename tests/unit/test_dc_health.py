"""The pure health model: every state from a table of facts, and the rules' edges."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from datacenter.health.model import (
    HealthPolicy,
    HeartbeatFacts,
    SequenceGap,
    SiteFacts,
    State,
    UplinkTrouble,
    VolumeFacts,
    assess,
    business_window,
    iter_states,
    policy_from_settings,
    version_key,
)
from datacenter.settings import load_settings
from shared.heartbeat import AgentState, Heartbeat, SourceStatus, SpoolStatus, UplinkStatus

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)  # Tuesday 15:00 in London (GMT)
POLICY = HealthPolicy(minimum_agent_version="0.1.0")
WINDOW = (datetime(2026, 3, 3, 8, 0, tzinfo=UTC), NOW)


def source(**overrides: Any) -> SourceStatus:
    values: dict[str, Any] = {
        "source_id": "pbx", "kind": "mivb-smdr", "ok": True, "message": "connected",
        "at": NOW - timedelta(minutes=10), "last_ok_at": NOW - timedelta(minutes=10),
        "last_record_at": NOW - timedelta(minutes=3), "records": 40, "attempts": 1,
    }  # fmt: skip
    values.update(overrides)
    return SourceStatus(**values)


def heartbeat(**overrides: Any) -> Heartbeat:
    values: dict[str, Any] = {
        "agent_id": "edge-1", "tenant": "acme", "sent_at": NOW - timedelta(seconds=30),
        "agent_version": "0.1.0", "started_at": NOW - timedelta(days=1), "interval_seconds": 60,
        "clock_offset_seconds": 0.3,
        "spool": SpoolStatus(used_bytes=10, quota_bytes=1000, level="ok"),
        "uplink": UplinkStatus(last_ok_at=NOW - timedelta(seconds=90), last_sequence_sent=7),
        "sources": (source(),),
    }  # fmt: skip
    values.update(overrides)
    return Heartbeat(**values)


def volume(today: int = 12, previous: tuple[int, ...] = (20, 25, 18, 30)) -> VolumeFacts:
    return VolumeFacts("pbx", WINDOW[0], WINDOW[1], today=today, previous=previous)


def facts(hb: Heartbeat | None = None, *, age: float = 29, **overrides: Any) -> SiteFacts:
    hb = hb or heartbeat()
    values: dict[str, Any] = {
        "tenant_id": 1, "tenant_slug": "acme", "timezone": "Europe/London", "agent_id": "edge-1",
        "agent_name": "Leeds", "enrolled_at": NOW - timedelta(days=60),
        "latest": HeartbeatFacts(hb, NOW - timedelta(seconds=age), delay_seconds=1.0),
        "last_upload_at": NOW - timedelta(minutes=2), "last_sequence": 7,
        "volume": (volume(),),
    }  # fmt: skip
    values.update(overrides)
    return SiteFacts(**values)


def failing(minutes: float, **overrides: Any) -> Heartbeat:
    values: dict[str, Any] = {
        "ok": False, "message": "connection refused by 127.0.0.1:1752", "at": NOW,
        "last_ok_at": NOW - timedelta(minutes=minutes), "failures_in_a_row": 4,
    }  # fmt: skip
    values.update(overrides)
    return heartbeat(sources=(source(**values),))


SCENARIOS: list[tuple[str, SiteFacts, State, str, str]] = [
    # (id, facts, site state, words in the reason, source of the worst finding)
    ("ok", facts(), State.OK, "All well", ""),
    ("never-heard", facts(latest=None), State.AGENT_DOWN, "No heartbeat ever received", ""),
    ("said-goodbye", facts(heartbeat(state=AgentState.STOPPING)), State.AGENT_DOWN,
     "shut down", ""),
    ("silent-for-31-min", facts(age=31 * 60), State.AGENT_DOWN, "No heartbeat for 31 min", ""),
    ("heartbeats-late", facts(age=5 * 60), State.TRANSPORT_DOWN, "Heartbeats late", ""),
    ("late-by-interval", facts(heartbeat(interval_seconds=600), age=35 * 60),
     State.TRANSPORT_DOWN, "expected every 10 min", ""),
    ("not-late-for-a-slow-schedule", facts(heartbeat(interval_seconds=600), age=25 * 60),
     State.OK, "All well", ""),
    ("uplink-failing", facts(trouble=UplinkTrouble(max_failures=3, failures_reported_at=NOW,
                                                   last_error="connection refused")),
     State.TRANSPORT_DOWN, "failed 3 sessions in a row", ""),
    ("uplink-blip", facts(trouble=UplinkTrouble(max_failures=2, failures_reported_at=NOW)),
     State.OK, "All well", ""),
    ("late-arrival", facts(trouble=UplinkTrouble(max_delay_seconds=400,
                                                 late_sent_at=NOW - timedelta(minutes=8))),
     State.TRANSPORT_DOWN, "arrived 7 min late", ""),
    ("batches-missing", facts(gaps=(SequenceGap(4, 5, NOW - timedelta(minutes=11)),)),
     State.TRANSPORT_DOWN, "2 batch(es) never arrived: number(s) 4-5", ""),
    ("gap-within-grace", facts(gaps=(SequenceGap(4, 4, NOW - timedelta(minutes=9)),)),
     State.OK, "All well", ""),
    ("uploads-stuck", facts(heartbeat(unsent_batches=3,
                                      oldest_unsent_at=NOW - timedelta(minutes=20))),
     State.TRANSPORT_DOWN, "3 sealed batch(es) waiting", ""),
    ("sent-not-stored", facts(last_sequence=5, age=11 * 60 - 1), State.TRANSPORT_DOWN,
     "newest stored is 5", ""),
    ("sent-not-stored-yet", facts(last_sequence=5), State.OK, "All well", ""),
    ("source-down", facts(failing(5)), State.SOURCE_DOWN, "Source pbx (mivb-smdr) failing", "pbx"),
    ("source-reconnecting", facts(failing(1)), State.OK, "All well", ""),
    ("source-never-worked", facts(failing(5, last_ok_at=None)), State.SOURCE_DOWN,
     "never worked since the agent started", "pbx"),
    ("silent", facts(volume=(volume(today=0),)), State.SILENT,
     "No calls from source pbx since 08:00", "pbx"),
    ("one-call-is-not-silent", facts(volume=(volume(today=1),)), State.OK, "All well", ""),
    ("quiet-weekday-is-not-silent", facts(volume=(volume(today=0, previous=(2, 0, 3, 1)),)),
     State.OK, "All well", ""),
    ("down-source-is-not-also-silent", facts(failing(5), volume=(volume(today=0),)),
     State.SOURCE_DOWN, "failing", "pbx"),
    ("transport-down-is-not-silent", facts(age=5 * 60, volume=(volume(today=0),)),
     State.TRANSPORT_DOWN, "Heartbeats late", ""),
    ("clock-behind", facts(heartbeat(clock_offset_seconds=300.0)), State.CLOCK_SKEW,
     "5 min behind", ""),
    ("clock-ahead", facts(heartbeat(clock_offset_seconds=-130.0)), State.CLOCK_SKEW,
     "ahead of", ""),
    ("spool-filling", facts(heartbeat(spool=SpoolStatus(720, 1000, "warning"))),
     State.SPOOL_FILLING, "72 % full", ""),
    ("version-outdated", facts(heartbeat(agent_version="0.0.9")), State.VERSION_OUTDATED,
     "version 0.0.9", ""),
    ("pre-release-of-the-minimum", facts(heartbeat(agent_version="0.1.0rc1")), State.OK,
     "All well", ""),
]  # fmt: skip


@pytest.mark.parametrize(
    ("site", "state", "words", "source_id"),
    [s[1:] for s in SCENARIOS],
    ids=[s[0] for s in SCENARIOS],
)
def test_each_state_from_its_facts(
    site: SiteFacts, state: State, words: str, source_id: str
) -> None:
    health = assess(site, NOW, POLICY)
    assert health.state is state
    assert words in health.reason
    if state is not State.OK:
        assert health.findings[0].source_id == source_id
        assert health.findings[0].evidence  # the evidence is never empty
    else:
        assert health.findings == ()


def test_every_state_has_a_scenario() -> None:
    assert {s[2] for s in SCENARIOS} == set(State)


def test_findings_are_worst_first_and_the_site_shows_the_worst() -> None:
    hb = replace(failing(5), clock_offset_seconds=500.0, agent_version="0.0.1")
    site = facts(hb, trouble=UplinkTrouble())
    health = assess(site, NOW, POLICY)
    assert [f.state for f in health.findings] == [
        State.SOURCE_DOWN, State.CLOCK_SKEW, State.VERSION_OUTDATED,
    ]  # fmt: skip
    assert health.state is State.SOURCE_DOWN
    assert [s.state for s in health.sources] == [State.SOURCE_DOWN]


def test_two_transport_problems_make_one_finding_with_both_reasons() -> None:
    site = facts(
        gaps=(SequenceGap(4, 4, NOW - timedelta(hours=1)),),
        trouble=UplinkTrouble(max_failures=9, failures_reported_at=NOW, last_error="timeout"),
    )
    health = assess(site, NOW, POLICY)
    assert len(health.findings) == 1
    finding = health.findings[0]
    assert "failed 9 sessions" in finding.reason and "never arrived" in finding.reason
    assert finding.evidence["uplink_failures"] == 9 and finding.evidence["missing"] == "4"


def test_agent_down_covers_every_source() -> None:
    health = assess(facts(age=3600), NOW, POLICY)
    assert [(s.source_id, s.state) for s in health.sources] == [("pbx", State.AGENT_DOWN)]


def test_site_health_serialises_to_json() -> None:
    health = assess(facts(failing(5), volume=(volume(today=0),)), NOW, POLICY)
    doc = json.loads(json.dumps(health.to_dict()))
    assert doc["state"] == "source_down"
    assert doc["last_heartbeat_at"] == "2026-03-03T14:59:31Z"
    assert doc["findings"][0]["evidence"]["failures_in_a_row"] == 4
    assert doc["sources"][0]["calls_today"] == 0


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        (datetime(2026, 3, 3, 7, 59), None),  # Tuesday, before opening
        (datetime(2026, 3, 3, 8, 0), None),  # the very start: nothing to judge yet
        (datetime(2026, 3, 3, 12, 30), (time(8), time(12, 30))),
        (datetime(2026, 3, 3, 21, 0), (time(8), time(18))),  # after closing: the whole day
        (datetime(2026, 3, 7, 12, 0), None),  # Saturday
        (datetime(2026, 3, 31, 12, 0), (time(8), time(12))),  # after the clocks went forward
    ],
)
def test_business_window_is_local(local: datetime, expected: tuple[time, time] | None) -> None:
    window = business_window(local.replace(tzinfo=LONDON), LONDON, POLICY)
    if expected is None:
        assert window is None
        return
    assert window is not None
    assert tuple(w.astimezone(LONDON).time() for w in window) == expected


@pytest.mark.parametrize(
    ("version", "key"),
    [("0.1.0", (0, 1, 0)), ("1.10.2rc1", (1, 10, 2)), ("2", (2,)), ("dev", ()), ("3.x.1", (3,))],
)
def test_version_key(version: str, key: tuple[int, ...]) -> None:
    assert version_key(version) == key


def test_settings_defaults_are_the_policy_defaults() -> None:
    assert policy_from_settings(load_settings(env={}).health) == HealthPolicy()


def test_states_are_listed_worst_first() -> None:
    states = list(iter_states())
    assert states[0] is State.AGENT_DOWN and states[-1] is State.OK
    assert [s.severity for s in states] == sorted((s.severity for s in states), reverse=True)
