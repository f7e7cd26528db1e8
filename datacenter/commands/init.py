"""`datacenter init`, and the one way commands open the configured store.

``open_configured_store(config_path)`` loads the settings and opens the store. A bad config
raises ``ConfigError``; an unreachable database or an un-migrated schema, ``StoreError`` naming
the fix. They reach the ``datacenter`` group (shared/cli_errors.py), which prints the sentence
and exits with the class's code (docs/operations.md). Every command that touches the store uses
it (``serve`` may too); only ``init`` migrates.
"""

from __future__ import annotations

from pathlib import Path

import click
import sqlalchemy as sa

from datacenter.ingest.keys import ensure_keys
from datacenter.settings import ENV_CONFIG, Settings, load_secret_key, load_settings
from datacenter.store.engine import (
    check_current,
    current_revision,
    head_revision,
    open_store,
    upgrade,
)
from shared.errors import CallCollectError, ConfigError, StoreError

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=ENV_CONFIG,
    help=f"Data-centre config file (TOML); default ${ENV_CONFIG}, else built-in defaults.",
)


def load_configured_settings(config_path: Path | None) -> Settings:
    """The settings; a bad file or value raises ``ConfigError`` (exit 2) naming the key."""
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
        raise StoreError(
            f"cannot reach the store at {_redacted(settings.store.url)}: {exc.orig}; "
            "check store.url and that the database server is running"
        ) from exc
    return settings, engine


def _redacted(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


@click.command("init")
@config_option
def init_command(config_path: Path | None) -> None:
    """Create or upgrade the store and the data directories.

    Runs the store's migrations to the newest schema (safe to repeat: an up-to-date store is left
    alone), creates the landing root, generates the web session secret if there is none, and
    creates the data centre's keys if there are none (`datacenter keys init`: never replaced),
    printing where the certificate bundle for the agents is. Run it after installing and after
    every upgrade, before `datacenter serve`.

    \b
    Example:
      datacenter init --config /etc/callcollect/datacenter.toml
    """
    settings, engine = open_configured_store(config_path, require_current=False)
    try:
        before = current_revision(engine)
        upgrade(engine)
        after = head_revision()
    except sa.exc.OperationalError as exc:
        raise StoreError(
            f"cannot migrate the store at {_redacted(settings.store.url)}: {exc.orig}; "
            "check store.url and that the database server is running"
        ) from exc
    finally:
        engine.dispose()
    try:
        settings.landing.root.mkdir(parents=True, exist_ok=True)
        load_secret_key(settings.web.secret_key_file)
        keys = ensure_keys(settings.keys)
    except OSError as exc:
        raise ConfigError(
            "landing.root / keys.*",
            f"cannot create {exc.filename or settings.landing.root}: {exc.strerror}",
            "make it writable, or set landing.root and keys.* to writable places",
        ) from exc
    if before == after:
        click.echo(f"store is up to date (revision {after})")
    else:
        click.echo(f"store migrated from {before or 'empty'} to revision {after}")
    click.echo(f"landing area: {settings.landing.root}")
    for line in keys.describe():
        click.echo(line)
