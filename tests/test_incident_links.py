"""Incidents seen by customers and tied to tickets (issue 20, items 2 and 4): the dashboard's banner
and the incident page, scoped to the organisation; a reply to an incident email files a ticket
linked to it; staff link tickets one by one and in bulk, answer them all at once and resolve them;
the customer sees the link on the ticket; a claim lists its month's incidents with their tickets;
the API lists incidents. Frozen clocks."""

import re
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

from contracts.incidents.services import incident_open, incident_post_update
from contracts.models import Incident, Outage
from credits.closing import close_month
from credits.services import claim_submit
from portal.models import AuditEntry
from tickets.inbound.service import ingest
from tickets.models import Ticket, TicketMessage
from tickets.services import ticket_open

from .factories import ContractFactory
from .test_incidents import NOW as NOW  # the same moment as the incidents' own tests
from .test_incidents import assistant as assistant  # the same two services
from .test_incidents import backup as backup

pytestmark = pytest.mark.django_db

MINUTE = timedelta(minutes=1)


@pytest.fixture
def acme_c(acme, alice, bob, backup):
    return ContractFactory(organisation=acme, reference="KAL-0001", name="Cloud Backup for Acme", services=[backup],
                           contacts=[alice])  # fmt: skip


@pytest.fixture
def globex_c(globex, charlie, assistant):
    return ContractFactory(organisation=globex, reference="KLA-0001", name="AI Assistant for Globex",
                           services=[assistant], contacts=[charlie])  # fmt: skip


@pytest.fixture
def incident(backup, lena, acme_c, django_capture_on_commit_callbacks):
    outage = Outage.objects.create(title="Backup API errors", starts_at=NOW - 30 * MINUTE)
    outage.services.set([backup])
    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=True):
        return incident_open(outage=outage, title="Backups failing", status="investigating",
                             body="We are looking into failed backups.", actor=lena)  # fmt: skip


@pytest.fixture
def frozen():
    with time_machine.travel(NOW + 5 * MINUTE, tick=False):
        yield


def test_the_banner_and_the_incident_page_show_alice_her_incident_and_charlie_nothing(
    client, frozen, incident, acme_c, globex_c, alice, charlie
):
    client.force_login(alice)
    page = client.get("/").content.decode()
    assert "Incident: Backups failing" in page and f'href="/incidents/{incident.pk}/"' in page
    assert f'href="{reverse("contract-uptime", args=[acme_c.pk])}"' in page
    detail = client.get(f"/incidents/{incident.pk}/").content.decode()
    assert "We are looking into failed backups." in detail and "Cloud Backup" in detail
    client.force_login(charlie)
    assert "Backups failing" not in client.get("/").content.decode()
    assert client.get(f"/incidents/{incident.pk}/").status_code == 404
    assert "Backups failing" not in client.get("/incidents/").content.decode()


def test_a_resolved_incident_leaves_the_banner(client, incident, alice, lena, django_capture_on_commit_callbacks):
    with time_machine.travel(NOW + MINUTE, tick=False), django_capture_on_commit_callbacks(execute=True):
        incident_post_update(incident=incident, status="resolved", body="Fixed.", actor=lena)
    client.force_login(alice)
    with time_machine.travel(NOW + 2 * MINUTE, tick=False):
        assert "Incident: Backups failing" not in client.get("/").content.decode()
        assert "Fixed." in client.get(f"/incidents/{incident.pk}/").content.decode()


def _reply(to: str, *, sender="alice@acme.example", in_reply_to="") -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Alice <{sender}>"
    msg["To"] = to
    msg["Subject"] = "Re: Incident: Backups failing"
    msg["Message-ID"] = "<alice-1@acme.example>"
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    msg.set_content("Our nightly job failed too: is our data safe?")
    return msg.as_bytes()


def test_a_reply_to_an_incident_email_files_a_ticket_linked_to_it(incident, alice, acme_c, frozen):
    email = next(m for m in mail.outbox if m.to == [alice.email])
    ingest(_reply(email.extra_headers["Reply-To"]), received_at=NOW + 5 * MINUTE, source="pipe")
    ticket = Ticket.objects.get()
    assert (ticket.incident_id, ticket.contract_id, ticket.created_by_id) == (incident.pk, acme_c.pk, alice.pk)
    assert ticket.channel == Ticket.Channel.EMAIL and "nightly job" in ticket.description


def test_a_reply_answering_an_incident_message_id_files_a_linked_ticket_too(incident, alice, frozen):
    email = next(m for m in mail.outbox if m.to == [alice.email])
    ingest(_reply("support-queue@vendor.example", in_reply_to=email.extra_headers["Message-ID"]),
           received_at=NOW + 5 * MINUTE, source="pipe")  # fmt: skip
    assert Ticket.objects.get().incident_id == incident.pk


def test_a_reply_address_forged_for_another_sender_files_nothing_linked(incident, alice, charlie, globex_c, frozen):
    email = next(m for m in mail.outbox if m.to == [alice.email])
    ingest(_reply(email.extra_headers["Reply-To"], sender=charlie.email), received_at=NOW + 5 * MINUTE, source="pipe")
    assert not Ticket.objects.filter(incident=incident).exists()


def _ticket(user, contract, subject):
    with time_machine.travel(NOW + MINUTE, tick=False):
        return ticket_open(user=user, contract=contract, service=contract.services.get(), priority="P2",
                           subject=subject, description="Backups fail.")  # fmt: skip


def _timeline_management(incident) -> dict:
    """The read-only timeline inline's management form, as the page posts it."""
    ids = list(incident.updates.order_by("number").values_list("pk", flat=True))
    data = {"updates-TOTAL_FORMS": len(ids), "updates-INITIAL_FORMS": len(ids), "updates-MIN_NUM_FORMS": 0,
            "updates-MAX_NUM_FORMS": 1000}  # fmt: skip
    for i, pk in enumerate(ids):
        data |= {f"updates-{i}-id": pk, f"updates-{i}-incident": incident.pk}
    return data


def test_staff_link_tickets_one_by_one_and_in_bulk_then_answer_and_resolve_them_together(
    client, incident, acme_c, globex_c, alice, bob, charlie, sam, lena, django_capture_on_commit_callbacks
):
    first, second = _ticket(alice, acme_c, "Restore fails"), _ticket(bob, acme_c, "Backup late")
    other = _ticket(charlie, globex_c, "Assistant slow")
    client.force_login(sam)
    with time_machine.travel(NOW + 2 * MINUTE, tick=False):
        page = client.get(reverse("admin:tickets_ticket_change", args=[first.pk])).content.decode()
        assert "Suggested: filed during “Backups failing”" in page
        response = client.post(reverse("admin:tickets_ticket_incident", args=[first.pk]), {"incident": incident.pk})
        assert response.status_code == 302
        response = client.post(reverse("admin:tickets_ticket_changelist"), {
            "action": "link_to_incident", "_selected_action": [second.pk, other.pk], "incident": incident.pk, "index": 0,
        })  # fmt: skip
        assert response.status_code == 302
    assert set(incident.tickets.values_list("pk", flat=True)) == {first.pk, second.pk}  # Globex's is refused
    assert AuditEntry.objects.filter(action="ticket.incident_linked").count() == 2

    client.force_login(alice)
    with time_machine.travel(NOW + 3 * MINUTE, tick=False):
        assert f'href="/incidents/{incident.pk}/"' in client.get(f"/tickets/{first.pk}/").content.decode()
        assert f"/tickets/{first.pk}/" in client.get(f"/incidents/{incident.pk}/").content.decode()
    client.force_login(charlie)
    with time_machine.travel(NOW + 3 * MINUTE, tick=False):
        assert "Backups failing" not in client.get(f"/tickets/{other.pk}/").content.decode()

    client.force_login(lena)  # a lead: the incident's page is for those who publish
    mail.outbox.clear()
    with time_machine.travel(NOW + 10 * MINUTE, tick=False), django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:contracts_incident_change", args=[incident.pk]), {
            "title": "Backups failing", "new_status": "", "new_body": "", "seen_last": 1,
            "tickets_body": "A full storage node caused it; backups run again.", "tickets_resolve": "on",
            **_timeline_management(incident),
        })  # fmt: skip
        assert response.status_code == 302, response.content.decode()[:2000]
    for t in (first, second):
        t.refresh_from_db()
        assert t.status == Ticket.Status.RESOLVED
        assert TicketMessage.objects.filter(ticket=t, internal=False, body__contains="full storage node").count() == 1
    assert Ticket.objects.get(pk=other.pk).status != Ticket.Status.RESOLVED
    assert {m.to[0] for m in mail.outbox} >= {alice.email, bob.email} and charlie.email not in {
        m.to[0] for m in mail.outbox
    }


def test_a_claim_lists_the_incidents_of_its_month_with_their_linked_tickets(client, backup, acme_c, alice, lena):
    outage = Outage.objects.create(title="October storage", starts_at=datetime(2026, 10, 10, 9, tzinfo=UTC),
                                   ends_at=datetime(2026, 10, 10, 19, tzinfo=UTC))  # fmt: skip
    outage.services.set([backup])
    at = datetime(2026, 10, 10, 9, 5, tzinfo=UTC)
    incident = incident_open(outage=outage, title="Storage down", status="resolved", body="Fixed.", actor=lena, now=at)
    with time_machine.travel(at, tick=False):
        ticket = ticket_open(user=alice, contract=acme_c, service=backup, priority="P1", subject="Nothing restores",
                             description="Down.")  # fmt: skip
    Ticket.objects.filter(pk=ticket.pk).update(incident=incident)
    with time_machine.travel(NOW, tick=False):
        close_month(month=date(2026, 10, 1), now=NOW)
        claim = claim_submit(contract=acme_c, month=date(2026, 10, 1), user=alice)
        client.force_login(alice)
        page = client.get(reverse("claim-detail", args=[claim.pk])).content.decode()
    assert "Incidents of the month" in page and "Storage down" in page
    assert f'href="/tickets/{ticket.pk}/"' in page and "Nothing restores" in page


def test_the_api_lists_the_organisations_incidents_only(client, incident, alice, charlie, globex_c, frozen):
    client.force_login(alice)
    body = client.get("/api/v1/incidents/").json()
    assert [i["title"] for i in body["results"]] == ["Backups failing"]
    assert body["results"][0]["updates"][0]["body"] == "We are looking into failed backups."
    assert client.get(f"/api/v1/incidents/{incident.pk}/").json()["status"] == "investigating"
    assert client.get("/api/v1/incidents/?status=bogus").status_code == 400
    client.force_login(charlie)
    assert client.get("/api/v1/incidents/").json()["results"] == []
    assert client.get(f"/api/v1/incidents/{incident.pk}/").status_code == 404


def test_staff_draft_an_incident_in_the_admin_and_publish_it_from_its_page(
    client, backup, acme_c, alice, bob, lena, sam, django_capture_on_commit_callbacks
):
    outage = Outage.objects.create(title="Restore API errors", starts_at=NOW - 10 * MINUTE)
    outage.services.set([backup])
    client.force_login(lena)
    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:contracts_incident_add"), {
            "outage": outage.pk, "title": "Restores failing", "status": "investigating",
            "body": "Restores fail with a timeout.", **_timeline_management_empty(),
        })  # fmt: skip
        assert response.status_code == 302, response.content.decode()[:3000]
    incident = outage.incident
    assert incident.published_at is None and mail.outbox == []  # publish_now unticked: a draft

    client.force_login(sam)  # an agent reads it and may not change it
    with time_machine.travel(NOW + MINUTE, tick=False):
        page = client.get(reverse("admin:contracts_incident_change", args=[incident.pk])).content.decode()
        assert "Restores fail with a timeout." in page and 'name="publish"' not in page
        response = client.post(reverse("admin:contracts_incident_change", args=[incident.pk]),
                               {"title": "Restores failing", "publish": "on", **_timeline_management(incident)})  # fmt: skip
        assert response.status_code == 403 and mail.outbox == []

    client.force_login(lena)
    with time_machine.travel(NOW + 2 * MINUTE, tick=False), django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:contracts_incident_change", args=[incident.pk]), {
            "title": "Restores failing", "new_status": "", "new_body": "", "seen_last": 1, "publish": "on",
            **_timeline_management(incident),
        })  # fmt: skip
        assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.published_at == NOW + 2 * MINUTE
    assert sorted(m.to[0] for m in mail.outbox) == [alice.email, bob.email]
    assert all("Restores fail with a timeout." in m.body for m in mail.outbox)


def _timeline_management_empty() -> dict:
    return {"updates-TOTAL_FORMS": 0, "updates-INITIAL_FORMS": 0, "updates-MIN_NUM_FORMS": 0,
            "updates-MAX_NUM_FORMS": 1000}  # fmt: skip


def test_the_pickers_offer_open_incidents_then_the_last_30_days_and_keep_a_tickets_own(
    client, acme_c, alice, sam, backup
):
    """The queue's link action and the ticket page list the open incidents (latest first), then those
    resolved in the last 30 days (latest resolved first); an older one only where a ticket has it."""

    def made(title, created_days_ago, resolved_days_ago=None):
        outage = Outage.objects.create(title=title, starts_at=NOW - timedelta(days=created_days_ago))
        outage.services.set([backup])
        return Incident.objects.create(
            outage=outage, title=title, created_at=outage.starts_at, updated_at=outage.starts_at,
            resolved_at=None if resolved_days_ago is None else NOW - timedelta(days=resolved_days_ago),
        )  # fmt: skip

    old_open, new_open = made("Old open", 50), made("New open", 2)
    week, month = made("Resolved a week ago", 9, 7), made("Resolved 29 days ago", 31, 29)
    older = made("Resolved 40 days ago", 41, 40)
    ticket = _ticket(alice, acme_c, "Restore fails")
    Ticket.objects.filter(pk=ticket.pk).update(incident=older)

    def offered(page: str) -> list[int]:
        picker = page.split('name="incident"', 1)[1].split("</select>", 1)[0]
        return [int(v) for v in re.findall(r'<option value="(\d+)"', picker)]

    client.force_login(sam)
    with time_machine.travel(NOW, tick=False):
        asked = client.post(reverse("admin:tickets_ticket_changelist"), {
            "action": "link_to_incident", "_selected_action": [ticket.pk], "index": 0,
        })  # fmt: skip
        assert offered(asked.content.decode()) == [new_open.pk, old_open.pk, week.pk, month.pk]
        page = client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk])).content.decode()
        assert offered(page) == [new_open.pk, old_open.pk, week.pk, month.pk, older.pk]
        assert f'<option value="{older.pk}" selected>' in page
        link = reverse("admin:tickets_ticket_incident", args=[ticket.pk])
        assert client.post(link, {"incident": older.pk}).status_code == 302  # its own, kept while linked
        assert Ticket.objects.get(pk=ticket.pk).incident_id == older.pk
        assert client.post(link, {"incident": week.pk}).status_code == 302
        assert Ticket.objects.get(pk=ticket.pk).incident_id == week.pk
        assert client.post(link, {"incident": older.pk}).status_code == 400  # no longer its own
        client.post(reverse("admin:tickets_ticket_changelist"), {
            "action": "link_to_incident", "_selected_action": [ticket.pk], "incident": older.pk, "index": 0,
        })  # fmt: skip
    assert Ticket.objects.get(pk=ticket.pk).incident_id == week.pk


def test_the_link_action_asks_for_the_incident_on_its_own_page(client, incident, acme_c, alice, bob, sam):
    first, second = _ticket(alice, acme_c, "Restore fails"), _ticket(bob, acme_c, "Backup late")
    client.force_login(sam)
    queue = reverse("admin:tickets_ticket_changelist")
    chosen = {"action": "link_to_incident", "_selected_action": [first.pk, second.pk], "index": 0}
    with time_machine.travel(NOW + 2 * MINUTE, tick=False):
        assert 'name="incident"' not in client.get(queue).content.decode()  # no picker on every queue page
        asked = client.post(queue, chosen)
        page = asked.content.decode()
        assert asked.status_code == 200 and "Restore fails" in page and "Backup late" in page
        assert f'<option value="{incident.pk}">Backups failing' in page and 'name="apply"' in page
        refused = client.post(queue, {**chosen, "apply": "yes", "incident": ""})
        assert refused.status_code == 400 and "This field is required." in refused.content.decode()
        assert not incident.tickets.exists()
        done = client.post(queue, {**chosen, "apply": "yes", "incident": incident.pk})
        assert done.status_code == 302
    assert set(incident.tickets.values_list("pk", flat=True)) == {first.pk, second.pk}


def test_a_reply_to_an_incident_email_files_its_new_text_without_our_quoted_email(incident, alice, frozen):
    email = next(m for m in mail.outbox if m.to == [alice.email])
    raw = _reply(email.extra_headers["Reply-To"]).replace(
        b"is our data safe?", b"is our data safe?\n\nOn Tue, 10 Nov 2026, Kaluari wrote:\n> We are looking into it."
    )
    ingest(raw, received_at=NOW + 5 * MINUTE, source="pipe")
    assert Ticket.objects.get().description == "Our nightly job failed too: is our data safe?"
