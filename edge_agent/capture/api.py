"""The compliance pause/resume API: HTTP on a loopback address only.

A payment application (or the agent's console) calls it while a card number is read out::

    POST /pause?extension=2001     pause recording of calls with extension 2001
    POST /resume?extension=2001    resume it
    POST /pause                    pause every call (no extension)
    GET  /status                   {"paused": [...]}

Paused media is dropped at intake (calls.py), so it never reaches memory or disk; the gap is
silence of the right length in the WAV and ``paused_packets`` in the metadata. The server binds
only loopback addresses: anything else is a configuration error.
"""

from __future__ import annotations

import ipaddress
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from edge_agent.capture.rules import ALL, PauseBoard
from shared.errors import ConfigError

DEFAULT_PORT = 8765


def check_loopback(host: str) -> None:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(
            "capture.api_host", f"'{host}' is not a loopback address", "use 127.0.0.1 or ::1"
        )


class _Handler(BaseHTTPRequestHandler):
    board: PauseBoard

    def log_message(self, format: str, *args: object) -> None:
        return  # the agent logs pauses itself; no per-request stderr noise

    def _reply(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _state(self) -> dict[str, object]:
        return {"paused": sorted(self.board.snapshot())}

    def do_GET(self) -> None:
        if urlsplit(self.path).path == "/status":
            self._reply(200, self._state())
        else:
            self._reply(404, {"error": "unknown path: use /status, /pause or /resume"})

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        extension = parse_qs(url.query).get("extension", [ALL])[0].strip() or ALL
        if url.path == "/pause":
            self.board.pause(extension)
        elif url.path == "/resume":
            self.board.resume(extension)
        else:
            self._reply(404, {"error": "unknown path: use /pause or /resume"})
            return
        self._reply(200, self._state())


def serve_pause_api(board: PauseBoard, *, host: str, port: int) -> ThreadingHTTPServer:
    """Start the API on a daemon thread; returns the server (``shutdown()`` stops it)."""
    check_loopback(host)
    handler = type("PauseHandler", (_Handler,), {"board": board})
    server = ThreadingHTTPServer((host, port), handler)
    threading.Thread(target=server.serve_forever, name="capture-pause-api", daemon=True).start()
    return server
