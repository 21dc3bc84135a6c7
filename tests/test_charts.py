"""The SLA attainment chart's geometry and texts (tickets.charts, pure): bar heights follow the
rates on a 0-100% scale, a month without a decided ticket is an outline and never a 0% bar, and the
table says the same figures in words."""

from datetime import date
from decimal import Decimal

from tickets.attainment import Attainment
from tickets.charts import (
    BOTTOM,
    HEIGHT,
    LEFT,
    MIN_HEIGHT,
    NONE_HEIGHT,
    RIGHT,
    TOP,
    WIDTH,
    attainment_charts,
    attainment_table,
    priority_chart,
    rate_text,
    share_text,
)

SEP, OCT, NOV = date(2026, 9, 1), date(2026, 10, 1), date(2026, 11, 1)
MONTHS = [SEP, OCT, NOV]
PLOT_H = HEIGHT - TOP - BOTTOM
BASE = TOP + PLOT_H


def row(month, priority="P1", **counts) -> Attainment:
    counts.setdefault(
        "filed",
        sum(counts.get(k, 0) for k in ("response_met", "response_missed", "response_pending"))
        + counts.get("excluded", 0),
    )
    return Attainment(month, priority, **counts)


def test_bar_heights_follow_the_rates_on_a_0_to_100_scale():
    rows = {
        (SEP, "P1"): row(SEP, response_met=4, resolution_met=2, resolution_missed=2),
        (OCT, "P1"): row(OCT, response_met=1, response_missed=3, resolution_met=1, resolution_missed=3),
    }
    chart = priority_chart(rows, priority="P1", label="P1 – production incident", months=MONTHS)
    assert (chart.width, chart.height) == (WIDTH, HEIGHT)
    sep, oct_, nov = chart.slots
    response, resolution = sep.bars
    assert (response.clock, resolution.clock) == ("response", "resolution")
    assert float(response.y) == TOP and float(response.height) == PLOT_H  # 100%
    assert float(resolution.height) == PLOT_H / 2  # 50%
    assert float(oct_.bars[0].height) == PLOT_H / 4  # 25%
    # Every bar stands on the baseline and inside the plot.
    for slot in chart.slots:
        for bar in slot.bars:
            assert abs(float(bar.y) + float(bar.height) - BASE) < 0.11
            assert float(bar.x) >= LEFT and float(bar.x) + float(bar.width) <= WIDTH - RIGHT
    assert [s.label for s in chart.slots] == ["Sep", "Oct", "Nov"]
    assert float(chart.mid_y) == TOP + PLOT_H / 2
    assert response.title == "September 2026, P1 – production incident: 4 of 4 answered in time (100%)"
    assert oct_.bars[1].title == "October 2026, P1 – production incident: 1 of 4 resolved within target (25%)"
    assert chart.filed == 8


def test_a_month_with_nothing_decided_is_an_outline_never_a_0_percent_bar():
    rows = {
        (SEP, "P1"): row(SEP, response_missed=2, resolution_missed=2),  # 0%: a real figure
        (OCT, "P1"): row(OCT, response_pending=1, resolution_pending=1),  # filed, nothing decided yet
        (NOV, "P1"): row(NOV, excluded=1),  # only an excluded ticket
    }
    chart = priority_chart(rows, priority="P1", label="P1", months=MONTHS)
    sep, oct_, nov = chart.slots
    zero = sep.bars[0]
    assert zero.decided and float(zero.height) == MIN_HEIGHT
    assert zero.title == "September 2026, P1: 0 of 2 answered in time (0%)"
    for bar in oct_.bars + nov.bars:
        assert not bar.decided and float(bar.height) == NONE_HEIGHT
    assert oct_.bars[0].title == "October 2026, P1: none decided yet, 1 pending"
    assert nov.bars[0].title == "November 2026, P1: only tickets excluded from the SLA"
    empty = priority_chart({}, priority="P2", label="P2", months=MONTHS)
    assert empty.filed == 0 and all(b.title.endswith(": no tickets") for s in empty.slots for b in s.bars)


def test_one_chart_per_priority_of_the_terms_then_any_other_a_ticket_has():
    rows = {(OCT, "P1"): row(OCT, response_met=1), (OCT, "STD"): row(OCT, "STD", response_met=1)}
    charts = attainment_charts(rows, months=MONTHS, priorities=[("P1", "P1 – production"), ("P2", "P2 – major")])
    assert [(c.priority, c.label, c.key) for c in charts] == [
        ("P1", "P1 – production", "P1"),
        ("P2", "P2 – major", "P2"),
        ("STD", "STD", "STD"),
    ]
    assert attainment_charts({}, months=[], priorities=[("P1", "P1")])[0].slots == ()


def test_the_table_gives_the_same_figures_as_counts():
    rows = {
        (SEP, "P1"): row(
            SEP, response_met=2, response_missed=1, resolution_met=1, resolution_missed=1, resolution_pending=1
        ),
        (OCT, "P2"): row(OCT, "P2", response_pending=2, resolution_pending=2, excluded=1),
        (NOV, "P1"): row(NOV, excluded=2),
    }
    charts = attainment_charts(rows, months=MONTHS, priorities=[("P1", "P1"), ("P2", "P2")])
    table = attainment_table(rows, months=MONTHS, charts=charts)
    assert [r.month for r in table] == MONTHS
    sep, oct_, nov = table
    assert (sep.cells[0].response, sep.cells[0].resolution) == ("2 of 3 (66.67%)", "1 of 2 (50%), 1 pending")
    assert (sep.cells[1].response, sep.cells[1].resolution) == ("no tickets", "no tickets")
    assert oct_.cells[1].response == "none decided, 2 pending" and oct_.excluded == 1
    assert nov.cells[0].response == "excluded only" and nov.excluded == 2


def test_texts():
    assert rate_text(Decimal("75.00")) == "75%"
    assert rate_text(Decimal("100.00")) == "100%"
    assert rate_text(Decimal("66.67")) == "66.67%"
    assert rate_text(None) == "—"
    assert share_text(0, 0) == ""
    assert share_text(0, 0, 3) == "none decided, 3 pending"
    assert share_text(3, 1) == "3 of 4 (75%)"
    assert share_text(1, 2, 1) == "1 of 3 (33.33%), 1 pending"
