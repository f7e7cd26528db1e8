"""Typed option reading: values from TOML or from `--option KEY=VALUE` text."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import pytest

from edge_agent.sources.base import SourceContext
from edge_agent.sources.driver_options import OptionReader
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
