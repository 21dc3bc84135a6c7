"""In a real browser: Alice, a customer admin, registers a webhook endpoint (a local HTTPS receiver,
reached through the tests' allow-list), is refused a private address with the field's message, copies
the secret shown once, sends test events and sees each delivery with its last response: one
acknowledged, one answered 500 and waiting for its retry, the next test sent at once, and one
ticket's second event queued behind its first's retry (in order). Bob, a
member, has no Webhooks link and gets a 403. Screenshots in var/screenshots/."""

import json

import pytest

from portal.core.webhooks import HookEvent, webhooks_emit
from portal.models import WebhookEndpoint

from .test_browser import assert_accessible, nav_to, text, visit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_alice_registers_a_webhook_and_follows_its_deliveries(logged_in_page, screenshot, receiver, alice, bob):
    page = logged_in_page(alice)
    nav_to(page, "Webhooks")
    page.get_by_label("URL").fill("https://10.0.0.8/hooks")
    page.get_by_label("Ticket filed").check()
    page.get_by_role("button", name="Register").click()
    page.wait_for_load_state("load")
    assert "10.0.0.8 is a private address: deliveries go to public addresses only." in text(
        page.locator(".field.has-error")
    )
    visit(page, screenshot, "webhooks-01-refused")

    page.get_by_label("URL").fill(receiver.url)
    page.get_by_label("Description").fill("Acme's ticket sync")
    page.get_by_label("Ticket breached an SLA deadline").check()
    page.get_by_role("button", name="Register").click()
    page.wait_for_url("**/webhooks/*/")
    endpoint = WebhookEndpoint.objects.get()
    assert page.get_by_label("Signing secret (shown once: copy it now):").input_value() == endpoint.secret

    receiver.script = ["ok", 500]
    for _ in range(3):
        page.get_by_role("button", name="Send a test event").click()
        page.wait_for_load_state("load")
    rows = page.locator("table.webhook-deliveries tbody tr")
    assert rows.count() == 3
    newest, failed, acknowledged = (text(rows.nth(i)) for i in range(3))
    assert "Delivered" in acknowledged and "HTTP 204" in acknowledged
    assert "Pending" in failed and "HTTP 500" in failed and "next try" in failed
    assert "Delivered" in newest and "HTTP 204" in newest  # a test event waits for no retry
    assert [json.loads(r.body)["event"] for r in receiver.received] == ["ping", "ping", "ping"]

    # Two events of one ticket: the second waits behind the first's retry (one ticket's, in order).
    receiver.script = [500]
    webhooks_emit(
        events=[
            HookEvent(organisation_id=alice.organisation_id, event=event, key=f"ticket:1:{event}", data={})
            for event in ("ticket.filed", "ticket.breached")
        ]
    )
    page.reload()
    assert rows.count() == 5
    newest, failed = text(rows.nth(0)), text(rows.nth(1))
    assert "ticket.filed" in failed and "Pending" in failed and "HTTP 500" in failed and "next try" in failed
    assert "ticket.breached" in newest and "Pending" in newest and "not tried yet" in newest
    visit(page, screenshot, "webhooks-02-endpoint-alice")
    assert endpoint.secret not in page.content()  # shown once

    nav_to(page, "Webhooks")
    visit(page, screenshot, "webhooks-03-list-alice")

    member = logged_in_page(bob)
    assert member.get_by_role("navigation", name="Main").get_by_role("link", name="Webhooks").count() == 0
    assert member.goto("/webhooks/").status == 403
    assert_accessible(page, "webhooks-list")
