"""Declarative settings tables: one row per setting (key, kind, default, help), for both sides.

The agent's ``edge_agent/config.py`` and the data centre's ``datacenter/settings.py`` each
declare a tuple of ``Setting`` rows; defaults, validation, environment override names and the
documentation tables all follow it, and tests check the docs list every key.

- A ``Kind`` turns a raw value into a typed one, or raises ``ConfigError`` naming the full key
  and the fix. ``Text``, ``Integer``, ``Number``, ``FilePath``, ``OptionalPath``, ``Choice``,
  ``TimeZone`` and ``Listen`` take TOML values as they are (a string is never a number).
  ``EnvText``, ``EnvPath``, ``EnvInteger``, ``EnvNumber`` and ``EnvFlag`` also take the text
  an environment variable holds (``"4"``, ``"true"``), for tables with environment overrides.
- ``Setting.env`` is the override variable: ``env_prefix`` + the key in upper case with ``_``
  for ``.`` (``store.url`` -> ``CALLCOLLECT_DC_STORE_URL``); ``None`` without a prefix.
- Paths are relative to ``base`` (the config file's folder, or the working directory).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.errors import ConfigError

REQUIRED: Any = object()  # marks a setting without a default
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


@dataclass(frozen=True, slots=True)
class Kind:
    """How a value is checked; ``doc`` is what the documentation calls the type."""

    doc: str

    def convert(self, key: str, value: Any, *, base: Path) -> Any:
        raise NotImplementedError

    def describe(self) -> str:
        return self.doc


@dataclass(frozen=True, slots=True)
class Setting:
    """One row of a settings table: the single source for its default, validation and docs."""

    key: str  # "section.name", or "name" at top level
    kind: Kind
    default: Any  # REQUIRED when the file must set it
    help: str
    env_prefix: str | None = None  # set when an environment variable may override it

    @property
    def section(self) -> str:
        return self.key.partition(".")[0]

    @property
    def name(self) -> str:
        return self.key.partition(".")[2]

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def env(self) -> str | None:
        if self.env_prefix is None:
            return None
        return self.env_prefix + self.key.replace(".", "_").upper()


def by_key(settings: Iterable[Setting]) -> dict[str, Setting]:
    return {s.key: s for s in settings}


def reference_markdown(settings: Iterable[Setting]) -> str:
    """A Markdown table of the settings: key, type, default (or required), meaning."""
    lines = ["| Key | Type | Default | Meaning |", "|---|---|---|---|"]
    for s in settings:
        default = "required" if s.required else f"`{_toml_literal(s.default)}`"
        lines.append(f"| `{s.key}` | {s.kind.describe()} | {default} | {s.help} |")
    return "\n".join(lines) + "\n"


def check_range(key: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ConfigError(key, f"{value} is out of range", f"use a value from {low} to {high}")


# --- kinds for TOML values -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Text(Kind):
    doc: str = "string"
    pattern: re.Pattern[str] | None = None
    pattern_help: str = ""
    allow_empty: bool = False

    def convert(self, key: str, value: Any, *, base: Path) -> Any:
        if not isinstance(value, str):
            raise ConfigError(key, f"expected a string, got {toml_type(value)}", "quote the value")
        if not value and not self.allow_empty:
            raise ConfigError(key, "must not be empty", "set a value or remove the key")
        if value and self.pattern is not None and not self.pattern.match(value):
            raise ConfigError(key, f"{value!r} is not allowed", self.pattern_help)
        return value


@dataclass(frozen=True, slots=True)
class Integer(Kind):
    doc: str = "integer"
    minimum: int = 0
    maximum: int = 2**31

    def describe(self) -> str:
        return f"integer, {self.minimum} to {self.maximum}"

    def convert(self, key: str, value: Any, *, base: Path) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(
                key, f"expected an integer, got {toml_type(value)}", "write a whole number"
            )
        check_range(key, value, self.minimum, self.maximum)
        return value


@dataclass(frozen=True, slots=True)
class Number(Kind):
    doc: str = "number"
    minimum: float = 0.0
    maximum: float = 1e9

    def describe(self) -> str:
        return f"number, {self.minimum:g} to {self.maximum:g}"

    def convert(self, key: str, value: Any, *, base: Path) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(key, f"expected a number, got {toml_type(value)}", "write a number")
        check_range(key, value, self.minimum, self.maximum)
        return float(value)


@dataclass(frozen=True, slots=True)
class Flag(Kind):
    doc: str = "boolean"

    def convert(self, key: str, value: Any, *, base: Path) -> Any:
        if not isinstance(value, bool):
            raise ConfigError(key, f"expected true or false, got {toml_type(value)}",
                              "write true or false (no quotes)")  # fmt: skip
        return value


@dataclass(frozen=True, slots=True)
class TextList(Kind):
    doc: str = "array of strings"

    def convert(self, key: str, value: Any, *, base: Path) -> Any:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(key, f"expected an array of strings, got {toml_type(value)}",
                              'write e.g. ["2001", "2002"]')  # fmt: skip
        return tuple(v.strip() for v in value if v.strip())


@dataclass(frozen=True, slots=True)
class FilePath(Kind):
    doc: str = "path"

    def convert(self, key: str, value: Any, *, base: Path) -> Any:
        text = Text().convert(key, value, base=base)
        return (base / Path(text).expanduser()).resolve()


@dataclass(frozen=True, slots=True)
class OptionalPath(Kind):
    doc: str = "path or empty"

    def convert(self, key: str, value: Any, *, base: Path) -> Any:
        text = Text(allow_empty=True).convert(key, value, base=base)
        return (base / Path(text).expanduser()).resolve() if text else None


@dataclass(frozen=True, slots=True)
class Choice(Kind):
    doc: str = "one of"
    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        return " or ".join(f'`"{c}"`' for c in self.choices)

    def convert(self, key: str, value: Any, *, base: Path) -> Any:
        text = Text().convert(key, value, base=base)
        if text not in self.choices:
            raise ConfigError(key, f"{text!r} is not allowed", f"use one of {self.describe()}")
        return text


@dataclass(frozen=True, slots=True)
class TimeZone(Kind):
    doc: str = "IANA time zone"

    def convert(self, key: str, value: Any, *, base: Path) -> Any:
        text = Text().convert(key, value, base=base)
        try:
            return ZoneInfo(text)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(
                key,
                f"{text!r} is not a known IANA time zone",
                "use a name such as 'Europe/London' or 'America/Toronto' (the PBX's local zone)",
            ) from exc


@dataclass(frozen=True, slots=True)
class Listen(Kind):
    """``HOST:PORT`` on a loopback or local address, or empty for off."""

    doc: str = "HOST:PORT or empty"

    def convert(self, key: str, value: Any, *, base: Path) -> Any:
        text: str = Text(allow_empty=True).convert(key, value, base=base)
        if not text:
            return ""
        host, sep, port = text.rpartition(":")
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ConfigError(
                key, f"{text!r} is not HOST:PORT", "write e.g. '127.0.0.1:9108', or '' for off"
            )
        return text


# --- kinds that also take environment text -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnvText(Kind):
    doc: str = "string"

    def convert(self, key: str, value: Any, *, base: Path) -> Any:
        if not isinstance(value, str):
            raise ConfigError(key, f"expected a string, got {value!r}", 'quote the value: "..."')
        return value.strip()


@dataclass(frozen=True, slots=True)
class EnvPath(Kind):
    doc: str = "path"

    def convert(self, key: str, value: Any, *, base: Path) -> Any:
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(key, f"expected a path, got {value!r}",
                              'write a quoted path, e.g. "/var/lib/callcollect"')  # fmt: skip
        path = Path(value.strip()).expanduser()
        return path if path.is_absolute() else (base / path).resolve()


@dataclass(frozen=True, slots=True)
class EnvInteger(Kind):
    doc: str = "integer"

    def convert(self, key: str, value: Any, *, base: Path) -> Any:
        try:
            if isinstance(value, bool | float):
                raise ValueError
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(key, f"expected a whole number, got {value!r}",
                              "write a number without quotes, e.g. 4") from None  # fmt: skip


@dataclass(frozen=True, slots=True)
class EnvNumber(Kind):
    doc: str = "number"

    def convert(self, key: str, value: Any, *, base: Path) -> Any:
        try:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(key, f"expected a number, got {value!r}",
                              "write a number without quotes, e.g. 5") from None  # fmt: skip


@dataclass(frozen=True, slots=True)
class EnvFlag(Kind):
    doc: str = "boolean"

    def convert(self, key: str, value: Any, *, base: Path) -> Any:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()  # from the environment: a string
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise ConfigError(key, f"expected true or false, got {value!r}",
                          "write true or false without quotes") from None  # fmt: skip


# --- helpers -------------------------------------------------------------------------------------


def toml_type(value: Any) -> str:
    """How a message names a TOML value's type ("a string", "an array", ...)."""
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "an array", dict: "a table"}  # fmt: skip
    return names.get(type(value), type(value).__name__)


def _toml_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    if isinstance(value, str) and not value:
        return '""'
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)
