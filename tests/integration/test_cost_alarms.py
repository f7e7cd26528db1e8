"""Cost and fraud alarm rules against hand-computed data, on both backends.

Tenant acme (Europe/London) rates on the demo britline tariff (datacenter/rating/demo), so the
costs below come from its rate decks, worked out by hand:

- premium 09 (449): connection 0.10 + 1.50 a started minute (60/60), minimum 0.50:
  600 s -> 0.10 + 10 x 1.50 = 15.10; 60 s -> 0.10 + 1.50 = 1.60
- London local (4420), day band: 0.015 + 0.02 a started minute: 7,800 s (130 min) -> 2.615 ->
  2.62 (half up)
- UK mobile (447) day, version 2025-07: 0.07 a minute, first 60 s then per second:
  125 s -> 0.1458 -> 0.15; re-rated at 0.08 -> 0.1667 -> 0.17
- Germany (49): 0.045 a minute, 60/1: 90 s -> 0.0675 -> 0.07
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from datacenter.cost_alarms.runner import CostAlarmRunner
from datacenter.cost_alarms.store import load_marks
from datacenter.health.notify import Mailer
from datacenter.rating import load_tariff
from datacenter.rating.rerate import rerate
from datacenter.rating.store import import_tariff_plan
from datacenter.settings import Settings
from datacenter.store.engine import write_transaction
from datacenter.store.tables.cost_alarms import cost_alarm_rules
from datacenter.store.tables.rating import call_costs
from tests.fixtures.cost_alarms import DEMO, CostWorld, gen_call, rid, seed_cost_world

LONDON = ZoneInfo("Europe/London")
DAY = datetime(2025, 7, 16, tzinfo=UTC)  # a Wednesday; London is on BST (UTC+1)
PREMIUM, LOCAL, MOBILE, GERMANY = "09098790000", "02079460123", "07700900123", "00493012345678"


@pytest.fixture
def world(store: sa.Engine, dc_settings: Settings) -> CostWorld:
    return seed_cost_world(store, dc_settings)


def run(world: CostWorld) -> CostAlarmRunner:
    runner = CostAlarmRunner(world.engine, mailer=Mailer(world.settings.smtp))
    report = runner.run_once(datetime.now(UTC))
    assert report.failures == []
    return runner


def by_rule(world: CostWorld) -> dict[str, list[tuple[str, str, list[str]]]]:
    """rule -> [(subject, period, sorted record ids)] of its alarms."""
    found: dict[str, list[tuple[str, str, list[str]]]] = {}
    for alarm in world.alarms():
        entry = (alarm.subject, alarm.period, sorted(world.calls_of(alarm)))
        found.setdefault(alarm.rule_id, []).append(entry)
    return {rule: sorted(entries) for rule, entries in found.items()}


def test_per_call_rules_cost_length_and_out_of_hours(world: CostWorld) -> None:
    world.save(
        """
        [hours]
        days = "mon-fri"
        open = "08:00"
        close = "18:00"

        [[rules]]
        kind = "call_cost"
        over = "10.00"

        [[rules]]
        kind = "long_call"
        minutes = 120

        [[rules]]
        kind = "off_hours"
        """
    )
    world.ingest(
        # 21:00 BST, 15.10: over 10.00 and out of hours
        gen_call("p-late", start=DAY.replace(hour=20), talk=600, dialled=PREMIUM),
        # 10:00 BST, 1.60: neither
        gen_call("p-day", start=DAY.replace(hour=9), talk=60, dialled=PREMIUM),
        # 07:00 BST (06:00 UTC), international: out of hours though 06:00 UTC looks it too
        gen_call("de-early", start=DAY.replace(hour=6), talk=90, dialled=GERMANY),
        # 17:30 BST = 16:30 UTC: in hours on the tenant's clock
        gen_call("de-day", start=DAY.replace(hour=16, minute=30), talk=90, dialled=GERMANY),
        # 130 minutes, 2.62: long, not costly; 120 minutes exactly is not longer than 120
        gen_call("long", start=DAY.replace(hour=9), talk=7800, dialled=LOCAL, extension="2202"),
        gen_call("edge", start=DAY.replace(hour=9), talk=7200, dialled=LOCAL, extension="2202"),
    )
    run(world)
    assert by_rule(world) == {
        "call_cost": [("2201", "2025-07-16", [rid("p-late")])],
        "long_call": [("2202", "2025-07-16", [rid("long")])],
        "off_hours": [("2201", "2025-07-16", sorted([rid("p-late"), rid("de-early")]))],
    }
    [costly] = [a for a in world.alarms() if a.rule_id == "call_cost"]
    assert costly.reason == "a call costs more than 10.00 GBP"


def test_business_hours_follow_the_tenant_clock_across_dst(world: CostWorld) -> None:
    """07:30 UTC is 07:30 GMT on Friday 28 March 2025 (before opening) but 08:30 BST on Monday
    31 March (after the change on the 30th: open); 17:30 UTC on Monday is 18:30 BST (closed)."""
    world.save('[hours]\nopen = "08:00"\nclose = "18:00"\n[[rules]]\nkind = "off_hours"\n')
    friday, monday = datetime(2025, 3, 28, tzinfo=UTC), datetime(2025, 3, 31, tzinfo=UTC)
    world.ingest(
        gen_call("fri-0730", start=friday.replace(hour=7, minute=30), talk=60, dialled=PREMIUM),
        gen_call("mon-0730", start=monday.replace(hour=7, minute=30), talk=60, dialled=PREMIUM),
        gen_call("mon-1730", start=monday.replace(hour=17, minute=30), talk=60, dialled=PREMIUM),
        # Saturday noon: not a business day
        gen_call("sat-noon", start=datetime(2025, 3, 29, 12, tzinfo=UTC), talk=60,
                 dialled=GERMANY),
    )  # fmt: skip
    run(world)
    assert by_rule(world) == {
        "off_hours": [
            ("2201", "2025-03-28", [rid("fri-0730")]),
            ("2201", "2025-03-29", [rid("sat-noon")]),
            ("2201", "2025-03-31", [rid("mon-1730")]),
        ]
    }


def test_day_cost_per_extension_and_per_tenant(world: CostWorld) -> None:
    """2201: 15.10 + 1.60 = 16.70 > 16.00; 2202: 2.62. Tenant: 19.32 > 19.00, not > 20."""
    world.save(
        '[[rules]]\nkind = "extension_day_cost"\nover = "16.00"\n'
        '[[rules]]\nkind = "tenant_day_cost"\nover = "19"\n'
        '[[rules]]\nid = "tenant-20"\nkind = "tenant_day_cost"\nover = 20\n'
    )
    world.ingest(
        gen_call("p-late", start=DAY.replace(hour=20), talk=600, dialled=PREMIUM),
        gen_call("p-day", start=DAY.replace(hour=9), talk=60, dialled=PREMIUM),
        gen_call("long", start=DAY.replace(hour=9), talk=7800, dialled=LOCAL, extension="2202"),
    )
    run(world)
    assert by_rule(world) == {
        "extension_day_cost": [("2201", "2025-07-16", sorted([rid("p-late"), rid("p-day")]))],
        "tenant_day_cost": [("", "2025-07-16", sorted([rid("p-late"), rid("p-day"), rid("long")]))],
    }
    [tenant_day] = [a for a in world.alarms() if a.rule_id == "tenant_day_cost"]
    assert tenant_day.reason == "the tenant spent 19.32 GBP in one day, more than 19.00"


def test_volume_far_above_the_same_hour_of_previous_weeks_across_dst(world: CostWorld) -> None:
    """Wednesday 2 April 2025, 10:00-11:00 BST (09:00 UTC). The four Wednesdays before at 10:00
    on the London clock: 26 March (GMT, 10:00 UTC) 2 calls, 19 March 3, 12 March 2, 5 March 4.
    Median 2.5, deviations 0.5 0.5 0.5 1.5, MAD 0.5, spread max(1.4826 x 0.5, 1) = 1, limit
    2.5 + 3 x 1 = 5.5: six calls alarm (and reach min_calls 6); calls at 09:xx UTC on 26 March
    (09:xx GMT, another hour) must not count as history."""
    world.save('[[rules]]\nkind = "volume"\nweeks = 4\nfactor = 3\nmin_calls = 6\n')
    history = {26: (10, 2), 19: (10, 3), 12: (10, 2), 5: (10, 4)}
    records = []
    for day, (utc_hour, count) in history.items():
        for n in range(count):
            start = datetime(2025, 3, day, utc_hour, 5 * n, tzinfo=UTC)
            records.append(gen_call(f"h{day}-{n}", start=start, talk=30, dialled=LOCAL))
    for n in range(5):  # 26 March 09:xx GMT: the hour before, not history
        start = datetime(2025, 3, 26, 9, 5 * n, tzinfo=UTC)
        records.append(gen_call(f"early-{n}", start=start, talk=30, dialled=LOCAL))
    world.ingest(*records)
    busy = [gen_call(f"now-{n}", start=datetime(2025, 4, 2, 9, 5 * n, tzinfo=UTC), talk=30,
                     dialled=LOCAL) for n in range(5)]  # fmt: skip
    world.ingest(*busy)
    run(world)
    assert by_rule(world) == {}  # five calls: under the limit of 5.5
    world.ingest(gen_call("now-5", start=datetime(2025, 4, 2, 9, 55, tzinfo=UTC), talk=30,
                          dialled=LOCAL))  # fmt: skip
    run(world)
    expected = sorted(rid(f"now-{n}") for n in range(6))
    assert by_rule(world) == {"volume": [("", "2025-04-02T10", expected)]}
    [alarm] = world.alarms()
    assert alarm.reason.startswith("6 calls between 10:00 and 11:00; usual 2.5 (median of")
    assert "weeks: 2, 3, 2, 4; MAD 0.5), limit 5.5" in alarm.reason


def test_volume_needs_the_minimum_count_on_a_quiet_tenant(world: CostWorld) -> None:
    """No history: median 0, limit 3; three calls are over it but under min_calls 20."""
    world.save('[[rules]]\nkind = "volume"\n')
    world.ingest(*(gen_call(f"q{n}", start=DAY.replace(hour=9, minute=n), talk=30,
                            dialled=LOCAL) for n in range(4)))  # fmt: skip
    run(world)
    assert world.alarms() == []


def test_many_short_calls_to_one_number(world: CostWorld) -> None:
    """Five calls under 10 s to one mobile within 60 minutes alarm; four (to another number,
    with a fifth 70 minutes later) do not, nor does a 12 s call."""
    world.save('[[rules]]\nkind = "short_calls"\ncalls = 5\nseconds = 10\nwindow_minutes = 60\n')
    base = DAY.replace(hour=2)
    burst = [gen_call(f"b{n}", start=base + timedelta(minutes=10 * n), talk=3, dialled=MOBILE)
             for n in range(5)]  # fmt: skip
    spread = [gen_call(f"s{n}", start=base + timedelta(minutes=15 * n), talk=3,
                       dialled="07700900999") for n in range(4)]  # fmt: skip
    spread.append(gen_call("s-late", start=base + timedelta(minutes=45 + 70), talk=3,
                           dialled="07700900999"))  # fmt: skip
    world.ingest(*burst, *spread, gen_call("longer", start=base, talk=12, dialled=MOBILE))
    run(world)
    assert by_rule(world) == {
        "short_calls": [("447700900123", "2025-07-16", sorted(rid(f"b{n}") for n in range(5)))]
    }


def test_duplicate_findings_attach_to_one_alarm_and_a_rerun_changes_nothing(
    world: CostWorld,
) -> None:
    world.save('[[rules]]\nkind = "call_cost"\nover = "1.00"\n')
    world.ingest(gen_call("a", start=DAY.replace(hour=9), talk=600, dialled=PREMIUM),
                 gen_call("b", start=DAY.replace(hour=10), talk=60, dialled=PREMIUM))  # fmt: skip
    run(world)
    [alarm] = world.alarms()
    assert alarm.calls == 2
    report = CostAlarmRunner(world.engine, mailer=Mailer(world.settings.smtp)).run_once(
        datetime.now(UTC)
    )
    assert report.calls == 2 and report.new_calls == 0  # the overlap re-reads them: harmless
    assert [(a.alarm_id, a.calls) for a in world.alarms()] == [(alarm.alarm_id, 2)]
    world.ingest(gen_call("c", start=DAY.replace(hour=11), talk=120, dialled=PREMIUM))
    run(world)
    [again] = world.alarms()
    assert (again.alarm_id, again.calls) == (alarm.alarm_id, 3)
    assert sorted(world.calls_of(again)) == sorted(rid(k) for k in "abc")
    # Another day is another period: a second alarm.
    world.ingest(gen_call("d", start=DAY.replace(day=17, hour=9), talk=120, dialled=PREMIUM))
    run(world)
    assert sorted(a.period for a in world.alarms()) == ["2025-07-16", "2025-07-17"]


def test_marks_move_with_the_calls_evaluated(world: CostWorld) -> None:
    world.save('[[rules]]\nkind = "long_call"\nminutes = 1\n')
    with world.engine.connect() as conn:
        before = load_marks(conn, world.tenant.tenant_id)
    world.ingest(gen_call("a", start=DAY.replace(hour=9), talk=600, dialled=PREMIUM))
    run(world)
    with world.engine.connect() as conn:
        after = load_marks(conn, world.tenant.tenant_id)
        rated_at = conn.scalar(sa.select(call_costs.c.rated_at))
    assert before is not None and after is not None
    assert before.rated_through is not None and before.ingested_through is not None
    assert rated_at is not None and after.rated_through == rated_at
    assert rated_at > before.rated_through
    assert after.ingested_through is not None
    assert after.ingested_through > before.ingested_through


def test_a_rerated_call_is_evaluated_again_without_a_second_alarm(
    world: CostWorld, tmp_path: Path
) -> None:
    """The mobile call costs 0.15 (not over 0.15) until mobiles cost 0.08 a minute: 0.17."""
    world.save('[[rules]]\nkind = "call_cost"\nover = "0.15"\n')
    world.ingest(
        gen_call("mob", start=DAY.replace(hour=9), talk=125, dialled=MOBILE),
        gen_call("p", start=DAY.replace(hour=9), talk=60, dialled=PREMIUM),
    )
    run(world)
    assert by_rule(world) == {"call_cost": [("2201", "2025-07-16", [rid("p")])]}
    folder = tmp_path / "tariff"
    shutil.copytree(DEMO, folder)
    deck = folder / "britline-2025-07.csv"
    deck.write_text(deck.read_text().replace("447,mobile,UK mobile,day,0.0700,",
                                             "447,mobile,UK mobile,day,0.0800,"))  # fmt: skip
    rerated_at = datetime.now(UTC)
    with write_transaction(world.engine) as conn:
        import_tariff_plan(conn, world.tenant.tenant_id, load_tariff(folder / "britline.toml"),
                           now=rerated_at)  # fmt: skip
    rerate(world.engine, world.tenant.tenant_id, since=DAY, until=DAY + timedelta(days=1),
           zone=LONDON, now=rerated_at)  # fmt: skip
    with world.engine.connect() as conn:
        cost = conn.scalar(
            sa.select(call_costs.c.cost_minor).where(call_costs.c.record_id == rid("mob"))
        )
    assert cost == 17
    run(world)
    run(world)
    assert by_rule(world) == {"call_cost": [("2201", "2025-07-16", sorted([rid("p"), rid("mob")]))]}
    assert len(world.alarms()) == 1


def test_a_pass_that_fails_before_its_commit_leaves_nothing_and_the_next_does_it_all(
    world: CostWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Break the step that moves the marks (the last of the transaction): no alarm and no
    mark is kept; the next pass finds the same alarm once."""
    world.save('[[rules]]\nkind = "call_cost"\nover = "1.00"\n')
    world.ingest(gen_call("a", start=DAY.replace(hour=9), talk=600, dialled=PREMIUM))
    with world.engine.connect() as conn:
        before = load_marks(conn, world.tenant.tenant_id)

    def crash(*args: object, **kwargs: object) -> None:
        raise sa.exc.OperationalError("UPDATE cost_alarm_marks", {}, Exception("server closed"))

    monkeypatch.setattr("datacenter.cost_alarms.store.save_marks", crash)
    broken = CostAlarmRunner(world.engine, mailer=Mailer(world.settings.smtp)).run_once(
        datetime.now(UTC)
    )
    assert broken.failures and "server closed" in broken.failures[0]
    assert world.alarms() == []
    with world.engine.connect() as conn:
        assert load_marks(conn, world.tenant.tenant_id) == before
    monkeypatch.undo()
    run(world)
    run(world)
    assert by_rule(world) == {"call_cost": [("2201", "2025-07-16", [rid("a")])]}


def test_one_tenants_broken_rules_do_not_stop_another_tenant(
    world: CostWorld, store: sa.Engine
) -> None:
    other = seed_cost_world(store, world.settings, "initech")
    world.save('[[rules]]\nkind = "long_call"\nminutes = 1\n')
    other.save('[[rules]]\nkind = "long_call"\nminutes = 1\n')
    with write_transaction(store) as conn:  # as if an older version had accepted it
        conn.execute(
            cost_alarm_rules.update()
            .where(cost_alarm_rules.c.tenant_id == world.tenant.tenant_id)
            .values(document='[[rules]]\nkind = "long_call"\nminutes = 0\n')
        )
    other.ingest(gen_call("i1", start=DAY.replace(hour=9), talk=600, dialled=PREMIUM))
    report = CostAlarmRunner(store, mailer=Mailer(world.settings.smtp)).run_once(datetime.now(UTC))
    assert len(report.failures) == 1 and "rules[0].minutes" in report.failures[0]
    assert [(a.rule_id, other.calls_of(a)) for a in other.alarms()] == [("long_call", [rid("i1")])]
