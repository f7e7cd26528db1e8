"""`datacenter init`: create or upgrade the store, the landing root, the web secret and the keys."""

from __future__ import annotations

from pathlib import Path

import click
import sqlalchemy as sa

from datacenter.commands.options import config_option, open_configured_store, unreachable_store
from datacenter.ingest.keys import ensure_keys
from datacenter.settings import load_secret_key
from datacenter.store.engine import current_revision, head_revision, upgrade
from shared.errors import ConfigError

PARTITIONED_SINCE = "0018"  # the revision that partitions calls on PostgreSQL


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
        partitioned_now = engine.dialect.name == "postgresql"
    except sa.exc.OperationalError as exc:
        raise unreachable_store(settings, exc, doing="migrate") from exc
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
        if partitioned_now and before is not None and before < PARTITIONED_SINCE:
            click.echo(
                "calls are now partitioned by month, all of them in the DEFAULT partition: run "
                "`datacenter store partitions --convert` (online) and `--ahead 3`"
            )
    click.echo(f"landing area: {settings.landing.root}")
    for line in keys.describe():
        click.echo(line)
