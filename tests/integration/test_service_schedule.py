"""The supervisor follows uplink.schedule for good sessions and the back-off for failed ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge_agent.config import from_mapping
from edge_agent.service import Service
from tests.fixtures.sshd import SshdServer

pytestmark = pytest.mark.sshd

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # winter: London is UTC


def make_service(tmp_path: Path, sshd: SshdServer, schedule: Any, clock: list[float]) -> Service:
    raw = {
        "agent": {"id": "agent-1", "tenant": "demo", "timezone": "Europe/London",
                  "state_dir": str(tmp_path / "state")},
        "uplink": {"host": "127.0.0.1", "port": sshd.port, "username": sshd.username,
                   "private_key": str(sshd.client_key), "known_hosts": str(sshd.known_hosts),
                   "connect_timeout_seconds": 5.0, "schedule": schedule,
                   "interval_seconds": 60, "backoff_min_seconds": 5.0,
                   "backoff_max_seconds": 10.0},
        "delivery": {"protection": "none"},  # the schedule, not the envelope, is under test
    }  # fmt: skip
    # the wall clock moves with the monotonic one: NOW at monotonic 1000
    return Service(from_mapping(raw, base=tmp_path),
                   clock=lambda: NOW + timedelta(seconds=clock[0] - 1000),
                   monotonic=lambda: clock[0])  # fmt: skip


@pytest.mark.parametrize(
    ("schedule", "first_due", "next_due"),
    [("continuous", 0, 60), ("every 15 minutes", 0, 900), (["13:30"], 4.5 * 3600, 24 * 3600)],
)
def test_sessions_follow_the_schedule(
    tmp_path: Path, sshd: SshdServer, schedule: Any, first_due: float, next_due: float
) -> None:
    clock = [1000.0]
    service = make_service(tmp_path, sshd, schedule, clock)
    service.open()
    try:
        if first_due:
            clock[0] += first_due - 1
            assert not service.cycle().upload_attempted  # fixed times wait for their slot
            clock[0] += 1
        good = service.cycle()
        assert good.upload_attempted and good.error is None
        clock[0] += next_due - 1
        assert not service.cycle().upload_attempted
        clock[0] += 1
        assert service.cycle().upload_attempted
    finally:
        service.close()


def test_a_failed_session_is_retried_after_the_backoff_not_the_slot(
    tmp_path: Path, sshd: SshdServer
) -> None:
    clock = [1000.0]
    service = make_service(tmp_path, sshd, "every 15 minutes", clock)
    service.open()
    try:
        sshd.stop()
        assert service.cycle().error is not None
        clock[0] += 10.0  # past the longest back-off (backoff_max_seconds), far from the slot
        sshd.start()
        result = service.cycle()
        assert result.upload_attempted and result.error is None
    finally:
        service.close()


def test_a_forced_cycle_delivers_whatever_the_schedule(tmp_path: Path, sshd: SshdServer) -> None:
    clock = [1000.0]
    service = make_service(tmp_path, sshd, ["13:30"], clock)
    service.open()
    try:
        assert service.cycle(force=True).upload_attempted
    finally:
        service.close()
