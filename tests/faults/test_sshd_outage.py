"""The landing area (OpenSSH) stops for a while, then comes back: back-off, then everything arrives.

While sshd is down every session fails; the agent keeps reading the PBX, spooling and sealing,
and retries with exponential back-off. When sshd is back the backlog goes up and the data centre
stores every call once. The heartbeats kept from the failed sessions arrive late with the first
good one, so the data centre's polling health shows the site's transport as down.

Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest

from datacenter.health.model import State
from tests.faults.site import Site, assert_exactly_once

pytestmark = [pytest.mark.faults, pytest.mark.sshd]

OUTAGE_SECONDS = 6.0
FAILED_SESSIONS = 3  # the data centre's default health.uplink_failures


def landed_files(site: Site) -> set[str]:
    """Names of batch files in the landing area, wherever ingest has moved them."""
    return {path.name for folder in ("incoming", "archive", "quarantine")
            for path in site.landed(folder)}  # fmt: skip


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_sshd_stopped_then_back(make_site: Callable[..., Site], backend: str) -> None:
    site = make_site(backend=backend, calls=600, rate_per_second=60.0)
    site.start()
    site.wait_stored(60, timeout=30)
    began = time.monotonic()
    site.sshd.stop()  # the listener; a session already open may finish its uploads
    site.wait_log("uplink failed (attempt 1", timeout=30)
    landed_in_outage = landed_files(site)
    site.wait_log(f"uplink failed (attempt {FAILED_SESSIONS}", timeout=30)
    time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - began)))
    outage = time.monotonic() - began
    assert landed_files(site) == landed_in_outage, "files landed while sshd was down"
    assert site.agent_backlog()[1] > 0, "nothing waited for the landing area"
    site.sshd.start()
    recovered = site.wait_delivered(timeout=60)
    result = assert_exactly_once(site.engine, site.expected())

    delays = [float(d) for d in re.findall(r"uplink failed \(attempt \d+, next in (\d+) s\)",
                                           site.agent_log.read_text())]  # fmt: skip
    assert len(delays) >= FAILED_SESSIONS, delays
    transport = site.finding(State.TRANSPORT_DOWN)
    assert transport is not None, f"no transport_down finding; findings: {site.findings()}"
    assert transport.evidence.get("uplink_failures", 0) >= FAILED_SESSIONS, transport
    print(
        f"\nsshd down {outage:.1f} s ({backend}): {result.calls} calls, 0 lost, 0 duplicated; "
        f"{len(delays)} failed sessions, back-off {', '.join(f'{d:g}' for d in delays)} s; "
        f"all delivered {recovered:.1f} s after sshd came back; health: {transport.state}"
    )
