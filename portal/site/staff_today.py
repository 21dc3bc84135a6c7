"""The staff dashboard's day's work (issue 21): tickets breached now, tickets waiting on staff the
longest, escalation requests awaiting acknowledgement, emails held by the triage, today's maintenance
and this month's claims. Each section is the rule its list in the admin filters by, so the number a
section shows is the number of rows its link (`links`) opens:

- breached: active tickets that tickets.deadlines.sla_state calls breached (breached_q), most
  overdue first; the queue's `?sla=breached`;
- past their target: active tickets past their resolution target before their limit
  (tickets.deadlines.warned_q); the queue's `?sla=warned` (counted beside those at risk);
- waiting on staff: tickets.selectors.waiting_on_staff, the longest waiting first; `?sla=waiting_on_staff`;
- escalation requests not yet acknowledged, the nearest acknowledgement deadline first (the
  escalation requests' list opens on the pending ones);
- held emails: inbound messages the triage holds for staff (`?outcome__exact=held`), oldest first;
- today's maintenance: scheduled windows overlapping the staff member's today (in their own
  timezone, as the staff site shows times), soonest first;
- this month's claims: filed since the 1st (UTC), whatever their status.

Vulnerability reports (tickets, their escalation requests, their held emails) only for security
staff, as the lists do. Two queries per section (its rows, its count), whatever the data's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from contracts.models import MaintenanceWindow
from credits.models import Claim
from portal.domain.dates import day_bounds
from tickets.deadlines import breached_q, warned_q
from tickets.models import EscalationRequest, InboundMessage, Ticket
from tickets.selectors import waiting_on_staff

LIMIT = 25


@dataclass(frozen=True)
class Section:
    """A list of at most LIMIT rows and how many there are in all."""

    rows: list
    count: int

    @property
    def more(self) -> int:
        return max(self.count - len(self.rows), 0)


@dataclass(frozen=True)
class TicketRow:
    ticket_id: int
    ticket_number: str
    subject: str
    organisation: str
    priority: str
    moment: datetime | None  # breached: the nearest unmet deadline; waiting: since when
    timezone: str
    assignee: str


@dataclass(frozen=True)
class EscalationRow:
    request_id: int
    ticket_id: int
    ticket_number: str
    subject: str
    organisation: str
    requested_at: datetime
    ack_due: datetime | None
    timezone: str


@dataclass(frozen=True)
class HeldRow:
    message_id: int
    received_at: datetime
    sender: str
    subject: str
    reason: str


@dataclass(frozen=True)
class WindowRow:
    window_id: int
    title: str
    starts_at: datetime
    ends_at: datetime
    impact: str


def scoped_tickets(include_security: bool):
    """Every ticket, or only support tickets for staff who do not see vulnerability reports."""
    qs = Ticket.objects.all()
    return qs if include_security else qs.filter(kind=Ticket.Kind.SUPPORT)


def _tickets(include_security: bool):
    return scoped_tickets(include_security).filter(status__in=Ticket.ACTIVE)


def _ticket_rows(qs, moment: str) -> list[TicketRow]:
    return [
        TicketRow(
            ticket_id=t.pk,
            ticket_number=t.number,
            subject=t.subject,
            organisation=t.organisation.name,
            priority=t.priority,
            moment=getattr(t, moment),
            timezone=t.sla_version.timezone,
            assignee=t.assignee.get_full_name() if t.assignee_id else "",
        )  # fmt: skip
        for t in qs.select_related("organisation", "sla_version", "assignee")[:LIMIT]
    ]


def breached_now(*, now: datetime, include_security: bool) -> Section:
    qs = _tickets(include_security).filter(breached_q(now))
    return Section(
        _ticket_rows(qs.order_by(F("next_deadline").asc(nulls_last=True), "pk"), "next_deadline"), qs.count()
    )


def past_target(*, now: datetime, include_security: bool) -> int:
    """Active tickets past their resolution target, their limit still ahead (tickets.deadlines.warned_q,
    the queue's "Target passed"): neither breached nor at risk, and their warning already sent."""
    return _tickets(include_security).filter(warned_q(now)).count()


def waiting_longest(*, include_security: bool) -> Section:
    qs = waiting_on_staff(_tickets(include_security))
    return Section(_ticket_rows(qs.order_by("waiting_since", "pk"), "waiting_since"), qs.count())


def escalations_pending(*, include_security: bool) -> Section:
    qs = EscalationRequest.objects.filter(acknowledged_at__isnull=True)
    if not include_security:
        qs = qs.exclude(ticket__kind=Ticket.Kind.SECURITY)
    rows = [
        EscalationRow(
            request_id=r.pk,
            ticket_id=r.ticket_id,
            ticket_number=r.ticket.number,
            subject=r.ticket.subject,
            organisation=r.ticket.organisation.name,
            requested_at=r.requested_at,
            ack_due=r.ack_due,
            timezone=r.ticket.sla_version.timezone,
        )  # fmt: skip
        for r in qs.select_related("ticket__organisation", "ticket__sla_version").order_by(
            F("ack_due").asc(nulls_last=True), "pk"
        )[:LIMIT]
    ]
    return Section(rows, qs.count())


def held_emails(*, include_security: bool, include_customers: bool = True) -> Section:
    """Held email, oldest first: customers' for email triage, the security address's for who sees
    vulnerability reports (tickets.admin.inbound shows each what it shows here)."""
    qs = InboundMessage.objects.filter(outcome=InboundMessage.Outcome.HELD)
    if not include_security:
        qs = qs.exclude(security=True)
    if not include_customers:
        qs = qs.filter(security=True)
    rows = [
        HeldRow(message_id=m.pk, received_at=m.received_at, sender=m.sender, subject=m.subject, reason=m.reason)
        for m in qs.only("received_at", "sender", "subject", "reason").order_by("received_at", "pk")[:LIMIT]
    ]
    return Section(rows, qs.count())


def today_bounds(now: datetime) -> tuple[datetime, datetime]:
    """Today in the current timezone: a staff member's own on the staff site (portal.core.staff_time)."""
    zone = timezone.get_current_timezone_name()
    return day_bounds(now.astimezone(ZoneInfo(zone)).date(), zone)


def maintenance_today(*, now: datetime) -> Section:
    start, end = today_bounds(now)
    qs = MaintenanceWindow.objects.filter(
        status=MaintenanceWindow.Status.SCHEDULED, starts_at__lt=end, ends_at__gt=start
    )
    rows = [
        WindowRow(
            window_id=w.pk, title=w.title, starts_at=w.starts_at, ends_at=w.ends_at, impact=w.get_impact_display()
        )
        for w in qs.only("title", "starts_at", "ends_at", "impact").order_by("starts_at", "pk")[:LIMIT]
    ]
    return Section(rows, qs.count())


def claims_this_month(*, month_start: datetime) -> int:
    return Claim.objects.filter(submitted_at__gte=month_start).count()


def links(*, now: datetime, week_start: datetime, month_start: datetime) -> dict[str, str]:
    """The filtered admin list behind each number of the dashboard (their admins name the lookups
    beyond their filters in `linked_lookups`)."""

    def to(name: str, **query) -> str:
        url = reverse(f"admin:{name}_changelist")
        return f"{url}?{urlencode(query)}" if query else url

    start, end = today_bounds(now)
    return {
        "breached": to("tickets_ticket", sla="breached"),
        "at_risk": to("tickets_ticket", sla="at_risk"),
        "past_target": to("tickets_ticket", sla="warned"),
        "waiting": to("tickets_ticket", sla="waiting_on_staff"),
        "tickets": to("tickets_ticket"),  # the queue: nearest deadline first
        "escalations": to("tickets_escalationrequest", state="pending"),
        "held": to("tickets_inboundmessage", outcome__exact="held"),
        "breaches": to("tickets_slacrossing", kind__exact="breach", at__gte=week_start.isoformat()),
        "today": to(
            "contracts_maintenancewindow",
            status__exact="scheduled",
            starts_at__lt=end.isoformat(),
            ends_at__gt=start.isoformat(),
        ),  # fmt: skip
        "windows": to("contracts_maintenancewindow", status__exact="scheduled", impact__exact="downtime"),
        "flagged": to("credits_monthlyuptime", flagged__exact="1"),
        "reopened": to("credits_monthlyuptime", status__exact="reopened"),
        "claims": to("credits_claim"),  # the review queue: awaiting review
        "month_claims": to("credits_claim", status="all", submitted_at__gte=month_start.isoformat()),
        "sweeps": to("portal_sweepheartbeat"),
    }
