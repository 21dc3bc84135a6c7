"""Staff triage of held email (admin → Inbound messages): attach a held message to a ticket, file it
for a customer (its clock starts when we received it, however late), or discard it; each decision
audited and taken once; messages to the security address hidden from staff who do not see reports."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from portal.models import AuditEntry
from tickets.models import InboundMessage, Ticket

from .test_inbound import LATER, RECEIVED, mail, take

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
    # Security staff do not triage customers' email; the page's operations are not theirs.
    client.force_login(sol)
    assert client.post(reverse("admin:tickets_inboundmessage_discard", args=[held.pk])).status_code == 403
    # Mail to the security address is kept from staff who do not see reports.
    report = take(mail(sender="eve@research.example", to="security@vendor.example", message_id="<s@r>"))
    client.force_login(sam)
    listing = client.get(reverse("admin:tickets_inboundmessage_changelist"))
    assert listing.status_code == 200
    assert b"eve@research.example" not in listing.content and b"pat@other.example" in listing.content
    assert InboundMessage.objects.get(pk=report.inbound_id).security
