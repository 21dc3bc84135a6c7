"""A contract-month's figures: closed (a MonthlyUptime row) or computed live from the same
credits.closing.contract_month the month-end run uses (never a second copy of the arithmetic), with
the lines of its breakdown (each outage and maintenance window as it counted); for one contract or,
in a fixed number of queries, for many (the customer dashboard)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db.models import Q

from contracts.choices import Cause, CreditKind
from contracts.maintenance.judging import service_ids
from contracts.maintenance.selectors import WindowPart, contracts_maintenance_parts
from contracts.models import Contract, MaintenanceWindow, Outage
from contracts.selectors import Versions
from portal.domain.dates import last_day, local_month
from portal.domain.intervals import clip
from portal.domain.uptime import MINUTE

from .closing import OUTAGE_COLUMNS, OutageSpan, contract_month, contract_period, outage_spans, text_ids, unpack
from .models import MonthlyUptime


def not_covered(contract: Contract, month: date) -> str:
    """Why the contract has no figures for the month, or '' where it ran in it."""
    if contract.starts_on > last_day(month):
        return f"The contract had not started in {month:%B %Y}."
    if contract.ends_on is not None and contract.ends_on < month:
        return f"The contract had ended before {month:%B %Y}."
    return ""


# --- What a month looks like --------------------------------------------------------------------
@dataclass(frozen=True)
class BreakdownLine:
    """One outage or maintenance window of a month, as it counted for the contract."""

    kind: str  # "outage" or "maintenance"
    title: str
    cause: str  # the outage's cause code; "" for maintenance
    cause_label: str
    start: datetime | None
    end: datetime | None
    ongoing: bool
    down_minutes: int
    excluded_minutes: int
    reason: str
    id: int | None = None  # the outage's or the window's


@dataclass(frozen=True)
class MonthFigures:
    """A contract-month's figures: closed (a MonthlyUptime row), or computed live (the current
    month so far; an ended month that the hourly run has not closed yet)."""

    CLOSED = "closed"
    SO_FAR = "so_far"
    NOT_CLOSED = "not_closed"

    month: date
    state: str
    timezone: str
    period_start: datetime
    period_end: datetime
    total_minutes: int
    elapsed_minutes: int
    down_minutes: int
    excluded_minutes: int
    uptime_percent: Decimal
    guarantee: Decimal
    tier_percent: Decimal | None
    credit_amount: Decimal | None
    currency: str
    credit_kind: str
    flagged: bool
    closed_at: datetime | None
    as_of: datetime | None
    lines: tuple[BreakdownLine, ...]

    @property
    def below_guarantee(self) -> bool:
        return self.uptime_percent < self.guarantee

    @property
    def credit_kind_label(self) -> str:
        return CreditKind(self.credit_kind).label if self.credit_kind in CreditKind.values else self.credit_kind


@dataclass(frozen=True)
class LineDetails:
    """What the outages and windows a breakdown names say about themselves (the stored breakdown
    keeps only ids and minutes: credits.closing)."""

    outages: dict[int, tuple[str, str, datetime, datetime | None]]  # id: title, cause, start, end
    windows: dict[int, tuple[str, datetime, datetime]]  # id: title, start, end


def _parts(breakdown) -> tuple[list, list]:
    """(outage lines, maintenance lines) of a stored breakdown (closing.pack); none for an empty one."""
    if not isinstance(breakdown, dict):
        return [], []
    return unpack(breakdown.get("outages") or ""), unpack(breakdown.get("maintenance") or "")


def line_details(breakdowns: Iterable[dict]) -> LineDetails:
    """The details of every outage and window the breakdowns name: one query for the outages and
    one for the windows, or none where there are none to read. Outages that live figures carry
    (closing.Breakdown.spans: as they stood when computed) are not read again."""
    outages: dict[int, tuple[str, str, datetime, datetime | None]] = {}
    outage_ids, window_ids = set(), set()
    for bd in breakdowns:
        lines, windows = _parts(bd)
        spans = getattr(bd, "spans", {})
        for oid, *_ in lines:
            if oid in spans:
                o = spans[oid]
                outages[oid] = (o.title, o.cause, o.start, o.end)
            else:
                outage_ids.add(oid)
        window_ids.update(wid for wid, *_ in windows)
    outage_ids -= outages.keys()
    if outage_ids:
        rows = Outage.objects.filter(pk__in=outage_ids).values_list("pk", "title", "cause", "starts_at", "ends_at")
        outages.update((pk, (title, cause, s, e)) for pk, title, cause, s, e in rows)
    windows = {}
    if window_ids:
        rows = MaintenanceWindow.objects.filter(pk__in=window_ids).values_list("pk", "title", "starts_at", "ends_at")
        windows = {pk: (title, s, e) for pk, title, s, e in rows}
    return LineDetails(outages, windows)


def _maintenance_reason(kept: int, counted: int) -> str:
    if not counted:
        return "Within the maintenance rules: excluded"
    if not kept:
        return "Outside the maintenance rules (notice, off-peak hours or annual cap): counted as downtime"
    return "Partly within the maintenance rules: the rest counts as downtime"


def _lines(breakdown: dict, details: LineDetails, *, as_of: datetime | None = None) -> tuple[BreakdownLine, ...]:
    """A stored breakdown as lines: the minutes as the month counted them; titles, causes and times
    as `details` has them. An outage with no end yet (or, live, one running at `as_of`) is
    ongoing."""
    outage_lines, window_lines = _parts(breakdown)
    lines = []
    for oid, minutes, excluded in outage_lines:
        title, cause, start, end = details.outages.get(oid) or (f"Outage {oid} (deleted)", "", None, None)
        label = Cause(cause).label if cause in Cause.values else cause
        lines.append(
            BreakdownLine(
                kind="outage",
                title=title,
                cause=cause,
                cause_label=label,
                start=start,
                end=end,
                ongoing=start is not None and (end is None or (as_of is not None and end >= as_of)),
                down_minutes=0 if excluded else minutes,
                excluded_minutes=minutes if excluded else 0,
                reason=(f"Excluded: {label}" if label else "Excluded") if excluded else "Counted as downtime",
                id=oid,
            )
        )
    for wid, kept, counted in window_lines:
        title, start, end = details.windows.get(wid) or (f"Maintenance window {wid} (deleted)", None, None)
        lines.append(
            BreakdownLine(
                kind="maintenance",
                title=title,
                cause="",
                cause_label="Scheduled maintenance",
                start=start,
                end=end,
                ongoing=False,
                down_minutes=counted,
                excluded_minutes=kept,
                reason=_maintenance_reason(kept, counted),
                id=wid,
            )
        )
    return tuple(lines)


def breakdown_lines(*, row: MonthlyUptime) -> tuple[BreakdownLine, ...]:
    """A closed month's breakdown lines (the admin's month and claim pages): at most two queries."""
    return _lines(row.breakdown, line_details([row.breakdown]))


def figures_of_row(row: MonthlyUptime, details: LineDetails) -> MonthFigures:
    return MonthFigures(
        month=row.month,
        state=MonthFigures.CLOSED,
        timezone=row.sla_version.timezone,
        period_start=row.period_start,
        period_end=row.period_end,
        total_minutes=row.total_minutes,
        elapsed_minutes=row.total_minutes,
        down_minutes=row.down_minutes,
        excluded_minutes=row.excluded_minutes,
        uptime_percent=row.uptime_percent,
        guarantee=row.guarantee,
        tier_percent=row.tier_percent,
        credit_amount=row.credit_amount,
        currency=row.currency,
        credit_kind=row.credit_kind,
        flagged=row.flagged,
        closed_at=row.closed_at,
        as_of=None,
        lines=_lines(row.breakdown, details),
    )


# --- Live figures -------------------------------------------------------------------------------
def _contract_outages(sids: list[int], lo: datetime, hi: datetime, now: datetime) -> list[OutageSpan]:
    """The outages of the contract's services overlapping [lo, hi), what is still to come cut at
    `now`: one query (closing._outages loads every service's, which a run over all contracts needs),
    and one more only where an outage has a scope or an impact other than major."""
    rows = (
        Outage.objects.filter(services__in=sids, starts_at__lt=hi)
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=lo))
        .values_list(*OUTAGE_COLUMNS)
    )
    return outage_spans(rows, lambda end: now if end is None or end > now else end)


def _downtime_windows(sids: list[int], lo: datetime, hi: datetime) -> bool:
    """Whether any scheduled downtime window of these services overlaps [lo, hi): one query, so
    the maintenance rules are judged only for a month that has one (the common case has none)."""
    return MaintenanceWindow.objects.filter(
        services__in=sids,
        starts_at__lt=hi,
        ends_at__gt=lo,
        status=MaintenanceWindow.Status.SCHEDULED,
        impact=MaintenanceWindow.Impact.DOWNTIME,
    ).exists()


def _live(
    contract: Contract, month: date, versions: Versions, now: datetime, state: str, invoice=None, services=None
) -> MonthFigures | None:
    """contract_month for `month` as it stands at `now`: what has not happened yet (the rest of an
    ongoing outage, a maintenance window still to come) is not downtime yet. None where no SLA
    version is in force at the month's end. `invoice` and `services`: a reopened month's own
    ((amount, currency), service ids)."""
    version = versions.of_month(contract.sla_id, month)  # contract_month's: its period, in its zone
    if version is None:
        return None
    start, end = contract_period(contract, month, versions)
    until = min(end, now)
    sids = sorted(service_ids(contract) if services is None else services)
    outages = _contract_outages(sids, start, until, now) if sids and until > start else []
    maintenance: dict[int, list[WindowPart]] = {}
    has_windows = bool(sids) and until > start and _downtime_windows(sids, start, until)
    if has_windows:
        parts = contracts_maintenance_parts([contract], start, end, now, {contract.pk: frozenset(sids)})
        parts = parts.get(contract.pk, [])
        maintenance[contract.pk] = [
            WindowPart(p.window_id, p.title, tuple(clip(p.kept, start, until)), tuple(clip(p.broken, start, until)))
            for p in parts
        ]
    figures = contract_month(
        contract, month, outages=outages, maintenance=maintenance, versions=versions, now=now, invoice=invoice,
        services=frozenset(sids),
    )  # fmt: skip
    if figures is None:
        return None
    return _live_figures(figures, month, state, now, line_details([figures["breakdown"]]))


def _live_figures(figures: dict, month: date, state: str, now: datetime, details) -> MonthFigures:
    """MonthFigures from closing.contract_month's figures, computed at `now` (not closed)."""
    return MonthFigures(
        month=month,
        state=state,
        timezone=figures["sla_version"].timezone,
        period_start=figures["period_start"],
        period_end=figures["period_end"],
        total_minutes=figures["total_minutes"],
        elapsed_minutes=max(0, int((min(now, figures["period_end"]) - figures["period_start"]) // MINUTE)),
        down_minutes=figures["down_minutes"],
        excluded_minutes=figures["excluded_minutes"],
        uptime_percent=figures["uptime_percent"],
        guarantee=figures["guarantee"],
        tier_percent=figures["tier_percent"],
        credit_amount=figures["credit_amount"],
        currency=figures["currency"],
        credit_kind=figures["credit_kind"],
        flagged=figures["flagged"],
        closed_at=None,
        as_of=now,
        lines=_lines(figures["breakdown"], details, as_of=now if state == MonthFigures.SO_FAR else None),
    )


def month_so_far(*, contract: Contract, now: datetime, versions: Versions | None = None) -> MonthFigures | None:
    """The current month (in the contract's timezone) up to `now`, and the credit it would earn if
    it closed with no more downtime. The contract's services must be prefetched."""
    versions = versions or Versions([contract.sla_id])
    version = versions.shown(contract.sla_id, now)
    if version is None:
        return None
    return _live(contract, local_month(now, version.timezone), versions, now, MonthFigures.SO_FAR)


class MonthUnavailable(Exception):
    """No figures can be given for that month; the message says why."""


def contract_month_figures(*, contract: Contract, month: date, now: datetime) -> MonthFigures:
    """One month of a contract: its closed figures; the current month so far; an ended month the
    hourly run has not closed yet, computed as it would close it. MonthUnavailable for a month
    that has not started, or one the contract did not run in."""
    versions = Versions([contract.sla_id])
    version = versions.shown(contract.sla_id, now)
    if version is None:
        raise MonthUnavailable("This contract has no SLA terms in force.")
    month = month.replace(day=1)
    current = local_month(now, version.timezone)
    if month > current:
        raise MonthUnavailable(
            f"{month:%B %Y} has not started yet: ask for the current month ({current:%Y-%m}) to see its figures so far."
        )
    reason = not_covered(contract, month)
    if reason:
        raise MonthUnavailable(reason)
    if month == current:
        figures = month_so_far(contract=contract, now=now, versions=versions)
    else:
        row = MonthlyUptime.objects.filter(contract=contract, month=month).select_related("sla_version").first()
        if row is not None and row.status == MonthlyUptime.Status.CLOSED:
            return figures_of_row(row, line_details([row.breakdown]))
        # Not closed yet, or reopened (to be closed again with its own invoice): as it would close now.
        invoice = (row.invoice_amount, row.currency) if row is not None else None
        services = text_ids(row.service_ids) if row is not None else None
        figures = _live(contract, month, versions, now, MonthFigures.NOT_CLOSED, invoice, services)
    if figures is None:
        raise MonthUnavailable(f"No SLA terms were in force at the end of {month:%B %Y}.")
    return figures


# --- Many contracts at once (the customer dashboard) ----------------------------------------------
def months_so_far(
    *, contracts: list[Contract], now: datetime, versions: Versions | None = None
) -> dict[int, MonthFigures | None]:
    """month_so_far for many contracts (services prefetched), the same figures, in a fixed number of
    queries whatever their number: the outages of all their services in one query, whether any
    downtime window touches their months in another, and, only then, the windows of all of them
    judged at once (contracts_maintenance_parts). {contract id: figures, or None where no SLA
    version is shown}."""
    from .closing import OutageIndex

    if not contracts:
        return {}
    versions = versions or Versions({c.sla_id for c in contracts})
    months: dict[int, tuple[date, datetime, datetime]] = {}
    for c in contracts:
        version = versions.shown(c.sla_id, now)
        if version is not None:
            month = local_month(now, version.timezone)
            terms = versions.of_month(c.sla_id, month)  # contract_month's: its period, in its zone
            if terms is not None:
                months[c.pk] = (month, *contract_period(c, month, versions))
    running = [c for c in contracts if c.pk in months and months[c.pk][1] < now]
    sids = sorted({s.pk for c in running for s in c.services.all()})
    if not sids:
        lo = hi = now
    else:
        lo = min(months[c.pk][1] for c in running)
        hi = max(months[c.pk][2] for c in running)
    until = min(hi, now)
    outages = OutageIndex(_contract_outages(sids, lo, until, now) if sids else [])
    has_windows = bool(sids) and _downtime_windows(sids, lo, until)
    parts = contracts_maintenance_parts(running, lo, hi, now) if has_windows else {}
    computed: dict[int, dict] = {}
    for c in contracts:
        if c.pk not in months:
            continue
        month, start, end = months[c.pk]
        mine = min(end, now)
        maintenance = {
            c.pk: [
                WindowPart(p.window_id, p.title, tuple(clip(p.kept, start, mine)), tuple(clip(p.broken, start, mine)))
                for p in parts.get(c.pk, ())
            ]
        }
        figures = contract_month(c, month, outages=outages, maintenance=maintenance, versions=versions, now=now)
        if figures is not None:
            computed[c.pk] = figures
    details = line_details(f["breakdown"] for f in computed.values())
    out: dict[int, MonthFigures | None] = {c.pk: None for c in contracts}
    for pk, figures in computed.items():
        out[pk] = _live_figures(figures, months[pk][0], MonthFigures.SO_FAR, now, details)
    return out
