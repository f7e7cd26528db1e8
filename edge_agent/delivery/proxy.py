"""Tunnels through the customer's proxy: the socket the SSH session runs over.

``uplink.proxy`` names the proxy as a URL; empty means a direct connection::

    http://proxy.example.net:3128            HTTP CONNECT
    http://user:secret@proxy.example.net:3128   with Basic proxy authentication
    socks5://proxy.example.net:1080          SOCKS5; the agent resolves the landing host name
    socks5h://user:secret@proxy:1080         SOCKS5; the proxy resolves it (no DNS on site)

``open_tunnel(proxy, host, port, timeout=...)`` returns a connected socket whose bytes reach
``host:port``; paramiko runs SSH over it unchanged, so the proxy sees only encrypted SSH (and,
for HTTP, the CONNECT line naming the landing host). Every step is bounded by ``timeout``.
Failures are ``TransportError`` saying whether the proxy itself or the hop behind it failed.

HTTP CONNECT is our own small client rather than PySocks's HTTP mode because the response must
be read **byte by byte** up to its blank line: the SSH server speaks first, its banner can
arrive in the same TCP segment as the proxy's ``200``, and a buffered reader would swallow it.
SOCKS5 uses PySocks, which reads exact lengths.

The password is percent-decoded from the URL; it is never logged (``ProxySettings.display``).
"""

from __future__ import annotations

import base64
import socket
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import socks

from shared.errors import TransportError

SCHEMES = ("http", "socks5", "socks5h")
DEFAULT_PORTS = {"http": 3128, "socks5": 1080, "socks5h": 1080}
MAX_RESPONSE_HEADER_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True)
class ProxySettings:
    scheme: str  # one of SCHEMES
    host: str
    port: int
    username: str = ""
    password: str = field(default="", repr=False)

    @property
    def display(self) -> str:
        """The URL without the password, for logs and messages."""
        user = f"{self.username}@" if self.username else ""
        return f"{self.scheme}://{user}{self.host}:{self.port}"


def parse_proxy_url(text: str) -> ProxySettings:
    """Parse ``uplink.proxy``; raises ``ValueError`` saying what a valid one looks like."""
    parts = urlsplit(text)
    if parts.scheme not in SCHEMES:
        raise ValueError(f"scheme {parts.scheme!r} is not one of {', '.join(SCHEMES)}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("a proxy URL has no path, query or fragment")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError as exc:  # urlsplit checks the port lazily
        raise ValueError(f"the port is not a number from 1 to 65535: {exc}") from exc
    if not parts.hostname:
        raise ValueError("the proxy host is missing")
    return ProxySettings(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
    )


def open_tunnel(proxy: ProxySettings, host: str, port: int, *, timeout: float) -> socket.socket:
    """A socket connected through ``proxy`` to ``host:port``."""
    if proxy.scheme == "http":
        return _http_connect(proxy, host, port, timeout=timeout)
    return _socks5(proxy, host, port, timeout=timeout)


# --- HTTP CONNECT (RFC 9110 §9.3.6) --------------------------------------------------------


def _http_connect(proxy: ProxySettings, host: str, port: int, *, timeout: float) -> socket.socket:
    sock = _connect_proxy(proxy, timeout=timeout)
    try:
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        request = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
        if proxy.username:
            token = base64.b64encode(f"{proxy.username}:{proxy.password}".encode()).decode()
            request += f"Proxy-Authorization: Basic {token}\r\n"
        sock.sendall((request + "\r\n").encode("latin-1"))
        status_line = _read_response_head(sock, proxy).split(b"\r\n", 1)[0]
        _check_status(status_line, proxy, target)
        return sock
    except BaseException as exc:
        sock.close()
        if isinstance(exc, TransportError):
            raise
        if isinstance(exc, OSError):  # includes timeouts
            raise TransportError(
                f"proxy {proxy.display} failed during CONNECT: {exc}; check uplink.proxy"
            ) from exc
        raise


def _read_response_head(sock: socket.socket, proxy: ProxySettings) -> bytes:
    """Up to and including the blank line, one byte at a time (see the module docstring)."""
    head = bytearray()
    while not head.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        if not byte:
            raise TransportError(
                f"proxy {proxy.display} closed the connection before answering CONNECT"
            )
        head += byte
        if len(head) > MAX_RESPONSE_HEADER_BYTES:
            raise TransportError(f"proxy {proxy.display} sent an over-long CONNECT response")
    return bytes(head)


def _check_status(line: bytes, proxy: ProxySettings, target: str) -> None:
    parts = line.decode("latin-1").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise TransportError(
            f"{proxy.display} did not answer like an HTTP proxy ({line[:80]!r}); check the "
            "scheme and port in uplink.proxy"
        )
    code, reason = int(parts[1]), (parts[2] if len(parts) > 2 else "")
    if 200 <= code < 300:
        return
    if code == 407:
        raise TransportError(
            f"proxy {proxy.display} requires authentication (407 {reason}): put the user and "
            "password in uplink.proxy (http://user:password@host:port) or ask the customer's "
            "network team for the right ones"
        )
    raise TransportError(
        f"proxy {proxy.display} refused CONNECT to {target}: {code} {reason}; ask the "
        f"customer's network team to allow outbound connections to {target} (SSH)"
    )


# --- SOCKS5 (RFC 1928) through PySocks -------------------------------------------------------


def _socks5(proxy: ProxySettings, host: str, port: int, *, timeout: float) -> socket.socket:
    sock = socks.socksocket(socket.AF_INET6 if ":" in proxy.host else socket.AF_INET)
    sock.settimeout(timeout)
    sock.set_proxy(
        socks.SOCKS5,
        proxy.host,
        proxy.port,
        rdns=proxy.scheme == "socks5h",
        username=proxy.username or None,
        password=proxy.password or None,
    )
    try:
        sock.connect((host, port))
    except BaseException as exc:
        sock.close()
        raise _socks_error(exc, proxy, f"{host}:{port}") from exc
    tunnel: socket.socket = sock  # a socket.socket subclass; PySocks ships no type hints
    return tunnel


def _socks_error(exc: BaseException, proxy: ProxySettings, target: str) -> BaseException:
    # PySocks wraps a negotiation failure in GeneralProxyError("Socket error", cause)
    inner = getattr(exc, "socket_err", None)
    if isinstance(exc, socks.GeneralProxyError) and isinstance(inner, socks.ProxyError):
        exc = inner
    if isinstance(exc, socks.SOCKS5AuthError):
        return TransportError(
            f"SOCKS5 proxy {proxy.display} refused the credentials ({exc.msg}): fix the user "
            "and password in uplink.proxy"
        )
    if isinstance(exc, socks.SOCKS5Error):
        return TransportError(
            f"SOCKS5 proxy {proxy.display} could not reach {target} ({exc.msg}); ask the "
            f"customer's network team to allow outbound connections to {target}"
        )
    if isinstance(exc, socks.ProxyConnectionError):
        return TransportError(
            f"cannot connect to the proxy {proxy.display}: {exc.socket_err or exc.msg}; "
            "check uplink.proxy"
        )
    if isinstance(exc, socks.GeneralProxyError | OSError):
        return TransportError(f"SOCKS5 proxy {proxy.display} failed: {exc}; check uplink.proxy")
    return exc


def _connect_proxy(proxy: ProxySettings, *, timeout: float) -> socket.socket:
    try:
        return socket.create_connection((proxy.host, proxy.port), timeout=timeout)
    except OSError as exc:
        raise TransportError(
            f"cannot connect to the proxy {proxy.display}: {exc.strerror or exc}; check "
            "uplink.proxy and that the proxy is up"
        ) from exc
