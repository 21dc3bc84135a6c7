"""Webhook payloads give every time in UTC ("...Z", docs/webhooks.md), whatever zone the staff
form read it in: the admin reads a call's start and a caller's moment in the contract's zone, and
those reached integrators as "+03:00" where every other time is "Z"."""

from __future__ import annotations

import pytest
import time_machine
from django.urls import reverse

from portal.core.webhooks import webhook_endpoint_create
from portal.models import WebhookDelivery
from tickets.services import ticket_open

from .test_phone import at, wall

pytestmark = pytest.mark.django_db


def is_utc(text: str) -> bool:
    return text.endswith("Z") or text.endswith("+00:00")


@pytest.fixture
def hooked(alice):
    with time_machine.travel(at(8), tick=False):
        webhook_endpoint_create(
            actor=alice, url="https://hooks.acme.example/sla", events=["ticket.filed", "ticket.updated"]
        )


@pytest.fixture(autouse=True)
def public_resolver(monkeypatch):
    import socket

    from portal.core import safe_http

    monkeypatch.setattr(
        safe_http.socket,
        "getaddrinfo",
        lambda host, port, *a, **k: [(socket.AF_INET, 1, 6, "", ("93.184.216.34", port))],
    )


def test_a_logged_calls_times_reach_the_webhook_in_utc(client, sam, alice, acme_contract, hooked):
    with time_machine.travel(at(16), tick=False):
        p1 = ticket_open(
            user=alice, contract=acme_contract, service=acme_contract.services.get(), priority="P1",
            subject="Backups fail", description="Nothing backs up since last night.",
        )  # fmt: skip
    with time_machine.travel(at(16, 40), tick=False):
        client.force_login(sam)
        response = client.post(
            reverse("admin:tickets_ticket_call", args=[p1.pk]),
            {"direction": "outbound", "contact": alice.pk, "contact_name": "", "duration": "7", "notes": "Fixed",
             "started_at": wall(at(16, 10)), "answered": "on"},
        )  # fmt: skip
    assert response.status_code == 302 and "login" not in response["Location"]
    data = WebhookDelivery.objects.get(key__contains=":call:").payload["data"]
    assert data["change"]["call"]["started_at"] == "2026-12-11T13:10:00Z", data["change"]["call"]["started_at"]
    assert is_utc(data["ticket"]["first_response_at"]), data["ticket"]["first_response_at"]


def test_a_ticket_filed_for_a_caller_reaches_the_webhook_with_utc_times(client, sam, alice, acme_contract, hooked):
    with time_machine.travel(at(14), tick=False):
        client.force_login(sam)
        response = client.post(
            reverse("admin:tickets_ticket_file"),
            {"channel": "phone", "customer": alice.pk, "contract": acme_contract.pk,
             "service": acme_contract.services.get().pk, "priority": "P3", "subject": "Restore is slow",
             "description": "Alice called.", "reached_at": wall(at(12))},
        )  # fmt: skip
    assert response.status_code == 302 and "login" not in response["Location"]
    ticket = WebhookDelivery.objects.get(event="ticket.filed").payload["data"]["ticket"]
    bad = {k: v for k, v in ticket.items() if isinstance(v, str) and v[:4] == "2026" and not is_utc(v)}
    assert bad == {}, f"not UTC: {bad}"
    assert ticket["filed_at"] == "2026-12-11T09:00:00Z"
