"""An acquirer that fails is restarted, even when its failure cannot be recorded.

On a full disk the acquirer fails (its journal append), and recording that failure for
``edge-agent status`` fails too (the spool cannot be written). The record used to raise out of
the source's thread and end it, so the source never read the PBX again once the disk had room:
the disk-full fault test saw the PBX stop at 1,991 of 3,000 lines.
"""

from __future__ import annotations

import errno
import logging
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from edge_agent import service as service_module
from edge_agent.config import from_mapping
from edge_agent.service import RunningSource, Service
from edge_agent.spool import SpoolError

CONFIG = {
    "agent": {"id": "agent-1", "tenant": "demo", "timezone": "Europe/London"},
    "uplink": {"host": "127.0.0.1", "port": 2222, "username": "agent-1",
               "private_key": "agent.key", "known_hosts": "known_hosts"},
    "sources": [{"id": "pbx-1", "kind": "fake"}],
    "delivery": {"protection": "none"},
}  # fmt: skip


class FailsOnce:
    """An acquirer whose first run fails as a journal append on a full disk does."""

    def __init__(self) -> None:
        self.runs = 0

    def run(self, pipeline: object, stop: threading.Event) -> None:
        self.runs += 1
        if self.runs == 1:
            raise OSError(errno.ENOSPC, "No space left on device")


class SpoolFull:
    """A pipeline whose status record cannot be written."""

    def __init__(self) -> None:
        self.reports: list[str] = []

    def report(self, *, ok: bool, message: str) -> None:
        self.reports.append(message)
        raise SpoolError("spool spool.db: write failed: database or disk is full")


def test_the_acquirer_restarts_when_its_failure_cannot_be_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(service_module, "ACQUIRER_RESTART_MIN_SECONDS", 0.01)
    service = Service(from_mapping(CONFIG, base=tmp_path))
    acquirer, pipeline = FailsOnce(), SpoolFull()
    running: Any = SimpleNamespace(
        settings=SimpleNamespace(id="pbx-1"), source=SimpleNamespace(acquirer=acquirer),
        pipeline=pipeline,
    )  # fmt: skip
    with caplog.at_level(logging.ERROR, logger="edge_agent.service"):
        service._acquire(cast(RunningSource, running))  # returns once the second run ends
    assert acquirer.runs == 2
    assert pipeline.reports == ["acquirer failed: [Errno 28] No space left on device"]
    assert "pbx-1: cannot record its failure for status: spool spool.db" in caplog.text
