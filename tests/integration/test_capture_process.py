"""The capture process (multiprocessing, spawn) on loopback: starts, reports, records, drains."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest

from edge_agent.capture.process import CaptureProcess, CaptureSettings
from edge_agent.capture.ring import RingGeometry
from tests.capture_factories import FRAME, rtp, tone

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="AF_PACKET needs root")

PORTS = (47300, 47301)


def wait_for(predicate: object, budget: float = 30.0) -> bool:
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_records_loopback_media_and_drains_on_stop(tmp_path: Path) -> None:
    settings = CaptureSettings(
        interface="lo", directory=tmp_path / "capture", rtp_ports=(PORTS,), sip_ports=(),
        promiscuous=False, geometry=RingGeometry(1 << 20, 4), idle_timeout=60,
    )  # fmt: skip
    process = CaptureProcess(settings)
    process.start()
    status_path = tmp_path / "capture" / "status.json"
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        assert wait_for(status_path.exists), "the capture process did not report"
        audio = tone(1000, 0.5)
        for i in range(25):
            payload = audio[i * FRAME : (i + 1) * FRAME]
            sender.sendto(
                rtp(seq=i, ts=i * FRAME, ssrc=0x77, payload=payload), ("127.0.0.1", PORTS[0])
            )
            time.sleep(0.02)
        assert wait_for(lambda: json.loads(status_path.read_text())["open_calls"] == 1)
    finally:
        sender.close()
        process.stop()  # the call is still open (idle timeout 60 s): stop must write it
    assert not process.process.is_alive()
    (meta_path,) = (tmp_path / "capture" / "recordings").glob("*.json")
    meta = json.loads(meta_path.read_text())
    caller = meta["sides"]["caller"]
    # loopback shows every packet twice (outgoing and incoming): the copies are duplicates
    assert (caller["packets"], caller["duplicates"], caller["lost"]) == (50, 25, 0)
    assert meta["duration_seconds"] == 0.5
    status = json.loads(status_path.read_text())
    assert (status["recordings"], status["kernel_drops"], status["error"]) == (1, 0, "")
