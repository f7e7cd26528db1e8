"""What the next LcsCDR poll would fetch, without fetching it for real (`edge-agent test-source`).

A preview connects with the source's own options, probes the schema and runs the poll query
over the window the agent would read next. It delivers nothing, stores nothing and never moves
the watermark: the spool is only read (for the watermark), and the LcsCDR session is read-only
as in a real poll. ``edge_agent.commands.test_source`` parses the command line and prints
``render(...)``: counts, the first and last session, the schema variant; then the calls as they
will be billed (billed calls, legs that are not billed, unanswered attempts), every retried call
beside the attempts it replaces, and a warning when nothing happened since the watermark.
``export_query`` gives the exact export query instead (``--print-query``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
from shared.icdr import ICDR

RETRY_FLAGS = ("retried_session", "replaced_by_retry")
SHOWN_RETRIES = 20
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


def export_query(target: PreviewTarget, *, watermark: datetime | None = None) -> str:
    """The exact export query the next poll would run, its window's times filled in, ready for
    SQL Server Management Studio (``test-source --print-query``); closes the poller."""
    mark = SessionKey.decode(target.stored_watermark)
    if watermark is not None:
        mark = SessionKey(watermark, 0)
    try:
        query, window = target.poller.export_query(mark)
    finally:
        target.poller.close()
    return (
        f"-- lync-cdr source {target.ctx.source_id}: sessions {format_db_time(window.start)} .. "
        f"{format_db_time(window.end)} UTC, and retries up to 10 minutes after\n{query};"
    )


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
