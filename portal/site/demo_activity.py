"""A week of demo work on top of the demo data (portal.site.demo): tickets filed, answered,
assigned, escalated, resolved and rated, an outage with its incident's updates, and a maintenance
window ahead, so that a new user of `make run` finds a queue, a staff dashboard, customers' ticket
lists, a status page and threaded emails instead of empty pages.

Everything goes through the services, each step at its own moment in the past (`now`), in the
order the moments came, and the ticket sweeps run at each moment one of their timers fell due in
between, as beat would have run them: an escalation steps up the ladder and a breach is recorded at
its deadline, not all at once when the demo is seeded. So the clocks, crossings, emails and audit
trail are the product's own. Once: nothing is done when the demo organisations have tickets. The
states the clocks show depend on when it runs (working hours, the weekend), as they would for real
tickets filed at those moments."""

from __future__ import annotations

from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from contracts.incidents.services import incident_open, incident_post_update
from contracts.maintenance.services import window_publish
from contracts.models import Contract, IncidentStatus, Service
from contracts.outages.services import outage_record
from contracts.sla_templates import KLART_SUPPORT
from portal.models import User
from tickets.channels import ticket_call_log
from tickets.inbound.service import ingest
from tickets.models import Ticket, TicketCall
from tickets.satisfaction import ticket_rate
from tickets.services import (
    ticket_assign,
    ticket_open,
    ticket_reply,
    ticket_request_escalation,
)
from tickets.sweeps import check_sla_deadlines, escalate_due_tickets

from .demo import ORGANISATIONS

H = timedelta(hours=1)
M = timedelta(minutes=1)

# (contract, filer, priority, filed this long ago, subject, description), then what happened after,
# each step this long after the filing: ("assign", by, to), ("reply", author, body[, status]),
# ("note", author, body), ("escalate", who, reason), ("rate", who, rating, comment),
# ("call", by, whom, minutes, notes): an outbound call that answered the customer.
SAM, LENA, ADA = "sam@vendor.example", "lena@vendor.example", "admin@vendor.example"
ALICE, BOB, CHARLIE, DANA = "alice@acme.example", "bob@acme.example", "charlie@globex.example", "dana@globex.example"
TICKETS = [
    ("KAL-0001", ALICE, "P2", 28 * H, "Restores from the Frankfurt vault stop at 40%",
     "Since yesterday every restore of the finance share stops at 40% with error 0x80070005. Backups still run.", [
        (20 * M, "assign", LENA, SAM),
        (50 * M, "reply", SAM, "Thank you, Alice. Which agent version runs on the file server? The restore log would help too."),
        (2 * H, "reply", ALICE, "Version 8.4.2. The log says 'access denied' on the staging folder."),
        (3 * H, "note", SAM, "Staging folder permissions reset by the 8.4.2 update: known issue, fix in 8.4.3."),
        (27 * H + 40 * M, "escalate", ALICE, "The month-end close needs these files by Monday."),
    ]),
    ("KAL-0001", BOB, "P3", 3 * H, "Backup agent on FS-02 reports 'quota exceeded'",
     "The nightly job on FS-02 failed with 'quota exceeded', but the vault shows 60% used.", []),
    ("KAL-0001", ALICE, "P4", 2 * 24 * H, "How do we add a second retention policy?",
     "We want to keep the monthly backups for seven years and the daily ones for 30 days.", [
        (3 * H, "assign", SAM, SAM),
        (4 * H, "reply", SAM, "Two policies on one job are possible from agent 8.4: shall I send the steps for your version?",
         Ticket.Status.WAITING),
    ]),
    ("KAL-0001", BOB, "P3", 6 * 24 * H, "The SQL server's nightly job was skipped",
     "The job for SQL-01 did not run last night; nothing in the agent's log.", [
        (1 * H, "assign", SAM, SAM),
        (2 * H, "reply", SAM, "The job's schedule was paused by the agent's update: resumed, and tonight's run is queued.",
         Ticket.Status.RESOLVED),
        (27 * H, "rate", BOB, "good", "Quick and clear, thank you."),
    ]),
    ("KLA-0001", CHARLIE, "STD", 25 * M, "The assistant answers nobody: every chat times out",
     "Since 10 minutes ago every chat in the shop's assistant ends with a timeout. All stores are affected.", []),
    ("KLA-0001", DANA, "STD", 26 * H, "Answers in English to questions asked in Swedish",
     "Customers writing in Swedish get their answers in English since the update.", [
        (30 * M, "assign", LENA, LENA),
        (40 * M, "note", LENA, "Language detection falls back to English for short questions: asked the model team."),
        (45 * M, "call", LENA, DANA, 8, "Dana showed three short questions answered in English; long ones are fine."),
        (1 * H, "reply", LENA, "Thank you, Dana: we reproduced it with short questions and are working on a fix."),
    ]),
]  # fmt: skip


def _step(ticket: Ticket, step: tuple, at: datetime, people: dict[str, User]) -> None:
    kind, who, *rest = step
    actor = people[who]
    if kind == "assign":
        ticket_assign(ticket=ticket, actor=actor, assignee=people[rest[0]], now=at)
    elif kind in ("reply", "note"):
        status = rest[1] if len(rest) > 1 else None
        ticket_reply(ticket=ticket, author=actor, body=rest[0], internal=kind == "note", status=status, now=at)
    elif kind == "escalate":
        ticket_request_escalation(ticket=ticket, user=actor, reason=rest[0], now=at)
    elif kind == "rate":
        ticket_rate(ticket=ticket, user=actor, rating=rest[0], comment=rest[1], now=at)
    elif kind == "call":
        whom, minutes, notes = people[rest[0]], rest[1], rest[2]
        ticket_call_log(
            ticket=ticket, actor=actor, direction=TicketCall.Direction.OUTBOUND, started_at=at, answered=True,
            duration=minutes * M, notes=notes, contact=whom, now=at + minutes * M,
        )  # fmt: skip
    else:
        raise ValueError(f"unknown demo step {kind!r}")


def _emailed(at: datetime, lena: User) -> int | None:
    """Charlie emails Klart's support address (level 1 of its ladder), as an MTA would pipe it in:
    a ticket on the clock of our receipt, and Lena's answer threads from his own message. None when
    the channel did not file it (the address changed in the terms, say): the demo goes on without."""
    msg = EmailMessage()
    msg["Received"] = f"from mx.globex.example by mx.vendor.example; {format_datetime(at)}"
    msg["From"] = f"Charlie Carlsson <{CHARLIE}>"
    msg["To"] = KLART_SUPPORT
    msg["Subject"] = "The assistant quotes last year's price list"
    msg["Date"] = format_datetime(at)
    msg["Message-ID"] = "<demo-price-list@globex.example>"
    msg.set_content("Hello,\n\nsince this morning the assistant answers our customers with the 2025 prices.\n\nCharlie")
    outcome = ingest(msg.as_bytes(), received_at=at, source="pipe")
    if outcome.kind != "filed":
        return None
    ticket = Ticket.objects.get(pk=outcome.ticket_id)
    ticket_reply(ticket=ticket, author=lena, now=at + 45 * M,
                 body="Thank you, Charlie: the price list in the assistant's sources is being replaced.")  # fmt: skip
    return ticket.pk


def _outage_and_maintenance(now: datetime, lena: User, ada: User) -> None:
    """Three days ago the backup vault was down for 50 minutes, told as an incident from its
    first update to resolved; a disk swap on both services is scheduled five days ahead (its
    notices go out 48 hours before, from the sweep)."""
    backup, assistant = Service.objects.get(slug="cloud-backup"), Service.objects.get(slug="ai-assistant")
    start = (now - timedelta(days=3)).replace(minute=10, second=0, microsecond=0)
    outage = outage_record(
        title="Frankfurt vault unreachable", services=[backup], starts_at=start, ends_at=start + 50 * M,
        description="A storage controller failed over and the vault stopped taking connections.", actor=lena,
        now=start + 5 * M,
    )  # fmt: skip
    incident = incident_open(
        outage=outage, title="Backups and restores failing", status=IncidentStatus.INVESTIGATING,
        body="Backups and restores to the Frankfurt vault are failing. We are investigating.", actor=lena,
        now=start + 8 * M,
    )  # fmt: skip
    incident_post_update(
        incident=incident, status=IncidentStatus.MONITORING, actor=lena, now=start + 52 * M,
        body="The storage controller is replaced and the vault takes connections again. Jobs missed meanwhile run now.",
    )  # fmt: skip
    incident_post_update(
        incident=incident, status=IncidentStatus.RESOLVED, actor=lena, now=start + 2 * H,
        body="Every missed backup has run. The vault was unreachable for 50 minutes; no data was lost.",
    )  # fmt: skip
    swap = (now + timedelta(days=5)).replace(hour=0, minute=0, second=0, microsecond=0)
    window_publish(
        title="Disk swap in the Frankfurt data centre", services=[backup, assistant], starts_at=swap,
        ends_at=swap + 2 * H, description="Old disks of the storage cluster are replaced. Backups wait until it ends.",
        actor=ada, now=now,
    )  # fmt: skip


@transaction.atomic
def seed_demo_activity(now: datetime | None = None) -> list[Ticket]:
    """File the demo tickets and what happened to them, unless the demo organisations have tickets.
    Returns the tickets filed, in the order of TICKETS and Charlie's emailed one last (none the
    second time); their numbers follow the moments they were filed."""
    now = now or timezone.now()
    slugs = [spec["slug"] for spec in ORGANISATIONS]
    if Ticket.objects.filter(organisation__slug__in=slugs).exists():
        return []
    people = {u.email: u for u in User.objects.filter(email__in={SAM, LENA, ADA, ALICE, BOB, CHARLIE, DANA})}
    # (when, which of TICKETS, its step or None for its filing), and Charlie's email (which None).
    moments = [(now - 5 * H, None, None)]
    for n, (_, _, _, ago, _, _, steps) in enumerate(TICKETS):
        moments.append((now - ago, n, None))
        moments += [(now - ago + after, n, tuple(step)) for after, *step in steps]
    tickets: dict[int, Ticket] = {}
    emailed = None
    for at, n, step in sorted(moments, key=lambda m: m[0]):  # stable: a filing before its steps
        _sweeps_until(at)
        if n is None:
            emailed = _emailed(at, people[LENA])
        elif step is None:
            reference, filer, priority, _, subject, description, _ = TICKETS[n]
            contract = Contract.objects.get(reference=reference)
            tickets[n] = ticket_open(
                user=people[filer], contract=contract, service=contract.services.get(), priority=priority,
                subject=subject, description=description, now=at,
            )  # fmt: skip
        else:
            _step(tickets[n], step, at, people)
    _sweeps_until(now)
    _outage_and_maintenance(now, people[LENA], people[ADA])
    filed = [tickets[n].pk for n in range(len(TICKETS))] + ([emailed] if emailed is not None else [])
    found = Ticket.objects.in_bulk(filed)
    return [found[pk] for pk in filed]


def _sweeps_until(moment: datetime) -> None:
    """The ticket sweeps (escalation timers, SLA warnings and breaches) at each moment one of their
    timers fell due up to `moment`, as beat runs them every minute."""
    last = None
    while True:
        due = Ticket.objects.aggregate(escalation=Min("next_escalation_due"), check=Min("next_sla_check_at"))
        at = min((d for d in due.values() if d is not None), default=None)
        if at is None or at > moment:
            return
        if last is not None and at <= last:  # a sweep that did not move its timer would loop forever
            raise RuntimeError(f"the demo's sweeps at {last} left a timer due at {at}")
        escalate_due_tickets(now=at)
        check_sla_deadlines(now=at)
        last = at
