"""What the next LcsCDR poll would fetch, without fetching it for real (`edge-agent test-source`).

A preview connects with the source's own options, probes the schema and runs the poll query
over the window the agent would read next. It delivers nothing, stores nothing and never moves
the watermark: the spool is only read (for the watermark), and the LcsCDR session is read-only
as in a real poll. ``edge_agent.commands.test_source`` parses the command line and prints
``render(...)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from edge_agent.config import AgentSettings
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

PREVIEW_AGENT_ID = "test-source"  # the agent id of a source given on the command line


class UnknownSource(LookupError):
    """The configuration has no lync-cdr source of that name (the message says which it has)."""


@dataclass(frozen=True, slots=True)
class PreviewTarget:
    """A poller ready to preview, its context, and the watermark stored in the spool (if any)."""

    poller: LcsCdrPoller
    ctx: SourceContext
    stored_watermark: str | None = None


def target_from_options(source_id: str, options: Mapping[str, str]) -> PreviewTarget:
    """A source given on the command line: its options, UTC, no stored watermark."""
    ctx = SourceContext(PREVIEW_AGENT_ID, source_id, ZoneInfo("UTC"))
    return PreviewTarget(LcsCdrPoller(LyncOptions.from_mapping(ctx, options)), ctx)


def target_from_config(settings: AgentSettings, name: str | None) -> PreviewTarget:
    """The lync-cdr source ``name`` of the configuration (the first one without a name)."""
    lync = [s for s in settings.sources if s.kind == KIND]
    chosen = [s for s in lync if s.id == name] if name else lync[:1]
    if not chosen:
        known = ", ".join(s.id for s in lync) or "none"
        raise UnknownSource(
            f"no lync-cdr source {name!r} in {settings.path}; lync-cdr sources: {known}"
        )
    source = chosen[0]
    ctx = SourceContext(settings.agent.id, source.id, settings.agent.timezone)
    poller = LcsCdrPoller(LyncOptions.from_mapping(ctx, source.options))
    stored = None
    if (settings.agent.state_dir / SPOOL_FILE).exists():
        with Spool.open(settings.agent.state_dir, quota_bytes=settings.spool.quota_bytes) as spool:
            stored = spool.get_state(source.id, WATERMARK_KEY)
    return PreviewTarget(poller, ctx, stored)


def preview(target: PreviewTarget, *, watermark: datetime | None = None) -> PollResult:
    """Run the next poll's query read-only (from ``watermark`` if given); closes the poller."""
    mark = SessionKey.decode(target.stored_watermark)
    if watermark is not None:
        mark = SessionKey(watermark, 0)
    try:
        return target.poller.preview(mark, parser=LyncCdrParser(target.ctx))
    finally:
        target.poller.close()


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
