"""A ticket's escalation request read back through the API: the Ticket answer (list, one ticket, the
answer to filing) carries its latest request (requested_at, ack_due, acknowledged_at), null when
never asked; the list reads it with no query more per ticket. Time frozen at Friday 2026-12-11 16:00
in Nairobi."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tickets.models import EscalationRequest
from tickets.services import escalation_acknowledge, ticket_open

NBO = ZoneInfo("Africa/Nairobi")
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(datetime(2026, 12, 11, 16, 0, tzinfo=NBO), tick=False) as traveller:
        yield traveller


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def file(contract, user, subject="Backups fail"):
    return ticket_open(
        user=user, contract=contract, service=contract.services.get(), priority="P2", subject=subject,
        description="Nothing backs up since last night.",
    )  # fmt: skip


def test_an_open_escalation_requests_deadline_is_read_back_until_it_is_acknowledged(acme_contract, alice, sam):
    ticket, quiet = file(acme_contract, alice), file(acme_contract, alice, "Quiet")
    client = client_for(alice)
    asked = client.post(f"/api/v1/tickets/{ticket.pk}/escalate/", {"reason": "Urgent."}, format="json").json()
    expected = {"requested_at": asked["requested_at"], "ack_due": asked["ack_due"], "acknowledged_at": None}
    assert asked["ack_due"] is not None
    assert client.get(f"/api/v1/tickets/{ticket.pk}/").json()["escalation_request"] == expected
    listed = {t["id"]: t["escalation_request"] for t in client.get("/api/v1/tickets/").json()["results"]}
    assert listed == {ticket.pk: expected, quiet.pk: None}

    escalation_acknowledge(request=EscalationRequest.objects.get(), actor=sam)
    shown = client.get(f"/api/v1/tickets/{ticket.pk}/").json()["escalation_request"]
    assert shown == {**expected, "acknowledged_at": "2026-12-11T13:00:00Z"}
    listed = {t["id"]: t["escalation_request"] for t in client.get("/api/v1/tickets/").json()["results"]}
    assert listed[ticket.pk] == shown


def test_the_list_reads_the_requests_with_no_query_per_ticket(acme_contract, alice):
    client = client_for(alice)

    def list_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/api/v1/tickets/").status_code == 200
        return len(queries)

    first = file(acme_contract, alice)
    client.post(f"/api/v1/tickets/{first.pk}/escalate/", {"reason": "Urgent."}, format="json")
    one = list_queries()
    for i in range(3):
        more = file(acme_contract, alice, f"Ticket {i}")
        client.post(f"/api/v1/tickets/{more.pk}/escalate/", {"reason": "Urgent."}, format="json")
    assert list_queries() == one
    assert all(t["escalation_request"] for t in client.get("/api/v1/tickets/").json()["results"])
