"""The Webhooks pages of a customer admin: register (a refused URL is a 400 with the field's message),
the secret shown once, rotate, disable and enable, a test event, recent deliveries with their last
response, delete; members get a 403, another organisation's endpoint is a 404, GET never changes."""

from __future__ import annotations

import ipaddress
import socket
from unittest import mock

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from portal.core import safe_http
from portal.core.webhooks import webhook_endpoint_create
from portal.domain.formats import in_tz
from portal.models import AuditEntry, WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db
PUBLIC = "93.184.216.34"


@pytest.fixture(autouse=True)
def resolver():
    """Every host resolves to a public address, unless a test says otherwise; no connection opens."""

    def getaddrinfo(host, port, *args, **kwargs):
        try:
            address = str(ipaddress.ip_address(host))  # an address literal resolves to itself
        except ValueError:
            address = resolver.answer.get(host, PUBLIC)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    resolver.answer = {}
    with (
        mock.patch.object(safe_http.socket, "getaddrinfo", getaddrinfo),
        mock.patch.object(safe_http.socket, "create_connection", side_effect=ConnectionRefusedError("test")),
    ):
        yield resolver


def login(client, user):
    client.force_login(user)
    return client


def register(client, url="https://hooks.acme.example/sla", events=("ticket.filed", "ticket.breached")):
    return client.post(reverse("webhook-list"), {"url": url, "events": list(events), "description": "Ops"})


def test_alice_registers_an_endpoint_and_sees_its_secret_once(client, alice):
    login(client, alice)
    page = client.get(reverse("webhook-list"))
    assert page.status_code == 200 and b"Register an endpoint" in page.content
    response = register(client)
    endpoint = WebhookEndpoint.objects.get()
    assert response.status_code == 302 and response.url == reverse("webhook-detail", args=[endpoint.pk])
    assert (endpoint.organisation, endpoint.events, endpoint.created_by) == (
        alice.organisation, ["ticket.filed", "ticket.breached"], alice,
    )  # fmt: skip
    first = client.get(response.url)
    assert endpoint.secret.encode() in first.content and "no-store" in first["Cache-Control"]
    assert endpoint.secret.encode() not in client.get(response.url).content  # once
    assert AuditEntry.objects.filter(action="webhook.created", target_id=str(endpoint.pk)).exists()


@pytest.mark.parametrize(
    ("url", "answer", "message"),
    [
        ("https://127.0.0.1/hook", None, "127.0.0.1 is a loopback address"),
        ("https://10.1.2.3/hook", None, "10.1.2.3 is a private address"),
        ("https://intranet.acme.example/hook", "10.20.0.4", "resolves to 10.20.0.4, which is a private address"),
        ("http://hooks.acme.example/sla", None, "The URL must start with https://"),
        ("", None, "This field is required."),
    ],
)
def test_a_refused_url_is_a_400_with_the_fields_message(client, alice, resolver, url, answer, message):
    if answer:
        resolver.answer["intranet.acme.example"] = answer
    response = register(login(client, alice), url=url)
    assert response.status_code == 400
    assert response.context["form"].errors["url"] == [message] or message in response.context["form"].errors["url"][0]
    assert message.encode() in response.content and not WebhookEndpoint.objects.exists()


def test_no_event_chosen_or_an_unknown_one_is_a_400(client, alice):
    login(client, alice)
    assert register(client, events=()).status_code == 400
    response = register(client, events=("ticket.filed", "everything"))
    assert response.status_code == 400 and "everything" in response.context["form"].errors["events"][0]


@pytest.fixture
def endpoint(alice):
    endpoint, _ = webhook_endpoint_create(actor=alice, url="https://hooks.acme.example/sla", events=["ticket.filed"])
    return endpoint


def test_rotate_disable_enable_test_and_delete(client, alice, endpoint):
    login(client, alice)
    old = endpoint.secret
    client.post(reverse("webhook-rotate", args=[endpoint.pk]))
    endpoint.refresh_from_db()
    assert endpoint.previous_secret == old and endpoint.secret != old
    page = client.get(reverse("webhook-detail", args=[endpoint.pk]))
    assert endpoint.secret.encode() in page.content and b"The previous secret also signs until" in page.content
    client.post(reverse("webhook-disable", args=[endpoint.pk]))
    endpoint.refresh_from_db()
    assert not endpoint.enabled and endpoint.disabled_reason == "Disabled by alice@acme.example."
    client.post(reverse("webhook-test", args=[endpoint.pk]))
    assert not WebhookDelivery.objects.exists()  # a disabled endpoint receives nothing
    client.post(reverse("webhook-enable", args=[endpoint.pk]))
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.disabled_reason == ""
    client.post(reverse("webhook-test", args=[endpoint.pk]))
    ping = WebhookDelivery.objects.get()
    assert ping.event == "ping" and ping.payload["data"]["requested_by"] == alice.email
    client.post(reverse("webhook-delete", args=[endpoint.pk]))
    assert not WebhookEndpoint.objects.exists()


def test_the_endpoint_page_shows_recent_deliveries_with_their_last_response(client, alice, endpoint):
    WebhookDelivery.objects.create(
        endpoint=endpoint, event="ticket.filed", key="k", payload={}, status="pending", attempts=2,
        next_attempt_at=endpoint.created_at, created_at=endpoint.created_at, last_status_code=503,
        last_response='{"error": "maintenance"}', last_error="HTTP 503",
    )  # fmt: skip
    page = login(client, alice).get(reverse("webhook-detail", args=[endpoint.pk]))
    assert b"HTTP 503" in page.content and b"maintenance" in page.content
    # Its moments written as every page of the portal writes them (portal.domain.formats.in_tz).
    assert f"next try {in_tz(endpoint.created_at, 'UTC')}".encode() in page.content
    # In the reader's own zone, which the caption names as theirs (it said UTC above Nairobi times).
    alice.timezone = "Africa/Nairobi"
    alice.save(update_fields=["timezone"])
    page = client.get(reverse("webhook-detail", args=[endpoint.pk])).content.decode()
    assert f"next try {in_tz(endpoint.created_at, 'Africa/Nairobi')}" in page
    assert "times in your timezone" in page and "times in UTC" not in page


def test_editing_the_events_and_a_bad_url_on_the_endpoint_page(client, alice, endpoint):
    login(client, alice)
    url = reverse("webhook-detail", args=[endpoint.pk])
    ok = client.post(url, {"url": endpoint.url, "events": ["ticket.escalated", "claim.decided"]})
    assert ok.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.events == ["ticket.escalated", "claim.decided"]
    bad = client.post(url, {"url": "https://192.168.0.10/", "events": ["ticket.filed"]})
    assert bad.status_code == 400 and b"192.168.0.10 is a private address" in bad.content


def test_members_are_refused_and_do_not_see_the_link(client, bob, endpoint):
    login(client, bob)
    assert b">Webhooks<" not in client.get(reverse("account")).content
    assert client.get(reverse("webhook-list")).status_code == 403
    assert register(client).status_code == 403
    for name in ("webhook-detail", "webhook-rotate", "webhook-enable", "webhook-disable", "webhook-test"):
        assert client.post(reverse(name, args=[endpoint.pk])).status_code == 403


def test_another_organisations_endpoint_is_a_404(client, charlie, endpoint):
    login(client, charlie)
    assert b">Webhooks<" in client.get(reverse("webhook-list")).content
    assert client.get(reverse("webhook-detail", args=[endpoint.pk])).status_code == 404
    for name in ("webhook-rotate", "webhook-enable", "webhook-disable", "webhook-test", "webhook-delete"):
        assert client.post(reverse(name, args=[endpoint.pk])).status_code == 404
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=True).exists()


def test_actions_refuse_get(client, alice, endpoint):
    login(client, alice)
    for name in ("webhook-rotate", "webhook-enable", "webhook-disable", "webhook-test", "webhook-delete"):
        assert client.get(reverse(name, args=[endpoint.pk])).status_code == 405
    assert WebhookEndpoint.objects.get().secret == endpoint.secret


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    url=st.one_of(
        st.text(max_size=600),
        st.builds(lambda host, rest: f"https://{host}/{rest}", st.text(max_size=80), st.text(max_size=80)),
        st.sampled_from(["https://[::1", "https://exa mple.com/", "https://a\x00b.example/", "https://" + "a" * 600]),
    ),
    description=st.text(max_size=200),
    events=st.lists(st.sampled_from(["ticket.filed", "claim.decided", "ping", "", "x" * 50]), max_size=4),
)
def test_hostile_input_is_a_400_or_a_registration_never_a_500(client, alice, url, description, events):
    client.force_login(alice)
    response = client.post(reverse("webhook-list"), {"url": url, "description": description, "events": events})
    assert response.status_code in (302, 400)
    if response.status_code == 302:  # registered: then it is an https URL at a (mocked) public address
        endpoint = WebhookEndpoint.objects.latest("id")
        assert endpoint.url.lower().startswith("https://")
        assert "ping" not in endpoint.events and len(endpoint.url) <= 500
