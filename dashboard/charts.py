"""A stacked bar chart as plain numbers for an inline SVG: no library, no JavaScript."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 40, 8, 10, 24
TIER_COLORS = {
    "basic": "#7a73ff",
    "pro": "#0a9396",
    "studio": "#ee9b00",
    "vocal_remover": "#ca6702",
}


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    color: str
    title: str


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class DayLabel:
    x: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    ticks: list[Tick]
    days: list[DayLabel]
    legend: list[tuple[str, str, str]]  # tier, color, total minutes as shown
    total: str
    plot_left: int
    plot_right: int
    baseline: float


def _nice_ceiling(value: float) -> float:
    """The next 1, 2 or 5 × 10^n at or above `value`, so gridlines fall on round numbers."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _minutes(value: float) -> str:
    """Minutes with the precision a reader needs: 120, 4.5, 0.03."""
    if value >= 10:
        return f"{value:.0f}"
    return f"{value:.2f}".rstrip("0").rstrip(".") if value < 1 else f"{value:.1f}".rstrip("0.")


def minutes_chart(
    *, minutes: dict[tuple[date, str], float], first_day: date, days: int, tiers: tuple[str, ...]
) -> Chart:
    """Stacked bars of minutes per day, one colour per tier, oldest day on the left."""
    dates = [first_day + timedelta(days=i) for i in range(days)]
    per_day = [sum(minutes.get((day, tier), 0.0) for tier in tiers) for day in dates]
    # Four gridline steps of a round size, so every label is a round number.
    top = 4 * _nice_ceiling(max(per_day, default=0) / 4)
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    slot = plot_w / days
    bar_w = max(2.0, slot * 0.7)
    baseline = TOP + plot_h
    bars = []
    for i, day in enumerate(dates):
        y: float = baseline
        for tier in tiers:
            value = minutes.get((day, tier), 0.0)
            if value <= 0:
                continue
            h = value / top * plot_h
            y -= h
            bars.append(
                Bar(
                    x=round(LEFT + i * slot + (slot - bar_w) / 2, 2),
                    y=round(y, 2),
                    width=round(bar_w, 2),
                    height=round(max(h, 1.0), 2),
                    color=TIER_COLORS.get(tier, "#888"),
                    title=f"{day:%b %-d} · {tier}: {_minutes(value)} min",
                )
            )
    ticks = [
        Tick(y=round(baseline - f * plot_h, 2), label=_minutes(top * f))
        for f in (0, 0.25, 0.5, 0.75, 1)
    ]
    step = max(1, days // 6)
    labels = [
        DayLabel(x=round(LEFT + i * slot + slot / 2, 2), label=f"{day:%b %-d}")
        for i, day in enumerate(dates)
        if (days - 1 - i) % step == 0
    ]
    totals = {t: sum(minutes.get((d, t), 0.0) for d in dates) for t in tiers}
    legend = [(t, TIER_COLORS.get(t, "#888"), _minutes(totals[t])) for t in tiers]
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        bars=bars,
        ticks=ticks,
        days=labels,
        legend=legend,
        total=_minutes(sum(totals.values())),
        plot_left=LEFT,
        plot_right=WIDTH - RIGHT,
        baseline=baseline,
    )
