"""Warnings before a breach, as the crossing sweep sends them (tickets.sweeps.check_sla_deadlines).

When a clock (first response, the resolution limit, an escalation request's acknowledgement) has
only the at-risk share of its allowance left (settings.SLA_AT_RISK_SHARE, per priority;
tickets.deadlines.warn_moments), the sweep records an "at_risk" crossing once and warns:

- the assignee, or while nobody has the ticket the queue (staff with the support agent role; the
  queue's address when there are none), and the support lead(s); a vulnerability report's warning
  goes to security staff alone, like its other staff emails (tickets.notify);
- one email each, through the outbox, saying the ticket, the clock, its deadline in the contract's
  timezone and in the staff member's own, and the working time left;
- a P1's first response also to the vendor's own webhook endpoints (its on-call tool), as
  `ticket.at_risk` (tickets.hooks.ticket_at_risk).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings

from portal.core.outbox import Email
from portal.core.roles import StaffRole

from . import deadlines, mail_thread, notify
from .models import Ticket


def warned_staff(t: Ticket, staff) -> list:
    """Who is warned: people (staff users) or, where a role has nobody, an address (str)."""
    if t.kind == Ticket.Kind.SECURITY:
        return staff.people(StaffRole.SECURITY) or [settings.SECURITY_CONTACT_EMAIL]
    assignee = notify.active_assignee(t)
    first = (
        [assignee] if assignee is not None else staff.people(StaffRole.SUPPORT_AGENT) or [settings.SUPPORT_QUEUE_EMAIL]
    )
    return first + staff.people(StaffRole.SUPPORT_LEAD)


def at_risk_emails(t: Ticket, clock: str, deadline: datetime, *, left: timedelta, now: datetime, staff) -> list[Email]:
    """One warning per staff member: keyed by ticket, clock, priority (one warning a priority: a
    priority change that moved the deadline warns again) and address, so a second sweep, a recompute
    or a restart never sends it again. `left`: the clock's working time left at `now`
    (the subject says "due in" only where that is also the wall clock's, a clock of every hour)."""
    base = {
        "clock": clock,
        "clock_label": deadlines.clock_words(clock),
        "deadline": deadline,
        "left": left,
        "in_wall_time": deadline - now == left,
        "ticket": t,
        "assignee": notify.active_assignee(t),  # None: the warning went to the queue, and says so
    }
    emails, seen = [], set()
    for person in warned_staff(t, staff):
        addr = person if isinstance(person, str) else person.email
        if addr in seen:
            continue
        seen.add(addr)
        own = "" if isinstance(person, str) else person.timezone
        emails.append(
            Email(
                key=f"ticket:{t.pk}:crossing:{clock}:at_risk:{t.priority}:to:{addr}",
                to=addr,
                template="ticket_at_risk",
                context={**base, "recipient": None if isinstance(person, str) else person, "own_timezone": own},
                headers={} if t.kind == Ticket.Kind.SECURITY else mail_thread.headers(t, addr),
            )
        )
    return emails
