"""`edge-agent test-source`: what the next LcsCDR poll would fetch, without fetching it for real.

The command line only: which source (from the configuration, or --kind and its options), the
--watermark override, --print-query, and printing. The preview itself (what it shows: billed
calls, legs not billed, unanswered attempts, retries beside what they replace, an idle warning)
is ``edge_agent.sources.lync_cdr.preview``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import click

from edge_agent import config as agent_config
from edge_agent.config import DEFAULT_CONFIG_PATH
from edge_agent.sources.lync_cdr import preview
from edge_agent.sources.lync_cdr.parser import KIND


@click.command("test-source")
@click.argument("name", required=False)
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help=f"The agent's TOML configuration [default: {DEFAULT_CONFIG_PATH}].",
)
@click.option("--kind", default=None, help="Test a source given on the command line instead.")
@click.option(
    "-o", "--option", "options", multiple=True, metavar="KEY=VALUE", help="Option of --kind."
)
@click.option(
    "--watermark",
    default=None,
    metavar="TIME",
    help="Pretend the watermark is at this SessionIdTime (UTC), e.g. 2024-03-01T09:00.",
)
@click.option(
    "--print-query",
    is_flag=True,
    help="Print the export query of the next poll's window (for SSMS) instead of running it.",
)
def test_source_command(
    name: str | None,
    config_path: Path | None,
    kind: str | None,
    options: Sequence[str],
    watermark: str | None,
    print_query: bool,
) -> None:
    """Show what the next poll of a lync-cdr source would fetch, without advancing anything.

    Connects with the source's options (read-only), reports the LcsCDR schema variant it found,
    the time window of the next poll (from the watermark kept in the spool, or the first-poll
    look-back), how many sessions that window holds by direction, and the first and last
    session. Nothing is delivered, spooled or marked as read.

    Example:

        edge-agent test-source -c /etc/callcollect/agent.toml pbx-lync

    Without a config, name the kind and its options:

        edge-agent test-source --kind lync-cdr -o "connection_string=DSN=LcsCDR;UID=cdr;"

    To compare with what SQL Server Management Studio shows, print the exact query (the
    schema found decides its columns) with the next window's times filled in, run it there
    and save the result as CSV for `edge-agent parse lync-cdr`:

        edge-agent test-source -c /etc/callcollect/agent.toml pbx-lync --print-query
    """
    # CallCollectErrors reach the group, which prints them with their exit code (a refused
    # connection is a SourceError, 5; a bad option a ConfigError, 2)
    when = _parse_time(watermark) if watermark is not None else None
    target = _target(name, config_path, kind, options)
    if print_query:
        click.echo(preview.export_query(target, watermark=when))
        return
    result = preview.preview(target, watermark=when)
    click.echo(preview.render(target.ctx.source_id, target.poller, result))


def _target(
    name: str | None, config_path: Path | None, kind: str | None, options: Sequence[str]
) -> preview.PreviewTarget:
    if kind is not None:
        if kind != KIND:
            raise click.UsageError(f"test-source knows kind {KIND!r} only, not {kind!r}")
        return preview.target_from_options(name or "lync", _options(options))
    settings = agent_config.load(config_path or DEFAULT_CONFIG_PATH)
    try:
        return preview.target_from_config(settings, name)
    except preview.UnknownSource as exc:
        raise click.UsageError(str(exc)) from exc


def _options(pairs: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--option")
        out[key.strip()] = value
    return out


def _parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter(
            f"{text!r} is not an ISO 8601 time such as 2024-03-01T09:00", param_hint="--watermark"
        ) from exc
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
