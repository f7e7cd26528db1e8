"""End to end in network namespaces: a phone calls a gateway, the SPAN copy is recorded.

The phone sends a 440 Hz tone, the gateway a 1000 Hz tone; both directions of the gateway's
interface are mirrored (tc mirred) to the agent's namespace, where the capture loop runs on the
mirror interface. The WAV must hold the caller's tone on the left and the called party's on the
right, last as long as the RTP that was sent, and its metadata must name the SIP call.
Everything is judged from what the senders report they sent, not from wall-clock timing.
"""

from __future__ import annotations

import json
import os
import time
import wave
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from tests.capture_factories import dominant_frequency
from tests.netns_lab import GATEWAY_IP, PHONE_IP, SPAN_IF, ip, lab, python
from tests.netns_voip import CALL_ID, CALLED, CALLER

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]

ROOT = str(Path(__file__).resolve().parents[2])
SECONDS = 3.0
PACKET = 0.02


def wait_for(path: Path, pattern: str, budget: float) -> list[Path]:
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        found = sorted(path.glob(pattern))
        if found:
            return found
        time.sleep(0.2)
    return []


def wait_ready(status: Path, budget: float = 30.0) -> None:
    """The capture loop writes status.json once the ring is open."""
    if not wait_for(status.parent, status.name, budget):
        raise AssertionError("the capture process did not start (no status.json)")


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_mirrored_call_is_recorded_in_stereo(tmp_path: Path, transport: str) -> None:
    capture_dir = tmp_path / "capture"
    with lab() as net:
        capture = net.spawn(
            net.agent, python(), "-m", "edge_agent.capture", SPAN_IF, str(capture_dir),
            "40000-40010", "--idle-timeout", "5", cwd=ROOT,
        )  # fmt: skip
        wait_ready(capture_dir / "status.json")
        status = json.loads((capture_dir / "status.json").read_text())
        assert status["error"] == "" and status["link_up"], status
        assert "PROMISC" in ip("-n", net.agent, "link", "show", SPAN_IF)  # set through pyroute2
        gateway = net.spawn(
            net.gateway, python(), "-m", "tests.netns_voip", "gateway", GATEWAY_IP, transport,
            cwd=ROOT,
        )  # fmt: skip
        time.sleep(0.5)  # the gateway binds before the phone calls; a miss fails loudly below
        phone = net.spawn(
            net.phone, python(), "-m", "tests.netns_voip", "phone", PHONE_IP, GATEWAY_IP,
            str(SECONDS), transport, cwd=ROOT,
        )  # fmt: skip
        phone_out, phone_err = phone.communicate(timeout=120)
        gateway_out, gateway_err = gateway.communicate(timeout=60)
        assert phone.returncode == 0, phone_err
        assert gateway.returncode == 0, gateway_err
        sent_phone, sent_gateway = json.loads(phone_out), json.loads(gateway_out)
        found = wait_for(capture_dir / "recordings", "*.json", budget=60)
        capture.terminate()
        capture.wait(timeout=30)
        status = json.loads((capture_dir / "status.json").read_text())

    assert len(found) == 1, f"expected one recording, capture said {status}"
    # over UDP it crossed the mirror as IPv4 fragments, over TCP as several segments...
    assert sent_gateway["invite_bytes"] > 1500
    meta = json.loads(found[0].read_text())
    # ...and was put back together: the call is known from its INVITE
    assert (meta["sip_call_id"], meta["caller"], meta["called"]) == (CALL_ID, CALLER, CALLED)
    invite = datetime.fromisoformat(meta["invite_time"]).timestamp()
    assert abs(invite - sent_phone["invite_at"]) < 2.0
    assert datetime.fromisoformat(meta["end_time"]).timestamp() >= invite
    caller, called = meta["sides"]["caller"], meta["sides"]["called"]
    assert caller["packets"] == sent_phone["packets"] and caller["lost"] == 0
    assert called["packets"] == sent_gateway["packets"] and called["lost"] == 0
    assert status["kernel_drops"] == 0

    with wave.open(str(found[0].with_suffix(".wav"))) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (2, 8000, 2)
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        duration = wav.getnframes() / 8000
    left, right = frames[0::2], frames[1::2]
    # each side's audio spans exactly its packets; the two start at their first capture times
    longest = max(sent_phone["packets"], sent_gateway["packets"]) * PACKET
    assert longest - 0.001 <= duration <= longest + 1.0
    assert abs(meta["duration_seconds"] - duration) < 0.001
    assert np.count_nonzero(left) >= 0.95 * sent_phone["packets"] * 160
    assert abs(dominant_frequency(left.tobytes()) - 440) < 5
    assert abs(dominant_frequency(right.tobytes()) - 1000) < 5


PAUSE_PORT = 8765
PAUSE_SCRIPT = f"""
import time, urllib.request
def post(path):
    url = "http://127.0.0.1:{PAUSE_PORT}" + path
    urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=5).read()
post("/pause?extension=2001")
time.sleep(1.5)
post("/resume?extension=2001")
"""


def test_compliance_pause_leaves_silence_not_audio(tmp_path: Path) -> None:
    """Paused through the local API in the middle of a call: the paused packets are never
    written (silence of their length in both channels) and the rest of the call is."""
    capture_dir = tmp_path / "capture"
    with lab() as net:
        net.spawn(
            net.agent, python(), "-m", "edge_agent.capture", SPAN_IF, str(capture_dir),
            "40000-40010", "--idle-timeout", "5", "--pause-api", f"127.0.0.1:{PAUSE_PORT}", cwd=ROOT,
        )  # fmt: skip
        wait_ready(capture_dir / "status.json")
        gateway = net.spawn(
            net.gateway, python(), "-m", "tests.netns_voip", "gateway", GATEWAY_IP, cwd=ROOT
        )
        time.sleep(0.5)
        phone = net.spawn(net.phone, python(), "-m", "tests.netns_voip", "phone", PHONE_IP,
                          GATEWAY_IP, "6", cwd=ROOT)  # fmt: skip
        status = capture_dir / "status.json"
        assert wait_for_condition(lambda: json.loads(status.read_text())["open_calls"] >= 1, 30)
        pauser = net.spawn(net.agent, python(), "-c", PAUSE_SCRIPT)
        _out, pause_err = pauser.communicate(timeout=60)
        assert pauser.returncode == 0, pause_err
        phone_out, _ = phone.communicate(timeout=120)
        gateway.communicate(timeout=60)
        found = wait_for(capture_dir / "recordings", "*.json", budget=60)
    (meta_path,) = found
    meta = json.loads(meta_path.read_text())
    caller, called = meta["sides"]["caller"], meta["sides"]["called"]
    assert caller["paused_packets"] > 0 and called["paused_packets"] > 0
    assert caller["packets"] + caller["paused_packets"] == json.loads(phone_out)["packets"]
    with wave.open(str(meta_path.with_suffix(".wav"))) as wav:
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    for channel, side in ((frames[0::2], caller), (frames[1::2], called)):
        blocks = channel[: len(channel) // 160 * 160].reshape(-1, 160)
        silent = int(np.count_nonzero(~blocks.any(axis=1)))
        assert silent >= side["paused_packets"] - 2  # the paused span is silence...
        assert len(blocks) - silent >= side["packets"] - 2  # ...and every recorded packet is audio


def wait_for_condition(check: object, budget: float) -> bool:
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return True
        except (OSError, ValueError, KeyError):
            pass  # status.json is replaced while we read it
        time.sleep(0.05)
    return False
