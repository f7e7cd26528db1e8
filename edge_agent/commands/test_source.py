"""`edge-agent test-source`: what the next LcsCDR poll would fetch, without fetching it for real.

It connects with the source's own options, probes the schema, runs the poll query over the
window the agent would read next and prints the counts, the first and last session and the
schema variant found; then the calls as they will be billed (billed calls, legs that are not
billed, unanswered attempts) and every retried call beside the attempts it replaces, and a
warning when nothing happened since the watermark. ``--print-query`` prints the export query
instead, ready for SQL Server Management Studio. It delivers nothing, stores nothing and never
moves the watermark: the spool is only read (for the watermark), and the LcsCDR session is
read-only as in a real poll.
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
from shared.errors import CallCollectError
from shared.icdr import ICDR

RETRY_FLAGS = ("retried_session", "replaced_by_retry")
SHOWN_RETRIES = 20


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
    try:
        poller, ctx, stored = _poller(name, config_path, kind, options)
        mark = SessionKey.decode(stored)
        if watermark is not None:
            mark = SessionKey(_parse_time(watermark), 0)
        try:
            if print_query:
                query, window = poller.export_query(mark)
            else:
                result = poller.preview(mark, parser=LyncCdrParser(ctx))
        finally:
            poller.close()
    except CallCollectError as exc:
        raise click.ClickException(str(exc)) from exc
    if print_query:
        click.echo(
            f"-- lync-cdr source {ctx.source_id}: sessions {format_db_time(window.start)} .. "
            f"{format_db_time(window.end)} UTC, and retries up to 10 minutes after\n{query};"
        )
        return
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
        *_idle_warning(result),
        *_billing_lines(result.records),
        *_retry_lines(result.records),
        *result.warnings,
        "nothing was delivered, spooled or marked as read",
    ]
    return "\n".join(lines)


def _idle_warning(result: PollResult) -> list[str]:
    """No session after the watermark: the site is idle, or CDRs no longer reach LcsCDR."""
    mark = result.watermark
    if mark is None or (result.last is not None and mark < result.last):
        return []
    return [
        f"WARNING: no sessions since the watermark ({format_db_time(mark.time)} UTC): check "
        "that call detail recording is enabled (Get-CsCdrConfiguration), that the connection "
        "names the Monitoring store's LcsCDR database, and that calls are being made"
    ]


def _billing_lines(records: Sequence[ICDR]) -> list[str]:
    """The calls as they will be billed: what carries a cost, and what does not and why."""
    if not records:
        return []
    legs = [r for r in records if "not_billed" in r.flags]
    open_calls = [r for r in records if "end_pending" in r.flags and r not in legs]
    billed = [r for r in records if r.answered and r not in legs and r not in open_calls]
    unanswered = [r for r in records if not r.answered and r not in legs]
    reasons = sorted({f for r in legs for f in r.flags if f in ("rgs_agent_leg", *RETRY_FLAGS)})
    return [
        f"billed calls: {len(billed)} ({sum(r.talk_seconds for r in billed)} s of talk)",
        f"not-billed legs: {len(legs)}" + (f" ({', '.join(reasons)})" if reasons else ""),
        f"unanswered attempts: {len(unanswered)}",
        f"in progress (billed once they end): {len(open_calls)}",
    ]


def _retry_lines(records: Sequence[ICDR]) -> list[str]:
    """Each retried call (CallFlag 0x01) beside the attempts it replaces, linked by call id."""
    groups: dict[str, list[ICDR]] = {}
    for record in records:
        if record.call_id and any(flag in record.flags for flag in RETRY_FLAGS):
            groups.setdefault(record.call_id, []).append(record)
    if not groups:
        return []

    def leg(r: ICDR) -> str:
        outcome = f"answered {r.talk_seconds} s" if r.answered else r.completion_source or "?"
        return f"{r.start:%H:%M:%S} via {r.trunk or '?'} ({outcome})"

    lines = [f"retried calls: {len(groups)} (the billed attempt | the attempts it replaces)"]
    for legs in list(groups.values())[:SHOWN_RETRIES]:
        winner = [r for r in legs if r.answered and "not_billed" not in r.flags]
        others = [r for r in legs if r not in winner]
        shown = leg(winner[0]) if winner else "none connected"
        lines.append(f"  {legs[0].called}: {shown} | {', '.join(leg(r) for r in others) or '-'}")
    if len(groups) > SHOWN_RETRIES:
        lines.append(f"  ... and {len(groups) - SHOWN_RETRIES} more")
    return lines
