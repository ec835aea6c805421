"""SVG charts for the HTML report, rendered in Python: no script, font or request to view them.

Each chart is a self-contained `<svg>` string sized by its viewBox (it scales with the page).
Every data mark carries `class="mark"` and a `<title>` (the browser's tooltip), and every text
that comes from data is escaped here, so a key or a name from the API cannot inject markup.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 720, 230
LEFT, RIGHT, TOP, BOTTOM = 46, 12, 14, 30
GRID, AXIS_TEXT = "#e6e8ee", "#6b7280"


@dataclass(frozen=True)
class Series:
    """One named series of a chart: a value per x label (None = no data, drawn as a gap)."""

    name: str
    values: Sequence[float | None]
    color: str


def _nice_ceiling(value: float) -> float:
    """A round number ≥ value for the top of an axis (1, 2, 2.5 or 5 × a power of ten)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def _number(value: float) -> str:
    if value >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 1 else f"{value:.2f}"


def _frame(top: float, unit: str) -> list[str]:
    """Horizontal grid lines with their values, at 0, ¼, ½, ¾ and the top."""
    parts = []
    plot_h = HEIGHT - TOP - BOTTOM
    for i in range(5):
        value = top * i / 4
        y = TOP + plot_h * (1 - i / 4)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="{AXIS_TEXT}">{escape(_number(value) + unit)}</text>'
        )
    return parts


def _x_labels(labels: Sequence[str], slot: float) -> list[str]:
    every = max(1, math.ceil(len(labels) / 10))
    parts = []
    for i, label in enumerate(labels):
        if i % every == 0:
            x = LEFT + slot * (i + 0.5)
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - 10}" text-anchor="middle" font-size="11" '
                f'fill="{AXIS_TEXT}">{escape(label)}</text>'
            )
    return parts


def _shade(shade: Sequence[bool], slot: float) -> list[str]:
    """A hatched band behind each slot marked True (a partial week), with its tooltip."""
    parts = []
    for i, marked in enumerate(shade):
        if marked:
            x = LEFT + slot * i
            parts.append(
                f'<rect class="partial" x="{x:.1f}" y="{TOP}" width="{slot:.1f}" '
                f'height="{HEIGHT - TOP - BOTTOM}" fill="url(#partial)">'
                "<title>partial week: not wholly inside the data</title></rect>"
            )
    if parts:
        parts.insert(
            0,
            '<defs><pattern id="partial" width="6" height="6" patternUnits="userSpaceOnUse" '
            'patternTransform="rotate(45)"><rect width="6" height="6" fill="#f6f7fb"/>'
            '<line x1="0" y1="0" x2="0" y2="6" stroke="#dfe3ec" stroke-width="3"/></pattern>'
            "</defs>",
        )
    return parts


def _svg(body: list[str], label: str) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        + "".join(body)
        + "</svg>"
    )


def legend(series: Sequence[Series]) -> str:
    """An HTML legend (chips and names) for the series of a chart."""
    items = "".join(
        f'<span class="key"><i style="background:{s.color}"></i>{escape(s.name)}</span>'
        for s in series
    )
    return f'<div class="legend">{items}</div>'


def stacked_bars(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    label: str,
    shade: Sequence[bool] = (),
) -> str:
    """Vertical bars, one per label, each stacking the series' values (None counts as 0).

    `shade` marks labels whose slot is drawn hatched (partial weeks).
    """
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(labels))]
    top = _nice_ceiling(max(totals, default=0))
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(labels))
    bar_w = max(2.0, slot * 0.72)
    body = _shade(shade, slot) + _frame(top, "")
    for i, name in enumerate(labels):
        base = 0.0
        x = LEFT + slot * i + (slot - bar_w) / 2
        for s in series:
            value = s.values[i] or 0
            if value <= 0:
                continue
            h = plot_h * value / top
            y = TOP + plot_h * (1 - (base + value) / top)
            body.append(
                f'<rect class="mark" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{s.color}" rx="1.5">'
                f"<title>{escape(f'{name}: {_number(value)} {s.name}')}</title></rect>"
            )
            base += value
    body += _x_labels(labels, slot)
    return _svg(body, label)


def lines(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    label: str,
    unit: str = "",
    shade: Sequence[bool] = (),
) -> str:
    """One line per series with a dot per value; a None breaks the line (no data that week).

    `shade` marks labels whose slot is drawn hatched (partial weeks).
    """
    values = [v for s in series for v in s.values if v is not None]
    top = _nice_ceiling(max(values, default=0))
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(labels))
    body = _shade(shade, slot) + _frame(top, unit)
    for s in series:
        points: list[tuple[float, float, int]] = []
        segments: list[list[tuple[float, float, int]]] = [points]
        for i, value in enumerate(s.values):
            if value is None:
                points = []
                segments.append(points)
                continue
            points.append((LEFT + slot * (i + 0.5), TOP + plot_h * (1 - value / top), i))
        for segment in segments:
            if len(segment) > 1:
                path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in segment)
                body.append(
                    f'<polyline points="{path}" fill="none" stroke="{s.color}" '
                    f'stroke-width="2" stroke-linejoin="round"/>'
                )
            for x, y, i in segment:
                text = f"{labels[i]}: {_number(s.values[i] or 0)}{unit} {s.name}"
                body.append(
                    f'<circle class="mark" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{s.color}">'
                    f"<title>{escape(text)}</title></circle>"
                )
    body += _x_labels(labels, slot)
    return _svg(body, label)


def diverging_bars(labels: Sequence[str], up: Series, down: Series, *, label: str) -> str:
    """Bars above the axis for `up`, below it for `down` (e.g. references added / removed)."""
    top = _nice_ceiling(max([v or 0 for v in (*up.values, *down.values)], default=0))
    plot_h = HEIGHT - TOP - BOTTOM
    middle = TOP + plot_h / 2
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(labels))
    bar_w = max(2.0, slot * 0.72)
    body = []
    for fraction, text in ((0.0, f"{_number(top)}"), (0.5, "0"), (1.0, f"−{_number(top)}")):
        y = TOP + plot_h * fraction
        body.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="{AXIS_TEXT}">{escape(text)}</text>'
        )
    for i, name in enumerate(labels):
        x = LEFT + slot * i + (slot - bar_w) / 2
        for s, sign in ((up, -1), (down, 1)):
            value = s.values[i] or 0
            if value <= 0:
                continue
            h = (plot_h / 2) * value / top
            y = middle - h if sign < 0 else middle
            body.append(
                f'<rect class="mark" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{s.color}" rx="1.5">'
                f"<title>{escape(f'{name}: {_number(value)} {s.name}')}</title></rect>"
            )
    body += _x_labels(labels, slot)
    return _svg(body, label)


def funnel(
    phases: Sequence[str], reached: Sequence[int], active: Sequence[int], total: int, *, label: str
) -> str:
    """Horizontal bars per phase: releases that reached it, and those active in it now."""
    row_h, gap, name_w = 26, 8, 190
    height = TOP + len(phases) * (row_h + gap) + 4
    plot_w = WIDTH - name_w - 70
    body = []
    for i, phase in enumerate(phases):
        y = TOP + i * (row_h + gap)
        share = reached[i] / total if total else 0.0
        w_reached = plot_w * share
        w_active = plot_w * (active[i] / total if total else 0.0)
        body.append(
            f'<text x="{name_w - 8}" y="{y + row_h / 2 + 4:.1f}" text-anchor="end" '
            f'font-size="12" fill="#374151">{escape(phase)}</text>'
            f'<rect x="{name_w}" y="{y}" width="{plot_w}" height="{row_h}" fill="#f1f3f8" rx="3"/>'
            f'<rect class="mark" x="{name_w}" y="{y}" width="{w_reached:.1f}" height="{row_h}" '
            f'fill="#7c9cf5" rx="3"><title>{escape(f"{phase}: {reached[i]} of {total} reached")}'
            f"</title></rect>"
            f'<rect class="mark" x="{name_w}" y="{y + 6}" width="{w_active:.1f}" '
            f'height="{row_h - 12}" fill="#2947a9" rx="2">'
            f"<title>{escape(f'{phase}: {active[i]} active now')}</title></rect>"
            f'<text x="{name_w + plot_w + 8}" y="{y + row_h / 2 + 4:.1f}" font-size="12" '
            f'fill="#374151">{share:.0%}</text>'
        )
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        + "".join(body)
        + "</svg>"
    )
