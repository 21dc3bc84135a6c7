"""What one inbound message costs in queries (bench/mail_ingest.py measures 1,000 through IMAP
beside django-helpdesk): a new ticket and a reply answered as a mail client answers our receipt
(To its Reply-To, In-Reply-To its Message-ID). Counted after a first message has warmed the
process's caches (the SLA terms), as in a poller that runs all day. Each count is every statement
the service sends, the transaction's and savepoints' included."""

from __future__ import annotations

import pytest
from django.core import mail as sent_mail
from django.db import connection

from portal.core.delivery import outbox_send_due
from portal.models import OutboxMessage
from tickets.deadlines import Columns
from tickets.inbound.group import group
from tickets.models import InboundMessage

from .test_inbound import LATER, frozen, mail, take  # noqa: F401 - frozen: the fixture, used by name

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]

# PostgreSQL: + the ticket's search document written again (tickets.search.documents_refresh).
SEARCH_DOCUMENT = 1 if connection.vendor == "postgresql" else 0
NEW_TICKET_QUERIES = 19 + SEARCH_DOCUMENT
REPLY_QUERIES = 15 + SEARCH_DOCUMENT
FIELDS = [*Columns.FIELDS, "escalation_dues"]


def receipt_to(address: str):
    outbox_send_due()
    return next(m for m in sent_mail.outbox if m.to == [address] and "Auto-Submitted" in m.extra_headers)


def test_a_new_ticket_and_a_reply_by_email_cost_a_fixed_number_of_queries(
    acme_contract, alice, bob, django_assert_num_queries
):
    take(mail(sender="bob@acme.example", message_id="<warm@acme.example>", subject="Warm-up"))

    with django_assert_num_queries(NEW_TICKET_QUERIES):
        filed = take(mail(message_id="<m1@acme.example>"))
    assert filed.kind == "filed"

    receipt = receipt_to(alice.email).extra_headers
    answer = mail(
        to=receipt["Reply-To"], subject="Re: Restore fails", body="The nightly one.\n\nOn Tue, 3 Nov 2026 at 10:00, Support wrote:\n> It fails.",
        message_id="<m2@acme.example>", received=LATER,
        headers={"In-Reply-To": receipt["Message-ID"], "References": f"{receipt['References']} {receipt['Message-ID']}"},
    )  # fmt: skip
    with django_assert_num_queries(REPLY_QUERIES):
        replied = take(answer, received=LATER)
    assert (replied.kind, replied.ticket_id) == ("replied", filed.ticket_id)
    assert InboundMessage.objects.get(message_id="<m2@acme.example>").ticket_message.body == "The nightly one."


# + the waiting pause ended and the status event; + its assignee, the staff copy's address (the reply's
# locked read is the ticket's own row: tickets.services.locked_ticket).
WAITING_REPLY_QUERIES = REPLY_QUERIES + 3


def test_a_reply_to_a_paused_ticket_reads_its_clock_once_and_restarts_it(
    acme_contract, alice, sam, django_assert_num_queries
):
    """The match is the reply's lock, and the clock's rows (pauses, pending escalation requests,
    recorded crossings: tickets.history.clock_rows) are one read, whatever the ticket has: the
    stored columns are those derived from each table read apart."""
    from tickets.deadlines import Recorded
    from tickets.history import PauseRow
    from tickets.mail_thread import reply_address_for
    from tickets.models import SLACrossing, Ticket, TicketEvent
    from tickets.recompute import ticket_recompute
    from tickets.services import ticket_assign, ticket_request_escalation, ticket_set_status

    take(mail(sender="bob@acme.example", message_id="<warm@acme.example>", subject="Warm-up"))
    ticket = Ticket.objects.get(pk=take(mail(message_id="<m1@acme.example>")).ticket_id)
    ticket_assign(ticket=ticket, actor=sam, assignee=sam, now=LATER)
    request = ticket_request_escalation(ticket=ticket, user=alice, reason="Backups fail", now=LATER)
    ticket_set_status(ticket=ticket, actor=sam, status="waiting", now=LATER)
    SLACrossing.objects.create(
        ticket=ticket, clock="first_response", kind="at_risk", at=LATER, recorded_at=LATER, priority=ticket.priority
    )
    answer = mail(to=reply_address_for(ticket, alice.email), message_id="<m2@acme.example>", body="The nightly one.")

    with django_assert_num_queries(WAITING_REPLY_QUERIES):
        replied = take(answer, received=LATER)

    assert (replied.kind, replied.ticket_id) == ("replied", ticket.pk)
    ticket.refresh_from_db()
    assert ticket.status == "open" and not ticket.paused
    assert TicketEvent.objects.filter(ticket=ticket, kind="status", data__new="open", actor=alice).exists()
    assert OutboxMessage.objects.filter(template="ticket_customer_reply", to=sam.email).count() == 1
    pauses = [PauseRow(p.reason, p.started_at, p.ended_at) for p in ticket.pauses.order_by("started_at", "pk")]
    assert [p.ended_at for p in pauses] == [LATER]
    apart = Ticket.objects.get(pk=ticket.pk)
    moved = ticket_recompute(
        apart, now=LATER, pauses=pauses, requests=list(ticket.escalation_requests.filter(acknowledged_at=None)),
        recorded=[Recorded(*row) for row in ticket.crossings.values_list("clock", "kind", "priority", "deadline")],
    ).requests  # fmt: skip
    assert moved == [] and apart.next_sla_check_at is not None
    assert [getattr(apart, f) for f in FIELDS] == [getattr(ticket, f) for f in FIELDS]
    request.refresh_from_db()
    assert request.ack_due is not None and request.acknowledged_at is None


GROUP_OF_TEN_QUERIES = 48 + SEARCH_DOCUMENT  # 19 a message alone; the documents written once for all


def test_a_group_of_messages_reads_what_they_share_once(acme_contract, alice, bob, django_assert_num_queries):
    """The poller's group (tickets.inbound.group): ten new tickets from two senders in one
    transaction read the stored hashes, the senders, their recent filings, the contracts and the
    terms revision once, and the receipts' recipients, their choices and the webhook endpoints once
    per organisation; each message is a savepoint and its ticket (3 statements), and the filing
    events, the outbox rows and the messages' own rows are one insert each for the group."""
    take(mail(sender="bob@acme.example", message_id="<warm@acme.example>", subject="Warm-up"))
    raws = [
        mail(sender=sender, message_id=f"<g{n}@acme.example>", subject=f"Restore of job {n} fails")
        for n, sender in enumerate(["alice@acme.example", "bob@acme.example"] * 5)
    ]

    with django_assert_num_queries(GROUP_OF_TEN_QUERIES), group(raws):
        outcomes = [take(raw) for raw in raws]

    assert [o.kind for o in outcomes] == ["filed"] * 10


GROUP_OF_TEN_WHOLE_QUERIES = GROUP_OF_TEN_QUERIES - 2 * 10  # no SAVEPOINT and RELEASE a message


def test_a_group_taken_whole_has_no_savepoint_a_message(acme_contract, alice, bob, django_assert_num_queries):
    """The poller takes a group without savepoints first (tickets.mailbox_poll; a failing message
    has the group taken again with them): each new ticket is its own insert alone."""
    take(mail(sender="bob@acme.example", message_id="<warm@acme.example>", subject="Warm-up"))
    raws = [
        mail(sender=sender, message_id=f"<w{n}@acme.example>", subject=f"Restore of job {n} fails")
        for n, sender in enumerate(["alice@acme.example", "bob@acme.example"] * 5)
    ]

    with django_assert_num_queries(GROUP_OF_TEN_WHOLE_QUERIES) as captured, group(raws, savepoints=False):
        outcomes = [take(raw) for raw in raws]

    assert [o.kind for o in outcomes] == ["filed"] * 10
    savepoints = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("SAVEPOINT")]
    assert len(savepoints) == 1  # the group's transaction, a savepoint in the test's


def test_a_group_tells_each_ticket_to_its_people_and_endpoints_and_wakes_the_workers_once(
    acme_contract, alice, bob, django_capture_on_commit_callbacks
):
    """What a group reads once (portal.core.batch) still reaches every ticket: each filer's receipt,
    the staff copy, one webhook delivery each; the outbox's worker is woken after the commit only."""
    from portal.models import WebhookDelivery, WebhookEndpoint

    WebhookEndpoint.objects.create(
        organisation_id=alice.organisation_id, url="https://hooks.acme.example/in", events=["ticket.filed"],
        secret="s" * 32, created_by=alice, created_at=LATER,
    )  # fmt: skip
    senders = ["alice@acme.example", "bob@acme.example"] * 2
    raws = [mail(sender=s, message_id=f"<b{n}@acme.example>", subject=f"Job {n}") for n, s in enumerate(senders)]
    with django_capture_on_commit_callbacks() as callbacks, group(raws):
        ids = [take(raw).ticket_id for raw in raws]

    receipts = OutboxMessage.objects.filter(key__endswith=":filed:user:" + str(alice.pk))
    assert sorted(receipts.values_list("key", flat=True)) == sorted(
        f"ticket:{t}:filed:user:{alice.pk}" for t in ids[::2]
    )
    assert OutboxMessage.objects.filter(key__contains=":filed-staff:").count() == 4
    assert sorted(WebhookDelivery.objects.values_list("key", flat=True)) == sorted(f"ticket:{t}:filed" for t in ids)
    assert len(callbacks) == 1  # the group's, for the outbox's and the webhooks' workers
