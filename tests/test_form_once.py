"""A form that makes something makes it once however often it is sent (portal.core.once): the
ticket form and the reply form carry a one-time key. Before, a double click or a browser resending
a slow POST filed two P1 tickets, with two receipts, two sets of clocks and escalations."""

from __future__ import annotations

import re
import threading
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.db import connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from portal.core.once import KEPT, submit_once
from portal.models import FormSubmission, OutboxMessage
from tickets.models import Ticket, TicketMessage
from tickets.services import ticket_set_status

NBO = ZoneInfo("Africa/Nairobi")
AT = datetime(2026, 12, 11, 10, 0, tzinfo=NBO)


def key_of(html: str) -> str:
    return re.search(r'<input type="hidden" name="submission" value="([0-9a-f-]{36})"', html)[1]


def ticket_data(client, contract) -> dict:
    page = client.get(reverse("ticket-new") + f"?contract={contract.pk}").content.decode()
    return {
        "contract": contract.pk, "service": contract.services.get().pk, "priority": "P1",
        "subject": "Backups fail", "description": "Nothing backs up since last night.", "submission": key_of(page),
    }  # fmt: skip


@pytest.mark.django_db
def test_the_ticket_form_sent_twice_files_one_ticket(client, alice, acme_contract):
    with time_machine.travel(AT, tick=False):
        client.force_login(alice)
        data = ticket_data(client, acme_contract)
        first = client.post(reverse("ticket-new"), data)
        second = client.post(reverse("ticket-new"), data)
    (ticket,) = Ticket.objects.all()
    assert first["Location"] == second["Location"] == reverse("ticket-detail", args=[ticket.pk])
    assert [str(m) for m in get_messages(second.wsgi_request)][
        -1
    ] == "The form was sent twice: the ticket is filed once."
    assert OutboxMessage.objects.filter(template="ticket_filed", to=alice.email).count() == 1
    # A new form is a new key: the same words filed again are a second ticket, as asked.
    with time_machine.travel(AT, tick=False):
        assert client.post(reverse("ticket-new"), ticket_data(client, acme_contract)).status_code == 302
    assert Ticket.objects.count() == 2


@pytest.mark.django_db
def test_a_reply_sent_twice_is_added_once_and_a_refused_one_can_be_sent_again(client, alice, sam, acme_contract):
    with time_machine.travel(AT, tick=False):
        client.force_login(alice)
        client.post(reverse("ticket-new"), ticket_data(client, acme_contract))
        ticket = Ticket.objects.get()
        url = reverse("ticket-detail", args=[ticket.pk])
        data = {"body": "It fails again at 02:00.", "submission": key_of(client.get(url).content.decode())}
        ticket_set_status(ticket=ticket, actor=alice, status=Ticket.Status.CLOSED)
        refused = client.post(reverse("ticket-reply", args=[ticket.pk]), data)
        assert refused.status_code == 400
        assert not FormSubmission.objects.filter(key=data["submission"]).exists()  # a refused sending keeps none
        ticket_set_status(ticket=ticket, actor=alice, status=Ticket.Status.OPEN)
        for _ in range(2):
            assert client.post(reverse("ticket-reply", args=[ticket.pk]), data)["Location"] == url + "#conversation"
    assert list(TicketMessage.objects.filter(ticket=ticket).values_list("body", flat=True)) == [data["body"]]


@pytest.mark.django_db
def test_keys_are_kept_a_day(client, alice, acme_contract):
    with time_machine.travel(AT, tick=False):
        client.force_login(alice)
        client.post(reverse("ticket-new"), ticket_data(client, acme_contract))
    with time_machine.travel(datetime(2026, 12, 12, 10, 1, tzinfo=NBO), tick=False):
        client.force_login(alice)
        client.post(reverse("ticket-new"), ticket_data(client, acme_contract))
    assert FormSubmission.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sendings_at_once_file_one_ticket(alice, acme_contract):
    """Two requests with the same key at once: the second waits on the first's key, then is taken
    to its ticket."""
    client = Client()
    client.force_login(alice)
    data = ticket_data(client, acme_contract)
    barrier, answers = threading.Barrier(2), []

    def send():
        try:
            mine = Client()
            mine.force_login(alice)
            barrier.wait(5)
            answers.append(mine.post(reverse("ticket-new"), data))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    (ticket,) = Ticket.objects.all()
    assert [a.status_code for a in answers] == [302, 302]
    assert {a["Location"] for a in answers} == {reverse("ticket-detail", args=[ticket.pk])}


def test_a_key_older_than_a_day_is_not_replayed(alice, db):
    """Keys are kept a day: a key reused days later (a client's alert id, say) makes something anew."""
    key = uuid.uuid4()
    FormSubmission.objects.create(user=alice, key=key, url="/old/", created_at=timezone.now() - 3 * KEPT)
    made = []
    url, first = submit_once(user=alice, key=key, make=lambda: made.append(1) or "/new/")
    assert (url, first, made) == ("/new/", True, [1])


def test_old_keys_are_forgotten_whoever_sends_next(alice, bob, db):
    FormSubmission.objects.create(user=alice, key=uuid.uuid4(), url="/a/", created_at=timezone.now() - 3 * KEPT)
    submit_once(user=bob, key=uuid.uuid4(), make=lambda: "/b/")
    assert not FormSubmission.objects.filter(user=alice).exists()


@pytest.mark.django_db
def test_the_claim_form_sent_twice_files_one_claim_and_says_so(client, alice, acme_contract):
    """A double click on "File the claim" showed the second request's 400 "already filed" page."""
    from datetime import timedelta

    from contracts.models import Outage
    from credits.models import Claim

    start = datetime(2026, 10, 10, 2, 0, tzinfo=NBO)
    outage = Outage.objects.create(title="Storage down", starts_at=start, ends_at=start + timedelta(minutes=500))
    outage.services.set(acme_contract.services.all())
    with time_machine.travel(datetime(2026, 11, 3, 10, 0, tzinfo=NBO), tick=False):
        client.force_login(alice)
        page = client.post(
            reverse("claim-new"), {"contract": acme_contract.pk, "month": "2026-10", "action": "preview"}
        ).content.decode()
        data = {"contract": acme_contract.pk, "month": "2026-10", "note": "Down on the 10th.",
                "action": "submit", "submission": key_of(page)}  # fmt: skip
        first = client.post(reverse("claim-new"), data)
        second = client.post(reverse("claim-new"), data)
    (claim,) = Claim.objects.all()
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"] == reverse("claim-detail", args=[claim.pk])
    assert [str(m) for m in get_messages(second.wsgi_request)][
        -1
    ] == "The form was sent twice: the claim is filed once."
    assert OutboxMessage.objects.filter(template="claim_received", to=alice.email).count() == 1
