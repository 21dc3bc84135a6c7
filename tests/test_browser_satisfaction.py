"""The rating link, in a real browser (Debian's Chromium driven by Playwright against the live server,
on the real clock). Alice's ticket is resolved; she opens the rating email, clicks "Bad" without
being signed in, adds a comment and sends it; Sam, the agent, sees it on the ticket in the admin and
the month's statement counts it. Each page passes axe-core and the CSP and leaves a screenshot in
var/screenshots/."""

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.utils import timezone

from tickets.models import Ticket, TicketRating
from tickets.services import ticket_open, ticket_reply, ticket_set_status

from .test_browser import NBO, expect_heading, text, visit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def resolved(settings, live_server, acme_contract, alice, sam):
    """Alice's P1, answered and resolved by Sam a moment ago; the emails' links lead to the live server."""
    from time_machine import travel

    settings.PORTAL_BASE_URL = live_server.url
    filed = timezone.now() - timedelta(minutes=30)
    with travel(filed, tick=False):
        ticket = ticket_open(user=alice, contract=acme_contract, service=acme_contract.services.get(), priority="P1",
                             subject="Backups fail", description="Nothing backs up.")  # fmt: skip
    with travel(filed + timedelta(minutes=5), tick=False):
        ticket_reply(ticket=ticket, author=sam, body="On it.")
    mail.outbox.clear()
    ticket_set_status(ticket=ticket, actor=sam, status=Ticket.Status.RESOLVED)
    return ticket


def test_the_customer_rates_from_the_email_and_staff_and_the_statement_see_it(
    logged_in_page, screenshot, alice, sam, acme_contract, resolved
):
    (email,) = [m for m in mail.outbox if "How did we do?" in m.subject]
    assert email.to == [alice.email]

    # The email as Alice's mail client shows it; she clicks "Bad" (no session in this browser).
    page = logged_in_page(None)
    page.set_content(email.alternatives[0][0])
    screenshot(page, "satisfaction-01-email")
    page.get_by_role("link", name="Bad", exact=True).click()
    page.wait_for_url(re.compile(r"/tickets/rate/[^/]+/\?rating=bad$"))
    expect_heading(page, f"How did we do on ticket {resolved.number}?")
    assert page.get_by_label("Bad").is_checked() and not page.get_by_label("Good").is_checked()
    assert not TicketRating.objects.exists()  # opening the link recorded nothing
    visit(page, screenshot, "satisfaction-02-page")

    page.get_by_label("Comment").fill("It took three calls to get an answer.")
    page.get_by_role("button", name="Send my rating").click()
    page.wait_for_load_state("load")
    assert "Thank you: your rating bad is recorded, with your comment." in text(page.get_by_role("status"))
    visit(page, screenshot, "satisfaction-03-recorded")
    rating = TicketRating.objects.get()
    assert (rating.rating, rating.comment, rating.rated_by) == ("bad", "It took three calls to get an answer.", alice)

    # Sam sees it on the ticket's page in the admin.
    staff = logged_in_page(sam, viewport={"width": 1280, "height": 900})
    staff.goto(f"/admin/tickets/ticket/{resolved.pk}/change/")
    field = staff.locator(".field-satisfaction")
    assert re.match(r"Customer satisfaction:? Bad by Alice Achieng, .* “It took three calls", text(field))
    field.scroll_into_view_if_needed()
    screenshot(staff, "satisfaction-04-admin-ticket")

    # The month's statement counts it beside the attainment.
    month = resolved.filed_at.astimezone(ZoneInfo(NBO))
    customer = logged_in_page(alice)
    customer.goto(f"/contracts/{acme_contract.pk}/statement/{month:%Y-%m}/")
    satisfaction = customer.locator("p.satisfaction")
    assert text(satisfaction).startswith("Satisfaction: 0 good, 1 bad (0%) of 1 rated, 1 resolved")
    satisfaction.scroll_into_view_if_needed()
    visit(customer, screenshot, "satisfaction-05-statement")

    # Her organisation sees the rating on the ticket's own page.
    customer.goto(f"/tickets/{resolved.pk}/")
    shown = text(customer.locator("dd", has_text="Rated bad"))
    assert re.match(r"Rated bad by Alice Achieng, .*: “It took three calls to get an answer.”", shown)
    visit(customer, screenshot, "satisfaction-06-customer-ticket")
