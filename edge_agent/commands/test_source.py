"""`edge-agent test-source`: what the next LcsCDR poll would fetch, without fetching it for real.

It connects with the source's own options, probes the schema, runs the poll query over the
window the agent would read next and prints the counts, the first and last session and the
schema variant found. It delivers nothing, stores nothing and never moves the watermark: the
spool is only read (for the watermark), and the LcsCDR session is read-only as in a real poll.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from edge_agent import config as agent_config
from edge_agent.config import DEFAULT_CONFIG_PATH
from edge_agent.sources.base import SourceContext
from edge_agent.sources.lync_cdr.driver import (
    WATERMARK_KEY,
    LcsCdrPoller,
    LyncOptions,
    PollResult,
    SessionKey,
    describe_target,
)
from edge_agent.sources.lync_cdr.parser import KIND, LyncCdrParser
from edge_agent.sources.lync_cdr.schema import format_db_time
from edge_agent.spool import SPOOL_FILE, Spool


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
def test_source_command(
    name: str | None,
    config_path: Path | None,
    kind: str | None,
    options: Sequence[str],
    watermark: str | None,
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
    """
    poller, ctx, stored = _poller(name, config_path, kind, options)
    mark = SessionKey.decode(stored)
    if watermark is not None:
        mark = SessionKey(_parse_time(watermark), 0)
    try:
        result = poller.preview(mark, parser=LyncCdrParser(ctx))
    finally:
        poller.close()
    click.echo(render(ctx.source_id, poller, result))


def _poller(
    name: str | None, config_path: Path | None, kind: str | None, options: Sequence[str]
) -> tuple[LcsCdrPoller, SourceContext, str | None]:
    if kind is not None:
        if kind != KIND:
            raise click.UsageError(f"test-source knows kind {KIND!r} only, not {kind!r}")
        ctx = SourceContext("test-source", name or "lync", ZoneInfo("UTC"))
        return LcsCdrPoller(LyncOptions.from_mapping(ctx, _options(options))), ctx, None
    settings = agent_config.load(config_path or DEFAULT_CONFIG_PATH)
    lync = [s for s in settings.sources if s.kind == KIND]
    chosen = [s for s in lync if s.id == name] if name else lync[:1]
    if not chosen:
        known = ", ".join(s.id for s in lync) or "none"
        raise click.UsageError(
            f"no lync-cdr source {name!r} in {settings.path}; lync-cdr sources: {known}"
        )
    source = chosen[0]
    ctx = SourceContext(settings.agent.id, source.id, settings.agent.timezone)
    poller = LcsCdrPoller(LyncOptions.from_mapping(ctx, source.options))
    stored = None
    if (settings.agent.state_dir / SPOOL_FILE).exists():
        with Spool.open(settings.agent.state_dir, quota_bytes=settings.spool.quota_bytes) as spool:
            stored = spool.get_state(source.id, WATERMARK_KEY)
    return poller, ctx, stored


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


def render(source_id: str, poller: LcsCdrPoller, result: PollResult) -> str:
    """The report test-source prints."""
    window = result.window

    def key(k: SessionKey | None) -> str:
        return "-" if k is None else f"{format_db_time(k.time)} #{k.seq}"

    kinds = ", ".join(f"{n} {label}" for label, n in sorted(result.kinds.items())) or "none"
    lines = [
        f"source {source_id} ({KIND}): {describe_target(poller.options.connection_string)}",
        f"schema: {result.variant}",
        f"watermark: {key(result.watermark) if result.watermark else 'none (first poll)'}",
        f"window: {format_db_time(window.start)} .. {format_db_time(window.end)} UTC"
        f"{' (includes the overlap sweep)' if window.sweep else ''}",
        f"sessions: {result.rows} ({kinds}); {result.held} still open, left for a later sweep",
        f"first session: {key(result.first)}",
        f"last session:  {key(result.last)}",
        *result.warnings,
        "nothing was delivered, spooled or marked as read",
    ]
    return "\n".join(lines)
