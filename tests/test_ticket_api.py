"""The customer ticket API (/api/v1/tickets/...): filing with the SLA clock in the answer, scoping to
the organisation (another organisation's ticket is a 404, never a 403), the customer's moves,
uploads checked on content, and 400s with messages (never a 500, nothing stored) for bad input.
Time frozen at Friday 2026-12-11 16:00 in Nairobi."""

import base64
import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from knox.models import AuthToken
from rest_framework.test import APIClient

from contracts.models import SLA
from portal.models import OutboxMessage
from tickets.models import Attachment, EscalationRequest, Ticket, TicketEvent, TicketMessage
from tickets.services import ticket_open, ticket_reply, ticket_set_status
from tickets.sweeps import escalate_due_tickets

from .factories import ContractFactory

NBO = ZoneInfo("Africa/Nairobi")
FRI_1600 = datetime(2026, 12, 11, 16, 0, tzinfo=NBO)
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200
LIST = "/api/v1/tickets/"
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(FRI_1600, tick=False) as traveller:
        yield traveller


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def file(contract, user, priority="P1", subject="Backups fail"):
    return ticket_open(
        user=user, contract=contract, service=contract.services.get(), priority=priority,
        subject=subject, description="Nothing backs up since last night.",
    )  # fmt: skip


def new_ticket_body(contract, /, **overrides):
    return {
        "contract": contract.pk, "service": contract.services.get().pk, "priority": "P1",
        "subject": "Backups fail", "description": "Nothing backs up since last night.",
        "steps_to_reproduce": "1. Start a backup\n2. Watch it fail",
        **overrides,
    }  # fmt: skip


def rows() -> dict:
    """Every table a request could write to."""
    models = (Ticket, TicketMessage, Attachment, EscalationRequest, TicketEvent, OutboxMessage)
    return {m.__name__: m.objects.count() for m in models}


def detail(ticket):
    return f"{LIST}{ticket.pk}/"


@pytest.fixture
def klart_contract(globex, charlie):
    return ContractFactory(
        organisation=globex, reference="KLA-0002", name="AI Assistant", sla=SLA.objects.get(template_key="klart-ai"),
        contacts=[charlie],
    )  # fmt: skip


# --- Filing ---------------------------------------------------------------------------------------
def test_alice_files_a_kaluari_p1_and_the_answer_carries_its_clock(acme_contract, alice):
    response = client_for(alice).post(LIST, new_ticket_body(acme_contract), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    ticket = Ticket.objects.get()
    assert body["id"] == ticket.pk and body["number"] == f"#{ticket.pk}"
    assert ticket.created_by == alice and ticket.steps_to_reproduce == "1. Start a backup\n2. Watch it fail"
    assert {k: body[k] for k in ("status", "priority", "subject", "contract", "service", "created_at")} == {
        "status": "new", "priority": "P1", "subject": "Backups fail", "contract": acme_contract.pk,
        "service": acme_contract.services.get().pk, "created_at": "2026-12-11T13:00:00Z",
    }  # fmt: skip
    # P1: 15 min to first response, 1 h to resolution, on the 24x7 clock.
    assert body["first_response_due"] == "2026-12-11T13:15:00Z"
    assert body["resolution_target"] == "2026-12-11T14:00:00Z"
    assert body["resolution_due"] == "2026-12-11T14:00:00Z"
    assert body["first_response_at"] is None
    assert body["paused"] is False and body["breached"] is False
    assert body["sla_state"] == "on_track" and body["time_left_seconds"] == 15 * 60
    assert body["escalation_level"] == 1 and body["next_escalation_due"] == "2026-12-11T13:15:00Z"
    assert body["escalation_channel"] == "Email support with a description of the issue"
    assert body["escalation_contact"] == "support@kaluari.com"
    assert body["timezone"] == "Africa/Nairobi"


def test_a_single_priority_sla_needs_no_priority(klart_contract, charlie):
    body = new_ticket_body(klart_contract)
    del body["priority"]
    response = client_for(charlie).post(LIST, body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["priority"] == "STD"
    response = client_for(charlie).post(LIST, new_ticket_body(klart_contract, priority=None), format="json")
    assert response.status_code == 201 and response.json()["priority"] == "STD"


def test_kaluari_without_a_priority_is_refused_with_the_choices(acme_contract, alice):
    before = rows()
    body = new_ticket_body(acme_contract)
    del body["priority"]
    response = client_for(alice).post(LIST, body, format="json")
    assert response.status_code == 400
    assert response.json() == {"priority": ["Choose one of: P1, P2, P3, P4."]}
    assert rows() == before


def test_a_priority_the_sla_does_not_offer_is_refused(klart_contract, charlie):
    response = client_for(charlie).post(LIST, new_ticket_body(klart_contract, priority="P1"), format="json")
    assert response.status_code == 400 and response.json() == {"priority": ["Choose one of: STD."]}


def test_another_organisations_contract_does_not_exist(acme_contract, globex_contract, charlie):
    before = rows()
    other = client_for(charlie).post(LIST, new_ticket_body(acme_contract), format="json")
    missing = client_for(charlie).post(LIST, new_ticket_body(acme_contract, contract=999999), format="json")
    assert other.status_code == missing.status_code == 400
    assert other.json() == {"contract": [f'Invalid pk "{acme_contract.pk}" - object does not exist.']}
    assert missing.json() == {"contract": ['Invalid pk "999999" - object does not exist.']}
    assert rows() == before


def test_a_service_outside_the_contract_is_refused_and_another_organisations_does_not_exist(
    acme, acme_contract, globex_contract, alice
):
    from .factories import ServiceFactory

    archive = ServiceFactory(name="Archive", slug="archive")
    ContractFactory(organisation=acme, reference="KAL-0009", services=[archive], contacts=[alice])
    response = client_for(alice).post(LIST, new_ticket_body(acme_contract, service=archive.pk), format="json")
    assert response.status_code == 400
    assert response.json() == {"service": ["This service is not covered by the contract."]}
    # Another organisation's service is refused as an id never used is: the answer confirms nothing.
    theirs = ServiceFactory(name="AI Assistant", slug="ai-assistant")
    globex_contract.services.set([theirs])
    for service in (theirs.pk, 999999):
        response = client_for(alice).post(LIST, new_ticket_body(acme_contract, service=service), format="json")
        assert (response.status_code, response.json()) == (
            400, {"service": [f'Invalid pk "{service}" - object does not exist.']}
        )  # fmt: skip


def test_staff_file_nothing_here(acme_contract, sam):
    response = client_for(sam).post(LIST, new_ticket_body(acme_contract), format="json")
    assert response.status_code == 400 and "contract" in response.json()


# --- Reading and scoping --------------------------------------------------------------------------
def test_the_list_shows_only_the_users_organisations_tickets(acme_contract, globex_contract, alice, bob, charlie, sam):
    mine = [file(acme_contract, alice, "P1"), file(acme_contract, bob, "P3")]
    theirs = file(globex_contract, charlie, "P2")

    def ids(user):
        response = client_for(user).get(LIST)
        assert response.status_code == 200
        return [t["id"] for t in response.json()["results"]], response.json()["count"]

    assert ids(alice) == ([mine[1].pk, mine[0].pk], 2)  # newest first
    assert ids(bob) == ([mine[1].pk, mine[0].pk], 2)
    assert ids(charlie) == ([theirs.pk], 1)
    assert ids(sam) == ([], 0)  # staff are customers of no organisation


def test_the_list_filters_by_status_and_priority_and_refuses_unknown_values(acme_contract, alice):
    p1, p3 = file(acme_contract, alice, "P1"), file(acme_contract, alice, "P3")
    ticket_set_status(ticket=p3, actor=alice, status="closed")
    client = client_for(alice)

    def ids(query):
        return [t["id"] for t in client.get(LIST, query).json()["results"]]

    assert ids({"priority": "P1"}) == [p1.pk]
    assert ids({"status": "closed"}) == [p3.pk]
    assert ids({"status": "new", "priority": "P3"}) == []
    response = client.get(LIST, {"status": "bogus", "priority": "P9"})
    assert response.status_code == 400
    assert response.json() == {
        "status": ['"bogus" is not a valid choice.'],
        "priority": ['"P9" is not a valid choice.'],
    }


def test_the_list_searches_the_organisations_tickets_as_the_portal_does(
    acme_contract, globex_contract, alice, charlie, sam
):
    """`q`: the portal list's search (tickets.search, the customer's): public words only, the
    organisation's tickets only (its count too), best match first unless `ordering` is given."""
    vault = file(acme_contract, alice, "P2", subject="Zebrafish vault restore fails")
    quota = file(acme_contract, alice, "P3", subject="Quota warning")
    ticket_reply(ticket=quota, author=alice, body="The zebrafish cluster again.")
    ticket_reply(ticket=quota, author=sam, body="Marmalade: an internal word.", internal=True)
    file(globex_contract, charlie, "P1", subject="Zebrafish answers in Swedish")
    client = client_for(alice)

    def found(**query):
        response = client.get(LIST, query)
        assert response.status_code == 200, response.json()
        return [t["id"] for t in response.json()["results"]], response.json()["count"]

    assert found(q="zebrafish") == ([vault.pk, quota.pk], 2)  # the subject's word first, Globex's not counted
    assert found(q="zebrafish", ordering="-created_at") == ([quota.pk, vault.pk], 2)
    assert found(q="zebrafish -vault") == ([quota.pk], 1)
    assert found(q="marmalade") == ([], 0)  # an internal note's word is staff's
    assert found(q=f"#{quota.pk}") == ([quota.pk], 1)
    assert found(q="zebrafish", priority="P2") == ([vault.pk], 1)
    assert found(q="") == ([quota.pk, vault.pk], 2)  # blank: no search
    refused = client.get(LIST, {"q": "-vault"})
    assert refused.status_code == 400
    assert refused.json() == {"q": ["Say what to find, not only what to leave out (-word)."]}
    assert client.get(LIST, {"q": "x" * 201}).status_code == 400


def test_the_list_is_paginated(acme_contract, alice):
    tickets = [file(acme_contract, alice, "P2", subject=f"Problem {i}") for i in range(3)]
    body = client_for(alice).get(LIST, {"limit": 2, "offset": 1}).json()
    assert body["count"] == 3 and [t["id"] for t in body["results"]] == [tickets[1].pk, tickets[0].pk]
    assert body["next"] is None and body["previous"] is not None


def test_the_list_costs_the_same_queries_for_3_and_30_tickets(acme_contract, alice):
    def list_queries(expected):
        with CaptureQueriesContext(connection) as queries:
            response = client_for(alice).get(LIST, {"limit": 50})
        assert response.status_code == 200 and response.json()["count"] == expected
        # Levels 3 and 4 name the organisation's own managers (none here: the lookup falls back).
        assert {t["escalation_level"] for t in response.json()["results"]} == {1, 3}
        return len(queries)

    def file_some(n):
        tickets = [file(acme_contract, alice, "P1", subject=f"Problem {i}") for i in range(n)]
        escalate_due_tickets(now=FRI_1600 + timedelta(hours=1, minutes=15))  # level 3 for all but one
        ticket_open(
            user=alice, contract=acme_contract, service=acme_contract.services.get(), priority="P4",
            subject="Slow", description="Slow network.", now=FRI_1600 + timedelta(hours=1),
        )  # fmt: skip
        return tickets

    file_some(2)
    small = list_queries(3)
    file_some(26)
    assert list_queries(30) == small


def test_a_ticket_reads_with_its_clock(acme_contract, alice, bob):
    ticket = file(acme_contract, alice, "P2")
    response = client_for(bob).get(detail(ticket))
    assert response.status_code == 200
    assert response.json()["id"] == ticket.pk and response.json()["resolution_due"] == "2026-12-11T17:00:00Z"


def test_another_organisations_ticket_is_404_everywhere_and_nothing_changes(acme_contract, alice, charlie, sam):
    ticket = file(acme_contract, alice, "P1")
    before = rows()
    for user in (charlie, sam):
        client = client_for(user)
        for pk in (ticket.pk, 999999):
            base = f"{LIST}{pk}/"
            answers = [
                client.get(base),
                client.patch(base, {"status": "closed"}, format="json"),
                client.get(f"{base}replies/"),
                client.post(f"{base}replies/", {"body": "Hello?"}, format="json"),
                client.get(f"{base}attachments/"),
                client.post(f"{base}attachments/", {"file": SimpleUploadedFile("a.png", PNG)}, format="multipart"),
                client.post(f"{base}escalate/", {"reason": "Urgent"}, format="json"),
            ]
            assert [a.status_code for a in answers] == [404] * 7
            assert {json.dumps(a.json()) for a in answers} == {'{"detail": "Not found."}'}
    ticket.refresh_from_db()
    assert ticket.status == "new" and rows() == before


# --- Authentication -------------------------------------------------------------------------------
def test_anonymous_requests_get_401_with_a_challenge(acme_contract, alice):
    ticket = file(acme_contract, alice)
    client = APIClient()
    for response in (client.get(LIST), client.post(LIST, {}, format="json"), client.get(detail(ticket))):
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == "Token"


def test_token_authentication(acme_contract, alice):
    ticket = file(acme_contract, alice)
    _, token = AuthToken.objects.create(user=alice)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert [t["id"] for t in client.get(LIST).json()["results"]] == [ticket.pk]
    assert client.post(f"{detail(ticket)}replies/", {"body": "More logs"}, format="json").status_code == 201
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert client.get(LIST).status_code == 401


def test_session_authentication_checks_csrf(acme_contract, alice):
    file(acme_contract, alice)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(alice)  # a session, as the login page gives (client.login has no request for axes)
    assert client.get(LIST).status_code == 200
    response = client.post(LIST, new_ticket_body(acme_contract), format="json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


# --- Customer moves -------------------------------------------------------------------------------
def test_a_customer_closes_and_reopens(acme_contract, alice, frozen):
    ticket = file(acme_contract, alice, "P2")
    client = client_for(alice)
    response = client.patch(detail(ticket), {"status": "closed"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "closed" and response.json()["sla_state"] == "met"
    frozen.shift(timedelta(hours=1))
    response = client.patch(detail(ticket), {"status": "open"}, format="json")
    assert response.status_code == 200, response.content
    # The resolution clock resumes where it stopped: 4 h, of which none was used, plus the hour closed.
    assert response.json()["status"] == "open" and response.json()["resolution_due"] == "2026-12-11T18:00:00Z"
    assert list(TicketEvent.objects.filter(ticket=ticket, kind="status").values_list("data", flat=True)) == [
        {"old": "new", "new": "closed"},
        {"old": "closed", "new": "open"},
    ]


def test_a_customer_cannot_change_anything_else(acme_contract, alice):
    ticket = file(acme_contract, alice, "P2")
    client = client_for(alice)
    before = rows()
    response = client.patch(detail(ticket), {"priority": "P1"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"priority": ["Unknown field; this request accepts: status."]}
    response = client.patch(detail(ticket), {"status": "resolved"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"status": ["A ticket that is new cannot be moved to resolved."]}
    response = client.patch(detail(ticket), {"status": "open"}, format="json")  # reopen only when done
    assert response.status_code == 400
    assert client.patch(detail(ticket), {"status": "gone"}, format="json").json() == {
        "status": ['"gone" is not a valid choice.']
    }
    ticket.refresh_from_db()
    assert (ticket.priority, ticket.status) == ("P2", "new") and rows() == before
    # PATCH semantics: an empty body changes nothing.
    assert client.patch(detail(ticket), {}, format="json").json()["status"] == "new"


# --- Replies --------------------------------------------------------------------------------------
def test_replies_never_show_internal_notes(acme_contract, alice, sam):
    ticket = file(acme_contract, alice, "P2")
    ticket_reply(ticket=ticket, author=sam, body="Which agent version?")
    ticket_reply(
        ticket=ticket, author=sam, body="Customer is on an unsupported agent.", internal=True,
        files=[SimpleUploadedFile("note.txt", b"internal findings\n")],
    )  # fmt: skip
    client = client_for(alice)
    response = client.post(f"{detail(ticket)}replies/", {"body": "Agent 4.2.1"}, format="json")
    assert response.status_code == 201
    assert response.json()["author"] == "Alice Achieng" and response.json()["from_staff"] is False
    body = client.get(f"{detail(ticket)}replies/").json()
    assert [(m["body"], m["from_staff"]) for m in body["results"]] == [
        ("Which agent version?", True),
        ("Agent 4.2.1", False),
    ]
    assert body["count"] == 2
    # Nor do the files attached to a note.
    assert client.get(f"{detail(ticket)}attachments/").json()["count"] == 0


def test_a_reply_on_a_closed_ticket_is_refused(acme_contract, alice):
    ticket = file(acme_contract, alice, "P2")
    ticket_set_status(ticket=ticket, actor=alice, status="closed")
    before = rows()
    response = client_for(alice).post(f"{detail(ticket)}replies/", {"body": "One more thing"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["This ticket is closed; reopen it to reply."]}
    assert rows() == before


# --- Attachments ----------------------------------------------------------------------------------
def test_a_png_is_accepted_and_listed_with_its_download_link(acme_contract, alice):
    ticket = file(acme_contract, alice, "P2")
    client = client_for(alice)
    upload = SimpleUploadedFile("screen.png", PNG, content_type="application/octet-stream")
    response = client.post(f"{detail(ticket)}attachments/", {"file": upload}, format="multipart")
    assert response.status_code == 201, response.content
    attachment = Attachment.objects.get()
    expected = {
        "id": attachment.pk, "name": "screen.png", "size": len(PNG), "content_type": "image/png",
        "uploaded_at": "2026-12-11T13:00:00Z",
        "download_url": "http://testserver" + reverse("api-ticket-attachment-download", args=[ticket.pk, attachment.pk]),
    }  # fmt: skip
    assert response.json() == expected
    assert attachment.uploaded_by == alice and attachment.file.read() == PNG
    assert client.get(f"{detail(ticket)}attachments/").json()["results"] == [expected]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("invoice.png", EXE, "“invoice.png” is an executable file, which is not accepted: images"),
        ("empty.txt", b"", "The submitted file is empty."),
        ("notes.txt", b"\x00\x01\x02binary", "“notes.txt” is not an accepted type"),
    ],
)
def test_a_refused_upload_is_a_400_and_stores_nothing(acme_contract, alice, tmp_path, name, content, message):
    ticket = file(acme_contract, alice, "P2")
    before = rows()
    upload = SimpleUploadedFile(name, content, content_type="image/png")
    response = client_for(alice).post(f"{detail(ticket)}attachments/", {"file": upload}, format="multipart")
    assert response.status_code == 400
    assert list(response.json()) == ["file"] and response.json()["file"][0].startswith(message)
    assert rows() == before and not list(tmp_path.rglob("*.*"))


def test_an_upload_needs_a_file(acme_contract, alice):
    ticket = file(acme_contract, alice, "P2")
    client = client_for(alice)
    url = f"{detail(ticket)}attachments/"
    assert client.post(url, {}, format="multipart").json() == {"file": ["No file was submitted."]}
    assert client.post(url, {"file": "text"}, format="multipart").status_code == 400
    assert client.post(url, {"file": "x"}, format="json").status_code == 415


# --- Escalation -----------------------------------------------------------------------------------
def test_asking_to_escalate_creates_a_request_to_acknowledge(acme_contract, alice):
    ticket = file(acme_contract, alice, "P2")
    client = client_for(alice)
    response = client.post(f"{detail(ticket)}escalate/", {"reason": "Month-end close is blocked."}, format="json")
    assert response.status_code == 201, response.content
    request = EscalationRequest.objects.get()
    assert request.requested_by == alice and request.reason == "Month-end close is blocked."
    # Kaluari has no separate acknowledgement time: the priority's first response (P2: 1 h, 24x7).
    assert response.json() == {
        "id": request.pk, "ticket": ticket.pk, "reason": "Month-end close is blocked.",
        "requested_at": "2026-12-11T13:00:00Z", "ack_due": "2026-12-11T14:00:00Z", "acknowledged_at": None,
    }  # fmt: skip
    before = rows()
    again = client.post(f"{detail(ticket)}escalate/", {"reason": "Still blocked."}, format="json")
    assert again.status_code == 400
    assert again.json() == {
        "non_field_errors": ["Your earlier escalation request is still waiting for acknowledgement."]
    }
    assert rows() == before


def test_klart_acknowledges_an_escalation_within_4_working_hours(klart_contract, charlie, frozen):
    frozen.move_to(datetime(2026, 12, 11, 15, 0, tzinfo=ZoneInfo("Europe/Stockholm")))  # Friday 15:00
    ticket = file(klart_contract, charlie, None)
    response = client_for(charlie).post(f"{detail(ticket)}escalate/", {"reason": "Answers are wrong."}, format="json")
    assert response.status_code == 201
    # Two hours on Friday (to 17:00), two on Monday from 08:00.
    assert response.json()["ack_due"] == "2026-12-14T09:00:00Z"


def test_a_closed_ticket_cannot_be_escalated(acme_contract, alice):
    ticket = file(acme_contract, alice, "P2")
    ticket_set_status(ticket=ticket, actor=alice, status="closed")
    response = client_for(alice).post(f"{detail(ticket)}escalate/", {"reason": "Please"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["Only an open ticket can be escalated; reopen it first."]}
    assert not EscalationRequest.objects.exists()


# --- Bad input: 400 with messages, never a 500, nothing stored ------------------------------------
def raw(client, url, payload: bytes, method="post"):
    return getattr(client, method)(url, payload, content_type="application/json")


@pytest.mark.parametrize(
    "payload, expected",
    [
        (b'{"subject": "unterminated', {"detail"}),
        (b"[1, 2, 3]", {"non_field_errors"}),
        (b'"just a string"', {"non_field_errors"}),
        (b"[" * 100_000 + b"]" * 100_000, {"detail"}),
        (b'{"subject": NaN}', {"detail"}),
        (b"\xff\xfe not utf-8", {"detail"}),
        (b"", {"contract", "service", "subject", "description"}),
        (b"{}", {"contract", "service", "subject", "description"}),
    ],
    ids=["malformed", "list", "string", "deeply-nested", "nan", "not-utf8", "empty-body", "empty-object"],
)
def test_a_body_that_is_not_a_ticket_is_a_400(acme_contract, alice, payload, expected):
    before = rows()
    response = raw(client_for(alice), LIST, payload)
    assert response.status_code == 400
    assert set(response.json()) == expected
    assert rows() == before


@pytest.mark.parametrize(
    "overrides, field, message",
    [
        ({"subject": "x" * 100_000}, "subject", "Ensure this field has no more than 200 characters."),
        ({"subject": "Backups\x00fail"}, "subject", "Null characters are not allowed."),
        ({"description": "Nothing\x00"}, "description", "Null characters are not allowed."),
        ({"subject": "Backups\nBcc: x@evil.example"}, "subject", "Control characters (including line breaks)"),
        ({"description": "colour \x1b[31mred"}, "description", "Control characters are not allowed"),
        ({"steps_to_reproduce": "a\x7fb"}, "steps_to_reproduce", "Control characters are not allowed"),
        ({"subject": "   "}, "subject", "This field may not be blank."),
        ({"description": "d" * 20_001}, "description", "Ensure this field has no more than 20000 characters."),
        ({"subject": True}, "subject", "Not a valid string."),
        ({"subject": ["a"]}, "subject", "Not a valid string."),
        ({"contract": "abc"}, "contract", "Incorrect type. Expected pk value, received str."),
        ({"contract": {"id": 1}}, "contract", "Incorrect type. Expected pk value, received dict."),
        ({"contract": 10**30}, "contract", "object does not exist."),
        ({"service": -1}, "service", 'Invalid pk "-1" - object does not exist.'),
        ({"priority": "P9"}, "priority", '"P9" is not a valid choice.'),
        ({"priority": 1}, "priority", '"1" is not a valid choice.'),
        ({"kind": "security"}, "kind", "Unknown field; this request accepts: contract, service, priority"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 20 else None,
)
def test_a_bad_field_is_a_400_with_its_message(acme_contract, alice, overrides, field, message):
    before = rows()
    response = client_for(alice).post(LIST, new_ticket_body(acme_contract, **overrides), format="json")
    assert response.status_code == 400, response.content
    errors = response.json()
    assert list(errors) == [field] and any(message in m for m in errors[field]), errors
    assert rows() == before


def test_a_body_over_the_upload_limit_is_refused(acme_contract, alice, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    before = rows()
    body = json.dumps(new_ticket_body(acme_contract, description="d" * 20_000)).encode()
    response = raw(client_for(alice), LIST, body)
    assert response.status_code == 413 and response.json() == {"detail": "The request body is larger than 10000 bytes."}
    assert rows() == before


def test_bad_bodies_on_the_other_endpoints_are_400s(acme_contract, alice):
    ticket = file(acme_contract, alice, "P2")
    client = client_for(alice)
    before = rows()
    for url, field in ((f"{detail(ticket)}replies/", "body"), (f"{detail(ticket)}escalate/", "reason")):
        assert raw(client, url, b"{nope").status_code == 400
        assert raw(client, url, b"{}").json() == {field: ["This field is required."]}
        nul = client.post(url, {field: "a\x00b"}, format="json")
        assert nul.status_code == 400 and nul.json() == {field: ["Null characters are not allowed."]}
        huge = client.post(url, {field: "x" * 100_000}, format="json")
        assert huge.status_code == 400 and list(huge.json()) == [field]
    assert raw(client, detail(ticket), b"{nope", method="patch").status_code == 400
    assert raw(client, detail(ticket), b'["closed"]', method="patch").status_code == 400
    assert rows() == before


def test_an_id_out_of_range_is_a_404(alice):
    assert client_for(alice).get(f"{LIST}{10**30}/").status_code == 404


def test_no_files_on_a_closed_ticket(acme_contract, alice, tmp_path):
    ticket = file(acme_contract, alice, "P2")
    ticket_set_status(ticket=ticket, actor=alice, status="closed")
    before = rows()
    upload = SimpleUploadedFile("screen.png", PNG)
    response = client_for(alice).post(f"{detail(ticket)}attachments/", {"file": upload}, format="multipart")
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["This ticket is closed; reopen it to add files."]}
    assert rows() == before and not list(tmp_path.rglob("*.*"))


def test_the_browsable_api_renders_for_a_signed_in_customer(acme_contract, alice):
    ticket = file(acme_contract, alice, "P2")
    client = APIClient()
    client.force_login(alice)
    for url in (LIST, detail(ticket), f"{detail(ticket)}replies/", f"{detail(ticket)}attachments/"):
        response = client.get(url, HTTP_ACCEPT="text/html")
        assert response.status_code == 200 and response["Content-Type"].startswith("text/html"), url
    assert b"Backups fail" in client.get(LIST, HTTP_ACCEPT="text/html").content


def test_an_idempotency_key_sent_again_files_nothing_more(acme_contract, alice, bob):
    """A client retrying after a timeout sends the same Idempotency-Key: one ticket, one receipt, and
    the second answer is the first's ticket, marked replayed. The key is the client's own: another
    key (or another user's same key) files a ticket."""
    client = client_for(alice)
    first = client.post(LIST, new_ticket_body(acme_contract), format="json", HTTP_IDEMPOTENCY_KEY="nagios-4711")
    again = client.post(LIST, new_ticket_body(acme_contract), format="json", HTTP_IDEMPOTENCY_KEY="nagios-4711")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert first["Location"] == again["Location"] == detail(Ticket.objects.get())
    assert "Idempotent-Replayed" not in first and again["Idempotent-Replayed"] == "true"
    assert OutboxMessage.objects.filter(template="ticket_filed", to=alice.email).count() == 1
    client.post(LIST, new_ticket_body(acme_contract), format="json", HTTP_IDEMPOTENCY_KEY="nagios-4712")
    client_for(bob).post(LIST, new_ticket_body(acme_contract), format="json", HTTP_IDEMPOTENCY_KEY="nagios-4711")
    assert Ticket.objects.count() == 3


def test_a_refused_request_keeps_no_key_and_a_bad_key_is_a_400(acme_contract, alice):
    client = client_for(alice)
    refused = client.post(LIST, new_ticket_body(acme_contract, priority="P9"), format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert refused.status_code == 400
    assert (
        client.post(LIST, new_ticket_body(acme_contract), format="json", HTTP_IDEMPOTENCY_KEY="k1").status_code == 201
    )
    before = rows()
    bad = client.post(LIST, new_ticket_body(acme_contract), format="json", HTTP_IDEMPOTENCY_KEY="x" * 256)
    assert bad.status_code == 400 and bad.json()["Idempotency-Key"] == ["An Idempotency-Key is 1 to 255 characters."]
    assert rows() == before


def test_a_key_reused_days_later_files_a_new_ticket(acme_contract, alice):
    """A monitoring system keyed by its alert name: the same alert firing three days later files a new
    ticket (it was answered with the first, closed one: nothing filed for a real outage)."""
    client = client_for(alice)
    with time_machine.travel(FRI_1600, tick=False):
        first = client.post(LIST, new_ticket_body(acme_contract), format="json", HTTP_IDEMPOTENCY_KEY="disk-full-db1")
        assert first.status_code == 201
    ticket_set_status(ticket=Ticket.objects.get(), actor=alice, status=Ticket.Status.CLOSED)
    with time_machine.travel(FRI_1600 + timedelta(days=3), tick=False):
        again = client.post(LIST, new_ticket_body(acme_contract), format="json", HTTP_IDEMPOTENCY_KEY="disk-full-db1")
    assert "Idempotent-Replayed" not in again, again.json()
    assert Ticket.objects.count() == 2


def test_a_replay_of_a_ticket_the_caller_can_no_longer_see_is_a_409(acme_contract, alice, globex, globex_contract):
    """Alice filed with a key, then moved to Globex: the same key names a ticket she may not see."""
    client = client_for(alice)
    assert client.post(LIST, new_ticket_body(acme_contract), format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 201
    alice.organisation = globex
    alice.save()
    # The client's retry sends the same body (its contract no longer Alice's), or another: both 409.
    for body in (new_ticket_body(acme_contract), new_ticket_body(globex_contract)):
        again = client.post(LIST, body, format="json", HTTP_IDEMPOTENCY_KEY="k")
        assert again.status_code == 409, again.json()
        assert again.json() == {
            "detail": "This Idempotency-Key filed a ticket you can no longer see: send another key."
        }
    assert Ticket.objects.count() == 1
