"""The compliance pause API over real loopback HTTP."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest

from edge_agent.capture.api import serve_pause_api
from edge_agent.capture.rules import ALL, PauseBoard
from shared.errors import ConfigError


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def call(port: int, method: str, path: str) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_pause_and_resume_by_extension_and_for_all() -> None:
    board = PauseBoard()
    port = free_port()
    server = serve_pause_api(board, host="127.0.0.1", port=port)
    try:
        assert call(port, "POST", "/pause?extension=2001") == (200, {"paused": ["2001"]})
        assert board.is_paused(frozenset({"2001"})) and not board.is_paused(frozenset({"2002"}))
        assert call(port, "POST", "/pause")[1] == {"paused": ["2001", ALL]}
        assert board.is_paused(frozenset({"2002"}))
        call(port, "POST", "/resume")
        assert call(port, "POST", "/resume?extension=2001") == (200, {"paused": []})
        assert call(port, "GET", "/status") == (200, {"paused": []})
        assert call(port, "POST", "/elsewhere")[0] == 404
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("host", ["0.0.0.0", "198.18.0.1", "localhost.example"])
def test_only_loopback_addresses(host: str) -> None:
    with pytest.raises(ConfigError, match=r"capture\.api_host"):
        serve_pause_api(PauseBoard(), host=host, port=1)
