"""Typed reading of a source's ``options`` table, with errors that name the key and the fix.

Contract: every getter returns a value of the asked type or raises ``ConfigError`` whose key is
``sources.<id>.<key>``; ``finish()`` raises for any key no getter asked for, so a misspelt
option is reported instead of silently ignored. Options come from the agent's TOML file or from
`edge-agent parse --option key=value` (strings), so numbers and booleans also accept their text.
``read_reconnect_options`` reads the connection options every TCP source driver shares, with
the same names, ranges and messages in each.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edge_agent.sources.base import SourceContext
from edge_agent.sources.streams.lines import LineFramer
from edge_agent.sources.streams.tcp import (
    SOURCE_JITTER,
    FramerFactory,
    Handshake,
    TcpClientAcquirer,
)
from shared.backoff import Backoff
from shared.errors import ConfigError

DEFAULT_CONNECT_TIMEOUT_SECONDS = 10.0
DEFAULT_RECONNECT_MIN_SECONDS = 1.0
DEFAULT_RECONNECT_MAX_SECONDS = 60.0
DEFAULT_IDLE_RECONNECT_SECONDS = 0.0  # never: most PBXs are silent while no call ends

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


@dataclass(frozen=True, slots=True)
class ReconnectOptions:
    """How a TCP source connects and retries: ``connect_timeout_seconds``, ``reconnect_*``."""

    connect_timeout_seconds: float
    reconnect_min_seconds: float
    reconnect_max_seconds: float
    idle_reconnect_seconds: float  # 0: never reconnect for silence alone

    @property
    def idle_timeout(self) -> float | None:
        return self.idle_reconnect_seconds or None

    def backoff(self) -> Backoff:
        return Backoff(
            min_seconds=self.reconnect_min_seconds,
            max_seconds=self.reconnect_max_seconds,
            jitter=SOURCE_JITTER,
        )

    def client(
        self,
        *,
        host: str,
        port: int,
        backoff: Backoff,
        framer_factory: FramerFactory = LineFramer,
        handshake: Handshake | None = None,
    ) -> TcpClientAcquirer:
        """The acquirer that connects to ``host:port`` with these timeouts."""
        return TcpClientAcquirer(
            host=host,
            port=port,
            framer_factory=framer_factory,
            handshake=handshake,
            connect_timeout=self.connect_timeout_seconds,
            idle_timeout=self.idle_timeout,
            backoff=backoff,
        )


def read_reconnect_options(
    reader: OptionReader, *, idle_reconnect: float | None = DEFAULT_IDLE_RECONNECT_SECONDS
) -> ReconnectOptions:
    """Read the shared connection options; ``idle_reconnect=None``: the kind does not offer it."""
    connect_timeout = reader.number(
        "connect_timeout_seconds", DEFAULT_CONNECT_TIMEOUT_SECONDS, minimum=0.1, maximum=300
    )
    reconnect_min = reader.number(
        "reconnect_min_seconds", DEFAULT_RECONNECT_MIN_SECONDS, minimum=0.01, maximum=3600
    )
    reconnect_max = reader.number(
        "reconnect_max_seconds", DEFAULT_RECONNECT_MAX_SECONDS, minimum=0.01, maximum=3600
    )
    if reconnect_max < reconnect_min:  # the back-off would always wait the maximum
        raise ConfigError(
            reader.key("reconnect_max_seconds"),
            "is smaller than reconnect_min_seconds",
            "set it to at least reconnect_min_seconds",
        )
    idle = 0.0  # the kind offers no idle reconnect: never
    if idle_reconnect is not None:
        idle = reader.number("idle_reconnect_seconds", idle_reconnect, minimum=0, maximum=86400)
    return ReconnectOptions(
        connect_timeout_seconds=connect_timeout,
        reconnect_min_seconds=reconnect_min,
        reconnect_max_seconds=reconnect_max,
        idle_reconnect_seconds=idle,
    )
