"""Which driver module serves each source kind. One line per driver."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Protocol

from edge_agent.sources.base import ParserKit, Source, SourceContext
from shared.errors import ConfigError

DRIVERS: dict[str, str] = {
    "mivb-smdr": "edge_agent.sources.mivb_smdr.driver",
    "lync-cdr": "edge_agent.sources.lync_cdr.driver",
    "mcs-ipsmdr": "edge_agent.sources.mcs_ipsmdr.driver",
    "mivo250-smdr": "edge_agent.sources.mivo250_smdr.driver",
    "mivo250-oai": "edge_agent.sources.mivo250_oai.driver",
}


class _DriverModule(Protocol):
    def make_source(self, ctx: SourceContext, options: Mapping[str, Any]) -> Source: ...

    def make_parser(self, ctx: SourceContext, options: Mapping[str, Any]) -> ParserKit: ...


def kinds() -> list[str]:
    return sorted(DRIVERS)


def make_source(kind: str, ctx: SourceContext, options: Mapping[str, Any]) -> Source:
    """Build a configured source; an unknown kind is a config error that lists the known ones."""
    return _driver(kind, ctx).make_source(ctx, options)


def make_parser(kind: str, ctx: SourceContext, options: Mapping[str, Any]) -> ParserKit:
    """Build only the parser of a kind (for capture files)."""
    return _driver(kind, ctx).make_parser(ctx, options)


def _driver(kind: str, ctx: SourceContext) -> _DriverModule:
    module_name = DRIVERS.get(kind)
    if module_name is None:
        raise ConfigError(
            f"sources.{ctx.source_id}.kind",
            f"unknown source kind {kind!r}",
            f"use one of: {', '.join(kinds())}",
        )
    module: _DriverModule = importlib.import_module(module_name)
    return module
