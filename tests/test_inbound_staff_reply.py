"""A staff member answers a ticket email in their mail client: the reply is posted on the ticket as a
public staff reply (the first response at our receipt of it, NEW to OPEN, the customer emailed as for
a reply in the admin), once, its quotes stripped and the whole message kept for staff alone. A
staff reply speaks for us and a From can be forged, so it is posted only when it was sent to the
reply address whose token was made for that staff member's own address (the Reply-To of the ticket
email they got); anything else from staff is held, never answered. Alice files by email; Sam is a support agent."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from portal.core.delivery import outbox_send_due
from portal.models import AuditEntry, OutboxMessage
from tickets import mail_thread
from tickets.models import InboundMessage, Ticket, TicketEvent
from tickets.services import TicketError, ticket_assign, ticket_set_status

from .factories import StaffFactory
from .test_inbound import LATER, RECEIVED, frozen, mail, take  # noqa: F401 - frozen: the fixture, used by name

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]

ANSWERED = RECEIVED + timedelta(minutes=40)  # when our side received Sam's answer (before "now", LATER)
QUOTED = (
    "Restore from the snapshot of the 2nd; I started it for you.\n\n"
    "On Tue, 3 Nov 2026 at 10:05, SLA Portal <support@kaluari.com> wrote:\n"
    "> Ticket #1 was assigned to you.\n> Restore fails\n"
)
PASSED = {"Authentication-Results": "mx.vendor.example; dmarc=pass header.from=vendor.example"}


@pytest.fixture
def filed(settings, acme_contract, alice, bob, lena, sam):
    """Alice's ticket, filed by email, assigned to Sam (by Lena): Sam's email about it."""
    settings.INBOUND_AUTHSERV_ID = "mx.vendor.example"  # DMARC verdicts of our MTA are believed
    ticket = Ticket.objects.get(pk=take(mail()).ticket_id)
    ticket_assign(ticket=ticket, actor=lena, assignee=sam, now=RECEIVED + timedelta(minutes=5))
    ticket.refresh_from_db()
    return ticket


def staff_email(ticket, staff) -> OutboxMessage:
    return OutboxMessage.objects.get(key__startswith=f"ticket:{ticket.pk}:assigned:", to=staff.email)


def answer(ours: OutboxMessage, *, sender="sam@vendor.example", to=None, body=QUOTED, message_id="<s1@vendor.example>",
           headers=None, subject="Re: Restore fails") -> bytes:  # fmt: skip
    """What a mail client sends on Reply: to the email's Reply-To, answering its Message-ID."""
    thread = {"In-Reply-To": ours.message_id, "References": f"{ours.headers['References']} {ours.message_id}"}
    return mail(sender=sender, to=to or ours.headers["Reply-To"], subject=subject, body=body, message_id=message_id,
                headers={**PASSED, **thread, **(headers or {})})  # fmt: skip


# --- Posted ---------------------------------------------------------------------------------------
def test_a_staff_email_carries_a_reply_address_made_for_the_staff_member(filed, sam):
    ours = staff_email(filed, sam)
    assert mail_thread.ticket_of_address(ours.headers["Reply-To"], sam.email) == filed.pk
    assert mail_thread.ticket_of_address(ours.headers["Reply-To"], "alice@acme.example") is None
    assert ours.headers["In-Reply-To"] == mail_thread.root_id(filed)


def test_a_staff_reply_to_its_own_reply_address_is_a_public_staff_reply(filed, sam, alice, mailoutbox):
    assert (filed.status, filed.first_response_at) == ("new", None)
    raw = answer(staff_email(filed, sam))
    outbox_send_due()  # the receipt and Sam's email, sent before
    mailoutbox.clear()

    outcome = take(raw, received=ANSWERED)

    assert (outcome.kind, outcome.ticket_id) == ("replied", filed.pk)
    filed.refresh_from_db()
    assert filed.status == "open"
    assert filed.first_response_at == ANSWERED  # our receipt of the message, not now (LATER)
    message = filed.messages.get()
    assert (message.author, message.internal, message.created_at) == (sam, False, ANSWERED)
    assert message.body == "Restore from the snapshot of the 2nd; I started it for you."  # the quote stripped
    # The whole message quotes Sam's email (what Alice was not sent): not a file on the public reply,
    # which Alice sees, but kept on its inbound row beside the reply, for staff.
    assert not message.attachments.exists()
    row = InboundMessage.objects.get(pk=outcome.inbound_id)
    assert (row.outcome, row.ticket_message, row.organisation_id) == ("replied", message, filed.organisation_id)
    assert bytes(row.raw) == raw
    assert TicketEvent.objects.filter(ticket=filed, kind="status", actor=sam).exists()  # audited like any move

    # The customer hears of it as of a reply in the admin: one email, threaded, with her own reply address.
    outbox_send_due()
    to_alice = [m for m in mailoutbox if m.to == [alice.email]]
    assert len(to_alice) == 1
    email = to_alice[0]
    row = OutboxMessage.objects.get(to=alice.email, key__startswith=f"ticket:{filed.pk}:reply:{message.pk}")
    assert row.template == "ticket_reply" and "Restore from the snapshot of the 2nd" in email.body
    assert mail_thread.ticket_of_address(email.extra_headers["Reply-To"], alice.email) == filed.pk
    assert email.extra_headers["In-Reply-To"] == mail_thread.root_id(filed)
    assert email.extra_headers["References"] == f"<m1@acme.example> {mail_thread.root_id(filed)}"
    assert not [m for m in mailoutbox if m.to == [sam.email]]  # nobody tells Sam of his own reply


def test_a_staff_reply_to_the_support_queues_copy_is_posted_and_a_customers_is_not_taken_for_staff(
    filed, sam, bob, alice, settings
):
    """The queue's emails (a new ticket nobody is assigned) go to its address, a list of its
    members: one of them answers from their own address; a customer holding that copy is not staff."""
    queue = OutboxMessage.objects.get(key=f"ticket:{filed.pk}:filed-staff:to:{settings.SUPPORT_QUEUE_EMAIL}")
    assert mail_thread.ticket_of_address(queue.headers["Reply-To"], sam.email) is None  # not made for Sam
    forged = take(answer(queue, sender="bob@acme.example", message_id="<b1@acme.example>", headers={"References": ""},
                         subject="Re: Restore fails"), received=ANSWERED)  # fmt: skip
    assert forged.kind == "replied" and filed.messages.get().author == bob  # by its thread: Bob's own reply
    outcome = take(answer(queue), received=ANSWERED)
    assert (outcome.kind, outcome.ticket_id) == ("replied", filed.pk)
    assert filed.messages.filter(author=sam, internal=False).count() == 1


def test_the_same_staff_reply_ingested_twice_is_one_reply(filed, sam):
    raw = answer(staff_email(filed, sam))
    assert take(raw, received=ANSWERED).kind == "replied"
    assert take(raw, received=LATER).kind == "duplicate"
    # The same Message-ID from Sam with other bytes (another way in) is the same message.
    assert take(answer(staff_email(filed, sam), body="Copy."), received=LATER).kind == "duplicate"
    assert filed.messages.count() == 1 and InboundMessage.objects.filter(outcome="replied").count() == 1
    assert OutboxMessage.objects.filter(key__startswith=f"ticket:{filed.pk}:reply:").count() == 1  # to Alice


def test_staff_replies_are_not_held_by_the_per_sender_limit(settings, filed, sam):
    """An agent answers tens of tickets an hour in an outage; a customer's flood is still held."""
    settings.INBOUND_RATE_LIMIT = (2, timedelta(hours=1))
    ours = staff_email(filed, sam)
    kinds = [
        take(answer(ours, message_id=f"<s{n}@vendor.example>", body=f"Update {n}."), received=ANSWERED + timedelta(minutes=n)).kind
        for n in range(4)
    ]  # fmt: skip
    assert kinds == ["replied"] * 4 and filed.messages.count() == 4


def test_a_staff_reply_on_a_closed_ticket_follows_the_admins_rules(filed, sam):
    ticket_set_status(ticket=filed, actor=sam, status="closed", now=RECEIVED + timedelta(minutes=10))
    outcome = take(answer(staff_email(filed, sam)), received=ANSWERED)
    assert outcome.kind == "replied"
    filed.refresh_from_db()
    assert filed.status == "closed" and filed.messages.get().author == sam  # staff may, it stays closed


def test_an_out_of_office_from_staff_is_recorded_as_automatic(filed, sam):
    ooo = answer(staff_email(filed, sam), subject="Out of office", headers={"Auto-Submitted": "auto-replied"})
    outcome = take(ooo, received=ANSWERED)
    assert (outcome.kind, outcome.ticket_id) == ("automatic", filed.pk)
    assert TicketEvent.objects.filter(ticket=filed, kind="automatic_mail").exists()
    filed.refresh_from_db()
    assert filed.messages.count() == 0 and filed.first_response_at is None


# --- Held -----------------------------------------------------------------------------------------
def assert_held(outcome, ticket, reason: str) -> None:
    assert outcome.kind == "held" and reason in outcome.reason, outcome
    ticket.refresh_from_db()
    assert ticket.messages.count() == 0 and (ticket.status, ticket.first_response_at) == ("new", None)
    assert not OutboxMessage.objects.filter(key__startswith=f"ticket:{ticket.pk}:reply:").exists()
    assert not OutboxMessage.objects.filter(template="inbound_held").exists()  # our own people: no polite answer


@pytest.mark.parametrize("how", ["references", "in-reply-to", "number"])
def test_a_staff_reply_matched_only_by_its_thread_or_the_number_is_held(filed, sam, how):
    ours = staff_email(filed, sam)
    headers = {
        "references": {"References": ours.message_id},
        "in-reply-to": {"In-Reply-To": mail_thread.root_id(filed)},
        "number": {},
    }[how]
    subject = f"Re: [{filed.number}] Restore fails" if how == "number" else "Re: Restore fails"
    raw = mail(sender="sam@vendor.example", subject=subject, body=QUOTED, message_id="<s2@vendor.example>",
               headers={**PASSED, **headers})  # fmt: skip
    outcome = take(raw, received=ANSWERED)
    assert outcome.ticket_id == filed.pk  # held on the ticket, for staff to see
    assert_held(outcome, filed, "a staff reply by email must answer the ticket's own reply address")


def test_staff_without_the_permission_to_work_tickets_is_held(filed, mailoutbox):
    # Staff (a role-less account) who may not work tickets, with a reply address made for them.
    viewer = StaffFactory(email="vic@vendor.example", staff_role="")
    assert viewer.is_staff and not viewer.has_perm("tickets.change_ticket")
    address = mail_thread.reply_address_for(filed, viewer.email)
    outcome = take(mail(sender=viewer.email, to=address, body=QUOTED, message_id="<v@vendor.example>",
                        headers=PASSED), received=ANSWERED)  # fmt: skip
    assert_held(outcome, filed, "vic@vendor.example is staff without the permission to work tickets")


def test_a_deactivated_staff_member_is_held(filed, sam):
    raw = answer(staff_email(filed, sam))
    sam.is_active = False
    sam.save()
    assert_held(take(raw, received=ANSWERED), filed, "sam@vendor.example is a deactivated staff member")


def test_a_staff_reply_whose_dmarc_failed_is_held(filed, sam):
    raw = answer(staff_email(filed, sam), headers={"Authentication-Results": "mx.vendor.example; dmarc=fail"})
    assert_held(take(raw, received=ANSWERED), filed, "failed DMARC")


@pytest.mark.parametrize("threaded", [False, True])
def test_a_forged_staff_from_with_a_customers_reply_address_does_not_post(filed, sam, alice, threaded):
    """Eve has Alice's email (its Reply-To's token was made for Alice) and writes as Sam."""
    ours = OutboxMessage.objects.filter(to=alice.email, key__startswith=f"ticket:{filed.pk}:filed").get()
    assert mail_thread.ticket_of_address(ours.headers["Reply-To"], alice.email) == filed.pk
    thread = {"In-Reply-To": ours.message_id, "References": ours.message_id} if threaded else {}
    forged = mail(sender="sam@vendor.example", to=ours.headers["Reply-To"], subject="Re: Restore fails",
                  body="Closing this, all fine.", message_id="<forged@evil.example>", headers={**PASSED, **thread})  # fmt: skip
    outcome = take(forged, received=ANSWERED)
    assert_held(outcome, filed, "must answer the ticket's own reply address" if threaded else "is staff")


# --- The IMAP poller's group -----------------------------------------------------------------------
@pytest.mark.dovecot
def test_the_poller_posts_a_staff_reply_in_a_group_with_a_customers_message(dovecot, settings, filed, sam, alice):
    """The poller takes its fetched messages as one group (tickets.inbound.group: the senders read
    once, rows inserted together): Sam's reply and Alice's new ticket in one run."""
    from portal.domain.mail_urls import imap_url
    from tickets import tasks

    settings.INBOUND_IMAP = imap_url(dovecot.url())
    settings.INBOUND_IMAP_PROCESSED_FOLDER = "Processed"
    dovecot.append(answer(staff_email(filed, sam)), internaldate='"03-Nov-2026 07:40:00 +0000"')  # ANSWERED
    dovecot.append(mail(subject="Another one", message_id="<m9@acme.example>"), internaldate='"03-Nov-2026 07:41:00 +0000"')  # fmt: skip

    assert tasks.poll_mailbox() == "filed 1, replied 1; moved 2"

    filed.refresh_from_db()
    assert (filed.status, filed.first_response_at) == ("open", ANSWERED)
    assert filed.messages.get().author == sam and not filed.messages.get().attachments.exists()
    assert Ticket.objects.filter(subject="Another one", created_by=alice).count() == 1
    assert OutboxMessage.objects.filter(to=alice.email, key__startswith=f"ticket:{filed.pk}:reply:").count() == 1
    assert dovecot.count("INBOX") == 0 and dovecot.count("Processed") == 2

    dovecot.append(answer(staff_email(filed, sam)), internaldate='"03-Nov-2026 07:45:00 +0000"')  # delivered again
    assert tasks.poll_mailbox() == "duplicate 1; moved 1"
    assert filed.messages.count() == 1


# --- Held, then triaged ---------------------------------------------------------------------------
def held_staff_reply(filed, sender="sam@vendor.example", headers=None) -> InboundMessage:
    """Sam's answer matched only by the ticket's number (a new message, not a Reply): held."""
    raw = mail(sender=sender, subject=f"Re: [{filed.number}] Restore fails", body=QUOTED,
               message_id="<s3@vendor.example>", headers={**PASSED, **(headers or {})})  # fmt: skip
    outcome = take(raw, received=ANSWERED)
    assert outcome.kind == "held"
    return InboundMessage.objects.get(pk=outcome.inbound_id)


def test_triage_posts_a_held_staff_reply_as_their_public_reply_when_asked(client, filed, sam, lena, alice, mailoutbox):
    """Lena sees Sam's held answer, offered "as their public reply" (a staff member's message only),
    and posts it: Sam's reply, the first response now (when Alice is answered), one email to Alice,
    and Sam's whole message (quoting our staff email) kept off the public reply."""
    held = held_staff_reply(filed)
    client.force_login(lena)
    page = client.get(reverse("admin:tickets_inboundmessage_change", args=[held.pk]))
    assert 'name="as_staff_reply"' in page.content.decode()
    outbox_send_due()
    mailoutbox.clear()
    response = client.post(
        reverse("admin:tickets_inboundmessage_attach", args=[held.pk]), {"ticket": filed.pk, "as_staff_reply": "on"}
    )
    assert response.status_code == 302
    filed.refresh_from_db()
    message = filed.messages.get()
    assert (message.author, message.internal, message.created_at) == (sam, False, LATER)
    assert message.body == "Restore from the snapshot of the 2nd; I started it for you."
    assert not message.attachments.exists()
    assert (filed.status, filed.first_response_at) == ("open", LATER)
    held.refresh_from_db()
    assert (held.outcome, held.ticket_message, held.handled_by) == ("replied", message, lena)
    assert AuditEntry.objects.get(action="inbound.attached").after == {
        "outcome": "replied", "ticket": filed.pk, "as": "staff reply"
    }  # fmt: skip
    outbox_send_due()
    to_alice = [m for m in mailoutbox if m.to == [alice.email]]
    assert len(to_alice) == 1 and "Restore from the snapshot of the 2nd" in to_alice[0].body
    assert to_alice[0].extra_headers["In-Reply-To"] == mail_thread.root_id(filed)


def test_triage_attaches_a_held_staff_reply_as_a_note_unless_asked(client, filed, sam, lena):
    held = held_staff_reply(filed)
    client.force_login(lena)
    assert (
        client.post(reverse("admin:tickets_inboundmessage_attach", args=[held.pk]), {"ticket": filed.pk}).status_code
        == 302
    )
    note = filed.messages.get()
    assert note.internal and note.author == lena and "Restore from the snapshot" in note.body
    filed.refresh_from_db()
    assert (filed.status, filed.first_response_at) == ("new", None)


def test_triage_refuses_to_post_as_a_reply_what_is_not_a_staff_members_to_make(client, filed, lena, alice, settings):
    from tickets.inbound.triage import triage_attach

    # A customer's message is not offered the choice, and the service refuses it.
    customer = held_staff_reply(filed, sender="pat@other.example")
    client.force_login(lena)
    page = client.get(reverse("admin:tickets_inboundmessage_change", args=[customer.pk]))
    assert 'name="as_staff_reply"' not in page.content.decode()
    with pytest.raises(TicketError, match="Only an active staff member's message"):
        triage_attach(inbound=customer, ticket=filed, actor=lena, as_staff_reply=True)
    # Staff who may not work tickets; a From that failed DMARC (held for that, offered, refused).
    StaffFactory(email="vic@vendor.example", staff_role="")
    viewer = held_staff_reply(filed, sender="vic@vendor.example")
    response = client.post(
        reverse("admin:tickets_inboundmessage_attach", args=[viewer.pk]), {"ticket": filed.pk, "as_staff_reply": "on"}
    )
    assert (
        response.status_code == 400
        and "vic@vendor.example is staff without the permission to work tickets." in response.content.decode()
    )
    forged = held_staff_reply(filed, headers={"Authentication-Results": "mx.vendor.example; dmarc=fail"})
    with pytest.raises(TicketError, match="failed DMARC"):
        triage_attach(inbound=forged, ticket=filed, actor=lena, as_staff_reply=True)
    filed.refresh_from_db()
    assert filed.messages.count() == 0 and (filed.status, filed.first_response_at) == ("new", None)
