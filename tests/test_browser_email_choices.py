"""In a real browser (Playwright, Debian's Chromium): Bob turns off maintenance emails (and breaches)
on his preferences page; a maintenance notice then goes to no one who turned it off, only to the
contract's designated contact, but Bob still gets the breach of his own P1 ticket. Alice stops
breach emails from the link in one: the link shows a confirmation, only its button acts.
Screenshots of both pages in var/screenshots/. The live server runs on the real clock."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from contracts.maintenance.services import window_publish
from contracts.maintenance.sweep import maintenance_notices_send_due
from portal.core.notify_rules import Choice
from portal.core.unsubscribe import preference_set
from portal.models import NotificationPreference, OutboxMessage
from tickets.services import ticket_open
from tickets.sweeps import check_sla_deadlines

from .factories import ContractFactory, UserFactory
from .test_browser import expect_heading

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def kaluari(acme, alice, bob):
    """Alice is the contract's designated contact; Bob a member who chose maintenance emails."""
    contract = ContractFactory(organisation=acme, reference="KAL-0001", name="Cloud Backup for Acme", contacts=[alice])
    preference_set(user=bob, choice=Choice.MAINTENANCE, enabled=True, via="page")
    return contract


def test_bob_turns_off_maintenance_and_still_gets_his_own_p1_breach(
    logged_in_page, screenshot, live_server, settings, alice, bob, kaluari
):
    settings.PORTAL_BASE_URL = live_server.url
    erin = UserFactory(email="erin@acme.example", name="Erin Mwangi", organisation=bob.organisation)
    preference_set(user=erin, choice=Choice.MAINTENANCE, enabled=True, via="page")
    page = logged_in_page(bob)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Account", exact=True).click()
    page.get_by_role("link", name="Choose your emails").click()
    expect_heading(page, "Your email choices")
    maintenance, breaches = page.get_by_label("Maintenance"), page.get_by_label("Breaches and escalations")
    assert (
        maintenance.is_checked()
        and breaches.is_checked()
        and not page.get_by_label("Updates on every ticket").is_checked()
    )
    maintenance.uncheck()
    breaches.uncheck()
    page.get_by_role("button", name="Save my choices").click()
    page.wait_for_load_state("load")
    assert "Your email choices are saved." in page.locator(".messages").inner_text()
    assert not page.get_by_label("Maintenance").is_checked()
    text = " ".join(page.locator("main").inner_text().split())
    assert "Always sent: A breach of a P1 ticket you filed yourself always comes." in text
    screenshot(page, "email-choices")
    assert dict(NotificationPreference.objects.filter(user=bob).values_list("kind", "enabled")) == {
        "maintenance": False, "breach": False,
    }  # fmt: skip

    # A maintenance window 47 hours ahead: its notice is due at once.
    now = timezone.now()
    window = window_publish(
        title="Storage upgrade", description="Disks swapped.", services=list(kaluari.services.all()),
        starts_at=now + timedelta(hours=47), ends_at=now + timedelta(hours=48),
    )  # fmt: skip
    maintenance_notices_send_due(now=timezone.now())
    notices = {m.to: m for m in OutboxMessage.objects.filter(key__startswith=f"maintenance:{window.pk}:")}
    assert set(notices) == {alice.email, erin.email}  # not Bob, who turned it off
    assert "List-Unsubscribe" not in notices[alice.email].headers  # her notice cannot be turned off
    assert notices[erin.email].headers["List-Unsubscribe"].startswith(f"<{live_server.url}/email/unsubscribe/")
    # The live server is http: the one-click POST header is for https links only (RFC 8058).
    assert "List-Unsubscribe-Post" not in notices[erin.email].headers

    # Bob's own P1, unanswered past its 15 minutes: his breach email goes, though he turned breaches off.
    ticket = ticket_open(
        user=bob, contract=kaluari, service=kaluari.services.get(), priority="P1",
        subject="Backups fail", description="Nothing since 06:00.", now=now,
    )  # fmt: skip
    check_sla_deadlines(now=now + timedelta(minutes=16))
    breach = {
        m.to: m
        for m in OutboxMessage.objects.filter(key__contains=f"{ticket.pk}:crossing:first_response:breach:customer")
    }
    assert set(breach) == {bob.email, alice.email}
    assert "List-Unsubscribe" not in breach[bob.email].headers

    # Alice follows the unsubscribe link of her breach email, logged out: a page, then a button.
    url = re.fullmatch(r"<(.+)>", breach[alice.email].headers["List-Unsubscribe"])[1]
    assert url.startswith(live_server.url + "/email/unsubscribe/")
    anonymous = logged_in_page(None)
    anonymous.goto(url)
    assert anonymous.get_by_role("heading", level=1).inner_text() == "Emails about breaches and escalations"
    assert not NotificationPreference.objects.filter(user=alice).exists()  # a GET changes nothing
    screenshot(anonymous, "unsubscribe-confirm")
    anonymous.get_by_role("button", name="Stop these emails").click()
    anonymous.wait_for_load_state("load")
    assert (
        "we no longer send alice@acme.example emails about breaches and escalations"
        in anonymous.get_by_role("status").inner_text()
    )
    screenshot(anonymous, "unsubscribe-done")
    assert list(NotificationPreference.objects.filter(user=alice).values_list("kind", "enabled", "via")) == [
        ("breach", False, "link")
    ]
