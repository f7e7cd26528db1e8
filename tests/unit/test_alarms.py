"""The alarm lifecycle as a table: raise, de-duplicate, remind, clear, acknowledge, silence."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from datacenter.health.alarms import (
    Alarm,
    AlarmKey,
    Condition,
    Notice,
    Step,
    decide,
    notice_due,
)

NOW = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)  # a Tuesday afternoon
RENOTIFY = timedelta(minutes=60)
KEY = AlarmKey(tenant_id=1, agent_id="acme-pbx1", source_id="smdr-main", state="source_down")
MIN = timedelta(minutes=1)


def gen_alarm(
    *,
    key: AlarmKey = KEY,
    notified_ago: timedelta | None = 10 * MIN,
    acknowledged: bool = False,
    silenced_for: timedelta | None = None,
) -> Alarm:
    """An open alarm raised two hours ago; ``notified_ago`` None = never notified."""
    return Alarm(
        tenant_id=key.tenant_id,
        alarm_id=f"a-{key.state}",
        agent_id=key.agent_id,
        source_id=key.source_id,
        state=key.state,
        reason="connection refused",
        raised_at=NOW - 120 * MIN,
        last_seen_at=NOW - MIN,
        cleared_at=None,
        notified_at=None if notified_ago is None else NOW - notified_ago,
        notifications=0 if notified_ago is None else 1,
        acknowledged_at=NOW - 30 * MIN if acknowledged else None,
        acknowledged_by="tess@callcollect.example" if acknowledged else None,
        silenced_until=None if silenced_for is None else NOW + silenced_for,
        note="",
    )


SEEN = [Condition(KEY, "connection refused by 127.0.0.1:1752")]

# (alarm open before, condition seen now, expected step, expected notice)
LIFECYCLE = {
    "new condition raises and notifies": (None, True, Step.RAISE, Notice.RAISED),
    "seen again soon after: de-duplicated, silent": (gen_alarm(), True, Step.KEEP, None),
    "just under the interval: still silent": (
        gen_alarm(notified_ago=59 * MIN), True, Step.KEEP, None),
    "interval reached: reminder": (
        gen_alarm(notified_ago=60 * MIN), True, Step.KEEP, Notice.REMINDER),
    "long overdue: one reminder, not several": (
        gen_alarm(notified_ago=600 * MIN), True, Step.KEEP, Notice.REMINDER),
    "first notice failed to send: sent again as raised": (
        gen_alarm(notified_ago=None), True, Step.KEEP, Notice.RAISED),
    "acknowledged: no more reminders": (
        gen_alarm(notified_ago=300 * MIN, acknowledged=True), True, Step.KEEP, None),
    "silenced: no reminder while the silence lasts": (
        gen_alarm(notified_ago=300 * MIN, silenced_for=60 * MIN), True, Step.KEEP, None),
    "silence over: reminders resume": (
        gen_alarm(notified_ago=300 * MIN, silenced_for=-MIN), True, Step.KEEP, Notice.REMINDER),
    "ok again: cleared with a notice": (gen_alarm(), False, Step.CLEAR, Notice.CLEARED),
    "ok again, never notified: cleared quietly": (
        gen_alarm(notified_ago=None), False, Step.CLEAR, None),
    "ok again while silenced: cleared quietly": (
        gen_alarm(silenced_for=60 * MIN), False, Step.CLEAR, None),
    "ok again after acknowledgement: the all-clear still goes out": (
        gen_alarm(acknowledged=True), False, Step.CLEAR, Notice.CLEARED),
}  # fmt: skip


@pytest.mark.parametrize(
    ("before", "seen", "step", "notice"), LIFECYCLE.values(), ids=list(LIFECYCLE)
)
def test_lifecycle(before: Alarm | None, seen: bool, step: Step, notice: Notice | None) -> None:
    decisions = decide([before] if before else [], SEEN if seen else [], now=NOW, renotify=RENOTIFY)
    assert [(d.step, d.key, d.notice) for d in decisions] == [(step, KEY, notice)]
    if step is Step.KEEP:
        assert decisions[0].reason == SEEN[0].reason  # the reason follows what is seen now
    if step is not Step.RAISE:
        assert decisions[0].alarm is before


def test_nothing_open_and_nothing_seen_decides_nothing() -> None:
    assert decide([], [], now=NOW, renotify=RENOTIFY) == []


def test_the_same_condition_twice_in_one_assessment_raises_one_alarm() -> None:
    twice = [Condition(KEY, "first reason"), Condition(KEY, "second reason")]
    decisions = decide([], twice, now=NOW, renotify=RENOTIFY)
    assert [(d.step, d.reason) for d in decisions] == [(Step.RAISE, "first reason")]


def test_a_site_changing_state_clears_one_alarm_and_raises_another() -> None:
    agent_down = replace(KEY, source_id="", state="agent_down")
    decisions = decide([gen_alarm()], [Condition(agent_down, "no heartbeat for 20 min")],
                       now=NOW, renotify=RENOTIFY)  # fmt: skip
    assert {(d.key.state, d.step, d.notice) for d in decisions} == {
        ("source_down", Step.CLEAR, Notice.CLEARED),
        ("agent_down", Step.RAISE, Notice.RAISED),
    }


def test_alarms_of_other_sites_and_tenants_are_independent() -> None:
    other_site = replace(KEY, agent_id="acme-pbx2")
    other_tenant = replace(KEY, tenant_id=2)
    seen = [*SEEN, Condition(other_site, "x"), Condition(other_tenant, "y")]
    decisions = decide([gen_alarm()], seen, now=NOW, renotify=RENOTIFY)
    assert [(d.key, d.step) for d in decisions] == sorted(
        [(KEY, Step.KEEP), (other_site, Step.RAISE), (other_tenant, Step.RAISE)]
    )


@pytest.mark.parametrize(
    ("silence_left", "notice", "inherited"),
    [(30 * MIN, None, True), (-MIN, Notice.RAISED, False)],
    ids=["silence still running: raised quietly", "silence over: raised loudly"],
)
def test_a_returning_condition_inherits_a_running_silence(
    silence_left: timedelta, notice: Notice | None, inherited: bool
) -> None:
    """A flapping site stays quiet for as long as the technician asked."""
    until = NOW + silence_left
    decisions = decide([], SEEN, now=NOW, renotify=RENOTIFY, silences={KEY: until})
    assert [(d.step, d.notice) for d in decisions] == [(Step.RAISE, notice)]
    assert decisions[0].silenced_until == (until if inherited else None)


def test_a_silence_for_another_key_does_not_apply() -> None:
    other = replace(KEY, state="transport_down")
    decisions = decide([], SEEN, now=NOW, renotify=RENOTIFY, silences={other: NOW + 60 * MIN})
    assert decisions[0].notice is Notice.RAISED


@pytest.mark.parametrize("minutes", [5, 30, 60, 240])
def test_reminders_follow_the_configured_interval(minutes: int) -> None:
    interval = timedelta(minutes=minutes)
    assert notice_due(gen_alarm(notified_ago=interval - MIN), now=NOW, renotify=interval) is None
    assert notice_due(gen_alarm(notified_ago=interval), now=NOW, renotify=interval) is (
        Notice.REMINDER
    )


def test_open_key_names_site_source_and_state() -> None:
    assert KEY.open_key == "acme-pbx1/smdr-main/source_down"
    assert replace(KEY, source_id="").open_key == "acme-pbx1//source_down"
