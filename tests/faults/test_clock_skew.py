"""The agent's clock is three hours slow (libfaketime under the agent process only).

Call times come from the PBX's records (and the site's time zone), never from the appliance's
clock, so every call is stored with the simulator's start time. The agent measures its offset
to the landing host on every session (a probe file's modification time, set by the server's
clock) and reports it in its heartbeat; the data centre's polling health turns it into a
``clock_skew`` finding.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from datacenter.health.model import State
from tests.faults.site import Site, assert_exactly_once

pytestmark = [pytest.mark.faults, pytest.mark.sshd]

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")  # apt: faketime
SKEW_SECONDS = -3 * 3600
MEASUREMENT_ERROR_SECONDS = 5.0


def test_agent_clock_off_by_hours(make_site: Callable[..., Site]) -> None:
    if not LIBFAKETIME.exists():
        pytest.skip(f"{LIBFAKETIME} is missing: scripts/install.sh installs the faketime package")
    site = make_site(calls=300, rate_per_second=150.0)
    site.agent.env = {
        "LD_PRELOAD": str(LIBFAKETIME),
        "FAKETIME": f"{SKEW_SECONDS:+d}s",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",  # timeouts and back-off run on real time
    }
    site.start()
    delivered = site.wait_delivered(timeout=60)
    result = assert_exactly_once(site.engine, site.expected())  # start times from the PBX

    health = json.loads((site.state_dir / "health.json").read_text())
    measured = health["clock_offset_seconds"]  # landing host minus the agent: +3 h
    assert measured is not None and abs(measured + SKEW_SECONDS) < MEASUREMENT_ERROR_SECONDS, health
    skew = site.finding(State.CLOCK_SKEW)
    assert skew is not None, f"no clock_skew finding; findings: {site.findings()}"
    assert abs(skew.evidence["clock_offset_seconds"] + SKEW_SECONDS) < MEASUREMENT_ERROR_SECONDS
    print(
        f"\nagent clock {SKEW_SECONDS / 3600:+g} h: {result.calls} calls, 0 lost, 0 duplicated, "
        f"start times from the PBX; measured offset {measured:+.1f} s; health: {skew.state} "
        f"({skew.reason}); delivered in {delivered:.1f} s"
    )
