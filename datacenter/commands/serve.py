"""`datacenter serve`: the web console under gunicorn (``datacenter.web.serve`` runs it)."""

from __future__ import annotations

from pathlib import Path

import click

from datacenter.commands.options import config_option, open_configured_store
from datacenter.settings import load_secret_key
from datacenter.web import metrics
from datacenter.web.serve import WebServer, gunicorn_options


def _check_bind(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    host, sep, port = value.rpartition(":")
    if not (sep and host and port.isdigit() and 0 < int(port) < 65536):
        raise click.BadParameter(f"{value!r} is not HOST:PORT; write e.g. 127.0.0.1:8080")
    return value


@click.command("serve")
@config_option
@click.option(
    "--bind",
    metavar="HOST:PORT",
    callback=_check_bind,
    help="Address to listen on. Default: web.bind.",
)
@click.option(
    "--workers", type=click.IntRange(1, 64), help="Worker processes. Default: web.workers."
)
@click.option(
    "--insecure-cookies",
    is_flag=True,
    help="Let the session cookie travel over plain HTTP (a demo on a LAN address without TLS).",
)
def serve_command(
    config_path: Path | None, bind: str | None, workers: int | None, insecure_cookies: bool
) -> None:
    """Serve the web console (tenant call lists) with gunicorn.

    Example, behind a TLS reverse proxy on the same machine:

    \b
        datacenter serve --config /etc/callcollect/datacenter.toml --bind 127.0.0.1:8080

    The store must be initialised first (`datacenter init`). Logs, including one access line
    per request, go to stderr. The session cookie is marked Secure, so browsers send it only
    over HTTPS, or to http://127.0.0.1 and http://localhost, which they count as secure. Put a
    TLS proxy in front for anything else (docs/web.md); --insecure-cookies is for a demo on a
    LAN address without TLS.
    """
    settings, engine = open_configured_store(config_path)  # refuses an un-migrated store
    engine.dispose()  # the workers open their own
    load_secret_key(settings.web.secret_key_file)  # made once here, and a bad one stops us now
    options = gunicorn_options(
        bind=bind or settings.web.bind, workers=workers or settings.web.workers
    )
    app_config = {"SESSION_COOKIE_SECURE": False} if insecure_cookies else {}
    metrics.prepare_multiprocess_dir(metrics.multiprocess_dir(settings))  # before the fork
    WebServer(settings, options=options, app_config=app_config).run()
