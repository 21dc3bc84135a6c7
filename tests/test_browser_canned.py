"""Proven in a real browser: Sam (a support agent) is told of a placeholder that does not exist when
he saves a reply of his own; he opens Alice's ticket, picks his team's canned
reply, sees it filled in for the ticket in the reply's text (the static script asks the server),
adds a line of his own and sends it; Alice is emailed the filled text. Each step leaves a
screenshot in var/screenshots/ and passes axe-core and the CSP. The live server runs on the real
clock, so the ticket is filed now."""

import re

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.utils import timezone

from portal.domain.formats import in_tz
from tickets.models import CannedReply, Ticket
from tickets.services import ticket_open

from .test_browser import assert_accessible

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BODY = (
    "Dear {{ customer_name }},\n\nWe are on {{ ticket_number }}; our first answer is due by "
    "{{ first_response_due }}.\n\n{{ agent_name }}"
)


def test_sam_inserts_a_canned_reply_edits_it_and_alice_gets_it_filled(
    logged_in_page, screenshot, acme_contract, alice, sam, csp_violations
):
    now = timezone.now()
    CannedReply.objects.create(
        name="We are on it", body=BODY, team=Group.objects.get(name="Support agent"), created_at=now, updated_at=now
    )
    ticket = ticket_open(
        user=alice, contract=acme_contract, service=acme_contract.services.get(), priority="P3",
        subject="Restore fails", description="Error 17 on every restore.",
    )  # fmt: skip
    due = in_tz(ticket.first_response_due, "Africa/Nairobi")
    mail.outbox.clear()

    page = logged_in_page(sam)
    # His own reply with a placeholder that does not exist: the body's error, nothing saved.
    page.goto("/admin/tickets/cannedreply/add/")
    page.get_by_label("Name").fill("Mine")
    page.get_by_label("Body").fill("Hi {{ customer }}")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_load_state("load")
    assert "Unknown placeholder: {{ customer }}." in page.locator(".errorlist").inner_text()
    screenshot(page, "canned-00-unknown-placeholder")
    assert_accessible(page, "canned-00-unknown-placeholder")
    assert CannedReply.objects.count() == 1

    page.goto(f"/admin/tickets/ticket/{ticket.pk}/change/")
    form = page.locator("#reply-form")
    form.get_by_label("Canned reply").select_option(label="We are on it")
    form.get_by_role("button", name="Insert").click()
    body = form.get_by_label("Body")
    filled = f"Dear Alice Achieng,\n\nWe are on #{ticket.pk}; our first answer is due by {due}.\n\nSam Support"
    page.wait_for_function("t => document.querySelector('#reply-form textarea').value === t", arg=filled)
    assert "“We are on it” filled in for this ticket" in form.locator(".canned-status").inner_text()
    assert page.url.endswith("/change/")  # filled in place, the page not reloaded
    screenshot(page, "canned-01-filled")
    assert_accessible(page, "canned-01-filled")

    body.press("End")
    body.press_sequentially("\nP.S. Which backup set fails?")
    form.get_by_role("button", name="Send").click()
    page.wait_for_url(re.compile(r"/change/#conversation$"))
    screenshot(page, "canned-02-sent")
    sent = f"{filled}\nP.S. Which backup set fails?"
    assert Ticket.objects.get(pk=ticket.pk).messages.get().body.replace("\r\n", "\n") == sent  # as the form posts it
    [email] = [m for m in mail.outbox if m.to == [alice.email]]
    words = " ".join  # the email's text as words (its line ends are the form's CRLF)
    assert email.subject.startswith(f"[{ticket.number}]") and words(sent.split()) in words(email.body.split())
    assert "{{" not in email.body
    assert csp_violations == []
