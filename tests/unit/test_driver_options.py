"""Typed option reading: values from TOML or from `--option KEY=VALUE` text."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import pytest

from edge_agent.sources.base import SourceContext
from edge_agent.sources.options import OptionReader, ReconnectOptions, read_reconnect_options
from shared.errors import ConfigError

CTX = SourceContext(agent_id="a", source_id="pbx", timezone=ZoneInfo("UTC"))


@pytest.mark.parametrize(
    ("getter", "value", "expected"),
    [
        (lambda r: r.integer("n", 5, minimum=0, maximum=10), 7, 7),
        (lambda r: r.integer("n", 5, minimum=0, maximum=10), "7", 7),
        (lambda r: r.integer("n", 5, minimum=-10, maximum=10), "-3", -3),
        (lambda r: r.number("n", 1.0, minimum=0, maximum=10), "2.5", 2.5),
        (lambda r: r.number("n", 1.0, minimum=0, maximum=10), 3, 3.0),
        (lambda r: r.boolean("n", False), "yes", True),
        (lambda r: r.boolean("n", True), "off", False),
        (lambda r: r.boolean("n", False), True, True),
        (lambda r: r.string("n", ""), "x", "x"),
        (lambda r: r.string_list("n", []), "a, b,,c", ["a", "b", "c"]),
        (lambda r: r.string_list("n", []), ["a", "b"], ["a", "b"]),
    ],
)
def test_getters_accept_values_and_their_text(getter: Any, value: object, expected: object) -> None:
    reader = OptionReader(CTX, {"n": value})
    assert getter(reader) == expected
    reader.finish()


@pytest.mark.parametrize(
    ("getter", "value", "message"),
    [
        (lambda r: r.integer("n", 5, minimum=0, maximum=10), 11, "between 0 and 10"),
        (lambda r: r.integer("n", 5, minimum=0, maximum=10), True, "whole number"),
        (lambda r: r.integer("n", 5, minimum=0, maximum=10), "1.5", "whole number"),
        (lambda r: r.number("n", 1.0, minimum=0, maximum=10), "fast", "not a number"),
        (lambda r: r.boolean("n", False), "maybe", "true or false"),
        (lambda r: r.string("n", ""), 5, "expected text"),
        (lambda r: r.string("n", "", max_length=3), "long", "longer than 3"),
        (lambda r: r.string_list("n", []), [1], "not a list"),
    ],
)
def test_bad_values_name_the_key(getter: Any, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        getter(OptionReader(CTX, {"n": value}))
    assert info.value.key == "sources.pbx.n"


def test_defaults_and_unknown_keys() -> None:
    reader = OptionReader(CTX, {"prot": 1})
    assert reader.integer("port", 4000, minimum=1, maximum=65535) == 4000
    with pytest.raises(ConfigError, match="not an option of this source kind") as info:
        reader.finish()
    assert info.value.key == "sources.pbx.prot"
    assert "port" in info.value.fix


@pytest.mark.parametrize(
    ("options", "idle_reconnect", "expected"),
    [
        ({}, 0.0, ReconnectOptions(10.0, 1.0, 60.0, 0.0)),
        ({}, 900.0, ReconnectOptions(10.0, 1.0, 60.0, 900.0)),
        ({}, None, ReconnectOptions(10.0, 1.0, 60.0, 0.0)),
        (
            {"connect_timeout_seconds": "2.5", "reconnect_min_seconds": 0.5},
            0.0,
            ReconnectOptions(2.5, 0.5, 60.0, 0.0),
        ),
        (
            {"reconnect_max_seconds": 5, "idle_reconnect_seconds": "30"},
            0.0,
            ReconnectOptions(10.0, 1.0, 5.0, 30.0),
        ),
    ],
)
def test_reconnect_options_defaults_and_values(
    options: dict[str, object], idle_reconnect: float | None, expected: ReconnectOptions
) -> None:
    reader = OptionReader(CTX, options)
    got = read_reconnect_options(reader, idle_reconnect=idle_reconnect)
    reader.finish()
    assert got == expected
    assert got.idle_timeout == (got.idle_reconnect_seconds or None)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("connect_timeout_seconds", 0, "between 0.1 and 300"),
        ("reconnect_min_seconds", 0.001, "between 0.01 and 3600"),
        ("reconnect_max_seconds", 3601, "between 0.01 and 3600"),
        ("idle_reconnect_seconds", -1, "between 0 and 86400"),
    ],
)
def test_reconnect_options_out_of_range(key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        read_reconnect_options(OptionReader(CTX, {key: value}))
    assert info.value.key == f"sources.pbx.{key}"


def test_idle_reconnect_none_means_the_kind_has_no_such_option() -> None:
    reader = OptionReader(CTX, {"idle_reconnect_seconds": 30})
    read_reconnect_options(reader, idle_reconnect=None)
    with pytest.raises(ConfigError, match="not an option") as info:
        reader.finish()
    assert info.value.key == "sources.pbx.idle_reconnect_seconds"


def test_reconnect_options_build_the_client_acquirer() -> None:
    options = ReconnectOptions(2.0, 0.5, 8.0, 0.0)
    backoff = options.backoff()
    client = options.client(host="127.0.0.1", port=1752, backoff=backoff)
    assert (backoff.min_seconds, backoff.max_seconds) == (0.5, 8.0)
    assert (client.address, client._connect_timeout, client._idle_timeout) == (
        "127.0.0.1:1752",
        2.0,
        None,
    )
    assert client._backoff is backoff


@pytest.mark.parametrize("kind", ["mivb-smdr", "mivo250-smdr", "mivo250-oai", "mcs-ipsmdr"])
def test_every_tcp_kind_refuses_a_reconnect_maximum_below_the_minimum(kind: str) -> None:
    from edge_agent.sources import registry

    ctx = SourceContext(agent_id="a", source_id="pbx", timezone=ZoneInfo("UTC"))
    options = {"host": "127.0.0.1", "reconnect_min_seconds": 30, "reconnect_max_seconds": 5}
    with pytest.raises(ConfigError, match=r"sources\.pbx\.reconnect_max_seconds"):
        registry.make_source(kind, ctx, options)
