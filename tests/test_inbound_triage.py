"""Staff triage of held email (admin → Inbound messages): attach a held message to a ticket, file it
for a customer (its clock starts when we received it, however late), or discard it; each decision
audited and taken once; messages to the security address hidden from staff who do not see reports,
and a held one filed by security staff as a vulnerability report, never put on a customer's ticket."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from portal.models import AuditEntry
from tickets.models import InboundMessage, Ticket

from .test_inbound import LATER, PNG, RECEIVED, mail, take

pytestmark = pytest.mark.django_db


@pytest.fixture
def frozen():
    with time_machine.travel(LATER, tick=False):
        yield


def _held(**kw) -> InboundMessage:
    outcome = take(mail(**kw))
    assert outcome.kind == "held"
    return InboundMessage.objects.get(pk=outcome.inbound_id)


def test_sam_files_a_held_message_for_alice_on_the_clock_of_its_receipt(frozen, client, sam, acme_contract, alice, bob):
    acme_contract.support_contacts.set([alice])
    held = _held(sender="bob@acme.example", subject="[P2] Restore slow")
    client.force_login(sam)
    page = client.get(reverse("admin:tickets_inboundmessage_change", args=[held.pk]))
    assert page.status_code == 200 and b"Restore slow" in page.content and b"It fails." in page.content
    url = reverse("admin:tickets_inboundmessage_file", args=[held.pk])
    refused = client.post(url, {"contract": acme_contract.pk, "person": "bob@acme.example"})
    assert refused.status_code == 400 and b"not a designated support contact" in refused.content
    response = client.post(url, {"contract": acme_contract.pk, "person": "alice@acme.example"})
    assert response.status_code == 302
    held.refresh_from_db()
    ticket = held.ticket
    assert (held.outcome, held.handled_by, ticket.created_by, ticket.priority) == ("filed", sam, alice, "P2")
    assert (ticket.filed_at, ticket.channel, ticket.email_origin) == (RECEIVED, "email", "<m1@acme.example>")
    entry = AuditEntry.objects.get(action="inbound.filed")
    assert (entry.actor, entry.before["outcome"], entry.after["outcome"]) == (sam, "held", "filed")
    again = client.post(reverse("admin:tickets_inboundmessage_discard", args=[held.pk]))
    assert again.status_code == 400 and b"no longer held" in again.content


def test_a_held_message_filed_by_staff_keeps_its_files_and_its_whole_text(frozen, sam, acme_contract, alice, mailoutbox):  # fmt: skip
    from portal.core.delivery import outbox_send_due
    from tickets.inbound.triage import triage_file

    from .test_inbound import PNG

    lying = ("invoice.pdf", b"MZ\x90\x00" + b"\x00" * 200, "application/pdf")  # a Windows program
    forwarded = "Please look at this.\n\n---------- Forwarded message ---------\nFrom: Bob\n\nRestore fails."
    held = _held(sender="pat@other.example", message_id="<p@other.example>", body=forwarded,
                 files=[("screen.png", PNG, "image/png"), lying])  # fmt: skip
    ticket = triage_file(inbound=held, contract=acme_contract, person=alice, actor=sam, now=LATER).ticket
    assert [(a.original_name, a.size) for a in ticket.attachments.all()] == [("screen.png", len(PNG))]
    assert ticket.description.startswith(forwarded) and "[Not attached: " in ticket.description
    assert "invoice.pdf" in ticket.description
    outbox_send_due()
    (receipt,) = [m for m in mailoutbox if m.to == ["alice@acme.example"]]
    assert "invoice.pdf" in receipt.body


def test_attach_puts_a_strangers_message_on_a_ticket_as_an_internal_note(frozen, sam, acme_contract, alice):
    from tickets.inbound.triage import triage_attach

    ticket = Ticket.objects.get(pk=take(mail()).ticket_id)
    held = _held(sender="pat@other.example", message_id="<p@other.example>", body="Also broken here.")
    triage_attach(inbound=held, ticket=ticket, actor=sam, now=LATER + timedelta(minutes=1))
    note = ticket.messages.get()
    assert note.internal and note.author == sam and "Also broken here." in note.body
    assert note.attachments.get().original_name == "original.eml"
    assert AuditEntry.objects.filter(action="inbound.attached", actor=sam).exists()


def test_discard_and_who_sees_what(frozen, client, sam, sol, acme_contract, alice):
    held = _held(sender="pat@other.example", message_id="<p@other.example>")
    client.force_login(sam)
    assert client.post(reverse("admin:tickets_inboundmessage_discard", args=[held.pk])).status_code == 302
    held.refresh_from_db()
    assert (held.outcome, held.handled_by) == ("discarded", sam)
    assert AuditEntry.objects.filter(action="inbound.discarded").exists()
    # Security staff do not triage customers' email: it is not even shown to them.
    client.force_login(sol)
    assert client.post(reverse("admin:tickets_inboundmessage_discard", args=[held.pk])).status_code == 404
    # Mail to the security address is kept from staff who do not see reports.
    report = take(mail(sender="eve@research.example", to="security@vendor.example", message_id="<s@r>"))
    client.force_login(sam)
    listing = client.get(reverse("admin:tickets_inboundmessage_changelist"))
    assert listing.status_code == 200
    assert b"eve@research.example" not in listing.content and b"pat@other.example" in listing.content
    assert InboundMessage.objects.get(pk=report.inbound_id).security


@pytest.fixture
def held_report(frozen, monkeypatch, acme_contract):
    """A message to the security address whose taking failed: held, as any message that fails."""
    from tickets.inbound import route

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    with monkeypatch.context() as patched:
        patched.setattr(route, "route", explode)
        outcome = take(mail(sender="eve@research.example", to="security@vendor.example", subject="SQL injection",
                            body="The search box takes ' OR 1=1.", message_id="<sqli@research.example>"))  # fmt: skip
    held = InboundMessage.objects.get(pk=outcome.inbound_id)
    assert (held.outcome, held.security) == ("held", True)
    return held


def test_security_staff_file_a_held_security_message_as_a_report_on_the_clock_of_its_receipt(
    client, held_report, sol, sam, mailoutbox
):
    from portal.core.delivery import outbox_send_due

    change = reverse("admin:tickets_inboundmessage_change", args=[held_report.pk])
    client.force_login(sol)
    listing = client.get(reverse("admin:tickets_inboundmessage_changelist")).content.decode()
    assert "eve@research.example" in listing
    page = client.get(change).content.decode()
    assert "File as a vulnerability report" in page and "Attach to a ticket" not in page
    assert "The search box takes" in page
    # Never on a customer's ticket, whatever is posted.
    ticket = Ticket.objects.get(pk=take(mail(message_id="<m9@acme.example>")).ticket_id)
    refused = client.post(reverse("admin:tickets_inboundmessage_attach", args=[held_report.pk]), {"ticket": ticket.pk})
    assert refused.status_code == 400 and b"never put on a customer&#x27;s ticket" in refused.content
    assert not ticket.messages.exists()

    response = client.post(reverse("admin:tickets_inboundmessage_report", args=[held_report.pk]))
    assert response.status_code == 302
    held_report.refresh_from_db()
    report = held_report.ticket
    assert (held_report.outcome, held_report.handled_by, report.kind) == ("filed", sol, "security")
    assert (report.subject, report.filed_at) == ("SQL injection", RECEIVED)  # our receipt of it, not now
    assert report.security_report.reporter_email == "eve@research.example"
    assert "' OR 1=1" in report.description
    entry = AuditEntry.objects.get(action="inbound.reported")
    assert (entry.actor, entry.after) == (sol, {"outcome": "filed", "ticket": report.pk})
    outbox_send_due()
    assert [m.to for m in mailoutbox if m.to == ["eve@research.example"]] == [["eve@research.example"]]  # receipt
    # Support staff who may triage email do not see it, and nobody files a customer's as a report.
    client.force_login(sam)
    hidden = client.get(change)  # the admin's answer to an object it does not find: back to its index
    assert hidden.status_code == 302 and hidden["Location"] == reverse("admin:index")
    customers = _held(sender="pat@other.example", message_id="<p2@other.example>")
    refused = client.post(reverse("admin:tickets_inboundmessage_report", args=[customers.pk]))
    assert refused.status_code == 400 and b"Only a message to the security address" in refused.content


def test_security_staffs_dashboard_counts_only_the_security_addresss_held_email(client, held_report, sol, sam):
    _held(sender="pat@other.example", message_id="<p3@other.example>")
    client.force_login(sol)
    board = client.get(reverse("admin:staff_dashboard")).content.decode()
    assert "<strong>1</strong> held email<" in board and "eve@research.example" in board
    assert "pat@other.example" not in board
    client.force_login(sam)
    board = client.get(reverse("admin:staff_dashboard")).content.decode()
    assert "<strong>1</strong> held email<" in board and "pat@other.example" in board
    assert "eve@research.example" not in board


def test_a_security_messages_words_stay_with_security_staff_when_refused_or_triaged(frozen, settings, held_report,
                                                                                     sol):  # fmt: skip
    """A report too big to take is refused, and its sender told, in a report's email (only security
    staff read it in the outbox); triaging a held one audits it without its subject."""
    from portal.models import OutboxMessage
    from tickets.inbound.triage import triage_discard

    settings.INBOUND_AUTHSERV_ID = "mx.vendor.example"
    settings.INBOUND_MAX_BYTES = 2000
    passed = {"Authentication-Results": "mx.vendor.example; dmarc=pass header.from=research.example"}
    big = take(mail(sender="eve@research.example", to="security@vendor.example", subject="RCE in the uploads",
                    body="x" * 5000, message_id="<rce@research.example>", headers=passed))  # fmt: skip
    assert big.kind == "refused"
    refusal = OutboxMessage.objects.get(template="inbound_refused")
    assert refusal.key.startswith("security-report:refused:") and "RCE in the uploads" in refusal.context

    triage_discard(inbound=held_report, actor=sol)
    entry = AuditEntry.objects.get(action__startswith="inbound.")
    assert entry.target_repr == "eve@research.example: mail to the security address"
    assert "SQL injection" not in str(entry.target_repr) + str(entry.before) + str(entry.after)


def test_the_held_list_does_not_read_each_messages_raw_bytes_and_its_page_does(frozen, client, sam, acme_contract):
    """A page of the list is a date, a sender and a subject per row: each row's raw message (up to
    INBOUND_MAX_BYTES, 25 MB: customers mail logs and screenshots) stays in the database; the
    change page, which shows the message's text, reads its own."""
    big = PNG + os.urandom(2 * 1024 * 1024)  # a 2 MB screenshot
    for n in range(3):  # held: a stranger's mail to the support address
        _held(
            sender=f"pat{n}@other.example", message_id=f"<p{n}@other.example>", files=[("screen.png", big, "image/png")]
        )
    client.force_login(sam)
    raw = '"tickets_inboundmessage"."raw"'
    with CaptureQueriesContext(connection) as listed:
        page = client.get(reverse("admin:tickets_inboundmessage_changelist"), {"outcome__exact": "held"})
    assert page.status_code == 200 and b"pat0@other.example" in page.content and b"pat2@other.example" in page.content
    assert [q["sql"][:200] for q in listed.captured_queries if raw in q["sql"]] == []
    held = InboundMessage.objects.get(sender="pat0@other.example")
    with CaptureQueriesContext(connection) as opened:
        page = client.get(reverse("admin:tickets_inboundmessage_change", args=[held.pk]))
    assert page.status_code == 200 and b"It fails." in page.content
    assert any(raw in q["sql"] for q in opened.captured_queries)
