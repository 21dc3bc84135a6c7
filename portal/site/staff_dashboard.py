"""The staff dashboard's reads (the admin's /admin/dashboard/): what needs a person's attention now.

- SLA breaches this week: breach crossings whose moment falls since Monday 00:00 **UTC** of this
  week (the admin works in UTC; each moment is shown in its contract's timezone);
- tickets at risk: active tickets with less than the at-risk share (settings.SLA_AT_RISK_SHARE) of
  their nearest clock's allowance left, not paused, breached or past their target: the state the
  staff queue's badge and the customer's pages show (tickets.deadlines);
- maintenance that breaks a contract's rules: scheduled downtime windows ending after the first day
  of this month (UTC), upcoming ones included, judged for every contract they touch by
  contracts.maintenance (notice, off-peak hours, annual cap);
- months for review: closed months flagged (below the guarantee, in a gap of the credit table) in
  the last 12 months, reopened months, and months judged again in the last 12 months whose tier or
  credit changed, with the claim decided before it (flagged, never changed); claims awaiting review;
- the sweeps' heartbeats (portal.core.heartbeat.health);
- the day's work: tickets breached now, waiting on staff longest, escalation requests awaiting
  acknowledgement, held emails, today's maintenance, this month's claims (portal.site.staff_today).

Each list holds at most LIMIT rows with the total count beside it; the whole dashboard is a fixed
number of queries whatever the data's size. Vulnerability reports appear only for security staff.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import OuterRef, Q, Subquery
from django.utils.text import capfirst

from contracts.maintenance.selectors import contracts_window_judgements
from contracts.models import Contract, MaintenanceWindow
from credits.models import Claim, MonthlyUptime
from portal.core.heartbeat import PURPOSES, SWEEPS, health
from portal.domain.dates import add_months, month_bounds, week_start
from portal.domain.formats import wall_span
from portal.site import staff_today
from portal.site.staff_today import LIMIT, Section, scoped_tickets
from tickets.deadlines import at_risk_q, clock_words
from tickets.models import SLACrossing, Ticket

REVIEW_MONTHS = 12


def month_start(now: datetime) -> datetime:
    """The first day of `now`'s month, 00:00 UTC."""
    return month_bounds(now.astimezone(UTC).year, now.astimezone(UTC).month, "UTC")[0]


@dataclass(frozen=True)
class BreachRow:
    crossing_id: int
    ticket_id: int
    ticket_number: str
    subject: str
    organisation: str
    priority: str
    clock: str
    at: datetime
    timezone: str


@dataclass(frozen=True)
class AtRiskRow:
    ticket_id: int
    ticket_number: str
    subject: str
    organisation: str
    priority: str
    clock: str  # which deadline is next
    due: datetime
    timezone: str
    escalation_level: int
    assignee: str


@dataclass(frozen=True)
class BrokenWindowRow:
    window_id: int
    title: str
    starts_at: datetime
    ends_at: datetime
    contract_id: int
    contract_reference: str
    organisation: str
    timezone: str
    downtime_minutes: int
    reasons: list[str]
    notice: str


@dataclass(frozen=True)
class ReviewMonthRow:
    monthly_uptime_id: int
    contract_reference: str
    organisation: str
    month: date
    uptime_percent: Decimal
    guarantee: Decimal
    flagged: bool
    reopened: bool
    credit_changed: bool  # judged again to another tier or credit (credits.rejudging)
    claim_id: int | None  # a claim decided before that: flagged for staff
    claim_status: str


@dataclass(frozen=True)
class ClaimRow:
    claim_id: int
    contract_reference: str
    organisation: str
    month: date
    eligible_amount: Decimal | None
    currency: str
    submitted_at: datetime
    timezone: str
    flagged: bool
    stale: bool  # its month was reopened, or its figure changed since it was filed


@dataclass(frozen=True)
class SweepRow:
    name: str  # the beat's id
    title: str  # what it does (portal.core.heartbeat.PURPOSES)
    period: timedelta
    last_finished_at: datetime | None
    last_result: str | None  # in words: "3 emails sent"
    healthy: bool

    @property
    def every(self) -> str:
        named = {60: "every minute", 3600: "every hour"}
        return named.get(int(self.period.total_seconds())) or f"every {wall_span(self.period)}"


@dataclass(frozen=True)
class Dashboard:
    now: datetime
    week_start: datetime
    month_start: datetime
    review_since: date
    breaches: Section
    at_risk: Section
    at_risk_shares: list[tuple[str, str]]  # (priority, percent of the allowance left)
    windows: Section
    windows_count: int  # distinct windows among the broken rows
    review_months: Section
    claims: Section
    sweeps: list[SweepRow]
    # The day's work (portal.site.staff_today)
    breached: Section
    waiting: Section
    escalations: Section
    held: Section
    today: Section
    month_claims: int
    past_target: int

    @property
    def sweeps_healthy(self) -> bool:
        return all(s.healthy for s in self.sweeps)

    @property
    def sweeps_late(self) -> int:
        return sum(not s.healthy for s in self.sweeps)


# --- The sections ---------------------------------------------------------------------------------
def breaches_this_week(*, now: datetime, include_security: bool) -> Section:
    qs = SLACrossing.objects.filter(
        kind=SLACrossing.Kind.BREACH, at__gte=week_start(now), at__lte=now, ticket__in=scoped_tickets(include_security)
    )
    rows = [
        BreachRow(
            crossing_id=c.pk,
            ticket_id=c.ticket_id,
            ticket_number=c.ticket.number,
            subject=c.ticket.subject,
            organisation=c.ticket.organisation.name,
            priority=c.ticket.priority,
            clock=capfirst(clock_words(c.clock)),
            at=c.at,
            timezone=c.ticket.sla_version.timezone,
        )
        for c in qs.select_related("ticket__organisation", "ticket__sla_version").order_by("-at", "-pk")[:LIMIT]
    ]
    return Section(rows, qs.count())


def _next_clock(t: Ticket) -> str:
    if t.first_response_at is None and t.first_response_due == t.next_deadline:
        return "First response"
    if t.resolution_target_at == t.next_deadline and t.resolution_target_at != t.resolution_due:
        return "Resolution target"
    return "Resolution"


def tickets_at_risk(*, now: datetime, include_security: bool) -> Section:
    """The tickets whose state is at risk, the rule of the queue's badge and the customer's pages
    (tickets.deadlines.at_risk_q), served by the partial index ticket_at_risk."""
    qs = scoped_tickets(include_security).filter(at_risk_q(now), status__in=Ticket.ACTIVE)
    rows = [
        AtRiskRow(
            ticket_id=t.pk,
            ticket_number=t.number,
            subject=t.subject,
            organisation=t.organisation.name,
            priority=t.priority,
            clock=_next_clock(t),
            due=t.next_deadline,
            timezone=t.sla_version.timezone,
            escalation_level=t.escalation_level,
            assignee=t.assignee.get_full_name() if t.assignee_id else "",
        )
        for t in qs.select_related("organisation", "sla_version", "assignee").order_by("next_deadline", "pk")[:LIMIT]
    ]
    return Section(rows, qs.count())


def maintenance_breaking_rules(*, now: datetime) -> tuple[Section, int]:
    """(rows, how many windows): one row per window and contract whose rules it breaks, soonest
    first. Only contracts whose services a counting window touches are judged."""
    since = month_start(now)
    counting = MaintenanceWindow.objects.filter(
        status=MaintenanceWindow.Status.SCHEDULED, impact=MaintenanceWindow.Impact.DOWNTIME, ends_at__gt=since
    )
    contracts = list(
        Contract.objects.filter(services__in=counting.values("services"))
        .filter(Q(ends_on__isnull=True) | Q(ends_on__gte=since.date()))
        .distinct()
        .select_related("organisation")
        .prefetch_related("services")
        .order_by("organisation__name", "reference")
    )
    rows = []
    for window, judgements in contracts_window_judgements(contracts, since=since, now=now):
        for j in judgements:
            if j.downtime_minutes:
                rows.append(
                    BrokenWindowRow(
                        window_id=window.pk,
                        title=window.title,
                        starts_at=window.starts_at,
                        ends_at=window.ends_at,
                        contract_id=j.contract.pk,
                        contract_reference=j.contract.reference,
                        organisation=j.contract.organisation.name,
                        timezone=j.timezone,
                        downtime_minutes=j.downtime_minutes,
                        reasons=j.reasons,
                        notice=j.notice_description,
                    )
                )
    return Section(rows[:LIMIT], len(rows)), len({r.window_id for r in rows})


def months_for_review(*, now: datetime) -> tuple[Section, date]:
    since = add_months(month_start(now).date(), -REVIEW_MONTHS)
    changed_since = month_bounds(since.year, since.month, "UTC")[0]
    qs = MonthlyUptime.objects.filter(
        Q(flagged=True, month__gte=since)
        | Q(status=MonthlyUptime.Status.REOPENED)
        | Q(credit_changed_at__gte=changed_since)
    )
    decided = Claim.objects.filter(monthly_uptime=OuterRef("pk"), figure_changed_at__isnull=False)
    statuses = dict(Claim.Status.choices)
    rows = [
        ReviewMonthRow(
            monthly_uptime_id=m.pk,
            contract_reference=m.contract.reference,
            organisation=m.contract.organisation.name,
            month=m.month,
            uptime_percent=m.uptime_percent,
            guarantee=m.guarantee,
            flagged=m.flagged,
            reopened=m.status == MonthlyUptime.Status.REOPENED,
            credit_changed=m.credit_changed_at is not None and m.credit_changed_at >= changed_since,
            claim_id=m.decided_claim,
            claim_status=statuses.get(m.decided_claim_status, "").lower(),
        )
        for m in qs.select_related("contract__organisation")
        .defer("breakdown")
        .annotate(
            decided_claim=Subquery(decided.values("pk")[:1]),
            decided_claim_status=Subquery(decided.values("status")[:1]),
        )
        .order_by("-month", "contract__reference")[:LIMIT]
    ]
    return Section(rows, qs.count()), since


def claims_awaiting_review() -> Section:
    qs = Claim.objects.filter(status=Claim.Status.SUBMITTED)
    rows = [
        ClaimRow(
            claim_id=c.pk,
            contract_reference=c.contract.reference,
            organisation=c.contract.organisation.name,
            month=c.month,
            eligible_amount=c.eligible_amount,
            currency=c.currency,
            submitted_at=c.submitted_at,
            timezone=c.monthly_uptime.sla_version.timezone,
            flagged=c.monthly_uptime.flagged,
            stale=c.monthly_uptime.status == MonthlyUptime.Status.REOPENED
            or c.monthly_uptime.credit_amount != c.eligible_amount,
        )
        for c in qs.select_related("contract__organisation", "monthly_uptime__sla_version")
        .defer("monthly_uptime__breakdown")
        .order_by("submitted_at", "pk")[:LIMIT]
    ]
    return Section(rows, qs.count())


def sweeps(now: datetime) -> list[SweepRow]:
    report = health(now)["sweeps"]
    return [
        SweepRow(
            name=name,
            title=PURPOSES[name].title,
            period=SWEEPS[name],
            last_finished_at=datetime.fromisoformat(s["last_finished_at"]) if s["last_finished_at"] else None,
            last_result=PURPOSES[name].result(s["last_result"]),
            healthy=s["healthy"],
        )
        for name, s in report.items()
    ]


def staff_dashboard(*, now: datetime, include_security: bool = False, held_customers: bool = True) -> Dashboard:
    """Everything on the dashboard, in a fixed number of queries (`held_customers`: the held email
    counts customers' messages, for email triage; security staff's counts only the security address's)."""
    windows, windows_count = maintenance_breaking_rules(now=now)
    review, since = months_for_review(now=now)
    return Dashboard(
        now=now,
        week_start=week_start(now),
        month_start=month_start(now),
        review_since=since,
        breaches=breaches_this_week(now=now, include_security=include_security),
        at_risk=tickets_at_risk(now=now, include_security=include_security),
        at_risk_shares=[(p, f"{share * 100:g}") for p, share in settings.SLA_AT_RISK_SHARE.items()],
        windows=windows,
        windows_count=windows_count,
        review_months=review,
        claims=claims_awaiting_review(),
        sweeps=sweeps(now),
        breached=staff_today.breached_now(now=now, include_security=include_security),
        waiting=staff_today.waiting_longest(include_security=include_security),
        escalations=staff_today.escalations_pending(include_security=include_security),
        held=staff_today.held_emails(include_security=include_security, include_customers=held_customers),
        today=staff_today.maintenance_today(now=now),
        month_claims=staff_today.claims_this_month(month_start=month_start(now)),
        past_target=staff_today.past_target(now=now, include_security=include_security),
    )
