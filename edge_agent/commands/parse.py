"""`edge-agent parse`: run a driver's parser over a capture file, before a source goes live.

Contract: every unit of the file is parsed exactly as the running agent would parse it
(``edge_agent.sources.capture``); ICDRs go to stdout as JSON Lines, quarantined units to stderr
with their reason and raw text, then one summary line. Quarantined units do not make the command
fail (a PBX banner is expected); an unreadable file or a bad option does, with one sentence.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import BinaryIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from edge_agent.sources import registry
from edge_agent.sources.base import Quarantined, SourceContext
from edge_agent.sources.capture import parse_capture
from shared.clock import utc_now
from shared.errors import ConfigError

DEFAULT_SOURCE_ID = "capture"
DEFAULT_AGENT_ID = "local"
MAX_RAW_SHOWN = 200


def _option(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise click.BadParameter(f"{text!r} is not KEY=VALUE, e.g. --option clock=12h")
    return key.strip(), value


def _received_at(text: str | None) -> datetime:
    if text is None:
        return utc_now()
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter(
            f"{text!r} is not ISO 8601, e.g. 2026-05-14T18:00:00Z", param_hint="--received-at"
        ) from exc
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


@click.command("parse")
@click.argument("kind", type=click.Choice(registry.kinds()), metavar="KIND")
@click.argument("capture", type=click.File("rb"), metavar="FILE")
@click.option("--layout", help="Record layout (drivers with layouts, e.g. mivb-smdr: A+L2+X).")
@click.option(
    "--option",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="A source option, as in the agent's [[sources]] table; repeat for more.",
)
@click.option(
    "--timezone", "tz", default="UTC", show_default=True, help="The site's IANA time zone."
)
@click.option(
    "--received-at",
    help="When the data was received, ISO 8601 (default: now). Dates without a year use it.",
)
@click.option(
    "--source-id", default=DEFAULT_SOURCE_ID, show_default=True, help="Source id in record ids."
)
def parse_command(
    kind: str,
    capture: BinaryIO,
    layout: str | None,
    options: tuple[str, ...],
    tz: str,
    received_at: str | None,
    source_id: str,
) -> None:
    """Parse a capture FILE (or - for stdin) with a source KIND's parser; print ICDRs.

    Use it before go-live: capture a few hours of the PBX's output, parse it with the options
    you intend to configure, and check the calls and the quarantined lines. Example:

    \b
        edge-agent parse mivb-smdr --layout auto --timezone Europe/London \\
            --received-at 2026-05-14T18:00:00Z smdr-capture.txt > calls.jsonl

    ICDRs go to stdout, one JSON object per line. Quarantined units go to stderr with their
    reason, followed by a summary ("N parsed, M quarantined"). Options are the source's
    options from the agent configuration (--option clock=12h --option
    unsupervised_allowance_seconds=20); --layout is short for --option layout=....
    A driver that detects the layout by itself (mivb-smdr with --layout auto) says which
    layouts it saw in the summary, so you can then configure that layout.

    KIND is a registered source kind:
    """
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise click.BadParameter(
            f"{tz!r} is not an IANA time zone, e.g. Europe/London", param_hint="--timezone"
        ) from exc
    when = _received_at(received_at)
    settings: dict[str, str] = dict(_option(text) for text in options)
    if layout is not None:
        settings["layout"] = layout
    ctx = SourceContext(agent_id=DEFAULT_AGENT_ID, source_id=source_id, timezone=zone)
    try:
        kit = registry.make_parser(kind, ctx, settings)
    except ConfigError as exc:
        raise click.UsageError(  # exit 2, like a bad config key
            f"option {exc.key.rsplit('.', 1)[-1]}: {exc.problem}. Fix: {exc.fix}"
        ) from exc
    try:
        data = capture.read()
    except OSError as exc:
        raise click.BadParameter(
            f"cannot read {capture.name}: {exc.strerror or exc}", param_hint="CAPTURE"
        ) from exc
    for note in kit.notes:
        click.echo(note, err=True)
    parsed = 0
    reasons: Counter[str] = Counter()
    layouts: Counter[str] = Counter()
    for result in parse_capture(kit, data, source_id=source_id, received_at=when):
        if isinstance(result, Quarantined):
            reasons[result.reason] += 1
            shown = result.raw[:MAX_RAW_SHOWN].decode("latin-1")
            click.echo(
                f"quarantined unit {result.seq}: {result.reason}: {result.detail}: "
                f"{json.dumps(shown)}",
                err=True,
            )
        else:
            parsed += 1
            if "layout" in result.extra:
                layouts[result.extra["layout"]] += 1
            click.echo(result.to_json())
    click.echo(_summary(parsed, reasons, layouts), err=True)


parse_command.help = (parse_command.help or "") + ", ".join(registry.kinds()) + "."


def _summary(parsed: int, reasons: Counter[str], layouts: Counter[str]) -> str:
    text = f"{parsed} parsed, {sum(reasons.values())} quarantined"
    if reasons:
        text += " (" + ", ".join(f"{r}: {n}" for r, n in sorted(reasons.items())) + ")"
    if layouts:
        text += "; detected layouts: " + ", ".join(
            f"{name} ({count} records)" for name, count in layouts.most_common()
        )
    return text
