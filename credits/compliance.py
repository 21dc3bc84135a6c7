"""The SLA compliance report (staff, the admin's /admin/compliance/): per contract and month, the
ticket attainment by priority with the filers' satisfaction (tickets.selectors.contract_attainment),
the month's uptime, downtime and excluded minutes, the credit tier and amount, and the claim filed
for it, as a page and as CSV.

Figures come from the closed MonthlyUptime rows only: a month without a row (the live month, or an
ended one the hourly run has not reached yet) is "not closed yet", never computed live for every
contract; a reopened month shows the figures it was closed with, marked as reopened. One contract's
detail page computes its month live (credits.figures.contract_month_figures).

Every page of the report, and the CSV a chunk of contracts at a time, is a fixed number of queries
whatever the number of contracts and tickets. The CSV goes through credits.exports.csv_response,
which guards every cell against formula injection.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.core.paginator import Page, Paginator
from django.db.models import Q, QuerySet

from contracts.models import SLA, Contract, Organisation
from contracts.selectors import Versions
from portal.domain.dates import add_months, last_day
from tickets.attainment import ALL, Attainment, totals
from tickets.security import REPORTS_CONTRACT
from tickets.selectors import contract_attainment

from .exports import amount, csv_response, number
from .figures import MonthFigures, MonthUnavailable, contract_month_figures
from .forms import MonthField
from .models import Claim, MonthlyUptime

PAGE_SIZE = 25
CSV_CHUNK = 500


class MonthState:
    CLOSED = "closed"
    REOPENED = "reopened"
    NOT_CLOSED = "not_closed"
    LABELS = {CLOSED: "Closed", REOPENED: "Reopened (to be closed again)", NOT_CLOSED: "Not closed yet"}


# --- The form: month picker and filters -------------------------------------------------------
class MonthInput(forms.DateInput):
    input_type = "month"

    def format_value(self, value):
        return f"{value:%Y-%m}" if isinstance(value, date) else value


class ReportMonthField(MonthField):
    widget = MonthInput

    def invalid_message(self, value: str, exc: ValueError) -> str:
        # Quoted: a browser's month picker cannot show what it was given.
        return f"“{value[:20]}” is not a month. {exc}"


def default_month(now: datetime) -> date:
    """Last month (UTC): the most recent month the month-end run has closed."""
    return add_months(now.astimezone(UTC).date().replace(day=1), -1)


class ComplianceForm(forms.Form):
    month = ReportMonthField(label="Month", required=False, help_text="YYYY-MM; last month when empty.")
    organisation = forms.ModelChoiceField(
        queryset=Organisation.objects.order_by("name"), required=False, empty_label="All organisations"
    )
    sla = forms.ModelChoiceField(
        queryset=SLA.objects.order_by("name"), required=False, label="SLA", empty_label="All SLAs"
    )

    def __init__(self, *args, now: datetime, **kwargs):
        super().__init__(*args, **kwargs)
        self.now = now

    def clean_month(self) -> date:
        month = self.cleaned_data.get("month") or default_month(self.now)
        current = self.now.astimezone(UTC).date().replace(day=1)
        # One month of slack: a contract east of UTC is already in next month.
        if month > add_months(current, 1):
            raise ValidationError(f"{month:%B %Y} has not started yet: choose {current:%Y-%m} or an earlier month.")
        return month


# --- The rows -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClaimSummary:
    claim_id: int
    status: str
    status_label: str
    eligible_amount: Decimal | None
    amount: Decimal | None

    @property
    def decided(self) -> bool:
        """Approved or credited: `amount` is what is (to be) credited."""
        return self.status in (Claim.Status.APPROVED, Claim.Status.SETTLED)


@dataclass(frozen=True)
class ComplianceRow:
    """One contract in one month."""

    contract_id: int
    reference: str
    name: str
    organisation: str
    sla: str
    month: date
    timezone: str
    currency: str
    month_state: str
    monthly_uptime_id: int | None
    uptime_percent: Decimal | None
    guarantee: Decimal | None
    down_minutes: int | None
    excluded_minutes: int | None
    tier_percent: Decimal | None
    credit_amount: Decimal | None
    flagged: bool
    claim: ClaimSummary | None
    priorities: tuple[Attainment, ...]  # one per priority with tickets, in priority order
    total: Attainment  # every priority together (priority ALL)

    @property
    def month_state_label(self) -> str:
        return MonthState.LABELS[self.month_state]

    @property
    def has_figures(self) -> bool:
        return self.uptime_percent is not None

    @property
    def below_guarantee(self) -> bool:
        return self.has_figures and self.guarantee is not None and self.uptime_percent < self.guarantee

    @property
    def attainment(self) -> tuple[Attainment, ...]:
        """The rows shown (and exported): each priority, then all priorities together."""
        return (*self.priorities, self.total)


def report_contracts(*, month: date, organisation: Organisation | None = None, sla: SLA | None = None) -> QuerySet:
    """The customer contracts that ran in `month`, by organisation and reference."""
    qs = Contract.objects.filter(starts_on__lte=last_day(month)).filter(Q(ends_on__isnull=True) | Q(ends_on__gte=month))
    qs = qs.exclude(reference=REPORTS_CONTRACT)
    if organisation is not None:
        qs = qs.filter(organisation=organisation)
    if sla is not None:
        qs = qs.filter(sla=sla)
    return qs.select_related("organisation", "sla").order_by("organisation__name", "reference", "pk")


def _state(m: MonthlyUptime | None) -> str:
    if m is None:
        return MonthState.NOT_CLOSED
    return MonthState.REOPENED if m.status == MonthlyUptime.Status.REOPENED else MonthState.CLOSED


def _claim(claim: Claim) -> ClaimSummary:
    return ClaimSummary(claim.pk, claim.status, claim.get_status_display(), claim.eligible_amount, claim.amount)


def compliance_rows(contracts: list[Contract], *, month: date, now: datetime) -> list[ComplianceRow]:
    """The report's rows for these contracts (organisation and SLA selected): a fixed number of
    queries (attainment 3, SLA versions 2, months 1, claims 1) whatever their number."""
    if not contracts:
        return []
    ids = [c.pk for c in contracts]
    attained = contract_attainment(contracts=contracts, first=month, last=month, now=now)
    versions = Versions({c.sla_id for c in contracts})
    months = {
        m.contract_id: m
        for m in MonthlyUptime.objects.filter(contract_id__in=ids, month=month)
        .select_related("sla_version")
        .defer("breakdown")
    }
    claims = {c.contract_id: c for c in Claim.objects.filter(contract_id__in=ids, month=month)}
    rows = []
    for c in contracts:
        m = months.get(c.pk)
        version = m.sla_version if m is not None else versions.shown(c.sla_id, now)
        attained_by_priority = attained.get(c.pk, {})
        priorities = tuple(a for (_, p), a in sorted(attained_by_priority.items(), key=lambda kv: kv[0][1]) if p != ALL)
        claim = claims.get(c.pk)
        rows.append(
            ComplianceRow(
                contract_id=c.pk,
                reference=c.reference,
                name=c.name,
                organisation=c.organisation.name,
                sla=c.sla.name,
                month=month,
                timezone=version.timezone if version else "UTC",
                currency=m.currency if m is not None else c.currency,
                month_state=_state(m),
                monthly_uptime_id=m.pk if m else None,
                uptime_percent=m.uptime_percent if m else None,
                guarantee=m.guarantee if m else (version.uptime_guarantee if version else None),
                down_minutes=m.down_minutes if m else None,
                excluded_minutes=m.excluded_minutes if m else None,
                tier_percent=m.tier_percent if m else None,
                credit_amount=m.credit_amount if m else None,
                flagged=bool(m and m.flagged),
                claim=_claim(claim) if claim else None,
                priorities=priorities,
                total=totals(priorities, month=month),
            )
        )
    return rows


@dataclass(frozen=True)
class Report:
    month: date
    page: Page  # of contracts
    rows: list[ComplianceRow]


def compliance_report(
    *, month: date, now: datetime, organisation=None, sla=None, page: object = 1, page_size: int | None = None
) -> Report:
    """One page of the report; a page number out of range or not a number gives the nearest page."""
    contracts = report_contracts(month=month, organisation=organisation, sla=sla)
    paginator = Paginator(contracts, page_size or PAGE_SIZE)
    current = paginator.get_page(page)
    return Report(month=month, page=current, rows=compliance_rows(list(current.object_list), month=month, now=now))


# --- CSV ----------------------------------------------------------------------------------------
COLUMNS = [
    "organisation", "contract_reference", "contract_name", "sla", "month", "month_state", "uptime_percent",
    "guarantee", "down_minutes", "excluded_minutes", "tier_percent", "credit_amount", "currency", "flagged",
    "claim_id", "claim_status", "claim_eligible_amount", "claim_amount", "priority", "tickets_filed", "tickets_excluded", "response_met",
    "response_missed", "response_pending", "response_rate", "resolution_met", "resolution_missed",
    "resolution_pending", "resolution_rate", "resolved_within_limit", "limit_breached", "limit_rate",
    "tickets_resolved", "rated_good", "rated_bad", "satisfaction_rate",
]  # fmt: skip


def priority_label(priority: str) -> str:
    return "all" if priority == ALL else priority


def csv_values(row: ComplianceRow, a: Attainment) -> list:
    """One line of the CSV: the contract-month and one of its attainment rows."""
    claim = row.claim
    return [
        row.organisation, row.reference, row.name, row.sla, row.month, row.month_state,
        number(row.uptime_percent), number(row.guarantee), row.down_minutes, row.excluded_minutes,
        number(row.tier_percent), amount(row.credit_amount, row.currency), row.currency, row.flagged,
        claim.claim_id if claim else None, claim.status if claim else None,
        amount(claim.eligible_amount, row.currency) if claim else None,
        amount(claim.amount, row.currency) if claim else None,
        priority_label(a.priority), a.filed, a.excluded, a.response_met, a.response_missed, a.response_pending,
        number(a.response_rate), a.resolution_met, a.resolution_missed, a.resolution_pending,
        number(a.resolution_rate), a.within_limit, a.breached, number(a.limit_rate),
        a.resolved, a.rated_good, a.rated_bad, number(a.satisfaction_rate),
    ]  # fmt: skip


def csv_lines(rows: list[ComplianceRow]) -> Iterator[list]:
    for row in rows:
        for a in row.attainment:
            yield csv_values(row, a)


def _all_rows(contracts: QuerySet, month: date, now: datetime) -> Iterator[list]:
    """Every contract of the filter, CSV_CHUNK at a time (a fixed number of queries per chunk)."""
    last = None
    while True:
        chunk_qs = contracts if last is None else contracts.filter(
            Q(organisation__name__gt=last[0])
            | Q(organisation__name=last[0], reference__gt=last[1])
        )  # fmt: skip
        chunk = list(chunk_qs[:CSV_CHUNK])
        if not chunk:
            return
        yield from csv_lines(compliance_rows(chunk, month=month, now=now))
        if len(chunk) < CSV_CHUNK:
            return
        last = (chunk[-1].organisation.name, chunk[-1].reference)


@dataclass(frozen=True)
class ContractCompliance:
    """One contract's month in detail: the report's row, and the month's figures with their
    breakdown (closed, or computed live for a month not closed yet), or why there are none."""

    contract: Contract
    row: ComplianceRow
    figures: MonthFigures | None
    unavailable: str


def contract_compliance(*, contract: Contract, month: date, now: datetime) -> ContractCompliance:
    contract = Contract.objects.select_related("organisation", "sla").prefetch_related("services").get(pk=contract.pk)
    (row,) = compliance_rows([contract], month=month, now=now)
    try:
        figures, unavailable = contract_month_figures(contract=contract, month=month, now=now), ""
    except MonthUnavailable as exc:
        figures, unavailable = None, str(exc)
    return ContractCompliance(contract=contract, row=row, figures=figures, unavailable=unavailable)


def compliance_csv_response(*, month: date, now: datetime, organisation=None, sla=None):
    contracts = report_contracts(month=month, organisation=organisation, sla=sla)
    return csv_response(f"sla-compliance-{month:%Y-%m}", COLUMNS, _all_rows(contracts, month, now))
