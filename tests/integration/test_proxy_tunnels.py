"""The uplink through real proxies on loopback (HTTP CONNECT, SOCKS5) in front of the real sshd."""

from __future__ import annotations

import dataclasses
import os
import socket
from pathlib import Path

import pytest

from edge_agent.config import UplinkSettings
from edge_agent.delivery.proxy import parse_proxy_url
from edge_agent.delivery.uplink import UplinkSession, UploadStatus, connect
from shared.errors import TransportError
from tests.fixtures.ports import free_port
from tests.fixtures.proxies import HttpConnectProxy, ProxyServer, Socks5Proxy
from tests.fixtures.sshd import SshdServer

pytestmark = pytest.mark.sshd


def via(sshd: SshdServer, url: str, **changes: object) -> UplinkSettings:
    settings = UplinkSettings(
        host="127.0.0.1", port=sshd.port, username=sshd.username, private_key=sshd.client_key,
        known_hosts=sshd.known_hosts, connect_timeout_seconds=5, transfer_timeout_seconds=5,
        proxy=parse_proxy_url(url),
    )  # fmt: skip
    return dataclasses.replace(settings, **changes)  # type: ignore[arg-type]


def upload_through(settings: UplinkSettings, sshd: SshdServer, tmp_path: Path) -> bytes:
    local = tmp_path / "agent-1-0000000001.ccb"
    local.write_bytes(os.urandom(200_000))
    with connect(settings) as session:
        assert session.put_file(local, local.name).status is UploadStatus.UPLOADED
    assert (sshd.landing / "incoming" / local.name).read_bytes() == local.read_bytes()
    return local.read_bytes()


@pytest.mark.parametrize("kind", ["http", "socks5"])
def test_upload_through_a_proxy(
    kind: str, request: pytest.FixtureRequest, sshd: SshdServer, tmp_path: Path
) -> None:
    proxy: ProxyServer = request.getfixturevalue(f"{kind}_proxy")
    data = upload_through(via(sshd, proxy.url()), sshd, tmp_path)
    assert proxy.tunnels == [("127.0.0.1", sshd.port)]
    assert proxy.upstream_bytes > len(data)  # the upload really went through it


def test_socks5h_lets_the_proxy_resolve_the_name(
    socks5_proxy: Socks5Proxy, sshd: SshdServer, tmp_path: Path
) -> None:
    url = socks5_proxy.url().replace("socks5://", "socks5h://")
    settings = via(sshd, url, host="localhost",
                   known_hosts=_pin_as(sshd, "localhost", tmp_path))  # fmt: skip
    upload_through(settings, sshd, tmp_path)
    assert socks5_proxy.tunnels == [("localhost", sshd.port)]


def _pin_as(sshd: SshdServer, name: str, tmp_path: Path, port: int | None = None) -> Path:
    pub = sshd.host_key.with_suffix(".pub").read_text().split()
    path = tmp_path / "known_hosts_pinned"
    path.write_text(f"[{name}]:{port or sshd.port} {pub[0]} {pub[1]}\n")
    return path


@pytest.mark.parametrize("kind", ["http", "socks5"])
def test_proxy_credentials(kind: str, sshd: SshdServer, tmp_path: Path) -> None:
    proxy: ProxyServer = (HttpConnectProxy if kind == "http" else Socks5Proxy)(
        username="agent", password="s3cr:et"
    )
    proxy.start()
    try:
        upload_through(via(sshd, proxy.url(username="agent", password="s3cr%3Aet")), sshd,
                       tmp_path)  # fmt: skip
        with pytest.raises(TransportError) as caught:
            connect(via(sshd, proxy.url(username="agent", password="wrong")))
    finally:
        proxy.stop()
    message = str(caught.value)
    assert (
        "requires authentication (407" if kind == "http" else "refused the credentials"
    ) in message
    assert "wrong" not in message  # the password is never shown


@pytest.mark.parametrize("kind", ["http", "socks5"])
def test_a_target_the_proxy_cannot_reach_is_named(
    kind: str, request: pytest.FixtureRequest, sshd: SshdServer, tmp_path: Path
) -> None:
    proxy: ProxyServer = request.getfixturevalue(f"{kind}_proxy")
    closed = free_port()
    pinned = _pin_as(sshd, "127.0.0.1", tmp_path, closed)
    with pytest.raises(TransportError) as caught:
        connect(via(sshd, proxy.url(), port=closed, known_hosts=pinned))
    assert f"127.0.0.1:{closed}" in str(caught.value)
    assert "ask the customer's network team" in str(caught.value)


@pytest.mark.parametrize("scheme", ["http", "socks5"])
def test_a_proxy_that_is_down_is_named(scheme: str, sshd: SshdServer) -> None:
    port = free_port()
    with pytest.raises(
        TransportError, match=f"cannot connect to the proxy {scheme}://127.0.0.1:{port}"
    ):
        connect(via(sshd, f"{scheme}://127.0.0.1:{port}"))


def test_the_link_cut_mid_upload_leaves_a_part_the_next_attempt_overwrites(
    http_proxy: HttpConnectProxy, sshd: SshdServer, tmp_path: Path
) -> None:
    local = tmp_path / "agent-1-0000000001.ccb"
    local.write_bytes(os.urandom(400_000))
    http_proxy.cut_after_bytes = 150_000
    with pytest.raises(TransportError), connect(via(sshd, http_proxy.url())) as session:
        session.put_file(local, local.name)
    landed = sorted(p.name for p in (sshd.landing / "incoming").iterdir())
    assert landed in ([], [f"{local.name}.part"])  # never under the final name
    http_proxy.cut_after_bytes = None
    http_proxy.upstream_bytes = 0
    upload_through(via(sshd, http_proxy.url()), sshd, tmp_path)
    assert sorted(p.name for p in (sshd.landing / "incoming").iterdir()) == [local.name]


def test_a_silent_proxy_times_out(sshd: SshdServer) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        port = silent.getsockname()[1]
        with pytest.raises(TransportError, match="failed during CONNECT"):
            connect(via(sshd, f"http://127.0.0.1:{port}", connect_timeout_seconds=0.5))


class _DeadLinkSftp:
    def get_channel(self) -> None:
        return None

    def close(self) -> None:
        raise EOFError  # what paramiko raises closing SFTP on a link that already died


class _Client:
    closed = False

    def open_sftp(self) -> _DeadLinkSftp:
        return _DeadLinkSftp()

    def close(self) -> None:
        self.closed = True


def test_closing_a_session_whose_link_died_keeps_the_real_error(sshd: SshdServer) -> None:
    """Closing must not raise on a dead link: the EOFError would replace the TransportError that
    names the failed transfer (a flaky CI failure of the link-cut test before the fix)."""
    client = _Client()
    session = UplinkSession(via(sshd, "http://127.0.0.1:9"), client)  # type: ignore[arg-type]
    with pytest.raises(TransportError, match="cut"), session:
        raise TransportError("SFTP transfer of incoming/x.ccb failed: link cut")
    assert client.closed
