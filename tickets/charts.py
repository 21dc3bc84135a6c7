"""The SLA attainment chart of the contract page: geometry and texts only (pure, no Django).

One small multiple per priority: for each month, two bars, the share of decided tickets answered in
time and the share resolved within the target (tickets.attainment's response_rate and
resolution_rate), on a 0-100% scale. A month in which no ticket of that priority was decided has no
rate: it is drawn as a dashed outline at the baseline and said in words, never as a 0% bar. The
table beside the chart (attainment_table) gives the same figures as counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from portal.domain import formats

from .attainment import Attainment

WIDTH, HEIGHT = 360, 170
LEFT, RIGHT, TOP, BOTTOM = 40, 6, 10, 24
NONE_HEIGHT = 8  # the dashed outline of a month without a rate
MIN_HEIGHT = 2  # a 0% bar still shows as a line on the baseline
CLOCKS = (
    ("response", "answered in time", "response_met", "response_missed", "response_pending"),
    ("resolution", "resolved within target", "resolution_met", "resolution_missed", "resolution_pending"),
)


def rate_text(rate: Decimal | None) -> str:
    """75.00 -> '75%', 66.67 -> '66.67%'."""
    if rate is None:
        return "—"
    return f"{formats.number(rate)}%"


def share(met: int, missed: int) -> Decimal | None:
    """The percentage met of the decided, rounded as Attainment's rates are."""
    return Attainment(None, "", response_met=met, response_missed=missed).response_rate


def share_text(met: int, missed: int, pending: int = 0) -> str:
    """A clock's figures in words: '3 of 4 (75%)', '3 of 4 (75%), 1 pending', 'none decided, 2
    pending'. '' when no ticket was counted at all."""
    decided = met + missed
    if decided:
        text = f"{met} of {decided} ({rate_text(share(met, missed))})"
    elif pending:
        text = "none decided"
    else:
        return ""
    return f"{text}, {pending} pending" if pending else text


def satisfaction_text(a: Attainment) -> str:
    """The filers' ratings in words: '8 good, 2 bad (80%) of 10 rated, 25 resolved', 'none rated, 3
    resolved', 'no ticket resolved'."""
    if not a.resolved:
        return "no ticket resolved"
    if not a.rated:
        return f"none rated, {a.resolved} resolved"
    good_bad = f"{a.rated_good} good, {a.rated_bad} bad ({rate_text(a.satisfaction_rate)})"
    return f"{good_bad} of {a.rated} rated, {a.resolved} resolved"


@dataclass(frozen=True)
class Bar:
    clock: str  # "response" or "resolution": the CSS class says which
    x: str
    y: str
    width: str
    height: str
    decided: bool  # False: no ticket decided, a dashed outline at the baseline
    title: str  # "October 2026, P1: 3 of 4 answered in time (75%)"


@dataclass(frozen=True)
class Slot:
    month: date
    label: str  # "Oct"
    label_x: str
    bars: tuple[Bar, ...]


@dataclass(frozen=True)
class PriorityChart:
    priority: str
    label: str  # "P1 – production incident"
    width: int
    height: int
    left: int
    right: int
    top: int
    baseline: str
    mid_y: str
    tick_x: int
    label_y: str
    slots: tuple[Slot, ...]
    filed: int  # tickets of this priority filed in the months shown
    decided: int  # ... whose response or resolution clock is decided

    @property
    def key(self) -> str:
        """A token for element ids ('P1', 'STD')."""
        return "".join(ch for ch in self.priority if ch.isalnum()) or "all"


def _y(rate: Decimal, plot_h: float) -> float:
    return TOP + float((Decimal(100) - rate) / Decimal(100)) * plot_h


def priority_chart(
    rows: Mapping[tuple[date, str], Attainment], *, priority: str, label: str, months: list[date]
) -> PriorityChart:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    base = TOP + plot_h
    slot_w = plot_w / max(len(months), 1)
    bar_w = slot_w * 0.36
    gap = slot_w * 0.06
    slots, filed, decided_total = [], 0, 0
    for i, month in enumerate(months):
        a = rows.get((month, priority))
        filed += a.filed if a else 0
        decided_total += int(bool(a and (a.response_met + a.response_missed + a.resolution_met + a.resolution_missed)))
        x0 = LEFT + i * slot_w + (slot_w - 2 * bar_w - gap) / 2
        bars = []
        for j, (clock, words, met_f, missed_f, pending_f) in enumerate(CLOCKS):
            met, missed, pending = (getattr(a, f) if a else 0 for f in (met_f, missed_f, pending_f))
            name = f"{month:%B %Y}, {label}"
            x = x0 + j * (bar_w + gap)
            if met + missed:
                rate = share(met, missed)
                top_y = min(_y(rate, plot_h), base - MIN_HEIGHT)
                title = f"{name}: {met} of {met + missed} {words} ({rate_text(rate)})"
                if pending:
                    title += f", {pending} pending"
                is_decided = True
            else:
                top_y = base - NONE_HEIGHT
                if pending:
                    title = f"{name}: none decided yet, {pending} pending"
                elif a and a.counted:
                    title = f"{name}: no ticket decided"
                elif a and a.excluded:
                    title = f"{name}: only tickets excluded from the SLA"
                else:
                    title = f"{name}: no tickets"
                is_decided = False
            bars.append(
                Bar(
                    clock=clock,
                    x=f"{x:.1f}",
                    y=f"{top_y:.1f}",
                    width=f"{bar_w:.1f}",
                    height=f"{base - top_y:.1f}",
                    decided=is_decided,
                    title=title,
                )
            )
        slots.append(Slot(month, f"{month:%b}", f"{LEFT + i * slot_w + slot_w / 2:.1f}", tuple(bars)))
    return PriorityChart(
        priority=priority,
        label=label,
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        right=WIDTH - RIGHT,
        top=TOP,
        baseline=f"{base:.1f}",
        mid_y=f"{_y(Decimal(50), plot_h):.1f}",
        tick_x=LEFT - 6,
        label_y=f"{base + 16:.1f}",
        slots=tuple(slots),
        filed=filed,
        decided=decided_total,
    )


def attainment_charts(
    rows: Mapping[tuple[date, str], Attainment], *, months: list[date], priorities: Iterable[tuple[str, str]]
) -> list[PriorityChart]:
    """One chart per (priority, label) of the contract's terms, then one per priority that only
    older tickets have (terms changed), in the order given."""
    wanted = list(priorities)
    known = {p for p, _ in wanted}
    extra = sorted({p for (_, p) in rows if p not in known})
    return [
        priority_chart(rows, priority=p, label=label, months=months) for p, label in [*wanted, *((p, p) for p in extra)]
    ]


# --- The table: the same figures as counts ----------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    response: str  # "3 of 4 (75%)", "none decided, 1 pending", "no tickets"
    resolution: str


@dataclass(frozen=True)
class TableRow:
    month: date
    cells: tuple[Cell, ...]  # one per chart, in the charts' order
    excluded: int  # tickets excluded from the SLA that month (every priority)


def attainment_table(
    rows: Mapping[tuple[date, str], Attainment], *, months: list[date], charts: list[PriorityChart]
) -> list[TableRow]:
    out = []
    for month in months:
        cells, excluded = [], 0
        for chart in charts:
            a = rows.get((month, chart.priority))
            if a is None or not a.counted:
                empty = "excluded only" if a and a.excluded else "no tickets"
                cells.append(Cell(empty, empty))
            else:
                cells.append(
                    Cell(
                        share_text(a.response_met, a.response_missed, a.response_pending),
                        share_text(a.resolution_met, a.resolution_missed, a.resolution_pending),
                    )
                )
            excluded += a.excluded if a else 0
        out.append(TableRow(month, tuple(cells), excluded))
    return out
