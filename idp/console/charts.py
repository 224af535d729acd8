"""Charts for the auditors' pages: SVG drawn on the server, no script (issue 15).

Pure functions: counts in, a chart (its SVG and the same figures as a table
for screen readers) out. Every label reaches the SVG through
:func:`markupsafe.escape`: agency names are chosen by whoever registers a
client, so a name such as ``</text><script>`` must stay text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 28
# Okabe-Ito: told apart with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")


@dataclass(frozen=True)
class Series:
    label: str
    values: tuple[float, ...]


@dataclass(frozen=True)
class Chart:
    """One chart: x labels (days), its series, and how a value is written."""

    title: str
    days: tuple[str, ...]
    series: tuple[Series, ...]
    percent: bool = False

    def value_text(self, value: float) -> str:
        return f"{value:.1f}%" if self.percent else f"{value:,.0f}"

    def rows(self) -> list[tuple[str, list[str]]]:
        """The table beside the chart: one row per day, one column per series."""
        return [
            (day, [self.value_text(s.values[i]) for s in self.series])
            for i, day in enumerate(self.days)
        ]


@dataclass(frozen=True)
class DayCount:
    day: str  # YYYY-MM-DD
    agency: str
    total: int
    refused: int


def day_range(first: date, last: date) -> tuple[str, ...]:
    """Every day from ``first`` to ``last`` inclusive, so that empty days show as zero."""
    count = max(0, (last - first).days + 1)
    return tuple((first + timedelta(days=n)).isoformat() for n in range(count))


def verifications_per_agency(
    title: str, days: Sequence[str], counts: Iterable[DayCount], *, top: int = 6, others: str
) -> Chart:
    """Verifications per day of the ``top`` busiest agencies; the rest summed as ``others``."""
    per_agency: dict[str, dict[str, int]] = {}
    for count in counts:
        per_agency.setdefault(count.agency, {})
        per_agency[count.agency][count.day] = (
            per_agency[count.agency].get(count.day, 0) + count.total
        )
    ranked = sorted(per_agency, key=lambda a: (-sum(per_agency[a].values()), a))
    series = [
        Series(agency, tuple(float(per_agency[agency].get(d, 0)) for d in days))
        for agency in ranked[:top]
    ]
    rest = ranked[top:]
    if rest:
        series.append(
            Series(
                others,
                tuple(float(sum(per_agency[a].get(d, 0) for a in rest)) for d in days),
            )
        )
    return Chart(title, tuple(days), tuple(series))


def refusal_rate(title: str, days: Sequence[str], counts: Iterable[DayCount], label: str) -> Chart:
    """Refused verifications as a percentage of all verifications, per day (0 on a quiet day)."""
    totals: dict[str, int] = {}
    refused: dict[str, int] = {}
    for count in counts:
        totals[count.day] = totals.get(count.day, 0) + count.total
        refused[count.day] = refused.get(count.day, 0) + count.refused
    values = tuple(100.0 * refused.get(d, 0) / totals[d] if totals.get(d) else 0.0 for d in days)
    return Chart(title, tuple(days), (Series(label, values),), percent=True)


def _scale(top: float) -> float:
    """A round upper bound for the y axis (1, 2 or 5 times a power of ten)."""
    if top <= 0:
        return 1.0
    power = 1.0
    while power * 10 <= top:
        power *= 10
    while power > top:
        power /= 10
    for step in (1, 2, 5, 10):
        if step * power >= top:
            return step * power
    return 10 * power


def svg(chart: Chart, *, chart_id: str, rtl: bool = False) -> Markup:
    """The chart as an inline SVG line chart; ``rtl`` runs time from right to left."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = (
        100.0
        if chart.percent
        else _scale(max((max(s.values, default=0) for s in chart.series), default=0))
    )
    count = len(chart.days)

    def x(i: int) -> float:
        fraction = i / (count - 1) if count > 1 else 0.5
        return LEFT + plot_w * ((1 - fraction) if rtl else fraction)

    def y(value: float) -> float:
        return TOP + plot_h * (1 - min(value, top) / top)

    title_id = f"{chart_id}-title"
    parts: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-labelledby="{escape(title_id)}" class="chart" id="{escape(chart_id)}">',
        f'<title id="{escape(title_id)}">{escape(chart.title)}</title>',
    ]
    for tick in range(5):
        value = top * tick / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            'stroke="#ccc" stroke-width="1"/>'
            f'<text x="{LEFT - 4}" y="{y(value) + 4:.1f}" text-anchor="end" font-size="11">'
            f"{escape(chart.value_text(value))}</text>"
        )
    for i in _label_positions(count):
        parts.append(
            f'<text x="{x(i):.1f}" y="{HEIGHT - 8}" text-anchor="middle" font-size="11">'
            f"{escape(chart.days[i][5:])}</text>"
        )
    for number, series in enumerate(chart.series):
        colour = PALETTE[number % len(PALETTE)]
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(series.values))
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}">'
            f"<title>{escape(series.label)}</title></polyline>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every label and number escaped above)


def legend(chart: Chart) -> list[tuple[str, str]]:
    """(colour, label) per series, for the legend the page writes in HTML."""
    return [(PALETTE[n % len(PALETTE)], s.label) for n, s in enumerate(chart.series)]


def _label_positions(count: int, most: int = 7) -> list[int]:
    if count <= 0:
        return []
    step = max(1, -(-count // most))
    return list(range(0, count, step))
