"""What every `datacenter` command shares: the --config option and the one way to open the store.

``open_configured_store(config_path)`` loads the settings and opens the store. Its failures are
``CallCollectError`` classes that ``shared.cli_errors.FriendlyGroup`` prints as one sentence with
their documented exit code (docs/operations.md): a bad config is a ``ConfigError`` (2), an
unreachable database or an un-migrated schema a ``StoreError`` (8), each naming the fix. Every
command that touches the store uses it; only ``init`` migrates (``require_current=False``).
``in_transaction`` runs one action in a write transaction on the configured store.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click
import sqlalchemy as sa

from datacenter.settings import ENV_CONFIG, Settings, load_settings
from datacenter.store.engine import check_current, open_store, write_transaction
from shared.errors import CallCollectError, StoreError

_T = TypeVar("_T")

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=ENV_CONFIG,
    help=f"Data-centre config file (TOML); default ${ENV_CONFIG}, else built-in defaults.",
)


def load_configured_settings(config_path: Path | None) -> Settings:
    """The settings of ``--config`` (a ``ConfigError`` names the key and the fix)."""
    return load_settings(config_path)


def open_configured_store(
    config_path: Path | None, *, require_current: bool = True
) -> tuple[Settings, sa.Engine]:
    """Settings and an engine on the configured store, checked to be migrated to head."""
    settings = load_configured_settings(config_path)
    engine = open_store(settings.store.url)
    try:
        if require_current:
            check_current(engine)
    except CallCollectError:
        engine.dispose()
        raise
    except sa.exc.OperationalError as exc:
        engine.dispose()
        raise unreachable_store(settings, exc) from exc
    return settings, engine


def in_transaction(config_path: Path | None, action: Callable[[sa.Connection], _T]) -> _T:
    """Run ``action`` in one write transaction on the configured store."""
    _settings, engine = open_configured_store(config_path)
    try:
        with write_transaction(engine) as conn:
            return action(conn)
    finally:
        engine.dispose()


def unreachable_store(
    settings: Settings, exc: sa.exc.OperationalError, *, doing: str = "reach"
) -> StoreError:
    """The ``StoreError`` for a database that cannot be reached (password hidden in the URL)."""
    return StoreError(
        f"cannot {doing} the store at {redacted_url(settings.store.url)}: {exc.orig}; "
        "check store.url and that the database server is running"
    )


def redacted_url(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


def with_hint(exc: CallCollectError, hint: str) -> CallCollectError:
    """The error's message with a hint added, keeping its exit code."""
    error = CallCollectError(f"{exc}{hint}")
    error.exit_code = exc.exit_code
    return error
