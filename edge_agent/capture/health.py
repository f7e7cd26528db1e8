"""Capture in the agent's health: status.json (written by the capture process) as a source line.

The capture process rewrites ``<state_dir>/capture/status.json`` every second. Health turns it
into a ``SourceStatus`` of kind ``capture`` so the heartbeat, ``edge-agent status`` and the data
centre's alarms show it beside the PBX sources. Not ok when: the process has not started or has
stopped reporting, it failed (the error is the message), the mirror link is down, or the kernel
dropped packets in the last minute (a dropping mirror port is a problem to fix, not bad audio),
or recordings could not be written.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from shared.heartbeat import SourceStatus

CAPTURE_SOURCE_ID = "capture"
CAPTURE_DIR = "capture"
STALE_AFTER = 30.0


def _message(status: dict[str, object], now: float) -> str:
    if status.get("error"):
        return f"capture failed: {status['error']}"
    if now - float(status.get("updated_at", 0.0) or 0.0) > STALE_AFTER:  # type: ignore[arg-type]
        return "capture process is not reporting (stopped or stalled)"
    if not status.get("link_up"):
        return f"mirror interface {status.get('interface')} is down: check the cable and the switch"
    drops = int(status.get("recent_drops", 0) or 0)  # type: ignore[call-overload]
    if drops:
        return (
            f"mirror port dropping packets: {drops} kernel drops in the last minute; raise "
            "capture.ring_mb, narrow capture.rtp_ports, or check the appliance's CPU"
        )
    errors = int(status.get("write_errors", 0) or 0)  # type: ignore[call-overload]
    if errors:
        return f"{errors} recordings could not be written: see the agent log (disk full?)"
    return ""


def capture_source_status(state_dir: Path, *, now: datetime) -> SourceStatus:
    """The capture line of the heartbeat, from status.json."""
    path = state_dir / CAPTURE_DIR / "status.json"
    try:
        status = json.loads(path.read_text())
    except (OSError, ValueError):
        return SourceStatus(CAPTURE_SOURCE_ID, CAPTURE_SOURCE_ID, ok=False,
                            message="capture has not started (no status.json yet)")  # fmt: skip
    message = _message(status, now.timestamp())
    updated = float(status.get("updated_at") or 0.0)
    return SourceStatus(
        source_id=CAPTURE_SOURCE_ID,
        kind=CAPTURE_SOURCE_ID,
        ok=not message,
        message=message,
        at=datetime.fromtimestamp(updated, UTC) if updated else None,
        records=int(status.get("recordings", 0)),
        attempts=int(status.get("kernel_packets", 0)),
    )
