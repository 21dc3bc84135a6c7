"""A deactivated person is emailed nothing more, whatever the email's key and wherever it stands:
the emails written for them and not sent yet are given up when they are deactivated, and the
sender checks again before sending. Before, only pending rows keyed ...:user:<pk> were given up: a
deactivated customer still got the rating email (key ticket:<id>:rating), a deactivated staff member
"Assigned to you" (...:to:<address>), an email whose sender died mid-send was sent after the
deactivation, and staff retrying the failed emails after an SMTP outage sent the withdrawn ones."""

from datetime import timedelta

import pytest
from django.utils import timezone

from contracts.people.members import member_set_active
from portal.core.delivery import outbox_send_due
from portal.core.outbox import Email, outbox_enqueue
from portal.models import OutboxMessage
from tickets.models import Ticket
from tickets.services import ticket_assign, ticket_open, ticket_set_status

pytestmark = pytest.mark.django_db


def _file(contract, user):
    return ticket_open(user=user, contract=contract, service=contract.services.get(), priority="P3",
                       subject="Restore is slow", description="x")  # fmt: skip


def test_a_rating_email_not_sent_yet_is_given_up_when_the_filer_is_deactivated(acme_contract, alice, bob, sam,
                                                                               mailoutbox):  # fmt: skip
    """Bob's ticket is resolved: his rating email (key ticket:<id>:rating) waits in the outbox (the
    mail server is down, say). Alice deactivates Bob; the email must not go out."""
    ticket = _file(acme_contract, bob)
    ticket_set_status(ticket=ticket, actor=sam, status=Ticket.Status.RESOLVED)
    row = OutboxMessage.objects.get(key=f"ticket:{ticket.pk}:rating")
    assert row.to == bob.email and row.status == "pending"
    member_set_active(member=bob, active=False, actor=alice)
    mailoutbox.clear()
    outbox_send_due()
    assert [m.subject for m in mailoutbox if bob.email in m.to] == [], "the deactivated filer was emailed"


def test_an_email_whose_sender_crashed_is_given_up_when_its_recipient_is_deactivated(acme_contract, alice, bob,
                                                                                   mailoutbox):  # fmt: skip
    """A worker claimed Bob's email and died before sending it (status `sending`, its lease ran
    out): it is an email "not sent yet" that the next sweep retries. Deactivating Bob must give it up."""
    outbox_enqueue(email=Email(key=f"ticket:1:reply:1:user:{bob.pk}", to=bob.email, template="password_reset",
                               context={"reset_url": "https://x/r"}))  # fmt: skip
    OutboxMessage.objects.filter(to=bob.email).update(
        status="sending", attempts=1, lease_until=timezone.now() - timedelta(minutes=1)
    )
    member_set_active(member=bob, active=False, actor=alice)
    mailoutbox.clear()
    outbox_send_due()
    assert [m for m in mailoutbox if bob.email in m.to] == [], "the email of the crashed sender went to Bob"


def test_an_assignment_email_not_sent_yet_is_given_up_when_the_staff_member_is_deactivated(acme_contract, alice,
                                                                                          sam, lena, mailoutbox):  # fmt: skip
    """Lena assigns a ticket to Sam (an email to Sam, keyed ...:to:<address>); before it is sent Sam
    leaves and is deactivated (the admin). He must not be emailed about a ticket he cannot open."""
    ticket = _file(acme_contract, alice)
    ticket_assign(ticket=ticket, actor=lena, assignee=sam)
    assert OutboxMessage.objects.filter(to=sam.email, status="pending").exists()
    sam.is_active = False
    sam.save()
    mailoutbox.clear()
    outbox_send_due()
    assert [m.subject for m in mailoutbox if sam.email in m.to] == [], "the deactivated staff member was emailed"


def test_staff_retrying_failed_emails_never_sends_a_withdrawn_one(acme_contract, alice, bob, ayo, mailoutbox):
    """Bob's email is given up when he is deactivated (status failed, "Not sent: the recipient was
    deactivated."). After an SMTP outage staff select the failed emails and retry them
    (delivery.outbox_retry_now, the outbox admin's action): Bob's must stay given up."""
    from portal.core.delivery import outbox_retry_now

    outbox_enqueue(email=Email(key=f"ticket:1:reply:1:user:{bob.pk}", to=bob.email, template="password_reset",
                               context={"reset_url": "https://x/r"}))  # fmt: skip
    member_set_active(member=bob, active=False, actor=alice)
    row = OutboxMessage.objects.get(to=bob.email)
    assert row.status == "failed"
    outbox_retry_now(ids=list(OutboxMessage.objects.filter(status="failed").values_list("id", flat=True)))
    mailoutbox.clear()
    outbox_send_due()
    assert [m for m in mailoutbox if bob.email in m.to] == [], "the retry emailed the deactivated person"
    row.refresh_from_db()
    assert (row.status, row.last_error) == ("failed", "Not sent: the recipient was deactivated.")
