"""Server-rendered SVG charts: no JavaScript, no inline styles (the CSP forbids both).

``hourly_bars(volume, zone)`` draws calls per hour as bars, labelled every few hours on the
site's clock; each bar carries a ``<title>`` so hovering shows the hour and the count. Colours
come from classes styled in ``static/tech.css``. Every text is escaped.
"""

from __future__ import annotations

from datetime import tzinfo

from markupsafe import Markup, escape

from datacenter.health.console import Volume

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
