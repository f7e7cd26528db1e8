"""Route maps: trunk / route / gateway rules choose the carrier, first match wins."""

from __future__ import annotations

from typing import Any

import pytest

from datacenter.rating.carriers import (
    carrier_rules_from_dict,
    carrier_rules_to_dict,
    load_carrier_rules,
)
from shared.errors import ConfigError
from tests.unit.rating_factories import DEMO

MAP = carrier_rules_from_dict({
    "default_carrier": "fallback",
    "route": [
        {"source": "mivb-*", "trunk": "X*", "on_net": True},
        {"trunk": "T1??", "carrier": "alpha"},
        {"trunk_range": [200, 299], "carrier": "beta"},
        {"route": "gw-lon-*", "carrier": "gamma"},
        {"source": "lcs-1", "route": "gw-*", "carrier": "delta"},
    ],
})  # fmt: skip

CHOICES = [
    # source, trunk, route -> carrier, on_net, defaulted
    ("mivb-1", "X12", "", ("", True, False)),
    ("lcs-1", "X12", "", ("fallback", False, True)),  # X rule is for MiVB sources only
    ("mivb-1", "T123", "", ("alpha", False, False)),
    ("mivb-1", "T1234", "", ("fallback", False, True)),  # ?? is exactly two characters
    ("mivb-1", "T250", "", ("beta", False, False)),
    ("mivb-1", "250", "", ("beta", False, False)),
    ("lcs-1", "", "gw-lon-2", ("gamma", False, False)),  # rule order: gamma before delta
    ("lcs-1", "", "gw-par-1", ("delta", False, False)),
    ("lcs-2", "", "gw-par-1", ("fallback", False, True)),
]


@pytest.mark.parametrize(("source", "trunk", "route", "expected"), CHOICES)
def test_first_matching_rule_wins(
    source: str, trunk: str, route: str, expected: tuple[str, bool, bool]
) -> None:
    choice = MAP.choose(source_id=source, trunk=trunk, route=route)
    assert (choice.carrier, choice.on_net, choice.defaulted) == expected


def test_exact_maps_refuse_unknown_trunks() -> None:
    rules = carrier_rules_from_dict(
        {"default_carrier": "x", "exact": True, "route": [{"trunk": "T1", "carrier": "a"}]}
    )
    assert rules.choose(source_id="s", trunk="T2", route="").unknown


BAD: list[tuple[dict[str, Any], str]] = [
    ({"route": [{"trunk": "T1"}]}, "route[1]"),
    ({"route": [{"trunk": "T1", "carrier": "a", "on_net": True}]}, "route[1]"),
    ({"route": [{"trunk_range": [300, 200], "carrier": "a"}]}, "route[1].trunk_range"),
    ({"route": [{"gateway": "x", "carrier": "a"}]}, "route[1].gateway"),
    ({"exact": "yes"}, "exact"),
    ({"currency": "pounds"}, "currency"),
    ({"routes": []}, "routes"),
]


@pytest.mark.parametrize(("data", "key"), BAD)
def test_bad_route_maps_name_the_key(data: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        carrier_rules_from_dict(data)
    assert caught.value.key == key


@pytest.mark.parametrize("name", ["london-routes", "toronto-routes"])
def test_demo_route_maps_round_trip(name: str) -> None:
    rules = load_carrier_rules(DEMO / f"{name}.toml")
    assert carrier_rules_from_dict(carrier_rules_to_dict(rules)) == rules
