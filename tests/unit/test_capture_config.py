"""The [capture] configuration block, its mapping to the capture process, and capture health."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from edge_agent.capture.health import capture_source_status
from edge_agent.capture.rules import Mode
from edge_agent.capture.setup import capture_settings
from edge_agent.config import from_mapping
from shared.errors import ConfigError
from tests.unit.test_config import BASE, minimal


def with_capture(**values: Any) -> dict[str, Any]:
    raw = minimal()
    raw["capture"] = values
    return raw


def test_capture_is_off_by_default_and_maps_to_process_settings(tmp_path: Path) -> None:
    assert not from_mapping(minimal(), base=BASE).capture.enabled
    raw = with_capture(
        enabled=True, interface="eth1", rtp_ports="10000-10999, 30000-30100", sip_ports="5060,5068",
        rules_mode="exclude", rule_extensions=["2001"], devices=["2002=192.0.2.7"],
        pause_api="127.0.0.1:9000", ring_mb=8,
    )  # fmt: skip
    raw["agent"]["state_dir"] = str(tmp_path)
    settings = from_mapping(raw, base=BASE)
    process = capture_settings(settings)
    assert process.rtp_ports == ((10000, 10999), (30000, 30100))
    assert process.sip_ports == (5060, 5068)
    assert process.directory == tmp_path / "capture"
    assert process.recorder is not None and process.recorder.devices == {"192.0.2.7": "2002"}
    assert process.recorder.rules.mode is Mode.EXCLUDE
    assert (process.api_host, process.api_port, process.geometry.block_count) == (
        "127.0.0.1",
        9000,
        8,
    )


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"enabled": True}, "capture.interface"),
        ({"rtp_ports": "20000-10000"}, "capture.rtp_ports"),
        ({"rtp_ports": "rtp"}, "capture.rtp_ports"),
        ({"enabled": "yes"}, "capture.enabled"),
        ({"rule_trunks": "T1"}, "capture.rule_trunks"),
        ({"devices": ["2001"]}, "capture.devices"),
        ({"pause_api": "0.0.0.0:8765"}, "capture.pause_api"),
        ({"rules_mode": "some"}, "capture.rules_mode"),
        ({"colour": 1}, "capture.colour"),
    ],
)
def test_errors_name_the_key(values: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        from_mapping(with_capture(**values), base=BASE)
    assert caught.value.key == key


NOW = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)


def write_status(state_dir: Path, **values: Any) -> None:
    (state_dir / "capture").mkdir(exist_ok=True)
    status = {"interface": "eth1", "link_up": True, "recent_drops": 0, "error": "",
              "updated_at": NOW.timestamp() - 1, "recordings": 3, "kernel_packets": 900}  # fmt: skip
    (state_dir / "capture" / "status.json").write_text(json.dumps(status | values))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, ""),
        ({"recent_drops": 12}, "mirror port dropping packets: 12 kernel drops"),
        ({"link_up": False}, "mirror interface eth1 is down"),
        ({"error": "boom"}, "capture failed: boom"),
        ({"write_errors": 2}, "2 recordings could not be written"),
        ({"updated_at": NOW.timestamp() - 300}, "capture process is not reporting"),
    ],
)
def test_health_line(tmp_path: Path, values: dict[str, Any], message: str) -> None:
    write_status(tmp_path, **values)
    status = capture_source_status(tmp_path, now=NOW)
    assert status.ok is (message == "")
    assert status.message.startswith(message)
    assert (status.kind, status.records, status.attempts) == ("capture", 3, 900)


def test_health_before_the_first_status(tmp_path: Path) -> None:
    status = capture_source_status(tmp_path, now=NOW)
    assert not status.ok and "not started" in status.message
