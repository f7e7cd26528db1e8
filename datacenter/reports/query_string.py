"""A report's parameters in a URL query string, both ways: what report pages, their export links
and saved reports share, so an export or a schedule reproduces exactly the page it came from.

    from=2025-03-01&to=2025-03-31      tenant-local days, inclusive (default: this month so far)
    sort=cost&order=asc                the report's sort column and direction (default: its own)
    f.extension=2000-2099,!2002        a filter (``reports.filters`` syntax), per column
    o.by=department                    a report's own option (summary dimension, top N, mark-up)

The viewer's scope is never in the URL: the page adds the signed-in user's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from zoneinfo import ZoneInfo

from datacenter.reports.catalog import ReportParams
from datacenter.reports.scope import Scope
from shared.errors import ValidationError

MAX_RANGE_DAYS = 3_660
MAX_VALUE_LENGTH = 500
FILTER_PREFIX, OPTION_PREFIX = "f.", "o."


def _day(args: Mapping[str, str], key: str, default: date) -> date:
    text = args.get(key, "").strip()
    if not text:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationError(key, f"{text!r} is not a date; write YYYY-MM-DD") from None


def _prefixed(args: Mapping[str, str], prefix: str) -> dict[str, str]:
    found = {}
    for key, value in args.items():
        if key.startswith(prefix) and value.strip():
            if len(value) > MAX_VALUE_LENGTH:
                raise ValidationError(key, f"at most {MAX_VALUE_LENGTH} characters")
            found[key[len(prefix) :]] = value
    return found


def report_params(
    args: Mapping[str, str], *, tenant_id: int, zone: ZoneInfo, today: date, scope: Scope | None
) -> ReportParams:
    """The parameters in ``args`` (a request's query string); a bad value names its key."""
    first = _day(args, "from", today.replace(day=1))
    last = _day(args, "to", today)
    if last < first:
        raise ValidationError("to", "the last day is before the first")
    if (last - first).days > MAX_RANGE_DAYS:
        raise ValidationError("to", f"a report covers at most {MAX_RANGE_DAYS} days")
    order = args.get("order", "desc")
    if order not in ("asc", "desc"):
        raise ValidationError("order", "order is asc or desc")
    return ReportParams(
        tenant_id, zone, first, last,
        filters=_prefixed(args, FILTER_PREFIX), scope=scope,
        sort=args.get("sort") or None, descending=order == "desc",
        options=_prefixed(args, OPTION_PREFIX),
    )  # fmt: skip


def query_args(params: ReportParams) -> dict[str, str]:
    """``params`` back as query-string arguments (the scope stays out)."""
    args = {"from": params.first_day.isoformat(), "to": params.last_day.isoformat()}
    if params.sort:
        args["sort"] = params.sort
        args["order"] = "desc" if params.descending else "asc"
    args.update({FILTER_PREFIX + k: v for k, v in params.filters.items()})
    args.update({OPTION_PREFIX + k: v for k, v in params.options.items()})
    return args
