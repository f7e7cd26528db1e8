"""The agent's wall clock jumps backwards and forwards, by seconds to weeks, while it collects and
delivers.

The agent runs under ``tests.faults.clocked_agent`` (its own ``Service`` with a clock the test
moves; monotonic time stays real). While the PBX streams 1,200 calls, the clock is set, one step
after each eighth of the calls, to: 2 s slow, 10 min fast, 3 h slow, 1 day fast, 2 days slow,
40 days fast (past ``delivery.retention_days`` = 30 and ``journal.retention_days`` = 7, and
past the 2 h receipt timeout), 40 days less 5 s, 10 min slow, and back to true.

Judged from what was recorded: the store holds every call exactly once with the record id its
journal number gives (a number reused or skipped after a jump fails it); the data centre has
batch numbers 1..N without a gap, no batch name landed twice; no receipt was refused; the
40-day jump made retention delete acknowledged batches at once (the agent notices the step,
``edge_agent.health.clock_jump``); the run ends with the clock a day slow, so the last partial
batch is sealed although its rows look a day younger than zero.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tests.faults.clocked_agent import use_clocked_agent, write_offset
from tests.faults.site import Site, assert_exactly_once

pytestmark = [pytest.mark.faults, pytest.mark.sshd]

CALLS = 1200
RATE = 40.0
DAY = 86400.0
RETENTION_STEP = 40 * DAY  # past delivery.retention_days (30)
OFFSETS = [-2.0, 600.0, -3 * 3600.0, DAY, -2 * DAY, 40 * DAY, 40 * DAY - 5, -600.0, -DAY]


def sent_at_least(site: Site, count: int) -> Callable[[], bool]:
    return lambda: site.simulator.sent >= count


def test_clock_jumps_break_no_number_name_receipt_or_retention(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(calls=CALLS, rate_per_second=RATE, batch_max_records=25)
    offset_file = use_clocked_agent(site)
    site.start()
    steps = len(OFFSETS)
    for step, offset in enumerate(OFFSETS, start=1):
        sent = CALLS * step // (steps + 1)
        site.wait_until(sent_at_least(site, sent), timeout=60,
                        what=f"the PBX to send {sent} calls")  # fmt: skip
        if offset >= RETENTION_STEP:  # something acknowledged for retention to delete
            site.wait_until(lambda: site.batch_statuses().get("acknowledged", 0) > 0,
                            timeout=60, what="an acknowledged batch")  # fmt: skip
        write_offset(offset_file, offset)
        if offset >= RETENTION_STEP:  # the agent must see this step before the next one
            site.wait_log("retention: deleted", timeout=60)
    site.wait_delivered(timeout=120)
    site.agent.stop()

    result = assert_exactly_once(site.engine, site.expected())
    sequences = site.batch_sequences()
    assert sequences == list(range(1, len(sequences) + 1)), f"batch number gaps: {sequences}"
    names = [row.file_name for row in site.landed_file_rows()]
    assert len(names) == len(set(names)), "a batch name landed twice as different files"
    log = site.agent_log.read_text(errors="replace")
    refused = re.findall(r"receipt \S+: (rejected|mismatch|unknown)", log)
    assert not refused, site.diagnosis(f"receipts refused after clock jumps: {refused}")
    assert "Traceback" not in log, site.diagnosis("the agent logged a traceback")
    purged = re.findall(r"retention: deleted (\d+) acknowledged batches", log)
    assert purged, site.diagnosis("40 days on, retention deleted no acknowledged batch")
    resent = log.count("no receipt for")
    print(
        f"\nclock jumps to {', '.join(f'{o / 3600:+.4g} h' for o in OFFSETS)}: {result.calls} calls, 0 lost, "
        f"0 duplicated; {len(sequences)} batches, no gap; retention deleted "
        f"{sum(int(n) for n in purged)} acknowledged batches after the +40 d jump; {resent} "
        "batches sent again after the receipt timeout passed on the agent's clock"
    )
