"""Server-side SVG charts for the monitoring page (no JavaScript, no CDN, nothing to download).

Every label is escaped here: model names, providers and budget names come from caller data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from html import escape

from cfgateway.dashboard.figures import BudgetLine

PALETTE = ("#2563eb", "#f97316", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#ca8a04", "#db2777", "#4b5563")
LINE_COLORS = {"limit": "#dc2626", "alert": "#d97706"}
W, H = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 150, 16, 56


def nice_top(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 x 10^k at or above ``value`` * 1.05 (round axis ticks in quarters)."""
    if value <= 0:
        return 1.0
    target = value * 1.05
    power = 10 ** math.floor(math.log10(target))
    return next(m * power for m in (1, 2, 2.5, 4, 5, 6, 8, 10) if m * power >= target)


def _money(v: float) -> str:
    return f"${v:,.2f}" if v >= 1 or v == 0 else f"${v:.3g}"


def _frame(title: str, body: list[str], width: int = W, height: int = H) -> str:
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" role="img" aria-label="{escape(title)}" font-family="sans-serif" font-size="11">'
            f"<title>{escape(title)}</title>")
    return head + "".join(body) + "</svg>"


def _y_axis(top_value: float, plot_h: float, fmt: str = "money") -> list[str]:
    out = []
    for i in range(5):
        v = top_value * i / 4
        y = TOP + plot_h - plot_h * i / 4
        label = _money(v) if fmt == "money" else f"{v:.0f}"
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>'
                   f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#374151">{escape(label)}</text>')
    return out


def _x_labels(labels: Sequence[str], x_of: list[float]) -> list[str]:
    step = max(1, len(labels) // 8)
    out = []
    for i in range(0, len(labels), step):
        out.append(f'<text x="{x_of[i]:.1f}" y="{H - BOTTOM + 16}" text-anchor="middle" fill="#374151">'
                   f"{escape(labels[i][5:])}</text>")
    return out


def _lines(lines: Sequence[BudgetLine], top_value: float, plot_h: float) -> list[str]:
    out = []
    for b in lines:
        y = TOP + plot_h - plot_h * float(b.value) / top_value
        color = LINE_COLORS.get(b.kind, "#6b7280")
        out.append(f'<line class="budget-line" x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                   f'stroke="{color}" stroke-width="1.5" stroke-dasharray="6 4"/>'
                   f'<text x="{W - RIGHT + 4}" y="{y + 4:.1f}" fill="{color}">{escape(b.label)}</text>')
    return out


def stacked_bars(title: str, labels: Sequence[str], series: dict[str, list[Decimal]],
                 lines: Sequence[BudgetLine] = ()) -> str:
    """Bars per label stacked by series (spend per day by provider), with dashed budget lines."""
    n = max(1, len(labels))
    totals = [sum(float(vs[i]) for vs in series.values()) for i in range(len(labels))]
    top_value = nice_top(max([*totals, *(float(b.value) for b in lines), 0.0]))
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    slot = plot_w / n
    x_of = [LEFT + slot * (i + 0.5) for i in range(len(labels))]
    body = _y_axis(top_value, plot_h)
    base = [0.0] * len(labels)
    for k, (name, values) in enumerate(series.items()):
        color = PALETTE[k % len(PALETTE)]
        for i, v in enumerate(values):
            h = plot_h * float(v) / top_value
            if h <= 0:
                continue
            y = TOP + plot_h - base[i] - h
            body.append(f'<rect x="{x_of[i] - slot * 0.4:.1f}" y="{y:.1f}" width="{slot * 0.8:.1f}" '
                        f'height="{h:.1f}" fill="{color}"><title>{escape(labels[i])} {escape(name)}: '
                        f"${escape(str(v))}</title></rect>")
            base[i] += h
        x = LEFT + 130 * k  # the legend: one row under the axis
        body.append(f'<rect x="{x}" y="{H - 16}" width="10" height="10" fill="{color}"/>'
                    f'<text x="{x + 14}" y="{H - 7}">{escape(name[:18])}</text>')
    body += _lines(lines, top_value, plot_h)
    body += _x_labels(labels, x_of)
    return _frame(title, body)


def line_chart(title: str, labels: Sequence[str], values: Sequence[Decimal], lines: Sequence[BudgetLine] = ()) -> str:
    """One cumulative line (month-to-date spend) with dashed budget lines."""
    top_value = nice_top(max([*(float(v) for v in values), *(float(b.value) for b in lines), 0.0]))
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    n = max(1, len(labels))
    x_of = [LEFT + plot_w * (i + 0.5) / n for i in range(len(labels))]
    body = _y_axis(top_value, plot_h)
    points = " ".join(f"{x_of[i]:.1f},{TOP + plot_h - plot_h * float(v) / top_value:.1f}" for i, v in enumerate(values))
    body.append(f'<polyline points="{points}" fill="none" stroke="{PALETTE[0]}" stroke-width="2"/>')
    body += _lines(lines, top_value, plot_h)
    body += _x_labels(labels, x_of)
    return _frame(title, body)


def histogram(title: str, values: Sequence[float], bar: float, bins: int = 20) -> str:
    """Counts of ``values`` in ``bins`` equal bins from min(values, bar) to 1, with the bar marked."""
    low = min([*values, bar]) if values else bar
    low = max(-1.0, min(low, 0.99))
    bar = max(low, min(bar, 0.999))
    above = max(1, min(bins, round(bins * (1.0 - bar) / (1.0 - low))))  # bins at or above the bar
    width = (1.0 - bar) / above
    low = bar - width * (bins - above)  # the bar falls on a bin edge
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, max(0, int((v - low) / width + 1e-9)))] += 1
    top_value = float(4 * math.ceil(max(counts + [1]) * 1.1 / 4))  # whole-number ticks
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    slot = plot_w / bins
    body = _y_axis(top_value, plot_h, fmt="count")
    for i, c in enumerate(counts):
        h = plot_h * c / top_value
        lo = low + i * width
        color = "#16a34a" if lo >= bar - 1e-9 else "#f97316"
        body.append(f'<rect x="{LEFT + slot * i + 1:.1f}" y="{TOP + plot_h - h:.1f}" width="{slot - 2:.1f}" '
                    f'height="{h:.1f}" fill="{color}"><title>{lo:.3f}–{lo + width:.3f}: {c}</title></rect>')
    for i in range(0, bins + 1, max(1, bins // 5)):
        x = LEFT + slot * i
        body.append(f'<text x="{x:.1f}" y="{H - BOTTOM + 16}" text-anchor="middle">{low + i * width:.3f}</text>')
    x_bar = LEFT + plot_w * (bar - low) / (1.0 - low)
    body.append(f'<line x1="{x_bar:.1f}" x2="{x_bar:.1f}" y1="{TOP}" y2="{TOP + plot_h}" stroke="#dc2626" '
                f'stroke-dasharray="6 4"/><text x="{x_bar + 4:.1f}" y="{TOP + 10}" fill="#dc2626">bar {bar:g}</text>')
    return _frame(title, body)


__all__ = ["histogram", "line_chart", "stacked_bars"]
