"""Typed reading of a source's ``options`` table, with errors that name the key and the fix.

Contract: every getter returns a value of the asked type or raises ``ConfigError`` whose key is
``sources.<id>.<key>``; ``finish()`` raises for any key no getter asked for, so a misspelt
option is reported instead of silently ignored. Options come from the agent's TOML file or from
`edge-agent parse --option key=value` (strings), so numbers and booleans also accept their text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edge_agent.sources.base import SourceContext
from shared.errors import ConfigError

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


class OptionReader:
    """Reads options one key at a time and remembers which keys were read."""

    def __init__(self, ctx: SourceContext, options: Mapping[str, Any]) -> None:
        self._ctx = ctx
        self._options = dict(options)
        self._seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"sources.{self._ctx.source_id}.{name}"

    def string(self, name: str, default: str, *, max_length: int = 256) -> str:
        value = self._take(name, default)
        if not isinstance(value, str):
            raise ConfigError(self.key(name), f"expected text, got {value!r}", "quote the value")
        if len(value) > max_length:
            raise ConfigError(
                self.key(name),
                f"longer than {max_length} characters",
                f"shorten it to {max_length} characters or fewer",
            )
        return value

    def integer(self, name: str, default: int, *, minimum: int, maximum: int) -> int:
        value = self._take(name, default)
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
            number = int(value)
        if number is None or not minimum <= number <= maximum:
            raise ConfigError(
                self.key(name),
                f"{value!r} is not a whole number between {minimum} and {maximum}",
                f"set a whole number between {minimum} and {maximum}",
            )
        return number

    def number(self, name: str, default: float, *, minimum: float, maximum: float) -> float:
        value = self._take(name, default)
        number: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                number = None
        if number is None or not minimum <= number <= maximum:
            raise ConfigError(
                self.key(name),
                f"{value!r} is not a number between {minimum:g} and {maximum:g}",
                f"set a number between {minimum:g} and {maximum:g}",
            )
        return number

    def boolean(self, name: str, default: bool) -> bool:
        value = self._take(name, default)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ConfigError(self.key(name), f"{value!r} is not true or false", "use true or false")

    def string_list(self, name: str, default: list[str]) -> list[str]:
        """A TOML list of strings, or one comma-separated string (from the command line)."""
        value = self._take(name, default)
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
            return list(value)
        raise ConfigError(
            self.key(name), f"{value!r} is not a list of text values", 'use ["a", "b"]'
        )

    def finish(self) -> None:
        """Refuse options nobody asked for (typos, options of another kind)."""
        unknown = sorted(set(self._options) - self._seen)
        if unknown:
            raise ConfigError(
                self.key(unknown[0]),
                "is not an option of this source kind",
                f"remove it or use one of: {', '.join(sorted(self._seen))}",
            )

    def _take(self, name: str, default: Any) -> Any:
        self._seen.add(name)
        return self._options.get(name, default)
