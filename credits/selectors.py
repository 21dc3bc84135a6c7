"""Reads for uptime and service credits. Every customer-facing read is scoped to the user's
organisation. A month's figures, closed or live, come from credits.figures; here are the pages'
reads built on them: the uptime page's history, the months that can still be claimed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import QuerySet

from contracts.incidents.selectors import incidents_of_month
from contracts.models import Contract
from contracts.selectors import Versions
from portal.core.staff_otp import may_use_staff_site
from portal.domain.dates import add_months, days_after_month, local_month, month_bounds, previous_month
from portal.models import AuditEntry
from tickets.models import Ticket

from .closing import HISTORY_MONTHS, text_ids
from .figures import MonthFigures, figures_of_row, line_details, month_so_far, not_covered
from .models import Claim, ClaimAttachment, MonthlyUptime


# --- Scoping ------------------------------------------------------------------------------------
def claims_for_user(*, user) -> QuerySet[Claim]:
    """The claims a customer may see: their organisation's only. Staff and anonymous users get none
    here (staff work in the admin)."""
    if not getattr(user, "is_authenticated", False) or not user.organisation_id:
        return Claim.objects.none()
    return Claim.objects.filter(contract__organisation_id=user.organisation_id)


def claim_attachments_for_user(*, user) -> QuerySet[ClaimAttachment]:
    """Claim files a user may download: staff who may view claims, past the staff site's second
    factor, any (they review them), a customer their organisation's."""
    if getattr(user, "is_staff", False):
        if not (user.is_active and may_use_staff_site(user) and user.has_perm("credits.view_claim")):
            return ClaimAttachment.objects.none()
        return ClaimAttachment.objects.all()
    return ClaimAttachment.objects.filter(claim__in=claims_for_user(user=user))


# --- The uptime page ----------------------------------------------------------------------------
@dataclass(frozen=True)
class HistoryMonth:
    month: date
    figures: MonthFigures | None  # closed figures only
    note: str  # why there are none: not closed yet, reopened, outside the contract
    claim: Claim | None
    claimable: bool


@dataclass(frozen=True)
class ContractUptime:
    timezone: str
    guarantee: Decimal
    credit_kind_label: str
    claim_window_days: int
    so_far: MonthFigures | None
    so_far_note: str  # why there are no figures so far this month
    history: list[HistoryMonth]  # oldest first


def contract_uptime(*, contract: Contract, now: datetime, months: int = HISTORY_MONTHS) -> ContractUptime | None:
    """The contract's month so far and its last `months` months (closed figures, breakdowns, the
    claim filed for each, whether one can still be filed), in a fixed number of queries whatever
    the history's size. The contract's services must be prefetched. None where the contract has
    no published SLA version."""
    versions = Versions([contract.sla_id])
    version = versions.shown(contract.sla_id, now)
    if version is None:
        return None
    current = local_month(now, version.timezone)
    first = add_months(current, -months)
    rows = {
        r.month: r
        for r in MonthlyUptime.objects.filter(contract=contract, month__gte=first, month__lt=current).select_related(
            "sla_version"
        )
    }
    claims = {c.month: c for c in Claim.objects.filter(contract=contract, month__gte=first, month__lt=current)}
    claimable = set(
        claimable_months(contracts=[contract], now=now, versions=versions, claimed=claims.keys())[contract.pk]
    )
    closed = [r for r in rows.values() if r.status == MonthlyUptime.Status.CLOSED]
    details = line_details(r.breakdown for r in closed)
    history = []
    for i in range(months):
        month = add_months(first, i)
        row = rows.get(month)
        figures = (
            figures_of_row(row, details) if row is not None and row.status == MonthlyUptime.Status.CLOSED else None
        )
        if figures is not None:
            note = ""
        elif row is not None:
            note = "Reopened: to be closed again with the corrected evidence"
        else:
            note = not_covered(contract, month) or "Not closed yet"
        history.append(HistoryMonth(month, figures, note, claims.get(month), month in claimable))
    so_far_note = not_covered(contract, current)
    so_far = None if so_far_note else month_so_far(contract=contract, now=now, versions=versions)
    return ContractUptime(
        timezone=version.timezone,
        guarantee=version.uptime_guarantee,
        credit_kind_label=version.get_credit_kind_display(),
        claim_window_days=version.claim_window_days,
        so_far=so_far,
        so_far_note=so_far_note or ("" if so_far else "No SLA terms are in force this month."),
        history=history,
    )


# --- Claims -------------------------------------------------------------------------------------
def claimable_months(
    *, contracts: list[Contract], now: datetime, versions: Versions | None = None, claimed: Iterable[date] | None = None
) -> dict[int, list[date]]:
    """Per contract, the months a claim can still be filed for, newest first: ended in the
    contract's timezone, still inside the claim window, in the contract's term, not claimed yet.
    The window is credits.services.claim_window's (the terms in force at the month's end; its end
    plus their window's days, local time), which has the last word when the claim is filed.
    `claimed`: the months already claimed, when there is a single contract and the caller has them."""
    if not contracts:
        return {}
    versions = versions or Versions({c.sla_id for c in contracts})
    if claimed is None:
        taken = set(Claim.objects.filter(contract__in=contracts).values_list("contract_id", "month"))
    else:
        taken = {(contracts[0].pk, m) for m in claimed}
    out: dict[int, list[date]] = {}
    for contract in contracts:
        version = versions.at(contract.sla_id, now)
        out[contract.pk] = months = []
        if version is None:
            continue
        # From this month back (a month is judged, and ends, in its own terms' zone, which may be
        # another than today's), to one closed under the SLA's longest window in any zone.
        month, longest = local_month(now, version.timezone), versions.longest_claim_window(contract.sla_id)
        while month >= contract.starts_on.replace(day=1):
            if now >= days_after_month(month, version.timezone, longest) + ZONES_APART:
                break  # closed under any of the SLA's windows: so is every earlier month
            terms = versions.of_month(contract.sla_id, month)
            if terms is None:
                break  # no terms at its end: none at any earlier month's
            ended = month_bounds(month.year, month.month, terms.timezone)[1] <= now
            open_ = ended and now < claim_deadline(version=terms, month=month)
            if open_ and not not_covered(contract, month) and (contract.pk, month) not in taken:
                months.append(month)
            month = previous_month(month)
    return out


ZONES_APART = timedelta(days=2)  # the widest gap between two zones' midnights, with room


def claim_deadline(*, version, month: date) -> datetime:
    """When claims for `month` close under `version`: the month's end plus the claim window's days,
    local time ("within 30 days of the month's end": October's close at 1 December 00:00)."""
    return days_after_month(month, version.timezone, version.claim_window_days).astimezone(ZoneInfo(version.timezone))


@dataclass(frozen=True)
class ClaimableMonth:
    contract: Contract
    month: date
    closes: datetime  # claims for it close then
    timezone: str
    figures: MonthlyUptime | None  # None: the month is not closed yet


def claimable_with_figures(*, contracts: list[Contract], now: datetime, versions: Versions) -> list[ClaimableMonth]:
    """The months a claim can still be filed for (claimable_months), each with when claims for it
    close and its closed figures where it is closed (one query), soonest to close first."""
    open_months = claimable_months(contracts=contracts, now=now, versions=versions)
    wanted = {(pk, m) for pk, ms in open_months.items() for m in ms}
    closed = {}
    if wanted:
        closed = {
            (row.contract_id, row.month): row
            for row in MonthlyUptime.objects.filter(
                contract_id__in={pk for pk, _ in wanted},
                month__in={m for _, m in wanted},
                status=MonthlyUptime.Status.CLOSED,
            ).order_by()
        }
    out = []
    for c in contracts:
        for m in open_months.get(c.pk, ()):
            terms = versions.of_month(c.sla_id, m)  # claimable_months' (and the claim's)
            closes = claim_deadline(version=terms, month=m)
            out.append(ClaimableMonth(c, m, closes, terms.timezone, closed.get((c.pk, m))))
    return sorted(out, key=lambda cm: (cm.closes, cm.contract.reference, cm.month))


def months_for_user(*, user) -> QuerySet[MonthlyUptime]:
    """The closed (or reopened) months a customer may see: their organisation's contracts' only."""
    if not getattr(user, "is_authenticated", False) or not user.organisation_id:
        return MonthlyUptime.objects.none()
    return MonthlyUptime.objects.filter(contract__organisation_id=user.organisation_id)


def claim_incidents(*, claim: Claim) -> list[tuple]:
    """The incidents of the claim's month on its contract, each with its impact on the services the
    month was judged on (Outage.impact_on: not the worst on services the contract does not have) and
    the organisation's tickets linked to it: evidence beside the figures."""
    row = claim.monthly_uptime
    sids = text_ids(row.service_ids)
    incidents = incidents_of_month(contract=claim.contract, start=row.period_start, end=row.period_end, services=sids)
    linked: dict[int, list] = {i.pk: [] for i in incidents}
    if incidents:
        tickets = Ticket.objects.filter(
            incident_id__in=list(linked), organisation_id=claim.contract.organisation_id, kind=Ticket.Kind.SUPPORT
        ).order_by("filed_at", "pk")
        for t in tickets:
            linked[t.incident_id].append(t)
    judged = sids if sids is not None else set(claim.contract.services.values_list("pk", flat=True))
    return [(i, i.outage.impact_on(judged), linked[i.pk]) for i in incidents]


# --- A decided claim whose month was judged again -------------------------------------------------
@dataclass(frozen=True)
class ClaimFigures:
    """The month's figures a claim shows: those it was decided on, while `rejudged` (the month as
    it is now, judged again after the decision) is None unless its credit moved since."""

    uptime_percent: Decimal
    guarantee: Decimal
    down_minutes: int
    total_minutes: int
    excluded_minutes: int
    tier_percent: Decimal | None
    flagged: bool
    rejudged: MonthlyUptime | None = None
    rejudged_at: datetime | None = None


def _as_decimal(text) -> Decimal | None:
    return None if text is None else Decimal(str(text))


def claims_figures(*, claims: Iterable[Claim]) -> dict[int, ClaimFigures]:
    """Per claim (its monthly_uptime loaded), the figures it was decided on, in one query whatever
    their number (none where no claim was flagged). A decided claim is never changed when its month
    is judged again (credits.rejudging); its month's row is. Where the credit moved after the
    decision (figure_changed_at), the figures decided on are those the first re-judging after the
    decision found (its `month.rejudged` audit entry's `before`: the month as it stood while the
    claim was decided); the month's row is what it is worth now. Otherwise the row is both."""
    claims = list(claims)
    flagged = [c for c in claims if c.figure_changed_at is not None and c.decided_at is not None]
    before: dict[int, dict] = {}
    if flagged:
        rows = {str(c.monthly_uptime_id): c for c in flagged}
        entries = AuditEntry.objects.filter(
            action="month.rejudged", target_type=MonthlyUptime._meta.label_lower, target_id__in=list(rows)
        ).order_by("at", "id")
        for target_id, at, figures in entries.values_list("target_id", "at", "before"):
            claim = rows[target_id]
            if at >= claim.decided_at and claim.pk not in before:
                before[claim.pk] = figures
    out = {}
    for c in claims:
        row, was = c.monthly_uptime, before.get(c.pk)
        if was is None:
            out[c.pk] = ClaimFigures(row.uptime_percent, row.guarantee, row.down_minutes, row.total_minutes,
                                     row.excluded_minutes, row.tier_percent, row.flagged)  # fmt: skip
            continue
        percent, tier = _as_decimal(was["uptime_percent"]), _as_decimal(was["tier_percent"])
        out[c.pk] = ClaimFigures(
            uptime_percent=percent, guarantee=row.guarantee, down_minutes=int(was["down_minutes"]),
            total_minutes=row.total_minutes, excluded_minutes=int(was["excluded_minutes"]), tier_percent=tier,
            flagged=percent < row.guarantee and tier is None, rejudged=row, rejudged_at=c.figure_changed_at,
        )  # fmt: skip
    return out
