"""Changes a customer must know of (issue 20, item 8): a priority changed (from and to, the reason,
the deadlines before and after, as tickets.deadlines stored them), a ticket excluded from the SLA
(the cause and the reason), a ticket assigned (to the assignee). Each emails the right people once,
threaded with the ticket's other emails (Reply-To its reply address, In-Reply-To its root).

Alice (Acme) files a P3 on Friday 11 December 2026 at 16:00 in Nairobi: first response due Monday
11:00 (4 business hours). Lena (support lead) assigns it to Sam, then makes it a P1 at 16:05: first
response 16:15 (15 minutes, 24x7). Bob, at Acme but not on the ticket, has ticket emails of others
off by default. Clocks are frozen."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

from portal.core.tasks import outbox_sweep
from portal.models import OutboxMessage
from tickets import mail_thread
from tickets.models import Ticket
from tickets.services import TicketError, ticket_assign, ticket_change_priority, ticket_exclude, ticket_open

pytestmark = pytest.mark.django_db

NBO = ZoneInfo("Africa/Nairobi")


def at(hour, minute):
    return datetime(2026, 12, 11, hour, minute, tzinfo=NBO)


@pytest.fixture
def ticket(acme_contract, alice, bob):
    with time_machine.travel(at(16, 0), tick=False):
        t = ticket_open(user=alice, contract=acme_contract, service=acme_contract.services.get(), priority="P3",
                        subject="Restore fails", description="Since last night.")  # fmt: skip
    assert t.first_response_due == datetime(2026, 12, 14, 11, 0, tzinfo=NBO)
    OutboxMessage.objects.update(status="sent")  # the filing's emails: sent before
    mail.outbox.clear()
    return t


def op(client, name, ticket, data, when, capture):
    """Staff's admin operation at `when`, its emails sent at that moment (as the worker would)."""
    with time_machine.travel(when, tick=False), capture(execute=True):
        return client.post(reverse(f"admin:tickets_ticket_{name}", args=[ticket.pk]), data)


def threaded(message, ticket):
    root = mail_thread.root_id(ticket)
    assert message.extra_headers["In-Reply-To"] == root and message.extra_headers["References"] == root
    assert message.extra_headers["Reply-To"] == mail_thread.reply_address_for(ticket, message.to[0])
    assert message.extra_headers["Auto-Submitted"] == "auto-generated"


def test_assigning_priority_and_exclusion_email_the_right_people_once(
    client, ticket, alice, bob, sam, lena, django_capture_on_commit_callbacks
):
    with time_machine.travel(at(14, 0), tick=False):  # a staff session lasts 12 hours from then
        client.force_login(lena)
    cap = django_capture_on_commit_callbacks
    assert op(client, "assign", ticket, {"assignee": sam.pk}, at(16, 1), cap).status_code == 302
    (assigned,) = mail.outbox
    assert assigned.to == [sam.email]
    assert assigned.subject == f"[{ticket.number}] Assigned to you: Restore fails"
    assert f'Ticket {ticket.number} (Acme Savings, P3 – medium-to-low impact) "Restore fails" is assigned to you.' in (
        assigned.body
    )
    assert "First response due: 2026-12-14 11:00 (UTC+03:00)" in assigned.body
    assert assigned.extra_headers["In-Reply-To"] == mail_thread.root_id(ticket)

    # The priority: a reason is required (the customer is told it); then Alice and Sam hear, once.
    mail.outbox.clear()
    refused = op(client, "priority", ticket, {"priority": "P1", "reason": " "}, at(16, 5), cap)
    assert refused.status_code == 400 and Ticket.objects.get().priority == "P3" and not mail.outbox
    response = op(client, "priority", ticket, {"priority": "P1", "reason": "Production is down."}, at(16, 5), cap)
    assert response.status_code == 302
    sent = {m.to[0]: m for m in mail.outbox}
    assert set(sent) == {alice.email, sam.email}  # Bob is not on the ticket; Lena made the change
    to_alice = sent[alice.email]
    assert to_alice.subject == f"[{ticket.number}] Priority changed from P3 to P1: Restore fails"
    body = to_alice.body
    assert (
        f'The priority of ticket {ticket.number} "Restore fails" changed from P3 – medium-to-low impact to '
        "P1 – production incident." in body
    )
    assert "Why: Production is down." in body
    t = Ticket.objects.get()
    assert t.first_response_due == at(16, 15)
    assert "First response due: 2026-12-11 16:15 (UTC+03:00) (was 2026-12-14 11:00 (UTC+03:00))" in body
    assert f"Resolution limit:   {t.resolution_due.astimezone(NBO):%Y-%m-%d %H:%M} (UTC+03:00) (was " in body
    threaded(to_alice, ticket)
    assert "List-Unsubscribe" in to_alice.extra_headers  # an update on her ticket: hers to turn off
    assert sent[sam.email].subject == f"[{ticket.number}] Priority P3 → P1: Restore fails"
    assert "Why: Production is down." in sent[sam.email].body

    # Excluded: the cause and the reason.
    mail.outbox.clear()
    response = op(client, "exclude", ticket, {"cause": "ddos", "reason": "A flood from one botnet."}, at(16, 30), cap)
    assert response.status_code == 302
    sent = {m.to[0]: m for m in mail.outbox}
    assert set(sent) == {alice.email, sam.email}
    to_alice = sent[alice.email]
    assert to_alice.subject.startswith(f"[{ticket.number}] Excluded from the SLA (")
    assert "Restore fails" in to_alice.subject
    assert f'Ticket {ticket.number} "Restore fails" is excluded from the SLA' in to_alice.body
    assert "Why: A flood from one botnet." in to_alice.body
    threaded(to_alice, ticket)

    # Each went once: the sweep run twice sends nothing more, and the same change again writes nothing.
    count = OutboxMessage.objects.count()
    with time_machine.travel(at(17, 0), tick=False), cap(execute=True):
        outbox_sweep()
        outbox_sweep()
        ticket_assign(ticket=ticket, actor=lena, assignee=sam, now=at(17, 0))
        ticket_change_priority(ticket=ticket, actor=lena, priority="P1", reason="Again.", now=at(17, 0))
        ticket_exclude(ticket=ticket, actor=lena, cause="ddos", reason="A flood from one botnet.", now=at(17, 0))
    assert OutboxMessage.objects.count() == count and len(mail.outbox) == 2
    keys = sorted(OutboxMessage.objects.exclude(status="sent", template__startswith="ticket_filed").values_list(
        "key", flat=True))  # fmt: skip
    assert len(keys) == len(set(keys)) == 5


def test_taking_a_ticket_oneself_sends_nothing_and_a_priority_needs_a_reason(
    ticket, sam, django_capture_on_commit_callbacks
):
    with time_machine.travel(at(16, 1), tick=False), django_capture_on_commit_callbacks(execute=True):
        ticket_assign(ticket=ticket, actor=sam, assignee=sam, now=at(16, 1))
    assert not mail.outbox and not OutboxMessage.objects.filter(template="ticket_changed_staff").exists()
    with pytest.raises(TicketError, match="Say why the priority changes"):
        ticket_change_priority(ticket=ticket, actor=sam, priority="P1", reason="", now=at(16, 2))
