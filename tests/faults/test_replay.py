"""A replayed old batch is stored once.

Two replays after everything was delivered: a byte-identical copy of an old, archived batch
dropped back into ``incoming/`` (a stale copy, a replay by a broken or hostile process), and a
re-send of every acknowledged batch by the agent itself (``edge-agent resend --since``, what a
technician asks for after a data-centre restore). The data centre recognises each file (same
name, same SHA-256), archives it as ``resent``, stores nothing again and writes a new receipt,
which the agent accepts; the calls in the store do not change.
"""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from tests.faults.site import Site, assert_exactly_once

pytestmark = [pytest.mark.faults, pytest.mark.sshd]

BATCHES = 10
REPLAYED = 2


def test_replayed_old_batch_stored_once(make_site: Callable[..., Site]) -> None:
    site = make_site(calls=BATCHES * 30, rate_per_second=300.0, batch_max_records=30)
    site.start(ingest_process=True)
    site.wait_delivered(timeout=60)
    assert_exactly_once(site.engine, site.expected())
    before = {
        row.file_name: (row.status, row.sha256, row.inserted) for row in site.landed_file_rows()
    }
    batches = len(before)  # BATCHES, or more when a partial batch aged out on a slow machine
    assert batches >= BATCHES and sum(inserted for *_, inserted in before.values()) == BATCHES * 30

    began = time.monotonic()
    old = next(p for p in site.landed("archive") if p.name.endswith(f"{REPLAYED:010d}.ccb"))
    shutil.copyfile(old, site.landing / "incoming" / old.name)
    site.wait_log(f"{old.name}: resent", timeout=30, log=site.ingest_log)
    # the data centre receipts the replay too (0 new); the agent takes it as "already" acknowledged
    records = before[old.name][2]
    site.wait_log(f"receipt {old.name}.receipt: already {records} records, 0 new", timeout=30)

    since = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    resend = site.agent_command("resend", "--since", since)
    assert resend.returncode == 0 and f"{batches} batches re-queued" in resend.stdout, resend
    site.agent.signal(signal.SIGUSR1)
    site.wait_until(lambda: site.ingest_log.read_text().count(": resent") >= batches + 1,
                    timeout=60, what="every re-sent batch to be recognised")  # fmt: skip
    site.wait_delivered(timeout=60)
    result = assert_exactly_once(site.engine, site.expected())
    after = {
        row.file_name: (row.status, row.sha256, row.inserted) for row in site.landed_file_rows()
    }
    assert after == before, "a replay changed what the data centre recorded"
    assert not site.landed("quarantine"), "a replay was quarantined"
    print(
        f"\nreplayed old batch + resend of all {batches}: {result.calls} calls, 0 lost, "
        f"0 duplicated; {batches + 1} files recognised as resent and receipted again, all "
        f"acknowledged {time.monotonic() - began:.1f} s after the replay"
    )
