"""sd_notify for real: an AF_UNIX datagram socket as systemd's notify socket.

The agent process (``edge-agent run``) must send READY=1 once its sources run, WATCHDOG=1 from
every pass of its loop and STOPPING=1 at SIGTERM, and then leave a ``stopping`` heartbeat in the
landing area (the real sshd).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.systemd_service import Notifier
from shared.heartbeat import AgentState, parse_heartbeat
from tests.fixtures.sshd import SshdServer

pytestmark = pytest.mark.sshd
ROOT = Path(__file__).resolve().parents[2]
EDGE_AGENT = ROOT / ".venv" / "bin" / "edge-agent"
RECV_TIMEOUT = 10.0


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    folder = tempfile.mkdtemp(prefix="cc-notify-")  # short: AF_UNIX paths are at most 107 bytes
    path = os.path.join(folder, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(RECV_TIMEOUT)
    try:
        yield sock, path
    finally:
        sock.close()
        os.unlink(path)
        os.rmdir(folder)


def receive_until(sock: socket.socket, wanted: str, *, timeout: float = RECV_TIMEOUT) -> list[str]:
    """Messages received up to and including the first one holding line ``wanted``."""
    deadline = time.monotonic() + timeout
    messages: list[str] = []
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        message = sock.recv(4096).decode()
        messages.append(message)
        if wanted in message.splitlines():
            return messages


def test_notifier_reaches_the_socket(
    notify_socket: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, path = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    notifier = Notifier()
    assert notifier.enabled
    assert notifier.ready("2 sources") is True
    assert sock.recv(4096).decode() == "READY=1\nSTATUS=2 sources"
    assert notifier.watchdog() is True
    assert sock.recv(4096).decode() == "WATCHDOG=1"


def test_the_agent_process_is_ready_pets_the_watchdog_and_says_goodbye(
    notify_socket: tuple[socket.socket, str], sshd: SshdServer, tmp_path: Path
) -> None:
    sock, path = notify_socket
    config = tmp_path / "agent.toml"
    config.write_text(
        '[agent]\nid = "edge-1"\ntenant = "demo"\ntimezone = "Europe/London"\n'
        f'state_dir = "{tmp_path / "state"}"\n\n'
        f'[uplink]\nhost = "127.0.0.1"\nport = {sshd.port}\nusername = "{sshd.username}"\n'
        f'private_key = "{sshd.client_key}"\nknown_hosts = "{sshd.known_hosts}"\n'
        "interval_seconds = 1\nconnect_timeout_seconds = 5.0\n\n"
        '[delivery]\nprotection = "none"\n\n'  # no keys needed to test readiness
        # A PBX that is not there: the source fails, the agent runs on.
        '[[sources]]\nid = "pbx"\nkind = "mivb-smdr"\nhost = "127.0.0.1"\nport = 9\n'
        "reconnect_min_seconds = 0.2\nreconnect_max_seconds = 0.5\n"
    )
    env = {**os.environ, "NOTIFY_SOCKET": path}
    env.pop("INVOCATION_ID", None)
    env.pop("JOURNAL_STREAM", None)
    process = subprocess.Popen(
        [str(EDGE_AGENT), "run", "-c", str(config)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        ready = receive_until(sock, "READY=1")
        assert any(line.startswith("STATUS=1 source(s)") for line in ready[-1].splitlines())
        receive_until(sock, "WATCHDOG=1")
        receive_until(sock, "WATCHDOG=1")  # every pass of the loop, not once
        process.send_signal(signal.SIGTERM)
        receive_until(sock, "STOPPING=1")
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    heartbeats = sorted((sshd.landing / "heartbeats").glob("edge-1-*.json"))
    assert heartbeats, stderr
    last = parse_heartbeat(heartbeats[-1].read_bytes())
    assert last.state is AgentState.STOPPING
    assert [s.source_id for s in last.sources] == ["pbx"]
    assert last.clock_offset_seconds is not None and abs(last.clock_offset_seconds) < 2
