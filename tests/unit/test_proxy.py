"""Proxy URLs: what uplink.proxy accepts, and that the password never shows."""

from __future__ import annotations

import pytest

from edge_agent.delivery.proxy import ProxySettings, parse_proxy_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://proxy.example.net:3128", ProxySettings("http", "proxy.example.net", 3128)),
        ("http://proxy.example.net", ProxySettings("http", "proxy.example.net", 3128)),
        ("socks5://198.18.0.1", ProxySettings("socks5", "198.18.0.1", 1080)),
        ("socks5h://u%40corp:p%3Ass@proxy:1081/",
         ProxySettings("socks5h", "proxy", 1081, "u@corp", "p:ss")),
        ("http://[2001:db8::1]:8080", ProxySettings("http", "2001:db8::1", 8080)),
    ],
)  # fmt: skip
def test_parse(url: str, expected: ProxySettings) -> None:
    assert parse_proxy_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://proxy:3128", "scheme 'https' is not one of"),
        ("proxy:3128", "is not one of"),
        ("http://proxy:99999", "port is not a number"),
        ("http://:3128", "host is missing"),
        ("http://proxy:3128/path", "no path, query or fragment"),
    ],
)
def test_parse_errors(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_proxy_url(url)


def test_the_password_is_never_displayed() -> None:
    proxy = parse_proxy_url("http://agent:s3cret@proxy:3128")
    assert proxy.display == "http://agent@proxy:3128"
    assert "s3cret" not in repr(proxy)
