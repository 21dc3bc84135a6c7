"""The demo's week of tickets (portal.site.demo_activity): filed, answered, escalated, resolved and
rated through the services at their own past moments, so `make run` shows a queue, a dashboard and
threaded emails; filed once."""

from datetime import datetime, timedelta
from email import message_from_bytes
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from contracts.models import Incident, IncidentStatus, MaintenanceWindow
from portal.core.tasks import outbox_sweep
from portal.models import User
from portal.site import demo
from portal.site.demo_activity import seed_demo_activity
from tickets.models import EscalationRequest, SLACrossing, Ticket, TicketEvent
from tickets.selectors import ticket_clock_views

pytestmark = pytest.mark.django_db

# A Friday afternoon: working hours in Nairobi (Kaluari) and Stockholm (Klart).
FRIDAY = datetime(2026, 12, 11, 15, 0, tzinfo=ZoneInfo("Africa/Nairobi"))
S = Ticket.SLAState


@pytest.fixture
def week():
    with time_machine.travel(FRIDAY, tick=False):
        demo.seed_demo()
        return seed_demo_activity()


def test_the_demo_week_has_every_state_of_the_queue(week):
    with time_machine.travel(FRIDAY, tick=False):
        views = ticket_clock_views(week)
    shown = [
        (t.organisation.slug, t.priority, t.status, views[t.pk].state, t.assignee and t.assignee.email) for t in week
    ]
    assert shown == [
        ("acme", "P2", "open", S.BREACHED, "sam@vendor.example"),
        ("acme", "P3", "new", S.AT_RISK, None),
        ("acme", "P4", "waiting", S.PAUSED, "sam@vendor.example"),
        ("acme", "P3", "resolved", S.MET, "sam@vendor.example"),
        ("globex", "STD", "new", S.ON_TRACK, None),
        ("globex", "STD", "open", S.BREACHED, "lena@vendor.example"),
        ("globex", "STD", "open", S.ON_TRACK, None),
    ]
    restore, *_, rated, _, called, emailed = week
    request = EscalationRequest.objects.get(ticket=restore)
    assert request.requested_by.email == "alice@acme.example" and request.acknowledged_at is None
    assert request.ack_due > FRIDAY  # pending on the staff dashboard
    assert (rated.rating.rating, rated.rating.rated_by.email) == ("good", "bob@acme.example")
    incident = Incident.objects.get()  # the vault's outage three days ago, told to the end
    assert incident.status == IncidentStatus.RESOLVED and incident.updates.count() == 3
    assert incident.outage.ends_at - incident.outage.starts_at == timedelta(minutes=50)
    window = MaintenanceWindow.objects.get()
    assert window.starts_at - FRIDAY > timedelta(days=4) and window.services.count() == 2
    # Lena's call answered Dana (the first response at the call); Charlie emailed support.
    call = called.calls.get()
    assert (call.direction, call.contact.email) == ("outbound", "dana@globex.example")
    assert called.first_response_at == call.started_at
    assert (emailed.channel, emailed.email_origin, emailed.created_by.email) == (
        "email", "<demo-price-list@globex.example>", "charlie@globex.example"
    )  # fmt: skip
    assert emailed.filed_at == FRIDAY - timedelta(hours=5)  # on the clock of our receipt
    # Once: a second run (make run again) files nothing.
    with time_machine.travel(FRIDAY, tick=False):
        assert seed_demo_activity() == []
        call_command("seed_demo", stdout=None)
    assert Ticket.objects.count() == 7


def test_the_demo_weeks_timers_fired_at_their_own_moments_not_when_it_was_seeded(week):
    """The sweeps ran at each moment a timer fell due as the week was filed, as beat would have:
    the restore ticket's breach is recorded at its deadline, its escalations step up the ladder
    one level at each level's time; nothing is caught up at the moment of seeding."""
    restore = week[0]
    crossings = list(SLACrossing.objects.filter(ticket=restore).order_by("recorded_at"))
    assert crossings and all(c.recorded_at < FRIDAY for c in crossings)
    breach = next(c for c in crossings if c.kind == SLACrossing.Kind.BREACH)
    assert breach.recorded_at == breach.at  # recorded as its deadline passed
    steps = list(TicketEvent.objects.filter(ticket=restore, kind=TicketEvent.Kind.ESCALATED).order_by("at"))
    assert [(e.data["from"], e.data["to"]) for e in steps] == [(1, 2), (2, 3), (3, 4)]
    assert len({e.at for e in steps}) == 3 and all(e.at < FRIDAY for e in steps)
    # The numbers follow the filing moments: the oldest ticket of the week is #1.
    assert sorted(week, key=lambda t: t.pk) == sorted(week, key=lambda t: t.filed_at)


def text_of(msg) -> str:
    return next(p for p in msg.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()


def test_the_demo_weeks_emails_thread_and_keep_internal_notes_in(week):
    with time_machine.travel(FRIDAY, tick=False):
        mail.outbox.clear()
        outbox_sweep()
    sent = [message_from_bytes(m.message().as_bytes()) for m in mail.outbox]
    restore = week[0]
    to_alice = [m for m in sent if m["To"] == "alice@acme.example" and f"[#{restore.pk}]" in m["Subject"]]
    assert len(to_alice) >= 3  # the receipt, Sam's answer, her escalation's receipt
    root = to_alice[0]["Message-ID"]
    assert to_alice[0]["Auto-Submitted"] == "auto-generated" and "In-Reply-To" not in to_alice[0]
    for later in to_alice[1:]:
        assert later["Reply-To"] == to_alice[0]["Reply-To"] and later["Reply-To"].startswith(f"support+t{restore.pk}.")
        assert later["In-Reply-To"] == root and later["References"].split()[0] == root
    assert any("Which agent version" in text_of(m) for m in to_alice)  # Sam's answer
    # Charlie's emailed ticket: Lena's answer threads from his own message.
    to_charlie = [m for m in sent if m["To"] == "charlie@globex.example" and f"[#{week[-1].pk}]" in m["Subject"]]
    assert len(to_charlie) == 2 and to_charlie[0]["In-Reply-To"] == "<demo-price-list@globex.example>"
    assert all(m["References"].split()[0] == "<demo-price-list@globex.example>" for m in to_charlie)
    assert to_charlie[0]["Auto-Submitted"] == "auto-replied"  # the receipt answers a person's own message
    assert any("price list in the assistant's sources" in text_of(m) for m in to_charlie)
    customers = set(User.objects.filter(organisation__isnull=False).values_list("email", flat=True))
    for m in sent:
        if m["To"] in customers:
            body = m.as_string()
            assert "Staging folder permissions" not in body and "Language detection" not in body  # internal notes


def test_the_demo_week_on_the_agents_queue_and_the_customers_list(week):
    with time_machine.travel(FRIDAY, tick=False):
        staff, alice = Client(), Client()
        staff.force_login(User.objects.get(email="sam@vendor.example"))
        alice.force_login(User.objects.get(email="alice@acme.example"))
        queue = staff.get(reverse("admin:tickets_ticket_changelist"))
        mine = alice.get(reverse("ticket-list"), {"status": ""})
        status = Client().get("/status/")
    assert {t.pk for t in queue.context["cl"].result_list} == {t.pk for t in week if t.is_active}
    assert {row["ticket"].organisation.slug for row in mine.context["rows"]} == {"acme"}
    assert len(mine.context["rows"]) == 4
    page = status.content.decode()
    assert "Backups and restores failing" in page and "Disk swap in the Frankfurt data centre" in page


def test_make_runs_seed_goes_on_without_the_week_when_it_cannot_be_filed(monkeypatch):
    """The week is a nicety: a failure keeps nothing of it and says why; the demo's people and
    contracts are there and `make run` goes on."""
    from io import StringIO

    def broken(*args, **kwargs):
        raise ValueError("no such moment")

    monkeypatch.setattr("portal.management.commands.seed_demo.seed_demo_activity", broken)
    out, err = StringIO(), StringIO()
    with time_machine.travel(FRIDAY, tick=False):
        call_command("seed_demo", stdout=out, stderr=err)
    assert "The demo week was not filed (ValueError: no such moment)" in err.getvalue()
    assert "Demo data ready." in out.getvalue() and User.objects.filter(email="alice@acme.example").exists()
    assert not Ticket.objects.exists()
