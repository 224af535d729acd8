"""The server-drawn charts: pure functions from counts to SVG and tables."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date

import pytest

from idp.console.charts import (
    Chart,
    DayCount,
    Series,
    day_range,
    legend,
    refusal_rate,
    svg,
    verifications_per_agency,
)

SVG = "{http://www.w3.org/2000/svg}"
DAYS = day_range(date(2026, 1, 30), date(2026, 2, 2))


def test_every_day_of_the_span_is_a_point_even_a_quiet_one() -> None:
    assert DAYS == ("2026-01-30", "2026-01-31", "2026-02-01", "2026-02-02")
    chart = verifications_per_agency(
        "v", DAYS, [DayCount("2026-01-31", "bank", 5, 1)], others="others"
    )
    assert chart.series == (Series("bank", (0.0, 5.0, 0.0, 0.0)),)
    assert chart.rows()[1] == ("2026-01-31", ["5"])


def test_agencies_beyond_the_busiest_are_summed_as_others() -> None:
    counts = [DayCount(DAYS[0], f"agency-{n}", 10 + n, 0) for n in range(8)]
    chart = verifications_per_agency("v", DAYS, counts, top=3, others="others")
    assert [s.label for s in chart.series] == ["agency-7", "agency-6", "agency-5", "others"]
    assert chart.series[-1].values[0] == sum(10 + n for n in range(5))


def test_refusal_rate_is_refused_over_all_verifications_per_day() -> None:
    counts = [
        DayCount(DAYS[0], "bank", 8, 2),
        DayCount(DAYS[0], "telecom", 2, 0),
        DayCount(DAYS[1], "bank", 4, 4),
    ]
    chart = refusal_rate("r", DAYS, counts, "refused")
    assert chart.series[0].values == (20.0, 100.0, 0.0, 0.0)
    assert chart.percent and chart.rows()[0] == (DAYS[0], ["20.0%"])


@pytest.mark.parametrize(
    "hostile",
    [
        "</text><script>alert(1)</script>",
        '"><foreignObject><iframe src="javascript:alert(1)"/></foreignObject>',
        "]]><!ENTITY x 'y'>&x;",
        "<title onload=alert(1)>",
    ],
)
def test_attack_an_agency_name_stays_text_in_the_svg(hostile: str) -> None:
    chart = verifications_per_agency(hostile, DAYS, [DayCount(DAYS[0], hostile, 3, 1)], others="o")
    drawn = str(svg(chart, chart_id="c"))
    assert "<script" not in drawn and "<foreignObject" not in drawn and "<iframe" not in drawn
    root = ET.fromstring(drawn)  # well-formed: the name did not break out of its element
    texts = [el.text for el in root.iter(f"{SVG}title")]
    assert texts == [hostile, hostile]  # the chart's title and the series' tooltip, verbatim
    assert {el.tag for el in root.iter()} <= {
        f"{SVG}{tag}" for tag in ("svg", "title", "line", "text", "polyline")
    }


def test_a_chart_in_persian_runs_time_from_right_to_left() -> None:
    chart = Chart("c", ("2026-01-01", "2026-01-02"), (Series("s", (1.0, 2.0)),))

    def first_point(rtl: bool) -> float:
        root = ET.fromstring(str(svg(chart, chart_id="c", rtl=rtl)))
        line = next(root.iter(f"{SVG}polyline"))
        return float(line.attrib["points"].split()[0].split(",")[0])

    assert first_point(rtl=True) > first_point(rtl=False)


def test_the_y_axis_rounds_up_and_an_empty_chart_still_draws() -> None:
    chart = Chart("c", DAYS, (Series("s", (0.0, 170.0, 3.0, 0.0)),))
    labels = [el.text for el in ET.fromstring(str(svg(chart, chart_id="c"))).iter(f"{SVG}text")]
    assert "200" in labels and "170" not in labels
    empty = Chart("c", (), ())
    assert ET.fromstring(str(svg(empty, chart_id="e"))).tag == f"{SVG}svg"
    assert legend(chart) == [("#0072B2", "s")]
