"""The data centre is unreachable for 7 days (the agent's clock moved, not waited); then it returns.

A site making 2,200 calls a day: the landing server (sshd) is stopped before the agent starts,
and the PBX streams 7 days of calls (15,400, about 94 % of the 16 MB spool quota once nothing
can leave). The agent runs under ``tests.faults.clocked_agent``: after each 2,200 calls the test
moves its wall clock one day on, so it lives through the week (journal retention, receipt
timeouts, heartbeats and retention all see 7 days pass). Then sshd comes back.

Judged from what was recorded: the quota alarm climbed through ``warning`` (70 %) and
``critical`` (90 %) in the agent's log; the heartbeats the agent kept through the outage reach
the data centre and show the spool at ``critical`` or worse (its ``spool_filling`` evidence);
every call is stored exactly once. The catch-up rate (calls stored per second from the return
until the last one) is compared with the site's normal rate, 2,200 calls a day on the agent's
clock: it must be at least 10 times that. The figure is also printed against the rate the test
streamed the week at (a compressed week, so that ratio is for information only).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from datacenter.store.tables.health import agent_heartbeats
from edge_agent.health.quota import RANK
from edge_agent.spool import SpoolLevel
from tests.faults.clocked_agent import use_clocked_agent, write_offset
from tests.faults.site import Site, assert_exactly_once, stored_count

pytestmark = [pytest.mark.faults, pytest.mark.sshd]

DAY = 86400.0
DAYS = 7
CALLS_PER_DAY = 2200
CALLS = DAYS * CALLS_PER_DAY
STREAM_RATE = 500.0  # calls/s the week is streamed at: at most ~3 % of the quota per agent cycle
NORMAL_RATE = CALLS_PER_DAY / DAY  # calls/s on the agent's clock: the site's live rate
REQUIRED_RATIO = 10.0


def day_reached(site: Site, count: int) -> Callable[[], bool]:
    """The PBX sent ``count`` calls, or the spool is full and the agent stopped reading."""
    return lambda: (
        site.simulator.sent >= count or (site.spool_state("spool_quota") or "").find('"full"') >= 0
    )


def stored_spool_levels(site: Site) -> list[str]:
    """The spool level of every heartbeat the data centre stored, in the agent's order."""
    query = sa.select(agent_heartbeats.c.document).order_by(agent_heartbeats.c.sent_at)
    with site.engine.connect() as conn:
        return [str(doc["spool"]["level"]) for (doc,) in conn.execute(query)]


def test_a_week_without_the_data_centre_alarms_then_catches_up(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(calls=CALLS, rate_per_second=STREAM_RATE, batch_max_records=200,
                     quota_mb=16)  # fmt: skip
    offset_file = use_clocked_agent(site)
    site.sshd.stop()  # the data centre is unreachable from the start
    site.start()
    streamed_from = time.monotonic()
    for day in range(1, DAYS + 1):
        site.wait_until(day_reached(site, day * CALLS_PER_DAY), timeout=120,
                        what=f"day {day}'s calls at the agent")  # fmt: skip
        write_offset(offset_file, day * DAY)
    streamed = time.monotonic() - streamed_from
    log = site.agent_log.read_text(errors="replace")
    levels = re.findall(r"spool quota (ok|warning|critical|full):", log)
    # The alarm is checked once a cycle; a machine so loaded that a cycle takes seconds can
    # see the spool go from below 90 % to full between two checks: full is then the 90 % alarm.
    assert "warning" in levels and {"critical", "full"} & set(levels), site.diagnosis(
        f"the quota alarm did not pass 70 % and 90 %: {levels}"
    )
    ranks = [RANK[SpoolLevel(level)] for level in levels]
    assert ranks == sorted(ranks), f"the alarm did not climb: {levels}"
    assert stored_count(site.engine) == 0, "something was delivered during the outage"

    site.sshd.start()
    returned = time.monotonic()
    site.wait_until(lambda: stored_count(site.engine) >= CALLS, timeout=300,
                    what="the week's calls in the store")  # fmt: skip
    catch_up_seconds = time.monotonic() - returned
    site.wait_delivered(timeout=120)
    result = assert_exactly_once(site.engine, site.expected())

    heartbeat_levels = stored_spool_levels(site)
    assert {"critical", "full"} & set(heartbeat_levels), (
        f"no stored heartbeat shows the spool at critical or full: {heartbeat_levels}"
    )
    rate = CALLS / catch_up_seconds
    assert rate >= REQUIRED_RATIO * NORMAL_RATE, (
        f"catch-up {rate:.2f} calls/s is not {REQUIRED_RATIO:g}x the site's {NORMAL_RATE:.4f}"
    )
    print(
        f"\n7-day outage: {result.calls} calls ({CALLS_PER_DAY}/day), 0 lost, 0 duplicated; "
        f"alarms {' -> '.join(levels)}; heartbeats stored after the return: "
        f"{len(heartbeat_levels)} ({', '.join(sorted(set(heartbeat_levels)))}); catch-up "
        f"{catch_up_seconds:.1f} s = {rate:.0f} calls/s = {rate / NORMAL_RATE:,.0f}x the site's "
        f"rate ({NORMAL_RATE * 3600:.0f}/h) and {rate / STREAM_RATE:.1f}x the rate the week was "
        f"streamed at ({STREAM_RATE:g}/s); the week took {streamed:.1f} s to reach the agent"
    )
