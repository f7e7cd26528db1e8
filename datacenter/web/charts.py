"""Server-rendered SVG charts: no JavaScript, no inline styles (the CSP forbids both).

``pair_bars`` draws the tenant dashboard's comparisons (this period's bar over the previous
one's), ``dashboard_charts`` all of them for one dashboard. ``hourly_bars(volume, zone)`` draws calls per hour as bars, labelled every few hours on the
site's clock; each bar carries a ``<title>`` so hovering shows the hour and the count. Colours
come from classes styled in ``static/tech.css``. Every text is escaped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo

from markupsafe import Markup, escape

from datacenter.health.console import Volume
from datacenter.reports.dashboard import Comparison, Dashboard, Figures

WIDTH = 760
HEIGHT = 190
LEFT = 38  # room for the axis numbers
BOTTOM = 24  # room for the hour labels
TOP = 10
LABEL_EVERY_HOURS = 3
MIN_SCALE = 2


def hourly_bars(volume: Volume, zone: tzinfo) -> Markup:
    """An SVG bar chart of ``volume`` (one bar per hour), hours shown in ``zone``."""
    bars = volume.bars
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - TOP - BOTTOM
    scale = max(_nice_ceiling(volume.peak), MIN_SCALE)  # no calls still draws 0..2
    slot = plot_w / max(1, len(bars))
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="Calls per hour, last {len(bars)} hours: {volume.total} in all">'
    ]
    for fraction in (0.0, 0.5, 1.0):  # grid lines with their values
        y = TOP + plot_h * (1 - fraction)
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - 8}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{round(scale * fraction)}</text>"
        )
    for i, bar in enumerate(bars):
        local = bar.start.astimezone(zone)
        # An hour without calls still gets a 1-pixel stub, so "no calls" differs from "no data".
        height = plot_h * bar.calls / scale if bar.calls else 1.0
        x = LEFT + i * slot + 1
        label = escape(f"{local:%a %H:00} {local.tzname() or ''}: {bar.calls} call(s)")
        parts.append(
            f'<rect class="bar{" empty" if not bar.calls else ""}" x="{x:.1f}" '
            f'y="{TOP + plot_h - height:.1f}" width="{max(1.0, slot - 2):.1f}" '
            f'height="{height:.1f}">'
            f"<title>{label}</title></rect>"
        )
        if local.hour % LABEL_EVERY_HOURS == 0:
            parts.append(
                f'<text class="axis" x="{x + slot / 2:.1f}" y="{HEIGHT - 6}" '
                f'text-anchor="middle">{local:%H}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


def _nice_ceiling(peak: int) -> int:
    """The axis top: 1, 2, 5 x 10^n at or above ``peak`` (0 when there were no calls)."""
    if peak <= 0:
        return 0
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= peak:
                return step * factor
        step *= 10


# --- the tenant dashboard: current against previous, as horizontal bar pairs ----------------

PAIR_WIDTH = 560
PAIR_LABEL = 150  # room for the row label
PAIR_VALUE = 110  # room for the value after the longest bar
PAIR_ROW = 40  # one row: the current bar above the previous one
PAIR_BAR = 14


@dataclass(frozen=True)
class Pair:
    label: str
    current: float
    previous: float


def pair_bars(
    title: str, pairs: list[Pair], fmt: Callable[[float], str], *, row_scale: bool = False
) -> Markup:
    """An SVG chart: per row, the current value's bar over the previous period's (lighter).

    With ``row_scale`` each row is drawn to its own scale (rows of different sizes, e.g. today
    and this month); otherwise all rows share one. Every text is escaped."""
    height = TOP + PAIR_ROW * max(1, len(pairs)) + 8
    plot = PAIR_WIDTH - PAIR_LABEL - PAIR_VALUE
    top = max([max(p.current, p.previous) for p in pairs] + [0.0])
    parts = [
        f'<svg class="chart pairs" viewBox="0 0 {PAIR_WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}: this period against the previous one">'
        f"<title>{escape(title)}</title>"
    ]
    if not pairs:
        parts.append(f'<text class="axis" x="{PAIR_LABEL}" y="{TOP + 14}">no calls</text>')
    for i, pair in enumerate(pairs):
        scale = max(pair.current, pair.previous) if row_scale else top
        y = TOP + i * PAIR_ROW
        parts.append(
            f'<text class="axis label" x="{PAIR_LABEL - 8}" y="{y + PAIR_BAR + 2}" '
            f'text-anchor="end">{escape(pair.label)}</text>'
        )
        for offset, value, kind, when in ((0, pair.current, "current", "now"),
                                          (PAIR_BAR + 2, pair.previous, "previous", "before")):  # fmt: skip
            width = plot * value / scale if scale > 0 else 0.0
            text = escape(f"{pair.label}, {when}: {fmt(value)}")
            parts.append(
                f'<rect class="bar {kind}" x="{PAIR_LABEL}" y="{y + offset}" '
                f'width="{max(1.0, width):.1f}" height="{PAIR_BAR}"><title>{text}</title></rect>'
                f'<text class="axis value {kind}" x="{PAIR_LABEL + max(1.0, width) + 6:.1f}" '
                f'y="{y + offset + PAIR_BAR - 3}">{escape(fmt(value))}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


def dashboard_charts(board: Dashboard) -> dict[str, Markup]:
    """The dashboard's charts, by name: ``calls``, ``minutes``, ``cost``, ``unanswered`` (today
    and this month, each row to its own scale), and ``class_today``, ``class_month``,
    ``site_today``, ``site_month`` (cost in the dashboard's main currency)."""
    currency = board.currency
    periods = (board.today, board.month)

    def kpi(title: str, value: Callable[[Figures], float], fmt: Callable[[float], str]) -> Markup:
        pairs = [Pair(c.label, value(c.current), value(c.previous)) for c in periods]
        return pair_bars(title, pairs, fmt, row_scale=True)

    def cost(micro: int) -> float:
        return micro / 1_000_000

    def by(name: str, period: Comparison, attr: str) -> Markup:
        now: dict[str, dict[str, int]] = getattr(period.current, attr)
        before: dict[str, dict[str, int]] = getattr(period.previous, attr)
        keys = sorted(set(now) | set(before))
        pairs = [Pair(key or "(none)", cost(now.get(key, {}).get(currency, 0)),
                      cost(before.get(key, {}).get(currency, 0))) for key in keys]  # fmt: skip
        pairs.sort(key=lambda p: (-p.current, -p.previous, p.label))
        return pair_bars(f"{name}, {period.label.lower()} ({currency})", pairs, _money)

    return {
        "calls": kpi("Calls", lambda f: f.calls, _count),
        "minutes": kpi("Talk minutes", lambda f: f.talk_seconds / 60, _count),
        "cost": kpi(f"Cost ({currency})", lambda f: cost(f.cost.get(currency, 0)), _money),
        "unanswered": kpi("Unanswered incoming", lambda f: f.unanswered_inbound, _count),
        "class_today": by("Cost by destination class", board.today, "by_class"),
        "class_month": by("Cost by destination class", board.month, "by_class"),
        "site_today": by("Cost by site", board.today, "by_site"),
        "site_month": by("Cost by site", board.month, "by_site"),
    }


def _count(value: float) -> str:
    return f"{value:,.0f}"


def _money(value: float) -> str:
    return f"{value:,.2f}"
