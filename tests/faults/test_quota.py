"""The spool's disk quota is reached: the source stops reading, nothing is lost, then it drains.

The data centre's ingest is down, so no receipt comes back and nothing may leave the spool
(uploaded but unacknowledged batches are never deleted). The PBX sends a burst larger than the
16 MB quota (the smallest allowed). The quota alarm must climb ``warning`` -> ``critical`` ->
``full``; at ``full`` the agent stops reading the PBX (TCP flow control: the PBX buffers). When
ingest comes back, receipts arrive, acknowledged batches are deleted at once (the spool is
under pressure), the source resumes, and every call reaches the store once.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable

import pytest

from edge_agent.health.quota import RANK
from edge_agent.spool import SpoolLevel
from tests.faults.site import SOURCE_ID, Site, assert_exactly_once

pytestmark = [pytest.mark.faults, pytest.mark.sshd]

CALLS = 30000  # ~1.1 kB each in the spool: well past 16 MB, whatever the WAL holds
FULL_HOLD_SECONDS = 2.0  # how long the test watches the paused source


def journal_bytes(site: Site) -> int:
    return sum(path.stat().st_size for path in (site.state_dir / "journal").rglob("*.seg"))


def parsed(site: Site) -> int:
    """The source's cursor: PBX lines journalled, parsed and spooled."""
    rows = site.spool_rows("SELECT seq FROM cursors WHERE source_id = ?", (SOURCE_ID,))
    return int(rows[0][0]) if rows else 0


def quota_level(site: Site) -> str:
    state = site.spool_state("spool_quota")
    return "ok" if state is None else str(json.loads(state)["level"])


def test_disk_quota_reached_sources_pause_then_drain(make_site: Callable[..., Site]) -> None:
    site = make_site(calls=CALLS, rate_per_second=5000.0, batch_max_records=1000, quota_mb=16)
    site.agent.start()
    filled = site.wait_until(lambda: quota_level(site) == "full", timeout=90,
                             what="the spool quota to reach full")  # fmt: skip
    site.wait_log("spool full, not reading until batches leave", timeout=10)
    read_when_full = journal_bytes(site), parsed(site)
    time.sleep(FULL_HOLD_SECONDS)
    assert (journal_bytes(site), parsed(site)) == read_when_full, "the source kept reading"
    assert quota_level(site) == "full"
    waiting = site.simulator.sent - read_when_full[1]  # in the TCP buffers: the PBX's to keep
    assert waiting > 0, "nothing waited at the PBX: the quota did not stop the source"

    site.start_ingest()
    # The source must resume and read every line the PBX held: "the agent has nothing left"
    # alone is also true while it is still paused, with lines waiting in the TCP buffers.
    site.wait_until(lambda: parsed(site) >= CALLS, timeout=120,
                    what="the paused source to read every line the PBX held")  # fmt: skip
    drained = site.wait_delivered(timeout=120)
    result = assert_exactly_once(site.engine, site.expected())

    def levels_logged() -> list[str]:
        return re.findall(r"spool quota (ok|warning|critical|full):", site.agent_log.read_text())

    # The alarm is checked once a cycle: the source may be reading again (and everything
    # delivered) a cycle before the log says the spool left full.
    site.wait_until(lambda: levels_logged()[-1:] != ["full"], timeout=60,
                    what="the quota alarm to say the spool left full")  # fmt: skip
    log = site.agent_log.read_text()
    levels = levels_logged()
    full = levels.index("full")
    ranks = [RANK[SpoolLevel(level)] for level in levels]
    assert ranks[: full + 1] == sorted(ranks[: full + 1]), f"the alarm did not climb: {levels}"
    # Below critical, acknowledged batches are kept for delivery.retention_days again, so the
    # spool may settle at warning with nothing left to send; and spool.db keeps its freed pages
    # and the journal is kept journal.retention_days, so it may settle at critical: what must
    # hold is that it left full (the source reads again) and the alarm says where it is.
    assert levels[-1] != "full" and quota_level(site) == levels[-1], levels
    assert "early: the spool is nearly full" in log, "retention did not purge under pressure"
    print(
        f"\nspool quota reached: full after {filled:.1f} s with {read_when_full[1]} of {CALLS} "
        f"lines read; source paused {FULL_HOLD_SECONDS:g} s with {waiting} lines waiting at the "
        f"PBX; alarms {' -> '.join(levels)}; drained {drained:.1f} s after ingest returned: "
        f"{result.calls} calls, 0 lost, 0 duplicated"
    )
