"""The two ticket sweeps, run by beat every minute. Each takes due tickets in batches with
select_for_update(skip_locked=True) — so two sweeps at once never take the same ticket — and does
a fixed number of queries per batch, whatever the batch's size.

- escalate_due_tickets: moves each due ticket to the level it should now be at (one email naming
  every level passed, however long the workers were down), and after the last level's dwell
  sends one "unresolved at the top level" alert.
- check_sla_deadlines: records each warning and breach once, with the moment it happened, and
  emails them; also the acknowledgement clock of escalation requests. The warnings before a
  breach ("at_risk": the at-risk share of a clock's allowance left) are tickets.at_risk's.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import prefetch_related_objects
from django.utils import timezone

from contracts.selectors import levels_by_version
from portal.core.notify_rules import Kind
from tickets import at_risk, deadlines, hooks, notify
from tickets.models import SLACrossing, Ticket, TicketEvent
from tickets.recompute import recompute_overdue, save_columns
from tickets.terms_cache import TermsCache

BATCH = 500


def due(field: str, now: datetime):
    """Tickets whose `field` due-time has come, earliest first: served by a partial index."""
    return Ticket.objects.filter(**{f"{field}__lte": now}).order_by(field)


# What the sweeps' emails read with a ticket: its organisation, contract (and contacts), filer and
# SLA version (the emails show its timezone); the breach emails also name the assignee.
ESCALATION_RELATED = ("organisation", "contract", "created_by", "sla_version")


def _take(field: str, now: datetime, batch: int, related=ESCALATION_RELATED) -> list[Ticket]:
    # skip_locked: a second sweep running at the same time takes other tickets, never these.
    return list(due(field, now).select_for_update(skip_locked=True, of=("self",)).select_related(*related)[:batch])


class StaffDirectory:
    """Staff by role, loaded once per sweep (in one query, on first use)."""

    def __init__(self):
        self._by_role = None

    def people(self, role: str) -> list:
        if self._by_role is None:
            self._by_role = {}
            for user in (
                get_user_model().objects.filter(is_staff=True, is_active=True).exclude(staff_role="").order_by("id")
            ):
                self._by_role.setdefault(user.staff_role, []).append(user)
        return self._by_role.get(role, [])

    def emails(self, role: str) -> list[str]:
        return [u.email for u in self.people(role)]

    def first(self, role: str):
        """The staff member a level without a contact of its own names (contracts.selectors.level_contact)."""
        return next(iter(self.people(role)), None)


def escalate_due_tickets(*, now: datetime | None = None, batch: int = BATCH) -> int:
    now = now or timezone.now()
    staff, moved = StaffDirectory(), 0
    while True:
        with transaction.atomic():
            tickets = _take("next_escalation_due", now, batch)
            if not tickets:
                break
            prefetch_related_objects(
                tickets, "contract__contacts", "organisation__account_manager", "organisation__solutions_manager"
            )
            ladders = levels_by_version({t.sla_version_id for t in tickets})
            audience = notify.Audience(tickets)
            events, emails, moves = [], [], []
            for t in tickets:
                levels = ladders[t.sla_version_id]
                dues = deadlines.dues_from_json(t.escalation_dues)
                resolved = t.resolved_at if t.status not in Ticket.ACTIVE else None
                step = deadlines.escalation_at(
                    dues, current=t.escalation_level, alerted=t.top_alert_sent, now=now, resolved_at=resolved
                )
                if step.passed:
                    # A level due before the ticket's resolution, found late (the workers were down):
                    # recorded at its moment, and nobody is told to act on a ticket resolved since.
                    at = now if resolved is None else dues[step.level - 2]
                    events.append(
                        TicketEvent(
                            ticket=t,
                            kind=TicketEvent.Kind.ESCALATED,
                            at=at,
                            data={"from": t.escalation_level, "to": step.level, "passed": list(step.passed)},
                        )
                    )
                    if resolved is None:
                        new = levels[step.level - 1]
                        passed = [levels[n - 1] for n in step.passed]
                        ctx = {"level": new, "passed": passed, "from_level": t.escalation_level}
                        key = f"ticket:{t.pk}:escalation:{step.level}"
                        emails += notify.to_addresses(
                            notify.level_staff_emails(new, t.organisation, staff.emails),
                            f"{key}:staff",
                            "ticket_escalated_staff",
                            ctx,
                            t,
                            staff.emails,
                        )
                        emails += notify.to_customers(
                            t,
                            f"{key}:customer",
                            "ticket_escalated",
                            {**ctx, "contact": _customer_contact(new, t.organisation, staff)},
                            kind=Kind.ESCALATION,
                            audience=audience,
                        )
                        moves.append((t, t.escalation_level, step.level))
                    t.escalation_level = step.level
                    moved += 1
                if step.top_alert_due and resolved is None:  # resolved since: nobody is alerted
                    top = levels[-1]
                    events.append(
                        TicketEvent(ticket=t, kind=TicketEvent.Kind.TOP_ALERT, at=now, data={"level": top.level})
                    )
                    emails += notify.to_addresses(
                        notify.level_staff_emails(top, t.organisation, staff.emails),
                        f"ticket:{t.pk}:top-alert",
                        "ticket_top_alert",
                        {"level": top},
                        t,
                        staff.emails,
                    )
                    t.top_alert_sent = True
                t.next_escalation_due = step.next_due
            save_columns(tickets, ["escalation_level", "top_alert_sent", "next_escalation_due"])
            TicketEvent.objects.bulk_create(events)
            notify.send(emails, now)
            hooks.emit([hooks.ticket_escalated(t, old, new) for t, old, new in moves], now)
        if len(tickets) < batch:
            break
    return moved


def _customer_contact(level, organisation, staff) -> str:
    from contracts.selectors import level_contact

    # The sweep's staff directory answers the fallback: no query per ticket.
    return level_contact(level=level, organisation=organisation, staff_by_role=staff.first)[1]


CROSSING_ROWS = deadlines.CROSSING_ROWS


def check_sla_deadlines(*, now: datetime | None = None, batch: int = BATCH) -> int:
    now = now or timezone.now()
    recompute_overdue(now=now)  # an edit's recompute whose task was lost: deadlines first
    staff, recorded = StaffDirectory(), 0
    while True:
        with transaction.atomic():
            tickets = _take("next_sla_check_at", now, batch, (*ESCALATION_RELATED, "assignee"))
            if not tickets:
                break
            prefetch_related_objects(tickets, "crossings", "escalation_requests", "contract__contacts")
            rows, events, emails, breaches, hook_events = [], [], [], [], []
            audience, terms = notify.Audience(tickets), TermsCache()
            for t in tickets:
                # The recorded crossings that stand (an at-risk warning while about the clock's deadline).
                seen = deadlines.standing(
                    [deadlines.Recorded(c.clock, c.kind, c.priority, c.deadline) for c in t.crossings.all()],
                    priority=t.priority,
                    deadline_of=lambda clock, t=t: _warned_deadline(t, clock),
                )
                # The stored deadlines, as the services and the recompute task derived them.
                crossed = {} if t.is_excluded else deadlines.crossings_due(t, now=now)
                found = [(*CROSSING_ROWS[c], at) for c, at in crossed.items()]
                pending_acks = []
                for r in t.escalation_requests.all():
                    if r.acknowledged_at is None and r.ack_due:
                        if r.ack_due <= now:
                            found.append((f"ack:{r.pk}", SLACrossing.Kind.BREACH, r.ack_due))
                        else:
                            pending_acks.append(r.ack_due)
                        warn = deadlines.ack_at_risk(r.ack_warn_at, r.ack_due, now=now)
                        if warn is not None and (f"ack:{r.pk}", SLACrossing.Kind.AT_RISK) not in seen:
                            if warn <= now:
                                found.append((f"ack:{r.pk}", SLACrossing.Kind.AT_RISK, warn))
                            else:
                                pending_acks.append(warn)
                # A warning whose clock breaches in this same run (P1/P2, target and limit at once)
                # is recorded, but its email would only say less than the breach's, at once.
                breaching = {c for c, kind, _ in found if kind == SLACrossing.Kind.BREACH and (c, kind) not in seen}
                for clock, kind, at in found:
                    if (clock, kind) in seen:
                        continue
                    # The deadline it names: the clock's due moment (the ack's is the request's).
                    due = _warned_deadline(t, clock) if kind == SLACrossing.Kind.AT_RISK else at
                    if kind == SLACrossing.Kind.AT_RISK:
                        terms.load([t.sla_version_id])
                        left = deadlines.clock_of(terms.targets(t.sla_version_id, t.priority), clock).elapsed(now, due)
                        hook_events.append(hooks.ticket_at_risk(t, clock, due, left))
                    rows.append(
                        SLACrossing(
                            ticket=t, clock=clock, kind=kind, at=at, recorded_at=now, priority=t.priority, deadline=due
                        )
                    )
                    events.append(
                        TicketEvent(
                            ticket=t,
                            kind=TicketEvent.Kind.CROSSING,
                            at=now,
                            data={"clock": clock, "kind": kind, "deadline": at.isoformat()},
                        )
                    )
                    seen.add((clock, kind))
                    if kind == SLACrossing.Kind.AT_RISK:
                        emails += at_risk.at_risk_emails(t, clock, due, left=left, now=now, staff=staff)
                        continue
                    if kind == SLACrossing.Kind.BREACH or clock not in breaching:
                        emails += _crossing_emails(t, clock, kind, at, staff, audience)
                    if kind == SLACrossing.Kind.BREACH:
                        t.breached = True
                        breaches.append((t, clock, at))
                    else:
                        t.warned = True
                ahead = [] if t.is_excluded else deadlines.pending_moments(t, now=now)
                t.next_sla_check_at = min(
                    [m for c, m in ahead if CROSSING_ROWS[c] not in seen] + pending_acks, default=None
                )
            # ignore_conflicts: the unique (ticket, clock, kind) makes a crossing once, whatever races.
            SLACrossing.objects.bulk_create(rows, ignore_conflicts=True)
            save_columns(tickets, ["breached", "warned", "next_sla_check_at"])
            TicketEvent.objects.bulk_create(events)
            notify.send(emails, now)
            hooks.emit([hooks.ticket_breached(t, clock, at) for t, clock, at in breaches] + hook_events, now)
            recorded += len(rows)
        if len(tickets) < batch:
            break
    return recorded


def _warned_deadline(t: Ticket, clock: str) -> datetime | None:
    """A clock's deadline as stored: the first response's, the resolution limit, a request's acknowledgement."""
    if clock.startswith("ack:"):
        return next((r.ack_due for r in t.escalation_requests.all() if f"ack:{r.pk}" == clock), None)
    return t.first_response_due if clock == "first_response" else t.resolution_due


def _crossing_emails(t: Ticket, clock: str, kind: str, at: datetime, staff: StaffDirectory, audience) -> list:
    key = f"ticket:{t.pk}:crossing:{clock}:{kind}"
    ctx = {"clock": clock, "clock_label": deadlines.clock_words(clock), "kind": kind, "deadline": at}
    if kind == SLACrossing.Kind.WARNING:
        return notify.to_addresses(notify.queue_or_assignee(t), f"{key}:staff", "ticket_warning", ctx, t, staff.emails)
    # A breach: the assignee (an inactive one's: the queue, and the email says so), the support
    # lead(s) and the customer's contacts (a vulnerability report's: security staff alone, notify.to_addresses).
    staff_ctx = {**ctx, "assignee": notify.active_assignee(t)}
    staff_emails = notify.queue_or_assignee(t) + staff.emails("support_lead")
    to_customer = {**ctx, "clock_label": deadlines.clock_words(clock, to_customer=True)}
    return notify.to_addresses(
        staff_emails, f"{key}:staff", "ticket_breach_staff", staff_ctx, t, staff.emails
    ) + notify.to_customers(t, f"{key}:customer", "ticket_breach", to_customer, kind=Kind.BREACH, audience=audience)
