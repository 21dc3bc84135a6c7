"""People and support contacts in a real browser (Playwright, Debian's Chromium, the live server):
Alice, Acme's customer admin, invites Erin; Erin opens the link from the email, chooses a password
and files a ticket; Alice takes Bob's right to open tickets, and Bob is told why and whom to ask.
Each page is checked by axe and kept as a screenshot in var/screenshots/."""

import re

import pytest
from django.core import mail

from portal.models import User
from tickets.models import Ticket

from .test_browser import expect_heading, nav_to, text, visit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_alice_invites_erin_who_files_a_ticket_and_bob_loses_the_right_to_open_tickets(
    logged_in_page, screenshot, live_server, alice, bob, acme_contract, csp_violations
):
    page = logged_in_page(alice)
    nav_to(page, "People")
    expect_heading(page, "People of Acme Savings")
    assert "Bob Barasa" in text(page.locator("table.people"))
    page.get_by_label("Email address").fill("erin@acme.example")
    page.get_by_role("button", name="Send the invitation").click()
    page.wait_for_load_state("load")
    assert "Invitation sent to erin@acme.example" in text(page.locator(".messages"))
    assert "erin@acme.example (Member)" in text(page.locator("main"))
    visit(page, screenshot, "30-people")

    # Erin opens the link from the email, in a browser of her own.
    [email] = [m for m in mail.outbox if m.to == ["erin@acme.example"]]
    link = re.search(r"https?://\S+/invitation/\S+/", email.body)[0]
    path = "/" + link.split("://", 1)[1].split("/", 1)[1]
    erin_page = logged_in_page(None)
    erin_page.goto(path)
    expect_heading(erin_page, "Join Acme Savings on the SLA Portal")
    erin_page.get_by_label("Your name").fill("Erin Ekwueme")
    erin_page.get_by_label("Password", exact=True).fill("kingfisher-lantern-42")
    erin_page.get_by_label("Password again").fill("kingfisher-lantern-42")
    visit(erin_page, screenshot, "31-invitation-accept")
    erin_page.get_by_role("button", name="Join and sign in").click()
    erin_page.wait_for_url(f"{live_server.url}/")
    assert "Welcome to Acme Savings" in text(erin_page.locator(".messages"))
    erin = User.objects.get(email="erin@acme.example")

    # Erin files a ticket.
    nav_to(erin_page, "Tickets")
    erin_page.get_by_role("link", name="File a ticket").first.click()
    expect_heading(erin_page, "File a ticket")
    erin_page.get_by_role("radio", name="P3 – medium-to-low impact").check()
    erin_page.get_by_label("Subject").fill("Restores of the archive volume fail")
    erin_page.get_by_label("Description").fill("Every restore since Monday stops at 40%.")
    erin_page.get_by_role("button", name="File the ticket").click()
    erin_page.wait_for_url(re.compile(r"/tickets/\d+/$"))
    assert Ticket.objects.get().created_by == erin

    kaluari = acme_contract
    # Alice takes Bob's right to open tickets on the contract.
    page.goto(f"/contracts/{kaluari.pk}/")
    page.get_by_role("link", name="Support and notification contacts").click()
    expect_heading(page, f"Contacts of Cloud Backup for Acme ({kaluari.reference})")
    page.get_by_label("Bob Barasa may open tickets").uncheck()
    visit(page, screenshot, "32-contract-contacts")
    page.get_by_role("button", name="Save the contacts").click()
    page.wait_for_load_state("load")
    assert "The contacts of KAL-0001 are saved" in text(page.locator(".messages"))
    assert set(kaluari.support_contacts.all()) == {alice, erin}

    # Bob is told why he may not open tickets, and whom to ask.
    bob_page = logged_in_page(bob)
    nav_to(bob_page, "Tickets")
    bob_page.get_by_role("link", name="File a ticket").first.click()
    expect_heading(bob_page, "You may not open tickets")
    why = text(bob_page.locator("main"))
    assert "have not designated you on Cloud Backup for Acme (KAL-0001)" in why
    assert "Alice Achieng · alice@acme.example" in why
    visit(bob_page, screenshot, "33-may-not-open-tickets")
    assert Ticket.objects.count() == 1
    assert csp_violations == []


def test_bob_sets_his_timezone_and_sees_his_own_time_beside_the_contracts(
    logged_in_page, screenshot, bob, acme_contract, csp_violations
):
    from tickets.services import ticket_open

    ticket = ticket_open(user=bob, contract=acme_contract, service=acme_contract.services.get(), priority="P3",
                         subject="Restore fails", description="Since last night.")  # fmt: skip
    page = logged_in_page(bob)
    nav_to(page, "Account")
    page.get_by_label("Phone").fill("+254 700 111 222")
    page.get_by_label("Your timezone").fill("Europe/Berlin")
    page.get_by_role("button", name="Save your details").click()
    page.wait_for_load_state("load")
    assert "Your details are saved" in text(page.locator(".messages"))
    visit(page, screenshot, "34-account-details")
    page.goto(f"/tickets/{ticket.pk}/")
    assert "your time, Europe/Berlin" in text(page.locator("main"))
    visit(page, screenshot, "35-ticket-own-time")
    assert csp_violations == []
