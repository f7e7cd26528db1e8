"""Carrier selection: which carrier (and so which tariff plan) carried a call.

A site's route map is an ordered list of rules matching the ICDR's source, trunk and route
(gateway / mediation server); the first rule that matches names the carrier, or marks the trunk
as on-net (tie lines, private network: not rated). A call no rule matches uses the site's
default carrier, flagged ``route_defaulted`` in the explanation, unless the site demands exact
mapping (``exact = true``), in which case it goes to the unrated queue as ``UNKNOWN_ROUTE``.

Guarantees: pure and deterministic (first match in file order); decisions are memoised per
(source, trunk, route); ``load_carrier_rules`` rejects a bad file with a ``ConfigError``
naming the rule and key.

Route map file (TOML)::

    default_carrier = "britline"
    exact = false
    [[route]]
    trunk = "T1??"          # glob on the ICDR's trunk (fnmatch: * ? [..])
    carrier = "britline"
    [[route]]
    trunk_range = [200, 299] # the trunk's number, inclusive (T200..T299, 200..299)
    carrier = "northtel"
    [[route]]
    trunk = "X*"
    on_net = true            # tie / IP network trunks: internal, not rated
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from datacenter.rating.toml_files import read_toml
from shared.errors import ConfigError

_TRUNK_NUMBER = re.compile(r"(\d+)$")
_RULE_KEYS = {"source", "trunk", "trunk_range", "route", "carrier", "on_net"}
_KEYS = {"default_carrier", "exact", "currency", "route"}


@dataclass(frozen=True, slots=True)
class RouteRule:
    """One line of the route map. Every given condition must match (an absent one matches all)."""

    index: int  # 1-based position in the file, for the explanation
    carrier: str  # "" for an on-net rule
    source: str = ""  # glob on source_id
    trunk: str = ""  # glob on trunk
    trunk_range: tuple[int, int] | None = None
    route: str = ""  # glob on route / gateway
    on_net: bool = False

    def matches(self, source_id: str, trunk: str, route: str) -> bool:
        if self.source and not fnmatchcase(source_id, self.source):
            return False
        if self.trunk and not fnmatchcase(trunk, self.trunk):
            return False
        if self.route and not fnmatchcase(route, self.route):
            return False
        if self.trunk_range is not None:
            number = _TRUNK_NUMBER.search(trunk)
            if (
                number is None
                or not self.trunk_range[0] <= int(number.group(1)) <= self.trunk_range[1]
            ):
                return False
        return True

    def describe(self) -> str:
        parts = [f"source {self.source}"] if self.source else []
        if self.trunk:
            parts.append(f"trunk {self.trunk}")
        if self.trunk_range is not None:
            parts.append(f"trunk {self.trunk_range[0]}-{self.trunk_range[1]}")
        if self.route:
            parts.append(f"route {self.route}")
        return f"route rule {self.index} ({', '.join(parts) or 'any call'})"


@dataclass(frozen=True, slots=True)
class CarrierChoice:
    """The outcome of carrier selection for one call."""

    carrier: str  # "" when on-net or unknown
    rule: str  # which rule decided, in words
    defaulted: bool = False  # no rule matched; the site default was used
    on_net: bool = False
    unknown: bool = False  # no rule matched and the site demands exact mapping


@dataclass(frozen=True, slots=True)
class CarrierRules:
    """A site's route map."""

    rules: tuple[RouteRule, ...] = ()
    default_carrier: str = ""
    exact: bool = False
    currency: str = ""  # the site's billing currency; a tariff in another one is refused
    _memo: dict[tuple[str, str, str], CarrierChoice] = field(
        init=False, default_factory=dict, compare=False, repr=False, hash=False
    )

    def choose(self, *, source_id: str, trunk: str, route: str) -> CarrierChoice:
        key = (source_id, trunk, route)
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = self._decide(source_id, trunk, route)
        return hit

    def _decide(self, source_id: str, trunk: str, route: str) -> CarrierChoice:
        for rule in self.rules:
            if rule.matches(source_id, trunk, route):
                return CarrierChoice(rule.carrier, rule.describe(), on_net=rule.on_net)
        what = f"trunk {trunk!r} route {route!r}"
        if self.exact or not self.default_carrier:
            return CarrierChoice("", f"no route rule matches {what}", unknown=True)
        return CarrierChoice(
            self.default_carrier, f"no route rule matches {what}: site default", defaulted=True
        )


def single_carrier(carrier: str) -> CarrierRules:
    """A route map that sends every call to one carrier (the default, flagged as such)."""
    return CarrierRules(default_carrier=carrier)


def load_carrier_rules(path: Path) -> CarrierRules:
    return carrier_rules_from_dict(read_toml(path))


def carrier_rules_from_dict(data: Mapping[str, Any]) -> CarrierRules:
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ConfigError(unknown[0], "is not a route map key", f"use {', '.join(sorted(_KEYS))}")
    default = data.get("default_carrier", "")
    exact = data.get("exact", False)
    currency = data.get("currency", "")
    if not isinstance(default, str):
        raise ConfigError("default_carrier", "must be a string", "quote the carrier name")
    if not isinstance(exact, bool):
        raise ConfigError("exact", "must be true or false", "write true or false")
    if not isinstance(currency, str) or (currency and len(currency) != 3):
        raise ConfigError("currency", "must be an ISO 4217 code", 'write e.g. "GBP"')
    raw_rules = data.get("route", [])
    if not isinstance(raw_rules, list):
        raise ConfigError("route", "must be an array of tables", "write [[route]] entries")
    rules = tuple(_rule(raw, index) for index, raw in enumerate(raw_rules, start=1))
    return CarrierRules(rules=rules, default_carrier=default, exact=exact, currency=currency)


def carrier_rules_to_dict(rules: CarrierRules) -> dict[str, Any]:
    out: dict[str, Any] = {"default_carrier": rules.default_carrier, "exact": rules.exact}
    if rules.currency:
        out["currency"] = rules.currency
    routes: list[dict[str, Any]] = []
    for rule in rules.rules:
        entry: dict[str, Any] = {"carrier": rule.carrier} if rule.carrier else {"on_net": True}
        for name in ("source", "trunk", "route"):
            if getattr(rule, name):
                entry[name] = getattr(rule, name)
        if rule.trunk_range is not None:
            entry["trunk_range"] = list(rule.trunk_range)
        routes.append(entry)
    out["route"] = routes
    return out


def _rule(raw: Any, index: int) -> RouteRule:
    key = f"route[{index}]"
    if not isinstance(raw, Mapping):
        raise ConfigError(key, "must be a table", "write [[route]] with trunk/route and carrier")
    extra = sorted(set(raw) - _RULE_KEYS)
    if extra:
        raise ConfigError(
            f"{key}.{extra[0]}", "is not a rule key", f"use {', '.join(sorted(_RULE_KEYS))}"
        )
    on_net = raw.get("on_net", False)
    carrier = raw.get("carrier", "")
    if not isinstance(on_net, bool):
        raise ConfigError(f"{key}.on_net", "must be true or false", "write true or false")
    if not isinstance(carrier, str) or bool(carrier) == on_net:
        raise ConfigError(key, "needs a carrier, or on_net = true (not both)", "set exactly one")
    strings: dict[str, str] = {}
    for name in ("source", "trunk", "route"):
        value = raw.get(name, "")
        if not isinstance(value, str):
            raise ConfigError(f"{key}.{name}", "must be a string", "quote the pattern")
        strings[name] = value
    trunk_range = raw.get("trunk_range")
    if trunk_range is not None:
        if (
            not isinstance(trunk_range, list)
            or len(trunk_range) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in trunk_range)
            or trunk_range[0] > trunk_range[1]
        ):
            raise ConfigError(
                f"{key}.trunk_range", "must be [low, high] numbers", "write [200, 299]"
            )
        trunk_range = (trunk_range[0], trunk_range[1])
    return RouteRule(
        index=index, carrier=carrier, on_net=on_net, trunk_range=trunk_range, **strings
    )
