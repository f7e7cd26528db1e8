"""The path to the data centre silently drops every packet mid-upload, then comes back.

Two network namespaces (``tests/faults/netns_site.py``): the site (the agent and the PBX
simulator, 198.18.30.1) and the data centre (sshd, 198.18.30.2), joined by a veth pair. Uploads
are throttled (``uplink.max_kbps``) so a batch takes seconds. Once a ``.part`` shows an upload
under way, both ends of the link get a ``blackhole`` qdisc: every packet is dropped and the
sender is told nothing (no reset, no ICMP; this kernel has neither ``netem`` nor nftables,
and the blackhole qdisc is the silent drop it has).

Judged from what was recorded: while the link is dead the agent logs failed sessions again and
again (an upload that hung forever would log none: each failure is a timeout it configured,
``uplink.connect_timeout_seconds`` / ``transfer_timeout_seconds``), and its spool takes in every
line the PBX sends (reading never waits for the uplink). When the qdisc is removed the agent
delivers everything: exactly once, no ``.part`` left, no gap in batch numbers.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.faults.netns_site import DC_IP, NetnsSite, netns_site, set_blackhole
from tests.faults.site import SOURCE_ID, Site, SiteOptions, assert_exactly_once

pytestmark = [
    pytest.mark.faults,
    pytest.mark.sshd,
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]

CALLS = 1500
TIMEOUT_SECONDS = 3.0
FAILURES_WANTED = 3
FAILURE = re.compile(r"^(\S+ \S+) ERROR \S+: uplink failed \(attempt (\d+), next in \d+ s\): (.*)$")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[NetnsSite]:
    options = SiteOptions(calls=CALLS, rate_per_second=100.0, batch_max_records=200,
                          max_kbps=80, connect_timeout_seconds=TIMEOUT_SECONDS,
                          transfer_timeout_seconds=TIMEOUT_SECONDS)  # fmt: skip
    with netns_site(tmp_path, options) as made:
        yield made


def spooled(site: Site) -> int:
    rows = site.spool_rows("SELECT seq FROM cursors WHERE source_id = ?", (SOURCE_ID,))
    return int(rows[0][0]) if rows else 0


def failures(site: Site) -> list[tuple[datetime, int, str]]:
    found = []
    for line in site.agent_log.read_text(errors="replace").splitlines():
        if (match := FAILURE.match(line)) is not None:
            at = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f")
            found.append((at, int(match[2]), match[3]))
    return found


def test_a_blackholed_link_times_out_backs_off_and_loses_nothing(lab: NetnsSite) -> None:
    site = lab.site
    site.start()
    site.wait_until(lambda: bool(site.landed("incoming", "*.part")), timeout=60,
                    what="an upload under way (a .part in incoming/)")  # fmt: skip
    set_blackhole(lab, on=True)
    holed_at = datetime.now()
    site.wait_until(lambda: len(failures(site)) >= FAILURES_WANTED, timeout=120,
                    what=f"{FAILURES_WANTED} failed sessions through the blackhole")  # fmt: skip
    site.wait_until(lambda: spooled(site) >= CALLS, timeout=120,
                    what="every PBX line spooled while the uplink is dead")  # fmt: skip
    seen = failures(site)
    set_blackhole(lab, on=False)
    site.wait_delivered(timeout=120)
    site.agent.stop()

    result = assert_exactly_once(site.engine, site.expected())
    assert not site.landed("incoming", "*.part"), "a .part was left in incoming/"
    sequences = site.batch_sequences()
    assert sequences == list(range(1, len(sequences) + 1)), f"batch number gaps: {sequences}"
    reasons = sorted({reason.split(":")[0][:80] for _, _, reason in seen})
    assert not any("refused" in reason for reason in reasons), reasons
    first = (seen[0][0] - holed_at).total_seconds()
    gaps = [round((b[0] - a[0]).total_seconds(), 1) for a, b in itertools.pairwise(seen)]
    print(
        f"\nblackhole to {DC_IP}: {result.calls} calls, 0 lost, 0 duplicated; first failure "
        f"{first:.1f} s after the drop (timeouts {TIMEOUT_SECONDS:g} s); {len(seen)} failed "
        f"sessions while dark, {gaps} s apart; all {CALLS} lines spooled meanwhile; "
        f"{len(sequences)} batches, no gap; reasons: {reasons}"
    )
