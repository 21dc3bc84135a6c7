"""The customer's ticket pages: filing, the list with its clocks, one ticket with its conversation,
replies, escalation requests, closing and reopening, and attachments. Alice and Bob at Acme,
Charlie at Globex, Sam on support; clocks frozen; emails asserted."""

import struct
import zlib
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from contracts.models import SLA
from portal.models import OutboxMessage
from tickets.models import Attachment, EscalationRequest, Ticket, TicketMessage
from tickets.services import ticket_open, ticket_reply, ticket_request_escalation, ticket_set_status

from .factories import ContractFactory

NBO = ZoneInfo("Africa/Nairobi")
FRI_1600 = datetime(2026, 12, 11, 16, 0, tzinfo=NBO)
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def frozen():
    with time_machine.travel(FRI_1600, tick=False) as traveller:
        yield traveller


@pytest.fixture
def klart_contract(globex, charlie):
    return ContractFactory(
        organisation=globex, sla=SLA.objects.get(template_key="klart-ai"), reference="KLA-0002",
        name="Klart AI for Globex", currency="SEK", contacts=[charlie],
    )  # fmt: skip


def file(contract, user, priority="P1", subject="Backups fail", **kwargs):
    return ticket_open(
        user=user, contract=contract, service=contract.services.get(), priority=priority, subject=subject,
        description="Nothing backs up since last night.", **kwargs,
    )  # fmt: skip


def form_data(contract, **overrides):
    data = {
        "contract": contract.pk,
        "service": contract.services.get().pk,
        "priority": "P1",
        "subject": "Backups fail",
        "description": "Nothing backs up since last night.",
        "steps_to_reproduce": "1. Start a backup\n2. It stops at 3%",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def tiny_png() -> bytes:
    """A valid 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


def html_of(response) -> str:
    return response.content.decode()


# --- Filing -------------------------------------------------------------------------------------
def test_filing_a_p1_ticket_shows_its_deadline_in_nairobi_time_and_emails_a_receipt(
    client, alice, bob, acme_contract, mailoutbox, django_capture_on_commit_callbacks
):
    with time_machine.travel(FRI_1600, tick=False), django_capture_on_commit_callbacks(execute=True):
        client.force_login(alice)  # sessions last 12 hours: log in at the frozen time
        response = client.post(reverse("ticket-new"), form_data(acme_contract))
    ticket = Ticket.objects.get()
    assert response.status_code == 302 and response.url == reverse("ticket-detail", args=[ticket.pk])
    assert (ticket.created_by, ticket.priority, ticket.status) == (alice, "P1", "new")
    assert ticket.steps_to_reproduce == "1. Start a backup\n2. It stops at 3%"

    with time_machine.travel(FRI_1600 + timedelta(minutes=1), tick=False):
        html = html_of(client.get(response.url))
    assert f"Ticket {ticket.number} is filed" in html
    assert "Due 2026-12-11 16:15 (UTC+03:00)" in html  # first response: 15 min, 24x7
    assert "Resolution due</dt>" in html and "2026-12-11 17:00 (UTC+03:00)" in html  # P1: target = limit = 1 h
    # A live countdown to the first response (UTC in the markup), loaded from a file, no inline script.
    assert '<time class="countdown" datetime="2026-12-11T13:15:00+00:00" data-countdown>in 14' in html
    assert 'src="/static/js/countdown.js" defer' in html and "<script>" not in html
    assert "Level <strong>1</strong>" not in html and "Current level: <strong>1</strong>" in html
    assert "Email support with a description of the issue — support@kaluari.com" in html
    assert "Next escalation step: 2026-12-11 16:15 (UTC+03:00)" in html

    receipts = [m for m in mailoutbox if m.to == [alice.email]]
    assert len(receipts) == 1
    assert receipts[0].subject == f"[{ticket.number}] Received: Backups fail"
    assert "2026-12-11 16:15 (UTC+03:00)" in receipts[0].body
    assert not any(m.to == [bob.email] for m in mailoutbox)  # not his ticket (portal.core.notify_rules)


def test_the_form_shows_each_priority_with_its_meaning_beside_the_choice(client, alice, acme_contract, frozen):
    client.force_login(alice)
    response = client.get(reverse("ticket-new"), {"contract": acme_contract.pk})
    html = html_of(response)
    assert response.status_code == 200
    for code in ("P1", "P2", "P3", "P4"):
        assert f'type="radio" name="priority" value="{code}"' in html
    assert html.count('type="radio" name="priority"') == 4
    assert "Production incident: severely impacts your ability to push, process or trigger backup" in html
    assert "Medium-to-low impact: affects only the restore process." in html
    # The meaning is tied to its radio button for screen readers.
    assert 'id="id_priority_0" required aria-describedby="id_priority_0_meaning"' in html
    assert '<p class="meaning" id="id_priority_0_meaning">' in html
    assert "First response within 4 h; resolution target 12 h, limit 24 h" in html
    assert 'type="file" name="attachments"' in html and "multiple" in html
    # The contract's only service is chosen already.
    assert f'<option value="{acme_contract.services.get().pk}" selected>' in html


def test_klart_offers_no_priority_choice_and_files_at_its_one_priority(
    client, charlie, klart_contract, frozen, mailoutbox, django_capture_on_commit_callbacks
):
    client.force_login(charlie)
    html = html_of(client.get(reverse("ticket-new"), {"contract": klart_contract.pk}))
    assert 'name="priority"' not in html
    assert "<strong>Priority:</strong> Standard. Any service request: acknowledged within 4 business hours" in html

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("ticket-new"), form_data(klart_contract, priority=None))
    assert response.status_code == 302
    ticket = Ticket.objects.get()
    assert ticket.priority == "STD"
    # Staff read the priority as the SLA calls it, never its code.
    staff = [m.subject for m in mailoutbox if m.to != [charlie.email]]
    assert staff and all("New Standard ticket from Globex" in s and "STD" not in s for s in staff), staff


def test_with_several_contracts_the_form_follows_the_chosen_one_and_keeps_what_was_typed(
    client, alice, acme, acme_contract, frozen
):
    from .factories import ServiceFactory

    klart = ContractFactory(
        organisation=acme, sla=SLA.objects.get(template_key="klart-ai"), name="Klart AI for Acme",
        services=[ServiceFactory(name="AI Assistant", slug="ai-assistant")],
    )  # fmt: skip
    client.force_login(alice)
    html = html_of(client.get(reverse("ticket-new")))
    assert "Choose a contract to see its services and priorities." in html and 'name="priority"' not in html
    assert 'name="action" value="refresh" formnovalidate' in html
    assert f'<a href="{reverse("contract-list")}">Contracts</a>' in html
    # With several, "Contracts" lists the organisation's own, and no other organisation's.
    other = ContractFactory(name="Globex's contract")
    listed = html_of(client.get(reverse("contract-list")))
    assert f'href="{reverse("contract-detail", args=[klart.pk])}">Klart AI for Acme</a>' in listed
    assert f'href="{reverse("contract-detail", args=[acme_contract.pk])}">{acme_contract.name}</a>' in listed
    assert "Globex&#x27;s contract" not in listed and str(other.reference) not in listed

    response = client.post(
        reverse("ticket-new"),
        {"action": "refresh", "contract": klart.pk, "subject": "Answers are slow", "priority": "P1"},
    )
    html = html_of(response)
    assert response.status_code == 200 and 'class="error"' not in html
    assert 'value="Answers are slow"' in html
    assert "<strong>Priority:</strong> Standard." in html and 'name="priority"' not in html
    assert f'<option value="{klart.services.get().pk}" selected>AI Assistant</option>' in html
    assert not Ticket.objects.exists()


def test_an_invalid_form_is_a_400_with_errors_tied_to_fields_and_stores_nothing(client, alice, acme_contract, frozen):
    client.force_login(alice)
    response = client.post(reverse("ticket-new"), form_data(acme_contract, subject="  ", priority=None))
    html = html_of(response)
    assert response.status_code == 400
    assert 'aria-invalid="true" aria-describedby="id_subject_helptext id_subject_error"' in html
    assert '<ul class="error" id="id_subject_error"><li>This field is required.</li></ul>' in html
    assert 'id="id_priority_error"><li>Choose a priority.</li>' in html
    assert 'aria-describedby="id_priority_helptext id_priority_error"' in html  # on the radio group's fieldset
    assert '<a href="#id_subject">Subject: This field is required.</a>' in html  # the summary links to the field
    assert "Nothing backs up since last night." in html  # what was typed is kept
    assert not Ticket.objects.exists() and not OutboxMessage.objects.exists()


def test_another_organisations_contract_is_a_field_error_not_a_ticket(
    client, alice, acme_contract, globex_contract, frozen
):
    client.force_login(alice)
    response = client.post(reverse("ticket-new"), form_data(globex_contract))
    assert response.status_code == 400
    assert "Choose one of your organisation&#x27;s contracts." in html_of(response)
    assert not Ticket.objects.exists()
    # On the GET side, a foreign contract id is simply not picked.
    html = html_of(client.get(reverse("ticket-new"), {"contract": globex_contract.pk}))
    assert "AI Assistant for Globex" not in html


def test_a_service_the_contract_does_not_cover_is_a_field_error(client, alice, acme, acme_contract, frozen):
    from .factories import ServiceFactory

    other = ContractFactory(organisation=acme, services=[ServiceFactory(name="Object Storage", slug="storage")])
    client.force_login(alice)
    response = client.post(reverse("ticket-new"), form_data(acme_contract, service=other.services.get().pk))
    assert response.status_code == 400
    assert "Choose a service covered by the contract." in html_of(response)
    assert not Ticket.objects.exists()


def test_an_executable_renamed_png_is_refused_on_filing(client, alice, acme_contract, frozen):
    client.force_login(alice)
    exe = SimpleUploadedFile("screenshot.png", b"MZ\x90\x00" + b"\x00" * 200, content_type="image/png")
    response = client.post(reverse("ticket-new"), {**form_data(acme_contract), "attachments": [exe]})
    assert response.status_code == 400
    assert "“screenshot.png” is an executable file, which is not accepted: images (PNG, JPEG, GIF, WebP)" in html_of(
        response
    )
    assert not Ticket.objects.exists() and not Attachment.objects.exists()


# --- Scoping ------------------------------------------------------------------------------------
def test_charlie_gets_404_on_everything_of_alices_ticket(
    client, alice, charlie, acme_contract, globex_contract, frozen
):
    ticket = file(acme_contract, alice)
    ticket_reply(ticket=ticket, author=alice, body="Screenshot", files=[SimpleUploadedFile("a.png", tiny_png())])
    attachment = Attachment.objects.get()
    client.force_login(charlie)
    assert client.get(reverse("ticket-detail", args=[ticket.pk])).status_code == 404
    assert client.post(reverse("ticket-reply", args=[ticket.pk]), {"body": "hi"}).status_code == 404
    assert client.post(reverse("ticket-escalate", args=[ticket.pk]), {"reason": "now"}).status_code == 404
    assert client.post(reverse("ticket-status", args=[ticket.pk]), {"status": "closed"}).status_code == 404
    assert client.get(reverse("attachment-download", args=[ticket.pk, attachment.pk])).status_code == 404
    assert client.get(reverse("ticket-list")).content.decode().count(ticket.subject) == 0
    ticket.refresh_from_db()
    assert ticket.status == "new" and ticket.messages.count() == 1
    assert not EscalationRequest.objects.exists()


def test_staff_see_no_customer_tickets_here(client, sam, alice, acme_contract, frozen):
    ticket = file(acme_contract, alice)
    client.force_login(sam)
    assert client.get(reverse("ticket-detail", args=[ticket.pk])).status_code == 404
    assert "Backups fail" not in html_of(client.get(reverse("ticket-list")))


def test_anonymous_visitors_are_sent_to_log_in(client, alice, acme_contract, frozen):
    ticket = file(acme_contract, alice)
    for url in (reverse("ticket-list"), reverse("ticket-new"), reverse("ticket-detail", args=[ticket.pk])):
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith(reverse("login"))


@pytest.mark.parametrize("name", ["ticket-reply", "ticket-escalate", "ticket-status"])
def test_views_that_change_data_reject_get(client, alice, acme_contract, frozen, name):
    ticket = file(acme_contract, alice)
    client.force_login(alice)
    assert client.get(reverse(name, args=[ticket.pk])).status_code == 405


# --- The conversation ---------------------------------------------------------------------------
def test_internal_notes_never_appear_on_the_customer_page(client, alice, sam, acme_contract, frozen):
    ticket = file(acme_contract, alice)
    note = ticket_reply(
        ticket=ticket, author=sam, body="Customer runs agent 3.x, unsupported", internal=True,
        files=[SimpleUploadedFile("notes.txt", b"internal only")],
    )  # fmt: skip
    ticket_reply(ticket=ticket, author=sam, body="We are looking into it.")
    client.force_login(alice)
    html = html_of(client.get(reverse("ticket-detail", args=[ticket.pk])))
    assert "We are looking into it." in html and "Support team" in html
    assert "unsupported" not in html and "notes.txt" not in html
    # ... nor can its attachment be fetched by guessing the id.
    hidden = note.attachments.get()
    assert client.get(reverse("attachment-download", args=[ticket.pk, hidden.pk])).status_code == 404


def test_a_reply_with_a_png_is_stored_and_downloadable_by_bob_not_charlie(
    client, alice, bob, charlie, sam, acme_contract, frozen
):
    ticket = file(acme_contract, alice)
    client.force_login(alice)
    png = SimpleUploadedFile("error screen.png", tiny_png(), content_type="application/octet-stream")
    response = client.post(
        reverse("ticket-reply", args=[ticket.pk]), {"body": "Here is the error", "attachments": [png]}
    )
    assert response.status_code == 302
    message = TicketMessage.objects.get()
    attachment = Attachment.objects.get()
    assert (attachment.message, attachment.content_type, attachment.original_name) == (
        message,
        "image/png",
        "error screen.png",
    )
    url = reverse("attachment-download", args=[ticket.pk, attachment.pk])
    page = html_of(client.get(reverse("ticket-detail", args=[ticket.pk])))
    assert url in page and "(69\xa0bytes, PNG image)" in page and "bytes, image/png" not in page  # its type in words

    client.force_login(bob)
    response = client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == tiny_png()
    assert response["Content-Type"] == "image/png"  # the checked type, not the browser's claim
    assert response["Content-Disposition"] == 'attachment; filename="error screen.png"'
    assert response["X-Content-Type-Options"] == "nosniff"

    client.force_login(sam)  # staff reach it from the admin, served with the same care
    assert client.get(url).status_code == 200
    staff = client.get(reverse("admin:tickets_ticket_attachment", args=[ticket.pk, attachment.pk]))
    assert b"".join(staff.streaming_content) == tiny_png()
    assert staff["X-Content-Type-Options"] == "nosniff" and "no-store" in staff["Cache-Control"]
    assert staff["Content-Security-Policy"] == "default-src 'none'; sandbox"
    client.force_login(charlie)
    assert client.get(url).status_code == 404
    # An attachment id of another ticket, under this ticket's URL, is a 404 too.
    other = file(acme_contract, alice, subject="Second")
    client.force_login(bob)
    assert client.get(reverse("attachment-download", args=[other.pk, attachment.pk])).status_code == 404


@pytest.mark.parametrize(
    "content, kind",
    [
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 200, "an executable file"),
        (b"MZ\x90\x00" + b"\x00" * 200, "an executable file"),
        (b"Rar!\x1a\x07\x00" + b"\x00" * 200, "a file of type RAR"),
        (b"{\\rtf1" + b"\x00" * 200, "a file of type RTF"),
        (b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200, "a video (MP4)"),
    ],
)
def test_an_executable_renamed_png_is_refused_with_a_message(client, alice, acme_contract, frozen, content, kind):
    ticket = file(acme_contract, alice)
    client.force_login(alice)
    upload = SimpleUploadedFile("photo.png", content, content_type="image/png")
    response = client.post(reverse("ticket-reply", args=[ticket.pk]), {"body": "See attached", "attachments": [upload]})
    html = html_of(response)
    assert response.status_code == 400
    assert (
        f"“photo.png” is {kind}, which is not accepted: images (PNG, JPEG, GIF, WebP), PDF, ZIP/GZip, or text" in html
    )
    assert "application/" not in html and "video/" not in html  # no MIME type reaches the person
    assert 'id="reply_attachments_error"' in html
    assert "Your reply was not sent" in html
    assert not TicketMessage.objects.exists() and not Attachment.objects.exists()


def test_a_customer_reply_while_waiting_restarts_the_clocks(client, alice, sam, acme_contract, frozen):
    ticket = file(acme_contract, alice, priority="P2")
    frozen.move_to(FRI_1600 + timedelta(minutes=10))
    ticket_reply(ticket=ticket, author=sam, body="Which agent version?")
    ticket_set_status(ticket=ticket, actor=sam, status="waiting")
    client.force_login(alice)
    frozen.move_to(FRI_1600 + timedelta(hours=2, minutes=10))
    html = html_of(client.get(reverse("ticket-detail", args=[ticket.pk])))
    assert "<strong>Paused</strong>: the clocks stop while we wait for your reply" in html
    assert "data-countdown" not in html  # paused: no countdown
    # What to do now is to reply, as the dashboard and the list say; the level stays named.
    assert (
        "Current level: <strong>1</strong> (Email support with a description of the issue — support@kaluari.com)."
    ) in html
    assert "<strong>What to do now:</strong> Reply on the ticket: we are waiting for you." in html
    assert "Escalation is paused while we wait for your reply." in html
    listed = html_of(client.get(reverse("ticket-list")))
    assert "Reply on the ticket: we are waiting for you" in listed and "Email support" not in listed
    assert "Answered at 2026-12-11 16:10 (UTC+03:00)" in html

    response = client.post(reverse("ticket-reply", args=[ticket.pk]), {"body": "Agent 4.2.1"})
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == "open" and not ticket.paused
    html = html_of(client.get(reverse("ticket-detail", args=[ticket.pk])))
    assert "<strong>Running</strong>" in html
    assert "2026-12-11 22:00 (UTC+03:00)" in html  # 16:00 + 4 h + 2 h paused


def test_a_reply_needs_a_body(client, alice, acme_contract, frozen):
    ticket = file(acme_contract, alice)
    client.force_login(alice)
    response = client.post(reverse("ticket-reply", args=[ticket.pk]), {"body": ""})
    assert response.status_code == 400
    assert 'id="reply_body_error"' in html_of(response)
    assert not TicketMessage.objects.exists()


# --- Escalation ---------------------------------------------------------------------------------
def test_asking_to_escalate_creates_a_request_and_emails(
    client, alice, acme_contract, mailoutbox, django_capture_on_commit_callbacks
):
    with time_machine.travel(FRI_1600, tick=False):
        client.force_login(alice)
        ticket = file(acme_contract, alice)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(reverse("ticket-escalate", args=[ticket.pk]), {"reason": "All branches are down"})
        assert response.status_code == 302
        request = EscalationRequest.objects.get()
        assert (request.requested_by, request.reason) == (alice, "All branches are down")
        html = html_of(client.get(reverse("ticket-detail", args=[ticket.pk])))
        assert "Your escalation request is sent" in html
        assert "We acknowledge it by 2026-12-11 16:15 (UTC+03:00)" in html  # P1: its first-response time
        assert "All branches are down" in html
        assert f'action="/tickets/{ticket.pk}/escalate/"' not in html  # one pending request at a time
        # Asking again while the first waits is refused with a message, not stored.
        response = client.post(reverse("ticket-escalate", args=[ticket.pk]), {"reason": "Again"})
        assert response.status_code == 400
        assert "still waiting for acknowledgement" in html_of(response)
    assert EscalationRequest.objects.count() == 1
    emails = [m for m in mailoutbox if m.to == [alice.email] and "escalation request" in m.subject]
    assert len(emails) == 1
    assert "It will be acknowledged by 2026-12-11 16:15 (UTC+03:00)." in emails[0].body


def test_an_acknowledged_request_says_when(client, alice, sam, acme_contract, frozen):
    ticket = file(acme_contract, alice)
    client.force_login(alice)
    client.post(reverse("ticket-escalate", args=[ticket.pk]), {"reason": "Urgent"})
    frozen.move_to(FRI_1600 + timedelta(minutes=5))
    ticket_reply(ticket=ticket, author=sam, body="Escalated to the lead.")
    html = html_of(client.get(reverse("ticket-detail", args=[ticket.pk])))
    assert "was acknowledged at 2026-12-11 16:05 (UTC+03:00)" in html


def test_an_escalation_request_needs_a_reason_and_an_open_ticket(client, alice, acme_contract, frozen):
    ticket = file(acme_contract, alice)
    client.force_login(alice)
    response = client.post(reverse("ticket-escalate", args=[ticket.pk]), {"reason": " "})
    assert response.status_code == 400 and 'id="escalate_reason_error"' in html_of(response)
    ticket_set_status(ticket=ticket, actor=alice, status="closed")
    response = client.post(reverse("ticket-escalate", args=[ticket.pk]), {"reason": "Please"})
    assert response.status_code == 400
    assert "Only an open ticket can be escalated; reopen it first." in html_of(response)
    assert not EscalationRequest.objects.exists()


def test_klart_shows_its_one_email_rung_and_its_acknowledgement_time(client, charlie, klart_contract, frozen):
    ticket = file(klart_contract, charlie, priority=None)
    client.force_login(charlie)
    html = html_of(client.get(reverse("ticket-detail", args=[ticket.pk])))
    # Level 1 is email (its support address takes tickets in); with no dwell it never moves on.
    assert "Email support with a description of the request — support@klart.ai" in html
    assert "Next escalation step" not in html
    assert "We acknowledge an escalation request within 4 h" in html
    assert "(UTC+01:00)" in html  # Stockholm time in December


# --- Close and reopen ---------------------------------------------------------------------------
def test_close_then_reopen_and_an_unknown_status_is_a_400(client, alice, acme_contract, frozen):
    ticket = file(acme_contract, alice)
    client.force_login(alice)
    url = reverse("ticket-status", args=[ticket.pk])
    response = client.post(url, {"status": "closed"}, follow=True)
    assert f"Ticket {ticket.number} is closed." in html_of(response)
    assert "This ticket is closed. Reopen it to reply." in html_of(response)
    assert "Resolved at 2026-12-11 16:00 (UTC+03:00)" in html_of(response) and "data-countdown" not in html_of(response)
    ticket.refresh_from_db()
    assert ticket.status == "closed" and ticket.closed_at is not None

    frozen.move_to(FRI_1600 + timedelta(minutes=20))
    response = client.post(url, {"status": "open"}, follow=True)
    assert f"Ticket {ticket.number} is reopened." in html_of(response)
    ticket.refresh_from_db()
    assert ticket.status == "open" and ticket.closed_at is None

    for bad in ("bogus", "resolved", ""):
        response = client.post(url, {"status": bad})
        assert response.status_code == 400
    ticket.refresh_from_db()
    assert ticket.status == "open"


def test_reopening_an_open_ticket_is_refused_with_a_message(client, alice, acme_contract, frozen):
    ticket = file(acme_contract, alice)
    client.force_login(alice)
    response = client.post(reverse("ticket-status", args=[ticket.pk]), {"status": "open"})
    assert response.status_code == 400
    assert "cannot be moved to open" in html_of(response)


# --- The list -----------------------------------------------------------------------------------
def test_the_list_filters_by_status_priority_and_sla_state(client, alice, sam, acme_contract):
    with time_machine.travel(FRI_1600, tick=False):
        p1 = file(acme_contract, alice, priority="P1", subject="Backups fail everywhere")
        p3 = file(acme_contract, alice, priority="P3", subject="Restore is slow")
        done = file(acme_contract, alice, priority="P4", subject="Agent log noisy")
        ticket_reply(ticket=done, author=sam, body="Fixed")
        ticket_set_status(ticket=done, actor=sam, status="resolved")
        client.force_login(alice)

    def subjects(**params):
        with time_machine.travel(FRI_1600 + timedelta(minutes=20), tick=False):
            response = client.get(reverse("ticket-list"), params)
        assert response.status_code == 200
        html = html_of(response)
        return {t.subject for t in (p1, p3, done) if t.subject in html}, html

    found, html = subjects()
    assert found == {p1.subject, p3.subject, done.subject}
    # Each row carries its clocks: the P1 first response (16:15) has passed by 16:20.
    assert (
        '<span class="badge state-breached"><span aria-hidden="true" class="badge-icon"></span>Breached</span>' in html
    )
    assert '<span class="badge state-on_track">' in html and ">Met</span>" in html
    assert "Due 2026-12-11 16:15 (UTC+03:00)" in html
    assert "Level 1: Email support with a description of the issue<br><small>support@kaluari.com</small>" in html
    assert subjects(status="resolved")[0] == {done.subject}
    assert subjects(priority="P3")[0] == {p3.subject}
    assert subjects(sla="at_risk")[0] == {p1.subject}
    assert subjects(status="new", priority="P1")[0] == {p1.subject}
    # Unknown values are ignored with a message, never an error page.
    found, html = subjects(status="bogus", priority="P9", sla="<script>", page="x")
    assert found == {p1.subject, p3.subject, done.subject}
    assert "Unknown status “bogus”: that filter was ignored." in html
    assert "&lt;script&gt;" in html and "<script>" not in html


def test_the_list_paginates_by_25(client, alice, acme_contract, frozen):
    for i in range(27):
        file(acme_contract, alice, priority="P4", subject=f"Ticket number {i:02d}")
    client.force_login(alice)
    first = html_of(client.get(reverse("ticket-list"), {"priority": "P4"}))
    assert first.count('<th scope="row">') == 25 and "Page 1 of 2" in first
    assert 'href="?priority=P4&amp;page=2"' in first
    second = html_of(client.get(reverse("ticket-list"), {"priority": "P4", "page": 2}))
    assert second.count('<th scope="row">') == 2
    assert "Ticket number 00" in second  # oldest last


def _list_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("sla", ["", "at_risk"])
def test_the_list_does_a_fixed_number_of_queries(client, alice, sam, acme_contract, frozen, sla):
    client.force_login(alice)
    url = reverse("ticket-list") + (f"?sla={sla}" if sla else "")

    def add(n):
        for i in range(n):
            t = file(acme_contract, alice, priority=["P1", "P3"][i % 2], subject=f"Issue {i}")
            if i % 3 == 2:  # some breached P1s at level 3, whose contact is looked up (the account manager)
                Ticket.objects.filter(pk=t.pk).update(escalation_level=3)
            if i % 5 == 0:
                ticket_reply(ticket=t, author=sam, body="Looking")
                ticket_set_status(ticket=t, actor=sam, status="waiting")

    add(3)
    frozen.move_to(FRI_1600 + timedelta(minutes=50))  # the P1s are breached, the P3s on track
    small = _list_queries(client, url)
    frozen.move_to(FRI_1600)
    add(27)
    frozen.move_to(FRI_1600 + timedelta(minutes=50))
    assert _list_queries(client, url) == small


# --- The dashboard and navigation ---------------------------------------------------------------
def test_dashboard_lists_open_tickets_and_a_file_a_ticket_link_per_contract(client, alice, sam, acme_contract, frozen):
    open_one = file(acme_contract, alice, subject="Agent crashes")
    done = file(acme_contract, alice, subject="Old question")
    ticket_set_status(ticket=done, actor=sam, status="resolved")
    client.force_login(alice)
    html = html_of(client.get(reverse("dashboard")))
    assert f'href="{reverse("ticket-new")}?contract={acme_contract.pk}"' in html
    assert "Agent crashes" in html and "Old question" not in html
    assert "2026-12-11 16:15 (UTC+03:00)" in html
    assert f'href="{reverse("ticket-detail", args=[open_one.pk])}"' in html
    # Navigation: "Contracts" lists them, or goes straight to the only one.
    assert f'<a href="{reverse("ticket-list")}">Tickets</a>' in html
    assert f'<a href="{reverse("contract-list")}">Contracts</a>' in html
    response = client.get(reverse("contract-list"))
    assert response.status_code == 302 and response["Location"] == reverse("contract-detail", args=[acme_contract.pk])


def test_the_ticket_page_skips_the_queries_for_what_a_ticket_does_not_have(client, alice, sam, acme_contract, frozen):
    """Files and escalation requests are read only when the ticket has some (with_presence): two
    queries fewer for a ticket with neither, and the same page for one with both. Pauses are never
    read: the ticket's stored clock columns already count them."""
    ticket = file(acme_contract, alice, priority="P3")
    ticket_reply(ticket=ticket, author=sam, body="Looking into it.")
    client.force_login(alice)
    url = reverse("ticket-detail", args=[ticket.pk])
    bare = _list_queries(client, url)
    html = html_of(client.get(url))
    assert "Looking into it." in html and 'class="files"' not in html and "You asked to escalate" not in html

    ticket_set_status(ticket=ticket, actor=sam, status="waiting")  # a pause
    ticket_reply(
        ticket=ticket, author=alice, body="Here is the log.", files=[SimpleUploadedFile("job.log", b"failed\n")]
    )
    ticket_request_escalation(ticket=ticket, user=alice, reason="Still failing.")
    assert _list_queries(client, url) == bare + 2
    html = html_of(client.get(url))
    assert ">job.log</a>" in html and "You asked to escalate" in html and "Still failing." in html
